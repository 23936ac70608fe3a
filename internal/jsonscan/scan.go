// Package jsonscan reads JSON without building it: it validates a document and reports the
// byte spans of an object's members, so the gateway can pick the few fields it needs from a
// request or a streamed chunk, and splice bytes, without decoding the whole body or
// allocating. It never interprets more than it is asked to; use encoding/json for that.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf8"
)

// MaxDepth bounds nesting, as encoding/json does.
const MaxDepth = 10000

// ErrSyntax is returned for anything that is not valid JSON.
var ErrSyntax = errors.New("invalid JSON")

// ErrNotObject is returned by Object when the document is valid JSON but not an object.
var ErrNotObject = errors.New("JSON value is not an object")

// Member is one member of an object: data[KeyStart:KeyEnd] is the key with its quotes,
// data[ValueStart:ValueEnd] the raw value.
type Member struct {
	KeyStart, KeyEnd     int
	ValueStart, ValueEnd int
}

// Key returns the member's key without quotes, still escaped.
func (m Member) Key(data []byte) []byte { return data[m.KeyStart+1 : m.KeyEnd-1] }

// Value returns the member's raw value.
func (m Member) Value(data []byte) []byte { return data[m.ValueStart:m.ValueEnd] }

// Object validates data as one JSON object (surrounding white space allowed) and calls fn
// for each top-level member in order. If fn returns false the walk stops early and the rest
// of the document is not validated.
func Object(data []byte, fn func(m Member) bool) error {
	s := scanner{data: data}
	s.ws()
	if s.i >= len(data) {
		return ErrSyntax
	}
	if data[s.i] != '{' {
		if err := s.value(0); err != nil {
			return err
		}
		s.ws()
		if s.i != len(data) {
			return ErrSyntax
		}
		return ErrNotObject
	}
	stopped, err := s.object(0, fn)
	if err != nil || stopped {
		return err
	}
	s.ws()
	if s.i != len(data) {
		return ErrSyntax
	}
	return nil
}

// Valid reports whether data is one valid JSON value.
func Valid(data []byte) bool {
	s := scanner{data: data}
	s.ws()
	if s.value(0) != nil {
		return false
	}
	s.ws()
	return s.i == len(data)
}

// Array validates data as a JSON array and calls fn with the span of each element.
func Array(data []byte, fn func(start, end int) bool) error {
	s := scanner{data: data}
	s.ws()
	if s.i >= len(data) || data[s.i] != '[' {
		return ErrSyntax
	}
	s.i++
	s.ws()
	if s.i < len(data) && data[s.i] == ']' {
		s.i++
		return s.end()
	}
	for {
		s.ws()
		start := s.i
		if err := s.value(1); err != nil {
			return err
		}
		if !fn(start, s.i) {
			return nil
		}
		s.ws()
		if s.i >= len(data) {
			return ErrSyntax
		}
		switch data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return s.end()
		default:
			return ErrSyntax
		}
	}
}

type scanner struct {
	data []byte
	i    int
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.data) {
		return ErrSyntax
	}
	return nil
}

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object scans an object at s.i (which is '{'); fn, when not nil, sees each member.
func (s *scanner) object(depth int, fn func(Member) bool) (stopped bool, err error) {
	if depth >= MaxDepth {
		return false, ErrSyntax
	}
	s.i++ // '{'
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return false, nil
	}
	for {
		s.ws()
		var m Member
		m.KeyStart = s.i
		if err := s.str(); err != nil {
			return false, err
		}
		m.KeyEnd = s.i
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return false, ErrSyntax
		}
		s.i++
		s.ws()
		m.ValueStart = s.i
		if err := s.value(depth + 1); err != nil {
			return false, err
		}
		m.ValueEnd = s.i
		if fn != nil && !fn(m) {
			return true, nil
		}
		s.ws()
		if s.i >= len(s.data) {
			return false, ErrSyntax
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return false, nil
		default:
			return false, ErrSyntax
		}
	}
}

func (s *scanner) value(depth int) error {
	if s.i >= len(s.data) {
		return ErrSyntax
	}
	switch c := s.data[s.i]; {
	case c == '{':
		_, err := s.object(depth, nil)
		return err
	case c == '[':
		return s.array(depth)
	case c == '"':
		return s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	return ErrSyntax
}

func (s *scanner) array(depth int) error {
	if depth >= MaxDepth {
		return ErrSyntax
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.data) {
			return ErrSyntax
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return ErrSyntax
		}
	}
}

func (s *scanner) lit(word string) error {
	if len(s.data)-s.i < len(word) || string(s.data[s.i:s.i+len(word)]) != word {
		return ErrSyntax
	}
	s.i += len(word)
	return nil
}

func (s *scanner) str() error {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return ErrSyntax
	}
	s.i++
	for s.i < len(s.data) {
		s.i = skipPlain(s.data, s.i)
		if s.i >= len(s.data) {
			break
		}
		c := s.data[s.i]
		switch {
		case c == '"':
			s.i++
			return nil
		case c == '\\':
			if s.i+1 >= len(s.data) {
				return ErrSyntax
			}
			switch s.data[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.data) {
					return ErrSyntax
				}
				for _, h := range s.data[s.i+2 : s.i+6] {
					if !isHex(h) {
						return ErrSyntax
					}
				}
				s.i += 6
			default:
				return ErrSyntax
			}
		case c < 0x20:
			return ErrSyntax
		default:
			s.i++
		}
	}
	return ErrSyntax
}

// SWAR constants: a byte in every lane.
const (
	lanes1  = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// skipPlain returns the index of the first byte at or after i that ends or escapes a
// string or is a control character, eight bytes at a time: strings are most of a
// request's bytes.
func skipPlain(d []byte, i int) int {
	for i+8 <= len(d) {
		x := binary.LittleEndian.Uint64(d[i:])
		q := x ^ (lanes1 * '"')
		b := x ^ (lanes1 * '\\')
		if ((x-lanes1*0x20)&^x|(q-lanes1)&^q|(b-lanes1)&^b)&lanes80 != 0 {
			break
		}
		i += 8
	}
	for i < len(d) {
		if c := d[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
		i++
	}
	return i
}

func (s *scanner) number() error {
	d := s.data
	if d[s.i] == '-' {
		s.i++
	}
	if s.i >= len(d) {
		return ErrSyntax
	}
	if d[s.i] == '0' {
		s.i++
	} else if d[s.i] >= '1' && d[s.i] <= '9' {
		for s.i < len(d) && isDigit(d[s.i]) {
			s.i++
		}
	} else {
		return ErrSyntax
	}
	if s.i < len(d) && d[s.i] == '.' {
		s.i++
		if s.i >= len(d) || !isDigit(d[s.i]) {
			return ErrSyntax
		}
		for s.i < len(d) && isDigit(d[s.i]) {
			s.i++
		}
	}
	if s.i < len(d) && (d[s.i] == 'e' || d[s.i] == 'E') {
		s.i++
		if s.i < len(d) && (d[s.i] == '+' || d[s.i] == '-') {
			s.i++
		}
		if s.i >= len(d) || !isDigit(d[s.i]) {
			return ErrSyntax
		}
		for s.i < len(d) && isDigit(d[s.i]) {
			s.i++
		}
	}
	return nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// Get returns the raw value of the top-level member named key (an unescaped key compared
// byte for byte with the raw key) and whether it was found. It validates only as far as the
// member; use Object when the whole document must be valid.
func Get(data []byte, key string) ([]byte, bool) {
	var out []byte
	found := false
	Object(data, func(m Member) bool {
		if string(m.Key(data)) == key {
			out, found = m.Value(data), true
			return false
		}
		return true
	})
	return out, found
}

// String decodes a raw JSON string value. The common case without escapes costs one
// allocation for the result.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	b, ok := AppendUnquoted(nil, raw)
	return string(b), ok
}

// AppendUnquoted appends the decoded contents of the raw JSON string value to dst. Invalid
// UTF-8 becomes U+FFFD, as encoding/json does.
func AppendUnquoted(dst, raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return dst, false
	}
	in := raw[1 : len(raw)-1]
	for i := 0; i < len(in); {
		// Copy the run up to the next escape at once when it is valid UTF-8 (the
		// common case); invalid bytes go the slow way, to become U+FFFD.
		if j := bytes.IndexByte(in[i:], '\\'); j != 0 {
			if j < 0 {
				j = len(in) - i
			}
			run := in[i : i+j]
			if utf8.Valid(run) {
				dst = append(dst, run...)
			} else {
				for k := 0; k < len(run); {
					r, size := utf8.DecodeRune(run[k:])
					dst = utf8.AppendRune(dst, r)
					k += size
				}
			}
			i += j
			continue
		}
		c := in[i]
		switch {
		case c == '\\':
			if i+1 >= len(in) {
				return dst, false
			}
			switch in[i+1] {
			case '"', '\\', '/':
				dst = append(dst, in[i+1])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(in[i+2:])
				if !ok {
					return dst, false
				}
				i += 6
				if utf16IsSurrogate(r) {
					if len(in) >= i+6 && in[i] == '\\' && in[i+1] == 'u' {
						if r2, ok := hex4(in[i+2:]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF && r < 0xDC00 {
							dst = utf8.AppendRune(dst, (r-0xD800)<<10+(r2-0xDC00)+0x10000)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return dst, false
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst, true
}

func utf16IsSurrogate(r rune) bool { return r >= 0xD800 && r <= 0xDFFF }

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// Int parses a raw JSON number that is an integer.
func Int(raw []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	return n, err == nil
}

// Bool parses a raw JSON boolean.
func Bool(raw []byte) (value, ok bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// IsNull reports whether the raw value is the literal null.
func IsNull(raw []byte) bool { return string(raw) == "null" }

// AppendEscaped appends s as the inside of a JSON string. Invalid UTF-8 becomes U+FFFD;
// U+2028 and U+2029 are escaped as encoding/json does, for JavaScript clients; unlike
// encoding/json it leaves <, > and & alone: these strings go to models and API clients,
// not into HTML.
func AppendEscaped[T string | []byte](dst []byte, s T) []byte {
	const hexDigits = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		switch b := any(s).(type) {
		case string:
			r, size = utf8.DecodeRuneInString(b[i:])
		case []byte:
			r, size = utf8.DecodeRune(b[i:])
		}
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			start = i + size
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			start = i + size
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// AppendQuoted appends s as a JSON string, quotes included (see AppendEscaped).
func AppendQuoted[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	dst = AppendEscaped(dst, s)
	return append(dst, '"')
}
