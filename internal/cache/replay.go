package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ReplayChunkBytes bounds the text in one replayed delta. Small enough that a
// client renders the answer progressively, large enough that a long answer
// is not thousands of events.
const ReplayChunkBytes = 64

// ErrNotReplayable is returned for a cached answer that has parts the replay
// cannot reproduce faithfully as a stream (logprobs, audio, annotations). The
// caller should forward such a streaming request upstream instead.
var ErrNotReplayable = errors.New("cache: answer cannot be replayed as a stream")

// splitUTF8 cuts s into pieces of at most n bytes (n ≥ 4) without splitting a
// UTF-8 sequence. An empty s gives no pieces.
func splitUTF8(s string, n int) []string {
	var out []string
	for len(s) > n {
		i := n
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		if i == 0 { // not UTF-8: cut anywhere rather than loop
			i = n
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

func isNull(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	return len(r) == 0 || string(r) == "null"
}

var rawNull = json.RawMessage("null")

// sseData frames one data-only SSE event.
func sseData(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+8)
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, '\n', '\n'), nil
}

// sseDone is the OpenAI end-of-stream sentinel.
var sseDone = []byte("data: [DONE]\n\n")

// OpenAI chat.completion, as much of it as the replay needs.
type oaChat struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	ServiceTier       json.RawMessage `json:"service_tier"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint"`
	Choices           []struct {
		Index   int `json:"index"`
		Message struct {
			Role      string  `json:"role"`
			Content   *string `json:"content"`
			Refusal   *string `json:"refusal"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
			FunctionCall *oaFunction     `json:"function_call"`
			Annotations  []any           `json:"annotations"`
			Audio        json.RawMessage `json:"audio"`
		} `json:"message"`
		FinishReason string          `json:"finish_reason"`
		Logprobs     json.RawMessage `json:"logprobs"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

type oaFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// oaChunk is a chat.completion.chunk.
type oaChunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	ServiceTier       json.RawMessage `json:"service_tier,omitempty"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint,omitempty"`
	Choices           []oaChunkChoice `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type oaChunkChoice struct {
	Index        int             `json:"index"`
	Delta        oaDelta         `json:"delta"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type oaDelta struct {
	Role         string        `json:"role,omitempty"`
	Content      *string       `json:"content,omitempty"`
	Refusal      *string       `json:"refusal,omitempty"`
	ToolCalls    []oaToolDelta `json:"tool_calls,omitempty"`
	FunctionCall *oaFunction   `json:"function_call,omitempty"`
}

type oaToolDelta struct {
	Index    int        `json:"index"`
	ID       string     `json:"id,omitempty"`
	Type     string     `json:"type,omitempty"`
	Function oaFunction `json:"function"`
}

// ReplayOpenAIChat turns a cached chat.completion into the SSE events of the
// same answer streamed: per choice a role chunk, content (or refusal) chunks
// of at most [ReplayChunkBytes], each tool call's opening chunk (id, type,
// name) followed by its arguments in pieces, and a finish chunk; then, with
// includeUsage (the request's stream_options.include_usage), a usage chunk
// with empty choices (all other chunks then carry "usage": null, as OpenAI
// sends them); then "data: [DONE]". Each element is one complete event,
// blank line included.
func ReplayOpenAIChat(answer []byte, includeUsage bool) ([][]byte, error) {
	var c oaChat
	if err := json.Unmarshal(answer, &c); err != nil {
		return nil, fmt.Errorf("cache: replay chat: %w", err)
	}
	if c.Object != "" && c.Object != "chat.completion" {
		return nil, fmt.Errorf("cache: replay chat: object %q", c.Object)
	}
	var usageNull json.RawMessage
	if includeUsage {
		usageNull = rawNull
	}
	var out [][]byte
	emit := func(ch oaChunkChoice) error {
		if ch.Logprobs == nil {
			ch.Logprobs = rawNull
		}
		ev, err := sseData(oaChunk{
			ID: c.ID, Object: "chat.completion.chunk", Created: c.Created, Model: c.Model,
			ServiceTier: c.ServiceTier, SystemFingerprint: c.SystemFingerprint,
			Choices: []oaChunkChoice{ch}, Usage: usageNull,
		})
		out = append(out, ev)
		return err
	}
	for _, ch := range c.Choices {
		m := &ch.Message
		if !isNull(ch.Logprobs) || !isNull(m.Audio) || len(m.Annotations) > 0 {
			return nil, ErrNotReplayable
		}
		role := m.Role
		if role == "" {
			role = "assistant"
		}
		first := oaDelta{Role: role}
		if m.Content != nil {
			first.Content = new(string) // OpenAI's role chunk carries "content": ""
		}
		if err := emit(oaChunkChoice{Index: ch.Index, Delta: first}); err != nil {
			return nil, err
		}
		if m.Content != nil {
			for _, s := range splitUTF8(*m.Content, ReplayChunkBytes) {
				if err := emit(oaChunkChoice{Index: ch.Index, Delta: oaDelta{Content: &s}}); err != nil {
					return nil, err
				}
			}
		}
		if m.Refusal != nil {
			parts := splitUTF8(*m.Refusal, ReplayChunkBytes)
			if len(parts) == 0 {
				parts = []string{""}
			}
			for _, s := range parts {
				if err := emit(oaChunkChoice{Index: ch.Index, Delta: oaDelta{Refusal: &s}}); err != nil {
					return nil, err
				}
			}
		}
		for i, tc := range m.ToolCalls {
			open := oaToolDelta{Index: i, ID: tc.ID, Type: tc.Type, Function: oaFunction{Name: tc.Function.Name}}
			if err := emit(oaChunkChoice{Index: ch.Index, Delta: oaDelta{ToolCalls: []oaToolDelta{open}}}); err != nil {
				return nil, err
			}
			for _, s := range splitUTF8(tc.Function.Arguments, ReplayChunkBytes) {
				d := oaToolDelta{Index: i, Function: oaFunction{Arguments: s}}
				if err := emit(oaChunkChoice{Index: ch.Index, Delta: oaDelta{ToolCalls: []oaToolDelta{d}}}); err != nil {
					return nil, err
				}
			}
		}
		if fc := m.FunctionCall; fc != nil { // the deprecated single function call
			if err := emit(oaChunkChoice{Index: ch.Index, Delta: oaDelta{FunctionCall: &oaFunction{Name: fc.Name}}}); err != nil {
				return nil, err
			}
			for _, s := range splitUTF8(fc.Arguments, ReplayChunkBytes) {
				if err := emit(oaChunkChoice{Index: ch.Index, Delta: oaDelta{FunctionCall: &oaFunction{Arguments: s}}}); err != nil {
					return nil, err
				}
			}
		}
		finish := ch.FinishReason
		if finish == "" {
			finish = "stop"
		}
		if err := emit(oaChunkChoice{Index: ch.Index, FinishReason: &finish}); err != nil {
			return nil, err
		}
	}
	if includeUsage && !isNull(c.Usage) {
		ev, err := sseData(oaChunk{
			ID: c.ID, Object: "chat.completion.chunk", Created: c.Created, Model: c.Model,
			ServiceTier: c.ServiceTier, SystemFingerprint: c.SystemFingerprint,
			Choices: []oaChunkChoice{}, Usage: c.Usage,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return append(out, sseDone), nil
}

// OpenAI text_completion (the legacy /v1/completions).
type oaCompletion struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint json.RawMessage `json:"system_fingerprint"`
	Choices           []struct {
		Index        int             `json:"index"`
		Text         string          `json:"text"`
		FinishReason string          `json:"finish_reason"`
		Logprobs     json.RawMessage `json:"logprobs"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

type oaCompletionChunk struct {
	ID                string              `json:"id"`
	Object            string              `json:"object"`
	Created           int64               `json:"created"`
	Model             string              `json:"model"`
	SystemFingerprint json.RawMessage     `json:"system_fingerprint,omitempty"`
	Choices           []oaCompletionDelta `json:"choices"`
	Usage             json.RawMessage     `json:"usage,omitempty"`
}

type oaCompletionDelta struct {
	Index        int             `json:"index"`
	Text         string          `json:"text"`
	Logprobs     json.RawMessage `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

// ReplayOpenAICompletion is [ReplayOpenAIChat] for a cached text_completion:
// per choice text chunks of at most [ReplayChunkBytes], the last carrying
// finish_reason; the optional usage chunk; "data: [DONE]". The chunks'
// object is "text_completion", as OpenAI streams them.
func ReplayOpenAICompletion(answer []byte, includeUsage bool) ([][]byte, error) {
	var c oaCompletion
	if err := json.Unmarshal(answer, &c); err != nil {
		return nil, fmt.Errorf("cache: replay completion: %w", err)
	}
	if c.Object != "" && c.Object != "text_completion" {
		return nil, fmt.Errorf("cache: replay completion: object %q", c.Object)
	}
	var usageNull json.RawMessage
	if includeUsage {
		usageNull = rawNull
	}
	var out [][]byte
	for _, ch := range c.Choices {
		if !isNull(ch.Logprobs) {
			return nil, ErrNotReplayable
		}
		parts := splitUTF8(ch.Text, ReplayChunkBytes)
		if len(parts) == 0 {
			parts = []string{""}
		}
		finish := ch.FinishReason
		if finish == "" {
			finish = "stop"
		}
		for i, s := range parts {
			d := oaCompletionDelta{Index: ch.Index, Text: s, Logprobs: rawNull}
			if i == len(parts)-1 {
				d.FinishReason = &finish
			}
			ev, err := sseData(oaCompletionChunk{
				ID: c.ID, Object: "text_completion", Created: c.Created, Model: c.Model,
				SystemFingerprint: c.SystemFingerprint, Choices: []oaCompletionDelta{d}, Usage: usageNull,
			})
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	if includeUsage && !isNull(c.Usage) {
		ev, err := sseData(oaCompletionChunk{
			ID: c.ID, Object: "text_completion", Created: c.Created, Model: c.Model,
			SystemFingerprint: c.SystemFingerprint, Choices: []oaCompletionDelta{}, Usage: c.Usage,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return append(out, sseDone), nil
}

// sseEvent frames one named SSE event, as Anthropic sends them.
func sseEvent(name string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(name)+16)
	out = append(out, "event: "...)
	out = append(out, name...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, '\n', '\n'), nil
}

// deltaUsageFields are the usage counts message_delta carries (cumulative
// totals that overwrite message_start's).
var deltaUsageFields = []string{
	"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
	"output_tokens", "server_tool_use",
}

// ReplayAnthropic turns a cached Anthropic Message into the Messages stream
// events of the same answer: message_start (the message with empty content,
// null stop fields and its usage, output_tokens at most 1 as the API sends
// it), then per content block content_block_start / content_block_delta… /
// content_block_stop — text as text_delta pieces (and citations_delta per
// citation), tool_use, server_tool_use and mcp_tool_use as input_json_delta
// pieces of the compact input, thinking as thinking_delta pieces and a
// signature_delta — and blocks of any other type (redacted_thinking, tool
// results) whole in their content_block_start; then message_delta with
// stop_reason, stop_sequence and the final usage, and message_stop. Each
// element is one complete "event: …\ndata: …\n\n" event. Unknown fields of
// the message and of its blocks are carried through.
func ReplayAnthropic(answer []byte) ([][]byte, error) {
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(answer, &msg); err != nil {
		return nil, fmt.Errorf("cache: replay anthropic: %w", err)
	}
	if t := string(msg["type"]); t != `"message"` {
		return nil, fmt.Errorf("cache: replay anthropic: type %s", t)
	}
	var blocks []map[string]json.RawMessage
	if err := json.Unmarshal(msg["content"], &blocks); err != nil && !isNull(msg["content"]) {
		return nil, fmt.Errorf("cache: replay anthropic: content: %w", err)
	}
	var usage map[string]json.RawMessage
	if !isNull(msg["usage"]) {
		if err := json.Unmarshal(msg["usage"], &usage); err != nil {
			return nil, fmt.Errorf("cache: replay anthropic: usage: %w", err)
		}
	}

	// message_start: the message as it stands before any content.
	start := make(map[string]json.RawMessage, len(msg))
	for k, v := range msg {
		start[k] = v
	}
	start["content"] = json.RawMessage("[]")
	start["stop_reason"], start["stop_sequence"] = rawNull, rawNull
	if _, ok := start["stop_details"]; ok {
		start["stop_details"] = rawNull
	}
	delete(start, "container") // sent with message_delta
	if usage != nil {
		u := make(map[string]json.RawMessage, len(usage))
		for k, v := range usage {
			u[k] = v
		}
		var out int64
		_ = json.Unmarshal(usage["output_tokens"], &out)
		u["output_tokens"] = json.RawMessage(fmt.Sprint(min(out, 1)))
		start["usage"] = mustRaw(u)
	}
	var events [][]byte
	add := func(name string, v any) error {
		ev, err := sseEvent(name, v)
		events = append(events, ev)
		return err
	}
	if err := add("message_start", map[string]any{"type": "message_start", "message": start}); err != nil {
		return nil, err
	}

	for i, b := range blocks {
		var typ string
		_ = json.Unmarshal(b["type"], &typ)
		head := make(map[string]json.RawMessage, len(b))
		for k, v := range b {
			head[k] = v
		}
		var deltas []map[string]any
		switch typ {
		case "text":
			var text string
			if err := json.Unmarshal(b["text"], &text); err != nil {
				return nil, fmt.Errorf("cache: replay anthropic: text block: %w", err)
			}
			head["text"] = json.RawMessage(`""`)
			for _, s := range splitUTF8(text, ReplayChunkBytes) {
				deltas = append(deltas, map[string]any{"type": "text_delta", "text": s})
			}
			if c, ok := b["citations"]; ok && !isNull(c) {
				var cites []json.RawMessage
				if err := json.Unmarshal(c, &cites); err != nil {
					return nil, fmt.Errorf("cache: replay anthropic: citations: %w", err)
				}
				head["citations"] = json.RawMessage("[]")
				for _, ct := range cites {
					deltas = append(deltas, map[string]any{"type": "citations_delta", "citation": ct})
				}
			}
		case "tool_use", "server_tool_use", "mcp_tool_use":
			var input bytes.Buffer
			if in := b["input"]; !isNull(in) {
				if err := json.Compact(&input, in); err != nil {
					return nil, fmt.Errorf("cache: replay anthropic: tool input: %w", err)
				}
			}
			head["input"] = json.RawMessage("{}")
			if s := input.String(); s != "{}" {
				for _, p := range splitUTF8(s, ReplayChunkBytes) {
					deltas = append(deltas, map[string]any{"type": "input_json_delta", "partial_json": p})
				}
			}
		case "thinking":
			var thinking, sig string
			_ = json.Unmarshal(b["thinking"], &thinking)
			_ = json.Unmarshal(b["signature"], &sig)
			head["thinking"], head["signature"] = json.RawMessage(`""`), json.RawMessage(`""`)
			for _, s := range splitUTF8(thinking, ReplayChunkBytes) {
				deltas = append(deltas, map[string]any{"type": "thinking_delta", "thinking": s})
			}
			if sig != "" {
				deltas = append(deltas, map[string]any{"type": "signature_delta", "signature": sig})
			}
		}
		if err := add("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": head}); err != nil {
			return nil, err
		}
		for _, d := range deltas {
			if err := add("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": d}); err != nil {
				return nil, err
			}
		}
		if err := add("content_block_stop", map[string]any{"type": "content_block_stop", "index": i}); err != nil {
			return nil, err
		}
	}

	delta := map[string]json.RawMessage{"stop_reason": orNull(msg["stop_reason"]), "stop_sequence": orNull(msg["stop_sequence"])}
	for _, k := range []string{"stop_details", "container"} {
		if v, ok := msg[k]; ok {
			delta[k] = v
		}
	}
	du := map[string]json.RawMessage{"output_tokens": json.RawMessage("0")}
	for _, k := range deltaUsageFields {
		if v, ok := usage[k]; ok {
			du[k] = v
		}
	}
	if err := add("message_delta", map[string]any{"type": "message_delta", "delta": delta, "usage": du}); err != nil {
		return nil, err
	}
	if err := add("message_stop", map[string]string{"type": "message_stop"}); err != nil {
		return nil, err
	}
	return events, nil
}

func orNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return rawNull
	}
	return r
}

func mustRaw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on maps of valid RawMessages
	}
	return b
}
