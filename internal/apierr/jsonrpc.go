package apierr

import (
	"encoding/json"
	"net/http"
)

// JSONRPC is the wire of MCP clients: errors are JSON-RPC 2.0 error objects.
const JSONRPC Wire = 2

// JSON-RPC error codes: the spec's own, and for what the gateway refuses a block of the
// implementation-defined range (-32000 to -32099) that neither MCP (-32002 resource not
// found, -32042 URL elicitation) nor the SDKs (-32001 to -32005 for their own transport
// states) use. data.code carries the stable code.
const (
	RPCParseError     = -32700
	RPCInvalidRequest = -32600
	RPCMethodNotFound = -32601
	RPCInvalidParams  = -32602
	RPCInternal       = -32603
	RPCUnauthorized   = -32081
	RPCUpstream       = -32082
	RPCForbidden      = -32083
	RPCNotFound       = -32084
	RPCTooLarge       = -32085
	RPCRateLimited    = -32086
	RPCTimeout        = -32087
)

// Codes of JSON-RPC refusals.
const (
	CodeParseError       = "parse_error"
	CodeMethodNotFound   = "method_not_found"
	CodeToolNotFound     = "tool_not_found"
	CodePromptNotFound   = "prompt_not_found"
	CodeSessionMissing   = "session_required"
	CodeSessionUnknown   = "session_not_found"
	CodeOriginNotAllowed = "origin_not_allowed"
)

// RPCCode is the JSON-RPC error code of e.
func (e *Error) RPCCode() int {
	switch e.Code {
	case CodeParseError:
		return RPCParseError
	case CodeMethodNotFound:
		return RPCMethodNotFound
	case CodeToolNotFound, CodePromptNotFound:
		return RPCInvalidParams
	case CodeInternal:
		return RPCInternal
	case CodeInvalidRequest, CodeSessionMissing, CodeMethodNotAllowed:
		return RPCInvalidRequest
	case CodeContentBlocked:
		return RPCForbidden
	}
	switch s := e.Status; {
	case s == http.StatusUnauthorized:
		return RPCUnauthorized
	case s == http.StatusForbidden:
		return RPCForbidden
	case s == http.StatusNotFound:
		return RPCNotFound
	case s == http.StatusRequestEntityTooLarge:
		return RPCTooLarge
	case s == http.StatusTooManyRequests:
		return RPCRateLimited
	case s == http.StatusRequestTimeout || s == http.StatusGatewayTimeout:
		return RPCTimeout
	case s >= 500:
		return RPCUpstream
	}
	return RPCInvalidParams
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int     `json:"code"`
	Message string  `json:"message"`
	Data    rpcData `json:"data"`
}

// rpcData is the data member of the gateway's JSON-RPC errors.
type rpcData struct {
	Code       string `json:"code"`
	Type       string `json:"type"`
	Param      string `json:"param,omitempty"`
	RetryAfter string `json:"retryAfter,omitempty"`
}

// RPC renders e as the JSON-RPC error response to the request with the given id (nil or
// empty: null, for a message that could not be read).
func (e *Error) RPC(id json.RawMessage) []byte {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcError        `json:"error"`
	}{"2.0", id, rpcError{e.RPCCode(), e.Message, rpcData{Code: e.Code, Type: openAIType(e.Status), Param: e.Param, RetryAfter: e.Header.Get("Retry-After")}}})
	return b
}
