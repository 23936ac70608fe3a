package limits

import (
	"context"
	"net/http"
	"testing"
	"time"

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
