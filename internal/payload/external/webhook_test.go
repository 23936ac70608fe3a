package external

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hookCall is what the test webhook received in one POST.
type hookCall struct {
	header http.Header
	body   map[string]any
	raw    string
}

type hookServer struct {
	*httptest.Server
	newConns atomic.Int32
	mu       sync.Mutex
	calls    []hookCall
}

// startHook runs a webhook answering each POST with answer (status, JSON text), counting new
// connections with ConnState.
func startHook(t *testing.T, answer func(call hookCall) (int, string)) *hookServer {
	t.Helper()
	hs := &hookServer{}
	hs.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		call := hookCall{header: r.Header.Clone(), raw: string(raw)}
		if err := json.Unmarshal(raw, &call.body); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		hs.mu.Lock()
		hs.calls = append(hs.calls, call)
		hs.mu.Unlock()
		status, text := answer(call)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, text)
	}))
	hs.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			hs.newConns.Add(1)
		}
	}
	hs.Start()
	t.Cleanup(hs.Close)
	return hs
}

func (hs *hookServer) all() []hookCall {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return slices.Clone(hs.calls)
}

func fixed(status int, text string) func(hookCall) (int, string) {
	return func(hookCall) (int, string) { return status, text }
}

func openHook(t *testing.T, url string, hdr http.Header) Session {
	t.Helper()
	c := newClient(t, Config{Protocol: "HTTP", Address: url, Header: hdr})
	sess, err := c.Open(timeout(t), testInfo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	return sess
}

func TestWebhookAllowAndContract(t *testing.T) {
	hs := startHook(t, fixed(200, `{"action":"allow","reason":"fine"}`))
	sess := openHook(t, hs.URL+"/hook", http.Header{"Authorization": {"Bearer processor-token"}})
	ctx := timeout(t)

	// Headers phases make no call.
	if res, err := sess.RequestHeaders(ctx, clientHeaders(), "POST", "/v1/chat/completions"); err != nil || res.SetHeaders != nil {
		t.Fatalf("request headers: %+v, %v", res, err)
	}
	if n := len(hs.all()); n != 0 {
		t.Fatalf("headers phase made %d calls", n)
	}
	res, err := sess.RequestBody(ctx, []byte(`{"model":"gpt-x","messages":[{"role":"user","content":"<hi> & bye"}]}`))
	if err != nil || res.Body != nil || res.Immediate != nil || res.SetHeaders != nil {
		t.Fatalf("allow: %+v, %v", res, err)
	}
	if _, err := sess.ResponseHeaders(ctx, 200, http.Header{"Content-Type": {"text/event-stream"}, "Set-Cookie": {"s=user-secret-7"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.ResponseBody(ctx, []byte("data: {\"x\":1}\n\n"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.ResponseBody(ctx, []byte(`{"choices":[]}`), true); err != nil {
		t.Fatal(err)
	}

	calls := hs.all()
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	for i, c := range calls {
		if strings.Contains(c.raw, "user-secret") {
			t.Fatalf("call %d carries a client credential: %s", i, c.raw)
		}
		if c.header.Get("Authorization") != "Bearer processor-token" || c.header.Get("Content-Type") != "application/json" {
			t.Fatalf("call %d headers = %v", i, c.header)
		}
	}
	req := calls[0].body
	want := map[string]any{
		"version": "v1", "phase": "request", "requestId": "req-1",
		"principal": map[string]any{"subject": "alice", "team": "research"},
		"model":     "gpt-x", "endpoint": "chat", "route": "default", "end": true,
	}
	for k, v := range want {
		if got, _ := json.Marshal(req[k]); string(got) != mustJSON(v) {
			t.Fatalf("request field %s = %s, want %s", k, got, mustJSON(v))
		}
	}
	if _, ok := req["status"]; ok {
		t.Fatal("request phase carries a status")
	}
	if _, ok := req["bodyText"]; ok {
		t.Fatal("JSON body also sent as bodyText")
	}
	// The body travels as JSON, untouched (no HTML escaping).
	if !strings.Contains(calls[0].raw, `"body":{"model":"gpt-x","messages":[{"role":"user","content":"<hi> & bye"}]}`) {
		t.Fatalf("body not embedded as JSON: %s", calls[0].raw)
	}
	hdrs := req["headers"].(map[string]any)
	if hdrs["content-type"] != "application/json" || hdrs["x-multi"] != "a, b" || len(hdrs) != 3 {
		t.Fatalf("request headers = %v", hdrs) // content-type, x-remove-me, x-multi
	}
	chunk := calls[1].body
	if chunk["phase"] != "response" || chunk["status"] != float64(200) || chunk["end"] != false ||
		chunk["bodyText"] != "data: {\"x\":1}\n\n" || chunk["body"] != nil {
		t.Fatalf("chunk call = %s", calls[1].raw)
	}
	if h := chunk["headers"].(map[string]any); len(h) != 1 || h["content-type"] != "text/event-stream" {
		t.Fatalf("response headers = %v", h)
	}
	if last := calls[2].body; last["end"] != true || last["body"] == nil {
		t.Fatalf("last call = %s", calls[2].raw)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestWebhookBlock(t *testing.T) {
	ctx := timeout(t)
	for _, tc := range []struct {
		name, answer string
		want         Immediate
	}{
		{"default", `{"action":"block","reason":"pii found"}`, Immediate{Status: 403, Details: "pii found"}},
		{"json body", `{"action":"block","status":451,"body":{"error":"no"},"setHeaders":{"x-why":"policy"}}`,
			Immediate{Status: 451, Body: []byte(`{"error":"no"}`), Header: [][2]string{{"X-Why", "policy"}, {"Content-Type", "application/json"}}}},
		{"text body", `{"action":"block","status":429,"bodyText":"slow down"}`,
			Immediate{Status: 429, Body: []byte("slow down"), Header: [][2]string{{"Content-Type", "text/plain; charset=utf-8"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := startHook(t, fixed(200, tc.answer))
			res, err := openHook(t, hs.URL, nil).RequestBody(ctx, []byte(`{"q":1}`))
			if err != nil {
				t.Fatal(err)
			}
			got := res.Immediate
			if got == nil || got.Status != tc.want.Status || got.Details != tc.want.Details ||
				string(got.Body) != string(tc.want.Body) || (got.Body == nil) != (tc.want.Body == nil) || !slices.Equal(got.Header, tc.want.Header) {
				t.Fatalf("immediate = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWebhookModify(t *testing.T) {
	ctx := timeout(t)
	hs := startHook(t, func(c hookCall) (int, string) {
		if c.body["phase"] == "request" {
			return 200, `{"action":"modify","setHeaders":{"x-a":"b","x-both":"set"},"removeHeaders":["x-c","x-both"],"body":{"messages":[{"content":"[redacted]"}]}}`
		}
		if c.body["end"] == true {
			return 200, `{"action":"modify","bodyText":""}`
		}
		return 200, `{"action":"modify","bodyText":"data: REWRITTEN\n\n"}`
	})
	sess := openHook(t, hs.URL, nil)
	res, err := sess.RequestBody(ctx, []byte(`{"messages":[{"content":"my ssn"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"messages":[{"content":"[redacted]"}]}` ||
		!slices.Equal(res.SetHeaders, [][2]string{{"X-A", "b"}, {"X-Both", "set"}}) || !slices.Equal(res.RemoveHeaders, []string{"X-C"}) {
		t.Fatalf("modify = %+v", res)
	}
	res, err = sess.ResponseBody(ctx, []byte("data: original\n\n"), false)
	if err != nil || string(res.Body) != "data: REWRITTEN\n\n" {
		t.Fatalf("chunk modify = %q, %v", res.Body, err)
	}
	res, err = sess.ResponseBody(ctx, []byte("data: [DONE]\n\n"), true)
	if err != nil || res.Body == nil || len(res.Body) != 0 {
		t.Fatalf("clearing modify = %#v, %v", res.Body, err)
	}
}

func TestWebhookErrors(t *testing.T) {
	ctx := timeout(t)
	for _, tc := range []struct {
		name     string
		status   int
		answer   string
		protocol bool // errors.Is(err, ErrProtocol)
	}{
		{"non-2xx", 500, `{"action":"allow","secret":"server-detail"}`, false},
		{"redirect", 302, ``, false},
		{"invalid json", 200, `{"action":"allow"`, true},
		{"not an object", 200, `["allow"]`, true},
		{"unknown action", 200, `{"action":"maybe"}`, true},
		{"missing action", 200, `{}`, true},
		{"body and bodyText", 200, `{"action":"modify","body":{},"bodyText":"x"}`, true},
		{"bad header", 200, `{"action":"modify","setHeaders":{"x-a":"line\nbreak"}}`, true},
		{"bad status", 200, `{"action":"block","status":99}`, true},
		{"too large", 200, `{"action":"allow","pad":"` + strings.Repeat("x", 1<<20) + `"}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := startHook(t, fixed(tc.status, tc.answer))
			_, err := openHook(t, hs.URL, nil).RequestBody(ctx, []byte(`{"secret-body":"user-secret"}`))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.protocol != errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v, ErrProtocol want %v", err, tc.protocol)
			}
			if msg := err.Error(); strings.Contains(msg, "user-secret") || strings.Contains(msg, "server-detail") || strings.Contains(msg, hs.URL) {
				t.Fatalf("error message leaks: %v", msg)
			}
		})
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client going away
		select {                           // never answers in time
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hs.Close()
	defer close(release) // before hs.Close, which waits for the handler
	sess := openHook(t, hs.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sess.RequestBody(ctx, []byte("x"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("returned after %v, deadline was 50ms", d)
	}
}

// TestWebhookConnectionReuse: many sessions, sequential and concurrent, share few connections.
func TestWebhookConnectionReuse(t *testing.T) {
	hs := startHook(t, fixed(200, `{"action":"allow"}`))
	c := newClient(t, Config{Protocol: "HTTP", Address: hs.URL})
	ctx := timeout(t)
	run := func() error {
		sess, err := c.Open(ctx, testInfo)
		if err != nil {
			return err
		}
		defer sess.Close()
		if _, err := sess.RequestBody(ctx, []byte(`{"a":1}`)); err != nil {
			return err
		}
		_, err = sess.ResponseBody(ctx, []byte(`{"b":2}`), true)
		return err
	}
	for i := 0; i < 50; i++ {
		if err := run(); err != nil {
			t.Fatal(err)
		}
	}
	if n := hs.newConns.Load(); n != 1 {
		t.Fatalf("50 sequential sessions opened %d connections, want 1", n)
	}
	const workers = 8
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				if err := run(); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	// A dial may race a connection coming back to the pool, so allow some slack: the point is
	// 450 calls over a handful of connections, not one each.
	if n := hs.newConns.Load(); n > 2*workers {
		t.Fatalf("%d concurrent workers opened %d connections in all", workers, n)
	}
	if n := len(hs.all()); n != 2*(50+workers*25) {
		t.Fatalf("%d calls", n)
	}
}

func TestWebhookTLS(t *testing.T) {
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"action":"modify","setHeaders":{"x-tls":"1"}}`)
	}))
	defer hs.Close()
	roots := x509.NewCertPool()
	roots.AddCert(hs.Certificate())
	ctx := timeout(t)

	c := newClient(t, Config{Protocol: "HTTP", Address: hs.URL, TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10}})
	if tr := c.(*webhookClient).transport; tr.TLSClientConfig.MinVersion != tls.VersionTLS12 || tr.MaxIdleConnsPerHost < 32 {
		t.Fatalf("transport: min TLS %x, idle per host %d", tr.TLSClientConfig.MinVersion, tr.MaxIdleConnsPerHost)
	}
	sess, err := c.Open(ctx, Info{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := sess.RequestBody(ctx, nil); err != nil || len(res.SetHeaders) != 1 {
		t.Fatalf("over TLS: %+v, %v", res, err)
	}
	// Without the test CA (system roots only) the certificate is refused.
	plain := newClient(t, Config{Protocol: "HTTP", Address: hs.URL})
	sess, err = plain.Open(ctx, Info{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.RequestBody(ctx, nil); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}
