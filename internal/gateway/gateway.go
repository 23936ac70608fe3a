// Package gateway is Sluice's HTTP data path: the ingress endpoints, the pipeline that
// carries an Exchange from the client to an upstream and back, the errors clients see and
// the access log. It reads the running Snapshot through an atomic pointer and never parses
// configuration; the translator hands it compiled snapshots.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/sluice-gateway/sluice/internal/apierr"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/cache"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/limits"
	"github.com/sluice-gateway/sluice/internal/payload"
	"github.com/sluice-gateway/sluice/internal/telemetry"
	"github.com/sluice-gateway/sluice/internal/translate"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxRequestBytes is the default request body limit.
const DefaultMaxRequestBytes = 8 << 20

// Options configure a Gateway.
type Options struct {
	// Logger receives the access log and the gateway's own events. Default: discard.
	Logger *slog.Logger
	// MaxRequestBytes limits request bodies. Default DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// MaxResponseBytes limits a whole (non-streamed) upstream answer. Default 64 MiB.
	MaxResponseBytes int64
	// Metrics, when set, records every request's metrics (see package telemetry).
	Metrics *telemetry.Metrics
	// Usage, when set, is given every inference request's usage record once it is
	// settled (see package usage). It must not block.
	Usage func(ex *exchange.Exchange)
	// Tracer, when set, traces every inference request (see package tracing).
	Tracer trace.Tracer
	// Version is the gateway's version, as MCP clients see it in serverInfo. Default "dev".
	Version string
	// OnDenial, when set, is told of every request refused by access control, data
	// residency or a payload processor's Block (see Denial). It is called on the
	// request's goroutine, so it must not block: record, count or hand off, never wait.
	OnDenial func(d Denial)
}

// Gateway serves the data path. Create it with New, give it a snapshot with Swap.
type Gateway struct {
	opts     Options
	log      *slog.Logger
	metrics  *telemetry.Metrics
	state    atomic.Pointer[state]
	draining atomic.Bool
}

// state is a snapshot with what is derived from it once.
type state struct {
	snap       *translate.Snapshot
	modelsBody []byte
	models     map[string]bool
}

// New returns a Gateway without a snapshot: it answers 503 until Swap.
func New(opts Options) *Gateway {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 20
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	g := &Gateway{opts: opts, log: opts.Logger, metrics: opts.Metrics}
	if g.metrics != nil {
		g.metrics.WatchBackends(g.backendStates)
	}
	return g
}

// Swap puts snap in force for every request that starts from now on; requests in flight
// finish on the snapshot they started with. It returns the previous snapshot.
func (g *Gateway) Swap(snap *translate.Snapshot) *translate.Snapshot {
	st := &state{snap: snap, models: map[string]bool{}, modelsBody: modelList(snap.Models)}
	for _, m := range snap.Models {
		st.models[m] = true
	}
	for _, b := range snap.Backends {
		b.Upstream.StartProbes() // once per Upstream; kept across reloads with it
	}
	if g.metrics != nil && snap.Limits != nil {
		snap.Limits.Observe = g.metrics.RateLimitDecision
	}
	old := g.state.Swap(st)
	if old == nil {
		return nil
	}
	return old.snap
}

// Snapshot returns the snapshot in force, or nil.
func (g *Gateway) Snapshot() *translate.Snapshot {
	if st := g.state.Load(); st != nil {
		return st.snap
	}
	return nil
}

// Drain makes /readyz fail so load balancers stop sending; requests are still served.
func (g *Gateway) Drain() { g.draining.Store(true) }

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz", "/readyz":
	default:
		id := requestID(r)
		w.Header()["X-Request-Id"] = []string{id}
	}
	if in, ok := ingressPaths[r.URL.Path]; ok {
		g.post(w, r, in.ep, in.wire)
		return
	}
	switch r.URL.Path {
	case "/v1/models":
		if g.method(w, r, http.MethodGet) {
			g.listModels(w, r)
		}
	case "/healthz":
		w.Write([]byte("ok\n"))
	case "/readyz":
		if g.state.Load() == nil || g.draining.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	default:
		if st := g.state.Load(); st != nil {
			if rt := st.snap.MCP.Route(r.URL.Path); rt != nil {
				g.serveMCP(w, r, st.snap, rt)
				return
			}
			if rest, ok := strings.CutPrefix(r.URL.Path, protectedResourcePath); ok && serveProtectedResource(w, r, st.snap, rest) {
				return
			}
		}
		if id, ok := strings.CutPrefix(r.URL.Path, "/v1/models/"); ok && id != "" {
			if g.method(w, r, http.MethodGet) {
				g.getModel(w, r, id)
			}
			return
		}
		(&apierr.Error{Status: http.StatusNotFound, Code: apierr.CodeNotFound, Message: "Unknown path " + r.URL.Path + "."}).Write(w, apierr.OpenAI)
	}
}

func (g *Gateway) method(w http.ResponseWriter, r *http.Request, m string) bool {
	if r.Method == m || (m == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", m)
	(&apierr.Error{Status: http.StatusMethodNotAllowed, Code: apierr.CodeMethodNotAllowed, Message: "Use " + m + " for " + r.URL.Path + "."}).Write(w, apierr.OpenAI)
	return false
}

func (g *Gateway) listModels(w http.ResponseWriter, r *http.Request) {
	st := g.state.Load()
	if st == nil {
		notReady.Write(w, apierr.OpenAI)
		return
	}
	w.Header()["Content-Type"] = jsonContentType
	pol := st.snap.Policy
	if pol == nil {
		w.Write(st.modelsBody)
		return
	}
	pr, e, _ := pol.Authenticate(r.Context(), r.Header)
	if e != nil {
		e.Write(w, apierr.OpenAI)
		return
	}
	var visible []string
	for _, m := range st.snap.Models {
		if pol.Visible(pr, m) {
			visible = append(visible, m)
		}
	}
	w.Write(modelList(visible))
}

func (g *Gateway) getModel(w http.ResponseWriter, r *http.Request, id string) {
	st := g.state.Load()
	if st == nil {
		notReady.Write(w, apierr.OpenAI)
		return
	}
	if pol := st.snap.Policy; pol != nil {
		pr, e, _ := pol.Authenticate(r.Context(), r.Header)
		if e != nil {
			e.Write(w, apierr.OpenAI)
			return
		}
		if !pol.Visible(pr, id) {
			modelNotFound(id).Write(w, apierr.OpenAI)
			return
		}
	}
	if !st.models[id] {
		modelNotFound(id).Write(w, apierr.OpenAI)
		return
	}
	b, _ := json.Marshal(map[string]any{"id": id, "object": "model", "created": 0, "owned_by": "sluice"})
	w.Header()["Content-Type"] = jsonContentType
	w.Write(b)
}

var notReady = &apierr.Error{Status: http.StatusServiceUnavailable, Code: apierr.CodeNotReady, Message: "The gateway has no configuration loaded yet."}

func modelNotFound(model string) *apierr.Error {
	return &apierr.Error{Status: http.StatusNotFound, Code: apierr.CodeModelNotFound, Param: "model", Message: "The model '" + model + "' does not exist or you do not have access to it."}
}

var exchangePool = sync.Pool{New: func() any { return new(exchange.Exchange) }}

// post serves one inference request: the pipeline, in order.
func (g *Gateway) post(w http.ResponseWriter, r *http.Request, ep exchange.Endpoint, wire apierr.Wire) {
	ex := exchangePool.Get().(*exchange.Exchange)
	ex.Started = time.Now()
	ex.Endpoint, ex.IngressEndpoint, ex.Ingress = ep, ep, wire
	ex.Header = r.Header
	ex.ID = w.Header()["X-Request-Id"][0]
	g.metrics.Begin()
	r, span := g.startSpan(r)
	rw := &recorder{ResponseWriter: w}
	var body *bodyBuffer
	var admission *limits.Admission
	var run *payload.Run
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			g.log.Error("panic serving request", "request_id", ex.ID, "panic", v)
			if !rw.wrote {
				(&apierr.Error{Status: http.StatusInternalServerError, Code: apierr.CodeInternal, Message: "Internal error; request id " + ex.ID + "."}).Write(rw, ex.Ingress)
			}
			ex.Code = apierr.CodeInternal
		}
		g.finish(r, ex, rw, admission, run, span, body)
	}()
	if r.Method != http.MethodPost {
		g.fail(rw, ex, &apierr.Error{Status: http.StatusMethodNotAllowed, Code: apierr.CodeMethodNotAllowed, Message: "Use POST for " + r.URL.Path + "."})
		return
	}
	st := g.state.Load()
	if st == nil {
		g.fail(rw, ex, notReady)
		return
	}
	pol := st.snap.Policy
	if pol != nil {
		pr, e, why := pol.Authenticate(r.Context(), r.Header)
		if e != nil {
			pol.CountAuthenticationFailure()
			g.audit(ex, "", string(why), e.Code)
			g.fail(rw, ex, e)
			return
		}
		ex.Principal = pr
	}
	var gerr *apierr.Error
	body, gerr = readBody(r, g.opts.MaxRequestBytes)
	if gerr != nil {
		g.fail(rw, ex, gerr)
		return
	}
	ex.Body = body.b
	ex.IngressBody = body.b
	if gerr := decodeRequest(ex, ex.Body); gerr != nil {
		g.fail(rw, ex, gerr)
		return
	}
	if pol != nil {
		d := pol.Authorize(ex.Principal, &auth.Request{
			Model: ex.Model, Endpoint: ex.IngressEndpoint.RuleName(), Stream: ex.Stream,
			MaxTokens: ex.MaxTokens, Header: r.Header, Body: ex.IngressBody,
		})
		if !d.Allowed {
			g.audit(ex, d.Rule, d.Reason.String(), d.Error().Code)
			g.fail(rw, ex, d.Error())
			return
		}
		ex.Regions = d.Regions
	}
	// An HTTPRoute's host and path rules (cluster mode) come before the model's route.
	rt := st.snap.Routes.MatchPath(r.Host, r.URL.Path, r.Method, r.Header)
	if rt == nil {
		rt = st.snap.Routes.Lookup(ex.Model)
	}
	if rt == nil {
		g.fail(rw, ex, modelNotFound(ex.Model))
		return
	}
	ex.Route = rt.Ref
	pre := st.snap.Payload.Chain(payload.PreRouting, rt.Ref)
	postRouting := st.snap.Payload.Chain(payload.PostRouting, rt.Ref)
	if !pre.Empty() || !postRouting.Empty() {
		run = payload.NewRun(r.Context(), ex, clientAddr(r), redecode)
		if e := run.Request(r.Context(), pre, payload.PreRouting); e != nil {
			g.fail(rw, ex, e)
			return
		}
	}
	var lerr *apierr.Error
	if admission, lerr = st.snap.Limits.Admit(r.Context(), ex, rt.Ref, r.Header); lerr != nil {
		g.log.Info("rate limited", "request_id", ex.ID, "route", ex.Route, "code", lerr.Code, "message", lerr.Message)
		g.fail(rw, ex, lerr)
		return
	}
	admission.SetHeaders(w.Header())
	if over := admission.Shadowed(); over != nil {
		g.log.Info("rate limit exceeded in shadow mode", "request_id", ex.ID, "route", ex.Route, "rules", over)
	}
	if run != nil {
		if e := run.Request(r.Context(), postRouting, payload.PostRouting); e != nil {
			g.fail(rw, ex, e)
			return
		}
		if len(run.Findings) > 0 {
			w.Header().Set("X-Sluice-Flags", payload.FlagsHeader(run.Findings))
		}
	}
	var fill *cacheFill
	if cp := st.snap.Cache.For(rt.Ref); cp != nil {
		var served bool
		if served, fill = g.cacheLookup(r, rw, ex, cp, st.snap.Backends); served {
			return
		}
	}
	ctx := r.Context()
	if rt.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, rt.RequestTimeout, errRequestTimeout)
		defer cancel()
	}
	g.forward(ctx, rw, ex, rt, run)
	if fill != nil {
		g.cacheStore(rw, ex, fill)
	}
}

// finish ends an exchange on every path out (answers, errors, panics, a data plane that
// went away): usage settled and priced, the rate-limit admission settled (so nothing
// reserved is left), metrics, the span, the usage record and the access log; then the
// exchange and its body go back to their pools.
func (g *Gateway) finish(r *http.Request, ex *exchange.Exchange, rw *recorder, admission *limits.Admission, run *payload.Run, span trace.Span, body *bodyBuffer) {
	g.settle(ex, rw)
	ex.CostUSD = ex.Price.Cost(ex.Usage)
	admission.Settle(r.Context(), ex)
	var findings []payload.Finding
	if run != nil {
		run.Done()
		g.logFindings(ex, run)
		findings = run.Findings
	}
	g.metrics.Observe(ex, findings, time.Since(ex.Started))
	g.metrics.End()
	endSpan(span, ex)
	g.finishDenial(ex, run)
	if g.opts.Usage != nil && ex.Route != "" {
		g.opts.Usage(ex)
	}
	g.accessLog(r, ex, rw, run)
	run.Release()
	if body != nil {
		body.release()
	}
	ex.Reset()
	exchangePool.Put(ex)
}

func (g *Gateway) fail(w *recorder, ex *exchange.Exchange, e *apierr.Error) {
	ex.Status, ex.Code = e.Status, e.Code
	e.Write(w, ex.Ingress)
}

// recorder remembers whether the answer has started, so a panic or a late failure knows
// whether it may still send an error status.
type recorder struct {
	http.ResponseWriter
	wrote bool
	// capture, when set, keeps a copy of the body written (for the cache), up to
	// cache.MaxEntryBytes; overflow says it was more.
	capture  *bytes.Buffer
	overflow bool
}

func (r *recorder) WriteHeader(code int) {
	r.wrote = true
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	if r.capture != nil && !r.overflow {
		if r.capture.Len()+len(b) > cache.MaxEntryBytes {
			r.overflow = true
		} else {
			r.capture.Write(b)
		}
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var jsonContentType = []string{"application/json"}

// modelList renders OpenAI's model list.
func modelList(models []string) []byte {
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	list := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{Object: "list", Data: []model{}}
	for _, m := range models {
		list.Data = append(list.Data, model{ID: m, Object: "model", OwnedBy: "sluice"})
	}
	b, _ := json.Marshal(list)
	return b
}

// audit logs a denial: who, which rule, why. Never the credential.
func (g *Gateway) audit(ex *exchange.Exchange, rule, reason, code string) {
	subject, team := "", ""
	if p := ex.Principal; p != nil {
		subject, team = p.Subject, p.Team
	}
	g.log.Warn("access denied", "request_id", ex.ID, "subject", subject, "team", team, "rule", rule, "reason", reason, "model", ex.Model, "endpoint", ex.IngressEndpoint.String())
	g.auditDenial(ex, rule, reason, code)
}
