package anthropic

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

func seedSSE(f *testing.F, names ...string) {
	for _, n := range names {
		b := fixture(f, n)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
}

// FuzzStream feeds arbitrary SSE to the Anthropic → OpenAI stream translator: no panic,
// and every event out is "data: " and valid JSON (or [DONE]).
func FuzzStream(f *testing.F) {
	seedSSE(f, "stream_text.sse", "stream_tool.sse", "stream_error.sse")
	f.Add([]byte("data: {\"type\":\"content_block_delta\",\"index\":99999999999,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":5}}\n\n"))
	f.Add([]byte("data: {\"type\":\"message_start\",\"message\":{\"id\":1,\"model\":[\"x\"]}}\n\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":{},\"name\":null}}\n\n"))
	a := New(Options{})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, usage := range []bool{false, true} {
			ex := &exchange.Exchange{Endpoint: exchange.EndpointChat, Stream: true, IncludeUsage: usage}
			s := a.Stream(ex, nil, bytes.NewReader(in))
			for {
				ev, err := s.Next()
				if err != nil {
					break
				}
				data, ok := bytes.CutPrefix(ev, []byte("data: "))
				if !ok || !bytes.HasSuffix(data, []byte("\n\n")) || bytes.Count(data, []byte("\n")) != 2 {
					t.Fatalf("not one data event: %q", ev)
				}
				data = data[:len(data)-2]
				if string(data) != "[DONE]" && !json.Valid(data) {
					t.Fatalf("invalid JSON in %q", ev)
				}
			}
			s.Close()
		}
	})
}

// FuzzChatRequest feeds arbitrary bytes to ChatRequest: no panic, valid JSON out.
func FuzzChatRequest(f *testing.F) {
	f.Add(fixture(f, "messages_req.json"))
	f.Add([]byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"stream":true}`))
	f.Add([]byte(`{"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := ChatRequest(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON out: %s", out)
		}
	})
}

// FuzzMessagesStream feeds arbitrary OpenAI chunks to the OpenAI → Anthropic stream
// translator: no panic, and every event out is "event: NAME\ndata: JSON".
func FuzzMessagesStream(f *testing.F) {
	seedSSE(f, "chunks_text.sse", "chunks_tool.sse", "chunks_error.sse")
	f.Fuzz(func(t *testing.T, in []byte) {
		s := MessagesStream(openAIStream(in), "m")
		defer s.Close()
		for {
			ev, err := s.Next()
			if err != nil {
				return
			}
			name, data, ok := strings.Cut(string(ev), "\ndata: ")
			if !ok || !strings.HasPrefix(name, "event: ") || !strings.HasSuffix(data, "\n\n") || !json.Valid([]byte(data[:len(data)-2])) {
				t.Fatalf("bad event %q", ev)
			}
		}
	})
}
