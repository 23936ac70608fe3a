package anthropic

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// The Messages request as an Anthropic client sends it (the parts a chat request can
// carry; top_k, thinking, cache_control and the like have no chat equivalent).
type (
	inRequest struct {
		Model         string          `json:"model"`
		MaxTokens     *int64          `json:"max_tokens"`
		System        json.RawMessage `json:"system"`
		Messages      []inMessage     `json:"messages"`
		StopSequences []string        `json:"stop_sequences"`
		Temperature   *float64        `json:"temperature"`
		TopP          *float64        `json:"top_p"`
		Stream        bool            `json:"stream"`
		Tools         []inTool        `json:"tools"`
		ToolChoice    *toolChoice     `json:"tool_choice"`
		Metadata      *msgMetadata    `json:"metadata"`
		OutputConfig  *struct {
			Format *outputFormat `json:"format"`
		} `json:"output_config"`
		OutputFormat *outputFormat `json:"output_format"` // the beta spelling
	}
	inMessage struct {
		Role    string    `json:"role"`
		Content inContent `json:"content"`
	}
	inBlock struct {
		Type      string          `json:"type"`
		Text      string          `json:"text"`
		Source    *imageSource    `json:"source"`
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
		ToolUseID string          `json:"tool_use_id"`
		Content   inContent       `json:"content"`
	}
	inTool struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
		Strict      *bool           `json:"strict"`
	}
)

// inContent is a string or an array of blocks.
type inContent struct {
	text   *string
	blocks []inBlock
}

func (c *inContent) UnmarshalJSON(b []byte) error {
	text, blocks, err := chat.StringOrArray[inBlock](b)
	if err != nil {
		return errors.New("content must be a string or an array of content blocks")
	}
	*c = inContent{text: text, blocks: blocks}
	return nil
}

// text joins the text of the content (a string, or its text blocks).
func (c *inContent) joined(sep string) string {
	if c.text != nil {
		return *c.text
	}
	var parts []string
	for _, b := range c.blocks {
		if b.Type == "text" {
			parts = append(parts, b.Text)
		}
	}
	return strings.Join(parts, sep)
}

func invalid(param, msg string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: param, Message: msg}
}

// ChatRequest translates an Anthropic Messages request into an OpenAI chat request, for a
// backend that speaks only OpenAI. Tool results become tool messages ahead of the rest of
// their user turn, as OpenAI wants them right after the assistant's tool calls; images in
// a tool result join that user turn (tool messages carry text only). max_tokens becomes
// max_completion_tokens, structured output (output_config.format) a strict json_schema
// response_format. What has no chat equivalent is dropped: top_k, thinking (and thinking
// blocks of earlier turns), cache_control, is_error. Documents, server tools and other
// block types are refused. Errors are *apierr.Error (400).
func ChatRequest(messagesBody []byte) ([]byte, error) {
	var r inRequest
	if err := json.Unmarshal(messagesBody, &r); err != nil {
		return nil, invalid("", "The request body does not match the Messages schema.")
	}
	out := chat.Request{
		Model:       r.Model,
		Temperature: r.Temperature,
		TopP:        r.TopP,
		Stop:        r.StopSequences,
		Stream:      r.Stream,
	}
	if r.MaxTokens != nil {
		// max_completion_tokens is OpenAI's current name; reasoning models reject max_tokens
		out.MaxCompletionTokens = r.MaxTokens
	}
	if r.Stream {
		out.StreamOptions = &chat.StreamOptions{IncludeUsage: true}
	}
	if r.Metadata != nil {
		out.User = r.Metadata.UserID
	}

	if sys := bytes.TrimSpace(r.System); len(sys) > 0 && string(sys) != "null" {
		var c inContent
		if err := json.Unmarshal(sys, &c); err != nil {
			return nil, invalid("system", "system must be a string or an array of text blocks.")
		}
		if s := c.joined("\n"); s != "" {
			out.Messages = append(out.Messages, chat.Message{Role: "system", Content: chat.Content{Text: &s}})
		}
	}
	for i := range r.Messages {
		msgs, err := chatMessages(&r.Messages[i])
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, msgs...)
	}
	if out.Messages == nil {
		out.Messages = []chat.Message{}
	}

	for _, t := range r.Tools {
		if t.Type != "" && t.Type != "custom" {
			return nil, invalid("tools", "Tools of type '"+t.Type+"' are not supported by this model's backend.")
		}
		out.Tools = append(out.Tools, chat.Tool{Type: "function", Function: chat.Function{Name: t.Name, Description: t.Description, Parameters: t.InputSchema, Strict: t.Strict}})
	}
	if tc := r.ToolChoice; tc != nil && len(out.Tools) > 0 { // OpenAI refuses a choice without tools
		var choice any
		switch tc.Type {
		case "auto", "":
			choice = "auto"
		case "any":
			choice = "required"
		case "none":
			choice = "none"
		case "tool":
			choice = map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}}
		default:
			return nil, invalid("tool_choice", "tool_choice of type '"+tc.Type+"' is not supported.")
		}
		out.ToolChoice, _ = json.Marshal(choice)
		if tc.DisableParallelToolUse && len(out.Tools) > 0 {
			f := false
			out.ParallelToolCalls = &f
		}
	}
	format := r.OutputFormat
	if r.OutputConfig != nil && r.OutputConfig.Format != nil {
		format = r.OutputConfig.Format
	}
	if format != nil && format.Type == "json_schema" && len(format.Schema) > 0 {
		strict := true // Anthropic's structured output is always constrained
		out.ResponseFormat = &chat.ResponseFormat{Type: "json_schema", JSONSchema: &chat.JSONSchema{Name: "output", Schema: format.Schema, Strict: &strict}}
	}
	return jsonMarshal(&out)
}

// chatMessages translates one Anthropic message into chat messages.
func chatMessages(m *inMessage) ([]chat.Message, error) {
	switch m.Role {
	case "user", "assistant":
	default:
		return nil, invalid("messages", "Message role '"+m.Role+"' is not supported; use user or assistant.")
	}
	if c := m.Content.text; c != nil {
		s := *c
		return []chat.Message{{Role: m.Role, Content: chat.Content{Text: &s}}}, nil
	}
	if m.Role == "assistant" {
		msg := chat.Message{Role: "assistant"}
		var text strings.Builder
		hasText := false
		for _, b := range m.Content.blocks {
			switch b.Type {
			case "text":
				text.WriteString(b.Text)
				hasText = true
			case "tool_use":
				args := []byte("{}")
				if in := bytes.TrimSpace(b.Input); len(in) > 0 && string(in) != "null" {
					var c bytes.Buffer
					if err := json.Compact(&c, in); err != nil {
						return nil, invalid("messages", "tool_use input must be a JSON object.")
					}
					args = c.Bytes()
				}
				msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{ID: b.ID, Type: "function", Function: chat.FunctionCall{Name: b.Name, Arguments: string(args)}})
			case "thinking", "redacted_thinking":
				// Anthropic's own reasoning record; another provider cannot use it
			default:
				return nil, invalid("messages", "Content blocks of type '"+b.Type+"' are not supported by this model's backend.")
			}
		}
		if hasText || len(msg.ToolCalls) == 0 {
			s := text.String()
			msg.Content.Text = &s
		}
		return []chat.Message{msg}, nil
	}
	var out []chat.Message
	var parts []chat.Part
	for _, b := range m.Content.blocks {
		switch b.Type {
		case "text":
			parts = append(parts, chat.Part{Type: "text", Text: b.Text})
		case "image":
			p, err := imagePart(b.Source)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		case "tool_result":
			// OpenAI tool messages carry text only: images in a result join the user turn
			s := b.Content.joined("\n")
			out = append(out, chat.Message{Role: "tool", ToolCallID: b.ToolUseID, Content: chat.Content{Text: &s}})
			for _, rb := range b.Content.blocks {
				switch rb.Type {
				case "text":
				case "image":
					p, err := imagePart(rb.Source)
					if err != nil {
						return nil, err
					}
					parts = append(parts, p)
				default:
					return nil, invalid("messages", "Tool result blocks of type '"+rb.Type+"' are not supported by this model's backend.")
				}
			}
		default:
			return nil, invalid("messages", "Content blocks of type '"+b.Type+"' are not supported by this model's backend.")
		}
	}
	switch {
	case len(parts) == 1 && parts[0].Type == "text":
		s := parts[0].Text
		out = append(out, chat.Message{Role: "user", Content: chat.Content{Text: &s}})
	case len(parts) > 0:
		out = append(out, chat.Message{Role: "user", Content: chat.Content{Parts: parts}})
	case len(out) == 0:
		s := ""
		out = append(out, chat.Message{Role: "user", Content: chat.Content{Text: &s}})
	}
	return out, nil
}

func imagePart(src *imageSource) (chat.Part, error) {
	if src == nil {
		return chat.Part{}, invalid("messages", "An image block has no source.")
	}
	var u string
	switch src.Type {
	case "base64":
		if src.MediaType == "" || src.Data == "" {
			return chat.Part{}, invalid("messages", "A base64 image needs media_type and data.")
		}
		u = "data:" + src.MediaType + ";base64," + src.Data
	case "url":
		if src.URL == "" {
			return chat.Part{}, invalid("messages", "A url image needs a url.")
		}
		u = src.URL
	default:
		return chat.Part{}, invalid("messages", "Image sources of type '"+src.Type+"' are not supported by this model's backend.")
	}
	return chat.Part{Type: "image_url", ImageURL: &chat.ImageURL{URL: u}}, nil
}

// The Messages answer as this package writes it.
type (
	msgAnswer struct {
		ID           string    `json:"id"`
		Type         string    `json:"type"`
		Role         string    `json:"role"`
		Model        string    `json:"model"`
		Content      []any     `json:"content"`
		StopReason   string    `json:"stop_reason"`
		StopSequence *string   `json:"stop_sequence"`
		Usage        usageJSON `json:"usage"`
	}
	textBlock struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	toolUseBlock struct {
		Type  string          `json:"type"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
	usageJSON struct {
		InputTokens              int64 `json:"input_tokens"`
		CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
		OutputTokens             int64 `json:"output_tokens"`
	}
)

// anthropicUsage splits OpenAI's prompt_tokens Anthropic's way: input_tokens is what was
// not read from or written to the cache, so the three parts add up to the prompt.
func anthropicUsage(u *chat.Usage) usageJSON {
	if u == nil {
		return usageJSON{}
	}
	out := usageJSON{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens}
	if d := u.PromptTokensDetails; d != nil {
		out.CacheReadInputTokens = d.CachedTokens
		out.CacheCreationInputTokens = d.CacheCreationTokens
		out.InputTokens = max(0, u.PromptTokens-d.CachedTokens-d.CacheCreationTokens)
	}
	return out
}

// stopReason maps an OpenAI finish_reason to an Anthropic stop_reason.
func stopReason(finish string) string {
	switch finish {
	case chat.FinishLength:
		return "max_tokens"
	case chat.FinishToolCalls, "function_call":
		return "tool_use"
	case chat.FinishContentFilter:
		return "refusal"
	}
	return "end_turn"
}

// messageID makes a Messages id from a chat completion id ("chatcmpl-x" → "msg_x"), or
// a random one.
func messageID(id string) string {
	id = strings.TrimPrefix(id, "chatcmpl-")
	if id == "" {
		var b [12]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	return "msg_" + id
}

// MessagesAnswer translates an OpenAI chat completion into an Anthropic message named
// model, for an Anthropic client whose request went to an OpenAI backend.
func MessagesAnswer(chatResponse []byte, model string) ([]byte, error) {
	var r chat.Response
	if err := json.Unmarshal(chatResponse, &r); err != nil {
		return nil, errUnreadable
	}
	out := msgAnswer{ID: messageID(r.ID), Type: "message", Role: "assistant", Model: model, Content: []any{}, StopReason: "end_turn", Usage: anthropicUsage(r.Usage)}
	if len(r.Choices) > 0 {
		c := &r.Choices[0]
		out.StopReason = stopReason(c.FinishReason)
		if p := c.Message.Refusal; p != nil && *p != "" {
			out.Content = append(out.Content, textBlock{"text", *p})
			out.StopReason = "refusal"
		}
		if p := c.Message.Content; p != nil && *p != "" {
			out.Content = append(out.Content, textBlock{"text", *p})
		}
		for _, tc := range c.Message.ToolCalls {
			input := json.RawMessage(`{}`)
			if a := bytes.TrimSpace([]byte(tc.Function.Arguments)); len(a) > 0 {
				if a[0] != '{' || !json.Valid(a) {
					return nil, errUnreadable
				}
				var buf bytes.Buffer
				json.Compact(&buf, a)
				input = buf.Bytes()
			}
			out.Content = append(out.Content, toolUseBlock{"tool_use", tc.ID, tc.Function.Name, input})
		}
	}
	return jsonMarshal(&out)
}

// ErrorFromOpenAI reads an OpenAI error answer ({"error":{"message","type","param",
// "code"}}) into an apierr.Error with its status, code and message, so the gateway can
// render it for an Anthropic client.
func ErrorFromOpenAI(status int, body []byte) *apierr.Error {
	e := &apierr.Error{Status: status}
	var kind string
	if obj := member(bytes.TrimSpace(body), "error"); len(obj) > 0 && obj[0] == '{' {
		jsonscan.Object(obj, func(m jsonscan.Member) bool {
			v := m.Value(obj)
			switch string(m.Key(obj)) {
			case "message":
				e.Message, _ = jsonscan.String(v)
			case "type":
				kind, _ = jsonscan.String(v)
			case "param":
				e.Param, _ = jsonscan.String(v)
			case "code":
				if s, ok := jsonscan.String(v); ok {
					e.Code = s
				} else if !jsonscan.IsNull(v) {
					e.Code = string(v) // a numeric code
				}
			}
			return true
		})
	}
	if e.Code == "" {
		e.Code = kind
	}
	if e.Code == "" {
		e.Code = codeFor(status)
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// codeFor is the stable code for an error status that came without one.
func codeFor(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return apierr.CodeRateLimitExceeded
	case status == http.StatusNotFound:
		return apierr.CodeModelNotFound
	case status == http.StatusRequestEntityTooLarge:
		return apierr.CodeRequestTooLarge
	case status == http.StatusGatewayTimeout:
		return apierr.CodeUpstreamTimeout
	case status >= 500:
		return apierr.CodeUpstreamError
	}
	return apierr.CodeInvalidRequest
}
