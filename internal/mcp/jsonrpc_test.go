package mcp_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/sluice-gateway/sluice/internal/mcp"
)

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, in                   string
		id, method, params         string
		result, errObj             string
		request, notification, rsp bool
	}{
		{name: "request", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo"}}`,
			id: `1`, method: "tools/call", params: `{"name":"a_echo"}`, request: true},
		{name: "request string id", in: `{"jsonrpc":"2.0","id":"abc","method":"ping"}`,
			id: `"abc"`, method: "ping", request: true},
		{name: "request negative id", in: `{"jsonrpc":"2.0","id":-7,"method":"ping"}`,
			id: `-7`, method: "ping", request: true},
		{name: "request fractional id", in: `{"jsonrpc":"2.0","id":1.5e3,"method":"ping"}`,
			id: `1.5e3`, method: "ping", request: true},
		{name: "members in any order, white space", in: " \n{ \"method\" : \"ping\" , \"id\" : 0 , \"jsonrpc\" : \"2.0\" }\t\r\n",
			id: `0`, method: "ping", request: true},
		{name: "escaped method value", in: `{"jsonrpc":"2.0","id":1,"method":"tools\/list"}`,
			id: `1`, method: "tools/list", request: true},
		{name: "unknown members are kept out", in: `{"jsonrpc":"2.0","id":1,"method":"ping","extra":{"id":2}}`,
			id: `1`, method: "ping", request: true},
		{name: "notification", in: `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			method: "notifications/initialized", notification: true},
		{name: "notification with params", in: `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`,
			method: "notifications/progress", params: `{"progress":1}`, notification: true},
		{name: "result", in: `{"jsonrpc":"2.0","id":"sluice:0:1","result":{"ok":true}}`,
			id: `"sluice:0:1"`, result: `{"ok":true}`, rsp: true},
		{name: "null result", in: `{"jsonrpc":"2.0","id":3,"result":null}`,
			id: `3`, result: `null`, rsp: true},
		{name: "error", in: `{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"no"}}`,
			id: `3`, errObj: `{"code":-32601,"message":"no"}`, rsp: true},
		{name: "error with null id", in: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse"}}`,
			id: `null`, errObj: `{"code":-32700,"message":"parse"}`, rsp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mcp.Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if string(m.ID) != tc.id || m.Method != tc.method || string(m.Params) != tc.params ||
				string(m.Result) != tc.result || string(m.Error) != tc.errObj {
				t.Errorf("got id=%s method=%q params=%s result=%s error=%s", m.ID, m.Method, m.Params, m.Result, m.Error)
			}
			if m.IsRequest() != tc.request || m.IsNotification() != tc.notification || m.IsResponse() != tc.rsp {
				t.Errorf("request=%v notification=%v response=%v", m.IsRequest(), m.IsNotification(), m.IsResponse())
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, mcp.ErrBatch},
		{"batch after white space", " \n [1]", mcp.ErrBatch},
		{"empty batch", `[]`, mcp.ErrBatch},
		{"empty", ``, mcp.ErrMessage},
		{"white space", " \n\t", mcp.ErrMessage},
		{"not an object", `"ping"`, mcp.ErrMessage},
		{"null", `null`, mcp.ErrMessage},
		{"empty object", `{}`, mcp.ErrMessage},
		{"no version", `{"id":1,"method":"ping"}`, mcp.ErrMessage},
		{"version 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, mcp.ErrMessage},
		{"version as number", `{"jsonrpc":2.0,"id":1,"method":"ping"}`, mcp.ErrMessage},
		{"version escaped", `{"jsonrpc":"2\u002e0","id":1,"method":"ping"}`, mcp.ErrMessage},
		{"id object", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, mcp.ErrMessage},
		{"id array", `{"jsonrpc":"2.0","id":[1],"method":"ping"}`, mcp.ErrMessage},
		{"id true", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, mcp.ErrMessage},
		{"id false", `{"jsonrpc":"2.0","id":false,"method":"ping"}`, mcp.ErrMessage},
		{"null id on a request", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, mcp.ErrMessage},
		{"duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, mcp.ErrMessage},
		{"duplicate method", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}`, mcp.ErrMessage},
		{"duplicate version", `{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}`, mcp.ErrMessage},
		{"duplicate params", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{},"params":{}}`, mcp.ErrMessage},
		{"duplicate result", `{"jsonrpc":"2.0","id":1,"result":{},"result":{}}`, mcp.ErrMessage},
		{"duplicate error", `{"jsonrpc":"2.0","id":1,"error":{},"error":{}}`, mcp.ErrMessage},
		{"Method", `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, mcp.ErrMessage},
		{"Method alone", `{"jsonrpc":"2.0","id":1,"Method":"ping"}`, mcp.ErrMessage},
		{"ID", `{"jsonrpc":"2.0","id":1,"ID":2,"method":"ping"}`, mcp.ErrMessage},
		{"JSONRPC", `{"JSONRPC":"1.0","jsonrpc":"2.0","id":1,"method":"ping"}`, mcp.ErrMessage},
		{"Params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{},"Params":{"name":"x"}}`, mcp.ErrMessage},
		{"Result", `{"jsonrpc":"2.0","id":1,"result":{},"Result":{}}`, mcp.ErrMessage},
		{"Error", `{"jsonrpc":"2.0","id":1,"result":{},"ERROR":{}}`, mcp.ErrMessage},
		{"long s folds to s (paramſ)", `{"jsonrpc":"2.0","id":1,"method":"ping","paramſ":{}}`, mcp.ErrMessage},
		{"escaped key", `{"jsonrpc":"2.0","id":1,"m\u0065thod":"ping"}`, mcp.ErrMessage},
		{"escaped key beside the plain one", `{"jsonrpc":"2.0","id":1,"method":"ping","m\u0065thod":"tools/call"}`, mcp.ErrMessage},
		{"escaped unknown key", `{"jsonrpc":"2.0","id":1,"method":"ping","x\u0041":1}`, mcp.ErrMessage},
		{"method number", `{"jsonrpc":"2.0","id":1,"method":7}`, mcp.ErrMessage},
		{"method null", `{"jsonrpc":"2.0","id":1,"method":null}`, mcp.ErrMessage},
		{"method empty", `{"jsonrpc":"2.0","id":1,"method":""}`, mcp.ErrMessage},
		{"method object", `{"jsonrpc":"2.0","id":1,"method":{}}`, mcp.ErrMessage},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, mcp.ErrMessage},
		{"response without id", `{"jsonrpc":"2.0","result":{}}`, mcp.ErrMessage},
		{"response without result or error", `{"jsonrpc":"2.0","id":1}`, mcp.ErrMessage},
		{"request with result", `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, mcp.ErrMessage},
		{"notification with error", `{"jsonrpc":"2.0","method":"x","error":{}}`, mcp.ErrMessage},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"ping"}x`, mcp.ErrMessage},
		{"two objects", `{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}`, mcp.ErrMessage},
		{"trailing comma", `{"jsonrpc":"2.0","id":1,"method":"ping",}`, mcp.ErrMessage},
		{"unterminated", `{"jsonrpc":"2.0","id":1,"method":"ping"`, mcp.ErrMessage},
		{"invalid params", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{]}`, mcp.ErrMessage},
		{"invalid later member", `{"jsonrpc":"2.0","id":1,"method":"ping","x":tru}`, mcp.ErrMessage},
		{"leading zero id", `{"jsonrpc":"2.0","id":01,"method":"ping"}`, mcp.ErrMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := mcp.Parse([]byte(tc.in))
			if err != tc.want {
				t.Errorf("Parse(%s) = %+v, %v; want %v", tc.in, m, err, tc.want)
			}
		})
	}
}

// Parse trims with bytes.TrimSpace, which removes Unicode white space too (U+00A0,
// U+0085, U+2028, U+3000...), so it accepts bodies that are not JSON: the gateway then
// hands those exact bytes on (notify forwards ex.Body verbatim to every server; access
// rules and processors read ex.Body) as if they were a valid message.
func TestParseRefusesNonJSONWhiteSpace(t *testing.T) {
	msg := `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	for _, ws := range []string{"\u00a0", "\u0085", "\u2028", "\u3000", "\v", "\f"} {
		for _, in := range []string{ws + msg, msg + ws} {
			if json.Valid([]byte(in)) {
				t.Fatalf("%q is valid JSON; the test is wrong", in)
			}
			if m, err := mcp.Parse([]byte(in)); err == nil {
				t.Errorf("Parse(%q) accepted a body that is not JSON: %+v", in, m)
			}
		}
	}
}

func TestRenderersParseBack(t *testing.T) {
	ids := []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`"x"`), json.RawMessage(`"sluice:0:\"q\""`), json.RawMessage(`-2.5`)}
	for _, id := range ids {
		for _, tc := range []struct {
			name string
			b    []byte
			want mcp.Message
		}{
			{"result", mcp.Result(id, json.RawMessage(`{"a":[1,2]}`)), mcp.Message{ID: id, Result: json.RawMessage(`{"a":[1,2]}`)}},
			{"request", mcp.Request(id, "tools/list", nil), mcp.Message{ID: id, Method: "tools/list"}},
			{"request with params", mcp.Request(id, "tools/call", json.RawMessage(`{"name":"n"}`)), mcp.Message{ID: id, Method: "tools/call", Params: json.RawMessage(`{"name":"n"}`)}},
			{"request with odd method", mcp.Request(id, "a\"b\\c\n\u2028", nil), mcp.Message{ID: id, Method: "a\"b\\c\n\u2028"}},
			{"response result", mcp.Response(id, json.RawMessage(`true`), nil), mcp.Message{ID: id, Result: json.RawMessage(`true`)}},
			{"response error", mcp.Response(id, nil, json.RawMessage(`{"code":1,"message":"m"}`)), mcp.Message{ID: id, Error: json.RawMessage(`{"code":1,"message":"m"}`)}},
		} {
			if !json.Valid(tc.b) {
				t.Errorf("%s %s: not JSON: %s", tc.name, id, tc.b)
				continue
			}
			m, err := mcp.Parse(tc.b)
			if err != nil {
				t.Errorf("%s %s: Parse(%s): %v", tc.name, id, tc.b, err)
				continue
			}
			if !sameMessage(m, &tc.want) {
				t.Errorf("%s: parsed %+v, want %+v", tc.name, m, tc.want)
			}
		}
	}
}

func sameMessage(a, b *mcp.Message) bool {
	return string(a.ID) == string(b.ID) && a.Method == b.Method && string(a.Params) == string(b.Params) &&
		string(a.Result) == string(b.Result) && string(a.Error) == string(b.Error)
}

func TestWithID(t *testing.T) {
	for _, in := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage","params":{"maxTokens":3}}`,
		`{"jsonrpc":"2.0","id":"a","method":"ping"}`,
		`{"jsonrpc":"2.0","id":"sluice:0:1","result":{"model":"m"}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"x"}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
	} {
		m, err := mcp.Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
		newID := mcp.WrapID(3, json.RawMessage(`"x:y"`))
		out := m.WithID(newID)
		back, err := mcp.Parse(out)
		if err != nil {
			t.Fatalf("WithID of %s = %s: %v", in, out, err)
		}
		want := *m
		want.ID = newID
		if !sameMessage(back, &want) {
			t.Errorf("WithID of %s = %+v, want %+v", in, back, want)
		}
	}
}

func TestParamAndSetParam(t *testing.T) {
	params := json.RawMessage(`{"name":"a_echo","arguments":{"message":"hi","n":{"deep":[1]}},"ref":{"type":"ref/prompt","name":"p_x"}}`)
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"name"}, `"a_echo"`},
		{[]string{"arguments", "message"}, `"hi"`},
		{[]string{"arguments", "n", "deep"}, `[1]`},
		{[]string{"ref", "name"}, `"p_x"`},
		{[]string{"missing"}, ``},
		{[]string{"arguments", "missing"}, ``},
		{[]string{"name", "below a string"}, ``},
		{[]string{"arguments", "n", "deep", "below an array"}, ``},
		{nil, string(params)},
	} {
		v, err := mcp.Param(params, tc.path...)
		if err != nil || string(v) != tc.want {
			t.Errorf("Param(%v) = %s, %v; want %s", tc.path, v, err, tc.want)
		}
	}
	for _, p := range []json.RawMessage{nil, json.RawMessage(`null`), json.RawMessage(`[]`), json.RawMessage(`"s"`)} {
		if v, err := mcp.Param(p, "name"); v != nil || err != nil {
			t.Errorf("Param(%s, name) = %s, %v; want nothing", p, v, err)
		}
	}
	if _, err := mcp.Param(json.RawMessage(`{"name":`), "name"); err == nil {
		t.Error("Param of broken JSON: no error")
	}

	for _, amb := range []struct {
		params string
		path   []string
	}{
		{`{"name":"a","name":"b"}`, []string{"name"}},
		{`{"name":"a","Name":"b"}`, []string{"name"}},
		{`{"Name":"b"}`, []string{"name"}},
		{`{"NAME":"b"}`, []string{"name"}},
		{`{"name":"a","n\u0061me":"b"}`, []string{"name"}},
		{`{"n\u0061me":"a","N\u0041ME":"b"}`, []string{"name"}},
		{`{"ref":{"name":"a","Name":"b"}}`, []string{"ref", "name"}},
		{`{"ref":{"name":"a"},"Ref":{"name":"b"}}`, []string{"ref", "name"}},
		{`{"argumentſ":{}}`, []string{"arguments"}}, // ſ folds to s, as encoding/json matches it
		{`{"arguments":{},"arguments":{}}`, []string{"arguments"}},
	} {
		if v, err := mcp.Param(json.RawMessage(amb.params), amb.path...); !errors.Is(err, mcp.ErrAmbiguous) {
			t.Errorf("Param(%s, %v) = %s, %v; want ErrAmbiguous", amb.params, amb.path, v, err)
		}
		if v, err := mcp.SetParam(json.RawMessage(amb.params), json.RawMessage(`"z"`), amb.path...); !errors.Is(err, mcp.ErrAmbiguous) {
			t.Errorf("SetParam(%s, %v) = %s, %v; want ErrAmbiguous", amb.params, amb.path, v, err)
		}
	}
	// An escaped spelling alone is the same member to every parser.
	if v, err := mcp.Param(json.RawMessage(`{"n\u0061me":"a"}`), "name"); err != nil || string(v) != `"a"` {
		t.Errorf("escaped key alone: %s, %v", v, err)
	}
	// Other members may differ in case from the one read.
	if v, err := mcp.Param(json.RawMessage(`{"name":"a","Arguments":{}}`), "name"); err != nil || string(v) != `"a"` {
		t.Errorf("another member's case: %s, %v", v, err)
	}
}

func TestSetParam(t *testing.T) {
	params := json.RawMessage(`{"name":"a_echo","arguments":{"message":"hi"},"_meta":{"progressToken":7}}`)
	out, err := mcp.SetParam(params, json.RawMessage(`"echo"`), "name")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if string(got["name"]) != `"echo"` || string(got["arguments"]) != `{"message":"hi"}` || string(got["_meta"]) != `{"progressToken":7}` || len(got) != 3 {
		t.Errorf("SetParam name = %s", out)
	}

	params = json.RawMessage(`{"ref":{"type":"ref/prompt","name":"p_greet"},"argument":{"name":"who","value":"x"}}`)
	out, err = mcp.SetParam(params, json.RawMessage(`"greet"`), "ref", "name")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := mcp.Param(out, "ref", "name"); string(v) != `"greet"` {
		t.Errorf("ref.name = %s in %s", v, out)
	}
	if v, _ := mcp.Param(out, "ref", "type"); string(v) != `"ref/prompt"` {
		t.Errorf("ref.type = %s in %s", v, out)
	}
	if v, _ := mcp.Param(out, "argument", "name"); string(v) != `"who"` {
		t.Errorf("argument.name = %s in %s", v, out)
	}

	// An absent leaf is added; an absent object on the way is an error.
	if out, err := mcp.SetParam(json.RawMessage(`{}`), json.RawMessage(`1`), "name"); err != nil || string(out) != `{"name":1}` {
		t.Errorf("SetParam into {} = %s, %v", out, err)
	}
	for _, p := range []string{`{}`, `{"ref":null}`, `{"ref":"x"}`, `{"ref":[1]}`} {
		if out, err := mcp.SetParam(json.RawMessage(p), json.RawMessage(`1`), "ref", "name"); err == nil {
			t.Errorf("SetParam(%s, ref.name) = %s, want an error", p, out)
		}
	}
	for _, p := range []json.RawMessage{nil, json.RawMessage(`null`), json.RawMessage(`[]`), json.RawMessage(`{`)} {
		if out, err := mcp.SetParam(p, json.RawMessage(`1`), "name"); err == nil {
			t.Errorf("SetParam(%s) = %s, want an error", p, out)
		}
	}
	if out, err := mcp.SetParam(json.RawMessage(`{"a":1}`), json.RawMessage(`2`)); err != nil || string(out) != `2` {
		t.Errorf("SetParam without a path = %s, %v", out, err)
	}
}

// parseSeeds are messages valid and not, for FuzzParse.
var parseSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","arguments":{"message":"hi"}}}`,
	`{"jsonrpc":"2.0","id":"x","method":"tools/list"}`,
	`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`{"jsonrpc":"2.0","id":"sluice:0:1","result":{"model":"m","role":"assistant","content":{"type":"text","text":"Paris"}}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`,
	`{"jsonrpc":"2.0","id":1,"result":{},"error":{}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","Method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"m\u0065thod":"ping"}`,
	`{"jsonrpc":"2.0","id":true,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1e999,"method":"p\u0000ing\ud800"}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping"}garbage`,
	`{`, ``, `null`, `"x"`,
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := mcp.Parse(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Parse(%q) returned a message with error %v", b, err)
			}
			if err != mcp.ErrBatch && err != mcp.ErrMessage {
				t.Fatalf("Parse(%q): unexpected error %v", b, err)
			}
			return
		}
		if m.IsRequest() == m.IsNotification() && !m.IsResponse() {
			t.Fatalf("Parse(%q): neither request, notification nor response: %+v", b, m)
		}
		if m.IsResponse() && (m.ID == nil || (m.Result == nil) == (m.Error == nil)) {
			t.Fatalf("Parse(%q): response %+v", b, m)
		}
		if m.ID != nil && !json.Valid(m.ID) {
			t.Fatalf("Parse(%q): id %q is not JSON", b, m.ID)
		}
		if !json.Valid(b) && json.Valid(bytes.TrimSpace(b)) {
			t.Skip("Unicode white space around the message: see TestParseRefusesNonJSONWhiteSpace")
		}
		var v struct {
			JSONRPC string `json:"jsonrpc"`
		}
		// Whatever the gateway accepts encoding/json reads the same way.
		if err := json.Unmarshal(b, &v); err != nil || v.JSONRPC != "2.0" {
			t.Fatalf("Parse accepted %q, encoding/json reads %+v, %v", b, v, err)
		}
		for _, id := range []json.RawMessage{json.RawMessage(`7`), json.RawMessage(`"q"`), mcp.WrapID(1, m.ID)} {
			if m.ID == nil {
				break // a notification renders as a request only with an id
			}
			out := m.WithID(id)
			if !json.Valid(out) {
				t.Fatalf("WithID of %q = %q: not JSON", b, out)
			}
			back, err := mcp.Parse(out)
			if err != nil {
				t.Fatalf("WithID of %q = %q: Parse: %v", b, out, err)
			}
			want := *m
			want.ID = id
			if m.IsResponse() {
				want.Params = nil // a response is rendered without params
			}
			if !sameMessage(back, &want) {
				t.Fatalf("WithID of %q = %q, read back as %+v", b, out, back)
			}
		}
	})
}

func FuzzParam(f *testing.F) {
	for _, s := range []string{
		`{"name":"a_echo","arguments":{"message":"hi"}}`,
		`{"name":"a","Name":"b"}`,
		`{"n\u0061me":"a"}`,
		`{"ref":{"type":"ref/prompt","name":"p_x"}}`,
		`{"ref":{"name":"a","name":"b"}}`,
		`{"ref":null}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s), "name", "", []byte(`"v"`))
		f.Add([]byte(s), "ref", "name", []byte(`{"x":[1,2]}`))
	}
	f.Fuzz(func(t *testing.T, params []byte, k1, k2 string, value []byte) {
		path := []string{k1}
		if k2 != "" {
			path = append(path, k2)
		}
		v, err := mcp.Param(params, path...)
		if err == nil && v != nil && !json.Valid(v) {
			t.Fatalf("Param(%q, %q) = %q: not JSON", params, path, v)
		}
		out, serr := mcp.SetParam(params, value, path...)
		if serr != nil {
			return
		}
		if err != nil {
			t.Fatalf("SetParam(%q, %q) succeeded where Param failed with %v", params, path, err)
		}
		if !json.Valid(value) || !utf8.ValidString(k1) || !utf8.ValidString(k2) {
			return // raw JSON is the caller's to give; keys become U+FFFD
		}
		if !json.Valid(out) {
			t.Fatalf("SetParam(%q, %q, %q) = %q: not JSON", params, path, value, out)
		}
		got, err := mcp.Param(out, path...)
		if err != nil {
			t.Fatalf("SetParam(%q, %q, %q) = %q, ambiguous: %v", params, path, value, out, err)
		}
		if got == nil || !json.Valid(got) {
			t.Fatalf("SetParam(%q, %q, %q) = %q: member %q", params, path, value, out, got)
		}
	})
}
