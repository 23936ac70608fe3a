package content

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

type seg struct {
	Part Part
	Text string
}

func texts(t *testing.T, body string, segs []Segment) []seg {
	t.Helper()
	var out []seg
	for _, s := range segs {
		out = append(out, seg{s.Part, string(Text(nil, []byte(body), s))})
	}
	return out
}

func TestRequestParts(t *testing.T) {
	cases := []struct {
		name string
		ep   exchange.Endpoint
		body string
		want []seg
	}{
		{"chat strings", exchange.EndpointChat,
			`{"model":"m","messages":[{"role":"system","content":"be nice"},{"role":"user","content":"hi \"you\"\n"},{"role":"assistant","content":"hello"},{"role":"tool","tool_call_id":"1","content":"result"}]}`,
			[]seg{{System, "be nice"}, {User, "hi \"you\"\n"}, {Assistant, "hello"}, {Tool, "result"}}},
		{"chat parts", exchange.EndpointChat,
			`{"messages":[{"content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:x"}},{"type":"text","text":"b"}],"role":"user"},{"role":"developer","content":[{"type":"text","text":"d"}]}],"model":"m"}`,
			[]seg{{User, "a"}, {User, "b"}, {System, "d"}}},
		{"completions", exchange.EndpointCompletions, `{"model":"m","prompt":["one","two",[1,2]]}`, []seg{{User, "one"}, {User, "two"}}},
		{"embeddings", exchange.EndpointEmbeddings, `{"model":"m","input":"text"}`, []seg{{User, "text"}}},
		{"anthropic", exchange.EndpointMessages,
			`{"model":"m","system":[{"type":"text","text":"sys"}],"messages":[{"role":"user","content":[{"type":"text","text":"q"},{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"page"}]},{"type":"document","source":{"type":"text","media_type":"text/plain","data":"doc"}}]},{"role":"assistant","content":"ok"},{"role":"user","content":"plain"}]}`,
			[]seg{{System, "sys"}, {User, "q"}, {Tool, "page"}, {Tool, "doc"}, {Assistant, "ok"}, {User, "plain"}}},
		{"anthropic tool_result string", exchange.EndpointMessages,
			`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ignore all"}]}]}`,
			[]seg{{Tool, "ignore all"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			segs, err := Request(c.ep, []byte(c.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := texts(t, c.body, segs)
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("segment %d: got %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestRequestShapeError(t *testing.T) {
	if _, err := Request(exchange.EndpointChat, []byte(`{"messages":["x"]}`), nil); err == nil {
		t.Fatal("a message that is not an object must be an error")
	}
}

func TestResponse(t *testing.T) {
	body := `{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"mail a@b.co"}},{"index":1,"text":"t"}]}`
	segs, err := Response(exchange.EndpointChat, []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := texts(t, body, segs)
	if len(got) != 2 || got[0].Text != "mail a@b.co" || got[1].Text != "t" {
		t.Fatalf("got %v", got)
	}
	body = `{"type":"message","content":[{"type":"text","text":"hello"},{"type":"tool_use","id":"1","name":"f","input":{}}]}`
	segs, _ = Response(exchange.EndpointMessages, []byte(body), nil)
	if got := texts(t, body, segs); len(got) != 1 || got[0].Text != "hello" {
		t.Fatalf("got %v", got)
	}
}

func TestRewriteKeepsJSONValid(t *testing.T) {
	body := []byte(`{"messages":[{"role":"user","content":"my mail is a@b.co"}],"model":"m"}`)
	segs, _ := Request(exchange.EndpointChat, body, nil)
	out := Rewrite(body, []Edit{{Segment: segs[0], Text: []byte("my mail is [EMAIL] \"<&>\"\u2028\x01")}})
	var v struct {
		Messages []struct{ Content string }
		Model    string
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if v.Messages[0].Content != "my mail is [EMAIL] \"<&>\"\u2028\x01" || v.Model != "m" {
		t.Fatalf("got %+v", v)
	}
	if !strings.Contains(string(out), "<&>") {
		t.Fatal("no HTML escaping expected")
	}
}

func TestDelta(t *testing.T) {
	cases := []struct {
		ev    string
		index int
		text  string
		ok    bool
	}{
		{"data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n", 0, "Hel", true},
		{"data: {\"choices\":[{\"index\":2,\"text\":\"x\\n\"}]}\n\n", 2, "x\n", true},
		{"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n", 0, "", false},
		{"data: [DONE]\n\n", 0, "", false},
		{"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"abc\"}}\n\n", 1, "abc", true},
		{"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n", 0, "", false},
	}
	for _, c := range cases {
		idx, seg, ok, _ := Delta([]byte(c.ev))
		if ok != c.ok {
			t.Fatalf("%q: ok %v", c.ev, ok)
		}
		if !ok {
			continue
		}
		if idx != c.index || string(Text(nil, []byte(c.ev), seg)) != c.text {
			t.Fatalf("%q: index %d text %q", c.ev, idx, Text(nil, []byte(c.ev), seg))
		}
	}
	multi := "data: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"hidden\"}}]}\n\n"
	if _, _, ok, m := Delta([]byte(multi)); ok || !m {
		t.Fatal("multi-line data must be reported")
	}
	doc, _, seg, ok := JoinData([]byte(multi))
	if !ok || string(Text(nil, doc, seg)) != "hidden" {
		t.Fatalf("JoinData: %q %v", doc, ok)
	}
}

func TestSetAndRemoveField(t *testing.T) {
	cases := []struct {
		body, path, value, want string
	}{
		{`{"model":"m"}`, "metadata.team", `"r"`, `{"model":"m","metadata":{"team":"r"}}`},
		{`{}`, "user", `"u"`, `{"user":"u"}`},
		{`{"metadata":{"a":1}}`, "metadata.team", `"r"`, `{"metadata":{"a":1,"team":"r"}}`},
		{`{"metadata":{"team":"x"},"n":1}`, "metadata.team", `["r"]`, `{"metadata":{"team":["r"]},"n":1}`},
		{`{"user":"a","user":"b"}`, "user", `"c"`, `{"user":"c","user":"c"}`},
	}
	for _, c := range cases {
		out, err := SetField([]byte(c.body), strings.Split(c.path, "."), []byte(c.value))
		if err != nil || string(out) != c.want {
			t.Fatalf("SetField(%s, %s) = %s, %v; want %s", c.body, c.path, out, err, c.want)
		}
	}
	if _, err := SetField([]byte(`{"metadata":"x"}`), []string{"metadata", "team"}, []byte(`1`)); err != ErrNotObject {
		t.Fatalf("through a string: %v", err)
	}
	rm := []struct{ body, path, want string }{
		{`{"a":1,"b":2,"c":3}`, "b", `{"a":1,"c":3}`},
		{`{"a":1,"b":2}`, "a", `{"b":2}`},
		{`{"a":1}`, "a", `{}`},
		{`{"a":1,"a":2,"b":3}`, "a", `{"b":3}`},
		{`{"m":{"x":1,"y":2},"z":0}`, "m.y", `{"m":{"x":1},"z":0}`},
		{`{"m":1}`, "q", `{"m":1}`},
	}
	for _, c := range rm {
		out, err := RemoveField([]byte(c.body), strings.Split(c.path, "."))
		if err != nil || string(out) != c.want {
			t.Fatalf("RemoveField(%s, %s) = %s, %v; want %s", c.body, c.path, out, err, c.want)
		}
	}
}

func FuzzRequest(f *testing.F) {
	f.Add(`{"messages":[{"role":"user","content":"hi"}]}`, uint8(1))
	f.Add(`{"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","text":"x"}]}]}]}`, uint8(5))
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":["x",{"b":"y"}],"c":1}}}`, uint8(7))
	f.Add(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"x"}],"structuredContent":{"k":["v"]}}}`, uint8(7))
	f.Fuzz(func(t *testing.T, body string, ep uint8) {
		e := exchange.Endpoint(ep % 8)
		// Whatever the body, an answer's segments are well formed too.
		if segs, err := Response(e, []byte(body), nil); err == nil {
			checkRewrite(t, body, segs)
		}
		segs, err := Request(e, []byte(body), nil)
		if err != nil {
			return
		}
		checkRewrite(t, body, segs)
	})
}

// checkRewrite checks that segments are raw strings of body, in order, and that
// rewriting them all keeps valid JSON valid.
func checkRewrite(t *testing.T, body string, segs []Segment) {
	t.Helper()
	edits := make([]Edit, len(segs))
	prev := 0
	for i, s := range segs {
		if s.Start < prev || s.End > len(body) || s.Start >= s.End || body[s.Start] != '"' || body[s.End-1] != '"' {
			t.Fatalf("bad segment %+v", s)
		}
		prev = s.End
		edits[i] = Edit{Segment: s, Text: []byte("[X]")}
	}
	out := Rewrite([]byte(body), edits)
	if json.Valid([]byte(body)) && !json.Valid(out) {
		t.Fatalf("rewrite broke JSON: %s", out)
	}
}
