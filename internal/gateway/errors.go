package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Stable error codes. Clients may rely on these; never rename one.
const (
	CodeInvalidRequest      = "invalid_request_error"
	CodeModelNotFound       = "model_not_found"
	CodeRequestTooLarge     = "request_too_large"
	CodeUpstreamUnavailable = "upstream_unavailable"
	CodeUpstreamTimeout     = "upstream_timeout"
	CodeUpstreamError       = "upstream_error"
	CodeNotFound            = "not_found"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeNotReady            = "not_ready"
	CodeInternal            = "internal_error"
	// CodeClientClosed is logged, never sent: the client left before the answer.
	CodeClientClosed = "client_closed_request"
)

// Error is a failure the gateway answers itself.
type Error struct {
	Status  int
	Code    string
	Message string
	Param   string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorType(status int) string {
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

type openAIError struct {
	Error openAIErrorBody `json:"error"`
}

type openAIErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
}

// Body returns the error in OpenAI's error JSON.
func (e *Error) Body() []byte {
	var param *string
	if e.Param != "" {
		param = &e.Param
	}
	b, _ := json.Marshal(openAIError{openAIErrorBody{Message: e.Message, Type: errorType(e.Status), Param: param, Code: e.Code}})
	return b
}

// write sends e as the answer.
func (e *Error) write(w http.ResponseWriter) {
	body := e.Body()
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(e.Status)
	w.Write(body)
}

var jsonContentType = []string{"application/json"}
