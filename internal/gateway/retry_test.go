package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/gatewaytest/fakeanthropic"
	"github.com/sluice-gateway/sluice/internal/provider/mock"
)

// faultyUpstream answers each request by the next step of its script: "500", "429",
// "429:SECONDS" (with Retry-After), "hang" (no headers until the request is cancelled),
// or "ok" (a normal answer); past the script's end it answers ok.
type faultyUpstream struct {
	*httptest.Server
	mu     sync.Mutex
	script []string
	n      int
}

func newFaultyUpstream(t *testing.T, script ...string) *faultyUpstream {
	u := &faultyUpstream{script: script}
	ok := mock.NewHandler(v1alpha1.MockSpec{Chunks: 3}, []string{"m"})
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		step := "ok"
		if u.n < len(u.script) {
			step = u.script[u.n]
		}
		u.n++
		u.mu.Unlock()
		switch {
		case step == "500":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(500)
			w.Write([]byte(`{"error":{"message":"boom","type":"server_error","code":null}}`))
		case strings.HasPrefix(step, "429"):
			if secs, found := strings.CutPrefix(step, "429:"); found {
				w.Header().Set("Retry-After", secs)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(429)
			w.Write([]byte(`{"error":{"message":"slow down","type":"rate_limit_error","code":"rate_limit_exceeded"}}`))
		case step == "hang":
			<-r.Context().Done()
		case step == "reset": // the connection dies before any answer
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case step == "partial": // headers and the start of the answer, then the connection dies
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "400")
			w.WriteHeader(200)
			w.Write([]byte(`{"id":"chatcmpl-1","object":"chat.completion","choi`))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		case step == "silent-body": // headers, then nothing
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			ok.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *faultyUpstream) requests() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n
}

func retryRoute(refs, retry string) string {
	return fmt.Sprintf(`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r}
spec:
  models: [m]
  backendRefs: %s
%s
`, refs, retry)
}

func lastAttempts(t *testing.T, gw *gatewaytest.Gateway) float64 {
	t.Helper()
	gw.Log.Wait(t, "request", 1, 5*time.Second)
	recs := gw.Log.Records("request")
	return recs[len(recs)-1]["attempts"].(float64)
}

// TestRetryPolicy: what is retried, how often, and what the client gets when retries run out.
func TestRetryPolicy(t *testing.T) {
	const fast = "  retry: {attempts: %d, retryOn: [%s], backoff: {base: 1ms, max: 5ms}}"
	cases := []struct {
		name    string
		script  []string
		retry   string
		status  int
		upCalls int
	}{
		{"5xx retried on the same backend", []string{"500", "500"}, fmt.Sprintf(fast, 3, "5xx"), 200, 3},
		{"attempts cap", []string{"500", "500", "500"}, fmt.Sprintf(fast, 2, "5xx"), 500, 2},
		{"no policy: one try per backend", []string{"500"}, "", 500, 1},
		{"429 retried after backoff", []string{"429"}, fmt.Sprintf(fast, 2, "429"), 200, 2},
		{"short Retry-After waited", []string{"429:0"}, fmt.Sprintf(fast, 2, "429"), 200, 2},
		{"429 not listed: passed on", []string{"429:7"}, fmt.Sprintf(fast, 3, "5xx"), 429, 1},
		{"long Retry-After not waited for on the only backend", []string{"429:120"}, fmt.Sprintf(fast, 3, "429"), 429, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newFaultyUpstream(t, c.script...)
			gw := gatewaytest.Start(t, backendYAML("a", up.URL+"/v1", "")+retryRoute("[{name: a}]", c.retry), nil, gateway.Options{})
			resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
			if resp.StatusCode != c.status || up.requests() != c.upCalls {
				t.Fatalf("status %d (want %d), upstream saw %d (want %d): %s", resp.StatusCode, c.status, up.requests(), c.upCalls, body)
			}
			if c.status == 429 && c.script[0] != "429" && resp.Header.Get("Retry-After") == "" {
				t.Fatal("Retry-After not passed on")
			}
			if got := lastAttempts(t, gw); got != float64(c.upCalls) {
				t.Fatalf("access log attempts %v", got)
			}
		})
	}
}

// TestRetryMovesOn: a 429 asking for a long wait moves to the fallback at once, and that
// backend is not retried later; a first-byte timeout is retried elsewhere when listed.
func TestRetryMovesOn(t *testing.T) {
	t.Run("long Retry-After", func(t *testing.T) {
		a := newFaultyUpstream(t, "429:120", "429:120")
		b := newFaultyUpstream(t, "500")
		gw := gatewaytest.Start(t, backendYAML("a", a.URL+"/v1", "")+backendYAML("b", b.URL+"/v1", "")+
			retryRoute("[{name: a}, {name: b, priority: 1}]", "  retry: {attempts: 4, retryOn: [5xx, 429], backoff: {base: 1ms, max: 1s}}"), nil, gateway.Options{})
		resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
		if resp.StatusCode != 200 || a.requests() != 1 || b.requests() != 2 {
			t.Fatalf("%d: a saw %d, b saw %d: %s", resp.StatusCode, a.requests(), b.requests(), body)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		for _, on := range []string{"timeout", "5xx"} {
			a := newFaultyUpstream(t, "hang")
			b := newFaultyUpstream(t)
			gw := gatewaytest.Start(t, backendYAML("a", a.URL+"/v1", "  timeouts: {firstByte: 50ms}")+backendYAML("b", b.URL+"/v1", "")+
				retryRoute("[{name: a}, {name: b, priority: 1}]", "  retry: {attempts: 2, retryOn: ["+on+"], backoff: {base: 1ms, max: 2ms}}"), nil, gateway.Options{})
			resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
			switch {
			case on == "timeout" && (resp.StatusCode != 200 || b.requests() != 1):
				t.Fatalf("on timeout: %d, b saw %d: %s", resp.StatusCode, b.requests(), body)
			case on == "5xx" && (resp.StatusCode != 504 || b.requests() != 0):
				t.Fatalf("timeout not listed: %d, b saw %d: %s", resp.StatusCode, b.requests(), body)
			}
		}
	})
}

// TestRetryDeadline: the route's request timeout bounds all attempts and waits.
func TestRetryDeadline(t *testing.T) {
	up := newFaultyUpstream(t, "500", "500", "500", "500", "500")
	gw := gatewaytest.Start(t, backendYAML("a", up.URL+"/v1", "")+retryRoute("[{name: a}]",
		"  timeouts: {request: 100ms}\n  retry: {attempts: 5, retryOn: [5xx], backoff: {base: 10s, max: 10s}}"), nil, gateway.Options{})
	resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
	// Full jitter may draw a short first wait, so a second attempt can fit in the 100ms;
	// the deadline must still end the request long before the five attempts are spent.
	if code, _ := errCode(t, body); resp.StatusCode != 504 || code != "request_timeout" || up.requests() >= 5 {
		t.Fatalf("%d %s (upstream saw %d)", resp.StatusCode, body, up.requests())
	}
}

// TestOutlierEjection: a Backend that keeps failing is skipped after a few failures (its
// fallback answers directly), and a route whose only Backend is ejected still tries it.
func TestOutlierEjection(t *testing.T) {
	a := newFaultyUpstream(t, "500", "500", "500", "500", "500", "500", "500", "500")
	b := newFaultyUpstream(t)
	gw := gatewaytest.Start(t, backendYAML("a", a.URL+"/v1", "  outlierDetection: {consecutiveFailures: 2, baseEjectionTime: 1h}")+
		backendYAML("b", b.URL+"/v1", "")+retryRoute("[{name: a}, {name: b, priority: 1}]", "")+`
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: only-a}
spec: {models: [solo], backendRefs: [{name: a}]}
`, nil, gateway.Options{})
	for i := range 5 {
		if resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if a.requests() != 2 || b.requests() != 5 {
		t.Fatalf("a saw %d (want 2, then ejected), b saw %d", a.requests(), b.requests())
	}
	gw.Log.Wait(t, "backend ejected", 1, 5*time.Second)
	// the only candidate of route only-a is ejected: it is tried anyway
	if resp, _ := postJSON(t, gw.URL(), "/chat/completions", chatBody("solo", "hi"), nil); resp.StatusCode != 500 || a.requests() != 3 {
		t.Fatalf("panic mode: %d, a saw %d", resp.StatusCode, a.requests())
	}
}

// TestTimeoutCodes: each timeout has its own code.
func TestTimeoutCodes(t *testing.T) {
	for _, c := range []struct {
		step, backend, route, code string
	}{
		{"hang", "  timeouts: {firstByte: 50ms}", "", "upstream_timeout"},
		{"silent-body", "", "  timeouts: {firstToken: 50ms}", "first_token_timeout"},
		{"silent-body", "  timeouts: {idle: 50ms}", "", "first_token_timeout"}, // idle bounds the first byte when firstToken is unset
		{"hang", "", "  timeouts: {request: 50ms}", "request_timeout"},
	} {
		up := newFaultyUpstream(t, c.step)
		gw := gatewaytest.Start(t, backendYAML("a", up.URL+"/v1", c.backend)+retryRoute("[{name: a}]", c.route), nil, gateway.Options{})
		resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
		if code, _ := errCode(t, body); resp.StatusCode != 504 || code != c.code {
			t.Errorf("%s %s%s: %d %s, want %s", c.step, c.backend, c.route, resp.StatusCode, body, c.code)
		}
	}
}

// TestBackendQueue: a full Backend lets maxQueuedRequests wait for a slot; one more is
// refused with 503 at once; the waiting one is served when the slot frees.
func TestBackendQueue(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`))
	}))
	t.Cleanup(up.Close)
	gw := gatewaytest.Start(t, backendYAML("a", up.URL+"/v1", "  maxConcurrentRequests: 1\n  maxQueuedRequests: 1\n  timeouts: {queue: 30s}")+retryRoute("[{name: a}]", ""), nil, gateway.Options{})
	results := make(chan int, 2)
	send := func() {
		resp, _ := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
		results <- resp.StatusCode
	}
	go send()
	<-arrived // the first holds the only slot
	go send()
	upstream := gw.Snapshot().Backends["Backend/default/a"].Upstream
	for upstream.Queued() != 1 {
		runtime.Gosched() // the second is waiting in the queue
	}
	if resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil); resp.StatusCode != 503 {
		t.Fatalf("with the queue full: %d %s", resp.StatusCode, body)
	}
	close(release)
	if a, b := <-results, <-results; a != 200 || b != 200 {
		t.Fatalf("queued requests: %d %d", a, b)
	}
}

// TestActiveHealthCheck: a Backend that fails its health check is taken out of routing
// until it passes again.
func TestActiveHealthCheck(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	var chats atomic.Int64
	ok := mock.NewHandler(v1alpha1.MockSpec{}, []string{"m"})
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/health" {
			if !healthy.Load() {
				w.WriteHeader(503)
			}
			return
		}
		chats.Add(1)
		ok.ServeHTTP(w, r)
	}))
	t.Cleanup(a.Close)
	b := newFaultyUpstream(t)
	gw := gatewaytest.Start(t, backendYAML("a", a.URL+"/v1", "  healthCheck: {path: /health, interval: 5ms, unhealthyThreshold: 1}")+
		backendYAML("b", b.URL+"/v1", "")+retryRoute("[{name: a}, {name: b, priority: 1}]", ""), nil, gateway.Options{})
	up := gw.Snapshot().Backends["Backend/default/a"].Upstream
	t.Cleanup(up.StopProbes)
	ask := func() {
		if resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	ask()
	if chats.Load() != 1 {
		t.Fatal("the healthy primary did not serve")
	}
	healthy.Store(false)
	for !up.Health.Status().Down {
		runtime.Gosched()
	}
	ask()
	if chats.Load() != 1 || b.requests() != 1 {
		t.Fatalf("a down Backend served: a %d, b %d", chats.Load(), b.requests())
	}
	healthy.Store(true)
	for up.Health.Status().Down {
		runtime.Gosched()
	}
	ask()
	if chats.Load() != 2 {
		t.Fatal("the recovered primary did not come back")
	}
}

// TestRetryAcrossSchemas: when an OpenAI-schema Backend resets the connection, the retry
// goes to the Anthropic-schema fallback (the next candidate before any second round): the
// request is translated and signed for it, and the client gets an OpenAI answer.
func TestRetryAcrossSchemas(t *testing.T) {
	a := newFaultyUpstream(t, "reset")
	fake := fakeanthropic.Start(t, fakeanthropic.Options{APIKey: "sk-ant-gateway", Models: []string{"claude-x"}})
	gw := gatewaytest.Start(t, backendYAML("a", a.URL+"/v1", "  outlierDetection: {disabled: true}")+`
apiVersion: v1
kind: Secret
metadata: {name: ant}
stringData: {apiKey: sk-ant-gateway}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: claude}
spec:
  schema: Anthropic
  url: `+fake.URL+`
  credentials: {apiKey: {secretRef: {name: ant}}}
---
`+retryRoute("[{name: a}, {name: claude, priority: 1, model: claude-x}]", "  retry: {attempts: 3, retryOn: [5xx, connect-failure], backoff: {base: 1ms, max: 2ms}}"), nil, gateway.Options{})
	resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"object":"chat.completion"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if a.requests() != 1 || len(fake.Requests()) != 1 || fake.Requests()[0].Header.Get("X-Api-Key") != "sk-ant-gateway" {
		t.Fatalf("openai saw %d, anthropic saw %d", a.requests(), len(fake.Requests()))
	}
	if got := lastAttempts(t, gw); got != 2 {
		t.Fatalf("attempts %v", got)
	}
}

// TestResetAfterFirstByte: a non-streamed answer cut off after its first bytes reached
// the gateway (but none the client) is retried on the next backend, and the client gets
// one whole answer; without a retry policy it is a 502, never a truncated body.
func TestResetAfterFirstByte(t *testing.T) {
	a := newFaultyUpstream(t, "partial")
	b := newFaultyUpstream(t)
	gw := gatewaytest.Start(t, backendYAML("a", a.URL+"/v1", "  outlierDetection: {disabled: true}")+backendYAML("b", b.URL+"/v1", "")+
		retryRoute("[{name: a}, {name: b, priority: 1}]", "  retry: {attempts: 2, retryOn: [connect-failure], backoff: {base: 1ms, max: 2ms}}"), nil, gateway.Options{})
	resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"object":"chat.completion"`) || a.requests() != 1 || b.requests() != 1 {
		t.Fatalf("%d %s (a %d, b %d)", resp.StatusCode, body, a.requests(), b.requests())
	}

	solo := newFaultyUpstream(t, "partial")
	gw = gatewaytest.Start(t, backendYAML("a", solo.URL+"/v1", "")+retryRoute("[{name: a}]", ""), nil, gateway.Options{})
	resp, body = postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
	if code, _ := errCode(t, body); resp.StatusCode != http.StatusBadGateway || code != "upstream_error" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestSlowDrip: an answer that trickles in is bounded by the idle timeout between reads
// and by the route's request timeout overall, each with its own code.
func TestSlowDrip(t *testing.T) {
	drip := func(gap time.Duration) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()    // headers now; the body trickles
			tick := time.NewTicker(gap) // the upstream's pace, not a synchronisation
			defer tick.Stop()
			for _, c := range []byte(`{"id":"1","object":"chat.completion","choices":[]}`) {
				select {
				case <-r.Context().Done():
					return
				case <-tick.C:
				}
				w.Write([]byte{c})
				w.(http.Flusher).Flush()
			}
		}))
		t.Cleanup(s.Close)
		return s
	}
	for _, c := range []struct {
		gap            time.Duration
		backend, route string
		code           string
	}{
		{40 * time.Millisecond, "  timeouts: {idle: 15ms}", "", "first_token_timeout"},
		{5 * time.Millisecond, "  timeouts: {idle: 1s}", "  timeouts: {request: 60ms}", "request_timeout"},
	} {
		up := drip(c.gap)
		gw := gatewaytest.Start(t, backendYAML("a", up.URL+"/v1", c.backend)+retryRoute("[{name: a}]", c.route), nil, gateway.Options{})
		resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
		if code, _ := errCode(t, body); resp.StatusCode != 504 || code != c.code {
			t.Errorf("gap %v: %d %s, want %s", c.gap, resp.StatusCode, body, c.code)
		}
	}
}
