package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func testPolicy(tb testing.TB, n int) *Policy {
	keys := make([]Key, 0, n)
	for i := range n {
		keys = append(keys, Key{Ref: fmt.Sprintf("APIKey/default/k%d", i), Hash: sha256.Sum256(fmt.Appendf(nil, "sk-sluice-key-%d", i)), Subject: fmt.Sprintf("user%d", i), Team: "team" + fmt.Sprint(i%10), Roles: []string{"developer"}})
	}
	keys = append(keys, Key{Ref: "APIKey/default/old", Hash: sha256.Sum256([]byte("sk-old")), Subject: "old", ExpiresAt: time.Now().Add(-time.Minute)})
	cond, err := CompileCondition(`request.max_tokens <= 4096`)
	if err != nil {
		tb.Fatal(err)
	}
	return NewPolicy(Options{
		APIKeys: true,
		Keys:    keys,
		Rules: []*Rule{
			{Name: "eu", Teams: map[string]bool{"eu": true}, Models: []string{"gpt-4o*"}, Regions: map[string]bool{"eu": true}},
			{Name: "embed", Roles: map[string]bool{"embedder": true}, Models: []string{"text-embedding-*"}, Endpoints: map[string]bool{"embeddings": true}},
			{Name: "dev-cel", Roles: map[string]bool{"cel": true}, Models: []string{"*"}, When: cond},
			{Name: "dev", Roles: map[string]bool{"developer": true}, Models: []string{"gpt-4o-mini", "claude-*-haiku*"}, Endpoints: map[string]bool{"chat": true, "messages": true}},
		},
	})
}

func TestAuthenticateAndAuthorize(t *testing.T) {
	p := testPolicy(t, 10)
	ctx := context.Background()
	h := http.Header{"Authorization": {"Bearer sk-sluice-key-3"}}
	pr, e, _ := p.Authenticate(ctx, h)
	if e != nil || pr.Subject != "user3" || pr.Team != "team3" {
		t.Fatalf("%v %v", pr, e)
	}
	if _, e, why := p.Authenticate(ctx, http.Header{"X-Api-Key": {"sk-old"}}); e == nil || why != FailExpired {
		t.Fatalf("expired: %v %v", e, why)
	}
	if _, e, why := p.Authenticate(ctx, http.Header{}); e == nil || why != FailMissing || e.Status != 401 {
		t.Fatalf("missing: %v", e)
	}
	for _, c := range []struct {
		model, endpoint string
		allowed         bool
		reason          Reason
	}{
		{"gpt-4o-mini", "chat", true, ReasonNone},
		{"claude-3-5-haiku-latest", "messages", true, ReasonNone},
		{"gpt-4o", "chat", false, ReasonModel},
		{"gpt-4o-mini", "embeddings", false, ReasonEndpoint},
	} {
		d := p.Authorize(pr, &Request{Model: c.model, Endpoint: c.endpoint})
		if d.Allowed != c.allowed || d.Reason != c.reason {
			t.Errorf("%s %s: %+v", c.model, c.endpoint, d)
		}
	}
	outsider := &Principal{Subject: "x", Roles: []string{"guest"}}
	if d := p.Authorize(outsider, &Request{Model: "gpt-4o-mini", Endpoint: "chat"}); d.Allowed || d.Reason != ReasonNoRule {
		t.Errorf("outsider: %+v", d)
	}
	cel := &Principal{Subject: "c", Roles: []string{"cel"}}
	if !p.Authorize(cel, &Request{Model: "m", Endpoint: "chat", MaxTokens: 100}).Allowed || p.Authorize(cel, &Request{Model: "m", Endpoint: "chat", MaxTokens: 9000}).Rule == "dev-cel" {
		t.Error("CEL condition not applied")
	}
	if !p.Visible(pr, "gpt-4o-mini") || p.Visible(pr, "gpt-4o") || !p.Visible(cel, "anything") {
		t.Error("Visible")
	}
	if got := p.Denials(); got["model_not_allowed"] != 1 || got["endpoint_not_allowed"] != 1 {
		t.Errorf("denial counters %v", got)
	}
}

func TestCompileConditionErrors(t *testing.T) {
	for _, expr := range []string{`request.max_tokens <=`, `request.model + 1`, `"a string"`, `nosuchvar == 1`} {
		if _, err := CompileCondition(expr); err == nil {
			t.Errorf("%q compiled", expr)
		}
	}
	c, err := CompileCondition(`principal.claims[?"tier"].orValue("") == "gold" && request.headers["x-a"] == "1"`)
	if err != nil {
		t.Fatal(err)
	}
	p := &Principal{Claims: map[string]any{"tier": "gold"}}
	if !c.Eval(p, &Request{Header: http.Header{"X-A": {"1"}}}) || c.Eval(p, &Request{Header: http.Header{}}) {
		t.Fatal("eval")
	}
}

// BenchmarkAPIKey is authentication plus authorization of an API-key request against a
// policy of 10,000 keys and four rules.
func BenchmarkAPIKey(b *testing.B) {
	p := testPolicy(b, 10000)
	ctx := context.Background()
	h := http.Header{"Authorization": {"Bearer sk-sluice-key-4242"}}
	req := &Request{Model: "gpt-4o-mini", Endpoint: "chat", MaxTokens: 256, Header: h}
	b.ReportAllocs()
	for b.Loop() {
		pr, e, _ := p.Authenticate(ctx, h)
		if e != nil {
			b.Fatal(e)
		}
		if d := p.Authorize(pr, req); !d.Allowed {
			b.Fatal(d)
		}
	}
}
