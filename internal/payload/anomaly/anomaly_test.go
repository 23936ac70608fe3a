package anomaly

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake clock for Config.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *clock) start() time.Time        { return c.Now() }
func (c *clock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) windowStart(w time.Duration) {
	n := c.ns.Load()
	c.ns.Store((n/int64(w) + 1) * int64(w))
}

func kinds(as []Anomaly) []Kind {
	var ks []Kind
	for _, a := range as {
		ks = append(ks, a.Kind)
	}
	return ks
}

func has(as []Anomaly, k Kind) bool {
	for _, a := range as {
		if a.Kind == k {
			return true
		}
	}
	return false
}

// prompt returns a distinct, ordinary prompt.
func prompt(i int) []byte {
	topics := []string{"gardening", "tax law", "Go generics", "baking bread", "the Roman empire", "jazz chords", "sailing", "chess openings"}
	return []byte(fmt.Sprintf("Question %d: could you explain %s to me, with an example about %s and a note on %d?",
		i, topics[i%len(topics)], topics[(i*7+3)%len(topics)], i*i))
}

// steady sends n requests in each of the given number of windows, with
// Outcome reporting tokens and failures, spread over each window.
func steady(tr *Tracker, c *clock, who string, windows, n int, tokens int64, fails int) {
	for w := 0; w < windows; w++ {
		c.windowStart(time.Minute)
		for i := 0; i < n; i++ {
			tr.Request(who, prompt(w*1000+i), nil)
			tr.Outcome(who, tokens, i < fails, false)
			c.Advance(time.Minute / time.Duration(n+1))
		}
	}
	c.windowStart(time.Minute)
}

func TestRequestRateSpike(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now})
	steady(tr, c, "alice", 12, 10, 100, 0)
	var first int
	for i := 1; i <= 80; i++ {
		got := tr.Request("alice", prompt(5000+i), nil)
		if has(got, RequestRate) {
			first = i
			if !strings.Contains(got[0].Reason, "/min is ") || !strings.Contains(got[0].Reason, "baseline of 10/min") {
				t.Errorf("reason %q", got[0].Reason)
			}
			t.Logf("reason: %s", got[0].Reason)
			break
		}
	}
	// Baseline 10/min, factor 5: the 51st request in the window is the
	// first above 50.
	if first != 51 {
		t.Fatalf("request-rate first reported at request %d, want 51", first)
	}
}

func TestNoSpikeBeforeBaseline(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now})
	// A new principal bursting in its first (partial) window and the
	// window after: no baseline yet, so no rate anomaly.
	for i := 0; i < 200; i++ {
		if got := tr.Request("bob", prompt(i), nil); has(got, RequestRate) {
			t.Fatalf("request-rate reported before a baseline formed (request %d)", i)
		}
	}
	c.windowStart(time.Minute)
	for i := 0; i < 200; i++ {
		if got := tr.Request("bob", prompt(1000+i), nil); has(got, RequestRate) {
			t.Fatalf("request-rate reported in the first full window (request %d)", i)
		}
	}
	// The first full window had 200 requests: that is the baseline now,
	// and 200 more is not a spike.
	c.windowStart(time.Minute)
	for i := 0; i < 200; i++ {
		if got := tr.Request("bob", prompt(2000+i), nil); has(got, RequestRate) {
			t.Fatalf("request-rate reported at the baseline rate (request %d)", i)
		}
	}
}

func TestQuietWindowsDecayBaseline(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now})
	steady(tr, c, "carol", 12, 30, 0, 0)
	// An hour of silence: six half-lives, the baseline falls below 1/min,
	// and 25 requests (> MinRequests) is a spike again.
	c.Advance(time.Hour)
	c.windowStart(time.Minute)
	var got []Anomaly
	for i := 0; i < 25; i++ {
		got = tr.Request("carol", prompt(i), nil)
	}
	if !has(got, RequestRate) {
		t.Fatalf("no request-rate after the baseline decayed: %v", got)
	}
	// Without the hour of silence, 25 is well under the 30/min baseline.
	c2 := newClock()
	tr2 := New(Config{Now: c2.Now})
	steady(tr2, c2, "carol", 12, 30, 0, 0)
	for i := 0; i < 25; i++ {
		if got := tr2.Request("carol", prompt(i), nil); has(got, RequestRate) {
			t.Fatalf("request-rate under the baseline: %v", got)
		}
	}
}

func TestTokenSpike(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now})
	steady(tr, c, "dave", 12, 10, 500, 0) // 5000 tokens/min
	tr.Request("dave", prompt(1), nil)
	tr.Outcome("dave", 15000, false, false) // 15500: above 5×5000? no
	if got := tr.Request("dave", prompt(2), nil); has(got, TokenRate) {
		t.Fatalf("token-rate at 3× baseline: %v", got)
	}
	tr.Outcome("dave", 20000, false, false) // 35500 > 25000 and > 20000
	got := tr.Request("dave", prompt(3), nil)
	if !has(got, TokenRate) {
		t.Fatalf("no token-rate: %v", got)
	}
	t.Logf("reason: %s", got[0].Reason)
	if has(got, RequestRate) || has(got, FailureRate) {
		t.Fatalf("unexpected anomalies: %v", kinds(got))
	}
}

func TestTokenMinimum(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now})
	steady(tr, c, "erin", 12, 10, 10, 0) // 100 tokens/min
	tr.Request("erin", prompt(1), nil)
	tr.Outcome("erin", 5000, false, false) // 50× but under MinTokens
	if got := tr.Request("erin", prompt(2), nil); has(got, TokenRate) {
		t.Fatalf("token-rate under MinTokens: %v", got)
	}
}

func TestFailureSpike(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now})
	steady(tr, c, "frank", 12, 20, 100, 1) // 1 failure/min
	for i := 0; i < 11; i++ {
		tr.Request("frank", prompt(i), nil)
		tr.Outcome("frank", 100, i%2 == 0, i%2 == 1)
	}
	got := tr.Request("frank", prompt(99), nil)
	if !has(got, FailureRate) {
		t.Fatalf("no failure-rate: %v", got)
	}
	t.Logf("reason: %s", got[0].Reason)
}

func TestDuplicates(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now})
	base := "Please write a detailed product description for our new ergonomic office chair. " +
		"It has lumbar support, adjustable armrests, a breathable mesh back and a seat that slides forward for shorter people. " +
		"The frame is recycled aluminium, the casters are safe on wooden floors, and assembly takes about ten minutes with the included tool. " +
		"Aim it at remote workers who sit for long hours, keep the tone warm but factual, avoid superlatives, " +
		"and finish with a short paragraph about the five year warranty and free returns within thirty days."
	variants := []func(int) string{
		func(int) string { return base },
		func(int) string { return strings.ToUpper(base) },
		func(int) string { return "  " + strings.ReplaceAll(base, ",", " ,") + "!!" },
		func(i int) string { return base + " (attempt " + strconv.Itoa(i) + ")" },
	}
	// A brand-new principal: duplicates need no baseline.
	for i := 1; i <= 10; i++ {
		got := tr.Request("gina", []byte(variants[i%len(variants)](i)), nil)
		if i < 10 && has(got, DuplicatePrompts) {
			t.Fatalf("duplicate-prompts after %d prompts", i)
		}
		if i == 10 {
			if !has(got, DuplicatePrompts) {
				t.Fatalf("no duplicate-prompts after 10 near-identical prompts: %v", got)
			}
			t.Logf("reason: %s", got[0].Reason)
		}
	}
	// Distinct prompts are not duplicates.
	for i, p := range distinct {
		if got := tr.Request("hank", []byte(p), nil); has(got, DuplicatePrompts) {
			t.Fatalf("distinct prompts reported as duplicates at %d", i)
		}
	}
	// The ring is per window: a new window starts over.
	c.windowStart(time.Minute)
	if got := tr.Request("gina", []byte(base), nil); has(got, DuplicatePrompts) {
		t.Fatalf("duplicates carried over into a new window")
	}
}

func TestSimHash(t *testing.T) {
	a := simHash([]byte("The quick brown fox jumps over the lazy dog near the quiet river bank this morning."))
	b := simHash([]byte("the QUICK brown fox jumps over the lazy dog near the quiet river bank this morning!!"))
	if a != b {
		t.Errorf("case and punctuation changed the hash: %x %x", a, b)
	}
	long := strings.Join(distinct, " ") // about 190 words
	edited := strings.Replace(long, "sourdough", "rye", 1)
	if !near(simHash([]byte(long)), simHash([]byte(edited))) {
		t.Errorf("one word changed in a long prompt: not near (%d bits)", bitsDiff(long, edited))
	}
	withID := long + " [req 8812]"
	if !near(simHash([]byte(long)), simHash([]byte(withID))) {
		t.Errorf("a request id added to a long prompt: not near (%d bits)", bitsDiff(long, withID))
	}
	if near(simHash([]byte("How do I bake sourdough bread at home with a cast iron pot?")), simHash([]byte("What are the main causes of the French revolution in 1789?"))) {
		t.Errorf("unrelated prompts are near")
	}
	if simHash(nil) != 0 || simHash([]byte("  ,,, ")) != 0 {
		t.Errorf("no words should hash to 0")
	}
	if simHash([]byte("hi")) == 0 {
		t.Errorf("one word hashed to 0")
	}
	// Over maxHashed: only the ends count, and it does not panic.
	big := []byte(strings.Repeat("lorem ipsum dolor sit amet ", 4000))
	if simHash(big) == 0 {
		t.Errorf("big prompt hashed to 0")
	}
	// Distinct prompts about different things are far apart.
	var hs []uint64
	for _, p := range distinct {
		hs = append(hs, simHash([]byte(p)))
	}
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			if near(hs[i], hs[j]) {
				t.Errorf("distinct prompts %d and %d are near-identical", i, j)
			}
		}
	}
}

var distinct = []string{
	"How do I bake sourdough bread at home with a cast iron pot?",
	"What are the main causes of the French revolution in 1789?",
	"Write a haiku about autumn leaves falling on a quiet pond.",
	"Explain the difference between TCP and UDP for a beginner.",
	"Suggest a three day itinerary for Lisbon on a small budget.",
	"Summarise the plot of Moby Dick in five sentences.",
	"What is the derivative of x squared times the sine of x?",
	"Draft a polite email asking my landlord to fix the heating.",
	"Which houseplants are safe for cats and need little light?",
	"Translate 'where is the train station' into German and Italian.",
	"Give me a beginner strength training plan for three days a week.",
	"How does compound interest work, with a short numeric example?",
	"List five board games that work well for two players.",
	"Why is the sky blue during the day and red at sunset?",
	"Help me name a small bakery that specialises in rye bread.",
	"What should I check before buying a used electric bicycle?",
}

// TestSimHashPaths checks that the two ways of finishing a SimHash (the
// byte lanes for short prompts, the wide counters for long ones) agree.
func TestSimHashPaths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := 1; n < 127; n++ {
		var a simAcc
		for i := 0; i < n; i++ {
			a.word(r.Uint64())
		}
		b := a
		got := a.sum()
		b.flush()
		var want uint64
		for i, c := range b.counts {
			if int(c)*2 > b.total {
				want |= 1 << i
			}
		}
		if want == 0 {
			want = 1 << 63
		}
		if got != want {
			t.Fatalf("%d words: lanes give %x, counters %x", n, got, want)
		}
	}
}

func bitsDiff(a, b string) int {
	x := simHash([]byte(a)) ^ simHash([]byte(b))
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func TestThrottle(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now})
	if d := tr.Throttled("ivy"); d != 0 {
		t.Fatalf("unknown principal throttled for %v", d)
	}
	tr.Throttle("ivy", 30*time.Second)
	if d := tr.Throttled("ivy"); d != 30*time.Second {
		t.Fatalf("Throttled = %v, want 30s", d)
	}
	c.Advance(20 * time.Second)
	tr.Throttle("ivy", 5*time.Second) // shorter: the longer penalty stays
	if d := tr.Throttled("ivy"); d != 10*time.Second {
		t.Fatalf("Throttled = %v, want 10s", d)
	}
	c.Advance(10 * time.Second)
	if d := tr.Throttled("ivy"); d != 0 {
		t.Fatalf("Throttled = %v after expiry, want 0", d)
	}
	c.Advance(time.Hour)
	if d := tr.Throttled("ivy"); d != 0 {
		t.Fatalf("Throttled = %v long after expiry", d)
	}
}

func TestEviction(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now, MaxPrincipals: 640})
	for i := 0; i < 20000; i++ {
		tr.Request("user-"+strconv.Itoa(i), prompt(i), nil)
	}
	if n := tr.Len(); n > 640 {
		t.Fatalf("%d principals tracked, bound 640", n)
	}
	// The most recent one is still there, the first one is gone.
	tr.Throttle("user-19999", time.Minute)
	if tr.Throttled("user-19999") == 0 {
		t.Fatalf("recent principal lost")
	}
	if tr.Throttled("user-0") != 0 {
		t.Fatalf("oldest principal kept")
	}
	// Recently seen principals survive eviction of others in their shard.
	tr2 := New(Config{Now: c.Now, MaxPrincipals: 64 * 4})
	tr2.Throttle("keep", time.Hour)
	for i := 0; i < 5000; i++ {
		tr2.Request("x"+strconv.Itoa(i), nil, nil)
		if i%2 == 0 {
			tr2.Request("keep", nil, nil)
		}
	}
	if tr2.Throttled("keep") == 0 {
		t.Fatalf("a principal seen all along was evicted")
	}
}

func TestReasonFormat(t *testing.T) {
	tr := New(Config{})
	if got := tr.reason("request rate", 87, 9.6); got != "request rate 87/min is 9.1× this principal's baseline of 9.6/min" {
		t.Errorf("reason = %q", got)
	}
	if got := tr.reason("request rate", 25, 0); got != "request rate 25/min against this principal's baseline of 0/min" {
		t.Errorf("reason = %q", got)
	}
	tr2 := New(Config{Window: 30 * time.Second})
	if got := tr2.reason("token usage", 250000, 20000); got != "token usage 250000/30s is 12.5× this principal's baseline of 20000/30s" {
		t.Errorf("reason = %q", got)
	}
}

func TestConcurrent(t *testing.T) {
	c := newClock()
	tr := New(Config{Now: c.Now, MaxPrincipals: 1000})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var dst []Anomaly
			for i := 0; i < 3000; i++ {
				who := "p" + strconv.Itoa((g*31+i)%1500)
				if i%4 == 0 {
					who = "hot" // one busy principal shared by all
				}
				dst = tr.Request(who, prompt(i), dst[:0])
				tr.Outcome(who, int64(i%500), i%17 == 0, false)
				if i%100 == 0 {
					tr.Throttle(who, time.Second)
					tr.Throttled(who)
					c.Advance(time.Second)
				}
			}
		}(g)
	}
	wg.Wait()
	if n := tr.Len(); n > 1000 {
		t.Fatalf("%d principals, bound 1000", n)
	}
}

// BenchmarkRequest: many goroutines, 10,000 principals, ordinary prompts
// of about 100 bytes (varying, so that duplicates are rare).
func BenchmarkRequest(b *testing.B) {
	tr := New(Config{})
	const principals = 10000
	names := make([]string, principals)
	for i := range names {
		names[i] = "tenant-" + strconv.Itoa(i/10) + "/user-" + strconv.Itoa(i)
	}
	prompts := make([][]byte, 256)
	for i := range prompts {
		prompts[i] = prompt(i)
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seq.Add(1), 7))
		var dst []Anomaly
		for pb.Next() {
			dst = tr.Request(names[r.IntN(principals)], prompts[r.IntN(len(prompts))], dst[:0])
		}
	})
}
