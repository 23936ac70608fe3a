package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    string  `json:"code"`
		Param   *string `json:"param"`
	} `json:"error"`
}

func post(t *testing.T, url, body string) (*http.Response, apiError) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e apiError
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("status %d with a body that is not error JSON: %q", resp.StatusCode, raw)
		}
	}
	return resp, e
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func backendYAML(name, url string, extra string) string {
	return fmt.Sprintf(`
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: %s}
spec:
  schema: OpenAI
  url: %s
%s
---
`, name, url, extra)
}

func TestClientErrors(t *testing.T) {
	up := newRecordingUpstream(t, "gpt-4o-mini")
	gw := gatewaytest.Start(t, openAIBackend, map[string]string{"UPSTREAM": up.URL}, gateway.Options{MaxRequestBytes: 1024})
	chat := gw.URL() + "/chat/completions"
	cases := []struct {
		name, url, body string
		status          int
		code, param     string
	}{
		{"malformed json", chat, `{"model":`, 400, "invalid_request_error", ""},
		{"not an object", chat, `["model"]`, 400, "invalid_request_error", ""},
		{"missing model", chat, `{"messages":[]}`, 400, "invalid_request_error", "model"},
		{"model not a string", chat, `{"model":4,"messages":[]}`, 400, "invalid_request_error", "model"},
		{"missing messages", chat, `{"model":"gpt-4o-mini"}`, 400, "invalid_request_error", "messages"},
		{"stream not a bool", chat, `{"model":"gpt-4o-mini","messages":[],"stream":"yes"}`, 400, "invalid_request_error", "stream"},
		{"duplicate model", chat, `{"model":"gpt-4o-mini","messages":[],"model":"other"}`, 400, "invalid_request_error", "model"},
		{"escaped duplicate model", chat, `{"model":"gpt-4o-mini","messages":[],"mod\u0065l":"other"}`, 400, "invalid_request_error", "model"},
		{"missing prompt", gw.URL() + "/completions", `{"model":"gpt-4o-mini"}`, 400, "invalid_request_error", "prompt"},
		{"missing input", gw.URL() + "/embeddings", `{"model":"gpt-4o-mini"}`, 400, "invalid_request_error", "input"},
		{"unknown model", chat, `{"model":"gpt-5-ultra","messages":[]}`, 404, "model_not_found", "model"},
		{"too large", chat, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`, 413, "request_too_large", ""},
		{"unknown path", gw.URL() + "/nope", `{}`, 404, "not_found", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, e := post(t, c.url, c.body)
			if resp.StatusCode != c.status || e.Error.Code != c.code {
				t.Fatalf("got %d %q, want %d %q (%s)", resp.StatusCode, e.Error.Code, c.status, c.code, e.Error.Message)
			}
			if c.param != "" && (e.Error.Param == nil || *e.Error.Param != c.param) {
				t.Fatalf("param %v, want %q", e.Error.Param, c.param)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
		})
	}
	// A chunked body over the limit (no Content-Length) is refused too.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"`))
		for range 100 {
			pw.Write([]byte(strings.Repeat("y", 100)))
		}
		pw.Close()
	}()
	resp, err := http.Post(chat, "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked oversize: %d", resp.StatusCode)
	}
	// Method not allowed.
	resp, err = http.Get(chat)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET chat: %d", resp.StatusCode)
	}
}

func TestRequestIDEchoed(t *testing.T) {
	up := newRecordingUpstream(t, "gpt-4o-mini")
	gw := gatewaytest.Start(t, openAIBackend, map[string]string{"UPSTREAM": up.URL}, gateway.Options{})
	req, _ := http.NewRequest("POST", gw.URL()+"/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("X-Request-Id", "client-chosen-id-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "client-chosen-id-1" {
		t.Fatalf("X-Request-Id %q", got)
	}
	if _, h := up.last(); h.Get("X-Request-Id") != "client-chosen-id-1" {
		t.Fatalf("upstream saw X-Request-Id %q", h.Get("X-Request-Id"))
	}
	// An unsafe id is replaced, not echoed.
	req, _ = http.NewRequest("POST", gw.URL()+"/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("X-Request-Id", "bad id\twith spaces")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Fatalf("X-Request-Id %q", got)
	}
}

func routeYAML(models string, refs string) string {
	return fmt.Sprintf(`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r}
spec:
  models: [%s]
  backendRefs: %s
`, models, refs)
}

func TestUpstreamFailures(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices when the gateway gives up
		<-r.Context().Done()        // never answers
	}))
	defer hang.Close()
	throttled := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(429)
		w.Write([]byte(`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`))
	}))
	defer throttled.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(503)
		w.Write([]byte(`{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}`))
	}))
	defer broken.Close()
	good := newRecordingUpstream(t, "m")

	yaml := backendYAML("refused", "http://"+closedAddr(t)+"/v1", "") +
		backendYAML("hang", hang.URL+"/v1", "  timeouts: {firstByte: 150ms}") +
		backendYAML("throttled", throttled.URL+"/v1", "") +
		backendYAML("broken", broken.URL+"/v1", "") +
		backendYAML("good", good.URL+"/v1", "") + `
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: refused}
spec: {models: [refused], backendRefs: [{name: refused}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: hang}
spec: {models: [hang], backendRefs: [{name: hang}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: throttled}
spec: {models: [throttled], backendRefs: [{name: throttled}, {name: good, priority: 1}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: broken}
spec: {models: [broken], backendRefs: [{name: broken}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: fallback-5xx}
spec: {models: [fallback-5xx], backendRefs: [{name: broken}, {name: good, priority: 1, model: m}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: fallback-refused}
spec: {models: [fallback-refused], backendRefs: [{name: refused}, {name: good, priority: 1, model: m}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: same-tier}
spec: {models: [same-tier], backendRefs: [{name: refused}, {name: good, model: m}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: route-timeout}
spec: {models: [route-timeout], backendRefs: [{name: hang}], timeouts: {request: 100ms}}
`
	gw := gatewaytest.Start(t, yaml, nil, gateway.Options{})
	chat := gw.URL() + "/chat/completions"
	body := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
	}
	for _, c := range []struct {
		model  string
		status int
		code   string
	}{
		{"refused", 502, "upstream_unavailable"},
		{"hang", 504, "upstream_timeout"},
		{"route-timeout", 504, "request_timeout"},
		{"throttled", 429, "rate_limit_exceeded"}, // a 4xx is the answer: no fallback
		{"broken", 503, ""},                       // passed through with its status
	} {
		resp, e := post(t, chat, body(c.model))
		if resp.StatusCode != c.status || e.Error.Code != c.code {
			t.Errorf("%s: got %d %q, want %d %q", c.model, resp.StatusCode, e.Error.Code, c.status, c.code)
		}
		if c.model == "throttled" && resp.Header.Get("Retry-After") != "7" {
			t.Errorf("throttled: Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	for _, model := range []string{"fallback-5xx", "fallback-refused", "same-tier", "same-tier", "same-tier"} {
		resp, _ := post(t, chat, body(model))
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d, want 200 from the fallback", model, resp.StatusCode)
		}
		upBody, _ := good.last()
		if !strings.Contains(string(upBody), `"model":"m"`) {
			t.Errorf("%s: fallback got body %s", model, upBody)
		}
	}
	recs := gw.Log.Records("request")
	for _, r := range recs {
		if r["model"] == "throttled" && r["code"] != "rate_limit_exceeded" {
			t.Errorf("access log code of the throttled answer: %v", r["code"])
		}
	}
	var sawAttempts bool
	for _, r := range recs {
		if r["model"] == "fallback-5xx" && r["attempts"].(float64) == 2 && r["backend"] == "Backend/default/good" {
			sawAttempts = true
		}
	}
	if !sawAttempts {
		t.Errorf("no access log of the fallback's two attempts: %v", recs)
	}
}

// TestPanicIsolated: a panic while serving one request answers 500 to that request only.
func TestPanicIsolated(t *testing.T) {
	up := newRecordingUpstream(t, "gpt-4o-mini")
	snap := gatewaytest.Build(t, openAIBackend, map[string]string{"UPSTREAM": up.URL})
	for _, b := range snap.Backends {
		b.Adapter = panicky{b.Adapter}
	}
	gw := gateway.New(gateway.Options{})
	gw.Swap(snap)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	resp, e := post(t, srv.URL+"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"panic please"}]}`)
	if resp.StatusCode != 500 || e.Error.Code != "internal_error" {
		t.Fatalf("got %d %q", resp.StatusCode, e.Error.Code)
	}
	resp, _ = post(t, srv.URL+"/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"fine"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("after a panic: %d", resp.StatusCode)
	}
}

func jsonDecode(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
