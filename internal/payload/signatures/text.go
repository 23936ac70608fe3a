package signatures

import (
	"unicode"
	"unicode/utf8"
)

// Words are compared by a 64-bit hash of their normalised form: ASCII
// and fullwidth letters lowercased, Latin diacritics folded ("révèle" =
// "revele"), invisible characters skipped ("ig\u200bnore" = "ignore").
// CJK, kana and Hangul characters are one word each, so the same
// word-sequence patterns work for languages written without spaces.
//
// The hash shifts the normalised bytes (never 0) into a 64-bit
// accumulator and mixes it in whenever it is full: cheaper than a
// multiply per byte, and collision-free for words of up to 7 bytes.
const (
	hashSeed = 0x243F6A8885A308D3
	mulA     = 0x9E3779B97F4A7C15
	mulB     = 0xD6E8FEB86659FD93
)

// hasher is a word hash in progress: h holds the mixed full chunks, acc
// the bytes of the current one, lw the OR of all bytes (bit 0x40 is set
// by ASCII letters and by the lead byte of any non-ASCII rune, not by
// digits).
type hasher struct {
	h, acc uint64
	lw     byte
}

func newHasher() hasher { return hasher{h: hashSeed} }

func (x *hasher) byte(b byte) {
	x.lw |= b
	x.acc = x.acc<<8 | uint64(b)
	if x.acc >= 1<<56 { // full: 8 bytes, none of them 0
		x.h = mixChunk(x.h, x.acc)
		x.acc = 0
	}
}

func mixChunk(h, acc uint64) uint64 {
	h = (h ^ acc) * mulA
	return h ^ h>>31
}

// rune adds the UTF-8 form of r.
func (x *hasher) rune(r rune) {
	if r < utf8.RuneSelf {
		x.byte(byte(r))
		return
	}
	var b [4]byte
	n := utf8.EncodeRune(b[:], r)
	for _, c := range b[:n] {
		x.byte(c)
	}
}

// sum finishes the hash. Its lowest bit says whether the word has a
// letter (only such words count for repetition); 0 is kept free as the
// empty table slot.
func (x *hasher) sum() uint64 { return hashSum(x.h, x.acc, x.lw) }

func hashSum(h, acc uint64, lw byte) uint64 {
	v := (h ^ acc) * mulB
	v ^= v >> 32
	v = v&^1 | uint64(lw>>6&1)
	if v == 0 {
		return 2
	}
	return v
}

// wordByte maps an ASCII byte to its lowercase form if it is part of a
// word (letter or digit), else 0.
var wordByte = func() (t [256]byte) {
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c)
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = byte(c)
		t[c-'a'+'A'] = byte(c)
	}
	return t
}()

// letterByte marks ASCII letters (not digits): only words with a letter
// count towards token repetition, so tables of numbers do not.
var letterByte = func() (t [256]byte) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 1
		t[c-'a'+'A'] = 1
	}
	return t
}()

type runeKind uint8

const (
	rkSep    runeKind = iota // ends a word
	rkIgnore                 // invisible: neither part of a word nor a separator
	rkLetter                 // part of a word
	rkSingle                 // a word by itself (CJK, kana, Hangul)
)

// latinFold folds U+00C0..U+017F to a lowercase ASCII letter, 0 where
// the character is not a letter we fold.
var latinFold = func() (t [0x180 - 0xC0]byte) {
	const s = "aaaaaaaceeeeiiii" + "dnooooo\x00ouuuuyt\x00" + // U+00C0..U+00DF (× and ß kept apart)
		"aaaaaaaceeeeiiii" + "dnooooo\x00ouuuuyty" + // U+00E0..U+00FF
		"aaaaaaccccccccdd" + "ddeeeeeeeeeegggg" + // U+0100..U+011F
		"gggghhhhiiiiiiii" + "iiiijjkkklllllll" + // U+0120..U+013F
		"lllnnnnnnnnnoooooooorrrrrrssssssss" + // U+0140..U+0161
		"ttttttuuuuuuuuuuuuwwyyyzzzzzzs" // U+0162..U+017F
	if len(s) != len(t) {
		panic("signatures: latinFold table has the wrong length")
	}
	copy(t[:], s)
	return t
}()

// classifyRune says how a non-ASCII rune takes part in words and
// returns its folded form.
func classifyRune(r rune) (runeKind, rune) {
	switch {
	case r >= 0xC0 && r < 0x180:
		if f := latinFold[r-0xC0]; f != 0 {
			return rkLetter, rune(f)
		}
		if r == 0xD7 || r == 0xF7 {
			return rkSep, r
		}
		return rkLetter, unicode.ToLower(r)
	case r == 0xAD, r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E,
		r >= 0x2060 && r <= 0x2069, r == 0xFEFF, r == 0x180E,
		r >= 0xFE00 && r <= 0xFE0F, r >= 0xE0000 && r <= 0xE01EF:
		return rkIgnore, r
	case r >= 0x300 && r <= 0x36F: // combining marks: "e\u0301" = "e"
		return rkIgnore, r
	case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
		a := byte(r - 0xFEE0)
		if w := wordByte[a]; w != 0 {
			return rkLetter, rune(w)
		}
		return rkSep, r
	case r >= 0x3040 && r <= 0x30FF, r >= 0x3400 && r <= 0x4DBF,
		r >= 0x4E00 && r <= 0x9FFF, r >= 0xF900 && r <= 0xFAFF,
		r >= 0xAC00 && r <= 0xD7AF, r >= 0xFF66 && r <= 0xFF9F:
		return rkSingle, r
	case unicode.IsLetter(r) || unicode.IsDigit(r):
		return rkLetter, unicode.ToLower(r)
	case unicode.Is(unicode.Mn, r):
		return rkIgnore, r
	}
	return rkSep, r
}

// hashSingle is the hash of the one-rune word r.
func hashSingle(r rune) uint64 {
	x := newHasher()
	x.rune(r)
	return x.sum()
}

func runeLen(r rune) int {
	if r < utf8.RuneSelf {
		return 1
	}
	return utf8.RuneLen(r)
}

// token is one word of the text.
type token struct {
	start, end int32  // byte span in the original text
	h          uint64 // hash of the normalised form
}

// nextToken returns the first word at or after text[i:], and ok=false
// when there is none. It is the reference tokenizer; the hot loop in
// Scan inlines the same rules.
func nextToken(text []byte, i int) (t token, next int, ok bool) {
	n := len(text)
	inWord := false
	var x hasher
	start := 0
	for i < n {
		c := text[i]
		if c < utf8.RuneSelf {
			if w := wordByte[c]; w != 0 {
				if !inWord {
					inWord, start, x = true, i, newHasher()
				}
				x.byte(w)
				i++
				continue
			}
			if inWord {
				return token{int32(start), int32(i), x.sum()}, i, true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		kind, f := classifyRune(r)
		if r == utf8.RuneError && size == 1 {
			kind = rkSep
		}
		switch kind {
		case rkIgnore:
		case rkLetter:
			if !inWord {
				inWord, start, x = true, i, newHasher()
			}
			x.rune(f)
		case rkSingle:
			if inWord {
				return token{int32(start), int32(i), x.sum()}, i, true
			}
			return token{int32(i), int32(i + size), hashSingle(f)}, i + size, true
		default:
			if inWord {
				return token{int32(start), int32(i), x.sum()}, i, true
			}
		}
		i += size
	}
	if inWord {
		return token{int32(start), int32(n), x.sum()}, n, true
	}
	return token{}, n, false
}

// foldWord writes the normalised form of text[start:end] into out and
// returns its length (truncated to len(out)).
func foldWord(text []byte, start, end int, out []byte) int {
	k := 0
	for i := start; i < end && k < len(out); {
		c := text[i]
		if c < utf8.RuneSelf {
			if w := wordByte[c]; w != 0 {
				out[k] = w
				k++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		if kind, f := classifyRune(r); kind == rkLetter || kind == rkSingle {
			if k+runeLen(f) > len(out) {
				return k
			}
			k += utf8.EncodeRune(out[k:], f)
		}
		i += size
	}
	return k
}

// hashBytes hashes an already normalised word.
func hashBytes(b []byte) uint64 {
	x := newHasher()
	for _, c := range b {
		x.byte(c)
	}
	return x.sum()
}
