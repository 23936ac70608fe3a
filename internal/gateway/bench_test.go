package gateway_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/provider/openai"
	"github.com/sluice-gateway/sluice/internal/route"
	"github.com/sluice-gateway/sluice/internal/telemetry"
	"github.com/sluice-gateway/sluice/internal/translate"
)

const benchRequest = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark, please."}],"max_tokens":64}`

const benchAnswer = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, benchmark."},"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":4,"total_tokens":28}}`

// cannedUpstream answers every request in-process with the same bytes, so a benchmark
// measures the gateway, not an upstream.
type cannedUpstream struct {
	body        []byte
	contentType string
}

func (c *cannedUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body)
	return &http.Response{
		StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {c.contentType}},
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       req,
	}, nil
}

func benchSnapshot(b *testing.B, up http.RoundTripper, extra string) *translate.Snapshot {
	// Built from YAML like any snapshot, then pointed at the in-process upstream.
	snap := gatewaytest.Build(b, backendYAML("up", "http://upstream.invalid/v1", "")+routeYAML("gpt-4o-mini", "[{name: up}]")+extra, nil)
	for _, be := range snap.Backends {
		be.Adapter = openai.Adapter{}
		be.Upstream = egress.NewUpstream(egress.Options{
			BaseURL:  &url.URL{Scheme: "http", Host: "upstream.invalid", Path: "/v1"},
			Timeouts: be.Upstream.Timeouts,
			Base:     up,
		})
	}
	_ = route.Backend{}
	return snap
}

// discardWriter is a ResponseWriter that keeps nothing, reused across iterations.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discardWriter) Flush()                      {}

func benchGateway(b *testing.B, up http.RoundTripper, body string, extra ...string) {
	benchGatewayWith(b, gateway.Options{}, up, body, extra...)
}

func benchGatewayWith(b *testing.B, opts gateway.Options, up http.RoundTripper, body string, extra ...string) {
	opts.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	gw := gateway.New(opts)
	gw.Swap(benchSnapshot(b, up, strings.Join(extra, "")))
	w := &discardWriter{h: http.Header{}}
	rd := strings.NewReader(body)
	req := httptest.NewRequest("POST", "/v1/chat/completions", rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-client")
	req.ContentLength = int64(len(body))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		gw.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

// BenchmarkAddedPlain is the gateway's own cost for one plain chat request: ingress,
// routing, the upstream request, usage extraction, the answer, the access log. The
// upstream is an in-process RoundTripper, so nothing else is counted.
func BenchmarkAddedPlain(b *testing.B) {
	benchGateway(b, &cannedUpstream{body: []byte(benchAnswer), contentType: "application/json"}, benchRequest)
}

// BenchmarkAddedObserved is BenchmarkAddedPlain and a 20-chunk stream with metrics on:
// what the Prometheus series cost per request.
func BenchmarkAddedObserved(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		benchGatewayWith(b, gateway.Options{Metrics: telemetry.New(telemetry.Options{})}, &cannedUpstream{body: []byte(benchAnswer), contentType: "application/json"}, benchRequest)
	})
	b.Run("stream", func(b *testing.B) {
		benchGatewayWith(b, gateway.Options{Metrics: telemetry.New(telemetry.Options{})}, &cannedUpstream{body: sseAnswer(20), contentType: "text/event-stream"}, benchStreamRequest)
	})
}

func sseAnswer(chunks int) []byte {
	var buf bytes.Buffer
	for i := range chunks {
		buf.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"tok` + strconv.Itoa(i) + ` "},"finish_reason":null}],"usage":null}` + "\n\n")
	}
	buf.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":24,"completion_tokens":` + strconv.Itoa(chunks) + `,"total_tokens":` + strconv.Itoa(24+chunks) + `}}` + "\n\ndata: [DONE]\n\n")
	return buf.Bytes()
}

var benchStreamRequest = strings.Replace(benchRequest, `"max_tokens":64`, `"max_tokens":64,"stream":true`, 1)

// BenchmarkAddedStream is the same for a streamed answer of 20 and 200 chunks (usage
// injected and stripped again): the allocations must not grow with the chunk count.
func BenchmarkAddedStream(b *testing.B) {
	for _, n := range []int{20, 200} {
		b.Run(strconv.Itoa(n)+"chunks", func(b *testing.B) {
			benchGateway(b, &cannedUpstream{body: sseAnswer(n), contentType: "text/event-stream"}, benchStreamRequest)
		})
	}
}

// guardrails is the default guardrail chain: signatures, prompt injection, PII (request and
// response) and a content filter. Anomaly tracking is off here: a benchmark loop is one
// caller repeating one prompt, which the tracker rightly flags on every request (its own
// cost is BenchmarkRequest in internal/payload/anomaly).
const guardrails = `---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: guard}
spec:
  processors:
  - {name: signatures, inProcess: {signatures: {action: Flag, anomalies: {disabled: true}}}}
  - {name: injection, inProcess: {promptInjection: {}}}
  - {name: pii, inProcess: {pii: {action: Redact, scope: [Request, Response]}}}
  - {name: words, inProcess: {contentFilter: {deny: [{word: project-zeus}], scope: [Request, Response]}}}
`

// BenchmarkAddedGuarded is BenchmarkAddedPlain and BenchmarkAddedStream with the default
// guardrails on requests and answers.
func BenchmarkAddedGuarded(b *testing.B) {
	b.Run("plain", func(b *testing.B) {
		benchGateway(b, &cannedUpstream{body: []byte(benchAnswer), contentType: "application/json"}, benchRequest, guardrails)
	})
	for _, n := range []int{20, 200} {
		b.Run("stream-"+strconv.Itoa(n)+"chunks", func(b *testing.B) {
			benchGateway(b, &cannedUpstream{body: sseAnswer(n), contentType: "text/event-stream"}, benchStreamRequest, guardrails)
		})
	}
}

// BenchmarkLoopback measures whole requests over real sockets: client → upstream directly,
// and client → gateway → upstream. The difference is what the gateway adds end to end,
// including its own HTTP server and client work.
func BenchmarkLoopback(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(benchAnswer))
	}))
	defer up.Close()
	gw := gateway.New(gateway.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	gw.Swap(gatewaytest.Build(b, backendYAML("up", up.URL+"/v1", "")+routeYAML("gpt-4o-mini", "[{name: up}]"), nil))
	gs := httptest.NewServer(gw)
	defer gs.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	run := func(b *testing.B, url string) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(benchRequest))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, up.URL) })
	b.Run("via-gateway", func(b *testing.B) { run(b, gs.URL) })
}

// BenchmarkCacheHit: a request answered from a Memory CachePolicy (the first iteration
// fills it), and the same entry replayed to a streaming client; compare with
// BenchmarkAddedPlain, which goes upstream.
func BenchmarkCacheHit(b *testing.B) {
	policy := `---
apiVersion: sluice.dev/v1alpha1
kind: CachePolicy
metadata: {name: c}
spec: {}
`
	up := &cannedUpstream{body: []byte(benchAnswer), contentType: "application/json"}
	b.Run("plain", func(b *testing.B) { benchGateway(b, up, benchRequest, policy) })
	b.Run("stream", func(b *testing.B) {
		gw := gateway.New(gateway.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		gw.Swap(benchSnapshot(b, up, policy))
		w := &discardWriter{h: http.Header{}}
		fill := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(benchRequest))
		gw.ServeHTTP(w, fill)
		rd := strings.NewReader(benchStreamRequest)
		req := httptest.NewRequest("POST", "/v1/chat/completions", rd)
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(benchStreamRequest)
			clear(w.h)
			gw.ServeHTTP(w, req)
			if w.h.Get("X-Sluice-Cache") != "hit" {
				b.Fatal("not a hit")
			}
		}
	})
}
