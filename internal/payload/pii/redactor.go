package pii

const (
	// holdBack is the number of trailing bytes a Redactor keeps unreleased:
	// enough for the longest non-PEM match plus the right context rules
	// look at.
	holdBack = maxToken + 256
	// spaceHold is the number of bytes held before the trailing
	// whitespace-free run: enough for the longest match containing
	// spaces (IBAN, grouped numbers, PEM header) and right context.
	spaceHold = 64
	// minRelease avoids rescanning for every tiny chunk.
	minRelease = 16
	// ctxKeep is the number of released bytes kept as left context.
	ctxKeep = 256
)

// Redactor redacts a stream of chunks. Output is released as soon as no
// match can still span it; a match split across chunks is redacted as a
// whole. A Redactor is not safe for concurrent use.
type Redactor struct {
	d    *Detector
	buf  []byte // buf[:ctx] is already released context, buf[ctx:] pending
	ctx  int
	ms   []Match
	seen uint8 // entities redacted so far, a bit each
}

// Seen returns the entities redacted since the Redactor was made or Reset.
func (r *Redactor) Seen() []Entity {
	var out []Entity
	for e := Entity(0); e < numEntities; e++ {
		if r.seen&(1<<e) != 0 {
			out = append(out, e)
		}
	}
	return out
}

// SeenMask is Seen as a bit set (bit e for Entity e), without allocating.
func (r *Redactor) SeenMask() uint8 { return r.seen }

// Reset empties the Redactor for another stream.
func (r *Redactor) Reset() {
	r.buf, r.ctx, r.ms, r.seen = r.buf[:0], 0, r.ms[:0], 0
}

// NewRedactor returns a streaming Redactor using d.
func (d *Detector) NewRedactor() *Redactor {
	return &Redactor{d: d}
}

// Write feeds chunk and appends any output that can be released to dst.
func (r *Redactor) Write(dst, chunk []byte) []byte {
	r.buf = append(r.buf, chunk...)
	p := r.safePoint()
	if p-r.ctx < minRelease {
		return dst
	}
	return r.release(dst, p)
}

// safePoint returns the offset in buf before which no match can be
// affected by bytes still to come: spaceHold bytes before the trailing
// whitespace-free run, and at most holdBack bytes before the end. Matches
// found to straddle it move it further back (see release).
func (r *Redactor) safePoint() int {
	n := len(r.buf)
	lo := max(n-holdBack, r.ctx)
	t := n
	for t > lo {
		c := r.buf[t-1]
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			break
		}
		t--
	}
	if t == lo {
		return lo
	}
	return max(t-spaceHold, lo)
}

// Flush ends the stream, appending the remaining redacted output to dst.
// The Redactor may be reused afterwards.
func (r *Redactor) Flush(dst []byte) []byte {
	dst = r.release(dst, -1)
	r.buf = r.buf[:0]
	r.ctx = 0
	return dst
}

// release emits redacted output up to p (at most; the end of the buffer
// when p < 0, at end of stream).
func (r *Redactor) release(dst []byte, p int) []byte {
	r.ms = r.d.find(r.buf, r.ms[:0], r.ctx)
	final := p < 0
	if final {
		p = len(r.buf)
	}
	pos := r.ctx
	for _, m := range r.ms {
		if m.Start >= p {
			break
		}
		if m.End > p {
			p = m.Start
			break
		}
		dst = append(dst, r.buf[pos:m.Start]...)
		dst = append(dst, placeholders[m.Entity]...)
		r.seen |= 1 << m.Entity
		pos = m.End
	}
	if pos < p {
		dst = append(dst, r.buf[pos:p]...)
	}
	if final {
		return dst
	}
	cut := max(p-ctxKeep, 0)
	n := copy(r.buf, r.buf[cut:])
	r.buf = r.buf[:n]
	r.ctx = p - cut
	return dst
}
