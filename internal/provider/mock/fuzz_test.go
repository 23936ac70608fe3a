package mock

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/tokens"
)

// FuzzHandler feeds arbitrary bodies to the chat endpoint: the handler must never
// panic, must answer 200 or 400 with well-formed JSON or SSE, and its usage must
// match the text it delivered.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		chatBody,
		`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"messages":[{"role":"user","content":"🦀 héllo\u0000"}]}`,
		`{"model":"claude","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}]}`,
		`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}],"max_completion_tokens":1}`,
		`{"model":"m","messages":[{"role":"user","name":"x","content":"\n \n \n"}],"n":1,"stream":false}`,
		`{"model":"m","messages":[]}`, `{"model":"m","messages":[{}]}`, `{"messages":null}`, `[]`, `null`, ``, `{`,
		"{\"model\":\"\xff\",\"messages\":[{\"role\":\"user\",\"content\":\"\xfe\xff\"}]}",
	} {
		f.Add([]byte(seed))
	}
	h := NewHandler(v1alpha1.MockSpec{Chunks: 3}, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body)))
		out := w.Body.Bytes()
		switch w.Code {
		case http.StatusBadRequest:
			var e struct {
				Error *apiError `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Error == nil || e.Error.Message == "" {
				t.Fatalf("bad error body %q: %v", out, err)
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("status %d: %s", w.Code, out)
		}
		var req struct {
			Model string `json:"model"`
		}
		_ = json.Unmarshal(body, &req)
		if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
			var c chatCompletion
			if err := json.Unmarshal(out, &c); err != nil || len(c.Choices) != 1 {
				t.Fatalf("answer %q: %v", out, err)
			}
			if n := tokens.CountString(req.Model, c.Choices[0].Message.Content); c.Usage.CompletionTokens != n {
				t.Fatalf("usage says %d completion tokens, the text has %d", c.Usage.CompletionTokens, n)
			}
			return
		}
		if !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
			t.Fatalf("stream does not end with [DONE]: %q", out)
		}
		var text strings.Builder
		for _, ev := range bytes.Split(bytes.TrimSuffix(out, []byte("\n\n")), []byte("\n\n")) {
			payload, ok := bytes.CutPrefix(ev, []byte("data: "))
			if !ok {
				t.Fatalf("bad event %q", ev)
			}
			if string(payload) == "[DONE]" {
				break
			}
			var c struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
				Usage *usage `json:"usage"`
			}
			if err := json.Unmarshal(payload, &c); err != nil {
				t.Fatalf("event %q: %v", payload, err)
			}
			for _, ch := range c.Choices {
				text.WriteString(ch.Delta.Content)
			}
			if c.Usage != nil && c.Usage.CompletionTokens != tokens.CountString(req.Model, text.String()) {
				t.Fatalf("usage %+v for streamed %q", c.Usage, text.String())
			}
		}
	})
}
