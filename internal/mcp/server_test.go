package mcp_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/mcp"
)

// seen is what the fake server received.
type seen struct {
	method, session, protocol, accept, contentType, requestID, body string
}

// fakeServer answers with fn and records each request.
func fakeServer(t *testing.T, fn func(w http.ResponseWriter, r *http.Request, body []byte)) (*mcp.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.Header.Get(mcp.HeaderSession), r.Header.Get(mcp.HeaderProtocol), r.Header.Get("Accept"), r.Header.Get("Content-Type"), r.Header.Get("X-Request-Id"), string(b)})
		mu.Unlock()
		fn(w, r, b)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	s := &mcp.Server{Ref: "Backend/default/fake", Name: "fake", Prefix: "f_", URL: srv.URL + "/mcp", Upstream: egress.NewUpstream(egress.Options{BaseURL: u})}
	return s, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func writeSSE(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, e := range events {
		io.WriteString(w, e)
		w.(http.Flusher).Flush()
	}
}

func TestServerCallJSON(t *testing.T) {
	s, requests := fakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		m, err := mcp.Parse(body)
		if err != nil {
			writeJSON(w, 400, `bad`)
			return
		}
		w.Header().Set(mcp.HeaderSession, "server-session-1")
		writeJSON(w, 200, string(mcp.Result(m.ID, json.RawMessage(`{"tools":[{"name":"echo"}]}`))))
	})
	ss := &mcp.ServerSession{Backend: s.Ref, ID: "sid-7", Protocol: "2025-06-18"}
	m, resp, err := s.Call(t.Context(), ss, json.RawMessage(`"req-1"`), "tools/list", json.RawMessage(`{"cursor":"c"}`), "rid-9")
	if err != nil {
		t.Fatal(err)
	}
	if !m.IsResponse() || string(m.ID) != `"req-1"` || string(m.Result) != `{"tools":[{"name":"echo"}]}` || m.Error != nil {
		t.Errorf("Call = %+v", m)
	}
	if resp.Header.Get(mcp.HeaderSession) != "server-session-1" {
		t.Errorf("response header %v", resp.Header)
	}
	got := requests()
	if len(got) != 1 {
		t.Fatalf("requests: %+v", got)
	}
	want := seen{"POST", "sid-7", "2025-06-18", "application/json, text/event-stream", "application/json", "rid-9",
		`{"jsonrpc":"2.0","id":"req-1","method":"tools/list","params":{"cursor":"c"}}`}
	if got[0] != want {
		t.Errorf("server saw %+v, want %+v", got[0], want)
	}

	// Without a session (initialize) no session headers are sent, and no params member.
	if _, _, err := s.Call(t.Context(), nil, json.RawMessage(`1`), "initialize", nil, ""); err != nil {
		t.Fatal(err)
	}
	if got := requests()[1]; got.session != "" || got.protocol != "" || got.requestID != "" || got.body != `{"jsonrpc":"2.0","id":1,"method":"initialize"}` {
		t.Errorf("initialize: server saw %+v", got)
	}
}

func TestServerCallSSE(t *testing.T) {
	s, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeSSE(w,
			": a comment\n\n",
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n",
			"id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"sampling/createMessage\",\"params\":{}}\n\n",
			"data:\n\n",
			"data: {\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"other\":true}}\n\n",
			"event: message\ndata: {\"jsonrpc\":\"2.0\",\n",
			"data:  \"id\":7,\"result\":{\"ok\":true}}\n\n",
			"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/after\"}\n\n",
		)
	})
	m, _, err := s.Call(t.Context(), &mcp.ServerSession{}, json.RawMessage(`7`), "tools/call", json.RawMessage(`{"name":"x"}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if string(m.ID) != `7` || string(m.Result) != `{"ok":true}` || m.Params != nil || m.Method != "" {
		t.Errorf("Call skipped to %+v", m)
	}

	// The stream ends without the response.
	s2, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeSSE(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n")
	})
	if m, _, err := s2.Call(t.Context(), nil, json.RawMessage(`7`), "ping", nil, ""); err == nil {
		t.Errorf("a stream without the response: %+v", m)
	}
	// An invalid message in the stream fails the call.
	s3, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeSSE(w, "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"Result\":1}\n\n")
	})
	if m, _, err := s3.Call(t.Context(), nil, json.RawMessage(`7`), "ping", nil, ""); err == nil {
		t.Errorf("an invalid message: %+v", m)
	}
	// A JSON answer to another id is no answer.
	s4, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		writeJSON(w, 200, `{"jsonrpc":"2.0","id":"7","result":{}}`)
	})
	if m, _, err := s4.Call(t.Context(), nil, json.RawMessage(`7`), "ping", nil, ""); err == nil {
		t.Errorf("a response to another id: %+v", m)
	}
}

func TestServerDoErrors(t *testing.T) {
	s, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch r.Header.Get("X-Request-Id") {
		case "404":
			writeJSON(w, 404, `{"error":"session not found"}`)
		case "405":
			writeJSON(w, 405, "  method not allowed\n")
		case "500":
			writeJSON(w, 500, strings.Repeat("x", 2000))
		case "302":
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(302)
		}
	})
	ss := &mcp.ServerSession{ID: "gone"}
	if _, err := s.Do(t.Context(), http.MethodPost, ss, []byte(`{}`), "404"); err != mcp.ErrSessionGone {
		t.Errorf("404 in a session: %v", err)
	}
	if _, _, err := s.Call(t.Context(), ss, json.RawMessage(`1`), "ping", nil, "404"); err != mcp.ErrSessionGone {
		t.Errorf("Call, 404 in a session: %v", err)
	}
	for _, tc := range []struct {
		ss     *mcp.ServerSession
		rid    string
		status int
		body   string
	}{
		{nil, "404", 404, `{"error":"session not found"}`},
		{&mcp.ServerSession{}, "404", 404, `{"error":"session not found"}`}, // a stateless server's 404 is not a lost session
		{ss, "405", 405, "method not allowed"},
		{ss, "500", 500, strings.Repeat("x", 512)},
		{ss, "302", 302, ""},
	} {
		resp, err := s.Do(t.Context(), http.MethodGet, tc.ss, nil, tc.rid)
		var se *mcp.StatusError
		if !errors.As(err, &se) || se.Status != tc.status || se.Body != tc.body {
			t.Errorf("%s: %v, %v", tc.rid, resp, err)
			continue
		}
		if !strings.Contains(se.Error(), "HTTP "+tc.rid) {
			t.Errorf("%s: message %q", tc.rid, se.Error())
		}
	}
	// A server that cannot be reached.
	dead := &mcp.Server{URL: "http://127.0.0.1:1/mcp", Upstream: s.Upstream}
	if _, err := dead.Do(t.Context(), http.MethodPost, nil, []byte(`{}`), ""); err == nil {
		t.Error("an unreachable server: no error")
	}
	bad := &mcp.Server{URL: "://nope", Upstream: s.Upstream}
	if _, err := bad.Do(t.Context(), http.MethodPost, nil, []byte(`{}`), ""); err == nil {
		t.Error("a bad URL: no error")
	}
}

func TestServerReader(t *testing.T) {
	s, requests := fakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch r.Header.Get("X-Request-Id") {
		case "202":
			w.WriteHeader(http.StatusAccepted)
		case "blank":
			writeJSON(w, 200, " \r\n\t")
		case "json":
			writeJSON(w, 200, `{"jsonrpc":"2.0","id":1,"result":{}}`)
		case "sse":
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			io.WriteString(w, "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n")
		}
	})
	// next reads the whole answer; streaming is Streaming() before Close.
	next := func(rid string) (streaming bool, out []string, err error) {
		t.Helper()
		resp, err := s.Do(t.Context(), http.MethodPost, nil, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), rid)
		if err != nil {
			t.Fatal(err)
		}
		rd := mcp.NewReader(resp)
		defer rd.Close()
		for {
			b, err := rd.Next()
			if err != nil {
				return rd.Streaming(), out, err
			}
			out = append(out, string(b))
		}
	}
	for _, rid := range []string{"202", "blank"} {
		streaming, out, err := next(rid)
		if err != io.EOF || len(out) != 0 || streaming {
			t.Errorf("%s: %q, %v", rid, out, err)
		}
	}
	streaming, out, err := next("json")
	if err != io.EOF || len(out) != 1 || out[0] != `{"jsonrpc":"2.0","id":1,"result":{}}` || streaming {
		t.Errorf("json: %q, %v", out, err)
	}
	streaming, out, err = next("sse")
	if err != io.EOF || len(out) != 2 || out[0] != `{"a":1}` || out[1] != `{"b":2}` || !streaming {
		t.Errorf("sse: %q, %v, streaming %v", out, err, streaming)
	}
	if got := requests()[0]; got.contentType != "application/json" || got.accept != "application/json, text/event-stream" {
		t.Errorf("POST headers: %+v", got)
	}

	// Notify drains a 202.
	if err := s.Notify(t.Context(), &mcp.ServerSession{ID: "x"}, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), "202"); err != nil {
		t.Errorf("Notify: %v", err)
	}
	// GET asks for a stream and sends no body; DELETE neither.
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		resp, err := s.Do(t.Context(), method, &mcp.ServerSession{ID: "x"}, nil, "202")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	got := requests()
	get, del := got[len(got)-2], got[len(got)-1]
	if get.method != "GET" || get.accept != "text/event-stream" || get.contentType != "" || get.body != "" || get.session != "x" {
		t.Errorf("GET: %+v", get)
	}
	if del.method != "DELETE" || del.accept != "" || del.body != "" || del.session != "x" {
		t.Errorf("DELETE: %+v", del)
	}
}

func TestServerReaderTooLarge(t *testing.T) {
	s, _ := fakeServer(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		chunk := strings.Repeat(" ", 1<<20)
		for range mcp.MaxMessageBytes>>20 + 1 {
			io.WriteString(w, chunk)
		}
	})
	resp, err := s.Do(t.Context(), http.MethodPost, nil, []byte(`{}`), "")
	if err != nil {
		t.Fatal(err)
	}
	rd := mcp.NewReader(resp)
	defer rd.Close()
	if b, err := rd.Next(); err == nil || err == io.EOF {
		t.Errorf("a message over MaxMessageBytes: %d bytes, %v", len(b), err)
	}
}
