// Package tracing sets up OpenTelemetry tracing for the gateway: an OTLP/HTTP exporter
// when an endpoint is configured (off otherwise), W3C trace context, and the GenAI
// semantic conventions' span attributes, which the gateway sets on a server span per
// request and a client span per upstream attempt.
package tracing

import (
	"context"
	"errors"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Options configure Setup.
type Options struct {
	// Endpoint is the OTLP/HTTP collector's base URL (http://collector:4318); traces go to
	// its /v1/traces. Empty: tracing is off.
	Endpoint string
	// SampleRatio is the share of new traces recorded (0 or unset: all); a request that
	// arrives with a sampled parent is always recorded (parent-based sampling).
	SampleRatio float64
	// ServiceName names the gateway in traces. Default "sluice".
	ServiceName string
	// Version is the service version.
	Version string
}

// Setup returns a tracer, and a shutdown that flushes spans; with no endpoint the tracer
// is nil (tracing off) and shutdown does nothing.
func Setup(o Options) (trace.Tracer, func(context.Context) error, error) {
	if o.Endpoint == "" {
		return nil, func(context.Context) error { return nil }, nil
	}
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, errors.New("the OTLP endpoint must be an http(s) URL such as http://collector:4318")
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(o.Endpoint + "/v1/traces"), otlptracehttp.WithTimeout(10 * time.Second)}
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, nil, err
	}
	if o.ServiceName == "" {
		o.ServiceName = "sluice"
	}
	sampler := sdktrace.ParentBased(sdktrace.AlwaysSample())
	if o.SampleRatio > 0 && o.SampleRatio < 1 {
		sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", o.ServiceName),
			attribute.String("service.version", o.Version),
		)),
	)
	return tp.Tracer("github.com/sluice-gateway/sluice"), tp.Shutdown, nil
}

// Propagator is W3C trace context (traceparent, tracestate).
var Propagator = propagation.TraceContext{}
