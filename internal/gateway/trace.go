package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/telemetry"
	"github.com/sluice-gateway/sluice/internal/tracing"
)

// startSpan starts the request's server span, a child of the client's trace context
// (traceparent) when it sent one. It returns r unchanged when tracing is off.
func (g *Gateway) startSpan(r *http.Request) (*http.Request, trace.Span) {
	if g.opts.Tracer == nil {
		return r, nil
	}
	ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := g.opts.Tracer.Start(ctx, "request", trace.WithSpanKind(trace.SpanKindServer))
	return r.WithContext(ctx), span
}

// endSpan names the request's span after the GenAI conventions ("chat gpt-4o-mini") and
// records what happened: model, provider, usage, status and error type.
func endSpan(span trace.Span, ex *exchange.Exchange) {
	if span == nil {
		return
	}
	op := telemetry.Operation(ex.IngressEndpoint)
	if c := ex.MCP; c != nil {
		// MCP spans are named by method and tool or prompt ("tools/call a_search").
		span.SetName(strings.TrimSpace(c.Method + " " + c.Name()))
		span.SetAttributes(attribute.String("mcp.method.name", c.Method), attribute.String("gen_ai.tool.name", c.Tool))
	} else {
		span.SetName(op + " " + ex.Model)
	}
	status := ex.Status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", op),
		attribute.String("gen_ai.request.model", ex.Model),
		attribute.Int("http.response.status_code", status),
		attribute.String("sluice.request_id", ex.ID),
	}
	if ex.Provider != "" {
		attrs = append(attrs, attribute.String("gen_ai.provider.name", telemetry.Provider(ex.Provider)),
			attribute.String("gen_ai.response.model", ex.UpstreamModel))
	}
	if ex.MaxTokens > 0 {
		attrs = append(attrs, attribute.Int64("gen_ai.request.max_tokens", ex.MaxTokens))
	}
	if ex.Usage.InputTokens > 0 || ex.Usage.OutputTokens > 0 {
		attrs = append(attrs, attribute.Int64("gen_ai.usage.input_tokens", ex.Usage.InputTokens),
			attribute.Int64("gen_ai.usage.output_tokens", ex.Usage.OutputTokens))
	}
	if ex.Route != "" {
		attrs = append(attrs, attribute.String("sluice.route", ex.Route), attribute.String("sluice.backend", ex.Backend), attribute.Int("sluice.attempts", ex.Attempts))
	}
	if ex.Principal != nil && ex.Principal.Team != "" {
		attrs = append(attrs, attribute.String("sluice.team", ex.Principal.Team))
	}
	if ex.Cache != "" {
		attrs = append(attrs, attribute.String("sluice.cache", ex.Cache))
	}
	if ex.Code != "" || status >= 400 {
		et := ex.Code
		if et == "" {
			et = strconv.Itoa(status)
		}
		attrs = append(attrs, attribute.String("error.type", et))
	}
	span.SetAttributes(attrs...)
	if status >= 500 {
		span.SetStatus(codes.Error, ex.Code)
	}
	span.End()
}

// startAttemptSpan starts an upstream attempt's client span and puts its trace context in
// the upstream request's traceparent, so the provider (or a self-hosted server) continues
// the trace. The returned func ends it.
func (g *Gateway) startAttemptSpan(ctx context.Context, req *http.Request, ex *exchange.Exchange) func(outcome) {
	if g.opts.Tracer == nil {
		return nil
	}
	op := telemetry.Operation(ex.Endpoint)
	ctx, span := g.opts.Tracer.Start(ctx, op+" "+ex.UpstreamModel, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("gen_ai.operation.name", op),
			attribute.String("gen_ai.provider.name", telemetry.Provider(ex.Provider)),
			attribute.String("gen_ai.request.model", ex.UpstreamModel),
			attribute.String("server.address", req.URL.Hostname()),
			attribute.String("sluice.backend", ex.Backend),
			attribute.Int("sluice.attempt", ex.Attempts),
		))
	delete(req.Header, "Tracestate") // the client's, if any, described its own span
	tracing.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	return func(o outcome) {
		if o == fallBack {
			span.SetStatus(codes.Error, "attempt failed; another was tried")
			span.SetAttributes(attribute.String("error.type", "attempt_failed"))
		} else if ex.Status >= 500 || ex.Code != "" {
			span.SetStatus(codes.Error, ex.Code)
			span.SetAttributes(attribute.String("error.type", ex.Code))
		}
		if ex.Usage.InputTokens > 0 || ex.Usage.OutputTokens > 0 {
			span.SetAttributes(attribute.Int64("gen_ai.usage.input_tokens", ex.Usage.InputTokens),
				attribute.Int64("gen_ai.usage.output_tokens", ex.Usage.OutputTokens))
		}
		span.End()
	}
}
