package gateway

import (
	"bytes"
	"context"
	"errors"
	"github.com/sluice-gateway/sluice/internal/apierr"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/outlier"
	"github.com/sluice-gateway/sluice/internal/payload"
	"github.com/sluice-gateway/sluice/internal/picker"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/route"
)

var (
	errRequestTimeout    = errors.New("route request timeout")
	errFirstByteTimeout  = errors.New("no answer headers within the firstByte timeout")
	errFirstTokenTimeout = errors.New("no first body byte within the firstToken timeout")
	errIdleTimeout       = errors.New("silent longer than the idle timeout")
)

// outcome is how one attempt ended.
type outcome uint8

const (
	answered outcome = iota // something (an answer or an error) was sent to the client
	fallBack                // nothing was sent; the next priority may be tried
)

// failure is what fell back, kept to answer with if nothing else works.
type failure struct {
	err    *apierr.Error
	status int
	header http.Header
	body   []byte
	// kind is the retry condition the failure falls under; retryAfter a 429's wait.
	kind       failKind
	retryAfter time.Duration
}

// failKind classifies a failed attempt for the retry policy.
type failKind uint8

const (
	failNone    failKind = iota
	failConnect          // no connection, or it broke before the answer's headers
	fail5xx
	fail429
	failTimeout // no answer headers within the firstByte timeout
)

// retryable reports whether the route may try again after f.
func retryable(pol *route.Retry, f failKind) bool {
	if pol == nil {
		return f == failConnect || f == fail5xx
	}
	switch f {
	case failConnect:
		return pol.OnConnect
	case fail5xx:
		return pol.On5xx
	case fail429:
		return pol.On429
	case failTimeout:
		return pol.OnTimeout
	}
	return false
}

// forward tries the route's tiers in priority order. Within a tier it picks a ref by
// weight; when that Backend is full, or the attempt fails in a retryable way before any
// byte reached the client (without a retry policy: a connection failure or a 5xx), it
// picks among the tier's remaining refs, and when none is left, moves to the next tier.
// With a retry policy, the candidates are tried again in rounds until the attempts are
// spent, with a backoff before each retry.
func (g *Gateway) forward(ctx context.Context, w *recorder, ex *exchange.Exchange, rt *route.Route, run *payload.Run) {
	var last failure
	inRegion := false
	pol := rt.Retry
	// failed are pool endpoints this request failed on; retries go elsewhere.
	var failedBuf [8]*picker.Endpoint
	failed := failedBuf[:0]
	// skip holds, per tier, refs that must not be retried in a later round (a 429 that
	// asked for a longer wait than the backoff allows).
	var skip [8]uint64
	stop, wait := false, false
	// Ejected Backends are skipped, unless every candidate is ejected: then the route
	// tries them anyway rather than fail without trying (Envoy's panic threshold).
	avoidEjected := !allEjected(rt)
	for round := 0; !stop; round++ {
		progressed := false
		for ti := 0; ti < len(rt.Tiers) && !stop; ti++ {
			tier := &rt.Tiers[ti]
			// tried: the refs this round may not pick (see outOfPlay), and those already tried.
			tried, anyInRegion := outOfPlay(rt, tier, ex.Regions, avoidEjected)
			inRegion = inRegion || anyInRegion
			if ti < len(skip) {
				tried |= skip[ti]
			}
			for {
				if pol != nil && ex.Attempts >= pol.Attempts {
					stop = true
					break
				}
				i := tier.Pick(func(i int) bool { return tried&(1<<i) != 0 })
				if i < 0 {
					break
				}
				tried |= 1 << i
				ref := &tier.Refs[i]
				if wait {
					if !g.backoff(ctx, w, ex, pol, &last) {
						return
					}
					wait = false
				}
				up := ref.Backend.Upstream
				if avoidEjected && !up.Health.Admit() { // a half-open Backend whose probe is in flight
					continue
				}
				if !up.Acquire(ctx) {
					up.Health.Release()
					if ctx.Err() != nil { // the request ended while queued
						if context.Cause(ctx) == errRequestTimeout {
							g.fail(w, ex, timeoutError(ctx, nil))
						} else {
							ex.Status, ex.Code = 499, apierr.CodeClientClosed
						}
						return
					}
					if last.err == nil && last.body == nil {
						last.err = errNoBackend()
					}
					continue
				}
				last.kind, last.retryAfter = failNone, 0
				progressed = true
				var ep *picker.Endpoint
				o := g.attempt(ctx, w, ex, rt, ref, run, &last, failed, &ep)
				up.Release()
				if ep == nil {
					g.health(up.Health, ex, o, last.kind)
				} else {
					ep.Done()
					g.health(ep.Health(), ex, o, last.kind)
				}
				if o == answered {
					return
				}
				if ep != nil && last.kind == failConnect && len(failed) < cap(failed) {
					// Nothing reached that server: the pool stays a candidate, and its next
					// attempt goes to another endpoint, without a backoff.
					failed = append(failed, ep)
					if len(failed) < up.Pool.Size() && (pol == nil || ex.Attempts < pol.Attempts) {
						tried &^= 1 << i
						continue
					}
				}
				if !retryable(pol, last.kind) {
					stop = true
					break
				}
				if last.kind == fail429 && pol != nil && last.retryAfter > pol.Max && ti < len(skip) {
					skip[ti] |= 1 << i
				}
				wait = pol != nil
				// fall back: the tier's other refs first, then the next tier
			}
		}
		if pol == nil || !progressed {
			break
		}
	}
	switch {
	case !inRegion:
		g.fail(w, ex, errNoRegion())
	case last.body != nil:
		h := w.Header()
		provider.ResponseHeaders(h, last.header)
		delete(h, "Content-Encoding")
		h["Content-Length"] = []string{itoa(len(last.body))}
		ex.Status = last.status
		ex.Code = answerCode(last.body)
		w.WriteHeader(last.status)
		w.Write(last.body)
	case last.err != nil:
		g.fail(w, ex, last.err)
	default:
		g.fail(w, ex, errNoBackend())
	}
}

// outOfPlay marks, as a bitset over the tier's refs (validation caps a route at 64), the
// refs an attempt must not pick: outside the allowed regions (so no fallback leaves
// them), or ejected when avoidEjected. inRegion reports whether any ref is in region.
func outOfPlay(rt *route.Route, tier *route.Tier, regions map[string]bool, avoidEjected bool) (out uint64, inRegion bool) {
	for i := range tier.Refs {
		if !rt.Allowed(tier.Refs[i].Backend.Region, regions) {
			out |= 1 << i
			continue
		}
		inRegion = true
		if avoidEjected && tier.Refs[i].Backend.Upstream.Ejected() {
			out |= 1 << i
		}
	}
	return out, inRegion
}

func errNoRegion() *apierr.Error {
	return &apierr.Error{Status: http.StatusForbidden, Code: apierr.CodeRegionNotAllowed, Message: "No backend for this model is in a region this request may use."}
}

func errNoBackend() *apierr.Error {
	return &apierr.Error{Status: http.StatusServiceUnavailable, Code: apierr.CodeUpstreamUnavailable, Message: "No backend is available for this model right now."}
}

// allEjected reports whether every candidate of the route is ejected.
func allEjected(rt *route.Route) bool {
	for ti := range rt.Tiers {
		for i := range rt.Tiers[ti].Refs {
			if !rt.Tiers[ti].Refs[i].Backend.Upstream.Ejected() {
				return false
			}
		}
	}
	return true
}

// health records an attempt's outcome for outlier detection: connection failures, 5xx and
// timeouts count against the Backend; a 429 (it is alive, and busy) and a client that
// left count neither way.
func (g *Gateway) health(h *outlier.Detector, ex *exchange.Exchange, o outcome, kind failKind) {
	failed := false
	if o == fallBack {
		if kind == fail429 {
			g.metrics.Attempt(ex.Backend, "throttled")
			h.Release()
			return
		}
		failed = true
	} else {
		switch ex.Code {
		case apierr.CodeClientClosed:
			h.Release()
			return
		case apierr.CodeUpstreamTimeout, apierr.CodeUpstreamError, apierr.CodeUpstreamUnavailable:
			failed = true
		case apierr.CodeProcessorFailed, apierr.CodeInternal:
			// the gateway's own failure, not the Backend's
		default:
			failed = ex.Status >= 500 && ex.Status != http.StatusNotImplemented
		}
	}
	if !failed {
		g.metrics.Attempt(ex.Backend, "success")
		h.Success()
		return
	}
	g.metrics.Attempt(ex.Backend, "failure")
	if h.Failure() {
		g.metrics.Ejected(ex.Backend)
		g.log.Warn("backend ejected", "backend", ex.Backend, "pool_endpoint", ex.PoolEndpoint, "until", h.Status().Until.Format(time.RFC3339))
	}
}

// retryAfter reads how long a 429 asks to wait: retry-after-ms (OpenAI), else
// Retry-After in seconds or as an HTTP date; 0 when absent or unreadable.
func retryAfter(h http.Header) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// backoff waits before retry number ex.Attempts: the policy's jittered backoff, or a
// 429's Retry-After when that is longer and within the policy's max (a longer one moved
// on to another candidate, which is tried without waiting). It reports false, having
// answered, when the request ended while waiting.
func (g *Gateway) backoff(ctx context.Context, w *recorder, ex *exchange.Exchange, pol *route.Retry, last *failure) bool {
	d := pol.Backoff(ex.Attempts)
	if last.kind == fail429 {
		if last.retryAfter > pol.Max {
			return true
		}
		d = max(d, last.retryAfter)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	}
	if context.Cause(ctx) == errRequestTimeout {
		g.fail(w, ex, timeoutError(ctx, nil))
	} else {
		ex.Status, ex.Code = 499, apierr.CodeClientClosed
	}
	return false
}

// attempt sends the exchange to one backend; for a pool, to the endpoint it picks (set in
// *picked, for the caller to release), avoiding the endpoints in failed.
func (g *Gateway) attempt(ctx context.Context, w *recorder, ex *exchange.Exchange, rt *route.Route, ref *route.Ref, run *payload.Run, last *failure, failed []*picker.Endpoint, picked **picker.Endpoint) (o outcome) {
	be := ref.Backend
	up := be.Upstream
	beginAttempt(ex, ref)
	ex.Output = ex.Output[:0]
	ex.Usage = exchange.Usage{}
	if e := prepare(ex, be.Adapter); e != nil {
		g.fail(w, ex, e)
		return answered
	}
	if ex.IngressEndpoint == exchange.EndpointCountTokens && translated(ex, be.Adapter) {
		body := countTokensLocally(ex)
		w.Header()["Content-Type"] = jsonContentType
		ex.Status = http.StatusOK
		w.WriteHeader(http.StatusOK)
		w.Write(body)
		return answered
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := be.Adapter.NewRequest(actx, ex, provider.Target{BaseURL: up.BaseURL, Model: ex.UpstreamModel})
	if err != nil {
		var ae *apierr.Error
		if !errors.As(err, &ae) {
			ae = &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The request cannot be sent to this model's backend."}
		}
		g.fail(w, ex, ae)
		return answered
	}
	if up.Pool != nil {
		ep := pickEndpoint(ex, up, failed)
		if ep == nil {
			*last = failure{err: &apierr.Error{Status: http.StatusServiceUnavailable, Code: apierr.CodeUpstreamUnavailable, Message: "No server of this model's pool is available right now."}, kind: failConnect}
			return fallBack
		}
		*picked = ep
		ex.PoolEndpoint = ep.Address()
		req.URL.Host, req.Host = ep.Address(), ep.Address()
		// The endpoint-picker protocol's header, as an Inference Extension data plane
		// would pass it on.
		req.Header["X-Gateway-Destination-Endpoint"] = []string{ep.Address()}
	}
	if end := g.startAttemptSpan(ctx, req, ex); end != nil {
		defer func() { end(o) }()
	}
	// One watchdog bounds the wait for headers (firstByte), then for the first body byte
	// (the route's firstToken, else idle), then every silence between reads (idle).
	wd := newWatchdog(up.Timeouts.FirstByte, cancel)
	defer wd.stop()
	resp, err := up.Transport.RoundTrip(req)
	if err != nil {
		return g.transportFailure(ctx, actx, w, ex, rt, err, last)
	}
	defer resp.Body.Close()
	next := up.Timeouts.Idle
	if rt.FirstTokenTimeout > 0 {
		next = rt.FirstTokenTimeout
	}
	wd.arm(next, up.Timeouts.Idle)
	body := wd.reader(resp.Body)

	throttled := resp.StatusCode == http.StatusTooManyRequests && rt.Retry != nil && rt.Retry.On429
	if resp.StatusCode >= 500 || throttled {
		// Kept, in the client's wire, to answer with if no other backend does better.
		b, _ := io.ReadAll(io.LimitReader(body, 1<<20))
		ans, err := be.Adapter.Complete(ex, resp.StatusCode, resp.Header, b)
		if err != nil {
			ans = provider.Answer{Status: resp.StatusCode, Body: b}
		}
		ans = clientAnswer(ex, be.Adapter, ans)
		h := resp.Header.Clone()
		for k, v := range ans.Header {
			h[k] = v
		}
		*last = failure{status: ans.Status, header: h, body: ans.Body, kind: fail5xx}
		if throttled {
			last.kind, last.retryAfter = fail429, retryAfter(resp.Header)
		}
		return fallBack
	}
	if ex.Stream && resp.StatusCode == http.StatusOK && !isJSON(resp.Header) {
		return g.stream(ctx, actx, w, ex, rt, be, resp, body, run, last)
	}
	buf := responsePool.Get().(*bytes.Buffer)
	defer releaseResponse(buf)
	_, err = io.Copy(buf, io.LimitReader(body, g.opts.MaxResponseBytes+1))
	if err != nil {
		return g.transportFailure(ctx, actx, w, ex, rt, brokenBody{err}, last)
	}
	if int64(buf.Len()) > g.opts.MaxResponseBytes {
		g.fail(w, ex, &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream answer is too large."})
		return answered
	}
	ans, err := be.Adapter.Complete(ex, resp.StatusCode, resp.Header, buf.Bytes())
	if err == nil {
		ans = clientAnswer(ex, be.Adapter, ans)
	}
	if err != nil {
		g.fail(w, ex, &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream answer could not be read."})
		return answered
	}
	h := w.Header()
	provider.ResponseHeaders(h, resp.Header)
	for k, v := range ans.Header {
		h[k] = v
	}
	if ans.Status < 300 && run.Responding() {
		n := len(run.Findings)
		body, e := run.Answer(ctx, ans.Status, h, ans.Body)
		if e != nil {
			g.fail(w, ex, e)
			return answered
		}
		ans.Body = body
		if len(run.Findings) > n {
			h.Set("X-Sluice-Flags", payload.FlagsHeader(run.Findings))
		}
	}
	h["Content-Length"] = []string{itoa(len(ans.Body))}
	ex.Status = ans.Status
	if ans.Status >= 400 {
		ex.Code = answerCode(ans.Body)
	}
	ex.FirstByte = time.Since(ex.Started)
	w.WriteHeader(ans.Status)
	w.Write(ans.Body)
	return answered
}

// beginAttempt records on the exchange which Backend, model and price an attempt uses.
func beginAttempt(ex *exchange.Exchange, ref *route.Ref) {
	be := ref.Backend
	ex.Backend, ex.Provider, ex.Price = be.Ref, string(be.Schema), be.Price
	if ref.Price != nil {
		ex.Price = ref.Price
	}
	ex.UpstreamModel = ex.Model
	if ref.Model != "" {
		ex.UpstreamModel = ref.Model
	}
	ex.Attempts++
}

// timeoutError names the timeout that ended an attempt: the route's request timeout, or
// the attempt's watchdog phase (answer headers, first body byte, silence between reads).
func timeoutError(ctx, actx context.Context) *apierr.Error {
	if context.Cause(ctx) == errRequestTimeout {
		return &apierr.Error{Status: http.StatusGatewayTimeout, Code: apierr.CodeRequestTimeout, Message: "The request did not complete within the route's request timeout."}
	}
	var cause error
	if actx != nil {
		cause = context.Cause(actx)
	}
	switch cause {
	case errFirstTokenTimeout:
		return &apierr.Error{Status: http.StatusGatewayTimeout, Code: apierr.CodeFirstTokenTimeout, Message: "The upstream sent no answer within the first-token timeout."}
	case errIdleTimeout:
		return &apierr.Error{Status: http.StatusGatewayTimeout, Code: apierr.CodeIdleTimeout, Message: "The upstream stopped sending for longer than the idle timeout."}
	}
	return &apierr.Error{Status: http.StatusGatewayTimeout, Code: apierr.CodeUpstreamTimeout, Message: "The upstream did not answer in time."}
}

// transportFailure classifies an error before any byte reached the client.
func (g *Gateway) transportFailure(ctx, actx context.Context, w *recorder, ex *exchange.Exchange, rt *route.Route, err error, last *failure) outcome {
	switch {
	case ctx.Err() != nil && context.Cause(ctx) != errRequestTimeout:
		ex.Status, ex.Code = 499, apierr.CodeClientClosed
		return answered
	case isCredential(err):
		// Another Backend has other credentials: always worth a fallback.
		*last = failure{err: &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamAuthFailed, Message: "The gateway could not obtain its credentials for the upstream provider."}, kind: failConnect}
		g.log.Error("upstream credential failed", "request_id", ex.ID, "backend", ex.Backend, "error", err.Error())
		return fallBack
	case isDial(err):
		// a connection that could not be made (refused, unreachable, or timed out while
		// connecting) is a connection failure: fall back
		if isTimeout(err) {
			*last = failure{err: &apierr.Error{Status: http.StatusGatewayTimeout, Code: apierr.CodeConnectTimeout, Message: "The upstream could not be connected to in time."}, kind: failConnect}
			g.log.Warn("upstream attempt failed", "request_id", ex.ID, "backend", ex.Backend, "error", err.Error())
			return fallBack
		}
	case context.Cause(ctx) == errRequestTimeout:
		g.fail(w, ex, timeoutError(ctx, actx))
		return answered
	case context.Cause(actx) != nil, isTimeout(err):
		e := timeoutError(ctx, actx)
		if rt.Retry != nil && rt.Retry.OnTimeout {
			*last = failure{err: e, kind: failTimeout}
			g.log.Warn("upstream attempt timed out", "request_id", ex.ID, "backend", ex.Backend)
			return fallBack
		}
		g.fail(w, ex, e)
		return answered
	}
	e := &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamUnavailable, Message: "The upstream could not be reached."}
	if _, broken := err.(brokenBody); broken {
		e = &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream answer broke off before it was complete."}
	}
	// Nothing reached the client yet, so another attempt is safe (a connection failure).
	*last = failure{err: e, kind: failConnect}
	g.log.Warn("upstream attempt failed", "request_id", ex.ID, "backend", ex.Backend, "error", err.Error())
	return fallBack
}

// brokenBody is an error reading an answer's body after its headers arrived.
type brokenBody struct{ error }

func (b brokenBody) Unwrap() error { return b.error }

func isCredential(err error) bool {
	var ce *egress.CredentialError
	return errors.As(err, &ce)
}

func isDial(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isJSON tells a whole JSON answer from a stream (SSE, or a provider's binary framing).
func isJSON(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "application/json")
}

// stream relays a streamed answer event by event, flushing each. Headers go out with the
// first event, so a stream that fails before its first event can still fall back.
func (g *Gateway) stream(ctx, actx context.Context, w *recorder, ex *exchange.Exchange, rt *route.Route, be *route.Backend, resp *http.Response, body io.Reader, run *payload.Run, last *failure) outcome {
	s := clientStream(ex, be.Adapter, be.Adapter.Stream(ex, resp.Header, body))
	s = run.Stream(s, resp.StatusCode, resp.Header, func(e *apierr.Error) []byte { return streamError(ex, e) })
	defer s.Close()
	started := false
	for {
		ev, err := s.Next()
		if err != nil {
			if err == io.EOF {
				if !started {
					g.startStream(w, ex, resp)
				}
				return answered
			}
			if !started {
				return g.transportFailure(ctx, actx, w, ex, rt, err, last)
			}
			g.abortStream(ctx, actx, w, ex, err)
			return answered
		}
		if !started {
			g.startStream(w, ex, resp)
			started = true
		}
		if _, err := w.Write(ev); err != nil {
			ex.Code = apierr.CodeClientClosed
			return answered
		}
		w.Flush()
		if terminal(ev) {
			// The client has the whole answer and may hang up at once; reading on to the
			// upstream's end would then fail and mark a complete stream as abandoned.
			return answered
		}
	}
}

var (
	doneEvent        = []byte("data: [DONE]")
	messageStopEvent = []byte("event: message_stop")
)

// terminal reports whether ev ends a stream in the client's wire: OpenAI's [DONE], or
// Anthropic's message_stop.
func terminal(ev []byte) bool {
	return bytes.HasPrefix(ev, doneEvent) || bytes.HasPrefix(ev, messageStopEvent)
}

func (g *Gateway) startStream(w *recorder, ex *exchange.Exchange, resp *http.Response) {
	h := w.Header()
	provider.ResponseHeaders(h, resp.Header)
	// Whatever the upstream's framing (SSE, AWS event-stream), the client gets SSE.
	h["Content-Type"] = eventStreamType
	delete(h, "Content-Encoding")
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = no
	ex.Status = resp.StatusCode
	ex.FirstByte = time.Since(ex.Started)
	w.WriteHeader(resp.StatusCode)
}

var (
	eventStreamType = []string{"text/event-stream; charset=utf-8"}
	noCache         = []string{"no-cache"}
	no              = []string{"no"}
)

// abortStream ends a stream that broke after bytes reached the client: an error event in
// OpenAI's stream format, never a clean end that looks like success.
func (g *Gateway) abortStream(ctx, actx context.Context, w *recorder, ex *exchange.Exchange, err error) {
	if ctx.Err() != nil && context.Cause(ctx) != errRequestTimeout {
		ex.Code = apierr.CodeClientClosed
		return
	}
	e := &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream stream broke off."}
	if context.Cause(ctx) == errRequestTimeout || context.Cause(actx) != nil {
		e = timeoutError(ctx, actx)
	}
	ex.Code = e.Code
	g.log.Warn("stream aborted", "request_id", ex.ID, "backend", ex.Backend, "error", err.Error())
	w.Write(streamError(ex, e))
	w.Flush()
}

var responsePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func releaseResponse(b *bytes.Buffer) {
	if b.Cap() > 4<<20 {
		return
	}
	b.Reset()
	responsePool.Put(b)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	if n == 0 {
		return "0"
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// answerCode reads the stable code of an error answer (OpenAI's or Anthropic's shape:
// error.code), for the access log; upstream_error when it has none.
func answerCode(body []byte) string {
	if e, ok := jsonscan.Get(body, "error"); ok {
		if c, ok := jsonscan.Get(e, "code"); ok {
			if s, ok := jsonscan.String(c); ok && s != "" && len(s) <= 64 {
				return s
			}
		}
	}
	return apierr.CodeUpstreamError
}
