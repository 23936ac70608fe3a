package bedrock

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/golden"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

// seen is what the fake Bedrock received.
type seen struct {
	method, uri string
	header      http.Header
	body        []byte
}

// fakeBedrock answers every request with status, header and body, and reports what it
// received on the returned channel.
func fakeBedrock(t *testing.T, status int, header http.Header, body []byte) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.RequestURI, r.Header.Clone(), b}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// roundTrip sends ex through the adapter to srv and returns the upstream response.
func roundTrip(t *testing.T, srv *httptest.Server, ex chatCall) *http.Response {
	t.Helper()
	req, err := New().NewRequest(context.Background(), ex.ex, target(t, srv.URL+"/base", ex.model))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

type chatCall struct {
	ex    *exchange.Exchange
	model string
}

func TestWireConverse(t *testing.T) {
	in, err := os.ReadFile("testdata/request/tools.json")
	if err != nil {
		t.Fatal(err)
	}
	answer, err := os.ReadFile("testdata/response/tool_use.json")
	if err != nil {
		t.Fatal(err)
	}
	srv, got := fakeBedrock(t, 200, http.Header{"Content-Type": {"application/json"}, "X-Amzn-Requestid": {"req-1"}}, answer)
	ex := chatExchange(string(in), false)
	ex.Header = http.Header{"User-Agent": {"openai-python/1.0"}, "Authorization": {"Bearer sk-client"}}
	model := "arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/a1b2c3"
	resp := roundTrip(t, srv, chatCall{ex, model})

	s := <-got
	if want := "/base/model/arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile%2Fa1b2c3/converse"; s.method != "POST" || s.uri != want {
		t.Errorf("%s %s, want POST %s", s.method, s.uri, want)
	}
	if s.header.Get("Content-Type") != "application/json" || s.header.Get("Accept") != "application/json" ||
		s.header.Get("User-Agent") != "openai-python/1.0" || s.header.Get("Authorization") != "" {
		t.Errorf("headers %v", s.header)
	}
	want, err := os.ReadFile("testdata/request/tools.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(golden.JSON(t, s.body)) != string(want) {
		t.Errorf("body %s, want %s", golden.JSON(t, s.body), want)
	}

	body, _ := io.ReadAll(resp.Body)
	ans, err := New().Complete(ex, resp.StatusCode, resp.Header, body)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ID      string
		Model   string
		Choices []struct {
			Message struct {
				Content   string
				ToolCalls []struct {
					ID       string
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			}
		}
	}
	if err := json.Unmarshal(ans.Body, &r); err != nil {
		t.Fatal(err)
	}
	if r.ID != "chatcmpl-req-1" || r.Model != ex.UpstreamModel || len(r.Choices) != 1 || len(r.Choices[0].Message.ToolCalls) != 2 ||
		r.Choices[0].Message.ToolCalls[0].Function.Arguments != `{"city":"Paris","units":["C"]}` {
		t.Errorf("answer %s", ans.Body)
	}
	if ex.Usage.InputTokens != 125 || ex.Usage.CachedInputTokens != 100 || ex.Usage.CacheCreationTokens != 20 {
		t.Errorf("usage %+v", ex.Usage)
	}
}

func TestWireConverseStream(t *testing.T) {
	frames := loadEvents(t, "tools")
	srv, got := fakeBedrock(t, 200, http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}, "X-Amzn-Requestid": {"req-2"}}, frames)
	in := `{"model":"claude","messages":[{"role":"user","content":[{"type":"text","text":"Weather?"},{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQSkZJRg=="}}]}],` +
		`"stream":true,"stream_options":{"include_usage":true},"stop":["END"],"max_tokens":100,"tools":[{"type":"function","function":{"name":"get_weather"}}]}`
	ex := chatExchange(in, true)
	ex.IncludeUsage = true
	resp := roundTrip(t, srv, chatCall{ex, "anthropic.claude-3-5-sonnet-20240620-v1:0"})

	s := <-got
	if want := "/base/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse-stream"; s.uri != want {
		t.Errorf("URI %s, want %s", s.uri, want)
	}
	if s.header.Get("Accept") != "application/vnd.amazon.eventstream" || s.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", s.header)
	}
	wantBody := `{"messages":[{"role":"user","content":[{"text":"Weather?"},{"image":{"format":"jpeg","source":{"bytes":"/9j/4AAQSkZJRg=="}}}]}],` +
		`"inferenceConfig":{"maxTokens":100,"stopSequences":["END"]},` +
		`"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{}}}}}]}}`
	if string(s.body) != wantBody {
		t.Errorf("body %s\nwant %s", s.body, wantBody)
	}

	events, err := collect(t, ex, resp.Header, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/stream/tools_usage.sse")
	if err != nil {
		t.Fatal(err)
	}
	gotSSE := strings.ReplaceAll(string(normalize([]byte(strings.Join(events, "")))), "chatcmpl-req-2", "chatcmpl-7c9d3a52-0f1e-4b6a-8c3d-2e1f0a9b8c7d")
	if gotSSE != string(want) {
		t.Errorf("stream:\n%s\nwant:\n%s", gotSSE, want)
	}
}

func TestWireErrors(t *testing.T) {
	for _, c := range []struct {
		name, errType, body string
		status, wantStatus  int
		code                string
	}{
		{"access denied", "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.bedrock/", `{"message":"You don't have access to the model with the specified model ID."}`, 403, 502, "upstream_auth_failed"},
		{"throttling", "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", `{"message":"Too many requests, please wait before trying again."}`, 429, 429, "rate_limit_exceeded"},
		{"too long", "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", `{"message":"Input is too long for requested model."}`, 400, 400, "context_length_exceeded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, got := fakeBedrock(t, c.status, http.Header{"Content-Type": {"application/json"}, "X-Amzn-Errortype": {c.errType}}, []byte(c.body))
			ex := chatExchange(plainRequest, true)
			resp := roundTrip(t, srv, chatCall{ex, "amazon.nova-pro-v1:0"})
			<-got
			body, _ := io.ReadAll(resp.Body)
			ans, err := New().Complete(ex, resp.StatusCode, resp.Header, body)
			if err != nil {
				t.Fatal(err)
			}
			var e struct{ Error struct{ Code string } }
			json.Unmarshal(ans.Body, &e)
			if ans.Status != c.wantStatus || e.Error.Code != c.code {
				t.Errorf("got %d %s", ans.Status, ans.Body)
			}
		})
	}
}
