package route

import (
	"math"
	"strconv"
	"testing"
	"time"
)

func TestLookupSpecificity(t *testing.T) {
	exact := &Route{Ref: "exact"}
	short := &Route{Ref: "short"}
	long := &Route{Ref: "long"}
	tab := NewTable(map[string]*Route{"gpt-4o": exact}, map[string]*Route{"gpt-*": short, "gpt-4o*": long})
	for model, want := range map[string]*Route{"gpt-4o": exact, "gpt-4o-mini": long, "gpt-3.5": short, "claude": nil} {
		if got := tab.Lookup(model); got != want {
			t.Errorf("%s: got %v want %v", model, got, want)
		}
	}
}

func TestPickWeights(t *testing.T) {
	tier := Tier{Refs: []Ref{{Weight: 80}, {Weight: 20}, {Weight: 0}}}
	counts := [3]int{}
	const n = 20000
	for range n {
		counts[tier.Pick(func(int) bool { return false })]++
	}
	if counts[2] != 0 {
		t.Fatalf("weight 0 picked %d times", counts[2])
	}
	// 80/20 within 5 standard deviations
	sd := math.Sqrt(n * 0.8 * 0.2)
	if d := math.Abs(float64(counts[0]) - 0.8*n); d > 5*sd {
		t.Fatalf("counts %v", counts)
	}
	if got := tier.Pick(func(i int) bool { return i == 0 }); got != 1 {
		t.Fatalf("skip: got %d", got)
	}
	if got := tier.Pick(func(i int) bool { return i < 2 }); got != -1 {
		t.Fatalf("all skipped: got %d", got)
	}
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"gpt-4o*", "gpt-4o", true},
		{"gpt-4o*", "gpt-4o-mini", true},
		{"gpt-4o*", "gpt-4", false},
		{"*", "meta-llama/Llama-3.1-8B", true},
		{"meta-llama/*", "meta-llama/Llama-3.1-8B", true},
		{"claude-*-haiku*", "claude-3-5-haiku-latest", true},
		{"claude-*-haiku*", "claude-3-5-sonnet", false},
		{"gpt-?", "gpt-5", true},
		{"gpt-?", "gpt-55", false},
		{"*a*b*c", "xxaxxbxxc", true},
		{"*a*b*c", "xxaxxbxxcx", false},
		{"", "", true},
		{"", "a", false},
	} {
		if got := Match(c.pattern, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.pattern, c.name, got)
		}
	}
}

func TestRetryBackoff(t *testing.T) {
	r := &Retry{Base: 100 * time.Millisecond, Max: time.Second}
	for n, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		var top time.Duration
		for range 2000 {
			d := r.Backoff(n)
			if d <= 0 || d > ceiling {
				t.Fatalf("retry %d: %v outside (0, %v]", n, d, ceiling)
			}
			top = max(top, d)
		}
		if top < ceiling*8/10 {
			t.Fatalf("retry %d: jitter never came near %v (top %v)", n, ceiling, top)
		}
	}
}

// BenchmarkRoutingDecision: a route lookup among exact names and globs, then a weighted
// pick in a tier of four.
func BenchmarkRoutingDecision(b *testing.B) {
	rt := &Route{Tiers: []Tier{{Refs: []Ref{{Weight: 40}, {Weight: 30}, {Weight: 20}, {Weight: 10}}}}}
	exact := map[string]*Route{}
	for i := range 200 {
		exact["model-"+strconv.Itoa(i)] = rt
	}
	tbl := NewTable(exact, map[string]*Route{"gpt-4o*": rt, "claude-*": rt, "meta-llama/*": rt})
	b.ReportAllocs()
	for b.Loop() {
		r := tbl.Lookup("claude-3-5-haiku")
		if r.Tiers[0].Pick(func(int) bool { return false }) < 0 {
			b.Fatal("no pick")
		}
	}
}
