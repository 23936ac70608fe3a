// Package route holds the routing table of a snapshot: which ModelRoute claims a model name,
// and which Backends it may go to, in what order. Lookup and choice are read-only and safe
// for concurrent use; the table is built once by the translator and never changed.
package route

import (
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

// Backend is a Backend as the data path uses it.
type Backend struct {
	// Ref is "Backend/namespace/name".
	Ref    string
	Schema v1alpha1.Schema
	// MCP is set for a Backend with protocol MCP: only MCPRoutes may use it.
	MCP bool
	// Region is the Backend's region label ("" when unlabelled).
	Region   string
	Adapter  provider.Adapter
	Upstream *egress.Upstream
	// Price is the Backend's pricing (nil: none).
	Price *exchange.Price
}

// Ref is one candidate of a route.
type Ref struct {
	Backend *Backend
	// Model is the upstream model name; empty means the requested name.
	Model  string
	Weight int
	// Price overrides the Backend's pricing for this ref (nil: the Backend's).
	Price *exchange.Price
}

// Tier is the refs of one priority.
type Tier struct {
	Priority int32
	Refs     []Ref
}

// Route is a compiled ModelRoute.
type Route struct {
	// Ref is "ModelRoute/namespace/name".
	Ref   string
	Tiers []Tier // by ascending priority
	// RequestTimeout bounds the whole request (0: none).
	RequestTimeout time.Duration
	// FirstTokenTimeout bounds each attempt's wait for the first body byte (0: none).
	FirstTokenTimeout time.Duration
	// Regions, when not nil, are the only Backend regions this route may use.
	Regions map[string]bool
	// Retry, when not nil, is the route's retry policy.
	Retry *Retry
}

// Retry is a compiled retry policy.
type Retry struct {
	Attempts                           int
	On5xx, On429, OnConnect, OnTimeout bool
	Base, Max                          time.Duration
}

// Backoff is the wait before retry n (1 for the first retry): exponential from Base,
// capped at Max, with full jitter (a random share of it), so clients that failed together
// do not retry together.
func (r *Retry) Backoff(n int) time.Duration {
	d := r.Base
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

// Allowed reports whether a Backend in region may serve this route, given the caller's
// own allowed regions (nil: no restriction of the caller's).
func (r *Route) Allowed(region string, caller map[string]bool) bool {
	if r.Regions != nil && !r.Regions[region] {
		return false
	}
	return caller == nil || caller[region]
}

type glob struct {
	pattern string
	route   *Route
}

// Table maps model names to routes.
type Table struct {
	exact map[string]*Route
	globs []glob // most specific first
	// paths are HTTPRoute rules, checked before the model (see SetPaths).
	paths []PathRule
}

// NewTable builds a table. exact maps exact model names; globs maps patterns. Patterns are
// ordered longest first, then alphabetically, so the most specific wins.
func NewTable(exact map[string]*Route, globs map[string]*Route) *Table {
	t := &Table{exact: exact}
	for p, r := range globs {
		t.globs = append(t.globs, glob{p, r})
	}
	sort.Slice(t.globs, func(i, j int) bool {
		a, b := t.globs[i].pattern, t.globs[j].pattern
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	return t
}

// IsGlob reports whether a model pattern has glob syntax.
func IsGlob(pattern string) bool {
	return strings.ContainsAny(pattern, "*?")
}

// MatchAny reports whether any of the patterns matches name.
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if Match(p, name) {
			return true
		}
	}
	return false
}

// Match reports whether name matches pattern, where * matches any run of bytes (slashes
// included, since model names such as meta-llama/Llama-3 have them) and ? any one byte.
// It runs in O(len(pattern)·len(name)) at worst, with no allocation.
func Match(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Lookup returns the route for a model name: an exact name first, then the longest
// matching glob. Nil when nothing claims it.
func (t *Table) Lookup(model string) *Route {
	if r, ok := t.exact[model]; ok {
		return r
	}
	for _, g := range t.globs {
		if Match(g.pattern, model) {
			return g.route
		}
	}
	return nil
}

// Pick chooses a ref of the tier at random by weight, skipping those for which skip
// returns true. It returns -1 when no ref with positive weight is left.
func (t *Tier) Pick(skip func(i int) bool) int {
	total := 0
	for i, r := range t.Refs {
		if r.Weight > 0 && !skip(i) {
			total += r.Weight
		}
	}
	if total == 0 {
		return -1
	}
	n := rand.IntN(total)
	for i, r := range t.Refs {
		if r.Weight <= 0 || skip(i) {
			continue
		}
		if n < r.Weight {
			return i
		}
		n -= r.Weight
	}
	return -1
}
