package fakeanthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// request is a checked Messages request.
type request struct {
	Model         string
	MaxTokens     int64
	System        string
	Messages      []message
	Tools         []tool
	ToolChoice    string // auto, any, tool, none ("" when absent)
	ToolName      string // for ToolChoice tool
	StopSequences []string
	Stream        bool
}

type message struct {
	Role   string
	Blocks []block
}

type block struct {
	Type      string
	Text      string          // text; a tool_result's text content
	ID, Name  string          // tool_use
	Input     json.RawMessage // tool_use
	ToolUseID string          // tool_result
}

type tool struct {
	Name, Description string
	Schema            json.RawMessage // nil for server tools
}

var (
	messageKeys = set("model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
		"temperature", "top_k", "top_p", "tools", "tool_choice", "thinking", "service_tier", "container",
		"context_management", "mcp_servers", "output_config", "output_format", "inference_geo")
	countKeys = set("model", "messages", "system", "tools", "tool_choice", "thinking", "context_management",
		"mcp_servers", "output_config", "output_format")
	toolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
)

func set(keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func invalidf(format string, args ...any) *apiError { return invalid(fmt.Sprintf(format, args...)) }

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// parse checks a request body as the Messages API does.
func (f *Fake) parse(body []byte, vertex, count bool) (*request, *apiError) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, invalid("There was an error parsing the body of your request: it is not a JSON object.")
	}
	allowed := messageKeys
	if count {
		allowed = countKeys
	}
	for k := range top {
		switch {
		case k == "anthropic_version" && vertex:
		case k == "model" && vertex:
			return nil, invalid("model: Extra inputs are not permitted (on Vertex AI the model is named in the URL)")
		case !allowed[k]:
			return nil, invalidf("%s: Extra inputs are not permitted", k)
		}
	}
	r := &request{}
	if vertex {
		var v string
		if raw, ok := top["anthropic_version"]; !ok || json.Unmarshal(raw, &v) != nil {
			return nil, invalid("anthropic_version: Field required")
		} else if v != VertexVersion {
			return nil, invalidf("anthropic_version: Input should be '%s'", VertexVersion)
		}
	} else {
		raw, ok := top["model"]
		if !ok {
			return nil, invalid("model: Field required")
		}
		if json.Unmarshal(raw, &r.Model) != nil || r.Model == "" {
			return nil, invalid("model: Input should be a valid string")
		}
	}
	if !count {
		raw, ok := top["max_tokens"]
		if !ok {
			return nil, invalid("max_tokens: Field required")
		}
		if json.Unmarshal(raw, &r.MaxTokens) != nil {
			return nil, invalid("max_tokens: Input should be a valid integer")
		}
		if r.MaxTokens < 1 {
			return nil, invalid("max_tokens: Input should be greater than or equal to 1")
		}
	}
	if raw, ok := top["stream"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &r.Stream) != nil {
			return nil, invalid("stream: Input should be a valid boolean")
		}
	}
	for _, k := range []string{"temperature", "top_p"} {
		if raw, ok := top[k]; ok && !isNull(raw) {
			var x float64
			if json.Unmarshal(raw, &x) != nil || x < 0 || x > 1 {
				return nil, invalidf("%s: Input should be a number between 0 and 1", k)
			}
		}
	}
	if raw, ok := top["top_k"]; ok && !isNull(raw) {
		var x int64
		if json.Unmarshal(raw, &x) != nil || x < 0 {
			return nil, invalid("top_k: Input should be a non-negative integer")
		}
	}
	if raw, ok := top["metadata"]; ok && !isNull(raw) {
		var md map[string]json.RawMessage
		if json.Unmarshal(raw, &md) != nil {
			return nil, invalid("metadata: Input should be an object")
		}
		for k, v := range md {
			var s *string
			if k != "user_id" {
				return nil, invalidf("metadata.%s: Extra inputs are not permitted", k)
			}
			if json.Unmarshal(v, &s) != nil || (s != nil && len(*s) > 256) {
				return nil, invalid("metadata.user_id: Input should be a string of at most 256 characters")
			}
		}
	}
	if raw, ok := top["stop_sequences"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &r.StopSequences) != nil {
			return nil, invalid("stop_sequences: Input should be a list of strings")
		}
		for _, s := range r.StopSequences {
			if strings.TrimSpace(s) == "" {
				return nil, invalid("stop_sequences: each stop sequence must contain non-whitespace")
			}
		}
	}
	if raw, ok := top["system"]; ok && !isNull(raw) {
		s, err := systemText(raw)
		if err != nil {
			return nil, err
		}
		r.System = s
	}
	if err := r.parseTools(top["tools"], top["tool_choice"]); err != nil {
		return nil, err
	}
	raw, ok := top["messages"]
	if !ok {
		return nil, invalid("messages: Field required")
	}
	var msgs []json.RawMessage
	if json.Unmarshal(raw, &msgs) != nil {
		return nil, invalid("messages: Input should be a valid list")
	}
	if len(msgs) == 0 {
		return nil, invalid("messages: at least one message is required")
	}
	for i, m := range msgs {
		msg, err := parseMessage(i, m, i == len(msgs)-1)
		if err != nil {
			return nil, err
		}
		switch {
		case i == 0 && msg.Role != "user":
			return nil, invalid("messages: first message must use the \"user\" role")
		case i > 0 && r.Messages[i-1].Role == msg.Role:
			return nil, invalidf("messages: roles must alternate between \"user\" and \"assistant\", but found multiple %q roles in a row", msg.Role)
		}
		r.Messages = append(r.Messages, msg)
	}
	if err := checkToolPairs(r.Messages); err != nil {
		return nil, err
	}
	return r, nil
}

func systemText(raw json.RawMessage) (string, *apiError) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []map[string]json.RawMessage
	if json.Unmarshal(raw, &blocks) != nil {
		return "", invalid("system: Input should be a valid string or a list of text blocks")
	}
	var parts []string
	for i, b := range blocks {
		var typ, text string
		json.Unmarshal(b["type"], &typ)
		if typ != "text" || json.Unmarshal(b["text"], &text) != nil {
			return "", invalidf("system.%d: Input should be a text block", i)
		}
		if strings.TrimSpace(text) == "" {
			return "", invalidf("system.%d.text: text content blocks must be non-empty", i)
		}
		parts = append(parts, text)
	}
	return strings.Join(parts, "\n"), nil
}

func (r *request) parseTools(rawTools, rawChoice json.RawMessage) *apiError {
	if len(rawTools) > 0 && !isNull(rawTools) {
		var tools []map[string]json.RawMessage
		if json.Unmarshal(rawTools, &tools) != nil {
			return invalid("tools: Input should be a valid list")
		}
		seen := map[string]bool{}
		for i, t := range tools {
			var typ, name, desc string
			json.Unmarshal(t["type"], &typ)
			if json.Unmarshal(t["name"], &name) != nil || name == "" {
				return invalidf("tools.%d.name: Field required", i)
			}
			if seen[name] {
				return invalid("tools: Tool names must be unique.")
			}
			seen[name] = true
			if typ != "" && typ != "custom" {
				if !strings.Contains(typ, "_20") {
					return invalidf("tools.%d: Input tag '%s' found using 'type' does not match any of the expected tags", i, typ)
				}
				r.Tools = append(r.Tools, tool{Name: name}) // a server tool
				continue
			}
			if !toolName.MatchString(name) {
				return invalidf("tools.%d.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i)
			}
			if d, ok := t["description"]; ok && json.Unmarshal(d, &desc) != nil {
				return invalidf("tools.%d.custom.description: Input should be a valid string", i)
			}
			schema, ok := t["input_schema"]
			if !ok {
				return invalidf("tools.%d.custom.input_schema: Field required", i)
			}
			var s struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(schema, &s) != nil || s.Type != "object" {
				return invalidf("tools.%d.custom.input_schema.type: Input should be 'object'", i)
			}
			r.Tools = append(r.Tools, tool{Name: name, Description: desc, Schema: schema})
		}
	}
	if len(rawChoice) == 0 || isNull(rawChoice) {
		return nil
	}
	var tc struct {
		Type                   string `json:"type"`
		Name                   string `json:"name"`
		DisableParallelToolUse *bool  `json:"disable_parallel_tool_use"`
	}
	if json.Unmarshal(rawChoice, &tc) != nil {
		return invalid("tool_choice: Input should be an object")
	}
	switch tc.Type {
	case "auto", "none":
	case "any":
		if len(r.Tools) == 0 {
			return invalid("tool_choice: tool_choice may only be specified while providing tools.")
		}
	case "tool":
		if len(r.Tools) == 0 {
			return invalid("tool_choice: tool_choice may only be specified while providing tools.")
		}
		found := false
		for _, t := range r.Tools {
			found = found || t.Name == tc.Name
		}
		if !found {
			return invalidf("tool_choice.tool.name: Tool '%s' not found in provided tools", tc.Name)
		}
	default:
		return invalidf("tool_choice: Input tag '%s' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'", tc.Type)
	}
	r.ToolChoice, r.ToolName = tc.Type, tc.Name
	return nil
}

func parseMessage(i int, raw json.RawMessage, last bool) (message, *apiError) {
	var m struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	var extra map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || json.Unmarshal(raw, &extra) != nil {
		return message{}, invalidf("messages.%d: Input should be an object", i)
	}
	for k := range extra {
		if k != "role" && k != "content" {
			return message{}, invalidf("messages.%d.%s: Extra inputs are not permitted", i, k)
		}
	}
	if m.Role != "user" && m.Role != "assistant" {
		return message{}, invalidf("messages.%d.role: Input should be 'user' or 'assistant'", i)
	}
	msg := message{Role: m.Role}
	// Only a final assistant message (a prefill) may be empty.
	mayBeEmpty := last && m.Role == "assistant"
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		if strings.TrimSpace(s) == "" && !mayBeEmpty {
			return message{}, invalidf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
		}
		if s != "" {
			msg.Blocks = []block{{Type: "text", Text: s}}
		}
		return msg, nil
	}
	var blocks []map[string]json.RawMessage
	if json.Unmarshal(m.Content, &blocks) != nil {
		return message{}, invalidf("messages.%d.content: Input should be a valid string or list of content blocks", i)
	}
	if len(blocks) == 0 && !mayBeEmpty {
		return message{}, invalidf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
	}
	for j, b := range blocks {
		blk, err := parseBlock(b, m.Role, fmt.Sprintf("messages.%d.content.%d", i, j))
		if err != nil {
			return message{}, err
		}
		msg.Blocks = append(msg.Blocks, blk)
	}
	return msg, nil
}

var imageTypes = set("image/jpeg", "image/png", "image/gif", "image/webp")

func parseBlock(b map[string]json.RawMessage, role, where string) (block, *apiError) {
	var blk block
	json.Unmarshal(b["type"], &blk.Type)
	switch blk.Type {
	case "text":
		if json.Unmarshal(b["text"], &blk.Text) != nil {
			return blk, invalidf("%s.text: Field required", where)
		}
		if strings.TrimSpace(blk.Text) == "" {
			return blk, invalid("messages: text content blocks must contain non-whitespace text")
		}
	case "image":
		if err := checkImage(b["source"], where); err != nil {
			return blk, err
		}
	case "document":
		if role != "user" {
			return blk, invalidf("%s: document blocks are only allowed in user messages", where)
		}
	case "tool_use":
		if role != "assistant" {
			return blk, invalidf("%s: tool_use blocks are only allowed in assistant messages", where)
		}
		json.Unmarshal(b["id"], &blk.ID)
		json.Unmarshal(b["name"], &blk.Name)
		if blk.ID == "" || blk.Name == "" {
			return blk, invalidf("%s: tool_use blocks need an id and a name", where)
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(b["input"], &obj) != nil || obj == nil {
			return blk, invalidf("%s.input: Input should be a valid dictionary", where)
		}
		var c bytes.Buffer
		json.Compact(&c, b["input"])
		blk.Input = c.Bytes()
	case "tool_result":
		if role != "user" {
			return blk, invalidf("%s: tool_result blocks are only allowed in user messages", where)
		}
		if json.Unmarshal(b["tool_use_id"], &blk.ToolUseID) != nil || blk.ToolUseID == "" {
			return blk, invalidf("%s.tool_use_id: Field required", where)
		}
		if ie, ok := b["is_error"]; ok {
			var x bool
			if json.Unmarshal(ie, &x) != nil {
				return blk, invalidf("%s.is_error: Input should be a valid boolean", where)
			}
		}
		if c, ok := b["content"]; ok && !isNull(c) {
			var s string
			if json.Unmarshal(c, &s) == nil {
				blk.Text = s
				break
			}
			var inner []map[string]json.RawMessage
			if json.Unmarshal(c, &inner) != nil {
				return blk, invalidf("%s.content: Input should be a valid string or list of content blocks", where)
			}
			var texts []string
			for k, ib := range inner {
				ibk, err := parseBlock(ib, "user", fmt.Sprintf("%s.content.%d", where, k))
				if err != nil {
					return blk, err
				}
				switch ibk.Type {
				case "text":
					texts = append(texts, ibk.Text)
				case "image", "document":
				default:
					return blk, invalidf("%s.content.%d: tool_result content may hold text, image and document blocks only", where, k)
				}
			}
			blk.Text = strings.Join(texts, " ")
		}
	case "thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result":
		if role != "assistant" {
			return blk, invalidf("%s: %s blocks are only allowed in assistant messages", where, blk.Type)
		}
	default:
		return blk, invalidf("%s: Input tag '%s' found using 'type' does not match any of the expected tags", where, blk.Type)
	}
	return blk, nil
}

func checkImage(raw json.RawMessage, where string) *apiError {
	var src struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	}
	if json.Unmarshal(raw, &src) != nil {
		return invalidf("%s.source: Field required", where)
	}
	switch src.Type {
	case "base64":
		if !imageTypes[src.MediaType] {
			return invalidf("%s.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'", where)
		}
		if src.Data == "" {
			return invalidf("%s.source.base64.data: Field required", where)
		}
	case "url":
		if !strings.HasPrefix(src.URL, "https://") && !strings.HasPrefix(src.URL, "http://") {
			return invalidf("%s.source.url.url: Input should be a valid URL", where)
		}
	default:
		return invalidf("%s.source: Input tag '%s' found using 'type' does not match any of the expected tags", where, src.Type)
	}
	return nil
}

// checkToolPairs enforces that each assistant turn's tool_use blocks are answered by
// tool_result blocks at the start of the next user turn, and only those.
func checkToolPairs(msgs []message) *apiError {
	for i := range msgs {
		if msgs[i].Role != "user" {
			continue
		}
		var pending []string
		if i > 0 {
			for _, b := range msgs[i-1].Blocks {
				if b.Type == "tool_use" {
					pending = append(pending, b.ID)
				}
			}
		}
		answered := map[string]bool{}
		seenOther := false
		for j, b := range msgs[i].Blocks {
			if b.Type != "tool_result" {
				seenOther = true
				continue
			}
			if seenOther {
				return invalidf("messages.%d.content.%d: tool_result blocks must come first in the content array of a user message, before any other content", i, j)
			}
			found := false
			for _, id := range pending {
				found = found || id == b.ToolUseID
			}
			if !found {
				return invalidf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, b.ToolUseID)
			}
			answered[b.ToolUseID] = true
		}
		var missing []string
		for _, id := range pending {
			if !answered[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return invalidf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i, strings.Join(missing, ", "))
		}
	}
	return nil
}

// Words is the fake's token count of s: its whitespace-separated words.
func Words(s string) int64 { return int64(len(strings.Fields(s))) }

// inputTokens counts the prompt: system, tools and every message.
func (r *request) inputTokens() int64 {
	n := Words(r.System)
	for _, t := range r.Tools {
		n += Words(t.Name) + Words(t.Description)
	}
	for _, m := range r.Messages {
		for _, b := range m.Blocks {
			switch b.Type {
			case "text", "tool_result":
				n += Words(b.Text)
			case "tool_use":
				n += Words(b.Name) + Words(string(b.Input))
			case "image", "document":
				n++
			}
		}
	}
	return max(n, 1)
}
