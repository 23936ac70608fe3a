package vertex

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// now and randomID are variables so tests can pin them.
var (
	now      = time.Now
	randomID = func() string {
		var b [12]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}
)

// The generateContent response, as far as it is read.
type (
	genResponse struct {
		Candidates     []candidate     `json:"candidates"`
		PromptFeedback *promptFeedback `json:"promptFeedback"`
		UsageMetadata  *usageMetadata  `json:"usageMetadata"`
		ResponseID     string          `json:"responseId"`
	}
	candidate struct {
		Content struct {
			Parts []responsePart `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
	}
	responsePart struct {
		Text         *string `json:"text"`
		Thought      bool    `json:"thought"`
		FunctionCall *struct {
			Name string          `json:"name"`
			Args json.RawMessage `json:"args"`
		} `json:"functionCall"`
	}
	promptFeedback struct {
		BlockReason string `json:"blockReason"`
	}
	usageMetadata struct {
		PromptTokenCount        int64 `json:"promptTokenCount"`
		CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
		TotalTokenCount         int64 `json:"totalTokenCount"`
		CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
		ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
		ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
	}
)

// openAIUsage converts Gemini's usage. Gemini counts thinking apart from the answer
// (candidatesTokenCount excludes thoughtsTokenCount); OpenAI counts reasoning inside
// completion_tokens, so completion_tokens is candidates + thoughts, with the thoughts as
// reasoning_tokens. Tokens of tool-use prompts (e.g. grounding) are prompt tokens. The total
// is prompt + completion, whatever totalTokenCount says. promptTokenCount already includes
// the cached tokens, as OpenAI's prompt_tokens includes cached_tokens.
func openAIUsage(m *usageMetadata) chat.Usage {
	var u chat.Usage
	m.fill(&u, new(chat.PromptTokensDetails), new(chat.CompletionTokensDetails))
	return u
}

// fill writes the converted usage into u, with its details in pd and cd.
func (m *usageMetadata) fill(u *chat.Usage, pd *chat.PromptTokensDetails, cd *chat.CompletionTokensDetails) {
	prompt := m.PromptTokenCount + m.ToolUsePromptTokenCount
	completion := m.CandidatesTokenCount + m.ThoughtsTokenCount
	*pd = chat.PromptTokensDetails{CachedTokens: m.CachedContentTokenCount}
	*cd = chat.CompletionTokensDetails{ReasoningTokens: m.ThoughtsTokenCount}
	*u = chat.Usage{
		PromptTokens:            prompt,
		CompletionTokens:        completion,
		TotalTokens:             prompt + completion,
		PromptTokensDetails:     pd,
		CompletionTokensDetails: cd,
	}
}

// Finish categories: what a Gemini finish reason means to an OpenAI client.
const (
	finishNone uint8 = iota
	finishStop
	finishLength
	finishFilter
)

// finishCategory classifies a Gemini finish reason (unquoted). Reasons with no OpenAI
// counterpart (OTHER, MALFORMED_FUNCTION_CALL, LANGUAGE, unspecified, ...) are a stop.
func finishCategory(reason []byte) uint8 {
	switch string(reason) {
	case "MAX_TOKENS":
		return finishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT":
		return finishFilter
	}
	return finishStop
}

// finishName is the OpenAI finish_reason; a stop with tool calls is "tool_calls".
func finishName(category uint8, toolCalls bool) string {
	switch {
	case category == finishLength:
		return chat.FinishLength
	case category == finishFilter:
		return chat.FinishContentFilter
	case toolCalls:
		return chat.FinishToolCalls
	}
	return chat.FinishStop
}

// Complete implements provider.Adapter.
func (a *Adapter) Complete(ex *exchange.Exchange, status int, header http.Header, body []byte) (provider.Answer, error) {
	if status >= 300 {
		return errorAnswer(status, header, body), nil
	}
	var out []byte
	var err error
	switch ex.Endpoint {
	case exchange.EndpointEmbeddings:
		out, err = embeddingsAnswer(ex, body)
	default:
		out, err = chatAnswer(ex, body)
	}
	if err != nil {
		return provider.Answer{}, err
	}
	return provider.Answer{Status: status, Header: http.Header{"Content-Type": jsonContentType}, Body: out}, nil
}

func chatAnswer(ex *exchange.Exchange, body []byte) ([]byte, error) {
	var responses []genResponse
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		// streamGenerateContent without alt=sse: the chunks as one array.
		if err := json.Unmarshal(body, &responses); err != nil {
			return nil, err
		}
	} else {
		var r genResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, err
		}
		responses = []genResponse{r}
	}
	var (
		text       strings.Builder
		hasText    bool
		calls      []chat.ToolCall
		finish     uint8
		usage      *usageMetadata
		responseID string
	)
	for i := range responses {
		r := &responses[i]
		if responseID == "" {
			responseID = r.ResponseID
		}
		if r.UsageMetadata != nil {
			usage = r.UsageMetadata
		}
		if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
			finish = finishFilter // the prompt itself was blocked
		}
		if len(r.Candidates) == 0 {
			continue
		}
		c := &r.Candidates[0]
		if c.FinishReason != "" {
			finish = finishCategory([]byte(c.FinishReason))
		}
		for _, p := range c.Content.Parts {
			switch {
			case p.Thought:
				// thought summaries are not part of the answer
			case p.FunctionCall != nil:
				args := []byte("{}")
				if a := bytes.TrimSpace(p.FunctionCall.Args); len(a) > 0 && string(a) != "null" {
					var buf bytes.Buffer
					if json.Compact(&buf, a) == nil {
						args = buf.Bytes()
					}
				}
				calls = append(calls, chat.ToolCall{
					ID:       "call_" + strconv.Itoa(len(calls)),
					Type:     "function",
					Function: chat.FunctionCall{Name: p.FunctionCall.Name, Arguments: string(args)},
				})
			case p.Text != nil:
				hasText = true
				text.WriteString(*p.Text)
				ex.Output = jsonscan.AppendEscaped(ex.Output, *p.Text)
			}
		}
	}
	id := responseID
	if id == "" {
		id = randomID()
	}
	msg := chat.ResponseMessage{Role: "assistant", ToolCalls: calls}
	if hasText || len(calls) == 0 {
		s := text.String()
		msg.Content = &s
	}
	resp := chat.Response{
		ID:      "chatcmpl-" + id,
		Object:  "chat.completion",
		Created: now().Unix(),
		Model:   ex.UpstreamModel,
		Choices: []chat.Choice{{Message: msg, FinishReason: finishName(finish, len(calls) > 0)}},
	}
	if usage != nil {
		u := openAIUsage(usage)
		u.Record(ex)
		resp.Usage = &u
	}
	return json.Marshal(resp)
}

// The error body of Google APIs.
type googleError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

// parseError reads a Google error body, alone or as the first element of an array (as
// streamGenerateContent without alt=sse answers).
func parseError(body []byte) (ge googleError, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var list []googleError
		if json.Unmarshal(body, &list) != nil || len(list) == 0 {
			return ge, false
		}
		ge = list[0]
	} else if json.Unmarshal(body, &ge) != nil {
		return ge, false
	}
	return ge, ge.Error.Message != "" || ge.Error.Status != "" || ge.Error.Code != 0
}

// upstreamError maps a Google error to the client's error. RESOURCE_EXHAUSTED is quota or
// throttling whatever the HTTP status says; token-limit messages on INVALID_ARGUMENT are
// recognised by apierr as context overflow.
func upstreamError(status int, header http.Header, ge googleError) *apierr.Error {
	if ge.Error.Status == "RESOURCE_EXHAUSTED" {
		status = http.StatusTooManyRequests
	}
	return apierr.FromUpstream(status, header, ge.Error.Status, ge.Error.Message)
}

func errorAnswer(status int, header http.Header, body []byte) provider.Answer {
	ge, _ := parseError(body)
	e := upstreamError(status, header, ge)
	h := http.Header{"Content-Type": jsonContentType}
	for k, v := range e.Header {
		h[k] = v
	}
	return provider.Answer{Status: e.Status, Header: h, Body: e.Body(apierr.OpenAI)}
}

// statusOf is the HTTP status for a gRPC status name, for errors inside a stream.
func statusOf(code int, status string) int {
	if code >= 400 && code <= 599 {
		return code
	}
	switch status {
	case "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE":
		return http.StatusBadRequest
	case "UNAUTHENTICATED":
		return http.StatusUnauthorized
	case "PERMISSION_DENIED":
		return http.StatusForbidden
	case "NOT_FOUND":
		return http.StatusNotFound
	case "RESOURCE_EXHAUSTED":
		return http.StatusTooManyRequests
	case "DEADLINE_EXCEEDED":
		return http.StatusGatewayTimeout
	case "UNAVAILABLE":
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

var errMalformed = errors.New("vertex: malformed answer")
