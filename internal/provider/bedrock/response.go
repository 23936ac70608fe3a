package bedrock

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// The Converse answer, as far as the adapter reads it.
type converseResponse struct {
	Output struct {
		Message struct {
			Content []responseBlock `json:"content"`
		} `json:"message"`
	} `json:"output"`
	StopReason string      `json:"stopReason"`
	Usage      *tokenUsage `json:"usage"`
}

type responseBlock struct {
	Text    *string `json:"text"`
	ToolUse *struct {
		ToolUseID string          `json:"toolUseId"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	} `json:"toolUse"`
}

// tokenUsage is Converse's usage. inputTokens counts only the input that was neither read
// from nor written to the prompt cache; the cache counts come separately (and totalTokens
// includes them), so the whole prompt is the sum of the three.
type tokenUsage struct {
	InputTokens           int64 `json:"inputTokens"`
	OutputTokens          int64 `json:"outputTokens"`
	TotalTokens           int64 `json:"totalTokens"`
	CacheReadInputTokens  int64 `json:"cacheReadInputTokens"`
	CacheWriteInputTokens int64 `json:"cacheWriteInputTokens"`
}

// chat returns the usage in OpenAI's terms, where prompt_tokens includes cached tokens.
func (u *tokenUsage) chat() *chat.Usage {
	prompt := u.InputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens
	return &chat.Usage{
		PromptTokens:     prompt,
		CompletionTokens: u.OutputTokens,
		TotalTokens:      prompt + u.OutputTokens,
		PromptTokensDetails: &chat.PromptTokensDetails{
			CachedTokens:        u.CacheReadInputTokens,
			CacheCreationTokens: u.CacheWriteInputTokens,
		},
	}
}

// Complete implements provider.Adapter.
func (*Adapter) Complete(ex *exchange.Exchange, status int, header http.Header, body []byte) (provider.Answer, error) {
	if status >= 300 {
		kind, msg := errorDetails(header, body)
		e := upstreamError(status, header, kind, msg)
		return provider.Answer{Status: e.Status, Header: e.Header, Body: e.Body(apierr.OpenAI)}, nil
	}
	var cr converseResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return provider.Answer{}, errors.New("bedrock: malformed Converse answer")
	}
	var text []byte
	var hasText, sawForced, looked bool
	var calls []chat.ToolCall
	var forced string
	for _, b := range cr.Output.Message.Content {
		switch {
		case b.Text != nil:
			text = append(text, *b.Text...)
			hasText = true
		case b.ToolUse != nil:
			if !looked {
				forced, looked = forcedToolName(ex.Body), true
			}
			input := compact(b.ToolUse.Input)
			if forced != "" && b.ToolUse.Name == forced {
				text = append(text, input...)
				hasText, sawForced = true, true
				continue
			}
			calls = append(calls, chat.ToolCall{ID: b.ToolUse.ToolUseID, Type: "function", Function: chat.FunctionCall{Name: b.ToolUse.Name, Arguments: string(input)}})
		}
	}
	forcedOnly := sawForced && len(calls) == 0
	msg := chat.ResponseMessage{Role: "assistant", ToolCalls: calls}
	if hasText || len(calls) == 0 {
		s := string(text)
		msg.Content = &s
		ex.Output = jsonscan.AppendEscaped(ex.Output, text)
	}
	resp := chat.Response{
		ID:      responseID(header),
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   responseModel(ex),
		Choices: []chat.Choice{{Index: 0, Message: msg, FinishReason: finishReason(cr.StopReason, forcedOnly)}},
	}
	if cr.Usage != nil {
		resp.Usage = cr.Usage.chat()
		resp.Usage.Record(ex)
	}
	out, err := marshal(resp)
	if err != nil {
		return provider.Answer{}, err
	}
	return provider.Answer{Status: status, Body: out}, nil
}

// compact returns the tool input as compact JSON; absent input is an empty object.
func compact(raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return []byte("{}")
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return []byte("{}")
	}
	return buf.Bytes()
}

// forcedToolName returns the name of the tool NewRequest forced for a JSON
// response_format, or "" when the request had none. It reads the request again because
// the adapter keeps no state between NewRequest and the answer; it is called only when the
// answer holds a tool use.
func forcedToolName(body []byte) string {
	raw, ok := jsonscan.Get(body, "response_format")
	if !ok {
		return ""
	}
	var rf chat.ResponseFormat
	if json.Unmarshal(raw, &rf) != nil {
		return ""
	}
	if _, ok, err := jsonTool(&rf); !ok || err != nil {
		return ""
	}
	return jsonToolName(&rf)
}

// finishReason maps Converse's stopReason. forcedOnly is true when the only tool use was
// the forced JSON tool, which the client sees as content.
func finishReason(stop string, forcedOnly bool) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return chat.FinishLength
	case "tool_use":
		if forcedOnly {
			return chat.FinishStop
		}
		return chat.FinishToolCalls
	case "guardrail_intervened", "content_filtered":
		return chat.FinishContentFilter
	}
	return chat.FinishStop // end_turn, stop_sequence, and anything new
}

func responseModel(ex *exchange.Exchange) string {
	if ex.UpstreamModel != "" {
		return ex.UpstreamModel
	}
	return ex.Model
}

// responseID derives the completion id from AWS's request id, so a client can quote it to
// AWS support; without one it is random.
func responseID(header http.Header) string {
	if id := header.Get("X-Amzn-Requestid"); id != "" && len(id) <= 128 {
		return "chatcmpl-" + id
	}
	var b [12]byte
	rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// errorDetails reads an AWS JSON error: the type from the X-Amzn-ErrorType header
// ("ThrottlingException:http://internal.amazon.com/coral/...") or the body's __type
// ("com.amazon.coral.service#UnrecognizedClientException"), the message from
// "message" or "Message".
func errorDetails(header http.Header, body []byte) (kind, msg string) {
	kind = header.Get("X-Amzn-Errortype")
	var b struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	if json.Unmarshal(body, &b) == nil {
		msg = b.Message
		if msg == "" {
			msg = b.Message2
		}
		if kind == "" {
			kind = b.Type
		}
	}
	return cleanKind(kind), msg
}

func cleanKind(kind string) string {
	if i := strings.LastIndexByte(kind, '#'); i >= 0 {
		kind = kind[i+1:]
	}
	kind, _, _ = strings.Cut(kind, ":")
	return strings.TrimSpace(kind)
}

// upstreamError maps a Bedrock error (an HTTP error answer, or an exception in a stream,
// where status is 0) to the client's error. The AWS error type decides the status where
// it is known, since it is more specific than the HTTP status and streams carry no status.
func upstreamError(status int, header http.Header, kind, msg string) *apierr.Error {
	timeout := false
	switch strings.ToLower(kind) {
	case "throttlingexception", "modelnotreadyexception", "servicequotaexceededexception", "toomanyrequestsexception":
		status = http.StatusTooManyRequests
	case "accessdeniedexception", "unrecognizedclientexception", "invalidsignatureexception",
		"expiredtokenexception", "missingauthenticationtokenexception", "incompletesignatureexception",
		"invalidclienttokenid", "signaturedoesnotmatch":
		status = http.StatusForbidden
	case "validationexception":
		if status < 400 || status >= 500 {
			status = http.StatusBadRequest
		}
		if containsFold(msg, "too many input tokens") {
			kind = "context_length_exceeded"
		}
	case "resourcenotfoundexception":
		status = http.StatusNotFound
	case "modeltimeoutexception":
		status, timeout = http.StatusGatewayTimeout, true
	case "modelerrorexception", "modelstreamerrorexception":
		status = http.StatusBadGateway
	case "internalserverexception":
		status = http.StatusInternalServerError
	case "serviceunavailableexception":
		status = http.StatusServiceUnavailable
	default:
		if status < 400 {
			status = http.StatusBadGateway
		}
	}
	e := apierr.FromUpstream(status, header, kind, msg)
	if timeout {
		e.Code = apierr.CodeUpstreamTimeout
	}
	return e
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), sub)
}
