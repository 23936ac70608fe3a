package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
)

// A long multi-byte text, so that chunking must respect UTF-8 boundaries.
var longText = strings.Repeat("Caching saves tokens — été, 日本語, 🚀. ", 6)

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// dataOf checks the framing of a data-only SSE event and returns its data.
func dataOf(t *testing.T, ev []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(ev, []byte("data: ")) || !bytes.HasSuffix(ev, []byte("\n\n")) || bytes.Count(ev, []byte("\n")) != 2 {
		t.Fatalf("bad event framing %q", ev)
	}
	return ev[len("data: ") : len(ev)-2]
}

var openAIChatAnswer = `{
  "id": "chatcmpl-123", "object": "chat.completion", "created": 1764266400, "model": "gpt-4o-2024-08-06",
  "system_fingerprint": "fp_abc", "service_tier": "default",
  "choices": [
    {"index": 0, "message": {"role": "assistant", "content": ` + jsonString(longText) + `, "refusal": null, "annotations": []},
     "logprobs": null, "finish_reason": "stop"},
    {"index": 1, "message": {"role": "assistant", "content": null, "refusal": null,
      "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\",\"unit\":\"celsius\",\"days\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14]}"}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
      ]},
     "logprobs": null, "finish_reason": "tool_calls"}
  ],
  "usage": {"prompt_tokens": 19, "completion_tokens": 88, "total_tokens": 107,
    "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
}`

func TestReplayOpenAIChat(t *testing.T) {
	var want openai.ChatCompletion
	if err := json.Unmarshal([]byte(openAIChatAnswer), &want); err != nil {
		t.Fatal(err)
	}
	for _, includeUsage := range []bool{false, true} {
		events, err := ReplayOpenAIChat([]byte(openAIChatAnswer), includeUsage)
		if err != nil {
			t.Fatal(err)
		}
		if string(events[len(events)-1]) != "data: [DONE]\n\n" {
			t.Fatalf("last event %q", events[len(events)-1])
		}
		var acc openai.ChatCompletionAccumulator
		var sawUsage bool
		for i, ev := range events[:len(events)-1] {
			data := dataOf(t, ev)
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(data, &raw); err != nil {
				t.Fatal(err)
			}
			if string(raw["object"]) != `"chat.completion.chunk"` {
				t.Errorf("object %s", raw["object"])
			}
			if u, ok := raw["usage"]; ok != includeUsage {
				t.Errorf("event %d: usage present %v", i, ok)
			} else if ok && string(u) != "null" {
				sawUsage = true
				if i != len(events)-2 || string(raw["choices"]) != "[]" {
					t.Errorf("usage chunk must be last, with empty choices: %s", data)
				}
			}
			var chunk openai.ChatCompletionChunk
			if err := json.Unmarshal(data, &chunk); err != nil {
				t.Fatal(err)
			}
			for _, c := range chunk.Choices {
				if len(c.Delta.Content) > ReplayChunkBytes || !utf8.ValidString(c.Delta.Content) {
					t.Errorf("content delta %q", c.Delta.Content)
				}
				for _, tc := range c.Delta.ToolCalls {
					if len(tc.Function.Arguments) > ReplayChunkBytes {
						t.Errorf("arguments delta %q", tc.Function.Arguments)
					}
				}
			}
			if !acc.AddChunk(chunk) {
				t.Fatalf("accumulator rejected %s", data)
			}
		}
		if sawUsage != includeUsage {
			t.Errorf("usage chunk sent: %v", sawUsage)
		}
		got := acc.ChatCompletion
		if got.ID != want.ID || got.Model != want.Model || got.Created != want.Created || got.SystemFingerprint != want.SystemFingerprint {
			t.Errorf("header: %s %s %d %s", got.ID, got.Model, got.Created, got.SystemFingerprint)
		}
		if len(got.Choices) != len(want.Choices) {
			t.Fatalf("%d choices", len(got.Choices))
		}
		for i, w := range want.Choices {
			g := got.Choices[i]
			if g.Message.Content != w.Message.Content || g.Message.Refusal != w.Message.Refusal ||
				string(g.FinishReason) != string(w.FinishReason) || g.Message.Role != w.Message.Role {
				t.Errorf("choice %d: %q %q %q", i, g.Message.Content, g.FinishReason, g.Message.Role)
			}
			if len(g.Message.ToolCalls) != len(w.Message.ToolCalls) {
				t.Fatalf("choice %d: %d tool calls", i, len(g.Message.ToolCalls))
			}
			for j, wt := range w.Message.ToolCalls {
				gt := g.Message.ToolCalls[j]
				if gt.ID != wt.ID || gt.Type != wt.Type || gt.Function.Name != wt.Function.Name || gt.Function.Arguments != wt.Function.Arguments {
					t.Errorf("tool call %d: %+v", j, gt.Function)
				}
			}
		}
		if includeUsage {
			if got.Usage.PromptTokens != 19 || got.Usage.CompletionTokens != 88 || got.Usage.TotalTokens != 107 ||
				got.Usage.PromptTokensDetails.CachedTokens != 3 {
				t.Errorf("usage %+v", got.Usage)
			}
		}
	}
}

func TestReplayOpenAIChatEdgeCases(t *testing.T) {
	// A refusal, and an empty content.
	events, err := ReplayOpenAIChat([]byte(`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[
		{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"},
		{"index":1,"message":{"role":"assistant","content":""},"finish_reason":"length"}]}`), true)
	if err != nil {
		t.Fatal(err)
	}
	var acc openai.ChatCompletionAccumulator
	for _, ev := range events[:len(events)-1] {
		var chunk openai.ChatCompletionChunk
		if err := json.Unmarshal(dataOf(t, ev), &chunk); err != nil || !acc.AddChunk(chunk) {
			t.Fatalf("%v %s", err, ev)
		}
	}
	if acc.Choices[0].Message.Refusal != "I can't help with that." || acc.Choices[1].FinishReason != "length" {
		t.Errorf("got %+v", acc.Choices)
	}
	// No usage in the answer: no usage chunk, even when asked for.
	if n := len(events); n != 6 { // 3 + 2 + [DONE]
		t.Errorf("%d events", n)
	}

	for name, answer := range map[string]string{
		"logprobs":    `{"object":"chat.completion","choices":[{"message":{"content":"x"},"logprobs":{"content":[]}}]}`,
		"audio":       `{"object":"chat.completion","choices":[{"message":{"content":null,"audio":{"id":"a"}}}]}`,
		"annotations": `{"object":"chat.completion","choices":[{"message":{"content":"x","annotations":[{"type":"url_citation"}]}}]}`,
	} {
		if _, err := ReplayOpenAIChat([]byte(answer), false); !errors.Is(err, ErrNotReplayable) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, answer := range []string{`{`, `[]`, `{"object":"text_completion"}`} {
		if _, err := ReplayOpenAIChat([]byte(answer), false); err == nil {
			t.Errorf("%s accepted", answer)
		}
	}
}

func TestReplayOpenAICompletion(t *testing.T) {
	answer := `{"id":"cmpl-1","object":"text_completion","created":5,"model":"gpt-3.5-turbo-instruct",
		"choices":[{"text":` + jsonString(longText) + `,"index":0,"logprobs":null,"finish_reason":"length"}],
		"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`
	events, err := ReplayOpenAICompletion([]byte(answer), true)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	var finish string
	var usage openai.CompletionUsage
	for _, ev := range events[:len(events)-1] {
		var c openai.Completion
		if err := json.Unmarshal(dataOf(t, ev), &c); err != nil {
			t.Fatal(err)
		}
		if c.Object != "text_completion" || c.ID != "cmpl-1" {
			t.Errorf("chunk %s", ev)
		}
		for _, ch := range c.Choices {
			if len(ch.Text) > ReplayChunkBytes || !utf8.ValidString(ch.Text) {
				t.Errorf("text %q", ch.Text)
			}
			text.WriteString(ch.Text)
			if ch.FinishReason != "" {
				finish = string(ch.FinishReason)
			}
		}
		if c.Usage.TotalTokens != 0 {
			usage = c.Usage
		}
	}
	if text.String() != longText || finish != "length" || usage.TotalTokens != 12 {
		t.Errorf("text %q finish %q usage %+v", text.String(), finish, usage)
	}
	if string(events[len(events)-1]) != "data: [DONE]\n\n" {
		t.Error("no [DONE]")
	}
}

var anthropicAnswer = `{
  "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
  "content": [
    {"type": "thinking", "thinking": "The user wants the weather; let me think about which tool to call here, carefully.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
    {"type": "text", "text": ` + jsonString(longText) + `},
    {"type": "text", "text": "See the source.", "citations": [{"type": "char_location", "cited_text": "x", "document_index": 0, "document_title": null, "start_char_index": 0, "end_char_index": 1}]},
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Zürich", "days": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], "unit": "celsius"}},
    {"type": "tool_use", "id": "toolu_02", "name": "now", "input": {}},
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}
  ],
  "stop_reason": "tool_use", "stop_sequence": null,
  "usage": {"input_tokens": 472, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 20, "output_tokens": 89, "service_tier": "standard"}
}`

func TestReplayAnthropic(t *testing.T) {
	var want anthropic.Message
	if err := json.Unmarshal([]byte(anthropicAnswer), &want); err != nil {
		t.Fatal(err)
	}
	events, err := ReplayAnthropic([]byte(anthropicAnswer))
	if err != nil {
		t.Fatal(err)
	}
	var acc anthropic.Message
	var names []string
	for _, ev := range events {
		s := string(ev)
		name, data, ok := strings.Cut(strings.TrimPrefix(s, "event: "), "\ndata: ")
		if !ok || !strings.HasPrefix(s, "event: ") || !strings.HasSuffix(data, "\n\n") || strings.Count(data, "\n") != 2 {
			t.Fatalf("bad framing %q", s)
		}
		var e anthropic.MessageStreamEventUnion
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatal(err)
		}
		if e.Type != name {
			t.Errorf("event %s carries type %s", name, e.Type)
		}
		if e.Type == "content_block_delta" {
			for _, txt := range []string{e.Delta.Text, e.Delta.PartialJSON, e.Delta.Thinking} {
				if len(txt) > ReplayChunkBytes || !utf8.ValidString(txt) {
					t.Errorf("delta %q", txt)
				}
			}
		}
		if e.Type == "message_start" && (len(e.Message.Content) != 0 || e.Message.StopReason != "" ||
			e.Message.Usage.InputTokens != 472 || e.Message.Usage.OutputTokens != 1) {
			t.Errorf("message_start %s", data)
		}
		if err := acc.Accumulate(e); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if names[0] != "message_start" || names[len(names)-2] != "message_delta" || names[len(names)-1] != "message_stop" {
		t.Errorf("event order %v", names)
	}
	if acc.ID != want.ID || acc.Model != want.Model || acc.Role != want.Role || acc.StopReason != want.StopReason || acc.StopSequence != want.StopSequence {
		t.Errorf("message %+v", acc)
	}
	u, wu := acc.Usage, want.Usage
	if u.InputTokens != wu.InputTokens || u.OutputTokens != wu.OutputTokens || u.CacheCreationInputTokens != wu.CacheCreationInputTokens ||
		u.CacheReadInputTokens != wu.CacheReadInputTokens || u.ServiceTier != wu.ServiceTier {
		t.Errorf("usage %+v", u)
	}
	if len(acc.Content) != len(want.Content) {
		t.Fatalf("%d blocks", len(acc.Content))
	}
	for i, w := range want.Content {
		g := acc.Content[i]
		if g.Type != w.Type || g.Text != w.Text || g.ID != w.ID || g.Name != w.Name || g.Thinking != w.Thinking ||
			g.Signature != w.Signature || g.Data != w.Data || len(g.Citations) != len(w.Citations) {
			t.Errorf("block %d: %+v", i, g)
		}
		if w.Type == "tool_use" && !jsonEqual(t, g.Input, w.Input) {
			t.Errorf("block %d input %s, want %s", i, g.Input, w.Input)
		}
		for j := range w.Citations {
			if g.Citations[j].CitedText != w.Citations[j].CitedText || g.Citations[j].EndCharIndex != w.Citations[j].EndCharIndex {
				t.Errorf("citation %d.%d %+v", i, j, g.Citations[j])
			}
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestReplayAnthropicErrors(t *testing.T) {
	for _, answer := range []string{`{`, `{"type":"error","error":{}}`, `{"type":"message","content":{}}`, `{"type":"message","content":[{"type":"text","text":1}]}`} {
		if _, err := ReplayAnthropic([]byte(answer)); err == nil {
			t.Errorf("%s accepted", answer)
		}
	}
	// A message with no content still makes a well-formed stream.
	events, err := ReplayAnthropic([]byte(`{"type":"message","id":"m","role":"assistant","model":"x","content":[],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":0}}`))
	if err != nil || len(events) != 3 {
		t.Fatalf("%d events, %v", len(events), err)
	}
}

func TestSplitUTF8(t *testing.T) {
	for _, s := range []string{"", "a", strings.Repeat("é", 100), strings.Repeat("🚀x", 50), longText, "\xff\xfe" + strings.Repeat("\x80", 70)} {
		parts := splitUTF8(s, ReplayChunkBytes)
		if strings.Join(parts, "") != s {
			t.Errorf("pieces of %q do not join back", s)
		}
		for _, p := range parts {
			if len(p) == 0 || len(p) > ReplayChunkBytes || (utf8.ValidString(s) && !utf8.ValidString(p)) {
				t.Errorf("piece %q", p)
			}
		}
	}
}
