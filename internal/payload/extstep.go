package payload

import (
	"context"
	"errors"
	"net/http"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload/external"
)

// extStep calls an external processor (Envoy ext_proc or an HTTP webhook). One session
// per exchange carries the request and, with response scope, the answer.
type extStep struct {
	client external.Client
}

var errSessionBroken = errors.New("external processor session failed earlier in this exchange")

// session returns the exchange's session with st's processor, opening it on first use.
func (x *extStep) session(st *Step, r *Run) (*session, error) {
	for i := range r.sessions {
		if r.sessions[i].step == st {
			s := &r.sessions[i]
			if s.broken {
				return nil, errSessionBroken
			}
			return s, nil
		}
	}
	ex := r.Ex
	info := external.Info{RequestID: ex.ID, Model: ex.Model, Endpoint: ex.IngressEndpoint.String(), Route: ex.Route}
	if p := ex.Principal; p != nil {
		info.Subject, info.Team = p.Subject, p.Team
	}
	// The session lives as long as the exchange; each call has the step's timeout.
	sess, err := x.client.Open(r.base(), info)
	if err != nil {
		return nil, err
	}
	r.sessions = append(r.sessions, session{step: st, s: sess})
	return &r.sessions[len(r.sessions)-1], nil
}

// base is the context external sessions live in.
func (r *Run) base() context.Context {
	if r.Context != nil {
		return r.Context
	}
	return context.Background()
}

func (x *extStep) request(st *Step, r *Run) (verdict, error) {
	s, err := x.session(st, r)
	if err != nil {
		return verdict{}, err
	}
	ex := r.Ex
	res, err := s.s.RequestHeaders(r.ctx, ex.Header, http.MethodPost, endpointPath(ex.IngressEndpoint))
	if err != nil {
		s.broken = true
		return verdict{}, err
	}
	if v, stop := immediate(res); stop {
		return v, nil
	}
	res2, err := s.s.RequestBody(r.ctx, ex.Body)
	if err != nil {
		s.broken = true
		return verdict{}, err
	}
	if v, stop := immediate(res2); stop {
		return v, nil
	}
	// Apply only once both answers are in, so a failure changes nothing.
	applyHeaders(ex.Header, res)
	applyHeaders(ex.Header, res2)
	if res2.Body != nil {
		if err := r.setBody(res2.Body); err != nil {
			return verdict{}, err
		}
	}
	return verdict{}, nil
}

// answer runs the processor on a whole answer.
func (x *extStep) answer(ctx context.Context, st *Step, r *Run, status int, header http.Header, body []byte) ([]byte, verdict, error) {
	s, err := x.session(st, r)
	if err != nil {
		return body, verdict{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, st.Timeout)
	defer cancel()
	res, err := s.s.ResponseHeaders(cctx, status, header)
	if err != nil {
		s.broken = true
		return body, verdict{}, err
	}
	if v, stop := immediate(res); stop {
		return body, v, nil
	}
	res2, err := s.s.ResponseBody(cctx, body, true)
	if err != nil {
		s.broken = true
		return body, verdict{}, err
	}
	if v, stop := immediate(res2); stop {
		return body, v, nil
	}
	applyHeaders(header, res)
	applyHeaders(header, res2)
	if res2.Body != nil {
		body = res2.Body
		delete(header, "Content-Length")
	}
	return body, verdict{}, nil
}

// responseHeaders starts a streamed answer's processing.
func (x *extStep) responseHeaders(st *Step, r *Run, status int, header http.Header) *apierr.Error {
	s, err := x.session(st, r)
	if err == nil {
		cctx, cancel := context.WithTimeout(r.base(), st.Timeout)
		var res external.Result
		res, err = s.s.ResponseHeaders(cctx, status, header)
		cancel()
		if err == nil {
			if v, stop := immediate(res); stop {
				return r.apply(st, v, true)
			}
			applyHeaders(header, res)
			return nil
		}
		s.broken = true
	}
	return r.streamFailure(st, err)
}

// responseChunk passes one streamed event (nil with end) through the processor.
func (x *extStep) responseChunk(st *Step, r *Run, ev []byte, end bool) ([]byte, *apierr.Error) {
	s, err := x.session(st, r)
	if err == errSessionBroken {
		return ev, nil // failed open earlier
	}
	if err == nil {
		cctx, cancel := context.WithTimeout(r.base(), st.Timeout)
		var res external.Result
		res, err = s.s.ResponseBody(cctx, ev, end)
		cancel()
		if err == nil {
			if v, stop := immediate(res); stop {
				return nil, r.apply(st, v, true)
			}
			if res.Body != nil && !end {
				return res.Body, nil
			}
			return ev, nil
		}
		s.broken = true
	}
	return ev, r.streamFailure(st, err)
}

// streamFailure applies a step's failure mode to an error on a streamed answer.
func (r *Run) streamFailure(st *Step, err error) *apierr.Error {
	st.Stats.Failed.Add(1)
	if st.FailOpen {
		r.Errors = append(r.Errors, StepError{st.Name, err})
		return nil
	}
	return failedAnswer(st, err)
}

// immediate turns an external processor's immediate response into a Block.
func immediate(res external.Result) (verdict, bool) {
	im := res.Immediate
	if im == nil {
		return verdict{}, false
	}
	return verdict{action: Block, status: im.Status, reason: "external"}, true
}

func applyHeaders(h http.Header, res external.Result) {
	for _, name := range res.RemoveHeaders {
		h.Del(name)
	}
	for _, kv := range res.SetHeaders {
		if protectedHeader(kv[0]) {
			continue
		}
		h.Set(kv[0], kv[1])
	}
}

// endpointPath is the path a client called, for ext_proc's :path.
func endpointPath(ep exchange.Endpoint) string {
	switch ep {
	case exchange.EndpointChat:
		return "/v1/chat/completions"
	case exchange.EndpointCompletions:
		return "/v1/completions"
	case exchange.EndpointEmbeddings:
		return "/v1/embeddings"
	case exchange.EndpointMessages:
		return "/v1/messages"
	case exchange.EndpointCountTokens:
		return "/v1/messages/count_tokens"
	}
	return "/"
}
