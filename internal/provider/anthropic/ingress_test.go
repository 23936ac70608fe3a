package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/golden"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
	"github.com/sluice-gateway/sluice/internal/provider/openai"
)

func TestChatRequestGolden(t *testing.T) {
	out, err := ChatRequest(fixture(t, "messages_req.json"))
	if err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, "messages_req.chat.golden.json", golden.JSON(t, out))
	// what the gateway's OpenAI path reads from it
	r, err := chat.DecodeRequest(out)
	if err != nil || !r.Stream || r.StreamOptions == nil || !r.StreamOptions.IncludeUsage || r.OutputLimit() != 1024 {
		t.Errorf("decoded %+v (%v)", r, err)
	}
}

func TestChatRequestFields(t *testing.T) {
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	for _, c := range []struct{ name, body, field, want string }{
		{"system string", `{"system":"be nice",` + msgs + `}`, "messages", `[{"content":"be nice","role":"system"},{"content":"hi","role":"user"}]`},
		{"no stream", `{` + msgs + `}`, "stream_options", `null`},
		{"tool_choice auto", `{` + msgs + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"}}`, "tool_choice", `"auto"`},
		{"tool_choice any", `{` + msgs + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`, "tool_choice", `"required"`},
		{"tool_choice none", `{` + msgs + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none"}}`, "tool_choice", `"none"`},
		{"structured output", `{` + msgs + `,"output_config":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`, "response_format", `{"json_schema":{"name":"output","schema":{"type":"object"},"strict":true},"type":"json_schema"}`},
		{"beta structured output", `{` + msgs + `,"output_format":{"type":"json_schema","schema":{"type":"object"}}}`, "response_format", `{"json_schema":{"name":"output","schema":{"type":"object"},"strict":true},"type":"json_schema"}`},
		{"empty content", `{"messages":[{"role":"user","content":[]}]}`, "messages", `[{"content":"","role":"user"}]`},
		{"tool_choice without tools", `{` + msgs + `,"tool_choice":{"type":"any"}}`, "tool_choice", `null`},
		{"assistant string", `{"messages":[{"role":"assistant","content":"x"}]}`, "messages", `[{"content":"x","role":"assistant"}]`},
	} {
		out, err := ChatRequest([]byte(c.body))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var v map[string]any
		json.Unmarshal(out, &v)
		if got := jsonOf(v[c.field]); got != c.want {
			t.Errorf("%s: %s = %s, want %s", c.name, c.field, got, c.want)
		}
	}
}

func TestChatRequestErrors(t *testing.T) {
	for _, c := range []struct{ name, body string }{
		{"not JSON", `{"messages":`},
		{"not object", `[1]`},
		{"role", `{"messages":[{"role":"system","content":"x"}]}`},
		{"content type", `{"messages":[{"role":"user","content":5}]}`},
		{"document", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"}}]}]}`},
		{"image source", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`},
		{"image without source", `{"messages":[{"role":"user","content":[{"type":"image"}]}]}`},
		{"server tool", `{"messages":[],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`},
		{"tool input", `{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":{"x":}}]}]}`},
		{"tool_choice", `{"messages":[],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"sometimes"}}`},
		{"system", `{"system":5,"messages":[]}`},
	} {
		_, err := ChatRequest([]byte(c.body))
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != apierr.CodeInvalidRequest {
			t.Errorf("%s: got %v, want a 400 *apierr.Error", c.name, err)
		}
	}
}

func TestMessagesAnswerGolden(t *testing.T) {
	out, err := MessagesAnswer(fixture(t, "chat_resp_tool.json"), "claude-alias")
	if err != nil {
		t.Fatal(err)
	}
	golden.Compare(t, "chat_resp_tool.messages.golden.json", golden.JSON(t, out))
}

func TestMessagesAnswer(t *testing.T) {
	for _, c := range []struct{ finish, stop string }{
		{"stop", "end_turn"}, {"length", "max_tokens"}, {"tool_calls", "tool_use"}, {"function_call", "tool_use"}, {"content_filter", "refusal"}, {"", "end_turn"},
	} {
		out, err := MessagesAnswer([]byte(`{"id":"chatcmpl-1","choices":[{"message":{"role":"assistant","content":"x"},"finish_reason":"`+c.finish+`"}]}`), "m")
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			StopReason string `json:"stop_reason"`
		}
		json.Unmarshal(out, &m)
		if m.StopReason != c.stop {
			t.Errorf("%q: stop_reason %q, want %q", c.finish, m.StopReason, c.stop)
		}
	}
	out, _ := MessagesAnswer([]byte(`{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}`), "m")
	if !bytes.Contains(out, []byte(`"content":[{"type":"text","text":"I can't help with that."}],"stop_reason":"refusal"`)) || !bytes.Contains(out, []byte(`"id":"msg_`)) {
		t.Errorf("refusal: %s", out)
	}
	out, _ = MessagesAnswer([]byte(`{"id":"x","choices":[]}`), "m")
	if !bytes.Contains(out, []byte(`"content":[]`)) {
		t.Errorf("no choices: %s", out)
	}
	for _, bad := range []string{`nope`, `{"choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":"[1]"}}]}}]}`} {
		if _, err := MessagesAnswer([]byte(bad), "m"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// openAIStream is the OpenAI adapter's stream over an SSE fixture, as the gateway
// composes them.
func openAIStream(in []byte) provider.Stream {
	ex := &exchange.Exchange{Endpoint: exchange.EndpointChat, Stream: true, IncludeUsage: true, Output: make([]byte, 0, len(in))}
	return openai.Adapter{}.Stream(ex, nil, bytes.NewReader(in))
}

func TestMessagesStreamGolden(t *testing.T) {
	for _, c := range []struct{ in, out string }{
		{"chunks_text.sse", "chunks_text.messages.golden.sse"},
		{"chunks_tool.sse", "chunks_tool.messages.golden.sse"},
		{"chunks_error.sse", "chunks_error.messages.golden.sse"},
	} {
		t.Run(c.out, func(t *testing.T) {
			got, err := drain(t, MessagesStream(openAIStream(fixture(t, c.in)), "claude-alias"))
			if err != nil {
				t.Fatal(err)
			}
			golden.Compare(t, c.out, got)
			checkAnthropicEvents(t, got)
		})
	}
}

// checkAnthropicEvents checks every event is "event: NAME" with JSON data of that type.
func checkAnthropicEvents(t *testing.T, b []byte) {
	t.Helper()
	for _, ev := range strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\n") {
		if ev == "" {
			continue
		}
		name, data, ok := strings.Cut(ev, "\n")
		name, ok1 := strings.CutPrefix(name, "event: ")
		data, ok2 := strings.CutPrefix(data, "data: ")
		var v struct{ Type string }
		if !ok || !ok1 || !ok2 || json.Unmarshal([]byte(data), &v) != nil || v.Type != name {
			t.Errorf("bad event %q", ev)
		}
	}
}

func TestMessagesStreamUsageWaits(t *testing.T) {
	in := fixture(t, "chunks_text.sse")
	got, _ := drain(t, MessagesStream(openAIStream(in), "m"))
	if !bytes.Contains(got, []byte(`"usage":{"input_tokens":93,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,"output_tokens":46}`)) {
		t.Errorf("message_delta lacks the real usage:\n%s", got)
	}
	// without a usage chunk, [DONE] ends the message
	noUsage := bytes.Replace(in, []byte(`"choices":[],"usage":{`), []byte(`"choices":[],"x":{`), 1)
	got, _ = drain(t, MessagesStream(openAIStream(noUsage), "m"))
	if !bytes.Contains(got, []byte(`"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":0`)) || !bytes.HasSuffix(got, []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")) {
		t.Errorf("no usage:\n%s", got)
	}
}

func TestMessagesStreamTruncated(t *testing.T) {
	in := fixture(t, "chunks_text.sse")
	in = in[:bytes.Index(in, []byte(`"finish_reason":"length"`))-200]
	in = in[:bytes.LastIndex(in, []byte("\n\n"))+2]
	_, err := drain(t, MessagesStream(openAIStream(in), "m"))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want io.ErrUnexpectedEOF", err)
	}
	// a finished answer without [DONE] still ends cleanly
	in = fixture(t, "chunks_text.sse")
	in = in[:bytes.Index(in, []byte("data: [DONE]"))]
	got, err := drain(t, MessagesStream(openAIStream(in), "m"))
	if err != nil || !bytes.Contains(got, []byte("message_stop")) {
		t.Errorf("%v:\n%s", err, got)
	}
}

func TestErrorFromOpenAI(t *testing.T) {
	for _, c := range []struct {
		status           int
		body             string
		code, msg, param string
	}{
		{400, `{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`, "context_length_exceeded", "This model's maximum context length is 128000 tokens.", "messages"},
		{429, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, "rate_limit_exceeded", "Rate limit reached", ""},
		{502, `{"error":{"message":"The gateway's credentials were refused by the upstream provider.","type":"api_error","param":null,"code":"upstream_auth_failed"}}`, "upstream_auth_failed", "The gateway's credentials were refused by the upstream provider.", ""},
		{400, `{"error":{"message":"bad","type":"invalid_request_error","code":null}}`, "invalid_request_error", "bad", ""},
		{500, `{"error":{"message":"boom","code":500}}`, "500", "boom", ""},
		{503, `upstream connect error`, apierr.CodeUpstreamError, "Service Unavailable", ""},
		{429, ``, apierr.CodeRateLimitExceeded, "Too Many Requests", ""},
	} {
		e := ErrorFromOpenAI(c.status, []byte(c.body))
		if e.Status != c.status || e.Code != c.code || e.Message != c.msg || e.Param != c.param {
			t.Errorf("%s: %+v", c.body, e)
		}
		var a struct {
			Type  string
			Error struct{ Type, Message string }
		}
		if json.Unmarshal(e.Body(apierr.Anthropic), &a) != nil || a.Type != "error" || a.Error.Message != c.msg {
			t.Errorf("%s: anthropic body %s", c.body, e.Body(apierr.Anthropic))
		}
	}
	if ErrorFromOpenAI(429, nil).Status != http.StatusTooManyRequests {
		t.Error("status not kept")
	}
}
