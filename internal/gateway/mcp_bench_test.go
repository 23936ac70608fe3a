package gateway_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

// BenchmarkMCPToolCall measures one tools/call over loopback to an MCP server written
// with the official Go SDK, directly and through the gateway (API key, access rule with
// allow.tools, a per-tool rate limit, the prompt-injection processor on arguments and
// result). The difference is what the gateway adds; both include the SDK server's own
// work, in the same process.
func BenchmarkMCPToolCall(b *testing.B) {
	alpha, _ := newMCPServer(b, "alpha")
	beta, _ := newMCPServer(b, "beta")
	const call = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"%s","arguments":{"message":"hello from the benchmark"}}}`
	run := func(b *testing.B, endpoint, key, tool string) {
		resp, _ := postMCP(b, endpoint, key, "", initMsg)
		sess := resp.Header.Get("Mcp-Session-Id")
		postMCP(b, endpoint, key, sess, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		body := strings.Replace(call, "%s", tool, 1)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if resp, out := postMCP(b, endpoint, key, sess, body); resp.StatusCode != 200 || !strings.Contains(out, "says hello") {
				b.Fatalf("%d %s", resp.StatusCode, out)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, alpha.URL+"/", "", "echo") })
	b.Run("gateway", func(b *testing.B) {
		cfg := strings.Replace(mcpConfig(alpha.URL, beta.URL), "volume: 2, timeUnit: Minute", "volume: 1000000000, timeUnit: Minute", 1)
		// The access log is written, as in production, to nowhere.
		gw := gatewaytest.Start(b, cfg, nil, gateway.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
		run(b, gw.Server.URL+"/mcp", mcpKeyLimited, "a_echo")
	})
}
