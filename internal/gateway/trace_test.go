package gateway_test

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/tracing"
)

// otlpReceiver is an OTLP/HTTP trace collector: it keeps every span it is sent.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rc := &otlpReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("OTLP request %s %s", r.URL.Path, r.Header.Get("Content-Type"))
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Error(err)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req collector.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Errorf("OTLP body: %v", err)
		}
		rc.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func attrs(s *tracepb.Span) map[string]any {
	out := map[string]any{}
	for _, kv := range s.Attributes {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = v.IntValue
		}
	}
	return out
}

// TestTracing: a request that arrives with a W3C traceparent gets a server span in that
// trace, named and attributed after the GenAI conventions with the exact usage; each
// upstream attempt is a client span whose context reaches the upstream in traceparent.
func TestTracing(t *testing.T) {
	rc := newOTLPReceiver(t)
	tracer, shutdown, err := tracing.Setup(tracing.Options{Endpoint: rc.URL})
	if err != nil {
		t.Fatal(err)
	}
	up := newRecordingUpstream(t, "m")
	gw := gatewaytest.Start(t, backendYAML("up", up.URL+"/v1", "")+`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [m], backendRefs: [{name: up, model: m}]}
`, nil, gateway.Options{Tracer: tracer})
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	resp, body := postJSON(t, gw.URL(), "/chat/completions", `{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"Trace me"}]}`,
		map[string]string{"Traceparent": "00-" + traceID + "-" + parentID + "-01"})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var answer struct {
		Usage struct{ PromptTokens, CompletionTokens int64 } `json:"usage"`
	}
	json.Unmarshal([]byte(strings.NewReplacer(`"prompt_tokens"`, `"PromptTokens"`, `"completion_tokens"`, `"CompletionTokens"`).Replace(body)), &answer)
	if err := shutdown(context.Background()); err != nil { // flushes the batch
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var server, client *tracepb.Span
	for _, s := range rc.spans {
		switch s.Kind {
		case tracepb.Span_SPAN_KIND_SERVER:
			server = s
		case tracepb.Span_SPAN_KIND_CLIENT:
			client = s
		}
	}
	if server == nil || client == nil {
		t.Fatalf("spans: %v", rc.spans)
	}
	if hex.EncodeToString(server.TraceId) != traceID || hex.EncodeToString(server.ParentSpanId) != parentID || server.Name != "chat m" {
		t.Errorf("server span %s in trace %x under %x", server.Name, server.TraceId, server.ParentSpanId)
	}
	a := attrs(server)
	for k, want := range map[string]any{
		"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m", "gen_ai.response.model": "m",
		"gen_ai.request.max_tokens": int64(50), "gen_ai.usage.input_tokens": answer.Usage.PromptTokens,
		"gen_ai.usage.output_tokens": answer.Usage.CompletionTokens, "http.response.status_code": int64(200),
	} {
		if a[k] != want {
			t.Errorf("server span %s = %v, want %v", k, a[k], want)
		}
	}
	if answer.Usage.PromptTokens == 0 {
		t.Fatal("no usage in the answer")
	}
	if string(client.ParentSpanId) != string(server.SpanId) || client.Name != "chat m" || attrs(client)["sluice.backend"] != "Backend/default/up" {
		t.Errorf("client span %s under %x (server %x): %v", client.Name, client.ParentSpanId, server.SpanId, attrs(client))
	}
	_, h := up.last()
	if want := "00-" + traceID + "-" + hex.EncodeToString(client.SpanId) + "-01"; h.Get("Traceparent") != want {
		t.Errorf("upstream traceparent %q, want %q", h.Get("Traceparent"), want)
	}
}
