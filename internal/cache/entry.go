package cache

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"
)

// MaxEntryBytes is the largest entry (encoded) the stores keep. A bigger
// answer is served but not cached: [ErrTooLarge].
const MaxEntryBytes = 1 << 20

// ErrTooLarge is returned by Set for an entry over [MaxEntryBytes] (or over
// a [Memory] shard's byte bound). Nothing is stored; the caller may ignore it.
var ErrTooLarge = errors.New("cache: entry too large")

// Usage is the token usage of the cached answer, as the upstream reported it;
// a hit re-reports it so that accounting can tell cached tokens apart.
type Usage struct {
	Input, Output, Cached int64
}

// Entry is one cached answer.
type Entry struct {
	// Status is the HTTP status of the answer (only successes should be cached).
	Status int
	// Header holds content-type and a few other headers safe to replay
	// (lower-case names); never auth, cookies, rate-limit or request ids.
	Header map[string]string
	// Body is a whole, non-streamed answer in the client's wire format.
	Body []byte
	// Usage is the upstream's token usage for the answer.
	Usage Usage
	// Created is when the answer was stored (for an Age header).
	Created time.Time
}

// entryMagic starts every encoded entry: a format byte and a version byte, so a
// change of layout can be told apart from garbage.
const (
	entryMagic   = 'S'
	entryVersion = 1
)

var errCorrupt = errors.New("cache: corrupt entry")

// size approximates the memory an entry holds, for the byte bound.
func (e *Entry) size() int {
	n := len(e.Body) + 96 // struct, map and list node overhead
	for k, v := range e.Header {
		n += len(k) + len(v) + 32
	}
	return n
}

// MarshalBinary encodes e compactly: magic, version, then uvarint-prefixed
// fields, header names sorted so equal entries encode equally.
func (e *Entry) MarshalBinary() ([]byte, error) {
	return e.appendBinary(make([]byte, 0, e.size())), nil
}

func (e *Entry) appendBinary(b []byte) []byte {
	b = append(b, entryMagic, entryVersion)
	b = binary.AppendUvarint(b, uint64(e.Status))
	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendBytes(b, k)
		b = appendBytes(b, e.Header[k])
	}
	b = binary.AppendVarint(b, e.Usage.Input)
	b = binary.AppendVarint(b, e.Usage.Output)
	b = binary.AppendVarint(b, e.Usage.Cached)
	var created int64
	if !e.Created.IsZero() {
		created = e.Created.UnixNano()
	}
	b = binary.AppendVarint(b, created)
	return appendBytes(b, string(e.Body))
}

func appendBytes(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (e *Entry) UnmarshalBinary(data []byte) error {
	if len(data) < 2 || data[0] != entryMagic || data[1] != entryVersion {
		return errCorrupt
	}
	r := reader{b: data[2:]}
	status := r.uvarint()
	n := r.uvarint()
	if n > uint64(len(r.b)) { // each header takes at least two bytes
		return errCorrupt
	}
	var hdr map[string]string
	if n > 0 {
		hdr = make(map[string]string, n)
	}
	for range n {
		k := r.bytes()
		hdr[string(k)] = string(r.bytes())
	}
	u := Usage{Input: r.varint(), Output: r.varint(), Cached: r.varint()}
	created := r.varint()
	body := r.bytes()
	if r.err || len(r.b) != 0 || status > 999 {
		return errCorrupt
	}
	*e = Entry{Status: int(status), Header: hdr, Body: append([]byte(nil), body...), Usage: u}
	if created != 0 {
		e.Created = time.Unix(0, created)
	}
	return nil
}

// reader is a sticky-error cursor over an encoded entry.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
