package translate_test

import (
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload"
)

const mcpRoute = `---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: tools-server}
spec: {protocol: MCP, url: "http://127.0.0.1:9/mcp"}
---
apiVersion: sluice.dev/v1alpha1
kind: MCPRoute
metadata: {name: tools}
spec:
  backendRefs: [{name: tools-server, toolPrefix: t_}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [m], backendRefs: [{name: mock}]}
`

// TestMCPRouteTargets: rate limits and processors may target an MCPRoute, by its kind.
func TestMCPRouteTargets(t *testing.T) {
	snap, err := build(t, mock+mcpRoute+`---
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: tool-calls}
spec:
  targetRefs: [{kind: MCPRoute, name: tools}]
  rules:
  - name: per-tool
    key: 'principal.team + "/" + mcp.tool'
    trafficMatcher: {celMatcher: 'mcp.method == "tools/call"'}
    limit: {volumeUnits: Requests, volume: 2, timeUnit: Minute}
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: results}
spec:
  targetRefs: [{kind: MCPRoute, name: tools}]
  processors:
  - name: injection
    inProcess: {promptInjection: {}}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := snap.Limits.Policies; len(p) != 1 || len(p[0].Targets) != 1 || !p[0].Targets["MCPRoute/default/tools"] {
		t.Fatalf("rate-limit targets %+v", p[0].Targets)
	}
	if c := snap.Payload.Chain(payload.PreRouting, "MCPRoute/default/tools"); c.Empty() {
		t.Fatal("the MCPRoute has no processors")
	}
	if c := snap.Payload.Chain(payload.PreRouting, "ModelRoute/default/chat"); !c.Empty() {
		t.Fatal("the ModelRoute got the MCPRoute's processors")
	}

	// A target must exist as the kind it names.
	_, err = build(t, mock+mcpRoute+`---
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: wrong-kind}
spec:
  targetRefs: [{kind: MCPRoute, name: chat}, {kind: ModelRoute, name: tools}]
  rules:
  - {name: r, key: '"all"', limit: {volumeUnits: Requests, volume: 2, timeUnit: Minute}}
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: wrong-kind}
spec:
  targetRefs: [{kind: MCPRoute, name: nope}]
  processors:
  - name: injection
    inProcess: {promptInjection: {}}
`, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`RateLimitPolicy/default/wrong-kind: spec.targetRefs[0].name: Not found: "default/chat"`,
		`RateLimitPolicy/default/wrong-kind: spec.targetRefs[1].name: Not found: "default/tools"`,
		`PayloadProcessor/default/wrong-kind: spec.targetRefs[0].name: Not found: "default/nope"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestAccessTools: allow.tools limits MCP calls, and models do not.
func TestAccessTools(t *testing.T) {
	snap, err := build(t, mock+mcpRoute+`---
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: access}
spec:
  authentication: {apiKeys: {}}
  rules:
  - name: interns
    from: {teams: [interns]}
    allow: {models: [m], endpoints: [chat, mcp], tools: ["t_echo", "t_get*"]}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	pr := &auth.Principal{Subject: "bob", Team: "interns"}
	call := func(tool string) auth.Decision {
		return snap.Policy.Authorize(pr, &auth.Request{Endpoint: "mcp", MCP: &exchange.MCPCall{Method: "tools/call", Tool: tool}})
	}
	if d := call("t_get_sum"); !d.Allowed {
		t.Fatalf("t_get_sum: %+v", d)
	}
	if d := call("t_delete"); d.Allowed || d.Reason != auth.ReasonTool {
		t.Fatalf("t_delete: %+v", d)
	}
	if !snap.Policy.VisibleTool(pr, "t_echo") || snap.Policy.VisibleTool(pr, "t_delete") {
		t.Fatal("VisibleTool")
	}
}
