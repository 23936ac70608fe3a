package payload

import (
	"strconv"
	"sync"

	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/payload/injection"
	"github.com/sluice-gateway/sluice/internal/payload/pii"
	"github.com/sluice-gateway/sluice/internal/payload/textfilter"
)

// detector judges text for a textStep.
type detector interface {
	// inspect returns a reason when text holds what the detector looks for ("" when
	// not); with redact it also appends text, findings replaced, to out.
	inspect(text []byte, redact bool, out []byte) (reason string, _ []byte)
	// newStream returns a detector for one streamed answer; nil for request-only ones.
	newStream() textStream
}

// textStream inspects a streamed answer's text chunk by chunk, holding back what a match
// may still need.
type textStream interface {
	// write takes the next text and appends what can be released (redacted) to dst.
	write(dst, text []byte) (_ []byte, reason string)
	// flush releases the rest at the end of the answer.
	flush(dst []byte) (_ []byte, reason string)
}

// textStep runs a detector over the selected parts of a request or over an answer.
type textStep struct {
	det    detector
	action Action
}

func (t *textStep) request(s *Step, r *Run) (verdict, error) {
	segs, err := r.segments()
	if err != nil {
		return verdict{}, err
	}
	body := r.Ex.Body
	redact := t.action == Redact
	var why reasons
	edits := r.edits[:0]
	for i, seg := range segs {
		if seg.Part&s.Parts == 0 {
			continue
		}
		if r.expired() {
			return verdict{}, errTimeout
		}
		reason, out := t.det.inspect(r.segmentText(i), redact, r.out[:0])
		r.out = out
		if reason == "" {
			continue
		}
		why.add(reason)
		if redact {
			edits = append(edits, content.Edit{Segment: seg, Text: append([]byte(nil), out...)})
		}
	}
	r.edits = edits[:0]
	if why.n == 0 {
		return verdict{}, nil
	}
	if redact && len(edits) > 0 {
		if err := r.setBody(content.Rewrite(body, edits)); err != nil {
			return verdict{}, err
		}
	}
	return verdict{action: t.action, reason: why.String()}, nil
}

// answer inspects a whole answer; it returns the body to send.
func (t *textStep) answer(r *Run, body []byte) ([]byte, verdict, error) {
	var err error
	r.segs, err = content.Response(r.Ex.IngressEndpoint, body, r.segs[:0])
	r.segsOK = false
	if err != nil {
		return body, verdict{}, nil // not an answer with text
	}
	redact := t.action == Redact
	var why reasons
	var edits []content.Edit
	for _, seg := range r.segs {
		if r.expired() {
			return body, verdict{}, errTimeout
		}
		r.text = content.Text(r.text[:0], body, seg)
		reason, out := t.det.inspect(r.text, redact, r.out[:0])
		r.out = out
		if reason == "" {
			continue
		}
		why.add(reason)
		if redact {
			edits = append(edits, content.Edit{Segment: seg, Text: append([]byte(nil), out...)})
		}
	}
	if why.n == 0 {
		return body, verdict{}, nil
	}
	if len(edits) > 0 {
		body = content.Rewrite(body, edits)
	}
	return body, verdict{action: t.action, reason: why.String()}, nil
}

// piiDetector finds personal data and secrets.
type piiDetector struct {
	d *pii.Detector
}

func (p *piiDetector) inspect(text []byte, redact bool, out []byte) (string, []byte) {
	var buf [32]pii.Match
	ms := p.d.Find(text, buf[:0])
	if len(ms) == 0 {
		return "", out
	}
	if redact {
		out = pii.AppendRedacted(out, text, ms)
	}
	var mask uint8
	for _, m := range ms {
		mask |= 1 << m.Entity
	}
	return entityReason(mask), out
}

// entityReason names the entities in mask ("Email+Phone").
func entityReason(mask uint8) string {
	var s string
	for e := pii.Entity(0); e < 8; e++ {
		if mask&(1<<e) == 0 {
			continue
		}
		if s != "" {
			s += "+"
		}
		s += e.String()
	}
	return s
}

func (p *piiDetector) newStream() textStream { return &piiStream{r: p.d.NewRedactor()} }

type piiStream struct {
	r    *pii.Redactor
	seen uint8
}

func (s *piiStream) write(dst, text []byte) ([]byte, string) {
	dst = s.r.Write(dst, text)
	return dst, s.news()
}

func (s *piiStream) flush(dst []byte) ([]byte, string) {
	dst = s.r.Flush(dst)
	return dst, s.news()
}

// news reports entities redacted since the last call.
func (s *piiStream) news() string {
	m := s.r.SeenMask()
	fresh := m &^ s.seen
	s.seen = m
	if fresh == 0 {
		return ""
	}
	return entityReason(fresh)
}

// filterDetector matches a content filter's lists.
type filterDetector struct {
	f *textfilter.Filter
}

// filtered replaces what a content filter redacts.
const filtered = "[FILTERED]"

// foldBuffers keep the case-folded copies a filter makes of each text.
var foldBuffers = sync.Pool{New: func() any { return new([]byte) }}

func (d *filterDetector) inspect(text []byte, redact bool, out []byte) (string, []byte) {
	var buf [16]textfilter.Span
	scratch := foldBuffers.Get().(*[]byte)
	spans, folded := d.f.Find(text, buf[:0], (*scratch)[:0])
	if cap(folded) <= 1<<20 {
		*scratch = folded
		foldBuffers.Put(scratch)
	}
	if len(spans) == 0 {
		return "", out
	}
	if redact {
		pos := 0
		for _, sp := range spans {
			out = append(out, text[pos:sp.Start]...)
			out = append(out, filtered...)
			pos = sp.End
		}
		out = append(out, text[pos:]...)
	}
	return "deny-list", out
}

func (d *filterDetector) newStream() textStream {
	return &filterStream{f: d.f, hold: d.f.MaxLen()}
}

// filterStream holds back the longest match a list can make, so a match split across
// chunks is seen whole.
type filterStream struct {
	f       *textfilter.Filter
	hold    int
	buf     []byte
	spans   []textfilter.Span
	scratch []byte
}

func (s *filterStream) write(dst, text []byte) ([]byte, string) {
	s.buf = append(s.buf, text...)
	return s.release(dst, max(len(s.buf)-s.hold, 0))
}

func (s *filterStream) flush(dst []byte) ([]byte, string) {
	return s.release(dst, len(s.buf))
}

// release emits buf up to p, not cutting a match (which then waits for the next chunk).
func (s *filterStream) release(dst []byte, p int) ([]byte, string) {
	s.spans, s.scratch = s.f.Find(s.buf, s.spans[:0], s.scratch[:0])
	// A match that ends before the last byte is final (the character after it is known);
	// one touching the end may still grow or lose its word boundary. Any final match is
	// a finding at once, so Block and Flag do not wait for the text to be released.
	reason := ""
	for _, sp := range s.spans {
		if sp.End < len(s.buf) || p == len(s.buf) {
			reason = "deny-list"
			break
		}
	}
	pos := 0
	for _, sp := range s.spans {
		if sp.Start >= p {
			break
		}
		if sp.End > p && p < len(s.buf) {
			p = sp.Start
			break
		}
		dst = append(dst, s.buf[pos:sp.Start]...)
		dst = append(dst, filtered...)
		pos = sp.End
	}
	if pos < p {
		dst = append(dst, s.buf[pos:p]...)
		pos = p
	}
	n := copy(s.buf, s.buf[pos:])
	s.buf = s.buf[:n]
	return dst, reason
}

// injectionDetector scores prompt injection and jailbreaks.
type injectionDetector struct {
	d         *injection.Detector
	threshold float64
}

func (d *injectionDetector) inspect(text []byte, _ bool, out []byte) (string, []byte) {
	res := d.d.Score(text)
	if res.Score < d.threshold {
		return "", out
	}
	reason := "score=" + strconv.FormatFloat(res.Score, 'f', 2, 64)
	for _, r := range res.Reasons {
		reason += " " + r
	}
	return reason, out
}

func (d *injectionDetector) newStream() textStream { return nil }
