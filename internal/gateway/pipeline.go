package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/limits"
	"github.com/sluice-gateway/sluice/internal/payload"
	"github.com/sluice-gateway/sluice/internal/picker"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/route"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// This file is the pipeline for an external data plane: a proxy (Envoy, through `sluice
// extproc`) carries the bytes, the gateway decides and rewrites. It runs post's stages in
// post's order with the same functions; what only a sender can do (attempts, fallback,
// retries, timeouts, the response cache) stays with the data plane or is not done.

// Proxied is one inference request carried by an external data plane. Its methods are
// called in order, from one goroutine: Request once, then ResponseHeaders and
// ResponseBody when the upstream answers, and Finish always, exactly once, last.
type Proxied struct {
	g         *Gateway
	snap      *translate.Snapshot
	ex        *exchange.Exchange
	r         *http.Request // method, path, header, caller address: for logs, CEL, spans
	span      trace.Span
	rw        *recorder
	body      *bodyBuffer
	run       *payload.Run
	admission *limits.Admission
	be        *route.Backend
	ep        *picker.Endpoint
	acquired  bool
	answered  bool // the upstream's answer headers arrived
	streaming bool
	status    int
	upHeader  http.Header
	whole     bytes.Buffer
	pump      *pump
	finished  bool
}

// Upstream is how the data plane must send a request.
type Upstream struct {
	// Backend is the chosen Backend's ref ("Backend/namespace/name").
	Backend string
	Method  string
	// Scheme and Host (host[:port]) are where the request goes: the Backend's URL, or the
	// pool endpoint's address. Path is the path with its query.
	Scheme, Host, Path string
	// Header is the complete header to send: the client's forwardable headers, the
	// adapter's, the Backend's credential, Content-Length. Client headers not in it
	// (credentials among them) must be removed.
	Header http.Header
	Body   []byte
	// Endpoint is the pool endpoint ("ip:port") of a pool Backend, else empty.
	Endpoint string
}

// Reply is a whole answer the data plane sends to the client itself: an error, or an
// answer the gateway has locally.
type Reply struct {
	Status int
	Header http.Header
	Body   []byte
	// Code is the stable error code of an error reply, else empty.
	Code string
}

// MaxRequestBytes is the request body limit.
func (g *Gateway) MaxRequestBytes() int64 { return g.opts.MaxRequestBytes }

// replyWriter records an answer written through http.ResponseWriter as a Reply.
type replyWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *replyWriter) Header() http.Header { return w.h }
func (w *replyWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *replyWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

func (w *replyWriter) reply() *Reply {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &Reply{Status: w.status, Header: w.h, Body: w.body.Bytes(), Code: errorCode(w.status, w.body.Bytes())}
}

func errorCode(status int, body []byte) string {
	if status < 400 {
		return ""
	}
	return answerCode(body)
}

func errorReply(e *apierr.Error, wire apierr.Wire) *Reply {
	w := &replyWriter{h: http.Header{}}
	e.Write(w, wire)
	r := w.reply()
	r.Code = e.Code
	return r
}

// ingressPaths are the inference endpoints: ServeHTTP and Proxy dispatch by them.
var ingressPaths = map[string]struct {
	ep   exchange.Endpoint
	wire apierr.Wire
}{
	"/v1/chat/completions":      {exchange.EndpointChat, apierr.OpenAI},
	"/v1/completions":           {exchange.EndpointCompletions, apierr.OpenAI},
	"/v1/embeddings":            {exchange.EndpointEmbeddings, apierr.OpenAI},
	"/v1/messages":              {exchange.EndpointMessages, apierr.Anthropic},
	"/v1/messages/count_tokens": {exchange.EndpointCountTokens, apierr.Anthropic},
}

// Proxy starts a request the data plane received: method, path (with query), the client's
// header (canonical keys), the caller's address ("ip:port" or "ip"; may be empty). An
// inference request is authenticated and returned as a Proxied; anything else (the model
// list, health, unknown paths, a refusal) is answered with a Reply, as ServeHTTP would.
func (g *Gateway) Proxy(ctx context.Context, method, path string, header http.Header, remoteAddr string) (*Proxied, *Reply) {
	r, err := http.NewRequestWithContext(ctx, method, path, http.NoBody)
	if err != nil {
		return nil, errorReply(&apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The request path is invalid."}, apierr.OpenAI)
	}
	r.Header, r.RemoteAddr = header, remoteAddr
	in, ok := ingressPaths[r.URL.Path]
	if !ok || method != http.MethodPost {
		w := &replyWriter{h: http.Header{}}
		g.ServeHTTP(w, r)
		return nil, w.reply()
	}
	ex := exchangePool.Get().(*exchange.Exchange)
	ex.Started = time.Now()
	ex.Endpoint, ex.IngressEndpoint, ex.Ingress = in.ep, in.ep, in.wire
	ex.Header = header
	ex.ID = requestID(r)
	g.metrics.Begin()
	r, span := g.startSpan(r)
	p := &Proxied{g: g, ex: ex, r: r, span: span, rw: &recorder{ResponseWriter: &replyWriter{h: http.Header{}}}}
	p.rw.Header()["X-Request-Id"] = []string{ex.ID}
	st := g.state.Load()
	if st == nil {
		return p, p.fail(notReady)
	}
	p.snap = st.snap
	if pol := p.snap.Policy; pol != nil {
		pr, e, why := pol.Authenticate(ctx, header)
		if e != nil {
			pol.CountAuthenticationFailure()
			g.audit(ex, "", string(why), e.Code)
			return p, p.fail(e)
		}
		ex.Principal = pr
	}
	return p, nil
}

// fail records e as the answer and renders it in the client's wire, with the headers
// gathered so far (request id, rate limits).
func (p *Proxied) fail(e *apierr.Error) *Reply {
	p.ex.Status, p.ex.Code = e.Status, e.Code
	rep := errorReply(e, p.ex.Ingress)
	for k, v := range p.rw.Header() {
		if _, set := rep.Header[k]; !set {
			rep.Header[k] = v
		}
	}
	p.rw.wrote = true
	return rep
}

// Request takes the whole request body and decides: authorization, routing, PreRouting
// processors, rate-limit admission, PostRouting processors, the Backend (the first
// candidate by priority and weight that is in region, not ejected and has a free slot; a
// pool's endpoint by its picker), the body in the Backend's wire, the Backend's
// credential. A refusal, or an answer the gateway has itself, is a Reply.
func (p *Proxied) Request(body []byte) (*Upstream, *Reply) {
	ex, g, ctx := p.ex, p.g, p.r.Context()
	r := p.r
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	var gerr *apierr.Error
	if p.body, gerr = readBody(r, g.opts.MaxRequestBytes); gerr != nil {
		return nil, p.fail(gerr)
	}
	r.Body = http.NoBody
	ex.Body, ex.IngressBody = p.body.b, p.body.b
	if gerr := decodeRequest(ex, ex.Body); gerr != nil {
		return nil, p.fail(gerr)
	}
	pol := p.snap.Policy
	if pol != nil {
		d := pol.Authorize(ex.Principal, &auth.Request{
			Model: ex.Model, Endpoint: ex.IngressEndpoint.RuleName(), Stream: ex.Stream,
			MaxTokens: ex.MaxTokens, Header: r.Header, Body: ex.IngressBody,
		})
		if !d.Allowed {
			g.audit(ex, d.Rule, d.Reason.String(), d.Error().Code)
			return nil, p.fail(d.Error())
		}
		ex.Regions = d.Regions
	}
	rt := p.snap.Routes.Lookup(ex.Model)
	if rt == nil {
		return nil, p.fail(modelNotFound(ex.Model))
	}
	ex.Route = rt.Ref
	pre := p.snap.Payload.Chain(payload.PreRouting, rt.Ref)
	postRouting := p.snap.Payload.Chain(payload.PostRouting, rt.Ref)
	if !pre.Empty() || !postRouting.Empty() {
		p.run = payload.NewRun(ctx, ex, clientAddr(r), redecode)
		if e := p.run.Request(ctx, pre, payload.PreRouting); e != nil {
			return nil, p.fail(e)
		}
	}
	var lerr *apierr.Error
	if p.admission, lerr = p.snap.Limits.Admit(ctx, ex, rt.Ref, r.Header); lerr != nil {
		g.log.Info("rate limited", "request_id", ex.ID, "route", ex.Route, "code", lerr.Code, "message", lerr.Message)
		return nil, p.fail(lerr)
	}
	p.admission.SetHeaders(p.rw.Header())
	if over := p.admission.Shadowed(); over != nil {
		g.log.Info("rate limit exceeded in shadow mode", "request_id", ex.ID, "route", ex.Route, "rules", over)
	}
	if p.run != nil {
		if e := p.run.Request(ctx, postRouting, payload.PostRouting); e != nil {
			return nil, p.fail(e)
		}
		if len(p.run.Findings) > 0 {
			p.rw.Header().Set("X-Sluice-Flags", payload.FlagsHeader(p.run.Findings))
		}
	}
	ref, e := p.pick(rt)
	if e != nil {
		return nil, p.fail(e)
	}
	be := ref.Backend
	up := be.Upstream
	beginAttempt(ex, ref)
	if e := prepare(ex, be.Adapter); e != nil {
		return nil, p.fail(e)
	}
	if ex.IngressEndpoint == exchange.EndpointCountTokens && translated(ex, be.Adapter) {
		ex.Status = http.StatusOK
		p.rw.wrote = true
		h := p.rw.Header().Clone()
		h["Content-Type"] = jsonContentType
		return nil, &Reply{Status: http.StatusOK, Header: h, Body: countTokensLocally(ex)}
	}
	req, err := be.Adapter.NewRequest(ctx, ex, provider.Target{BaseURL: up.BaseURL, Model: ex.UpstreamModel})
	if err != nil {
		var ae *apierr.Error
		if !errors.As(err, &ae) {
			ae = &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The request cannot be sent to this model's backend."}
		}
		return nil, p.fail(ae)
	}
	if up.Pool != nil {
		ep := pickEndpoint(ex, up, nil)
		if ep == nil {
			return nil, p.fail(&apierr.Error{Status: http.StatusServiceUnavailable, Code: apierr.CodeUpstreamUnavailable, Message: "No server of this model's pool is available right now."})
		}
		p.ep = ep
		ex.PoolEndpoint = ep.Address()
		req.URL.Host, req.Host = ep.Address(), ep.Address()
		req.Header["X-Gateway-Destination-Endpoint"] = []string{ep.Address()}
	}
	if err := up.Prepare(req); err != nil {
		g.log.Error("upstream credential failed", "request_id", ex.ID, "backend", ex.Backend, "error", err.Error())
		return nil, p.fail(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamAuthFailed, Message: "The gateway could not obtain its credentials for the upstream provider."})
	}
	var out []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			out, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				out = nil
			}
		}
	}
	if out == nil && req.Body != nil {
		out, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	h := req.Header
	h["Content-Length"] = []string{itoa(len(out))}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	return &Upstream{
		Backend: be.Ref, Method: req.Method, Scheme: req.URL.Scheme, Host: host, Path: req.URL.RequestURI(),
		Header: h, Body: out, Endpoint: ex.PoolEndpoint,
	}, nil
}

// pick chooses the Backend as forward's first attempt would: tiers by priority, a weighted
// pick among the refs in region, not ejected (unless all are) and with a free slot.
func (p *Proxied) pick(rt *route.Route) (*route.Ref, *apierr.Error) {
	ex := p.ex
	avoidEjected := !allEjected(rt)
	inRegion := false
	for ti := range rt.Tiers {
		tier := &rt.Tiers[ti]
		tried, anyInRegion := outOfPlay(rt, tier, ex.Regions, avoidEjected)
		inRegion = inRegion || anyInRegion
		for {
			i := tier.Pick(func(i int) bool { return tried&(1<<i) != 0 })
			if i < 0 {
				break
			}
			tried |= 1 << i
			ref := &tier.Refs[i]
			up := ref.Backend.Upstream
			if avoidEjected && !up.Health.Admit() {
				continue
			}
			if !up.TryAcquire() {
				up.Health.Release()
				continue
			}
			p.be, p.acquired = ref.Backend, true
			return ref, nil
		}
	}
	if !inRegion {
		return nil, errNoRegion()
	}
	return nil, errNoBackend()
}

// ResponseHeaders takes the upstream answer's status and header (canonical keys) and
// returns the header the client must get instead, and whether the answer is a stream
// (then its body goes through ResponseBody chunk by chunk and comes out as the client's
// SSE events); else the answer is whole and ResponseBody returns it at its end. The
// header of a whole answer has no Content-Length: its body may change.
func (p *Proxied) ResponseHeaders(status int, header http.Header) (http.Header, bool) {
	ex := p.ex
	p.answered, p.status, p.upHeader = true, status, header
	ex.FirstByte = time.Since(ex.Started)
	ex.Status = status
	p.rw.wrote = true
	h := p.rw.Header().Clone()
	provider.ResponseHeaders(h, header)
	if p.be == nil {
		return h, false
	}
	p.streaming = ex.Stream && status == http.StatusOK && !isJSON(header)
	if !p.streaming {
		return h, false
	}
	h["Content-Type"] = eventStreamType
	delete(h, "Content-Encoding")
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = no
	a := p.be.Adapter
	run := p.run
	p.pump = startPump(func(body io.Reader) provider.Stream {
		s := clientStream(ex, a, a.Stream(ex, header, body))
		return run.Stream(s, status, header, func(e *apierr.Error) []byte { return streamError(ex, e) })
	}, ex, p.g)
	return h, true
}

// ResponseBody takes the next piece of the answer's body (end: the last). For a stream it
// returns the client's events this piece completed. For a whole answer it returns nil
// until the end, and then the answer as the client gets it: status, complete header, body.
func (p *Proxied) ResponseBody(chunk []byte, end bool) ([]byte, *Reply) {
	if p.streaming {
		return p.pump.feed(chunk, end), nil
	}
	if p.be == nil { // not an answer the gateway translates
		return chunk, nil
	}
	if int64(p.whole.Len()) <= p.g.opts.MaxResponseBytes {
		p.whole.Write(chunk)
	}
	if !end {
		return nil, nil
	}
	ex, g := p.ex, p.g
	if int64(p.whole.Len()) > g.opts.MaxResponseBytes {
		return nil, p.fail(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream answer is too large."})
	}
	a := p.be.Adapter
	ans, err := a.Complete(ex, p.status, p.upHeader, p.whole.Bytes())
	if err != nil {
		return nil, p.fail(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream answer could not be read."})
	}
	ans = clientAnswer(ex, a, ans)
	h := p.rw.Header().Clone()
	provider.ResponseHeaders(h, p.upHeader)
	for k, v := range ans.Header {
		h[k] = v
	}
	if ans.Status < 300 && p.run.Responding() {
		n := len(p.run.Findings)
		body, e := p.run.Answer(p.r.Context(), ans.Status, h, ans.Body)
		if e != nil {
			return nil, p.fail(e)
		}
		ans.Body = body
		if len(p.run.Findings) > n {
			h.Set("X-Sluice-Flags", payload.FlagsHeader(p.run.Findings))
		}
	}
	h["Content-Length"] = []string{itoa(len(ans.Body))}
	ex.Status = ans.Status
	code := ""
	if ans.Status >= 400 {
		ex.Code = answerCode(ans.Body)
		code = ex.Code
	}
	return nil, &Reply{Status: ans.Status, Header: h, Body: ans.Body, Code: code}
}

// Finish ends the request, whatever happened: a stream still running is ended (the client
// or the data plane left), usage is completed, the rate-limit admission settled, the
// Backend's slot and health recorded, metrics, the usage record, the access log. It is
// safe to call more than once; only the first call counts.
func (p *Proxied) Finish() {
	if p == nil || p.finished {
		return
	}
	p.finished = true
	g, ex := p.g, p.ex
	if p.pump != nil {
		if !p.pump.close() && ex.Code == "" {
			ex.Code = apierr.CodeClientClosed // the stream ended before its end
		}
	}
	if p.be != nil {
		up := p.be.Upstream
		h := up.Health
		if p.ep != nil {
			h = p.ep.Health()
		}
		if p.answered {
			g.health(h, ex, answered, failNone)
		} else {
			h.Release()
			if ex.Status == 0 {
				// The data plane never told of an answer: the client left, or the data
				// plane failed the request itself.
				ex.Status, ex.Code = 499, apierr.CodeClientClosed
			}
		}
		if p.ep != nil {
			p.ep.Done()
		}
		if p.acquired {
			up.Release()
		}
	}
	g.finish(p.r, ex, p.rw, p.admission, p.run, p.span, p.body)
	p.ex = nil
}

// pump runs a provider.Stream (a pull decoder reading an io.Reader) over body pieces that
// are pushed: feed hands it a piece and returns the events it completed once the decoder
// asks for more (or the stream ended). The decoder runs on its own goroutine; the two
// alternate strictly, handing over through channels, so the Exchange is never used by both
// at once.
type pump struct {
	in   chan piece
	idle chan struct{}
	done chan struct{}
	out  []byte
	// set by the decoder goroutine, read after a handover
	ended  bool // the stream reached its end (or failed)
	closed bool // close was called
}

type piece struct {
	b   []byte
	end bool
}

var errAbandoned = errors.New("stream abandoned")

func startPump(open func(io.Reader) provider.Stream, ex *exchange.Exchange, g *Gateway) *pump {
	p := &pump{in: make(chan piece), idle: make(chan struct{}), done: make(chan struct{})}
	go p.loop(open, ex, g)
	return p
}

// pumpReader is the decoder's io.Reader: it signals idle when it needs a piece it has not
// been given.
type pumpReader struct {
	p    *pump
	cur  []byte
	end  bool
	owe  bool // a piece was taken and its idle not yet signalled
	gone bool
}

func (r *pumpReader) Read(b []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.end {
			return 0, io.EOF
		}
		if r.gone {
			return 0, errAbandoned
		}
		if r.owe {
			r.owe = false
			r.p.idle <- struct{}{}
		}
		pc, ok := <-r.p.in
		if !ok {
			r.gone = true
			return 0, errAbandoned
		}
		r.cur, r.end, r.owe = pc.b, pc.end, true
	}
	n := copy(b, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (p *pump) loop(open func(io.Reader) provider.Stream, ex *exchange.Exchange, g *Gateway) {
	defer close(p.done)
	rd := &pumpReader{p: p}
	func() {
		defer func() {
			if v := recover(); v != nil {
				g.log.Error("panic decoding a stream", "request_id", ex.ID, "panic", v)
				ex.Code = apierr.CodeInternal
			}
		}()
		s := open(rd)
		defer s.Close()
		for {
			ev, err := s.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if rd.gone {
					ex.Code = apierr.CodeClientClosed
					return
				}
				e := &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream stream broke off."}
				ex.Code = e.Code
				g.log.Warn("stream aborted", "request_id", ex.ID, "backend", ex.Backend, "error", err.Error())
				p.out = append(p.out, streamError(ex, e)...)
				return
			}
			p.out = append(p.out, ev...)
		}
	}()
	p.ended = !rd.gone
	if rd.owe {
		p.idle <- struct{}{}
	}
	for range p.in { // pieces after the end are dropped
		p.idle <- struct{}{}
	}
}

// feed hands over one piece and returns the events completed since the last feed.
func (p *pump) feed(b []byte, end bool) []byte {
	if p.closed {
		return nil
	}
	p.in <- piece{b: b, end: end}
	<-p.idle
	out := p.out
	p.out = nil
	if end {
		p.close()
	}
	return out
}

// close stops the decoder and waits for it; it reports whether the stream had ended.
func (p *pump) close() bool {
	if !p.closed {
		p.closed = true
		close(p.in)
		<-p.done
	}
	return p.ended
}
