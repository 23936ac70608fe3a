package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// usage is Anthropic's usage object. input excludes cache reads and writes.
type usage struct {
	input, output, cacheRead, cacheCreate int64
}

// read takes the members present in raw, leaving the others: message_delta repeats only
// some of them.
func (u *usage) read(raw []byte) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	return jsonscan.Object(raw, func(m jsonscan.Member) bool {
		v := m.Value(raw)
		n, ok := jsonscan.Int(v)
		if !ok {
			return true // null, or a nested object (server_tool_use, cache_creation)
		}
		switch string(m.Key(raw)) {
		case "input_tokens":
			u.input = n
		case "output_tokens":
			u.output = n
		case "cache_read_input_tokens":
			u.cacheRead = n
		case "cache_creation_input_tokens":
			u.cacheCreate = n
		}
		return true
	}) == nil
}

// prompt is the whole prompt, cached parts included, as OpenAI counts prompt_tokens.
func (u *usage) prompt() int64 { return u.input + u.cacheRead + u.cacheCreate }

func (u *usage) record(ex *exchange.Exchange) {
	p := u.prompt()
	ex.Usage = exchange.Usage{
		InputTokens:         p,
		OutputTokens:        u.output,
		TotalTokens:         p + u.output,
		CachedInputTokens:   u.cacheRead,
		CacheCreationTokens: u.cacheCreate,
		Reported:            true,
	}
}

func (u *usage) chat() *chat.Usage {
	p := u.prompt()
	return &chat.Usage{
		PromptTokens:        p,
		CompletionTokens:    u.output,
		TotalTokens:         p + u.output,
		PromptTokensDetails: &chat.PromptTokensDetails{CachedTokens: u.cacheRead, CacheCreationTokens: u.cacheCreate},
	}
}

// appendBlocksText appends the raw (still escaped) text of every text block of a content
// array to dst.
func appendBlocksText(dst, content []byte) []byte {
	jsonscan.Array(content, func(s, e int) bool {
		b := content[s:e]
		if t, ok := jsonscan.Get(b, "type"); ok && string(t) == `"text"` {
			if txt, ok := jsonscan.Get(b, "text"); ok {
				dst = appendStringBody(dst, txt)
			}
		}
		return true
	})
	return dst
}

func appendStringBody(dst, raw []byte) []byte {
	if len(raw) >= 2 && raw[0] == '"' {
		return append(dst, raw[1:len(raw)-1]...)
	}
	return dst
}

// errUnreadable is returned for a 2xx answer that is not a Messages answer.
var errUnreadable = errors.New("anthropic: unreadable answer")

// Complete implements provider.Adapter.
func (a *Adapter) Complete(ex *exchange.Exchange, status int, header http.Header, body []byte) (provider.Answer, error) {
	if status >= 300 {
		kind, msg := upstreamError(body)
		e := apierr.FromUpstream(status, header, kind, msg)
		return provider.Answer{Status: e.Status, Header: e.Header, Body: e.Body(ex.Ingress)}, nil
	}
	if native(ex) {
		if ex.Endpoint == exchange.EndpointCountTokens {
			// counting costs nothing: report zero usage rather than have it estimated
			ex.Usage = exchange.Usage{Reported: true}
			return provider.Answer{Status: status, Body: body}, nil
		}
		var u usage
		hasUsage := false
		jsonscan.Object(body, func(m jsonscan.Member) bool {
			switch string(m.Key(body)) {
			case "usage":
				hasUsage = u.read(m.Value(body))
			case "content":
				ex.Output = appendBlocksText(ex.Output, m.Value(body))
			}
			return true
		})
		if hasUsage {
			u.record(ex)
		}
		return provider.Answer{Status: status, Body: body}, nil
	}
	out, err := chatAnswer(ex, body)
	if err != nil {
		return provider.Answer{}, err
	}
	return provider.Answer{Status: status, Body: out}, nil
}

// msgResponse is the part of a Messages answer a chat completion needs.
type msgResponse struct {
	ID         string `json:"id"`
	Model      string `json:"model"`
	StopReason string `json:"stop_reason"`
	Content    []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	Usage json.RawMessage `json:"usage"`
}

// chatAnswer translates a Messages answer into a chat completion, recording usage and
// text on ex. Thinking and server-tool blocks are dropped.
func chatAnswer(ex *exchange.Exchange, body []byte) ([]byte, error) {
	var r msgResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, errUnreadable
	}
	if c, ok := jsonscan.Get(body, "content"); ok {
		ex.Output = appendBlocksText(ex.Output, c)
	}
	var u usage
	if u.read(r.Usage) {
		u.record(ex)
	}
	msg := chat.ResponseMessage{Role: "assistant"}
	var text []byte
	hasText := false
	for _, b := range r.Content {
		switch b.Type {
		case "text":
			text = append(text, b.Text...)
			hasText = true
		case "tool_use":
			args := []byte("{}")
			if in := bytes.TrimSpace(b.Input); len(in) > 0 && string(in) != "null" {
				var c bytes.Buffer
				if json.Compact(&c, in) == nil {
					args = c.Bytes()
				}
			}
			msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{ID: b.ID, Type: "function", Function: chat.FunctionCall{Name: b.Name, Arguments: string(args)}})
		}
	}
	if hasText || len(msg.ToolCalls) == 0 {
		s := string(text)
		msg.Content = &s
	}
	resp := chat.Response{
		ID:      r.ID,
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   r.Model,
		Choices: []chat.Choice{{Message: msg, FinishReason: finishReason(r.StopReason)}},
		Usage:   u.chat(),
	}
	return jsonMarshal(&resp)
}

// finishReason maps an Anthropic stop_reason to an OpenAI finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return chat.FinishLength
	case "tool_use":
		return chat.FinishToolCalls
	case "refusal":
		return chat.FinishContentFilter
	}
	return chat.FinishStop // end_turn, stop_sequence, pause_turn
}

// upstreamError reads an error answer: Anthropic's {"type":"error","error":{"type",
// "message"}}, or Google's {"error":{"code","message","status"}} from Vertex.
func upstreamError(body []byte) (kind, message string) {
	e, ok := jsonscan.Get(body, "error")
	if !ok || len(e) == 0 || e[0] != '{' {
		return "", ""
	}
	jsonscan.Object(e, func(m jsonscan.Member) bool {
		switch string(m.Key(e)) {
		case "type":
			kind, _ = jsonscan.String(m.Value(e))
		case "status":
			if kind == "" {
				kind, _ = jsonscan.String(m.Value(e))
			}
		case "message":
			message, _ = jsonscan.String(m.Value(e))
		}
		return true
	})
	return kind, message
}

// errorStatus is the HTTP status Anthropic uses for an error type, for errors that arrive
// inside a stream.
func errorStatus(kind string) int {
	switch kind {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "overloaded_error":
		return 529
	case "timeout_error":
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}
