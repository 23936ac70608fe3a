package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxBodyBytes is the largest request body [Key] accepts: canonicalising and
// hashing a bigger one costs more than the cache is likely to save, and its
// answer would rarely be asked for twice.
const MaxBodyBytes = 1 << 20

// keyVersion is hashed first: bump it when the canonical form changes so old
// entries in a shared Redis are simply never found again.
const keyVersion = "sluice-cache-key-v1"

// droppedFields are top-level request fields that do not change the answer.
// Only the top level is filtered: a tool's JSON schema may well have a
// property called "user".
//
//   - stream, stream_options: how the answer is delivered. A streamed request is
//     served from a non-streamed answer replayed as SSE; whether a usage chunk
//     is sent (stream_options.include_usage) is the replay's business.
//   - user, metadata, safety_identifier: end-user attribution for the
//     provider's abuse monitoring (metadata.user_id on Anthropic). Tenants are
//     kept apart by the scope, not by these.
//   - store: whether OpenAI keeps the completion for distillation/evals.
//   - service_tier: latency and price class, same model and same answer.
//   - prompt_cache_key: a routing hint for the provider's prompt cache.
//
// Everything else is kept, including n, seed, logprobs, parallel_tool_calls
// and unknown fields (a field we do not know may well change the answer).
var droppedFields = map[string]bool{
	"stream":            true,
	"stream_options":    true,
	"user":              true,
	"metadata":          true,
	"safety_identifier": true,
	"store":             true,
	"service_tier":      true,
	"prompt_cache_key":  true,
}

// Key returns the cache key of a request body sent to endpoint (for example
// "/v1/chat/completions" or "/v1/messages") on behalf of scope, and whether
// the request may be cached at all.
//
// It refuses (ok=false) bodies over [MaxBodyBytes], bodies that are not valid
// UTF-8 or not a single JSON object, and numbers whose exponent is absurd.
// It deliberately does not refuse on sampling: a temperature above 0 or an
// absent seed make answers vary, but the operator who enabled caching asked
// for a repeatable answer, and temperature, seed and the rest are part of the
// key, so such requests are cached like any other. "stream": true is cacheable
// too: the answer is replayed as SSE.
//
// Canonical form: objects with keys sorted bytewise, no whitespace, strings
// with a fixed escaping (the text itself untouched, no Unicode
// normalisation), numbers as exact decimals normalised so that 1, 1.0, 10e-1
// and 1E0 are equal (no conversion to float64, so 0.1 and
// 0.10000000000000001 stay apart). A duplicate object key keeps the last
// value, as Go's and most providers' decoders do.
func Key(endpoint string, body []byte, scope string) ([32]byte, bool) {
	if len(body) > MaxBodyBytes || !utf8.Valid(body) {
		return [32]byte{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return [32]byte{}, false
	}
	if _, err := dec.Token(); err != io.EOF { // trailing data
		return [32]byte{}, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return [32]byte{}, false
	}
	for f := range droppedFields {
		delete(obj, f)
	}
	buf := make([]byte, 0, len(body)+64)
	buf, ok = appendCanonical(buf, obj)
	if !ok {
		return [32]byte{}, false
	}
	h := sha256.New()
	// Length-prefixed parts, so that no endpoint/scope/body split of the same
	// bytes can collide.
	for _, part := range [][]byte{[]byte(keyVersion), []byte(endpoint), []byte(scope), buf} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k, true
}

// Canonical returns the canonical form [Key] hashes (without endpoint and
// scope), for tests and debugging.
func Canonical(body []byte) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if obj, ok := v.(map[string]any); ok {
		for f := range droppedFields {
			delete(obj, f)
		}
	}
	return appendCanonical(nil, v)
}

func appendCanonical(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, v), true
	case string:
		return appendString(b, v), true
	case json.Number:
		return appendNumber(b, string(v))
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendCanonical(b, e); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var ok bool
			if b, ok = appendCanonical(b, v[k]); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	}
	return b, false
}

// appendString quotes s with one fixed escaping: only '"', '\\' and control
// characters are escaped, so the mapping is injective.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// maxExponent bounds the decimal exponent of a number; beyond it no provider
// would accept the value, and refusing keeps the arithmetic in int64.
const maxExponent = 1 << 30

// appendNumber writes a JSON number (already validated by the decoder) as an
// exact decimal: "0" for zero, otherwise [-]D[.DDD]eN with no leading or
// trailing zeros in the significand.
func appendNumber(b []byte, s string) ([]byte, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	mant, exp := s, int64(0)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		e, err := strconv.ParseInt(strings.TrimPrefix(s[i+1:], "+"), 10, 64)
		if err != nil || e > maxExponent || e < -maxExponent {
			return b, false
		}
		mant, exp = s[:i], e
	}
	digits := mant
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits = mant[:i] + mant[i+1:]
		exp -= int64(len(mant) - i - 1)
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return append(b, '0'), true // -0, 0.0, 0e5 are all zero
	}
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	// Scientific form with one digit before the point.
	exp += int64(len(trimmed) - 1)
	if neg {
		b = append(b, '-')
	}
	b = append(b, trimmed[0])
	if len(trimmed) > 1 {
		b = append(b, '.')
		b = append(b, trimmed[1:]...)
	}
	b = append(b, 'e')
	return strconv.AppendInt(b, exp, 10), true
}
