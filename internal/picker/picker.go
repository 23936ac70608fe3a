// Package picker chooses one endpoint of a self-hosted model pool (vLLM-style servers,
// all serving the same model) for each request. Three strategies: least outstanding
// requests from this gateway; load-aware, from scraped vLLM metrics (queue depth and
// KV-cache use) plus in-flight counts; and prefix affinity, which sends the same prompt
// prefix to the same endpoint (so its KV cache is reused) by consistent hashing with
// bounded loads. Endpoints may also be named per request by an external endpoint picker
// (Gateway API Inference Extension), and are ejected by an outlier detector.
//
// Pick takes no pool lock and does not allocate: membership lives in an immutable state
// swapped atomically by SetAddresses (outlier detectors still lock their own mutex).
package picker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gateway/sluice/internal/outlier"
)

// Strategy is how Pick chooses among candidates.
type Strategy uint8

const (
	LeastOutstanding Strategy = iota // fewest requests in flight from this gateway
	LoadAware                        // fresh vLLM metrics: queue depth and KV-cache use, plus in-flight
	PrefixAffinity                   // same prompt prefix → same endpoint (consistent hashing, bounded load)
)

func (s Strategy) String() string {
	switch s {
	case LeastOutstanding:
		return "LeastOutstanding"
	case LoadAware:
		return "LoadAware"
	case PrefixAffinity:
		return "PrefixAffinity"
	}
	return fmt.Sprintf("Strategy(%d)", uint8(s))
}

// Config configures a Pool.
type Config struct {
	Strategy  Strategy
	Addresses []string       // "host:port" ("[v6]:port"); validated by the caller; duplicates are an error
	Metrics   *MetricsConfig // nil: no scraping (metrics never fresh)
	// KVCacheThreshold (0..1, default 0.9) and QueueThreshold (waiting requests, default
	// 0 = off): an endpoint with fresh metrics at or above either is "saturated";
	// LoadAware and PrefixAffinity avoid saturated endpoints while any unsaturated
	// candidate remains.
	KVCacheThreshold float64
	QueueThreshold   int
	// LoadFactor is the bounded-load factor c (default 1.25, must be >= 1): no endpoint
	// takes a new request while its in-flight count is >= ceil(c * (total in-flight over
	// candidates + 1) / candidates).
	LoadFactor float64
	Outlier    *outlier.Config  // per-endpoint ejection; nil: none. A nil Outlier.Now takes Now.
	Now        func() time.Time // default time.Now; metrics freshness
}

// MetricsConfig configures scraping of the endpoints' Prometheus metrics.
type MetricsConfig struct {
	Scheme     string        // "http" (default) or "https"
	Path       string        // default "/metrics"
	Interval   time.Duration // between scrapes; default 1s
	StaleAfter time.Duration // metrics older than this are ignored; default 3 × Interval
	Timeout    time.Duration // per scrape; default Interval
	Client     *http.Client  // required: carries the Backend's TLS and transport
}

// Pool is one Backend's endpoints and the strategy choosing among them. Safe for
// concurrent use.
type Pool struct {
	strategy   Strategy
	metrics    *MetricsConfig // defaults filled; nil: no scraping
	kvMax      float64
	queueMax   float64 // 0: off
	loadFactor float64
	outlier    *outlier.Config
	now        func() time.Time

	state atomic.Pointer[state]
	setMu sync.Mutex // serialises SetAddresses

	loopMu  sync.Mutex
	started bool
	stop    context.CancelFunc
	done    chan struct{} // closed when the scrape loop has ended
}

// state is an immutable membership snapshot.
type state struct {
	eps    []*Endpoint
	byAddr map[string]int // index into eps
	ring   []vnode        // sorted by hash, then address
}

// vnode is one point of an endpoint on the hash ring.
type vnode struct {
	hash uint64
	ep   uint32 // index into state.eps
}

// vnodesPerEndpoint spreads each endpoint over the ring; 100 keeps the share of
// prefixes per endpoint within about ±10%.
const vnodesPerEndpoint = 100

// Endpoint is one server of the pool.
type Endpoint struct {
	addr     string
	pool     *Pool
	inflight atomic.Int64
	health   *outlier.Detector
	metrics  atomic.Pointer[Metrics]
}

// Address returns the endpoint's "host:port".
func (e *Endpoint) Address() string { return e.addr }

// Done ends a request Pick counted.
func (e *Endpoint) Done() { e.inflight.Add(-1) }

// InFlight returns the requests this gateway has in flight on the endpoint.
func (e *Endpoint) InFlight() int { return int(e.inflight.Load()) }

// Health returns the endpoint's outlier detector (nil without Config.Outlier); the
// caller records Success, Failure or Release.
func (e *Endpoint) Health() *outlier.Detector { return e.health }

// Metrics returns the last scraped metrics and whether they are fresh.
func (e *Endpoint) Metrics() (m Metrics, fresh bool) {
	if p := e.metrics.Load(); p != nil {
		return *p, e.pool.fresh(p, e.pool.now())
	}
	return Metrics{}, false
}

// fresh reports whether m was scraped no longer than StaleAfter before now.
func (p *Pool) fresh(m *Metrics, now time.Time) bool {
	return p.metrics != nil && m != nil && now.Sub(m.At) <= p.metrics.StaleAfter
}

// load returns e's fresh waiting count and KV-cache use, zeros when unknown.
func (p *Pool) load(e *Endpoint, now time.Time) (waiting, kv float64, known bool) {
	if m := e.metrics.Load(); p.fresh(m, now) {
		return m.Waiting, m.KVCache, true
	}
	return 0, 0, false
}

// saturated reports whether e's fresh metrics reach a threshold; unknown is not.
func (p *Pool) saturated(e *Endpoint, now time.Time) bool {
	w, kv, ok := p.load(e, now)
	return ok && (kv >= p.kvMax || p.queueMax > 0 && w >= p.queueMax)
}

// New returns a Pool of cfg.Addresses.
func New(cfg Config) (*Pool, error) {
	p := &Pool{
		strategy:   cfg.Strategy,
		kvMax:      cfg.KVCacheThreshold,
		queueMax:   float64(cfg.QueueThreshold),
		loadFactor: cfg.LoadFactor,
		now:        cfg.Now,
	}
	if cfg.Strategy > PrefixAffinity {
		return nil, fmt.Errorf("picker: unknown strategy %d", cfg.Strategy)
	}
	if p.now == nil {
		p.now = time.Now
	}
	switch {
	case p.kvMax == 0:
		p.kvMax = 0.9
	case p.kvMax < 0 || p.kvMax > 1 || math.IsNaN(p.kvMax):
		return nil, fmt.Errorf("picker: KVCacheThreshold %v not in 0..1", cfg.KVCacheThreshold)
	}
	if cfg.QueueThreshold < 0 {
		return nil, fmt.Errorf("picker: negative QueueThreshold %d", cfg.QueueThreshold)
	}
	switch {
	case p.loadFactor == 0:
		p.loadFactor = 1.25
	case !(p.loadFactor >= 1) || math.IsInf(p.loadFactor, 0):
		return nil, fmt.Errorf("picker: LoadFactor %v must be >= 1", cfg.LoadFactor)
	}
	if cfg.Outlier != nil {
		oc := *cfg.Outlier
		if oc.Now == nil {
			oc.Now = p.now
		}
		p.outlier = &oc
	}
	if mc := cfg.Metrics; mc != nil {
		m := *mc
		if m.Client == nil {
			return nil, errors.New("picker: Metrics.Client is required")
		}
		switch m.Scheme {
		case "":
			m.Scheme = "http"
		case "http", "https":
		default:
			return nil, fmt.Errorf("picker: metrics scheme %q is not http or https", m.Scheme)
		}
		if m.Path == "" {
			m.Path = "/metrics"
		} else if !strings.HasPrefix(m.Path, "/") {
			return nil, fmt.Errorf("picker: metrics path %q does not start with /", m.Path)
		}
		if m.Interval <= 0 {
			m.Interval = time.Second
		}
		if m.StaleAfter <= 0 {
			m.StaleAfter = 3 * m.Interval
		}
		if m.Timeout <= 0 {
			m.Timeout = m.Interval
		}
		p.metrics = &m
	}
	if err := p.SetAddresses(cfg.Addresses); err != nil {
		return nil, err
	}
	return p, nil
}

// SetAddresses replaces the membership. Endpoints kept by address keep their in-flight
// counts, detectors and metrics; requests in flight on removed ones still call Done.
func (p *Pool) SetAddresses(addrs []string) error {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	old := p.state.Load()
	st := &state{eps: make([]*Endpoint, len(addrs)), byAddr: make(map[string]int, len(addrs))}
	for i, a := range addrs {
		if _, dup := st.byAddr[a]; dup {
			return fmt.Errorf("picker: duplicate address %q", a)
		}
		st.byAddr[a] = i
		if old != nil {
			if j, ok := old.byAddr[a]; ok {
				st.eps[i] = old.eps[j]
				continue
			}
		}
		e := &Endpoint{addr: a, pool: p}
		if p.outlier != nil {
			e.health = outlier.New(*p.outlier)
		}
		st.eps[i] = e
	}
	st.ring = buildRing(st.eps)
	p.state.Store(st)
	return nil
}

// buildRing places vnodesPerEndpoint points per endpoint. Positions depend only on the
// address, so every gateway replica builds the same ring whatever the address order.
func buildRing(eps []*Endpoint) []vnode {
	ring := make([]vnode, 0, len(eps)*vnodesPerEndpoint)
	for i, e := range eps {
		h := hashString(PrefixSeed, e.addr)
		for k := range vnodesPerEndpoint {
			ring = append(ring, vnode{hash: mix64(h + uint64(k+1)*0x9e3779b97f4a7c15), ep: uint32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b vnode) int {
		if a.hash != b.hash {
			if a.hash < b.hash {
				return -1
			}
			return 1
		}
		return strings.Compare(eps[a.ep].addr, eps[b.ep].addr)
	})
	return ring
}

// Endpoints returns the members in the order of the last SetAddresses.
func (p *Pool) Endpoints() []*Endpoint { return slices.Clone(p.state.Load().eps) }

// Lookup returns the member at addr, nil when there is none.
func (p *Pool) Lookup(addr string) *Endpoint {
	st := p.state.Load()
	if i, ok := st.byAddr[addr]; ok {
		return st.eps[i]
	}
	return nil
}

// Ejected reports whether every endpoint is ejected: the Backend as a whole is out. An
// empty pool is not ejected (Pick returns nil there).
func (p *Pool) Ejected() bool {
	st := p.state.Load()
	for _, e := range st.eps {
		if !e.health.Ejected() {
			return false
		}
	}
	return len(st.eps) > 0
}

// Request is what Pick knows of a request.
type Request struct {
	PrefixHash uint64 // hash of the prompt prefix (PrefixAffinity); see PrefixHash
	HasPrefix  bool   // false: PrefixAffinity behaves as LoadAware
	// Preferred are endpoint addresses from an x-gateway-destination-endpoint header
	// (Gateway API Inference Extension endpoint-picker protocol: "ip:port" or
	// "ip:port,ip:port,..."), in order: the first that is a member, not excluded, and not
	// ejected (or admitted by its half-open detector) wins. Non-members are ignored (the
	// gateway connects only to what a Backend names).
	Preferred string
	// Exclude are endpoints this request already failed on (retries go elsewhere).
	Exclude []*Endpoint
}

// Per-pick candidate flags.
const (
	fOut       uint8 = 1 << iota // excluded, or refused by Admit during this pick
	fEjected                     // outlier-ejected
	fSaturated                   // fresh metrics at or above a threshold
	fFull                        // at or above the bounded-load limit (ring walk)
)

// Pick returns the chosen endpoint with its in-flight count already incremented (the
// caller calls Done exactly once), and whether it came from r.Preferred. It returns nil
// when every endpoint is excluded. Ejected endpoints are skipped unless every
// non-excluded endpoint is ejected; then they are tried anyway (panic mode, like Envoy:
// a guess beats a certain failure). A half-open endpoint is taken only if its detector
// admits the probe.
func (p *Pool) Pick(r Request) (e *Endpoint, preferred bool) {
	st := p.state.Load()
	n := len(st.eps)
	if n == 0 {
		return nil, false
	}
	var buf [64]uint8 // flags on the stack for pools up to 64 endpoints
	var fl []uint8
	if n <= len(buf) {
		fl = buf[:n]
	} else {
		fl = make([]uint8, n)
	}
	useMetrics := p.metrics != nil && p.strategy != LeastOutstanding
	var now time.Time
	if useMetrics {
		now = p.now()
	}
	for i, e := range st.eps {
		switch {
		case slices.Contains(r.Exclude, e):
			fl[i] = fOut
			continue
		case e.health.Ejected():
			fl[i] = fEjected
		default:
			fl[i] = 0
		}
		if useMetrics && p.saturated(e, now) {
			fl[i] |= fSaturated
		}
	}
	if r.Preferred != "" {
		if e := p.preferred(st, fl, r.Preferred); e != nil {
			e.inflight.Add(1)
			return e, true
		}
	}
	for {
		live, some := false, false
		for _, f := range fl {
			if f&fOut == 0 {
				some = true
				if f&fEjected == 0 {
					live = true
					break
				}
			}
		}
		if !some {
			return nil, false
		}
		skip := fOut // flags that rule a candidate out
		if live {
			skip |= fEjected
		}
		if p.strategy != LeastOutstanding {
			for _, f := range fl {
				if f&(skip|fSaturated) == 0 {
					skip |= fSaturated // an unsaturated candidate remains
					break
				}
			}
		}
		var i int
		switch {
		case p.strategy == LeastOutstanding:
			i = leastOutstanding(st, fl, skip)
		case p.strategy == PrefixAffinity && r.HasPrefix:
			i = p.affinity(st, fl, skip, r.PrefixHash)
		default:
			i = p.loadAware(st, fl, skip, now)
		}
		e := st.eps[i]
		if !live || e.health.Admit() {
			e.inflight.Add(1)
			return e, false
		}
		fl[i] |= fOut // a half-open endpoint whose probe is already in flight
	}
}

// preferred returns the first usable member named in list.
func (p *Pool) preferred(st *state, fl []uint8, list string) *Endpoint {
	for list != "" {
		var a string
		a, list, _ = strings.Cut(list, ",")
		i, ok := st.byAddr[strings.TrimSpace(a)]
		if !ok || fl[i]&(fOut|fEjected) != 0 {
			continue
		}
		if e := st.eps[i]; e.health.Admit() {
			return e
		}
		fl[i] |= fOut
	}
	return nil
}

// leastOutstanding returns the candidate with the fewest requests in flight, ties
// broken uniformly at random (reservoir sampling, no allocation).
func leastOutstanding(st *state, fl []uint8, skip uint8) int {
	best, ties := -1, 0
	var low int64
	for i, e := range st.eps {
		if fl[i]&skip != 0 {
			continue
		}
		switch n := e.inflight.Load(); {
		case best < 0 || n < low:
			best, low, ties = i, n, 1
		case n == low:
			if ties++; rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}

// loadAware scores candidates by in-flight plus fresh waiting requests; ties go to the
// lower fresh KV-cache use, then at random.
func (p *Pool) loadAware(st *state, fl []uint8, skip uint8, now time.Time) int {
	best, ties := -1, 0
	var bestScore, bestKV float64
	for i, e := range st.eps {
		if fl[i]&skip != 0 {
			continue
		}
		w, kv, _ := p.load(e, now)
		score := float64(e.inflight.Load()) + w
		switch {
		case best < 0 || score < bestScore || score == bestScore && kv < bestKV:
			best, bestScore, bestKV, ties = i, score, kv, 1
		case score == bestScore && kv == bestKV:
			if ties++; rand.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}

// affinity walks the ring clockwise from the prefix's position to the first candidate
// below the bounded-load limit ceil(c·(total+1)/n): "consistent hashing with bounded
// loads" (Mirrokni, Thorup, Zadimoghaddam). A prefix stays on its endpoint unless that
// one is overloaded, and then spills to the same next endpoint on every replica.
func (p *Pool) affinity(st *state, fl []uint8, skip uint8, prefix uint64) int {
	var total int64
	n := 0
	for i, e := range st.eps {
		if fl[i]&skip == 0 {
			total += e.inflight.Load()
			n++
		}
	}
	bound := int64(math.Ceil(p.loadFactor * float64(total+1) / float64(n)))
	ring := st.ring
	h := mix64(prefix)
	lo, hi := 0, len(ring) // first vnode with hash >= h
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ring[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	chosen := -1
	for k := range ring {
		j := lo + k
		if j >= len(ring) {
			j -= len(ring)
		}
		i := int(ring[j].ep)
		if fl[i]&(skip|fFull) != 0 {
			continue
		}
		if st.eps[i].inflight.Load() < bound {
			chosen = i
			break
		}
		fl[i] |= fFull
	}
	for i := range fl {
		fl[i] &^= fFull
	}
	if chosen < 0 { // counts moved under us; some candidate is below any average
		chosen = leastOutstanding(st, fl, skip)
	}
	return chosen
}

// PrefixSeed starts a PrefixHash (the FNV-1a 64-bit offset basis).
const PrefixSeed uint64 = 14695981039346656037

// PrefixHash continues a 64-bit FNV-1a hash h over b: PrefixHash(PrefixHash(PrefixSeed,
// a), b) == PrefixHash(PrefixSeed, a+b). It is stable across processes and versions, so
// every gateway replica maps a prefix to the same endpoint.
func PrefixHash(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func hashString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the splitmix64 finalizer: FNV's high bits mix poorly, ring positions must not.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Size is the number of endpoints.
func (p *Pool) Size() int { return len(p.state.Load().eps) }
