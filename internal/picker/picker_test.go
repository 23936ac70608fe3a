package picker

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/outlier"
)

// clock is a fake clock for metrics freshness and ejection periods.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fakeVLLM serves a /metrics body the test controls.
type fakeVLLM struct {
	srv    *httptest.Server
	body   atomic.Pointer[string]
	status atomic.Int32
	hits   chan struct{}
}

func newFakeVLLM(t *testing.T, waiting, kv float64) *fakeVLLM {
	t.Helper()
	f := &fakeVLLM{hits: make(chan struct{}, 64)}
	f.set(waiting, kv)
	f.status.Store(http.StatusOK)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case f.hits <- struct{}{}:
		default:
		}
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.WriteHeader(int(f.status.Load()))
		fmt.Fprint(w, *f.body.Load())
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeVLLM) set(waiting, kv float64) {
	b := vllmBody(waiting, 1, kv)
	f.body.Store(&b)
}

func (f *fakeVLLM) addr() string { return f.srv.Listener.Addr().String() }

func addrs(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = fmt.Sprintf("10.0.0.%d:8000", i+1)
	}
	return a
}

func mustNew(t testing.TB, cfg Config) *Pool {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func spread(p *Pool) (lo, hi int) {
	lo = math.MaxInt
	for _, e := range p.Endpoints() {
		lo, hi = min(lo, e.InFlight()), max(hi, e.InFlight())
	}
	return lo, hi
}

func TestNewErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"duplicate":   {Addresses: []string{"a:1", "b:1", "a:1"}},
		"load factor": {Addresses: addrs(2), LoadFactor: 0.5},
		"kv":          {Addresses: addrs(2), KVCacheThreshold: 1.5},
		"queue":       {Addresses: addrs(2), QueueThreshold: -1},
		"strategy":    {Addresses: addrs(2), Strategy: 9},
		"no client":   {Addresses: addrs(2), Metrics: &MetricsConfig{}},
		"scheme":      {Addresses: addrs(2), Metrics: &MetricsConfig{Scheme: "ftp", Client: http.DefaultClient}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	p := mustNew(t, Config{Addresses: addrs(2)})
	if err := p.SetAddresses([]string{"x:1", "x:1"}); err == nil {
		t.Error("SetAddresses with duplicates: no error")
	}
	if len(p.Endpoints()) != 2 {
		t.Error("failed SetAddresses changed the membership")
	}
}

func TestLeastOutstanding(t *testing.T) {
	p := mustNew(t, Config{Strategy: LeastOutstanding, Addresses: addrs(4)})
	var held []*Endpoint
	for range 40 {
		e, pref := p.Pick(Request{})
		if e == nil || pref {
			t.Fatalf("Pick = %v, %v", e, pref)
		}
		held = append(held, e)
		if lo, hi := spread(p); hi-lo > 1 {
			t.Fatalf("in-flight spread %d..%d", lo, hi)
		}
	}
	// Release every request of one endpoint: it is now the least loaded.
	x := p.Endpoints()[2]
	for _, e := range held {
		if e == x {
			e.Done()
		}
	}
	if e, _ := p.Pick(Request{}); e != x {
		t.Errorf("after releasing %s, picked %s", x.Address(), e.Address())
	}

	// Ties are random: idle sequential picks visit every endpoint.
	q := mustNew(t, Config{Addresses: addrs(4)})
	seen := map[*Endpoint]int{}
	for range 400 {
		e, _ := q.Pick(Request{})
		seen[e]++
		e.Done()
	}
	for _, e := range q.Endpoints() {
		if seen[e] < 50 {
			t.Errorf("%s picked %d of 400 times", e.Address(), seen[e])
		}
	}
}

func TestLoadAware(t *testing.T) {
	clk := newClock()
	servers := []*fakeVLLM{newFakeVLLM(t, 10, 0.3), newFakeVLLM(t, 0, 0.95), newFakeVLLM(t, 0, 0.2)}
	var as []string
	for _, s := range servers {
		as = append(as, s.addr())
	}
	p := mustNew(t, Config{
		Strategy:  LoadAware,
		Addresses: as,
		Metrics:   &MetricsConfig{Interval: time.Second, StaleAfter: 5 * time.Second, Timeout: 2 * time.Second, Client: &http.Client{}},
		Now:       clk.Now,
	})
	p.ScrapeOnce(context.Background())
	eps := p.Endpoints()
	if m, fresh := eps[1].Metrics(); !fresh || m.KVCache != 0.95 || m.Waiting != 0 || m.Running != 1 {
		t.Fatalf("endpoint 1 metrics %+v fresh=%v", m, fresh)
	}
	count := func(n int) map[*Endpoint]int {
		c := map[*Endpoint]int{}
		for range n {
			e, _ := p.Pick(Request{})
			c[e]++
			e.Done()
		}
		return c
	}
	// 0 waits behind 10 queued, 1 is saturated (kv 0.95 >= 0.9): all go to 2.
	if c := count(1000); c[eps[2]] < 990 {
		t.Errorf("fresh metrics: %d of 1000 to the idle endpoint (%v)", c[eps[2]], c)
	}
	// With 2 saturated too, 0 is the only unsaturated one: it takes everything despite
	// its queue.
	servers[2].set(0, 0.97)
	p.ScrapeOnce(context.Background())
	if c := count(100); c[eps[0]] != 100 {
		t.Errorf("all but 0 saturated: got %v", c)
	}
	// All saturated: the filter never empties the set; scores decide (0 has 10 waiting).
	servers[0].set(10, 0.99)
	p.ScrapeOnce(context.Background())
	if c := count(100); c[eps[0]] != 0 || c[eps[1]]+c[eps[2]] != 100 {
		t.Errorf("all saturated: got %v", c)
	}

	// Stale metrics are unknown: the spread is even again.
	clk.Advance(6 * time.Second)
	if _, fresh := eps[0].Metrics(); fresh {
		t.Fatal("metrics still fresh after StaleAfter")
	}
	const n = 3000
	c := count(n)
	for _, e := range eps {
		if got := float64(c[e]); math.Abs(got-n/3) > 0.15*n/3 {
			t.Errorf("stale metrics: %s got %v of %d", e.Address(), got, n)
		}
	}
}

func TestScrapeFailureKeepsMetrics(t *testing.T) {
	clk := newClock()
	a, b := newFakeVLLM(t, 4, 0.5), newFakeVLLM(t, 2, 0.1)
	p := mustNew(t, Config{
		Strategy:  LoadAware,
		Addresses: []string{a.addr(), b.addr(), "127.0.0.1:1"}, // the last refuses connections
		Metrics:   &MetricsConfig{StaleAfter: 10 * time.Second, Timeout: 2 * time.Second, Client: &http.Client{}},
		Now:       clk.Now,
	})
	p.ScrapeOnce(context.Background())
	ea, eb, ec := p.Lookup(a.addr()), p.Lookup(b.addr()), p.Lookup("127.0.0.1:1")
	if _, fresh := ec.Metrics(); fresh {
		t.Error("unreachable endpoint has fresh metrics")
	}
	first, _ := ea.Metrics()

	clk.Advance(4 * time.Second)
	a.status.Store(http.StatusInternalServerError)
	a.set(99, 0.99)
	b.srv.Close()
	p.ScrapeOnce(context.Background())
	for _, e := range []*Endpoint{ea, eb} {
		if m, fresh := e.Metrics(); !fresh || !m.At.Equal(first.At) {
			t.Errorf("%s after a failed scrape: %+v fresh=%v, want the old metrics", e.Address(), m, fresh)
		}
	}
	if m, _ := ea.Metrics(); m.Waiting != 4 {
		t.Errorf("500 response replaced metrics: %+v", m)
	}
	clk.Advance(7 * time.Second)
	if _, fresh := ea.Metrics(); fresh {
		t.Error("old metrics did not go stale")
	}
	// Recovery: a good scrape refreshes.
	a.status.Store(http.StatusOK)
	p.ScrapeOnce(context.Background())
	if m, fresh := ea.Metrics(); !fresh || m.Waiting != 99 {
		t.Errorf("after recovery: %+v fresh=%v", m, fresh)
	}
}

func TestScrapeBounds(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := "# " + strings.Repeat("x", 1000) + "\n"
		for range 2 * maxBody / len(line) {
			fmt.Fprint(w, line)
		}
		fmt.Fprint(w, "vllm:num_requests_waiting 5\n")
	}))
	defer big.Close()
	defer slow.Close()
	defer close(release)
	as := []string{slow.Listener.Addr().String(), big.Listener.Addr().String()}
	p := mustNew(t, Config{Addresses: as, Metrics: &MetricsConfig{Timeout: 100 * time.Millisecond, Client: &http.Client{}}})
	start := time.Now()
	p.ScrapeOnce(context.Background())
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("ScrapeOnce took %v with a 100ms timeout", d)
	}
	for _, e := range p.Endpoints() {
		if _, fresh := e.Metrics(); fresh {
			t.Errorf("%s: metrics from a timed-out or oversized scrape", e.Address())
		}
	}
}

func TestStartStop(t *testing.T) {
	f := newFakeVLLM(t, 1, 0.1)
	g := newFakeVLLM(t, 1, 0.1)
	p := mustNew(t, Config{Addresses: []string{f.addr(), g.addr()},
		Metrics: &MetricsConfig{Interval: time.Hour, Client: &http.Client{}}})
	p.Stop() // before Start: no-op
	p.Start()
	p.Start()
	done := p.done
	for _, s := range []*fakeVLLM{f, g} { // the loop scrapes at once
		select {
		case <-s.hits:
		case <-time.After(5 * time.Second):
			t.Fatal("scrape loop did not scrape")
		}
	}
	p.Stop()
	select {
	case <-done:
	default:
		t.Fatal("Stop returned before the loop ended")
	}
	p.Start() // only once
	if p.done != done {
		t.Error("Start after Stop started a second loop")
	}
	p.Stop()

	q := mustNew(t, Config{Addresses: addrs(2)}) // no metrics: no loop
	q.Start()
	q.Stop()
	q.ScrapeOnce(context.Background())
	if q.done != nil {
		t.Error("loop started without Metrics")
	}
}

func prefixHashes(n int) []uint64 {
	h := make([]uint64, n)
	for i := range h {
		h[i] = PrefixHash(PrefixSeed, fmt.Appendf(nil, "You are assistant #%d. Answer briefly.", i))
	}
	return h
}

// bound is the bounded-load limit over all endpoints of an unconstrained pool.
func bound(p *Pool, c float64) int {
	total := 0
	eps := p.Endpoints()
	for _, e := range eps {
		total += e.InFlight()
	}
	return int(math.Ceil(c * float64(total+1) / float64(len(eps))))
}

// TestPrefixAffinity replays 60 prefixes in random order with a fixed number of
// requests in flight (a random one ends when full). The bound trades affinity for
// balance: at c=1.25 and 16 in flight it is 5 against a mean of 4 per endpoint, so a
// quarter of requests must spill; with more concurrency or a larger c, affinity holds.
func TestPrefixAffinity(t *testing.T) {
	for _, c := range []struct {
		factor   float64
		inFlight int
		share    float64 // minimum share on each prefix's most-used endpoint
	}{
		{1.25, 64, 0.90},
		{2, 16, 0.90},
		{1.25, 16, 0.70},
	} {
		t.Run(fmt.Sprintf("c=%v/inflight=%d", c.factor, c.inFlight), func(t *testing.T) {
			p := mustNew(t, Config{Strategy: PrefixAffinity, Addresses: addrs(4), LoadFactor: c.factor})
			hashes := prefixHashes(60)
			rng := rand.New(rand.NewPCG(1, 2))
			hits := make([]map[*Endpoint]int, len(hashes))
			for i := range hits {
				hits[i] = map[*Endpoint]int{}
			}
			var open []*Endpoint
			const requests = 20000
			for range requests {
				if len(open) == c.inFlight {
					j := rng.IntN(len(open))
					open[j].Done()
					open = slices.Delete(open, j, j+1)
				}
				k := rng.IntN(len(hashes))
				b := bound(p, c.factor)
				e, _ := p.Pick(Request{PrefixHash: hashes[k], HasPrefix: true})
				if before := e.InFlight() - 1; before >= b {
					t.Fatalf("picked %s with %d in flight, bound %d", e.Address(), before, b)
				}
				hits[k][e]++
				open = append(open, e)
			}
			home := 0
			for _, h := range hits {
				best := 0
				for _, n := range h {
					best = max(best, n)
				}
				home += best
			}
			share := float64(home) / requests
			t.Logf("share on each prefix's most-used endpoint: %.3f", share)
			if share < c.share {
				t.Errorf("affinity share %.3f < %v", share, c.share)
			}
		})
	}

	// Without a prefix it balances like LoadAware.
	p := mustNew(t, Config{Strategy: PrefixAffinity, Addresses: addrs(4)})
	for range 8 {
		p.Pick(Request{})
	}
	if lo, hi := spread(p); lo != 2 || hi != 2 {
		t.Errorf("prefix-less picks spread %d..%d, want 2..2", lo, hi)
	}
}

func TestPrefixAffinityHotPrefix(t *testing.T) {
	p := mustNew(t, Config{Strategy: PrefixAffinity, Addresses: addrs(4)})
	h := prefixHashes(1)[0]
	used := map[*Endpoint]bool{}
	for range 40 {
		b := bound(p, 1.25)
		e, _ := p.Pick(Request{PrefixHash: h, HasPrefix: true})
		if before := e.InFlight() - 1; before >= b {
			t.Fatalf("picked %s with %d in flight, bound %d", e.Address(), before, b)
		}
		used[e] = true
	}
	_, hi := spread(p)
	if limit := int(math.Ceil(1.25 * 40 / 4)); hi > limit {
		t.Errorf("an endpoint holds %d of 40, limit %d", hi, limit)
	}
	if len(used) < 2 {
		t.Error("a hot prefix never spilled over")
	}
}

func TestPrefixAffinityDeterministic(t *testing.T) {
	as := addrs(5)
	as = append(as, "[2001:db8::1]:8000")
	rev := slices.Clone(as)
	slices.Reverse(rev)
	p := mustNew(t, Config{Strategy: PrefixAffinity, Addresses: as})
	q := mustNew(t, Config{Strategy: PrefixAffinity, Addresses: rev})
	hits := map[string]int{}
	for i, h := range prefixHashes(1000) {
		a, _ := p.Pick(Request{PrefixHash: h, HasPrefix: true})
		b, _ := q.Pick(Request{PrefixHash: h, HasPrefix: true})
		if a.Address() != b.Address() {
			t.Fatalf("prefix %d: %s vs %s", i, a.Address(), b.Address())
		}
		hits[a.Address()]++
		a.Done()
		b.Done()
	}
	for _, a := range as { // 100 vnodes each: shares near 1/6
		if hits[a] < 100 || hits[a] > 250 {
			t.Errorf("%s owns %d of 1000 prefixes", a, hits[a])
		}
	}
	// Golden: ring positions and PrefixHash must not change between releases, or
	// replicas running different versions would disagree.
	var got []string
	for i := range 8 {
		e, _ := p.Pick(Request{PrefixHash: PrefixHash(PrefixSeed, fmt.Appendf(nil, "golden %d", i)), HasPrefix: true})
		got = append(got, e.Address())
		e.Done()
	}
	if want := goldenAddrs; !slices.Equal(got, want) {
		t.Errorf("golden prefixes map to\n%q, want\n%q", got, want)
	}
}

var goldenAddrs = []string{"10.0.0.2:8000", "10.0.0.3:8000", "[2001:db8::1]:8000", "10.0.0.4:8000",
	"10.0.0.5:8000", "10.0.0.2:8000", "[2001:db8::1]:8000", "10.0.0.2:8000"}

func TestPrefixHash(t *testing.T) {
	f := fnv.New64a()
	f.Write([]byte("hello, world"))
	if got := PrefixHash(PrefixHash(PrefixSeed, []byte("hello, ")), []byte("world")); got != f.Sum64() {
		t.Errorf("PrefixHash = %x, FNV-1a = %x", got, f.Sum64())
	}
}

func TestPrefixAffinitySaturated(t *testing.T) {
	clk := newClock()
	var servers []*fakeVLLM
	var as []string
	for range 3 {
		s := newFakeVLLM(t, 0, 0.1)
		servers = append(servers, s)
		as = append(as, s.addr())
	}
	p := mustNew(t, Config{Strategy: PrefixAffinity, Addresses: as, QueueThreshold: 5, Now: clk.Now,
		Metrics: &MetricsConfig{Client: &http.Client{}}})
	h := prefixHashes(1)[0]
	home, _ := p.Pick(Request{PrefixHash: h, HasPrefix: true})
	home.Done()
	servers[slices.Index(as, home.Address())].set(5, 0.1) // queue at the threshold
	p.ScrapeOnce(context.Background())
	for range 20 {
		e, _ := p.Pick(Request{PrefixHash: h, HasPrefix: true})
		if e == home {
			t.Fatal("saturated home endpoint picked")
		}
		e.Done()
	}
}

func TestPreferred(t *testing.T) {
	clk := newClock()
	as := addrs(3)
	p := mustNew(t, Config{Addresses: as, Outlier: &outlier.Config{ConsecutiveFailures: 1}, Now: clk.Now})
	for _, c := range []struct {
		header    string
		want      string // "" : any, not preferred
		preferred bool
	}{
		{as[1], as[1], true},
		{" " + as[2] + " ", as[2], true},
		{"10.9.9.9:1," + as[0], as[0], true},
		{"10.9.9.9:1", "", false},
		{",,", "", false},
	} {
		e, pref := p.Pick(Request{Preferred: c.header})
		if e == nil || pref != c.preferred || c.want != "" && e.Address() != c.want {
			t.Errorf("Preferred %q: got %v, %v", c.header, e, pref)
		}
		e.Done()
	}
	// An ejected member is skipped, so is an excluded one.
	p.Lookup(as[1]).Health().Failure()
	if e, pref := p.Pick(Request{Preferred: as[1] + "," + as[2]}); e.Address() != as[2] || !pref {
		t.Errorf("ejected preferred: got %s, %v", e.Address(), pref)
	}
	if e, pref := p.Pick(Request{Preferred: as[2], Exclude: []*Endpoint{p.Lookup(as[2])}}); e.Address() != as[0] || pref {
		t.Errorf("excluded preferred: got %s, %v", e.Address(), pref)
	}
}

func TestEjection(t *testing.T) {
	clk := newClock()
	as := addrs(3)
	p := mustNew(t, Config{Addresses: as, Outlier: &outlier.Config{ConsecutiveFailures: 3, BaseEjection: 10 * time.Second}, Now: clk.Now})
	bad := p.Lookup(as[0])
	for range 3 {
		bad.Health().Failure()
	}
	if !bad.Health().Ejected() || p.Ejected() {
		t.Fatalf("endpoint ejected=%v, pool ejected=%v", bad.Health().Ejected(), p.Ejected())
	}
	for range 100 {
		e, _ := p.Pick(Request{})
		if e == bad {
			t.Fatal("picked an ejected endpoint")
		}
		e.Done()
	}

	// After the ejection period one probe is admitted, and only one.
	clk.Advance(11 * time.Second)
	probe, pref := p.Pick(Request{Preferred: as[0]})
	if probe != bad || !pref {
		t.Fatalf("half-open probe: got %v, %v", probe, pref)
	}
	for range 100 {
		e, _ := p.Pick(Request{Preferred: as[0]})
		if e == bad {
			t.Fatal("second request to a half-open endpoint while its probe is in flight")
		}
		e.Done()
	}
	probe.Done()
	bad.Health().Success()
	seen := false
	for range 100 {
		e, _ := p.Pick(Request{})
		seen = seen || e == bad
		e.Done()
	}
	if !seen {
		t.Error("restored endpoint never picked")
	}

	// Panic mode: all ejected, picks go on; the pool reports itself ejected.
	for _, e := range p.Endpoints() {
		for range 3 {
			e.Health().Failure()
		}
	}
	if !p.Ejected() {
		t.Fatal("Pool.Ejected false with every endpoint ejected")
	}
	for range 10 {
		e, _ := p.Pick(Request{})
		if e == nil {
			t.Fatal("no pick in panic mode")
		}
		e.Done()
	}
	// Panic mode is about the non-excluded endpoints.
	if e, _ := p.Pick(Request{Exclude: p.Endpoints()[:2]}); e != p.Endpoints()[2] {
		t.Errorf("panic mode with exclusions picked %v", e)
	}
}

func TestExclude(t *testing.T) {
	for _, s := range []Strategy{LeastOutstanding, LoadAware, PrefixAffinity} {
		p := mustNew(t, Config{Strategy: s, Addresses: addrs(3)})
		eps := p.Endpoints()
		for i, h := range prefixHashes(50) {
			e, _ := p.Pick(Request{PrefixHash: h, HasPrefix: i%2 == 0, Exclude: eps[:2]})
			if e != eps[2] {
				t.Fatalf("%v: excluded endpoints picked: %s", s, e.Address())
			}
			e.Done()
		}
		if e, _ := p.Pick(Request{Exclude: eps, Preferred: eps[0].Address()}); e != nil {
			t.Errorf("%v: all excluded, picked %s", s, e.Address())
		}
	}
	empty := mustNew(t, Config{})
	if e, _ := empty.Pick(Request{}); e != nil || empty.Ejected() {
		t.Error("empty pool picked or is ejected")
	}
}

func TestSetAddresses(t *testing.T) {
	p := mustNew(t, Config{Addresses: []string{"a:1", "b:1", "c:1"}, Outlier: &outlier.Config{}})
	a, b := p.Lookup("a:1"), p.Lookup("b:1")
	for range 3 {
		a.inflight.Add(1)
	}
	b.inflight.Add(2)
	if err := p.SetAddresses([]string{"d:1", "b:1", "c:1"}); err != nil {
		t.Fatal(err)
	}
	if p.Lookup("a:1") != nil {
		t.Error("removed endpoint still a member")
	}
	if got := p.Lookup("b:1"); got != b || got.InFlight() != 2 || got.Health() == nil || got.Health() != b.Health() {
		t.Error("kept endpoint lost its state")
	}
	if d := p.Lookup("d:1"); d == nil || d.InFlight() != 0 || d.Health() == nil {
		t.Error("new endpoint missing or not fresh")
	}
	if got := p.Endpoints(); got[0].Address() != "d:1" || len(got) != 3 {
		t.Errorf("Endpoints() = %v", got)
	}
	for range 10 {
		e, _ := p.Pick(Request{})
		if e == a {
			t.Fatal("picked a removed endpoint")
		}
	}
	a.Done() // requests in flight on removed endpoints still finish
}

func TestConcurrent(t *testing.T) {
	f := newFakeVLLM(t, 1, 0.5)
	g := newFakeVLLM(t, 0, 0.95)
	sets := [][]string{
		{f.addr(), g.addr(), "127.0.0.1:1"},
		{g.addr(), "127.0.0.1:1"},
		{f.addr(), g.addr()},
	}
	for _, s := range []Strategy{LeastOutstanding, LoadAware, PrefixAffinity} {
		p := mustNew(t, Config{Strategy: s, Addresses: sets[0], Outlier: &outlier.Config{},
			Metrics: &MetricsConfig{Timeout: time.Second, Client: &http.Client{}}})
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := p.SetAddresses(sets[i%len(sets)]); err != nil {
					t.Error(err)
				}
				p.ScrapeOnce(context.Background())
				p.Ejected()
			}
		})
		var workers sync.WaitGroup
		for w := range 8 {
			workers.Go(func() {
				for i := range 500 {
					e, _ := p.Pick(Request{PrefixHash: uint64(i * w), HasPrefix: true, Preferred: f.addr()})
					if e == nil {
						t.Error("nil pick")
						return
					}
					e.Metrics()
					if i%7 == 0 {
						e.Health().Failure()
					} else {
						e.Health().Success()
					}
					e.Done()
				}
			})
		}
		workers.Wait()
		close(stop)
		wg.Wait()
		for _, e := range p.Endpoints() {
			if e.InFlight() != 0 {
				t.Errorf("%v: %s has %d in flight after all Done", s, e.Address(), e.InFlight())
			}
		}
	}
}
