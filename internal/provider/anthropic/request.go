package anthropic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// The Messages request as this package writes it.
type (
	msgRequest struct {
		Model            string        `json:"model,omitempty"`
		AnthropicVersion string        `json:"anthropic_version,omitempty"`
		MaxTokens        int64         `json:"max_tokens"`
		System           string        `json:"system,omitempty"`
		Messages         []msgMessage  `json:"messages"`
		StopSequences    []string      `json:"stop_sequences,omitempty"`
		Temperature      *float64      `json:"temperature,omitempty"`
		TopP             *float64      `json:"top_p,omitempty"`
		Stream           bool          `json:"stream,omitempty"`
		Tools            []msgTool     `json:"tools,omitempty"`
		ToolChoice       *toolChoice   `json:"tool_choice,omitempty"`
		OutputConfig     *outputConfig `json:"output_config,omitempty"`
		Metadata         *msgMetadata  `json:"metadata,omitempty"`
	}
	msgMessage struct {
		Role    string     `json:"role"`
		Content []msgBlock `json:"content"`
	}
	msgBlock struct {
		Type      string          `json:"type"`
		Text      string          `json:"text,omitempty"`
		Source    *imageSource    `json:"source,omitempty"`
		ID        string          `json:"id,omitempty"`
		Name      string          `json:"name,omitempty"`
		Input     json.RawMessage `json:"input,omitempty"`
		ToolUseID string          `json:"tool_use_id,omitempty"`
		Content   json.RawMessage `json:"content,omitempty"`
	}
	imageSource struct {
		Type      string `json:"type"` // base64 or url
		MediaType string `json:"media_type,omitempty"`
		Data      string `json:"data,omitempty"`
		URL       string `json:"url,omitempty"`
	}
	msgTool struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		InputSchema json.RawMessage `json:"input_schema"`
		Strict      bool            `json:"strict,omitempty"`
	}
	toolChoice struct {
		Type                   string `json:"type"` // auto, any, tool, none
		Name                   string `json:"name,omitempty"`
		DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
	}
	outputConfig struct {
		Format outputFormat `json:"format"`
	}
	outputFormat struct {
		Type   string          `json:"type"` // json_schema
		Schema json.RawMessage `json:"schema"`
	}
	msgMetadata struct {
		UserID string `json:"user_id"`
	}
)

// jsonMarshal is json.Marshal without HTML escaping, so prompt text keeps its bytes.
func jsonMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}

var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

const (
	jsonInstruction   = "Respond only with a single valid JSON object, with no other text before or after it."
	schemaInstruction = "Respond only with a single valid JSON object, with no other text before or after it, that conforms to this JSON schema:\n"
)

// translateRequest turns an OpenAI chat request into a Messages request for model.
func (a *Adapter) translateRequest(ex *exchange.Exchange, model string) ([]byte, error) {
	cr, err := chat.DecodeRequest(ex.Body)
	if err != nil {
		return nil, err
	}
	if model == "" {
		model = cr.Model
	}
	r := msgRequest{Model: model, MaxTokens: cr.OutputLimit(), Stream: cr.Stream, TopP: cr.TopP, StopSequences: cr.Stop}
	if r.MaxTokens <= 0 {
		r.MaxTokens = a.maxTokens
	}
	if a.vertex {
		r.Model, r.AnthropicVersion = "", VertexVersion
	}
	if t := cr.Temperature; t != nil && *t > 1 {
		one := 1.0
		r.Temperature = &one
	} else {
		r.Temperature = t
	}
	if cr.User != "" {
		r.Metadata = &msgMetadata{UserID: cr.User}
	}

	var system []string
	for i := range cr.Messages {
		m := &cr.Messages[i]
		switch m.Role {
		case "system", "developer":
			if s := m.Content.String(); s != "" {
				system = append(system, s)
			}
			continue
		case "user", "assistant", "tool":
		default:
			return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "messages", Message: "Message role '" + m.Role + "' is not supported by Anthropic."}
		}
		role, blocks, err := convertMessage(m)
		if err != nil {
			return nil, err
		}
		if len(blocks) == 0 {
			continue // Anthropic rejects empty messages
		}
		// Anthropic wants user and assistant turns to alternate: merge runs.
		if n := len(r.Messages); n > 0 && r.Messages[n-1].Role == role {
			r.Messages[n-1].Content = append(r.Messages[n-1].Content, blocks...)
		} else {
			r.Messages = append(r.Messages, msgMessage{Role: role, Content: blocks})
		}
	}
	for i := range r.Messages {
		if r.Messages[i].Role == "user" {
			toolResultsFirst(r.Messages[i].Content)
		}
	}
	if r.Messages == nil {
		r.Messages = []msgMessage{}
	}

	if rf := cr.ResponseFormat; rf != nil {
		switch rf.Type {
		case "json_object":
			system = append(system, jsonInstruction)
		case "json_schema":
			js := rf.JSONSchema
			switch {
			case js == nil || len(js.Schema) == 0:
				system = append(system, jsonInstruction)
			case js.Strict != nil && *js.Strict:
				r.OutputConfig = &outputConfig{Format: outputFormat{Type: "json_schema", Schema: js.Schema}}
			default:
				system = append(system, schemaInstruction+string(js.Schema))
			}
		}
	}
	r.System = strings.Join(system, "\n\n")

	for _, t := range cr.Tools {
		if t.Type != "" && t.Type != "function" {
			return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "tools", Message: "Tools of type '" + t.Type + "' are not supported by Anthropic."}
		}
		schema := t.Function.Parameters
		if len(bytes.TrimSpace(schema)) == 0 || string(bytes.TrimSpace(schema)) == "null" {
			schema = emptySchema
		}
		r.Tools = append(r.Tools, msgTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema, Strict: t.Function.Strict != nil && *t.Function.Strict})
	}
	mode, fn := cr.ToolChoiceMode()
	if len(r.Tools) == 0 {
		mode = "" // a choice among no tools means nothing, and Anthropic may refuse it
	}
	switch mode {
	case "auto":
		r.ToolChoice = &toolChoice{Type: "auto"}
	case "required":
		r.ToolChoice = &toolChoice{Type: "any"}
	case "none":
		r.ToolChoice = &toolChoice{Type: "none"}
	case "function":
		r.ToolChoice = &toolChoice{Type: "tool", Name: fn}
	}
	if p := cr.ParallelToolCalls; p != nil && !*p && len(r.Tools) > 0 {
		if r.ToolChoice == nil {
			r.ToolChoice = &toolChoice{Type: "auto"}
		}
		if r.ToolChoice.Type != "none" {
			r.ToolChoice.DisableParallelToolUse = true
		}
	}
	return jsonMarshal(&r)
}

// convertMessage turns one user, assistant or tool message into Anthropic content blocks
// and the role they go under (tool results are user content).
func convertMessage(m *chat.Message) (string, []msgBlock, error) {
	switch m.Role {
	case "tool":
		b := msgBlock{Type: "tool_result", ToolUseID: m.ToolCallID}
		if s := m.Content.String(); s != "" {
			b.Content, _ = jsonMarshal(s)
		}
		return "user", []msgBlock{b}, nil
	case "assistant":
		var blocks []msgBlock
		if s := m.Content.String(); s != "" {
			blocks = append(blocks, msgBlock{Type: "text", Text: s})
		}
		for _, tc := range m.ToolCalls {
			input, err := toolInput(tc.Function.Arguments)
			if err != nil {
				return "", nil, err
			}
			blocks = append(blocks, msgBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
		}
		return "assistant", blocks, nil
	}
	if m.Content.Text != nil {
		if *m.Content.Text == "" {
			return "user", nil, nil
		}
		return "user", []msgBlock{{Type: "text", Text: *m.Content.Text}}, nil
	}
	blocks := make([]msgBlock, 0, len(m.Content.Parts))
	for _, p := range m.Content.Parts {
		switch p.Type {
		case "text":
			if p.Text != "" {
				blocks = append(blocks, msgBlock{Type: "text", Text: p.Text})
			}
		case "image_url":
			if p.ImageURL == nil {
				return "", nil, badRequest("An image_url content part has no URL.")
			}
			src, err := imageFrom(p.ImageURL.URL)
			if err != nil {
				return "", nil, err
			}
			blocks = append(blocks, msgBlock{Type: "image", Source: src})
		default:
			return "", nil, badRequest("Content parts of type '" + p.Type + "' are not supported by Anthropic.")
		}
	}
	return "user", blocks, nil
}

func imageFrom(u string) (*imageSource, error) {
	if mt, data, ok := chat.ParseDataURL(u); ok {
		return &imageSource{Type: "base64", MediaType: mt, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &imageSource{Type: "url", URL: u}, nil
	}
	return nil, badRequest("An image URL must be an https URL or a base64 data URL.")
}

// toolInput is a tool call's arguments as the object Anthropic's tool_use input must be.
func toolInput(args string) (json.RawMessage, error) {
	a := bytes.TrimSpace([]byte(args))
	if len(a) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if a[0] != '{' || !json.Valid(a) {
		return nil, badRequest("Tool call arguments must be a JSON object.")
	}
	var c bytes.Buffer
	if json.Compact(&c, a) != nil {
		return nil, badRequest("Tool call arguments must be a JSON object.")
	}
	return c.Bytes(), nil
}

// toolResultsFirst moves tool_result blocks to the front, keeping order: Anthropic wants
// them before any other content of the user turn.
func toolResultsFirst(blocks []msgBlock) {
	n := 0
	for i := range blocks {
		if blocks[i].Type == "tool_result" {
			if i != n {
				b := blocks[i]
				copy(blocks[n+1:i+1], blocks[n:i])
				blocks[n] = b
			}
			n++
		}
	}
}
