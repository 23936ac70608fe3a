// Package limits is the rate-limit stage of the gateway: it decides which RateLimitPolicy
// rules apply to a request, evaluates their bucket keys and estimated costs, reserves them
// in the policy's store before the upstream call, answers 429 when a rule is over, and
// settles the real cost from the usage afterwards. The counting itself (windows, stores,
// Redis) is internal/ratelimit's.
package limits

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/ratelimit"
	"github.com/sluice-gateway/sluice/internal/tokens"
)

// Codes of the rate-limit stage.
const (
	CodeRateLimitExceeded    = apierr.CodeRateLimitExceeded
	CodeRateLimitUnavailable = "rate_limit_unavailable"
)

// Rule is a compiled rule.
type Rule struct {
	ratelimit.Rule
	// ID identifies the rule in bucket keys: policy ref and rule name.
	ID string
	// fastKey reads the common keys (principal.team, request.model, a literal) without
	// CEL, so they cost no allocation; nil when the key needs CEL.
	fastKey func(ex *exchange.Exchange) string
	// buckets caches the full bucket key per key value, so a known caller's key costs
	// no allocation; bounded by maxCachedKeys.
	buckets  sync.Map
	nBuckets atomic.Int64
	key      cel.Program
	cost     cel.Program // nil: by unit
	matcher  cel.Program // nil: every request
	usesBody bool
}

// Policy is a compiled RateLimitPolicy.
type Policy struct {
	Ref     string
	Targets map[string]bool // ModelRoute and MCPRoute refs; nil: every request
	Rules   []*Rule
	Store   *ratelimit.Guard
	Headers bool
	// OutputEstimate is reserved for output when a request sets no max_tokens.
	OutputEstimate int64
}

// Set is every policy of a snapshot.
type Set struct {
	Policies []*Policy
	// Observe, when set, is told every rule's decision for a request: allowed, rejected
	// or shadow_rejected (metrics). Set it before the Set is in use.
	Observe func(policy, rule, decision string)
	// closers stop stores when the snapshot retires.
	closers []func()
}

var env, envErr = cel.NewEnv(append(auth.EnvOptions(),
	cel.Variable("usage", cel.MapType(cel.StringType, cel.IntType)),
	cel.Variable("backend", cel.MapType(cel.StringType, cel.StringType)),
)...)

func compile(expr string, want *cel.Type) (cel.Program, error) {
	if envErr != nil {
		return nil, envErr
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	if t := ast.OutputType(); t != want && t != cel.DynType && !(want == cel.IntType && t == cel.DoubleType) {
		return nil, &typeError{want: want.String(), got: t.String()}
	}
	return env.Program(ast, cel.CostLimit(100000))
}

type typeError struct{ want, got string }

func (e *typeError) Error() string { return "must be of type " + e.want + ", not " + e.got }

// NewRule compiles a rule's expressions. Errors are for the operator.
func NewRule(id string, r ratelimit.Rule, key, cost, matcher string) (*Rule, map[string]error) {
	out := &Rule{Rule: r, ID: id, fastKey: fastKey(key)}
	errs := map[string]error{}
	var err error
	if out.key, err = compile(key, cel.StringType); err != nil {
		errs["key"] = err
	}
	if cost != "" {
		if out.cost, err = compile(cost, cel.IntType); err != nil {
			errs["costExpression"] = err
		}
	}
	if matcher != "" {
		if out.matcher, err = compile(matcher, cel.BoolType); err != nil {
			errs["trafficMatcher.celMatcher"] = err
		}
	}
	out.usesBody = auth.ReadsBody(key) || auth.ReadsBody(matcher)
	return out, errs
}

// AddCloser registers a store to stop when the set retires.
func (s *Set) AddCloser(f func()) { s.closers = append(s.closers, f) }

// Close stops the set's stores' background work.
func (s *Set) Close() {
	for _, f := range s.closers {
		f()
	}
}

// Admission is what one request reserved; Settle must be called exactly once.
type Admission struct {
	items    []ratelimit.Item
	settle   []ratelimit.Settlement
	rules    []*Rule
	stores   []*ratelimit.Guard
	results  []ratelimit.Result
	headers  bool
	refused  bool   // the request was refused here: release everything
	tightest [2]int // index into items of the tightest Requests and Tokens rule, -1 none
}

var admissionPool = sync.Pool{New: func() any { return new(Admission) }}

// Admit reserves the request's estimated cost in every applicable rule. It returns the
// admission (nil when no rule applies) and, when the request must be refused, the error to
// answer with (the admission is then already settled).
func (s *Set) Admit(ctx context.Context, ex *exchange.Exchange, route string, header http.Header) (*Admission, *apierr.Error) {
	if s == nil || len(s.Policies) == 0 {
		return nil, nil
	}
	var act map[string]any
	activation := func(withBody bool) map[string]any {
		if act == nil || (withBody && act["request"].(map[string]any)["body"] == nil) {
			act = auth.Activation(ex.Principal, &auth.Request{
				Model: ex.Model, Endpoint: ex.IngressEndpoint.RuleName(), Stream: ex.Stream,
				MaxTokens: ex.MaxTokens, Header: header, Body: ex.IngressBody, MCP: ex.MCP,
			}, withBody)
		}
		return act
	}
	a := admissionPool.Get().(*Admission)
	a.reset()
	var inputEstimate int64 = -1
	now := time.Now()
	for _, p := range s.Policies {
		if p.Targets != nil && !p.Targets[route] {
			continue
		}
		first := len(a.items)
		for _, r := range p.Rules {
			if r.matcher != nil {
				out, _, err := r.matcher.Eval(activation(r.usesBody))
				if b, ok := out.Value().(bool); err != nil || !ok || !b {
					continue
				}
			}
			var key string
			if r.fastKey != nil {
				key = r.fastKey(ex)
			} else if out, _, err := r.key.Eval(activation(r.usesBody)); err == nil {
				key, _ = out.Value().(string) // an unevaluable key (no principal) shares one bucket
			}
			cost := int64(1)
			if r.Limit.Unit != ratelimit.Requests {
				if inputEstimate < 0 {
					inputEstimate = estimateInput(ex)
				}
				cost = estimate(r.Limit.Unit, inputEstimate, ex.MaxTokens, p.OutputEstimate)
			}
			a.items = append(a.items, ratelimit.Item{Rule: &r.Rule, Key: r.bucket(key), Cost: cost})
			a.rules = append(a.rules, r)
		}
		if len(a.items) == first {
			continue
		}
		// Reuse a pooled Result, slices and all: the store fills it without allocating.
		if len(a.results) < cap(a.results) {
			a.results = a.results[:len(a.results)+1]
		} else {
			a.results = append(a.results, ratelimit.Result{})
		}
		res := &a.results[len(a.results)-1]
		a.stores = append(a.stores, p.Store)
		if err := p.Store.Reserve(ctx, now, a.items[first:], res); err != nil {
			res.Allowed = false
		}
		a.headers = a.headers || p.Headers
		if s.Observe != nil {
			a.observe(s.Observe, p.Ref, first, res)
		}
		if !res.Allowed {
			a.trackTightest()
			e := a.refusal(res, first)
			a.refused = true
			a.Settle(ctx, ex)
			return nil, e
		}
	}
	if len(a.items) == 0 {
		admissionPool.Put(a)
		return nil, nil
	}
	a.trackTightest()
	return a, nil
}

// observe reports the decisions of the rules a.rules[first:] of one policy.
func (a *Admission) observe(fn func(policy, rule, decision string), policy string, first int, res *ratelimit.Result) {
	if !res.Allowed {
		if res.Denied >= 0 && first+res.Denied < len(a.rules) {
			fn(policy, a.rules[first+res.Denied].Name, "rejected")
		}
		return
	}
	for i, r := range a.rules[first:] {
		d := "allowed"
		if i < len(res.States) && res.States[i].Exceeded && r.Shadow {
			d = "shadow_rejected"
		}
		fn(policy, r.Name, d)
	}
}

func (a *Admission) reset() {
	a.items, a.rules, a.stores = a.items[:0], a.rules[:0], a.stores[:0]
	a.results = a.results[:0]
	a.headers, a.refused = false, false
	a.tightest = [2]int{-1, -1}
}

// refusal is the 429 (or 503 when the store is down and the policy fails closed).
func (a *Admission) refusal(res *ratelimit.Result, first int) *apierr.Error {
	if res.Unavailable {
		return &apierr.Error{Status: http.StatusServiceUnavailable, Code: CodeRateLimitUnavailable, Message: "Rate limits cannot be checked right now; try again shortly."}
	}
	name := ""
	if res.Denied >= 0 && first+res.Denied < len(a.rules) {
		name = a.rules[first+res.Denied].Name
	}
	secs := apierr.RetryAfterSeconds(res.RetryAfter)
	h := http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	a.setHeaders(h)
	return &apierr.Error{Status: http.StatusTooManyRequests, Code: CodeRateLimitExceeded, Header: h,
		Message: "Rate limit '" + name + "' exceeded; retry after " + strconv.FormatInt(secs, 10) + "s."}
}

// trackTightest finds, among the items, the Requests and the token rules with the least
// remaining, for the response headers.
func (a *Admission) trackTightest() {
	a.tightest = [2]int{-1, -1}
	i := 0
	for ri := range a.results {
		for _, st := range a.results[ri].States {
			kind := 1
			if a.items[i].Rule.Limit.Unit == ratelimit.Requests {
				kind = 0
			}
			if t := a.tightest[kind]; t < 0 || st.Remaining < a.state(t).Remaining {
				a.tightest[kind] = i
			}
			i++
		}
	}
}

func (a *Admission) state(i int) ratelimit.State {
	for ri := range a.results {
		if n := len(a.results[ri].States); i < n {
			return a.results[ri].States[i]
		} else {
			i -= n
		}
	}
	return ratelimit.State{}
}

// Shadowed returns the shadow rules this request went over (they never refuse; the
// gateway logs them).
func (a *Admission) Shadowed() []string {
	if a == nil {
		return nil
	}
	var out []string
	i := 0
	for ri := range a.results {
		for _, st := range a.results[ri].States {
			if st.Exceeded && a.rules[i].Shadow {
				out = append(out, a.rules[i].Name)
			}
			i++
		}
	}
	return out
}

// SetHeaders adds OpenAI's x-ratelimit-* headers for the tightest rules, when the policy
// asks for them.
func (a *Admission) SetHeaders(h http.Header) {
	if a != nil {
		a.setHeaders(h)
	}
}

func (a *Admission) setHeaders(h http.Header) {
	if !a.headers {
		return
	}
	for kind, suffix := range [2]string{"requests", "tokens"} {
		i := a.tightest[kind]
		if i < 0 {
			continue
		}
		st := a.state(i)
		h["X-Ratelimit-Limit-"+title(suffix)] = []string{strconv.FormatInt(st.Limit, 10)}
		h["X-Ratelimit-Remaining-"+title(suffix)] = []string{strconv.FormatInt(st.Remaining, 10)}
		h["X-Ratelimit-Reset-"+title(suffix)] = []string{st.Reset.Round(time.Millisecond).String()}
	}
}

func title(s string) string { return string(s[0]-'a'+'A') + s[1:] }

// Settle replaces the reservations with the request's real cost, from ex.Usage (zero
// usage, as after an upstream failure, releases token reservations; a request always
// costs 1 request).
func (a *Admission) Settle(ctx context.Context, ex *exchange.Exchange) {
	if a == nil {
		return
	}
	ctx = context.WithoutCancel(ctx) // settle even when the client has gone
	i := 0
	for ri := range a.results {
		res := &a.results[ri]
		a.settle = a.settle[:0]
		for _, rv := range res.Reservations {
			a.settle = append(a.settle, ratelimit.Settlement{Reservation: rv, Actual: a.actual(a.rules[i], ex)})
			i++
		}
		a.stores[ri].Settle(ctx, time.Now(), a.settle)
	}
	a.reset()
	admissionPool.Put(a)
}

func (a *Admission) actual(r *Rule, ex *exchange.Exchange) int64 {
	if a.refused {
		return 0
	}
	u := ex.Usage
	if r.cost != nil {
		out, _, err := r.cost.Eval(map[string]any{"usage": map[string]int64{
			"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens, "total_tokens": u.TotalTokens,
			"cached_input_tokens": u.CachedInputTokens, "reasoning_tokens": u.ReasoningTokens,
		}, "request": map[string]any{}, "principal": map[string]any{}, "mcp": map[string]any{}, "backend": map[string]string{}})
		if err == nil {
			switch v := out.Value().(type) {
			case int64:
				return v
			case float64:
				return int64(v + 0.5)
			}
		}
	}
	switch r.Limit.Unit {
	case ratelimit.Requests:
		return 1
	case ratelimit.InputTokens:
		return u.InputTokens
	case ratelimit.OutputTokens:
		return u.OutputTokens
	}
	return u.TotalTokens
}

func estimate(u ratelimit.Unit, input, maxTokens, outputEstimate int64) int64 {
	out := maxTokens
	if out <= 0 {
		out = outputEstimate
	}
	switch u {
	case ratelimit.InputTokens:
		return input
	case ratelimit.OutputTokens:
		return out
	}
	return input + out
}

// estimateInput counts the prompt's texts (every role, tool results included) with the
// model's tokenizer, each distinct text once (tokens.CountCached: a conversation's earlier
// turns and a system prompt are not counted again), plus OpenAI's per-message overhead. It
// reads the body where it lies, in either wire, without decoding it into values.
func estimateInput(ex *exchange.Exchange) int64 {
	var segBuf [32]content.Segment
	segs, err := content.Request(ex.Endpoint, ex.Body, segBuf[:0])
	if err != nil {
		return int64(len(ex.Body) / 4) // a rough fallback for shapes the scanner does not know
	}
	buf := textPool.Get().(*[]byte)
	n := int64(3) // the reply's priming
	for _, s := range segs {
		*buf = content.Text((*buf)[:0], ex.Body, s)
		n += int64(tokens.CountCached(ex.Model, *buf)) + 4 // each text with its message's framing
	}
	if cap(*buf) <= 64<<10 {
		textPool.Put(buf)
	}
	return n
}

var textPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// fastKey recognises keys that need no CEL: a string literal, or one field of principal,
// request or mcp.
func fastKey(expr string) func(ex *exchange.Exchange) string {
	e := strings.TrimSpace(expr)
	if len(e) >= 2 && (e[0] == '"' || e[0] == '\'') && e[len(e)-1] == e[0] && !strings.ContainsAny(e[1:len(e)-1], "\"'\\") {
		lit := e[1 : len(e)-1]
		return func(*exchange.Exchange) string { return lit }
	}
	switch e {
	case "principal.subject":
		return func(ex *exchange.Exchange) string {
			if ex.Principal == nil {
				return ""
			}
			return ex.Principal.Subject
		}
	case "principal.team":
		return func(ex *exchange.Exchange) string {
			if ex.Principal == nil {
				return ""
			}
			return ex.Principal.Team
		}
	case "request.model":
		return func(ex *exchange.Exchange) string { return ex.Model }
	case "mcp.tool":
		return func(ex *exchange.Exchange) string {
			if ex.MCP == nil {
				return ""
			}
			return ex.MCP.Tool
		}
	case "mcp.method":
		return func(ex *exchange.Exchange) string {
			if ex.MCP == nil {
				return ""
			}
			return ex.MCP.Method
		}
	}
	return nil
}

// maxCachedKeys bounds a rule's bucket-key cache (a flood of distinct keys then costs one
// small allocation each, nothing more).
const maxCachedKeys = 100000

func (r *Rule) bucket(key string) string {
	if v, ok := r.buckets.Load(key); ok {
		return v.(string)
	}
	full := r.ID + "\x00" + key
	if r.nBuckets.Load() < maxCachedKeys {
		if _, loaded := r.buckets.LoadOrStore(key, full); !loaded {
			r.nBuckets.Add(1)
		}
	}
	return full
}

// Peek returns the state of one bucket: the rule named rule of the policy policyRef, for
// the bucket key value key (what the rule's key expression gives, e.g. a team name). It
// reserves and settles a zero cost, so nothing changes; the admin API uses it.
func (s *Set) Peek(ctx context.Context, policyRef, rule, key string) (ratelimit.State, bool, error) {
	if s == nil {
		return ratelimit.State{}, false, nil
	}
	for _, p := range s.Policies {
		if p.Ref != policyRef {
			continue
		}
		for _, r := range p.Rules {
			if r.Name != rule {
				continue
			}
			var res ratelimit.Result
			now := time.Now()
			if err := p.Store.Reserve(ctx, now, []ratelimit.Item{{Rule: &r.Rule, Key: r.bucket(key)}}, &res); err != nil {
				return ratelimit.State{}, true, err
			}
			st := ratelimit.State{}
			if len(res.States) > 0 {
				st = res.States[0]
			}
			settle := make([]ratelimit.Settlement, 0, len(res.Reservations))
			for _, rv := range res.Reservations {
				settle = append(settle, ratelimit.Settlement{Reservation: rv})
			}
			p.Store.Settle(ctx, now, settle)
			return st, true, nil
		}
	}
	return ratelimit.State{}, false, nil
}
