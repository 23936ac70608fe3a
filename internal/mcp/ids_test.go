package mcp_test

import (
	"encoding/json"
	"testing"

	"github.com/sluice-gateway/sluice/internal/mcp"
)

func TestWrapUnwrapID(t *testing.T) {
	for _, tc := range []struct {
		server int
		id     string
	}{
		{0, `1`},
		{1, `-42`},
		{12, `1.5e3`},
		{0, `"abc"`},
		{3, `"a:b:c"`},
		{2, `"sluice:0:1"`},
		{0, `"quote \" and \\ backslash"`},
		{0, `"\u00e9\n"`},
		{0, `""`},
	} {
		w := mcp.WrapID(tc.server, json.RawMessage(tc.id))
		var s string
		if err := json.Unmarshal(w, &s); err != nil {
			t.Errorf("WrapID(%d, %s) = %s: not a JSON string: %v", tc.server, tc.id, w, err)
			continue
		}
		n, orig, ok := mcp.UnwrapID(w)
		if !ok || n != tc.server || string(orig) != tc.id {
			t.Errorf("UnwrapID(%s) = %d, %s, %v; want %d, %s", w, n, orig, ok, tc.server, tc.id)
		}
		// The wrapped id is a valid id of a message the gateway sends.
		if m, err := mcp.Parse(mcp.Request(w, "sampling/createMessage", nil)); err != nil || string(m.ID) != string(w) {
			t.Errorf("request with id %s: %+v, %v", w, m, err)
		}
	}
}

func TestUnwrapIDRefuses(t *testing.T) {
	for _, id := range []string{
		`1`, `null`, `true`, `{}`, `[]`, ``,
		`"1"`, `"sluice"`, `"sluice:"`, `"sluice:0"`, `"sluice:0:"`, `"sluice::1"`, `"sluice:x:1"`,
		`"sluice:0:abc"`, // the original id was neither a string nor a number
		`"Sluice:0:1"`, `" sluice:0:1"`, `"sluice:0:1 x"`, `"sluice:0:\"unterminated"`,
		`"sluice:0:1`,
	} {
		if n, orig, ok := mcp.UnwrapID(json.RawMessage(id)); ok {
			t.Errorf("UnwrapID(%s) = %d, %s: accepted", id, n, orig)
		}
	}
}

// WrapID only ever wraps a server's request id, which Parse has checked is a string or a
// number; UnwrapID takes any JSON after the second colon, so a client's reply can carry
// an object, array, boolean or null id (or one with white space around it) to a server,
// past the rule Parse applies to every id the client sends.
func TestUnwrapIDRefusesIDsWrapIDNeverMakes(t *testing.T) {
	for _, id := range []string{
		`"sluice:0:{\"a\":1}"`,
		`"sluice:0:[1]"`,
		`"sluice:0:true"`,
		`"sluice:0:null"`,
		`"sluice:0: 1 "`,
	} {
		if n, orig, ok := mcp.UnwrapID(json.RawMessage(id)); ok {
			t.Errorf("UnwrapID(%s) = %d, %s: accepted an id WrapID never makes", id, n, orig)
		}
	}
}
