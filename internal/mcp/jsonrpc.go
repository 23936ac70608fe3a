// Package mcp is the Model Context Protocol side of the gateway: JSON-RPC messages, the
// sealed session ids that let any replica continue a session, the Streamable HTTP client
// that talks to MCP servers, and the merging of many servers' lists into one server's
// view (tool and prompt names prefixed, tools filtered). It knows nothing of access
// rules, limits or processors: the gateway applies those around it.
package mcp

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

// Message is one JSON-RPC 2.0 message: a request (Method and ID), a notification (Method,
// no ID) or a response (ID and Result or Error). Params, Result and Error stay raw.
type Message struct {
	ID     json.RawMessage
	Method string
	Params json.RawMessage
	Result json.RawMessage
	Error  json.RawMessage
}

// IsRequest reports whether m expects a response.
func (m *Message) IsRequest() bool { return m.Method != "" && m.ID != nil }

// IsNotification reports whether m is a notification.
func (m *Message) IsNotification() bool { return m.Method != "" && m.ID == nil }

// IsResponse reports whether m answers a request.
func (m *Message) IsResponse() bool { return m.Method == "" }

// Errors of Parse.
var (
	ErrBatch   = errors.New("JSON-RPC batches are not supported; send one message per request")
	ErrMessage = errors.New("not a JSON-RPC 2.0 message")
)

// Parse reads one message. Duplicate members are refused: parsers disagree on which one
// wins, and the gateway must judge the message the server will read.
func Parse(b []byte) (*Message, error) {
	b = bytes.Trim(b, " \t\r\n") // JSON's white space only: other spaces are not JSON
	if len(b) > 0 && b[0] == '[' {
		return nil, ErrBatch
	}
	var m Message
	var seen uint8
	version := false
	err := jsonscan.Object(b, func(mem jsonscan.Member) bool {
		v := mem.Value(b)
		bit := uint8(0)
		switch string(mem.Key(b)) {
		case "jsonrpc":
			bit = 1
			version = string(v) == `"2.0"`
		case "id":
			bit = 2
			if len(v) > 0 && (v[0] == '"' || v[0] == '-' || v[0] >= '0' && v[0] <= '9' || string(v) == "null") {
				m.ID = json.RawMessage(v)
			} else {
				version = false // an id must be a string or a number
				return false
			}
		case "method":
			bit = 4
			s, ok := jsonscan.String(v)
			if !ok || s == "" {
				version = false
				return false
			}
			m.Method = s
		case "params":
			bit = 8
			m.Params = json.RawMessage(v)
		case "result":
			bit = 16
			m.Result = json.RawMessage(v)
		case "error":
			bit = 32
			m.Error = json.RawMessage(v)
		}
		if bit == 0 && (bytes.EqualFold(mem.Key(b), []byte("jsonrpc")) || bytes.EqualFold(mem.Key(b), []byte("id")) ||
			bytes.EqualFold(mem.Key(b), []byte("method")) || bytes.EqualFold(mem.Key(b), []byte("params")) ||
			bytes.EqualFold(mem.Key(b), []byte("result")) || bytes.EqualFold(mem.Key(b), []byte("error")) ||
			bytes.IndexByte(mem.Key(b), '\\') >= 0) {
			version = false // another spelling of a member: servers may read it instead
			return false
		}
		if seen&bit != 0 {
			version = false
			return false
		}
		seen |= bit
		return true
	})
	if err != nil || !version {
		return nil, ErrMessage
	}
	if m.Method == "" && (m.ID == nil || (m.Result == nil) == (m.Error == nil)) {
		return nil, ErrMessage // a response has an id and exactly one of result and error
	}
	if m.Method != "" && (m.Result != nil || m.Error != nil) {
		return nil, ErrMessage
	}
	if m.IsRequest() && string(m.ID) == "null" {
		return nil, ErrMessage
	}
	return &m, nil
}

// Result renders the response to the request id with result (already JSON).
func Result(id, result json.RawMessage) []byte {
	out := make([]byte, 0, len(result)+len(id)+32)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	out = append(out, `,"result":`...)
	out = append(out, result...)
	return append(out, '}')
}

// Request renders a request (params may be nil).
func Request(id json.RawMessage, method string, params json.RawMessage) []byte {
	out := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
	out = append(out, `,"method":`...)
	out = jsonscan.AppendQuoted(out, method)
	if params != nil {
		out = append(out, `,"params":`...)
		out = append(out, params...)
	}
	return append(out, '}')
}

// Response renders a response carrying either result or errObj (raw JSON).
func Response(id, result, errObj json.RawMessage) []byte {
	if errObj != nil {
		out := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
		out = append(out, `,"error":`...)
		out = append(out, errObj...)
		return append(out, '}')
	}
	return Result(id, result)
}

// WithID returns m rendered again with another id.
func (m *Message) WithID(id json.RawMessage) []byte {
	if m.Method != "" {
		return Request(id, m.Method, m.Params)
	}
	return Response(id, m.Result, m.Error)
}

// ErrAmbiguous is a message whose member the gateway judges could be read differently by
// a server: given twice, or under another letter case (encoding/json, which many servers
// use, matches member names case-insensitively).
var ErrAmbiguous = errors.New("a member is given twice or in another letter case")

// member returns the one value of key in the object data, nil when absent, or
// ErrAmbiguous.
func member(data []byte, key string) (json.RawMessage, error) {
	var v json.RawMessage
	n := 0
	err := jsonscan.Object(data, func(m jsonscan.Member) bool {
		k := m.Key(data)
		if bytes.IndexByte(k, '\\') >= 0 {
			k, _ = jsonscan.AppendUnquoted(nil, data[m.KeyStart:m.KeyEnd])
		}
		if bytes.EqualFold(k, []byte(key)) {
			n++
			if string(k) == key {
				v = json.RawMessage(m.Value(data))
			} else {
				n++
			}
		}
		return true
	})
	if err != nil {
		return nil, ErrMessage
	}
	if n > 1 {
		return nil, ErrAmbiguous
	}
	return v, nil
}

// Param reads params' member at path (outermost first): nil when absent, ErrAmbiguous
// when any member on the way could be read otherwise.
func Param(params json.RawMessage, path ...string) (json.RawMessage, error) {
	v := params
	for _, k := range path {
		if len(v) == 0 || v[0] != '{' {
			return nil, nil
		}
		var err error
		if v, err = member(v, k); err != nil || v == nil {
			return nil, err
		}
	}
	return v, nil
}

// SetParam returns params with the member at path set to value (raw JSON), every object
// on the way decoded and encoded again, so what the server reads is what the gateway
// judged. Missing objects are an error.
func SetParam(params json.RawMessage, value json.RawMessage, path ...string) (json.RawMessage, error) {
	if len(path) == 0 {
		return value, nil
	}
	if _, err := Param(params, path[0]); err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(params, &m); err != nil || m == nil {
		return nil, ErrMessage
	}
	inner := value
	if len(path) > 1 {
		var err error
		if inner, err = SetParam(m[path[0]], value, path[1:]...); err != nil {
			return nil, err
		}
	}
	m[path[0]] = inner
	return json.Marshal(m)
}
