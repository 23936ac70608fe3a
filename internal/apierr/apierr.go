// Package apierr is the one definition of an error a client receives: a status, a stable
// code and a message, rendered in the wire format of the endpoint the client called
// (OpenAI error JSON, or Anthropic error JSON on /v1/messages). Messages never carry
// secrets or matched sensitive text; callers write them for clients.
package apierr

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Stable error codes. Clients may rely on these; never rename one.
const (
	CodeInvalidRequest        = "invalid_request_error"
	CodeModelNotFound         = "model_not_found"
	CodeRequestTooLarge       = "request_too_large"
	CodeUpstreamUnavailable   = "upstream_unavailable"
	CodeUpstreamTimeout       = "upstream_timeout" // no answer headers within firstByte
	CodeConnectTimeout        = "connect_timeout"
	CodeFirstTokenTimeout     = "first_token_timeout"
	CodeIdleTimeout           = "idle_timeout"
	CodeRequestTimeout        = "request_timeout" // the route's timeout for the whole request
	CodeUpstreamError         = "upstream_error"
	CodeUpstreamAuthFailed    = "upstream_auth_failed"
	CodeRateLimitExceeded     = "rate_limit_exceeded"
	CodeContextLengthExceeded = "context_length_exceeded"
	CodeRegionNotAllowed      = "region_not_allowed"
	CodeNotFound              = "not_found"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeNotReady              = "not_ready"
	CodeInternal              = "internal_error"
	// CodeContentBlocked: a payload processor rejected the request or the answer.
	CodeContentBlocked = "content_blocked"
	// CodeProcessorFailed: a FailClosed payload processor erred or timed out.
	CodeProcessorFailed = "processor_failed"
	// CodeThrottled: the caller is under a penalty for attack traffic.
	CodeThrottled = "throttled"
	// CodeClientClosed is logged, never sent: the client left before the answer.
	CodeClientClosed = "client_closed_request"
)

// Error is a failure as a client sees it.
type Error struct {
	Status  int
	Code    string
	Message string
	Param   string
	// Header holds headers to send with it (Retry-After).
	Header http.Header
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// RetryAfterSeconds is d as a Retry-After value: whole seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(int64((d+time.Second-1)/time.Second), 1)
}

// Wire is a client wire format.
type Wire uint8

// Wire formats.
const (
	OpenAI Wire = iota
	Anthropic
)

// openAIType is OpenAI's "type" for a status.
func openAIType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 500:
		return "api_error"
	}
	return "invalid_request_error"
}

// anthropicType is Anthropic's error "type" for a status.
func anthropicType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case 529, http.StatusServiceUnavailable:
		return "overloaded_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// Body renders the error in a wire format.
func (e *Error) Body(w Wire) []byte {
	if w == JSONRPC {
		return e.RPC(nil)
	}
	if w == Anthropic {
		// Anthropic's shape has no code field; Sluice adds its stable code beside type.
		b, _ := json.Marshal(struct {
			Type  string `json:"type"`
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
				Code    string `json:"code,omitempty"`
			} `json:"error"`
		}{Type: "error", Error: struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Code    string `json:"code,omitempty"`
		}{anthropicType(e.Status), e.Message, e.Code}})
		return b
	}
	var param *string
	if e.Param != "" {
		param = &e.Param
	}
	b, _ := json.Marshal(struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    string  `json:"code"`
		} `json:"error"`
	}{Error: struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	}{e.Message, openAIType(e.Status), param, e.Code}})
	return b
}

var jsonContentType = []string{"application/json"}

// Write sends e as the whole answer.
func (e *Error) Write(w http.ResponseWriter, wire Wire) {
	body := e.Body(wire)
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(e.Status)
	w.Write(body)
}

// FromUpstream maps an upstream's error answer to the error the client gets, so every
// provider fails the same way: the upstream's own credential problems are the gateway's
// (502 upstream_auth_failed, never 401: the client's credential was fine), throttling keeps
// its Retry-After, an overlong prompt is context_length_exceeded. message is the
// upstream's message (it describes the request, not the gateway's secrets); kind is the
// upstream's own error type or code, used to recognise context overflow.
func FromUpstream(status int, header http.Header, kind, message string) *Error {
	e := &Error{Status: status, Message: message}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Status, e.Code = http.StatusBadGateway, CodeUpstreamAuthFailed
		e.Message = "The gateway's credentials were refused by the upstream provider."
	case status == http.StatusTooManyRequests:
		e.Code = CodeRateLimitExceeded
		if ra := header.Get("Retry-After"); ra != "" {
			e.Header = http.Header{"Retry-After": {ra}}
		}
	case status == http.StatusRequestEntityTooLarge:
		e.Code = CodeRequestTooLarge
	case status == http.StatusNotFound:
		e.Code = CodeModelNotFound
	case status >= 500:
		e.Code = CodeUpstreamError
		if status == 529 { // Anthropic's "overloaded"
			e.Status = http.StatusServiceUnavailable
		}
	case IsContextOverflow(kind, message):
		e.Status, e.Code = http.StatusBadRequest, CodeContextLengthExceeded
	default:
		e.Code = CodeInvalidRequest
	}
	return e
}

// IsContextOverflow recognises the providers' ways of saying a prompt is too long.
func IsContextOverflow(kind, message string) bool {
	if kind == "context_length_exceeded" {
		return true
	}
	for _, s := range overflowPhrases {
		if containsFold(message, s) {
			return true
		}
	}
	return false
}

var overflowPhrases = []string{
	"maximum context length", "context length", "context window", "prompt is too long",
	"input is too long", "too many tokens", "exceeds the maximum number of tokens",
	"input token count", "model's maximum",
}

func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if equalFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

func equalFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
