package auth

import (
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

func mcpPolicy(tb testing.TB) *Policy {
	tb.Helper()
	cond, err := CompileCondition(`mcp.method != "tools/call" || !mcp.arguments.path.startsWith("/etc")`)
	if err != nil {
		tb.Fatal(err)
	}
	return NewPolicy(Options{Rules: []*Rule{
		// Models must not limit MCP requests, nor Tools model requests.
		{Name: "ops", Teams: map[string]bool{"ops": true}, Models: []string{"gpt-4o-mini"}, Tools: []string{"github__*", "fs__read_file"}},
		{Name: "chat-only", Teams: map[string]bool{"chat": true}, Endpoints: map[string]bool{"chat": true}},
		{Name: "fs-cel", Teams: map[string]bool{"fs": true}, Tools: []string{"fs__*"}, Endpoints: map[string]bool{"mcp": true}, When: cond},
		{Name: "fs-fallback", Teams: map[string]bool{"fs": true}, Tools: []string{"fs__list_*"}},
	}})
}

func call(tool string, args string) *Request {
	c := &exchange.MCPCall{Method: "tools/call", Tool: tool}
	if args != "" {
		c.Arguments = []byte(args)
	}
	return &Request{Endpoint: "mcp", MCP: c}
}

func TestAuthorizeTools(t *testing.T) {
	p := mcpPolicy(t)
	ops := &Principal{Subject: "o", Team: "ops"}
	for _, c := range []struct {
		name    string
		req     *Request
		allowed bool
		reason  Reason
	}{
		{"glob", call("github__create_issue", ""), true, ReasonNone},
		{"exact", call("fs__read_file", ""), true, ReasonNone},
		{"not listed", call("fs__write_file", ""), false, ReasonTool},
		{"no tool (tools/list)", &Request{Endpoint: "mcp", MCP: &exchange.MCPCall{Method: "tools/list"}}, true, ReasonNone},
		{"no call", &Request{Endpoint: "mcp"}, true, ReasonNone},
		// Tools do not limit model requests; models still do.
		{"model allowed", &Request{Endpoint: "chat", Model: "gpt-4o-mini"}, true, ReasonNone},
		{"model denied", &Request{Endpoint: "chat", Model: "gpt-4o"}, false, ReasonModel},
		{"tool on a model request", &Request{Endpoint: "chat", Model: "gpt-4o-mini", MCP: &exchange.MCPCall{Tool: "nope"}}, true, ReasonNone},
	} {
		d := p.Authorize(ops, c.req)
		if d.Allowed != c.allowed || d.Reason != c.reason {
			t.Errorf("%s: %+v", c.name, d)
		}
	}
	if d := p.Authorize(&Principal{Team: "chat"}, call("github__x", "")); d.Allowed || d.Reason != ReasonEndpoint {
		t.Errorf("endpoints without mcp: %+v", d)
	}
	if got := p.Denials(); got["tool_not_allowed"] != 1 || got["model_not_allowed"] != 1 || got["endpoint_not_allowed"] != 1 {
		t.Errorf("denial counters %v", got)
	}
	e := (Decision{Rule: "ops", Reason: ReasonTool}).Error()
	if e.Status != 403 || e.Code != CodeToolNotAllowed || e.Param != "name" || e.Message != "This tool is not allowed for your credentials." {
		t.Errorf("error %+v", e)
	}
}

func TestAuthorizeMCPCondition(t *testing.T) {
	p := mcpPolicy(t)
	fs := &Principal{Subject: "f", Team: "fs"}
	for _, c := range []struct {
		req  *Request
		rule string
		ok   bool
	}{
		{call("fs__read_file", `{"path":"/tmp/a"}`), "fs-cel", true},
		// The condition fails: the next rule decides, and does not allow fs__read_file.
		{call("fs__read_file", `{"path":"/etc/passwd"}`), "fs-fallback", false},
		{call("fs__list_dir", `{"path":"/etc"}`), "fs-fallback", true},
		// No arguments: mcp.arguments.path is an error, so the condition is false.
		{call("fs__read_file", ""), "fs-fallback", false},
		{call("fs__read_file", `not json`), "fs-fallback", false},
		{&Request{Endpoint: "mcp", MCP: &exchange.MCPCall{Method: "tools/list"}}, "fs-cel", true},
	} {
		d := p.Authorize(fs, c.req)
		if d.Rule != c.rule || d.Allowed != c.ok {
			t.Errorf("%s %s: %+v", c.req.MCP.Tool, c.req.MCP.Arguments, d)
		}
	}
}

func TestVisibleTool(t *testing.T) {
	p := mcpPolicy(t)
	ops := &Principal{Team: "ops"}
	if !p.VisibleTool(ops, "github__create_issue") || p.VisibleTool(ops, "fs__write_file") {
		t.Error("ops")
	}
	if p.VisibleTool(&Principal{Team: "chat"}, "github__x") {
		t.Error("a rule without the mcp endpoint shows tools")
	}
	// fs-cel has a condition: it could allow fs__*, whatever the arguments.
	fs := &Principal{Team: "fs"}
	if !p.VisibleTool(fs, "fs__write_file") || p.VisibleTool(fs, "github__x") {
		t.Error("fs")
	}
	if p.VisibleTool(&Principal{Team: "other"}, "fs__x") {
		t.Error("default deny")
	}
	if !NewPolicy(Options{DefaultAllow: true}).VisibleTool(&Principal{}, "x") {
		t.Error("default allow")
	}
}

func TestCELOverMCP(t *testing.T) {
	pr := &Principal{Team: "research"}
	key, err := CompileExpression(`principal.team + "/" + mcp.tool`)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := key.Eval(pr, call("github__search", "")); err != nil || v.Value() != "research/github__search" {
		t.Fatalf("key %v %v", v, err)
	}
	if v, err := key.Eval(pr, &Request{Endpoint: "chat", Model: "m"}); err != nil || v.Value() != "research/" {
		t.Fatalf("key on a model request %v %v", v, err)
	}
	c, err := CompileCondition(`mcp.method == "tools/call" && mcp.arguments.path.startsWith("/tmp") && mcp.arguments.opts.depth < 3 && mcp.arguments.tags.exists(t, t == "x")`)
	if err != nil {
		t.Fatal(err)
	}
	for args, want := range map[string]bool{
		`{"path":"/tmp/x","opts":{"depth":2},"tags":["y","x"]}`: true,
		`{"path":"/var/x","opts":{"depth":2},"tags":["x"]}`:     false,
		`{"path":"/tmp/x","opts":{"depth":5},"tags":["x"]}`:     false,
		`{"path":1}`: false,
		`[1,2]`:      false,
		``:           false,
	} {
		if got := c.Eval(pr, call("fs__read", args)); got != want {
			t.Errorf("%s: %v", args, got)
		}
	}
	empty, err := CompileCondition(`mcp.tool == "" && mcp.method == "" && mcp.server == "" && mcp.prompt == "" && size(mcp.arguments) == 0`)
	if err != nil {
		t.Fatal(err)
	}
	if !empty.Eval(pr, &Request{Endpoint: "chat"}) {
		t.Error("mcp is not empty on a model request")
	}
	prompt, err := CompileCondition(`mcp.method == "prompts/get" && mcp.prompt == "docs__summary" && mcp.server == "Backend/default/docs"`)
	if err != nil {
		t.Fatal(err)
	}
	if !prompt.Eval(pr, &Request{Endpoint: "mcp", MCP: &exchange.MCPCall{Method: "prompts/get", Prompt: "docs__summary", Server: "Backend/default/docs"}}) {
		t.Error("prompt")
	}
}

// TestRulesSpeakOfModelsOrTools: a rule without endpoints that lists only models is about
// models (it grants no tool), one that lists only tools is about MCP (it grants no model),
// and one that lists neither grants both; explicit endpoints decide otherwise.
func TestRulesSpeakOfModelsOrTools(t *testing.T) {
	p := NewPolicy(Options{Rules: []*Rule{
		{Name: "models-only", Teams: map[string]bool{"m": true}, Models: []string{"gpt-*"}},
		{Name: "tools-only", Teams: map[string]bool{"t": true}, Tools: []string{"gh_*"}},
		{Name: "everything", Teams: map[string]bool{"e": true}},
		{Name: "mcp-endpoint", Teams: map[string]bool{"x": true}, Models: []string{"gpt-*"}, Endpoints: map[string]bool{"mcp": true}},
	}})
	chat := &Request{Endpoint: "chat", Model: "gpt-4o"}
	tool := call("gh_issues", "")
	for _, c := range []struct {
		team       string
		chat, tool bool
		seesModel  bool
		seesTool   bool
	}{
		{"m", true, false, true, false},
		{"t", false, true, false, true},
		{"e", true, true, true, true},
		{"x", false, true, false, true},
	} {
		pr := &Principal{Subject: "s", Team: c.team}
		if got := p.Authorize(pr, chat).Allowed; got != c.chat {
			t.Errorf("team %s chat: %v, want %v", c.team, got, c.chat)
		}
		d := p.Authorize(pr, tool)
		if d.Allowed != c.tool {
			t.Errorf("team %s tool: %v, want %v", c.team, d.Allowed, c.tool)
		}
		if !d.Allowed && d.Reason != ReasonEndpoint {
			t.Errorf("team %s tool refused for %s, want endpoint_not_allowed", c.team, d.Reason)
		}
		if got := p.Visible(pr, "gpt-4o"); got != c.seesModel {
			t.Errorf("team %s Visible(gpt-4o) = %v", c.team, got)
		}
		if got := p.VisibleTool(pr, "gh_issues"); got != c.seesTool {
			t.Errorf("team %s VisibleTool(gh_issues) = %v", c.team, got)
		}
	}
}
