package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

// newFuzzMCPServer is an MCP server whose every tool answers at once: no tool asks the
// client anything (a sampling request would wait for a reply the fuzzer never sends).
func newFuzzMCPServer(t testing.TB) *httptest.Server {
	s := mcpsdk.NewServer(&mcpsdk.Implementation{Name: "fuzz", Version: "1.0.0"}, nil)
	mcpsdk.AddTool(s, &mcpsdk.Tool{Name: "echo", Description: "Echoes a message."}, func(_ context.Context, _ *mcpsdk.CallToolRequest, in echoIn) (*mcpsdk.CallToolResult, any, error) {
		return textResult("fuzz says " + in.Message), nil, nil
	})
	mcpsdk.AddTool(s, &mcpsdk.Tool{Name: "add", Description: "Adds two numbers."}, func(_ context.Context, _ *mcpsdk.CallToolRequest, in sumIn) (*mcpsdk.CallToolResult, any, error) {
		return textResult(strconv.Itoa(in.A + in.B)), nil, nil
	})
	mcpsdk.AddTool(s, &mcpsdk.Tool{Name: "read-env", Description: "Excluded by the route."}, func(context.Context, *mcpsdk.CallToolRequest, struct{}) (*mcpsdk.CallToolResult, any, error) {
		return textResult("SECRET=hunter2"), nil, nil
	})
	s.AddResource(&mcpsdk.Resource{URI: "docs://fuzz/readme", Name: "readme", MIMEType: "text/plain"}, func(_ context.Context, req *mcpsdk.ReadResourceRequest) (*mcpsdk.ReadResourceResult, error) {
		return &mcpsdk.ReadResourceResult{Contents: []*mcpsdk.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "readme"}}}, nil
	})
	s.AddPrompt(&mcpsdk.Prompt{Name: "greet", Description: "Greets."}, func(context.Context, *mcpsdk.GetPromptRequest) (*mcpsdk.GetPromptResult, error) {
		return &mcpsdk.GetPromptResult{Messages: []*mcpsdk.PromptMessage{{Role: "user", Content: &mcpsdk.TextContent{Text: "hello"}}}}, nil
	})
	srv := httptest.NewServer(mcpsdk.NewStreamableHTTPHandler(func(*http.Request) *mcpsdk.Server { return s }, nil))
	t.Cleanup(srv.Close)
	return srv
}

const mcpFuzzLimit = 64 << 10

func mcpFuzzConfig(url string) string {
	return `
apiVersion: v1
kind: Secret
metadata: {name: mcp-session}
stringData: {sessionKey: "a-session-key-of-at-least-32-bytes-for-fuzzing"}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: fz}
spec: {protocol: MCP, url: "` + url + `/"}
---
apiVersion: sluice.dev/v1alpha1
kind: MCPRoute
metadata: {name: tools}
spec:
  sessionKeyRef: {name: mcp-session}
  backendRefs:
  - {name: fz, toolPrefix: f_, tools: {exclude: ["read-env"]}}
`
}

// mcpPost sends one body through the handler.
func mcpPost(t testing.TB, gw http.Handler, session, body string) *httptest.ResponseRecorder {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	return w
}

// jsonRPCObject reports whether b is a JSON object with "jsonrpc":"2.0".
func jsonRPCObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && string(m["jsonrpc"]) == `"2.0"`
}

// FuzzMCPHandler posts arbitrary messages in an open session through an MCPRoute in
// front of a real MCP server: nothing panics, every status is one the transport allows,
// and every answer with a body is JSON-RPC (each event of a stream, too).
func FuzzMCPHandler(f *testing.F) {
	srv := newFuzzMCPServer(f)
	snap := gatewaytest.Build(f, mcpFuzzConfig(srv.URL), nil)
	log := &gatewaytest.Log{}
	gw := gateway.New(gateway.Options{Logger: slog.New(slog.NewJSONHandler(log, nil)), MaxRequestBytes: mcpFuzzLimit})
	gw.Swap(snap)

	w := mcpPost(f, gw, "", initMsg)
	session := w.Header().Get("Mcp-Session-Id")
	if w.Code != 200 || session == "" {
		f.Fatalf("initialize: %d %q %s\n%s", w.Code, session, w.Body, log)
	}
	if w := mcpPost(f, gw, session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); w.Code != http.StatusAccepted {
		f.Fatalf("notifications/initialized: %d %s", w.Code, w.Body)
	}

	for _, s := range []string{
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":"c","method":"tools/list","params":{"cursor":"x"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"f_echo","arguments":{"message":"hi"}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"f_add","arguments":{"a":1,"b":2}}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"f_read-env","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"f_","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"f_echo","Name":"f_read-env"}}`,
		`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"f_echo","arguments":[1]}}`,
		`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"f_echo","arguments":{"message":1}}}`,
		`{"jsonrpc":"2.0","id":7,"method":"prompts/list"}`,
		`{"jsonrpc":"2.0","id":8,"method":"prompts/get","params":{"name":"f_greet"}}`,
		`{"jsonrpc":"2.0","id":9,"method":"resources/list"}`,
		`{"jsonrpc":"2.0","id":9,"method":"resources/templates/list"}`,
		`{"jsonrpc":"2.0","id":10,"method":"resources/read","params":{"uri":"docs://fuzz/readme"}}`,
		`{"jsonrpc":"2.0","id":10,"method":"resources/subscribe","params":{"uri":"docs://fuzz/readme"}}`,
		`{"jsonrpc":"2.0","id":11,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"f_greet"},"argument":{"name":"a","value":"b"}}}`,
		`{"jsonrpc":"2.0","id":11,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"docs://x"},"argument":{"name":"a","value":"b"}}}`,
		`{"jsonrpc":"2.0","id":11,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"f_greet","Name":"x"}}}`,
		`{"jsonrpc":"2.0","id":12,"method":"logging/setLevel","params":{"level":"debug"}}`,
		`{"jsonrpc":"2.0","id":13,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":14,"method":"tools/destroy"}`,
		initMsg,
		`{"jsonrpc":"2.0","id":15,"method":"initialize","params":null}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`,
		`{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`,
		`{"jsonrpc":"2.0","id":"sluice:0:1","result":{"model":"m","role":"assistant","content":{"type":"text","text":"Paris"}}}`,
		`{"jsonrpc":"2.0","id":"sluice:0:\"x\"","error":{"code":-1,"message":"no"}}`,
		`{"jsonrpc":"2.0","id":"sluice:1:1","result":{}}`,
		`{"jsonrpc":"2.0","id":"sluice:-1:1","result":{}}`,
		`{"jsonrpc":"2.0","id":"sluice:0:{}","result":{}}`,
		`{"jsonrpc":"2.0","id":7,"result":{}}`,
		`[{"jsonrpc":"2.0","id":2,"method":"ping"}]`,
		`[]`,
		`{"jsonrpc":"2.0","id":2,"method":"ping","Method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":{},"method":"ping"}`,
		`{"jsonrpc":"1.0","id":2,"method":"ping"}`,
		`{"jsonrpc":"2.0",`,
		"\u00a0{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
		``, `null`, `garbage`, "\x00\xff",
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"f_echo","arguments":{"message":"` + strings.Repeat("x", mcpFuzzLimit) + `"}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		w := mcpPost(t, gw, session, body)
		if strings.Contains(log.String(), "panic serving request") {
			t.Fatalf("%q: the handler panicked:\n%s", body, log)
		}
		switch w.Code {
		case 200, 202, 400, 404, 413:
		default:
			t.Fatalf("%q: status %d: %s", body, w.Code, w.Body)
		}
		if w.Code == http.StatusAccepted {
			return
		}
		if ct := w.Header().Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
			if w.Code != 200 {
				t.Fatalf("%q: a stream with status %d", body, w.Code)
			}
			events := 0
			sc := bufio.NewScanner(bytes.NewReader(w.Body.Bytes()))
			sc.Buffer(nil, 1<<24)
			var data []byte
			for sc.Scan() {
				line := sc.Bytes()
				switch {
				case bytes.HasPrefix(line, []byte("data: ")):
					data = append(data, line[len("data: "):]...)
					data = append(data, '\n')
				case len(line) == 0 && data != nil:
					events++
					if !jsonRPCObject(data) {
						t.Fatalf("%q: event %q is not a JSON-RPC object", body, data)
					}
					data = nil
				}
			}
			if events == 0 || data != nil {
				t.Fatalf("%q: stream %q", body, w.Body)
			}
			return
		}
		if !jsonRPCObject(w.Body.Bytes()) {
			t.Fatalf("%q: status %d, body %q is not a JSON-RPC object", body, w.Code, w.Body)
		}
	})
}
