package payload

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/provider"
)

// Responding reports whether the exchange's answer goes through processors.
func (r *Run) Responding() bool { return r != nil && len(r.respond) > 0 }

// Answer runs the response-scope steps on a whole successful answer (in the client's
// wire) and returns the body to send, or the error to answer with instead. header is the
// client's response header; external processors may change it.
func (r *Run) Answer(ctx context.Context, status int, header http.Header, body []byte) ([]byte, *apierr.Error) {
	for _, st := range r.respond {
		st.Stats.Runs.Add(1)
		r.deadline = time.Now().Add(st.Timeout)
		var (
			out []byte
			v   verdict
			err error
		)
		switch impl := st.impl.(type) {
		case *textStep:
			out, v, err = impl.answer(r, body)
		case *extStep:
			out, v, err = impl.answer(ctx, st, r, status, header, body)
		default:
			continue
		}
		if err != nil {
			st.Stats.Failed.Add(1)
			if st.FailOpen {
				r.Errors = append(r.Errors, StepError{st.Name, err})
				continue
			}
			return nil, failedAnswer(st, err)
		}
		body = out
		if e := r.apply(st, v, true); e != nil {
			return nil, e
		}
	}
	return body, nil
}

func failedAnswer(st *Step, err error) *apierr.Error {
	e := failed(st, err)
	e.Status = http.StatusBadGateway
	e.Message = "Payload processor '" + st.Name + "' could not check the answer; it was withheld."
	return e
}

// streamState is a Run's filter over one streamed answer.
type streamState struct {
	r       *Run
	inner   provider.Stream
	render  func(*apierr.Error) []byte
	status  int
	header  http.Header
	started bool
	ended   bool
	next    []byte // an event held while flushed text goes out first
	choices []choiceState
	text    []byte
	a, b    []byte
	ev      []byte
	joined  []byte
	noted   uint64 // steps whose finding is recorded, a bit each
}

// choiceState is the per-choice (OpenAI) or per-content-block (Anthropic) text state.
type choiceState struct {
	index   int
	streams []textStream // parallel to r.respond; nil where the step is not a textStep
	tmpl    []byte       // the last text event, to carry flushed text
	seg     content.Segment
}

func (s *streamState) reset() {
	for i := range s.choices {
		s.choices[i] = choiceState{tmpl: s.choices[i].tmpl[:0]}
	}
	*s = streamState{choices: s.choices[:0], text: s.text[:0], a: s.a[:0], b: s.b[:0], ev: s.ev[:0], joined: s.joined[:0]}
}

// Stream wraps a streamed answer (events in the client's wire) so the response-scope
// steps see its text as it passes: redaction holds back only the bytes a pattern may
// still need; a Block ends the stream with render's error event. Without response steps
// it returns in itself.
func (r *Run) Stream(in provider.Stream, status int, header http.Header, render func(*apierr.Error) []byte) provider.Stream {
	if !r.Responding() {
		return in
	}
	s := &r.stream
	s.r, s.inner, s.render, s.status, s.header = r, in, render, status, header
	return s
}

// Close implements provider.Stream.
func (s *streamState) Close() { s.inner.Close() }

// Next implements provider.Stream.
func (s *streamState) Next() ([]byte, error) {
	if s.next != nil {
		ev := s.next
		s.next = nil
		return ev, nil
	}
	if s.ended {
		return nil, io.EOF
	}
	if !s.started {
		s.started = true
		if e := s.extHeaders(); e != nil {
			return s.stop(e), nil
		}
	}
	ev, err := s.inner.Next()
	if err == io.EOF {
		s.ended = true
		out, e := s.flushAll(s.ev[:0])
		if e != nil {
			return s.stop(e), nil
		}
		if e := s.extEnd(); e != nil {
			return s.stop(e), nil
		}
		if len(out) > 0 {
			s.ev = out
			return out, nil
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	idx, seg, ok, multi := content.Delta(ev)
	if multi {
		// Rare: data split over lines. Re-frame it as one line so its text is read.
		var doc []byte
		doc, idx, seg, ok = content.JoinData(ev)
		if ok {
			s.joined = append(s.joined[:0], eventLine(ev)...)
			s.joined = append(s.joined, "data: "...)
			seg.Start += len(s.joined)
			seg.End += len(s.joined)
			s.joined = append(s.joined, doc...)
			s.joined = append(s.joined, '\n', '\n')
			ev = s.joined
		}
	}
	if !ok {
		if boundary(ev) {
			out, e := s.flushAll(s.ev[:0])
			if e != nil {
				return s.stop(e), nil
			}
			if len(out) > 0 {
				s.ev = out
				first, e := s.extChunk(out)
				if e != nil {
					return s.stop(e), nil
				}
				if s.next, e = s.extChunk(ev); e != nil {
					s.next = s.stop(e)
				}
				return first, nil
			}
		}
		return s.extChunkOrStop(ev)
	}
	ch := s.choice(idx)
	s.text = content.Text(s.text[:0], ev, seg)
	// A text event that also ends its choice (content with a finish reason) carries the
	// held text itself.
	text, e := s.filter(ch, s.text, boundary(ev))
	if e != nil {
		return s.stop(e), nil
	}
	ch.tmpl = append(ch.tmpl[:0], ev...)
	ch.seg = seg
	out := append(s.ev[:0], ev[:seg.Start]...)
	out = content.AppendQuoted(out, text)
	out = append(out, ev[seg.End:]...)
	s.ev = out
	return s.extChunkOrStop(out)
}

// filter passes text through the text steps in order; with end, each step flushes.
func (s *streamState) filter(ch *choiceState, text []byte, end bool) ([]byte, *apierr.Error) {
	r := s.r
	for i, st := range r.respond {
		ts := ch.streams[i]
		if ts == nil {
			continue
		}
		out := s.a[:0]
		var reason string
		out, reason = ts.write(out, text)
		if end {
			var reason2 string
			out, reason2 = ts.flush(out)
			if reason == "" {
				reason = reason2
			}
		}
		s.a, s.b = s.b, out
		text = out
		if reason == "" {
			continue
		}
		action := st.impl.(*textStep).action
		if action == Block {
			st.Stats.Runs.Add(1)
			return nil, r.apply(st, verdict{action: Block, reason: reason}, true)
		}
		if s.noted&(1<<uint(i%64)) == 0 {
			s.noted |= 1 << uint(i%64)
			st.Stats.Runs.Add(1)
			r.apply(st, verdict{action: action, reason: reason}, true)
		}
	}
	return text, nil
}

// choice returns the state of a choice or content block, making it on first sight.
func (s *streamState) choice(idx int) *choiceState {
	for i := range s.choices {
		if s.choices[i].index == idx {
			return &s.choices[i]
		}
	}
	if len(s.choices) < cap(s.choices) {
		s.choices = s.choices[:len(s.choices)+1]
	} else {
		s.choices = append(s.choices, choiceState{})
	}
	ch := &s.choices[len(s.choices)-1]
	ch.index = idx
	ch.streams = ch.streams[:0]
	for _, st := range s.r.respond {
		var ts textStream
		if t, ok := st.impl.(*textStep); ok {
			ts = t.det.newStream()
		}
		ch.streams = append(ch.streams, ts)
	}
	return ch
}

// flushAll releases every choice's held text, each as a copy of its last text event.
func (s *streamState) flushAll(dst []byte) ([]byte, *apierr.Error) {
	for i := range s.choices {
		ch := &s.choices[i]
		if len(ch.tmpl) == 0 {
			continue
		}
		text, e := s.filter(ch, nil, true)
		if e != nil {
			return nil, e
		}
		if len(text) == 0 {
			continue
		}
		dst = append(dst, ch.tmpl[:ch.seg.Start]...)
		dst = content.AppendQuoted(dst, text)
		dst = append(dst, ch.tmpl[ch.seg.End:]...)
	}
	return dst, nil
}

// stop ends the stream with an error event.
func (s *streamState) stop(e *apierr.Error) []byte {
	s.ended = true
	s.next = nil
	s.r.Ex.Code = e.Code
	return s.render(e)
}

// boundary reports an event that ends a choice or block (a finish reason, Anthropic's
// content_block_stop or message_delta, [DONE]): held text must go out before it.
func boundary(ev []byte) bool {
	return bytes.Contains(ev, []byte(`"finish_reason":"`)) || bytes.Contains(ev, []byte("[DONE]")) ||
		bytes.Contains(ev, []byte("content_block_stop")) || bytes.Contains(ev, []byte("message_delta")) ||
		bytes.Contains(ev, []byte("message_stop"))
}

// eventLine returns an event's "event: ..." line, if any.
func eventLine(ev []byte) []byte {
	if bytes.HasPrefix(ev, []byte("event:")) {
		if i := bytes.IndexByte(ev, '\n'); i >= 0 {
			return ev[:i+1]
		}
	}
	return nil
}

// extHeaders sends the answer's status and headers to the external response steps.
func (s *streamState) extHeaders() *apierr.Error {
	for _, st := range s.r.respond {
		x, ok := st.impl.(*extStep)
		if !ok {
			continue
		}
		st.Stats.Runs.Add(1)
		if e := x.responseHeaders(st, s.r, s.status, s.header); e != nil {
			return e
		}
	}
	return nil
}

// extChunk passes one event through the external response steps.
func (s *streamState) extChunk(ev []byte) ([]byte, *apierr.Error) {
	for _, st := range s.r.respond {
		x, ok := st.impl.(*extStep)
		if !ok {
			continue
		}
		var e *apierr.Error
		if ev, e = x.responseChunk(st, s.r, ev, false); e != nil {
			return nil, e
		}
	}
	return ev, nil
}

func (s *streamState) extChunkOrStop(ev []byte) ([]byte, error) {
	out, e := s.extChunk(ev)
	if e != nil {
		return s.stop(e), nil
	}
	return out, nil
}

// extEnd tells the external response steps the answer ended.
func (s *streamState) extEnd() *apierr.Error {
	for _, st := range s.r.respond {
		if x, ok := st.impl.(*extStep); ok {
			if _, e := x.responseChunk(st, s.r, nil, true); e != nil {
				return e
			}
		}
	}
	return nil
}
