package fakeanthropic

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
)

// AnswerText is the fake's answer to a prompt (the last user message's text).
func AnswerText(prompt string) string {
	w := strings.Fields(prompt)
	if len(w) == 0 {
		return "Hello from the fake Claude. You said nothing."
	}
	if len(w) > 12 {
		w = w[:12]
	}
	return "Hello from the fake Claude. You said: " + strings.Join(w, " ")
}

// ToolResultText is the fake's answer to a user turn holding tool results (their text,
// joined by spaces).
func ToolResultText(results string) string { return "The tool returned: " + results }

// ToolIntroText is the text block before a tool_use block.
func ToolIntroText(tool string) string { return "I'll look that up with " + tool + "." }

// Location is the location the fake puts into a tool's location or city property: the
// words after the last " in " of the prompt, up to punctuation, else "San Francisco".
func Location(prompt string) string {
	i := strings.LastIndex(strings.ToLower(prompt), " in ")
	if i < 0 {
		return "San Francisco"
	}
	rest := prompt[i+4:]
	if j := strings.IndexAny(rest, "?.!,;\n"); j >= 0 {
		rest = rest[:j]
	}
	if rest = strings.TrimSpace(rest); rest == "" {
		return "San Francisco"
	}
	return rest
}

func hash(body []byte, salt string) string {
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// answer decides the answer to a checked request.
func answer(r *request, body []byte) *Answer {
	a := &Answer{ID: "msg_" + hash(body, "msg"), Model: r.Model, Stream: r.Stream, InputTokens: r.inputTokens()}
	var user *message
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			user = &r.Messages[i]
			break
		}
	}
	var texts, results []string
	for _, b := range user.Blocks {
		switch b.Type {
		case "text":
			texts = append(texts, b.Text)
		case "tool_result":
			results = append(results, b.Text)
		}
	}
	prompt := strings.Join(texts, " ")

	var use *tool
	if r.ToolChoice != "none" {
		forced := r.ToolChoice == "any" || r.ToolChoice == "tool"
		asked := len(results) == 0 && strings.Contains(strings.ToLower(prompt), "weather")
		if forced || asked {
			use = pickTool(r)
		}
	}
	switch {
	case use != nil:
		a.Text = ToolIntroText(use.Name)
		a.ToolUseID, a.ToolName = "toolu_"+hash(body, "tool"), use.Name
		a.ToolInput = toolInput(use.Schema, prompt)
		a.StopReason = "tool_use"
	case len(results) > 0:
		a.Text = ToolResultText(strings.Join(results, " "))
		a.StopReason = "end_turn"
	default:
		a.Text = AnswerText(prompt)
		a.StopReason = "end_turn"
	}
	// Stop sequences cut the text (and whatever would follow it).
	cut := -1
	for _, s := range r.StopSequences {
		if i := strings.Index(a.Text, s); i >= 0 && (cut < 0 || i < cut) {
			cut, a.StopSequence = i, s
		}
	}
	if cut >= 0 {
		a.Text = a.Text[:cut]
		a.ToolUseID, a.ToolName, a.ToolInput = "", "", nil
		a.StopReason = "stop_sequence"
	}
	a.OutputTokens = Words(a.Text)
	if a.ToolUseID != "" {
		a.OutputTokens += Words(a.ToolName) + Words(string(a.ToolInput))
	}
	if a.OutputTokens > r.MaxTokens {
		w := strings.Fields(a.Text)
		if int64(len(w)) > r.MaxTokens {
			w = w[:r.MaxTokens]
		}
		a.Text = strings.Join(w, " ")
		a.ToolUseID, a.ToolName, a.ToolInput = "", "", nil
		a.StopReason, a.StopSequence = "max_tokens", ""
		a.OutputTokens = r.MaxTokens
	}
	return a
}

func pickTool(r *request) *tool {
	var custom []*tool
	for i := range r.Tools {
		if r.Tools[i].Schema != nil {
			custom = append(custom, &r.Tools[i])
		}
	}
	if r.ToolChoice == "tool" {
		for _, t := range custom {
			if t.Name == r.ToolName {
				return t
			}
		}
		return nil
	}
	for _, t := range custom {
		if strings.Contains(strings.ToLower(t.Name), "weather") {
			return t
		}
	}
	if len(custom) > 0 {
		return custom[0]
	}
	return nil
}

// toolInput fills a tool's schema: location and city with Location(prompt), other
// strings with their first enum value or "example", numbers with 1, booleans with true.
func toolInput(schema json.RawMessage, prompt string) json.RawMessage {
	var s struct {
		Properties map[string]struct {
			Type any   `json:"type"`
			Enum []any `json:"enum"`
		} `json:"properties"`
	}
	json.Unmarshal(schema, &s)
	in := map[string]any{}
	for name, p := range s.Properties {
		typ, _ := p.Type.(string)
		switch {
		case len(p.Enum) > 0:
			in[name] = p.Enum[0]
		case name == "location" || name == "city":
			in[name] = Location(prompt)
		case typ == "integer" || typ == "number":
			in[name] = 1
		case typ == "boolean":
			in[name] = true
		case typ == "string":
			in[name] = "example"
		}
	}
	b, _ := json.Marshal(in)
	return b
}

// The Messages answer, in the API's member order.
type (
	wireMessage struct {
		ID           string      `json:"id"`
		Type         string      `json:"type"`
		Role         string      `json:"role"`
		Model        string      `json:"model"`
		Content      []wireBlock `json:"content"`
		StopReason   *string     `json:"stop_reason"`
		StopSequence *string     `json:"stop_sequence"`
		Usage        wireUsage   `json:"usage"`
	}
	wireBlock struct {
		Type  string           `json:"type"`
		Text  *string          `json:"text,omitempty"`
		ID    string           `json:"id,omitempty"`
		Name  string           `json:"name,omitempty"`
		Input *json.RawMessage `json:"input,omitempty"`
	}
	wireUsage struct {
		InputTokens              int64  `json:"input_tokens"`
		CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int64  `json:"cache_read_input_tokens"`
		OutputTokens             int64  `json:"output_tokens"`
		ServiceTier              string `json:"service_tier"`
	}
)

func (a *Answer) blocks() []wireBlock {
	var out []wireBlock
	if a.Text != "" {
		t := a.Text
		out = append(out, wireBlock{Type: "text", Text: &t})
	}
	if a.ToolUseID != "" {
		in := a.ToolInput
		out = append(out, wireBlock{Type: "tool_use", ID: a.ToolUseID, Name: a.ToolName, Input: &in})
	}
	return out
}

func (a *Answer) stopSequence() *string {
	if a.StopSequence == "" {
		return nil
	}
	s := a.StopSequence
	return &s
}

func (a *Answer) message() []byte {
	stop := a.StopReason
	m := wireMessage{
		ID: a.ID, Type: "message", Role: "assistant", Model: a.Model,
		Content: a.blocks(), StopReason: &stop, StopSequence: a.stopSequence(),
		Usage: wireUsage{InputTokens: a.InputTokens, OutputTokens: a.OutputTokens, ServiceTier: "standard"},
	}
	if m.Content == nil {
		m.Content = []wireBlock{}
	}
	b, _ := json.Marshal(m)
	return b
}

// pieces cuts s into parts of about two words each, whitespace kept, so that they join
// back into s.
func pieces(s string, words int) []string {
	var out []string
	start, n := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && (i+1 == len(s) || s[i+1] != ' ') {
			n++
			if n == words {
				out = append(out, s[start:i+1])
				start, n = i+1, 0
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// jsonPieces cuts JSON text into three parts on character boundaries.
func jsonPieces(s string) []string {
	r := []rune(s)
	n := len(r)
	if n < 3 {
		return []string{s}
	}
	return []string{string(r[:n/3]), string(r[n/3 : 2*n/3]), string(r[2*n/3:])}
}

// writeStream sends the answer as the Messages event stream.
func writeStream(w *response, a *Answer) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(name string, v any) {
		b, _ := json.Marshal(v)
		w.Write(append(append([]byte("event: "+name+"\ndata: "), b...), "\n\n"...))
	}
	start := wireMessage{
		ID: a.ID, Type: "message", Role: "assistant", Model: a.Model, Content: []wireBlock{},
		Usage: wireUsage{InputTokens: a.InputTokens, OutputTokens: min(1, a.OutputTokens), ServiceTier: "standard"},
	}
	send("message_start", map[string]any{"type": "message_start", "message": start})
	index := 0
	if a.Text != "" {
		send("content_block_start", map[string]any{"type": "content_block_start", "index": index, "content_block": map[string]any{"type": "text", "text": ""}})
		send("ping", map[string]any{"type": "ping"})
		for _, p := range pieces(a.Text, 2) {
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": map[string]any{"type": "text_delta", "text": p}})
		}
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
		index++
	}
	if a.ToolUseID != "" {
		send("content_block_start", map[string]any{"type": "content_block_start", "index": index, "content_block": map[string]any{"type": "tool_use", "id": a.ToolUseID, "name": a.ToolName, "input": map[string]any{}}})
		parts := append([]string{""}, jsonPieces(string(a.ToolInput))...)
		for _, p := range parts {
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": map[string]any{"type": "input_json_delta", "partial_json": p}})
		}
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
	}
	send("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": a.StopReason, "stop_sequence": a.stopSequence()},
		"usage": map[string]any{"output_tokens": a.OutputTokens},
	})
	send("message_stop", map[string]any{"type": "message_stop"})
}
