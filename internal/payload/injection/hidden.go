package injection

import (
	"encoding/base64"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Hidden payloads: text smuggled past a reader in an encoding (base64,
// hex, binary octets, percent-encoding). Candidates are decoded into
// st.hidden and kept only if the result reads as text; the detector then
// scores the decoded text like any other.
type payloadKind uint8

const (
	pkBase64 payloadKind = iota
	pkHex
	pkBinary
	pkPercent
	pkTags
	pkVariation
	pkRot13
	pkReversed
)

var payloadReasons = [...]string{
	pkBase64:    "hidden:base64",
	pkHex:       "hidden:hex",
	pkBinary:    "hidden:binary",
	pkPercent:   "hidden:percent-encoding",
	pkTags:      "hidden:unicode-tags",
	pkVariation: "hidden:variation-selectors",
	pkRot13:     "hidden:rot13",
	pkReversed:  "hidden:reversed",
}

type payload struct {
	kind       payloadKind
	start, end int32 // in st.hidden
}

const (
	minBase64Run  = 20
	minHexBytes   = 8
	minOctets     = 4
	maxPayloads   = 4
	maxHiddenSize = 64 << 10
)

var b64Class = func() (t [256]uint8) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_" {
		t[c] = 1
	}
	for _, c := range "0123456789abcdefABCDEF" {
		t[c] |= 2 // hex digit
	}
	return t
}()

// findHidden looks for encoded payloads in src (original case) and decodes
// those that read as text into st.hidden / st.payloads. Normalisation has
// already noted whether the text has chunks long enough for base64 or hex
// or runs of short chunks with digits; most texts have neither.
func findHidden(src []byte, st *scratch) {
	if !st.hiddenScan {
		return
	}
	n := len(src)
	for i := 0; i < n && len(st.payloads) < maxPayloads; {
		for i < n && src[i] <= ' ' {
			i++
		}
		j := i
		for j < n && src[j] > ' ' {
			j++
		}
		if j-i >= minBase64Run {
			longChunk(st, src[i:j])
		}
		i = j
	}
	scanRuns(src, st)
}

// scanRuns finds runs of space-separated hex byte chunks ("69 67 6e") and
// of binary octets in src and decodes them.
func scanRuns(src []byte, st *scratch) {
	var hexRun, octRun candRun
	var runs []cand
	n := len(src)
	for i := 0; i < n; {
		for i < n && src[i] <= ' ' {
			i++
		}
		j := i
		for j < n && src[j] > ' ' {
			j++
		}
		if j == i {
			break
		}
		chunk := trimPunct(src[i:j])
		runs = hexRun.step(runs, candHex, minHexBytes, isHexPair(chunk), i, j)
		runs = octRun.step(runs, candOctets, minOctets, isOctet(chunk), i, j)
		i = j
	}
	runs = hexRun.step(runs, candHex, minHexBytes, false, 0, 0)
	runs = octRun.step(runs, candOctets, minOctets, false, 0, 0)
	for _, r := range runs {
		kind := pkHex
		if r.kind == candOctets {
			kind = pkBinary
		}
		addPayload(st, kind, src[r.start:r.end])
	}
}

func trimPunct(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ',' || b[len(b)-1] == ';' || b[len(b)-1] == '.') {
		b = b[:len(b)-1]
	}
	return b
}

// isHexPair matches "4f", "0x4f", "\x4f".
func isHexPair(b []byte) bool {
	if len(b) == 4 && (b[0] == '0' && b[1] == 'x' || b[0] == '\\' && b[1] == 'x') {
		b = b[2:]
	}
	return len(b) == 2 && b64Class[b[0]]&2 != 0 && b64Class[b[1]]&2 != 0
}

func isOctet(b []byte) bool {
	if len(b) != 8 {
		return false
	}
	for _, c := range b {
		if c != '0' && c != '1' {
			return false
		}
	}
	return true
}

// longChunk looks inside one long whitespace-free chunk for base64 and
// hex runs, "\x41\x42" escapes and percent-encoding.
func longChunk(st *scratch, chunk []byte) {
	for k := 0; k < len(chunk); {
		if chunk[k] == '%' || chunk[k] == '\\' && k+1 < len(chunk) && chunk[k+1] == 'x' {
			// Escaped bytes: %41%42... or \x41\x42...
			m := k
			count := 0
			for m+2 < len(chunk) && (chunk[m] == '%' && b64Class[chunk[m+1]]&2 != 0 && b64Class[chunk[m+2]]&2 != 0 ||
				m+3 < len(chunk) && chunk[m] == '\\' && chunk[m+1] == 'x' && b64Class[chunk[m+2]]&2 != 0 && b64Class[chunk[m+3]]&2 != 0) {
				if chunk[m] == '%' {
					m += 3
				} else {
					m += 4
				}
				count++
			}
			if count >= minHexBytes {
				kind := pkHex
				if chunk[k] == '%' {
					kind = pkPercent
				}
				addPayload(st, kind, chunk[k:m])
				k = m
				continue
			}
		}
		if b64Class[chunk[k]] == 0 || chunk[k] == '=' {
			k++
			continue
		}
		// A run of the base64 alphabet; '=' only as padding at its end.
		m := k
		hex := true
		for m < len(chunk) && b64Class[chunk[m]] != 0 && chunk[m] != '=' {
			hex = hex && b64Class[chunk[m]]&2 != 0
			m++
		}
		end := m
		for end < len(chunk) && chunk[end] == '=' {
			end++
		}
		if m-k >= minBase64Run {
			if hex && (m-k)%2 == 0 {
				addPayload(st, pkHex, chunk[k:m])
			} else {
				addPayload(st, pkBase64, chunk[k:end])
			}
		}
		k = end
	}
}

// addPayload decodes enc as kind into st.hidden and keeps it if it reads as
// text.
func addPayload(st *scratch, kind payloadKind, enc []byte) {
	if len(st.payloads) >= maxPayloads || len(st.hidden) >= maxHiddenSize {
		return
	}
	start := len(st.hidden)
	var out []byte
	switch kind {
	case pkBase64:
		out = decodeBase64(st.hidden, enc)
	case pkHex, pkPercent:
		out = decodeHexDigits(st.hidden, enc)
	case pkBinary:
		out = decodeOctets(st.hidden, enc)
	}
	if out == nil || !looksLikeText(out[start:]) {
		st.hidden = st.hidden[:start]
		return
	}
	st.hidden = out
	st.payloads = append(st.payloads, payload{kind: kind, start: int32(start), end: int32(len(out))})
}

func decodeBase64(dst, enc []byte) []byte {
	for len(enc) > 0 && enc[len(enc)-1] == '=' {
		enc = enc[:len(enc)-1]
	}
	if len(enc)%4 == 1 {
		enc = enc[:len(enc)-1]
	}
	e := base64.RawStdEncoding
	for _, c := range enc {
		if c == '-' || c == '_' {
			e = base64.RawURLEncoding
			break
		}
	}
	start := len(dst)
	dst = slices.Grow(dst, e.DecodedLen(len(enc)))
	n, err := e.Decode(dst[start:start+e.DecodedLen(len(enc))], enc)
	if err != nil {
		return nil
	}
	return dst[:start+n]
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// decodeHexDigits decodes the hex digit pairs in enc, skipping separators
// and "0x", "\x" or "%" prefixes.
func decodeHexDigits(dst, enc []byte) []byte {
	for i := 0; i < len(enc); {
		c := enc[i]
		if (c == '0' || c == '\\') && i+1 < len(enc) && enc[i+1] == 'x' {
			i += 2
			continue
		}
		if b64Class[c]&2 == 0 {
			i++
			continue
		}
		if i+1 >= len(enc) || b64Class[enc[i+1]]&2 == 0 {
			return nil
		}
		dst = append(dst, hexVal(c)<<4|hexVal(enc[i+1]))
		i += 2
	}
	return dst
}

func decodeOctets(dst, enc []byte) []byte {
	var b byte
	n := 0
	for _, c := range enc {
		if c != '0' && c != '1' {
			continue
		}
		b = b<<1 | (c - '0')
		if n++; n == 8 {
			dst = append(dst, b)
			b, n = 0, 0
		}
	}
	return dst
}

// looksLikeText reports whether b is valid UTF-8 made mostly of letters,
// with no control characters besides whitespace.
func looksLikeText(b []byte) bool {
	if len(b) < 8 || !utf8.Valid(b) {
		return false
	}
	total, letters, spaces := 0, 0, 0
	for _, r := range string(b) {
		total++
		switch {
		case r == ' ' || r == '\n' || r == '\t' || r == '\r':
			spaces++
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			return false
		case unicode.IsLetter(r):
			letters++
		}
	}
	return letters*2 >= total && (spaces > 0 || total < 24)
}

// Runs of chunks that may hold an encoded payload.
const (
	candHex    = iota // space-separated hex byte chunks ("69 67 6e")
	candOctets        // binary octets ("01101001 01100111")
)

type cand struct {
	kind       uint8
	start, end int32
}

// candRun tracks a run of consecutive candidate chunks.
type candRun struct {
	count      int
	start, end int
}

// step adds a chunk (ok: it belongs to the run) and appends a finished run
// of at least minCount chunks to runs.
func (r *candRun) step(runs []cand, kind uint8, minCount int, ok bool, start, end int) []cand {
	if ok {
		if r.count == 0 {
			r.start = start
		}
		r.count++
		r.end = end
		return runs
	}
	if r.count >= minCount {
		runs = append(runs, cand{kind: kind, start: int32(r.start), end: int32(r.end)})
	}
	r.count = 0
	return runs
}
