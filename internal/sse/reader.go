// Package sse reads and writes Server-Sent Events without allocating per event: a Reader
// returns each event as slices of one reused buffer, valid until the next call. It knows the
// framing only (fields, blank-line boundaries), never what an event means.
package sse

import (
	"bytes"
	"errors"
	"io"
)

// MaxEventSize bounds one event; a larger one is an error, not unbounded growth.
const MaxEventSize = 8 << 20

// ErrEventTooLarge is returned when an event exceeds MaxEventSize.
var ErrEventTooLarge = errors.New("sse: event too large")

// Event is one event. Its slices alias the Reader's buffer.
type Event struct {
	// Raw is the event as received, with its terminating blank line.
	Raw []byte
	// Name is the value of the event field, if any.
	Name []byte
	// Data is the value of the data field(s), joined with "\n" when there are several.
	Data []byte
	// HasData reports whether the event had any data field.
	HasData bool
}

// Reader splits a stream into events.
type Reader struct {
	r     io.Reader
	buf   []byte
	start int // start of unread bytes
	end   int // end of valid bytes
	join  []byte
	err   error
}

// NewReader reads events from r, starting with buf as its buffer (it grows as needed).
func NewReader(r io.Reader, buf []byte) *Reader {
	if cap(buf) < 4096 {
		buf = make([]byte, 16<<10)
	}
	return &Reader{r: r, buf: buf[:cap(buf)]}
}

// Reset reuses the Reader for another stream.
func (r *Reader) Reset(src io.Reader) {
	r.r, r.start, r.end, r.err = src, 0, 0, nil
}

// Next returns the next event. At the end of the stream it returns io.EOF; a final event
// without its blank line is still returned first. Comment-only events (": ping") are
// returned too, with HasData false.
func (r *Reader) Next() (Event, error) {
	for {
		if n := eventEnd(r.buf[r.start:r.end]); n > 0 {
			raw := r.buf[r.start : r.start+n]
			r.start += n
			return r.parse(raw), nil
		}
		if r.err != nil {
			if r.err == ErrEventTooLarge {
				return Event{}, r.err
			}
			if r.start < r.end {
				raw := r.buf[r.start:r.end]
				r.start = r.end
				if len(bytes.TrimSpace(raw)) > 0 {
					return r.parse(raw), nil
				}
			}
			return Event{}, r.err
		}
		r.fill()
	}
}

func (r *Reader) fill() {
	if r.start > 0 && r.start == r.end {
		r.start, r.end = 0, 0
	}
	if r.end == len(r.buf) {
		if r.start > 0 {
			r.end = copy(r.buf, r.buf[r.start:r.end])
			r.start = 0
		} else {
			if len(r.buf) >= MaxEventSize {
				r.err = ErrEventTooLarge
				return
			}
			nb := make([]byte, 2*len(r.buf))
			r.end = copy(nb, r.buf[r.start:r.end])
			r.start = 0
			r.buf = nb
		}
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if err != nil {
		r.err = err
	}
}

// eventEnd returns the length of the first complete event in b (through its blank line),
// or 0. Lines end in \n, \r\n or \r.
func eventEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\n' && c != '\r' {
			continue
		}
		// end of a line at i; is the next line empty?
		j := i + 1
		if c == '\r' && j < len(b) && b[j] == '\n' {
			j++
		} else if c == '\r' && j == len(b) {
			return 0 // might be \r\n split across reads
		}
		if j < len(b) {
			switch b[j] {
			case '\n':
				return j + 1
			case '\r':
				if j+1 < len(b) && b[j+1] == '\n' {
					return j + 2
				}
				if j+1 == len(b) {
					return 0
				}
				return j + 1
			}
		}
		i = j - 1
	}
	return 0
}

func (r *Reader) parse(raw []byte) Event {
	ev := Event{Raw: raw}
	ndata := 0
	rest := raw
	for len(rest) > 0 {
		line := rest
		if k := bytes.IndexAny(rest, "\r\n"); k >= 0 {
			line = rest[:k]
			if rest[k] == '\r' && k+1 < len(rest) && rest[k+1] == '\n' {
				k++
			}
			rest = rest[k+1:]
		} else {
			rest = nil
		}
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if k := bytes.IndexByte(line, ':'); k >= 0 {
			name, value = line[:k], line[k+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "data":
			ev.HasData = true
			switch ndata {
			case 0:
				ev.Data = value
			case 1:
				r.join = append(append(append(r.join[:0], ev.Data...), '\n'), value...)
				ev.Data = r.join
			default:
				r.join = append(append(r.join, '\n'), value...)
				ev.Data = r.join
			}
			ndata++
		case "event":
			ev.Name = value
		}
	}
	return ev
}

// AppendData appends one event carrying data to dst: one data line per line of data.
func AppendData(dst, data []byte) []byte {
	for {
		line, rest, more := bytes.Cut(data, []byte{'\n'})
		dst = append(dst, "data: "...)
		dst = append(dst, bytes.TrimSuffix(line, []byte{'\r'})...)
		dst = append(dst, '\n')
		if !more {
			return append(dst, '\n')
		}
		data = rest
	}
}
