package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// upstream is what the fake provider expects and answers.
type upstream struct {
	path, version string // version "" means the header must be absent
	body          []byte // the JSON expected (compared as values, or byte for byte if exact)
	exact         bool
	status        int
	header        http.Header
	reply         []byte
}

func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// roundTrip sends ex through the adapter to a fake upstream with http.DefaultClient.
func roundTrip(t *testing.T, a *Adapter, ex *exchange.Exchange, up upstream) *http.Response {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost || r.URL.Path != up.path:
			t.Errorf("%s %s, want POST %s", r.Method, r.URL.Path, up.path)
		case r.Header.Get("Anthropic-Version") != up.version:
			t.Errorf("anthropic-version %q, want %q", r.Header.Get("Anthropic-Version"), up.version)
		case r.Header.Get("Content-Type") != "application/json":
			t.Errorf("content-type %q", r.Header.Get("Content-Type"))
		case r.Header.Get("X-Api-Key") != "" || r.Header.Get("Authorization") != "":
			t.Error("the adapter set or forwarded a credential")
		case up.exact && !bytes.Equal(got, up.body), !sameJSON(got, up.body):
			t.Errorf("body\n%s\nwant\n%s", got, up.body)
		}
		for k, v := range up.header {
			w.Header()[k] = v
		}
		w.WriteHeader(up.status)
		w.Write(up.reply)
	}))
	t.Cleanup(srv.Close)
	req, err := a.NewRequest(context.Background(), ex, base(t, srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func complete(t *testing.T, a *Adapter, ex *exchange.Exchange, resp *http.Response) provider.Answer {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	ans, err := a.Complete(ex, resp.StatusCode, resp.Header, body)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}
var sseHeader = http.Header{"Content-Type": {"text/event-stream"}}

func TestWireChatComplete(t *testing.T) {
	a := New(Options{})
	ex := chatEx(fixture(t, "chat_tools.json"))
	ex.Header.Set("Authorization", "Bearer sk-client")
	resp := roundTrip(t, a, ex, upstream{
		path: "/v1/messages", version: "2023-06-01", body: fixture(t, "chat_tools.messages.golden.json"),
		status: 200, header: jsonHeader, reply: fixture(t, "msg_tool.json"),
	})
	ans := complete(t, a, ex, resp)
	var r chat.Response
	if err := json.Unmarshal(ans.Body, &r); err != nil || len(r.Choices) != 1 || len(r.Choices[0].Message.ToolCalls) != 2 || r.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("%s", ans.Body)
	}
	if ex.Usage.InputTokens != 412 || ex.Usage.OutputTokens != 93 {
		t.Errorf("usage %+v", ex.Usage)
	}
}

func TestWireChatStream(t *testing.T) {
	a := New(Options{})
	body := bytes.Replace(fixture(t, "chat_multiturn.json"), []byte(`"stream": true`), []byte(`"stream":true`), 1)
	ex := chatEx(body)
	ex.Stream, ex.IncludeUsage = true, true
	resp := roundTrip(t, a, ex, upstream{
		path: "/v1/messages", version: "2023-06-01", body: fixture(t, "chat_multiturn.messages.golden.json"),
		status: 200, header: sseHeader, reply: fixture(t, "stream_text.sse"),
	})
	got, err := drain(t, a.Stream(ex, resp.Header, resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fixture(t, "stream_text.chat.golden.sse")) {
		t.Errorf("stream:\n%s", got)
	}
}

func TestWireVertexNativeStream(t *testing.T) {
	a := New(Options{Version: "2099-01-01", Vertex: &VertexOptions{Project: "proj-1", Location: "europe-west1"}})
	ex := messagesEx(`{"model":"claude-sonnet-4","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hello"}]}`)
	ex.Stream = true
	ex.Header.Set("Anthropic-Version", "2023-06-01")
	ex.Header.Set("Anthropic-Beta", "interleaved-thinking-2025-05-14")
	resp := roundTrip(t, a, ex, upstream{
		path:    "/v1/projects/proj-1/locations/europe-west1/publishers/anthropic/models/claude-sonnet-4-20250514:streamRawPredict",
		version: "", exact: true,
		body:   []byte(`{"anthropic_version":"vertex-2023-10-16","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hello"}]}`),
		status: 200, header: sseHeader, reply: fixture(t, "stream_tool.sse"),
	})
	got, err := drain(t, a.Stream(ex, resp.Header, resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fixture(t, "stream_tool.sse")) {
		t.Errorf("pass-through changed the stream:\n%s", got)
	}
	if ex.Usage.InputTokens != 502 || ex.Usage.OutputTokens != 89 || ex.Usage.CacheCreationTokens != 30 {
		t.Errorf("usage %+v", ex.Usage)
	}
}

func TestWireNativeComplete(t *testing.T) {
	a := New(Options{})
	in := `{"model":"alias", "max_tokens":1024, "messages":[{"role":"user","content":"Hello, Claude"}]}`
	ex := messagesEx(in)
	ex.Header.Set("X-Api-Key", "sk-ant-client")
	resp := roundTrip(t, a, ex, upstream{
		path: "/v1/messages", version: "2023-06-01", exact: true,
		body:   []byte(`{"model":"claude-sonnet-4-20250514", "max_tokens":1024, "messages":[{"role":"user","content":"Hello, Claude"}]}`),
		status: 200, header: jsonHeader, reply: fixture(t, "msg_text.json"),
	})
	ans := complete(t, a, ex, resp)
	if !bytes.Equal(ans.Body, fixture(t, "msg_text.json")) {
		t.Errorf("answer changed: %s", ans.Body)
	}
}

func TestWireCountTokens(t *testing.T) {
	a := New(Options{})
	ex := messagesEx(`{"model":"alias","messages":[{"role":"user","content":"Hello"}]}`)
	ex.Endpoint = exchange.EndpointCountTokens
	resp := roundTrip(t, a, ex, upstream{
		path: "/v1/messages/count_tokens", version: "2023-06-01",
		body:   []byte(`{"model":"claude-sonnet-4-20250514","messages":[{"role":"user","content":"Hello"}]}`),
		status: 200, header: jsonHeader, reply: []byte(`{"input_tokens":14}`),
	})
	if ans := complete(t, a, ex, resp); string(ans.Body) != `{"input_tokens":14}` {
		t.Errorf("%s", ans.Body)
	}
}

func TestWireRateLimited(t *testing.T) {
	a := New(Options{})
	ex := chatEx([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
	resp := roundTrip(t, a, ex, upstream{
		path: "/v1/messages", version: "2023-06-01",
		body:   []byte(`{"model":"claude-sonnet-4-20250514","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`),
		status: 429, header: http.Header{"Retry-After": {"30"}, "Content-Type": {"application/json"}},
		reply: []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed your organization's rate limit."}}`),
	})
	ans := complete(t, a, ex, resp)
	if ans.Status != 429 || ans.Header.Get("Retry-After") != "30" || !bytes.Contains(ans.Body, []byte(`"code":"rate_limit_exceeded"`)) {
		t.Errorf("%d %v %s", ans.Status, ans.Header, ans.Body)
	}
}
