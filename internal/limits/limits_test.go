package limits

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/ratelimit"
)

func testSet(tb testing.TB, rules ...*Rule) *Set {
	return &Set{Policies: []*Policy{{
		Ref:     "RateLimitPolicy/default/p",
		Rules:   rules,
		Store:   &ratelimit.Guard{Store: ratelimit.NewMemory(ratelimit.MemoryOptions{SweepInterval: -1}), Mode: ratelimit.FailOpen},
		Headers: true,
	}}}
}

func rule(tb testing.TB, name string, l ratelimit.Limit, key, cost, matcher string) *Rule {
	r, errs := NewRule("p/"+name, ratelimit.Rule{Name: name, Limit: l}, key, cost, matcher)
	for f, err := range errs {
		tb.Fatalf("%s: %v", f, err)
	}
	return r
}

func TestAdmitSettle(t *testing.T) {
	s := testSet(t,
		rule(t, "req", ratelimit.Limit{Unit: ratelimit.Requests, Volume: 2, Period: ratelimit.Minute}, "principal.subject", "", ""),
		rule(t, "gpt-only", ratelimit.Limit{Unit: ratelimit.Tokens, Volume: 1000, Period: ratelimit.Day}, "principal.team", "usage.input_tokens + 4 * usage.output_tokens", `request.model.startsWith("gpt")`),
	)
	ex := &exchange.Exchange{Model: "claude-3", Endpoint: exchange.EndpointChat, Principal: &exchange.Principal{Subject: "a", Team: "t"},
		Body: []byte(`{"model":"claude-3","messages":[{"role":"user","content":"hi"}]}`)}
	ctx := context.Background()
	for i := range 2 {
		a, e := s.Admit(ctx, ex, "r", http.Header{})
		if e != nil || a == nil {
			t.Fatalf("request %d: %v", i, e)
		}
		if len(a.items) != 1 {
			t.Fatalf("the matcher let a non-gpt request into the token rule: %d items", len(a.items))
		}
		h := http.Header{}
		a.SetHeaders(h)
		if h.Get("X-Ratelimit-Remaining-Requests") != []string{"1", "0"}[i] {
			t.Fatalf("headers %v", h)
		}
		a.Settle(ctx, ex)
	}
	if _, e := s.Admit(ctx, ex, "r", http.Header{}); e == nil || e.Status != 429 || e.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %v", e)
	}
	// Cost expression: 10 in + 5 out = 30.
	ex2 := &exchange.Exchange{Model: "gpt-4o", Endpoint: exchange.EndpointChat, Principal: &exchange.Principal{Subject: "b", Team: "t"}, MaxTokens: 5,
		Body: []byte(`{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`)}
	a, e := s.Admit(ctx, ex2, "r", http.Header{})
	if e != nil {
		t.Fatal(e)
	}
	ex2.Usage = exchange.Usage{InputTokens: 10, OutputTokens: 5, TotalTokens: 15, Reported: true}
	a.Settle(ctx, ex2)
	m := s.Policies[0].Store.Store.(*ratelimit.Memory)
	r := s.Policies[0].Rules[1]
	if cur, _ := m.Counters(r.Limit, r.ID+"\x00t", time.Now()); cur != 30 {
		t.Fatalf("settled %d, want 30", cur)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range [][3]string{{"1 + ", "", ""}, {"principal.team", "usage.input_tokens + ", ""}, {"42", "", ""}} {
		if _, errs := NewRule("x", ratelimit.Rule{Name: "x", Limit: ratelimit.Limit{Unit: ratelimit.Requests, Volume: 1, Period: ratelimit.Minute}}, c[0], c[1], c[2]); len(errs) == 0 {
			t.Errorf("%q compiled", c)
		}
	}
}

// BenchmarkAdmitSettle is the rate-limit stage for a request under two Requests rules
// keyed by principal (no tokenizer: token rules add the prompt count).
func BenchmarkAdmitSettle(b *testing.B) {
	s := testSet(b,
		rule(b, "per-key", ratelimit.Limit{Unit: ratelimit.Requests, Volume: 1 << 40, Period: ratelimit.Minute}, "principal.subject", "", ""),
		rule(b, "per-team", ratelimit.Limit{Unit: ratelimit.Requests, Volume: 1 << 40, Period: ratelimit.Day}, "principal.team", "", ""),
	)
	ex := &exchange.Exchange{Model: "gpt-4o-mini", Endpoint: exchange.EndpointChat, Principal: &exchange.Principal{Subject: "alice", Team: "research"}}
	ctx := context.Background()
	h := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		a, e := s.Admit(ctx, ex, "r", h)
		if e != nil {
			b.Fatal(e)
		}
		a.Settle(ctx, ex)
	}
}

func TestShadow(t *testing.T) {
	r := rule(t, "shadow", ratelimit.Limit{Unit: ratelimit.Requests, Volume: 1, Period: ratelimit.Hour}, `"all"`, "", "")
	r.Shadow = true
	s := testSet(t, r)
	ex := &exchange.Exchange{Model: "m", Endpoint: exchange.EndpointChat}
	for i := range 3 {
		a, e := s.Admit(context.Background(), ex, "r", http.Header{})
		if e != nil {
			t.Fatalf("shadow rule refused request %d", i)
		}
		if got := a.Shadowed(); (i == 0) != (got == nil) {
			t.Fatalf("request %d: shadowed %v", i, got)
		}
		a.Settle(context.Background(), ex)
	}
}

// TestMCPToolKey: a rule over MCP tool calls counts each team's calls per tool, and lets
// other MCP methods and model requests by.
func TestMCPToolKey(t *testing.T) {
	s := testSet(t, rule(t, "per-tool", ratelimit.Limit{Unit: ratelimit.Requests, Volume: 2, Period: ratelimit.Minute},
		`principal.team + "/" + mcp.tool`, "", `mcp.method == "tools/call"`))
	ctx := context.Background()
	pr := &exchange.Principal{Subject: "bob", Team: "interns"}
	mcpEx := func(method, tool string) *exchange.Exchange {
		return &exchange.Exchange{Endpoint: exchange.EndpointMCP, IngressEndpoint: exchange.EndpointMCP, Principal: pr,
			MCP: &exchange.MCPCall{Method: method, Tool: tool}}
	}
	admit := func(ex *exchange.Exchange) *apierr.Error {
		a, e := s.Admit(ctx, ex, "MCPRoute/default/tools", http.Header{})
		a.Settle(ctx, ex)
		return e
	}
	for i := range 2 {
		if e := admit(mcpEx("tools/call", "t_echo")); e != nil {
			t.Fatalf("echo %d: %v", i, e)
		}
	}
	if e := admit(mcpEx("tools/call", "t_echo")); e == nil || e.Status != 429 {
		t.Fatalf("third echo: %v", e)
	}
	if e := admit(mcpEx("tools/call", "t_sum")); e != nil {
		t.Fatalf("another tool shares the bucket: %v", e)
	}
	for range 3 {
		if e := admit(mcpEx("tools/list", "")); e != nil {
			t.Fatalf("tools/list counted: %v", e)
		}
		if e := admit(&exchange.Exchange{Endpoint: exchange.EndpointChat, IngressEndpoint: exchange.EndpointChat, Principal: pr, Model: "m"}); e != nil {
			t.Fatalf("a model request counted: %v", e)
		}
	}
	m := s.Policies[0].Store.Store.(*ratelimit.Memory)
	r := s.Policies[0].Rules[0]
	if cur, _ := m.Counters(r.Limit, r.ID+"\x00interns/t_sum", time.Now()); cur != 1 {
		t.Fatalf("interns/t_sum counted %d", cur)
	}
}

func TestFastKeyMCP(t *testing.T) {
	ex := &exchange.Exchange{MCP: &exchange.MCPCall{Method: "tools/call", Tool: "t_echo"}}
	if k := fastKey("mcp.tool"); k == nil || k(ex) != "t_echo" || k(&exchange.Exchange{}) != "" {
		t.Fatal("mcp.tool")
	}
	if k := fastKey(" mcp.method "); k == nil || k(ex) != "tools/call" || k(&exchange.Exchange{}) != "" {
		t.Fatal("mcp.method")
	}
}

// TestEstimateMCP: a tool call's arguments are its input tokens, whatever the model ("").
func TestEstimateMCP(t *testing.T) {
	small := &exchange.Exchange{Endpoint: exchange.EndpointMCP, Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"q":"hi"}}}`)}
	big := &exchange.Exchange{Endpoint: exchange.EndpointMCP, Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"q":"` + strings.Repeat("lorem ipsum dolor sit amet ", 40) + `","more":["a","b"]}}}`)}
	list := &exchange.Exchange{Endpoint: exchange.EndpointMCP, Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)}
	ns, nb, nl := estimateInput(small), estimateInput(big), estimateInput(list)
	if nl != 3 || ns <= nl || nb < 200 {
		t.Fatalf("estimates: list %d, small %d, big %d", nl, ns, nb)
	}
}
