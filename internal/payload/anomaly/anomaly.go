// Package anomaly detects per-principal traffic anomalies: request-rate,
// token-usage and failure spikes against the principal's own baseline,
// and bursts of near-identical prompts.
//
// Each principal's traffic is counted in fixed windows (Config.Window).
// When a window closes, its counts are folded into an exponentially
// weighted moving average with half-life Config.HalfLife; the fold
// happens lazily, on the principal's next event, and also decays the
// baseline for the empty windows that passed in between. A spike is the
// current window's count exceeding a factor times the baseline and an
// absolute minimum. A new principal has no baseline, so spikes are only
// reported once one full window has been seen; duplicate bursts need no
// baseline and are reported from the start.
//
// Near-identical prompts are found with a 64-bit SimHash of the
// prompt's word pairs: prompts whose hashes differ in at most three bits
// count as the same. The hashes of a principal's prompts in the current
// window are kept in a small ring.
//
// The Tracker is safe for concurrent use. Principals are spread over 64
// shards, each with its own lock, so one busy principal does not
// serialise the others, and each shard keeps at most its share of
// Config.MaxPrincipals, evicting the least recently seen.
package anomaly

import (
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"time"
)

// Config tunes a Tracker. Zero fields take the defaults.
type Config struct {
	HalfLife       time.Duration // EWMA half-life of the baseline, default 10m
	Window         time.Duration // rate measurement bucket, default 1m
	RateFactor     float64       // request-rate spike factor over baseline, default 5
	MinRequests    int           // and at least this many requests in the window, default 20
	TokenFactor    float64       // token-usage spike factor, default 5
	MinTokens      int64         // and at least this many tokens in the window, default 20000
	DuplicateCount int           // near-identical prompts in one window, default 10 (at most 32)
	FailureFactor  float64       // blocked/failed spike factor, default 5
	MinFailures    int           // and at least this many in the window, default 10
	MaxPrincipals  int           // tracked principals, default 100000 (at least one per shard, 64)
	Now            func() time.Time
}

// Kind is a kind of anomaly.
type Kind string

// Kinds of anomaly.
const (
	RequestRate      Kind = "request-rate"
	TokenRate        Kind = "token-rate"
	DuplicatePrompts Kind = "duplicate-prompts"
	FailureRate      Kind = "failure-rate"
)

// Anomaly is one anomaly seen for a principal.
type Anomaly struct {
	Kind   Kind
	Reason string // e.g. "request rate 87/min is 9.1× this principal's baseline of 9.6/min"
}

const (
	numShards = 64
	ringSize  = 32 // prompt hashes kept per principal and window
	nearBits  = 3  // SimHash distance of near-identical prompts
)

// Tracker keeps per-principal traffic statistics.
type Tracker struct {
	cfg      Config
	decay    float64 // weight of the old baseline when a window closes
	perShard int
	unit     string // "min" for a one-minute window
	seed     maphash.Seed
	shards   [numShards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]*principal
	// Least recently seen principals are evicted first: a doubly linked
	// list, most recent at head.
	head, tail *principal
	_          [32]byte // keep shards on separate cache lines (64 bytes)
}

type principal struct {
	key        string
	prev, next *principal

	window  int64 // index of the current window
	full    int   // full windows folded into the baseline so far
	partial bool  // the current window started when the principal was first seen

	reqs, fails int64 // this window
	tokens      int64

	baseReqs, baseFails, baseTokens float64 // EWMA per window

	ring  [ringSize]uint64 // SimHashes of this window's prompts
	nring int              // how many of ring are filled (up to ringSize)
	next0 int              // next slot to overwrite

	throttleUntil int64 // unix nanoseconds
}

// New returns a Tracker for cfg.
func New(cfg Config) *Tracker {
	if cfg.HalfLife <= 0 {
		cfg.HalfLife = 10 * time.Minute
	}
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.RateFactor <= 0 {
		cfg.RateFactor = 5
	}
	if cfg.MinRequests <= 0 {
		cfg.MinRequests = 20
	}
	if cfg.TokenFactor <= 0 {
		cfg.TokenFactor = 5
	}
	if cfg.MinTokens <= 0 {
		cfg.MinTokens = 20000
	}
	if cfg.DuplicateCount <= 0 {
		cfg.DuplicateCount = 10
	}
	cfg.DuplicateCount = min(cfg.DuplicateCount, ringSize+1)
	if cfg.FailureFactor <= 0 {
		cfg.FailureFactor = 5
	}
	if cfg.MinFailures <= 0 {
		cfg.MinFailures = 10
	}
	if cfg.MaxPrincipals <= 0 {
		cfg.MaxPrincipals = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tracker{
		cfg:      cfg,
		decay:    math.Exp2(-float64(cfg.Window) / float64(cfg.HalfLife)),
		perShard: max(1, cfg.MaxPrincipals/numShards),
		unit:     unitOf(cfg.Window),
		seed:     maphash.MakeSeed(),
	}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*principal)
	}
	return t
}

func unitOf(w time.Duration) string {
	switch w {
	case time.Second:
		return "s"
	case time.Minute:
		return "min"
	case time.Hour:
		return "h"
	}
	return w.String()
}

// Request records one request of principal with the given prompt and
// appends to dst the anomalies that hold now: a request-rate, token or
// failure spike in the current window, or a burst of near-identical
// prompts. A condition is reported on every request while it holds.
func (t *Tracker) Request(principal string, prompt []byte, dst []Anomaly) []Anomaly {
	sh := simHash(prompt) // outside the lock
	now := t.cfg.Now().UnixNano()
	s := t.shard(principal)
	s.mu.Lock()
	p := s.get(t, principal, now)
	p.reqs++
	dups := 0
	if sh != 0 {
		for _, h := range p.ring[:p.nring] {
			if near(h, sh) {
				dups++
			}
		}
		p.ring[p.next0] = sh
		p.next0 = (p.next0 + 1) % ringSize
		p.nring = min(p.nring+1, ringSize)
	}
	// Copy what the reasons need, then format outside the lock.
	reqs, fails, tokens := p.reqs, p.fails, p.tokens
	baseReqs, baseFails, baseTokens := p.baseReqs, p.baseFails, p.baseTokens
	warm := p.full > 0
	s.mu.Unlock()

	if dups+1 >= t.cfg.DuplicateCount {
		dst = append(dst, Anomaly{DuplicatePrompts, strconv.Itoa(dups+1) + " near-identical prompts within " + windowText(t.cfg.Window)})
	}
	if !warm {
		return dst
	}
	if reqs > int64(t.cfg.MinRequests) && float64(reqs) > t.cfg.RateFactor*baseReqs {
		dst = append(dst, Anomaly{RequestRate, t.reason("request rate", float64(reqs), baseReqs)})
	}
	if tokens > t.cfg.MinTokens && float64(tokens) > t.cfg.TokenFactor*baseTokens {
		dst = append(dst, Anomaly{TokenRate, t.reason("token usage", float64(tokens), baseTokens)})
	}
	if fails > int64(t.cfg.MinFailures) && float64(fails) > t.cfg.FailureFactor*baseFails {
		dst = append(dst, Anomaly{FailureRate, t.reason("blocked or failed requests", float64(fails), baseFails)})
	}
	return dst
}

// Outcome records, after the answer, the tokens a request of principal
// used and whether it was blocked or failed. Spikes it causes are
// reported by the principal's next Request.
func (t *Tracker) Outcome(principal string, tokens int64, blocked, failed bool) {
	now := t.cfg.Now().UnixNano()
	s := t.shard(principal)
	s.mu.Lock()
	p := s.get(t, principal, now)
	if tokens > 0 {
		p.tokens += tokens
	}
	if blocked || failed {
		p.fails++
	}
	s.mu.Unlock()
}

// Throttle imposes a penalty on principal until now+d; a longer penalty
// already in force is kept.
func (t *Tracker) Throttle(principal string, d time.Duration) {
	now := t.cfg.Now().UnixNano()
	s := t.shard(principal)
	s.mu.Lock()
	p := s.get(t, principal, now)
	p.throttleUntil = max(p.throttleUntil, now+int64(d))
	s.mu.Unlock()
}

// Throttled returns how long principal's penalty still lasts, 0 if none.
// It does not start tracking an unknown principal.
func (t *Tracker) Throttled(principal string) time.Duration {
	now := t.cfg.Now().UnixNano()
	s := t.shard(principal)
	s.mu.Lock()
	var left int64
	if p := s.m[principal]; p != nil {
		left = p.throttleUntil - now
	}
	s.mu.Unlock()
	return time.Duration(max(left, 0))
}

// Len returns the number of principals tracked.
func (t *Tracker) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (t *Tracker) shard(principal string) *shard {
	return &t.shards[maphash.String(t.seed, principal)%numShards]
}

// get returns principal's entry, created or evicting as needed, marked
// most recently seen, with its windows rolled forward to now. The shard
// lock is held.
func (s *shard) get(t *Tracker, key string, now int64) *principal {
	w := now / int64(t.cfg.Window)
	p := s.m[key]
	if p == nil {
		if len(s.m) >= t.perShard {
			s.evict()
		}
		p = &principal{key: key, window: w, partial: true}
		s.m[key] = p
		s.pushFront(p)
		return p
	}
	if s.head != p {
		s.unlink(p)
		s.pushFront(p)
	}
	if w > p.window {
		t.roll(p, w)
	}
	return p
}

// roll closes the principal's current window and the empty ones after
// it, up to window w.
func (t *Tracker) roll(p *principal, w int64) {
	if p.partial {
		// The first window began mid-way: it says nothing about the
		// usual rate and is not folded in.
		p.partial = false
	} else if p.full == 0 {
		p.baseReqs, p.baseFails, p.baseTokens = float64(p.reqs), float64(p.fails), float64(p.tokens)
		p.full = 1
	} else {
		d := t.decay
		p.baseReqs = d*p.baseReqs + (1-d)*float64(p.reqs)
		p.baseFails = d*p.baseFails + (1-d)*float64(p.fails)
		p.baseTokens = d*p.baseTokens + (1-d)*float64(p.tokens)
		p.full++
	}
	// Windows with no events in between.
	if empty := w - p.window - 1; empty > 0 {
		if p.full == 0 {
			p.full = 1 // a full, quiet window: the baseline is zero
		} else {
			f := math.Pow(t.decay, float64(min(empty, 1<<20)))
			p.baseReqs *= f
			p.baseFails *= f
			p.baseTokens *= f
			p.full++
		}
	}
	p.window = w
	p.reqs, p.fails, p.tokens = 0, 0, 0
	p.nring, p.next0 = 0, 0
}

func (s *shard) evict() {
	p := s.tail
	if p == nil {
		return
	}
	s.unlink(p)
	delete(s.m, p.key)
}

func (s *shard) pushFront(p *principal) {
	p.prev, p.next = nil, s.head
	if s.head != nil {
		s.head.prev = p
	}
	s.head = p
	if s.tail == nil {
		s.tail = p
	}
}

func (s *shard) unlink(p *principal) {
	if p.prev != nil {
		p.prev.next = p.next
	} else {
		s.head = p.next
	}
	if p.next != nil {
		p.next.prev = p.prev
	} else {
		s.tail = p.prev
	}
	p.prev, p.next = nil, nil
}

// reason formats "request rate 87/min is 9.1× this principal's baseline
// of 9.6/min".
func (t *Tracker) reason(what string, cur, base float64) string {
	b := make([]byte, 0, 96)
	b = append(b, what...)
	b = append(b, ' ')
	b = appendNum(b, cur)
	b = append(b, '/')
	b = append(b, t.unit...)
	if base > 0 {
		b = append(b, " is "...)
		b = strconv.AppendFloat(b, cur/base, 'f', 1, 64)
		b = append(b, "× this principal's baseline of "...)
	} else {
		b = append(b, " against this principal's baseline of "...)
	}
	b = appendNum(b, base)
	b = append(b, '/')
	b = append(b, t.unit...)
	return string(b)
}

// appendNum writes whole numbers without decimals and small ones with
// one.
func appendNum(b []byte, v float64) []byte {
	if v >= 100 || v == math.Trunc(v) {
		return strconv.AppendFloat(b, math.Round(v), 'f', 0, 64)
	}
	return strconv.AppendFloat(b, v, 'f', 1, 64)
}

func windowText(w time.Duration) string {
	switch w {
	case time.Minute:
		return "one minute"
	case time.Hour:
		return "one hour"
	}
	return w.String()
}
