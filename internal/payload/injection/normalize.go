package injection

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normInfo records what normalisation removed or rewrote; several of these
// are signals in their own right.
type normInfo struct {
	flood      int // repeated chunks dropped (a repeated-token attack when large)
	homoglyphs int // mixed-script words folded to Latin
	spaced     int // runs of spaced-out letters joined
	invisible  int // zero-width, bidi, tag and variation-selector runes removed
}

// normalize writes the canonical form of src to st.norm and returns it:
//
//   - Unicode NFKC (fullwidth, mathematical and circled letters become
//     ASCII), then lower case;
//   - Latin letters lose their diacritics (é→e, ß→ss), Arabic and Hindi
//     spelling variants are unified, combining marks on Latin letters
//     (Zalgo text) are dropped;
//   - zero-width, bidi-control, Unicode tag and variation-selector
//     characters are removed; tag characters that spell ASCII and long
//     variation-selector runs are decoded into st.tags and st.vs;
//   - Cyrillic, Greek and Armenian look-alikes inside otherwise Latin words
//     become Latin letters;
//   - non-ASCII punctuation becomes its ASCII counterpart and whitespace
//     runs collapse to one space (st.lines keeps where lines started);
//   - a chunk (whitespace-separated) repeating the previous one to four
//     chunks is dropped after its third occurrence (token floods);
//   - spaced-out letters ("i g n o r e", "i.g.n.o.r.e") are joined;
//   - leetspeak digits inside words ("1gn0r3") become letters, and the
//     remaining digits all read as '0'.
//
// Plain ASCII input skips the Unicode stage entirely (see chunks.go for
// the rest). It also tokenises the result (see tokState) with the given
// feature flags and vocabulary.
func normalize(src []byte, st *scratch, flags uint32, v *vocab) []byte {
	st.info = normInfo{}
	st.tags = st.tags[:0]
	st.vs = st.vs[:0]
	in := src
	ascii := isASCII(src)
	st.ascii = ascii
	if !ascii {
		st.nfkc = norm.NFKC.Append(st.nfkc[:0], src...)
		st.chars = foldUnicode(st.chars[:0], st.nfkc, st)
		in = st.chars
	}
	st.hiddenScan = false
	var tz tokState
	tz.start(st, len(in)+2, flags, v)
	buf, w := collapse(st.norm[:0], in, ascii, st)
	tz.text = buf
	w = chunkWords(st, buf, w, ascii, &tz)
	st.norm = buf[:w]
	tz.finish(st, w)
	return st.norm
}

// isASCII reports whether b is all ASCII, eight bytes at a time.
func isASCII(b []byte) bool {
	i := 0
	var acc uint64
	for ; i+32 <= len(b); i += 32 {
		acc |= load64(b[i:]) | load64(b[i+8:]) | load64(b[i+16:]) | load64(b[i+24:])
	}
	for ; i+8 <= len(b); i += 8 {
		acc |= load64(b[i:])
	}
	if acc&msb != 0 {
		return false
	}
	for ; i < len(b); i++ {
		if b[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Byte classes used by the ASCII passes.
const (
	clSpace = 1 << iota
	clLetter
	clDigit
	clLeet // digit or symbol read as a letter in leetspeak
)

// The byte tables are built by variable initialisers (not init functions)
// so that the vocabulary, built the same way, can rely on them.
var (
	asciiClass = func() (t [256]uint8) {
		for c := 'A'; c <= 'Z'; c++ {
			t[c] |= clLetter
		}
		for c := 'a'; c <= 'z'; c++ {
			t[c] |= clLetter
		}
		for c := '0'; c <= '9'; c++ {
			t[c] |= clDigit
		}
		for _, c := range " \t\r\v\f" {
			t[c] |= clSpace
		}
		t['\n'] |= clSpace
		for _, c := range "013457@$" {
			t[c] |= clLeet
		}
		return t
	}()
	lowerASCII = func() (t [256]byte) {
		for c := range t {
			t[c] = byte(c)
		}
		for c := 'A'; c <= 'Z'; c++ {
			t[c] = byte(c + 'a' - 'A')
		}
		return t
	}()
	leetMap = func() (t [256]byte) {
		for from, to := range map[byte]byte{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', '$': 's'} {
			t[from] = to
		}
		return t
	}()
)

func hasDigit(b []byte) bool {
	for _, c := range b {
		if c >= '0' && c <= '9' {
			return true
		}
	}
	return false
}

// lenMask[k] keeps the first k of sixteen bytes held in two words.
var lenMask = func() (t [17][2]uint64) {
	for k := range t {
		for b := 0; b < k; b++ {
			t[k][b/8] |= 0xFF << (8 * (b % 8))
		}
	}
	return t
}()

// specialSWAR marks the bytes that need the slow path: digits and '@'
// (with ':' to '?' in between, rare enough not to matter) and '$'.
func specialSWAR(x uint64) uint64 {
	return gtMask(x, '0'-1)&ltMask(x, '@'+1) | eqMask(x, '$')
}

// isSingleLetter reports whether chunk is exactly one letter.
func isSingleLetter(chunk []byte) bool {
	if len(chunk) == 1 {
		return asciiClass[chunk[0]]&clLetter != 0
	}
	if len(chunk) > 4 || chunk[0] < 0x80 {
		return false
	}
	r, size := utf8.DecodeRune(chunk)
	return size == len(chunk) && unicode.IsLetter(r)
}

// wordBreak marks, inside a run of single-letter chunks, a separator that
// was wider than one space ("i g n o r e  a l l").
const wordBreak = 0x01

// closeRun finishes a run of single-letter chunks in dst[start:end]: four
// or more letters are joined (separators removed, marked word breaks kept
// as one space); shorter runs only lose the marks. It returns the run's
// new end.
func closeRun(dst []byte, start, end, letters int, info *normInfo) int {
	join := letters >= 4
	if join {
		info.spaced++
	}
	w := start
	for _, c := range dst[start:end] {
		switch {
		case c == wordBreak:
			c = ' '
		case c == ' ' && join:
			continue
		}
		dst[w] = c
		w++
	}
	return w
}

var isJoinSep = func() (t [256]bool) {
	for _, c := range ".-_*|/+~," {
		t[c] = true
	}
	return t
}()

// joinSeparated rewrites b in place without its separators if it spells
// letters split by one repeated separator ("i.g.n.o.r.e", "i-g-n-o-r-e")
// and returns the new length, or 0 if b is not such a chunk.
func joinSeparated(b []byte) int {
	if len(b) < 7 || len(b)%2 == 0 || asciiClass[b[0]]&clLetter == 0 {
		return 0
	}
	sep := b[1]
	if !isJoinSep[sep] {
		return 0
	}
	for k, c := range b {
		if k%2 == 0 {
			if asciiClass[c]&(clLetter|clLeet) == 0 {
				return 0
			}
		} else if c != sep {
			return 0
		}
	}
	n := 0
	for k := 0; k < len(b); k += 2 {
		b[n] = b[k]
		n++
	}
	return n
}

// unleet rewrites leetspeak in the words of b (lower-case ASCII chunk): a
// word with a digit or symbol between two letters ("pr3v10us", "1gn0r3",
// "h3ll0") is read as letters throughout. Numbers with units or ordinals
// ("5kg", "3rd"), trailing digits ("gpt4", "covid19") and numbers stay.
func unleet(b []byte) {
	for i := 0; i < len(b); {
		if asciiClass[b[i]]&(clLetter|clDigit|clLeet) == 0 {
			i++
			continue
		}
		j := i
		letterSeen, leetAfterLetter, inside := false, false, false
		for j < len(b) {
			c := asciiClass[b[j]]
			if c&(clLetter|clDigit|clLeet) == 0 {
				break
			}
			if c&clLetter != 0 {
				if leetAfterLetter {
					inside = true
				}
				letterSeen = true
			} else if c&clLeet != 0 && letterSeen {
				leetAfterLetter = true
			}
			j++
		}
		if inside {
			for k := i; k < j; k++ {
				if asciiClass[b[k]]&clLeet != 0 {
					b[k] = leetMap[b[k]]
				}
			}
		}
		i = j
	}
}

// foldUnicode is the Unicode stage of normalize (input already NFKC).
func foldUnicode(dst, src []byte, st *scratch) []byte {
	wordStart := -1
	wordLatin, wordLook, wordOther := false, false, false
	prevWordLatin := false
	vsRun := 0
	endWord := func() {
		if wordStart >= 0 {
			if wordLook && (wordLatin || (!wordOther && prevWordLatin && len(dst)-wordStart >= 6)) {
				dst = foldHomoglyphs(dst, wordStart)
				st.info.homoglyphs++
				wordLatin = true
			}
			prevWordLatin = wordLatin && !wordOther
		}
		wordStart = -1
		wordLatin, wordLook, wordOther = false, false, false
	}
	startWord := func() {
		if wordStart < 0 {
			wordStart = len(dst)
		}
	}
	for i := 0; i < len(src); {
		c := src[i]
		if c < 0x80 {
			if vsRun > 0 {
				st.vs = endVS(st.vs, vsRun)
				vsRun = 0
			}
			cl := asciiClass[c]
			switch {
			case cl&clLetter != 0:
				startWord()
				wordLatin = true
			case cl&clDigit != 0:
				startWord()
			default:
				endWord()
			}
			if c < 0x20 && cl&clSpace == 0 {
				c = ' ' // other control characters
			}
			dst = append(dst, lowerASCII[c])
			i++
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		i += size
		if r >= 0xFE00 && r <= 0xFE0F || r >= 0xE0100 && r <= 0xE01EF {
			// Variation selectors: one after an emoji is ordinary; long
			// runs can carry one byte each (an emoji-smuggling trick).
			b := byte(r - 0xFE00)
			if r >= 0xE0100 {
				b = byte(r - 0xE0100 + 16)
			}
			st.vs = append(st.vs, b)
			vsRun++
			st.info.invisible++
			continue
		}
		if vsRun > 0 {
			st.vs = endVS(st.vs, vsRun)
			vsRun = 0
		}
		props := runeProps(r)
		switch {
		case r == utf8.RuneError && size == 1:
			endWord()
			dst = append(dst, ' ')
			continue
		case r >= 0xE0000 && r <= 0xE007F:
			// Unicode tag characters mirror ASCII; they render as nothing.
			if r >= 0xE0020 && r <= 0xE007E {
				st.tags = append(st.tags, byte(r-0xE0000))
			} else if len(st.tags) > 0 && st.tags[len(st.tags)-1] != ' ' {
				st.tags = append(st.tags, ' ')
			}
			st.info.invisible++
			continue
		case props&rpInvisible != 0:
			st.info.invisible++
			continue // zero-width inside a word joins its halves
		case props&rpMark != 0:
			// Combining marks on Latin letters are accents or Zalgo noise.
			if len(dst) > 0 && asciiClass[dst[len(dst)-1]]&clLetter != 0 || dropMark(r) {
				continue
			}
			startWord()
			dst = utf8.AppendRune(dst, r)
			continue
		case props&rpSpace != 0:
			endWord()
			if r == 0x2028 || r == 0x2029 || r == 0x85 {
				dst = append(dst, '\n')
			} else {
				dst = append(dst, ' ')
			}
			continue
		}
		if s, ok := foldRune(r); ok {
			// Latin with diacritics, Arabic variants, letter-like symbols.
			startWord()
			if s == "" {
				continue
			}
			if asciiClass[s[0]]&clLetter != 0 {
				wordLatin = true
			}
			dst = append(dst, s...)
			continue
		}
		if props&rpPunct != 0 {
			endWord()
			dst = append(dst, punctASCII(r))
			continue
		}
		if props&rpLetter != 0 {
			r = toLower(r)
			if r == 'ё' {
				r = 'е'
			} else if r == 'ς' {
				r = 'σ'
			}
			startWord()
			if r < rune(len(homoglyphTab)) && homoglyphTab[r] != 0 {
				wordLook = true
			} else {
				wordOther = true
			}
			dst = utf8.AppendRune(dst, r)
			continue
		}
		// Symbols (emoji and the like) and anything else stay as they are
		// but end the current word.
		endWord()
		dst = utf8.AppendRune(dst, r)
	}
	endWord()
	if vsRun > 0 {
		st.vs = endVS(st.vs, vsRun)
	}
	return dst
}

// endVS keeps a run of variation selectors in vs only if it is long enough
// to carry a message.
func endVS(vs []byte, run int) []byte {
	if run < 4 {
		return vs[:len(vs)-run]
	}
	return append(vs, ' ')
}

// Rune properties for foldUnicode, from tables below U+3100 (every
// alphabet and CJK punctuation) and for the big CJK and Hangul blocks, so
// that common text avoids the unicode package's range searches.
const (
	rpInvisible = 1 << iota // zero-width, bidi control, soft hyphen, filler
	rpMark                  // non-spacing or enclosing mark
	rpSpace
	rpPunct
	rpLetter // letter, digit or spacing mark
)

const propTabSize = 0x3100

var runePropTab, lowerTab = func() (props [propTabSize]uint8, lower [propTabSize]uint16) {
	for r := rune(0); r < propTabSize; r++ {
		props[r] = slowProps(r)
		lower[r] = uint16(unicode.ToLower(r))
	}
	return props, lower
}()

func slowProps(r rune) uint8 {
	switch {
	case isInvisible(r):
		return rpInvisible
	case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
		return rpMark
	case unicode.IsSpace(r):
		return rpSpace
	case unicode.IsPunct(r):
		return rpPunct
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mc, r):
		return rpLetter
	}
	return 0
}

func runeProps(r rune) uint8 {
	switch {
	case r < propTabSize:
		return runePropTab[r]
	case r >= 0x3400 && r <= 0x9FFF, r >= 0xAC00 && r <= 0xD7A3: // CJK ideographs, Hangul
		return rpLetter
	}
	return slowProps(r)
}

func toLower(r rune) rune {
	if r < propTabSize {
		return rune(lowerTab[r])
	}
	if r >= 0x3400 && r <= 0x9FFF || r >= 0xAC00 && r <= 0xD7A3 {
		return r // no case
	}
	return unicode.ToLower(r)
}

// isInvisible reports format characters that render as nothing: zero-width
// spaces and joiners, bidi controls, soft hyphens, fillers.
func isInvisible(r rune) bool {
	switch {
	case r == 0xAD, r == 0x34F, r == 0x61C, r == 0x115F, r == 0x1160, r == 0x17B4, r == 0x17B5,
		r >= 0x180B && r <= 0x180F, r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E,
		r >= 0x2060 && r <= 0x206F, r == 0x3164, r == 0xFEFF, r == 0xFFA0,
		r >= 0x1BCA0 && r <= 0x1BCA3, r >= 0x1D173 && r <= 0x1D17A:
		return true
	}
	return false
}

// dropMark reports combining marks removed in every script: Arabic
// diacritics (tashkeel) and the Devanagari nukta, which writers omit.
func dropMark(r rune) bool {
	return r >= 0x64B && r <= 0x65F || r == 0x670 || r == 0x93C
}

// punctASCII maps non-ASCII punctuation to an ASCII stand-in.
func punctASCII(r rune) byte {
	switch {
	case unicode.Is(unicode.Pd, r):
		return '-'
	case unicode.Is(unicode.Ps, r):
		return '('
	case unicode.Is(unicode.Pe, r):
		return ')'
	case unicode.Is(unicode.Pi, r), unicode.Is(unicode.Pf, r):
		return '"'
	}
	switch r {
	case '、', '،':
		return ','
	case '؟', '¿':
		return '?'
	case '¡':
		return '!'
	case '؛':
		return ';'
	}
	return '.'
}

// foldRune maps a rune to its canonical spelling when that differs from
// plain lower-casing: Latin letters with diacritics lose them, Arabic
// letter variants merge, enclosed and regional-indicator letters become
// ASCII. The empty string deletes the rune.
func foldRune(r rune) (string, bool) {
	switch {
	case r >= 0xC0 && r < 0x250:
		s := latinFold[r-0xC0]
		return s, s != ""
	case r >= 0x1E00 && r < 0x1F00:
		s := latinExtFold[r-0x1E00]
		return s, s != ""
	case r >= 0x600 && r < 0x700:
		switch r {
		case 'أ', 'إ', 'آ', 'ٱ':
			return "ا", true
		case 'ى':
			return "ي", true
		case 'ة':
			return "ه", true
		case 'ـ':
			return "", true
		}
	case r >= 0x1F1E6 && r <= 0x1F1FF: // regional indicators
		return asciiLetters[r-0x1F1E6 : r-0x1F1E6+1], true
	case r >= 0x1F130 && r <= 0x1F149, r >= 0x1F150 && r <= 0x1F169, r >= 0x1F170 && r <= 0x1F189:
		k := (r - 0x1F130) % 0x20
		return asciiLetters[k : k+1], true
	}
	return "", false
}

const asciiLetters = "abcdefghijklmnopqrstuvwxyz"

// latinFold and latinExtFold give the ASCII base of Latin letters with
// diacritics in U+00C0-U+024F and U+1E00-U+1EFF ("" if none).
var latinFold, latinExtFold = buildLatinFold()

func buildLatinFold() (lf [0x250 - 0xC0]string, ext [0x100]string) {
	special := map[rune]string{
		'ß': "ss", 'ẞ': "ss", 'æ': "ae", 'Æ': "ae", 'œ': "oe", 'Œ': "oe", 'ø': "o", 'Ø': "o",
		'ł': "l", 'Ł': "l", 'đ': "d", 'Đ': "d", 'ð': "d", 'Ð': "d", 'þ': "th", 'Þ': "th",
		'ı': "i", 'ħ': "h", 'Ħ': "h", 'ŀ': "l", 'Ŀ': "l", 'ŧ': "t", 'Ŧ': "t", 'ƒ': "f",
		'ɡ': "g", 'ɑ': "a", 'ĸ': "k", 'ŉ': "n", 'ſ': "s",
	}
	fold := func(r rune) string {
		if s, ok := special[r]; ok {
			return s
		}
		d := norm.NFD.String(string(unicode.ToLower(r)))
		if d != "" && d[0] < 0x80 && asciiClass[d[0]]&clLetter != 0 {
			return d[:1]
		}
		return ""
	}
	for r := rune(0xC0); r < 0x250; r++ {
		lf[r-0xC0] = fold(r)
	}
	for r := rune(0x1E00); r < 0x1F00; r++ {
		ext[r-0x1E00] = fold(r)
	}
	return lf, ext
}

// homoglyphs maps lower-case Cyrillic, Greek and Armenian letters that look
// like Latin ones.
var homoglyphs = map[rune]byte{
	'а': 'a', 'в': 'b', 'е': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p',
	'с': 'c', 'т': 't', 'у': 'y', 'х': 'x', 'і': 'i', 'ї': 'i', 'ј': 'j', 'ѕ': 's',
	'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'һ': 'h', 'ӏ': 'l', 'ѵ': 'v', 'ɡ': 'g', 'ɑ': 'a',
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o',
	'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'γ': 'y', 'ω': 'w', 'ϲ': 'c', 'ϳ': 'j',
	'օ': 'o', 'ս': 'u', 'հ': 'h', 'ո': 'n', 'ց': 'g', 'զ': 'q', 'ք': 'p',
}

// homoglyphTab is homoglyphs as a table (all of them are below U+0600).
var homoglyphTab = func() (t [0x600]byte) {
	for r, b := range homoglyphs {
		t[r] = b
	}
	return t
}()

// foldHomoglyphs rewrites dst[start:] (one word) with look-alikes as
// Latin letters; the result is never longer.
func foldHomoglyphs(dst []byte, start int) []byte {
	w := start
	for r := start; r < len(dst); {
		ru, size := utf8.DecodeRune(dst[r:])
		if ru < rune(len(homoglyphTab)) && homoglyphTab[ru] != 0 {
			dst[w] = homoglyphTab[ru]
			w++
		} else {
			w += copy(dst[w:], dst[r:r+size])
		}
		r += size
	}
	return dst[:w]
}
