package payload

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/payload/external"
)

// errTimeout is an in-process step that overran its timeout.
var errTimeout = errors.New("timeout")

// StepError is a step that failed; FailOpen steps are skipped, and logged.
type StepError struct {
	Processor string
	Err       error
}

// Run is one exchange's pass through the processors. The gateway gets one with NewRun,
// keeps it for the whole exchange (request, answer, stream) and hands it back with Release.
type Run struct {
	Ex *exchange.Exchange
	// Client is the caller's address: the anomaly key when there is no principal.
	Client string
	// Context is the exchange's; external sessions live in it.
	Context context.Context
	// Decode re-reads the request after a processor changed its body.
	Decode func(ex *exchange.Exchange) *apierr.Error
	// Findings are the actions taken, in order.
	Findings []Finding
	// Errors are the steps that failed open.
	Errors []StepError

	deadline time.Time
	ctx      context.Context // of the step running, for external calls
	segs     []content.Segment
	segsOK   bool
	decoded  []byte   // the segments' texts, decoded once for every step
	spans    [][2]int // each segment's text in decoded; {-1,-1} until decoded
	text     []byte
	out      []byte
	edits    []content.Edit
	respond  []*Step
	sessions []session
	done     []*Step
	phase    Phase
	stream   streamState
}

type session struct {
	step   *Step
	s      external.Session
	broken bool // a call failed; the step is skipped (FailOpen) for the rest of the exchange
}

var runPool = sync.Pool{New: func() any { return new(Run) }}

// NewRun returns a Run for ex.
func NewRun(ctx context.Context, ex *exchange.Exchange, client string, decode func(*exchange.Exchange) *apierr.Error) *Run {
	r := runPool.Get().(*Run)
	r.Context, r.Ex, r.Client, r.Decode = ctx, ex, client, decode
	return r
}

// Release closes external sessions and returns r to the pool.
func (r *Run) Release() {
	if r == nil {
		return
	}
	for _, s := range r.sessions {
		s.s.Close()
	}
	clear(r.sessions)
	st := r.stream
	st.reset()
	*r = Run{
		Findings: r.Findings[:0], Errors: r.Errors[:0], segs: r.segs[:0], text: r.text[:0], out: r.out[:0],
		decoded: r.decoded[:0], spans: r.spans[:0],
		edits: r.edits[:0], respond: r.respond[:0], sessions: r.sessions[:0], done: r.done[:0], stream: st,
	}
	runPool.Put(r)
}

// Request runs chain's request-side steps. It returns the error to answer with when a
// step blocks, throttles or fails closed; nil lets the request go on.
func (r *Run) Request(ctx context.Context, c *Chain, p Phase) *apierr.Error {
	if c.Empty() {
		return nil
	}
	r.phase = p
	mcp := r.Ex.IngressEndpoint == exchange.EndpointMCP
	for _, st := range c.Steps {
		if (st.OnResponse || mcp && st.inspectsMCPResults()) && !r.responds(st) {
			r.respond = append(r.respond, st)
		}
		if !st.OnRequest {
			continue
		}
		st.Stats.Runs.Add(1)
		v, err := r.runStep(ctx, st)
		if err != nil {
			var ae *apierr.Error
			if errors.As(err, &ae) {
				return ae // the client's own request cannot be read
			}
			st.Stats.Failed.Add(1)
			if st.FailOpen {
				r.Errors = append(r.Errors, StepError{st.Name, err})
				continue
			}
			return failed(st, err)
		}
		if e := r.apply(st, v, false); e != nil {
			return e
		}
	}
	return nil
}

// inspectsMCPResults reports whether a request-side text step also reads an MCP server's
// answers: for MCP, tool results are the Tool text of the Inspect setting (where indirect
// prompt injection arrives), so a processor inspecting Tool text checks them without a
// Response scope.
func (st *Step) inspectsMCPResults() bool {
	_, text := st.impl.(*textStep)
	return text && st.OnRequest && st.Parts&content.Tool != 0
}

func (r *Run) responds(st *Step) bool {
	for _, x := range r.respond {
		if x == st {
			return true
		}
	}
	return false
}

func (r *Run) runStep(ctx context.Context, st *Step) (verdict, error) {
	r.deadline = time.Now().Add(st.Timeout)
	sctx, cancel := ctx, context.CancelFunc(nil)
	if _, ext := st.impl.(*extStep); ext {
		sctx, cancel = context.WithTimeout(ctx, st.Timeout)
	}
	r.ctx = sctx
	v, err := st.impl.request(st, r)
	if cancel != nil {
		cancel()
	}
	r.ctx = nil
	return v, err
}

// expired reports whether the running step overran its timeout; in-process steps check
// it between messages.
func (r *Run) expired() bool { return time.Now().After(r.deadline) }

// apply records a verdict and turns a rejection into the client's error.
func (r *Run) apply(st *Step, v verdict, response bool) *apierr.Error {
	switch v.action {
	case Pass:
		return nil
	case Flag:
		st.Stats.Flagged.Add(1)
	case Redact:
		st.Stats.Redacted.Add(1)
	case Block, Throttle:
		st.Stats.Blocked.Add(1)
	}
	r.Findings = append(r.Findings, Finding{Processor: st.Name, Action: v.action, Reason: v.reason, Response: response})
	switch v.action {
	case Block:
		return blocked(st, v, response)
	case Throttle:
		e := &apierr.Error{Status: http.StatusTooManyRequests, Code: apierr.CodeThrottled,
			Message: "Too many suspicious requests; retry later (processor '" + st.Name + "')."}
		if v.retryAfter > 0 {
			e.Header = http.Header{"Retry-After": {strconv.FormatInt(apierr.RetryAfterSeconds(v.retryAfter), 10)}}
		}
		return e
	}
	return nil
}

func blocked(st *Step, v verdict, response bool) *apierr.Error {
	what := "The request was"
	if response {
		what = "The answer was"
	}
	msg := what + " blocked by payload processor '" + st.Name + "'"
	if v.reason != "" {
		msg += " (" + v.reason + ")"
	}
	status := http.StatusBadRequest
	if v.status >= 400 && v.status <= 599 {
		status = v.status
	}
	return &apierr.Error{Status: status, Code: apierr.CodeContentBlocked, Message: msg + "."}
}

func failed(st *Step, err error) *apierr.Error {
	why := "failed"
	if errors.Is(err, errTimeout) || errors.Is(err, context.DeadlineExceeded) {
		why = "timed out"
	}
	return &apierr.Error{Status: http.StatusServiceUnavailable, Code: apierr.CodeProcessorFailed,
		Message: "Payload processor '" + st.Name + "' " + why + "; the request was not sent."}
}

// segments returns the text segments of the request body, read once until it changes.
func (r *Run) segments() ([]content.Segment, error) {
	if r.segsOK {
		return r.segs, nil
	}
	var err error
	r.segs, err = content.Request(r.Ex.IngressEndpoint, r.Ex.Body, r.segs[:0])
	if err != nil {
		return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "messages",
			Message: "Each message must be an object."}
	}
	r.segsOK = true
	r.decoded = r.decoded[:0]
	r.spans = r.spans[:0]
	for range r.segs {
		r.spans = append(r.spans, [2]int{-1, -1})
	}
	return r.segs, nil
}

// segmentText returns request segment i decoded; each is decoded once per body, however
// many steps read it.
func (r *Run) segmentText(i int) []byte {
	sp := r.spans[i]
	if sp[0] < 0 {
		start := len(r.decoded)
		r.decoded = content.Text(r.decoded, r.Ex.Body, r.segs[i])
		sp = [2]int{start, len(r.decoded)}
		r.spans[i] = sp
	}
	return r.decoded[sp[0]:sp[1]]
}

// setBody replaces the request body after a processor changed it and reads it again.
func (r *Run) setBody(body []byte) error {
	ex := r.Ex
	model := ex.Model
	ex.Body, ex.IngressBody = body, body
	r.segsOK = false
	if r.Decode != nil {
		if e := r.Decode(ex); e != nil {
			return errors.New("the changed body is not a valid request: " + e.Code)
		}
	}
	if ex.Model != model {
		// Routing, access rules and rate limits were decided on the client's model.
		return errors.New("a processor may not change the model")
	}
	return nil
}

// Done tells the steps that track traffic how the exchange ended. Call it once, after
// usage is settled.
func (r *Run) Done() {
	for _, st := range r.done {
		if d, ok := st.impl.(outcomeTracker); ok {
			d.outcome(r)
		}
	}
}

type outcomeTracker interface{ outcome(r *Run) }

// principalKey is who anomaly baselines are kept for.
func (r *Run) principalKey() string {
	if p := r.Ex.Principal; p != nil && p.Subject != "" {
		return "s:" + p.Subject
	}
	return "c:" + r.Client
}

// reasons collects up to three distinct reasons.
type reasons struct {
	n   int
	buf [3]string
}

func (rs *reasons) add(s string) {
	if s == "" {
		return
	}
	for _, x := range rs.buf[:rs.n] {
		if x == s {
			return
		}
	}
	if rs.n < len(rs.buf) {
		rs.buf[rs.n] = s
		rs.n++
	}
}

func (rs *reasons) String() string { return strings.Join(rs.buf[:rs.n], " ") }
