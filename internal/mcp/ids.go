package mcp

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

// WrapID makes a server's request id unique across the route's servers and tells which
// server the client's reply goes to: "sluice:<server index>:<the server's id>".
func WrapID(server int, id json.RawMessage) json.RawMessage {
	return jsonscan.AppendQuoted(nil, "sluice:"+strconv.Itoa(server)+":"+string(id))
}

// UnwrapID reverses WrapID.
func UnwrapID(id json.RawMessage) (int, json.RawMessage, bool) {
	s, ok := jsonscan.String(id)
	if !ok {
		return 0, nil, false
	}
	rest, ok := strings.CutPrefix(s, "sluice:")
	if !ok {
		return 0, nil, false
	}
	idx, orig, ok := strings.Cut(rest, ":")
	n, err := strconv.Atoi(idx)
	// Only what WrapID makes: a server's id is a string or a number.
	if !ok || err != nil || orig == "" || !(orig[0] == '"' || orig[0] == '-' || orig[0] >= '0' && orig[0] <= '9') || !jsonscan.Valid([]byte(orig)) {
		return 0, nil, false
	}
	return n, json.RawMessage(orig), true
}
