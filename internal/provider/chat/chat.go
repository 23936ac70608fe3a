// Package chat holds the OpenAI chat-completions wire as Go types, for the adapters that
// translate it to and from other providers' formats (Anthropic, Bedrock, Vertex). The
// OpenAI adapter itself never decodes a request this way: it splices bytes. Only fields the
// translating adapters use are modelled; unknown fields are ignored on decode.
package chat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
)

// Request is a chat completion request.
type Request struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	MaxTokens           *int64          `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	Stop                StringList      `json:"stop,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	User                string          `json:"user,omitempty"`
	ReasoningEffort     string          `json:"reasoning_effort,omitempty"`
	Metadata            map[string]any  `json:"metadata,omitempty"`
}

// OutputLimit is max_completion_tokens, else max_tokens, else 0.
func (r *Request) OutputLimit() int64 {
	if r.MaxCompletionTokens != nil {
		return *r.MaxCompletionTokens
	}
	if r.MaxTokens != nil {
		return *r.MaxTokens
	}
	return 0
}

// StreamOptions is stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage,omitempty"`
}

// ResponseFormat is response_format: "text", "json_object" or "json_schema".
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is response_format.json_schema.
type JSONSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Message is one message of the conversation.
type Message struct {
	Role       string     `json:"role"` // system, developer, user, assistant, tool
	Content    Content    `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// Content is a message's content: a string, an array of parts, or null.
type Content struct {
	Text  *string
	Parts []Part
}

// Part is one content part.
type Part struct {
	Type     string    `json:"type"` // text, image_url (others are passed over)
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL is an image part's URL (https or a data: URL).
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// UnmarshalJSON accepts a string, an array of parts, or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	text, parts, err := StringOrArray[Part](b)
	if err != nil {
		return errors.New("content must be a string, an array of parts or null")
	}
	*c = Content{Text: text, Parts: parts}
	return nil
}

// StringOrArray decodes a JSON value that is a string, an array of T, or null, as both
// wires' message contents are.
func StringOrArray[T any](b []byte) (*string, []T, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil, nil, nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, nil, err
		}
		return &s, nil, nil
	case b[0] == '[':
		var items []T
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, nil, err
		}
		if items == nil {
			items = []T{}
		}
		return nil, items, nil
	}
	return nil, nil, errors.New("neither a string nor an array")
}

// MarshalJSON writes a string when there are no parts.
func (c Content) MarshalJSON() ([]byte, error) {
	switch {
	case c.Parts != nil:
		return json.Marshal(c.Parts)
	case c.Text != nil:
		return json.Marshal(*c.Text)
	}
	return []byte("null"), nil
}

// String joins the text of the content (a string, or the text parts).
func (c Content) String() string {
	if c.Text != nil {
		return *c.Text
	}
	var b strings.Builder
	for _, p := range c.Parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// StringList is a string or an array of strings (stop).
type StringList []string

// UnmarshalJSON accepts a string, an array of strings, or null.
func (l *StringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*l = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = StringList{s}
		return nil
	}
	var ss []string
	if err := json.Unmarshal(b, &ss); err != nil {
		return err
	}
	*l = ss
	return nil
}

// Tool is a tool definition.
type Tool struct {
	Type     string   `json:"type"` // function
	Function Function `json:"function"`
}

// Function is a function tool.
type Function struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ToolCall is a call the assistant made (Index is set in stream deltas).
type ToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is the function and its JSON-encoded arguments.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// ToolChoiceMode reads tool_choice: "none", "auto", "required", or a function name when
// it names one ({"type":"function","function":{"name":...}}).
func (r *Request) ToolChoiceMode() (mode, function string) {
	tc := bytes.TrimSpace(r.ToolChoice)
	if len(tc) == 0 || string(tc) == "null" {
		return "", ""
	}
	var s string
	if json.Unmarshal(tc, &s) == nil {
		return s, ""
	}
	var obj struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(tc, &obj) == nil && obj.Function.Name != "" {
		return "function", obj.Function.Name
	}
	return "", ""
}

// Response is a (non-streamed) chat completion.
type Response struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"` // chat.completion
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
}

// Choice is one choice of a Response.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
}

// ResponseMessage is the assistant's message.
type ResponseMessage struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	Refusal   *string    `json:"refusal,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// Usage is OpenAI's usage object.
type Usage struct {
	PromptTokens            int64                    `json:"prompt_tokens"`
	CompletionTokens        int64                    `json:"completion_tokens"`
	TotalTokens             int64                    `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
}

// PromptTokensDetails breaks down prompt tokens.
type PromptTokensDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
	// CacheCreationTokens is not OpenAI's; Sluice reports Anthropic's cache writes here.
	CacheCreationTokens int64 `json:"cache_creation_tokens,omitempty"`
}

// CompletionTokensDetails breaks down completion tokens.
type CompletionTokensDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// Chunk is one streamed chunk.
type Chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"` // chat.completion.chunk
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *Usage        `json:"usage,omitempty"`
}

// ChunkChoice is one choice of a Chunk.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

// Delta is what a chunk adds.
type Delta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// Finish reasons.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// DecodeRequest decodes a chat request body, with a client-ready error.
func DecodeRequest(body []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The request body does not match the chat completions schema: " + jsonProblem(err)}
	}
	if r.N != nil && *r.N > 1 {
		return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "n", Message: "n > 1 is not supported by this model's provider."}
	}
	return &r, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + strconv.Quote(te.Field) + " has the wrong type."
	}
	return "malformed JSON."
}

// ParseDataURL splits a data: URL into its media type and base64 payload. ok is false for
// anything else (an https URL, or a data URL that is not base64).
func ParseDataURL(u string) (mediaType, b64 string, ok bool) {
	rest, found := strings.CutPrefix(u, "data:")
	if !found {
		return "", "", false
	}
	meta, data, found := strings.Cut(rest, ",")
	if !found {
		return "", "", false
	}
	mediaType, enc, _ := strings.Cut(meta, ";")
	if enc != "base64" || mediaType == "" {
		return "", "", false
	}
	if _, err := base64.StdEncoding.DecodeString(data); err != nil {
		return "", "", false
	}
	return mediaType, data, true
}

// Record copies usage onto the exchange as reported by the upstream.
func (u *Usage) Record(ex *exchange.Exchange) {
	ex.Usage = exchange.Usage{
		InputTokens:  u.PromptTokens,
		OutputTokens: u.CompletionTokens,
		TotalTokens:  u.TotalTokens,
		Reported:     true,
	}
	if ex.Usage.TotalTokens == 0 {
		ex.Usage.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	if d := u.PromptTokensDetails; d != nil {
		ex.Usage.CachedInputTokens = d.CachedTokens
		ex.Usage.CacheCreationTokens = d.CacheCreationTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		ex.Usage.ReasoningTokens = d.ReasoningTokens
	}
}

// AppendEvent appends v as one SSE data event ("data: {json}\n\n") to dst.
func AppendEvent(dst []byte, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{}`)
	}
	dst = append(dst, "data: "...)
	dst = append(dst, b...)
	return append(dst, '\n', '\n')
}

// Done is the event that ends an OpenAI stream.
var Done = []byte("data: [DONE]\n\n")

// ErrorAnswer renders an upstream error answer for an OpenAI client.
func ErrorAnswer(status int, header http.Header, kind, message string) (int, http.Header, []byte) {
	e := apierr.FromUpstream(status, header, kind, message)
	return e.Status, e.Header, e.Body(apierr.OpenAI)
}
