package content

import (
	"slices"
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

func TestMCPRequest(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"tools/call nested", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fs__write","arguments":{"path":"/tmp/a","opts":{"mode":"w","tags":["x",{"deep":"y \"q\""}],"n":3,"ok":true,"none":null},"lines":[["a"],[]]}}}`,
			[]string{"/tmp/a", "w", "x", `y "q"`, "a"}},
		{"params before method", `{"params":{"arguments":{"q":"hi"},"name":"s"},"id":"a","method":"prompts/get","jsonrpc":"2.0"}`, []string{"hi"}},
		{"escaped method and key", `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"t","\u0061rguments":{"k":"v"}}}`, []string{"v"}},
		{"key case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"Arguments":{"k":"v"}}}`, []string{"v"}},
		{"keys are not text", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"secret key":{"inner key":1}}}}`, nil},
		{"arguments a string", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":"s"}}`, []string{"s"}},
		{"tool name is not text", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}`, nil},
		{"tools/list", `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c"}}`, nil},
		{"initialize", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"arguments":{"k":"v"},"clientInfo":{"name":"c"}}}`, nil},
		{"no params", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, nil},
		{"params not an object", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["x"]}`, nil},
		{"method not a string", `{"jsonrpc":"2.0","id":1,"method":7,"params":{"arguments":{"k":"v"}}}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			segs, err := Request(exchange.EndpointMCP, []byte(c.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range texts(t, c.body, segs) {
				if s.Part != User {
					t.Fatalf("part %v", s.Part)
				}
				got = append(got, s.Text)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	if _, err := Request(exchange.EndpointMCP, []byte(`{"method":"tools/call",`), nil); err == nil {
		t.Fatal("invalid JSON must be an error")
	}
	if segs, err := Request(exchange.EndpointMCP, []byte(`[{"method":"tools/call","params":{"arguments":{"a":"b"}}}]`), nil); err == nil || len(segs) != 0 {
		t.Fatal("a batch is not a request")
	}
}

func TestMCPResponse(t *testing.T) {
	cases := []struct {
		name, body string
		want       []string
	}{
		{"tool result", `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"one"},{"type":"image","data":"AAAA","mimeType":"image/png"},{"type":"resource","resource":{"uri":"file:///a","mimeType":"text/plain","text":"two"}},{"type":"resource","resource":{"uri":"file:///b","blob":"AAAA"}},{"type":"resource_link","uri":"file:///c","name":"c"}],"structuredContent":{"k":"three","list":[{"n":1,"s":"four"}]},"isError":false}}`,
			[]string{"one", "two", "three", "four"}},
		{"resources/read", `{"jsonrpc":"2.0","id":2,"result":{"contents":[{"uri":"file:///a","text":"file text"},{"uri":"file:///b","blob":"AAAA"}]}}`, []string{"file text"}},
		{"prompts/get", `{"jsonrpc":"2.0","id":3,"result":{"description":"d","messages":[{"role":"user","content":{"type":"text","text":"p1"}},{"role":"assistant","content":{"type":"resource","resource":{"uri":"x","text":"p2"}}},{"role":"user","content":{"type":"image","data":"AA"}}]}}`, []string{"p1", "p2"}},
		{"error", `{"jsonrpc":"2.0","id":4,"error":{"code":-32602,"message":"Unknown tool"}}`, nil},
		{"tools/list", `{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"t","description":"d","inputSchema":{"type":"object"}}]}}`, nil},
		{"odd shapes", `{"jsonrpc":"2.0","id":6,"result":{"content":"text","contents":{"text":"x"},"messages":[1,"m",{"content":[]}],"structuredContent":"s"}}`, []string{"s"}},
		{"result not an object", `{"jsonrpc":"2.0","id":7,"result":[{"content":[{"type":"text","text":"x"}]}]}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			segs, err := Response(exchange.EndpointMCP, []byte(c.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range texts(t, c.body, segs) {
				if s.Part != Answer {
					t.Fatalf("part %v", s.Part)
				}
				got = append(got, s.Text)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestAllStringsOddBytes(t *testing.T) {
	for _, v := range []string{``, `"`, `"abc`, `}`, `]]`, `{"a":"b\`, `[1,"x\"`, `{"k"`} {
		for _, s := range allStrings([]byte(v), 0, User, nil) {
			if s.Start < 0 || s.End > len(v) || v[s.Start] != '"' || v[s.End-1] != '"' {
				t.Fatalf("%q: bad segment %+v", v, s)
			}
		}
	}
}
