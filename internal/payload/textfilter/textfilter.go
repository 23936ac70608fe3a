// Package textfilter matches deny and allow lists of words and regular expressions in text:
// words match whole words, case-insensitively; regexes are RE2. A deny match that lies
// inside an allow match is not reported, so an allow list carves out exceptions.
package textfilter

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pattern is a word or a regular expression.
type Pattern struct {
	Word  string
	Regex string
}

// Span is a match: bytes [Start, End) of the text.
type Span struct{ Start, End int }

// Filter is compiled deny and allow lists; safe for concurrent use.
type Filter struct {
	deny, allow list
	maxLen      int
}

type list struct {
	words [][]byte // folded
	res   []rx
}

// rx is a regex and, when it has one, a literal every match contains (lower-cased): the
// regex runs only on texts that contain it, so most texts never pay for the regex engine.
type rx struct {
	re   *regexp.Regexp
	need []byte
	fold bool // need is compared against the folded text
}

// UnboundedHold is what a streaming caller holds back for a regex without a length bound
// (a*, .+): matches longer than this may be split across chunks and missed.
const UnboundedHold = 256

// New compiles the lists.
func New(deny, allow []Pattern) (*Filter, error) {
	f := &Filter{}
	var err error
	if f.deny, f.maxLen, err = compile(deny); err != nil {
		return nil, err
	}
	if f.allow, _, err = compile(allow); err != nil {
		return nil, err
	}
	return f, nil
}

func compile(ps []Pattern) (list, int, error) {
	var l list
	maxLen := 0
	for i, p := range ps {
		switch {
		case p.Word != "":
			w := fold(nil, []byte(p.Word))
			l.words = append(l.words, w)
			// the word and a boundary character each side
			maxLen = max(maxLen, len(w)+2*utf8.UTFMax)
		case p.Regex != "":
			tree, err := syntax.Parse(p.Regex, syntax.Perl)
			if err != nil {
				return l, 0, fmt.Errorf("pattern %d: %v", i, err)
			}
			tree = tree.Simplify()
			n := maxBytes(tree)
			if n < 0 || n > UnboundedHold {
				n = UnboundedHold
			}
			maxLen = max(maxLen, n+2*utf8.UTFMax)
			re, err := regexp.Compile(p.Regex)
			if err != nil {
				return l, 0, fmt.Errorf("pattern %d: %v", i, err)
			}
			need, folded := required(tree)
			l.res = append(l.res, rx{re: re, need: need, fold: folded})
		}
	}
	return l, maxLen, nil
}

// required returns the longest literal every match of re contains, and whether it is
// case-folded (then lower-cased, to look for in folded text); nil when there is none of at
// least three bytes.
func required(re *syntax.Regexp) ([]byte, bool) {
	var best []rune
	bestFold := false
	consider := func(r *syntax.Regexp) {
		if r.Op == syntax.OpLiteral && len(r.Rune) > len(best) {
			best, bestFold = r.Rune, r.Flags&syntax.FoldCase != 0
		}
	}
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	switch re.Op {
	case syntax.OpLiteral:
		consider(re)
	case syntax.OpConcat:
		for _, s := range re.Sub {
			for s.Op == syntax.OpCapture {
				s = s.Sub[0]
			}
			consider(s)
		}
	}
	lit := []byte(string(best))
	if len(lit) < 3 {
		return nil, false
	}
	if bestFold {
		// Folding that changes a character's length would hide it from fold(); such
		// literals get no prefilter.
		f := fold(nil, lit)
		if string(f) != string(fold(nil, []byte(strings.ToUpper(string(lit))))) || len(f) != len(lit) {
			return nil, false
		}
		return f, true
	}
	return lit, false
}

// maxBytes bounds the length in bytes of what re can match; -1 when unbounded.
func maxBytes(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpNoMatch:
		return 0
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return len(re.Rune) * utf8.UTFMax
		}
		n := 0
		for _, r := range re.Rune {
			n += utf8.RuneLen(r)
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return utf8.UTFMax
	case syntax.OpCapture:
		return maxBytes(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus:
		return -1
	case syntax.OpQuest:
		return maxBytes(re.Sub[0])
	case syntax.OpRepeat:
		if re.Max < 0 {
			return -1
		}
		n := maxBytes(re.Sub[0])
		if n < 0 {
			return -1
		}
		return n * re.Max
	case syntax.OpConcat:
		sum := 0
		for _, s := range re.Sub {
			n := maxBytes(s)
			if n < 0 {
				return -1
			}
			sum += n
		}
		return sum
	case syntax.OpAlternate:
		m := 0
		for _, s := range re.Sub {
			n := maxBytes(s)
			if n < 0 {
				return -1
			}
			m = max(m, n)
		}
		return m
	}
	return -1
}

// MaxLen bounds the bytes a streaming caller must hold back so that no match straddles
// what it released (UnboundedHold for unbounded regexes).
func (f *Filter) MaxLen() int { return f.maxLen }

// Find appends the deny matches in text that no allow match covers to dst, in order.
// scratch is reused for the folded text; Find returns it for the next call.
func (f *Filter) Find(text []byte, dst []Span, scratch []byte) ([]Span, []byte) {
	scratch = fold(scratch[:0], text)
	folded := scratch
	n0 := len(dst)
	dst = f.deny.find(text, folded, dst)
	if len(dst) == n0 {
		return dst, scratch
	}
	dst = append(dst[:n0], merge(dst[n0:])...)
	if len(f.allow.words) == 0 && len(f.allow.res) == 0 {
		return dst, scratch
	}
	var allowed [8]Span
	al := f.allow.find(text, folded, allowed[:0])
	out := dst[:n0]
	for _, d := range dst[n0:] {
		covered := false
		for _, a := range al {
			if a.Start <= d.Start && d.End <= a.End {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, d)
		}
	}
	return out, scratch
}

func (l *list) find(text, folded []byte, dst []Span) []Span {
	for _, w := range l.words {
		for from := 0; from < len(folded); {
			i := bytes.Index(folded[from:], w)
			if i < 0 {
				break
			}
			s := from + i
			e := s + len(w)
			if boundary(folded, s, e) {
				dst = append(dst, Span{s, e})
			}
			from = s + 1
		}
	}
	for _, x := range l.res {
		if x.need != nil {
			hay := text
			if x.fold {
				hay = folded
			}
			if !bytes.Contains(hay, x.need) {
				continue
			}
		}
		for _, m := range x.re.FindAllIndex(text, -1) {
			if m[1] > m[0] {
				dst = append(dst, Span{m[0], m[1]})
			}
		}
	}
	return dst
}

// boundary reports whether [s,e) is a whole word. Scripts written without spaces (Han,
// Hiragana, Katakana, Hangul, Thai) have no word boundaries to test.
func boundary(t []byte, s, e int) bool {
	first, _ := utf8.DecodeRune(t[s:])
	last, _ := utf8.DecodeLastRune(t[:e])
	if s > 0 && !unspaced(first) {
		if r, _ := utf8.DecodeLastRune(t[:s]); wordRune(r) {
			return false
		}
	}
	if e < len(t) && !unspaced(last) {
		if r, _ := utf8.DecodeRune(t[e:]); wordRune(r) {
			return false
		}
	}
	return true
}

func wordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

func unspaced(r rune) bool {
	return r >= 0x2E80 && (unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul, unicode.Thai))
}

// fold appends text lower-cased, keeping every character's byte length so that offsets
// in the folded text are offsets in the original (a rare character whose lower case has
// another length is kept as it is).
func fold(dst, text []byte) []byte {
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		if l := unicode.ToLower(r); l != r && utf8.RuneLen(l) == size {
			dst = utf8.AppendRune(dst, l)
		} else {
			dst = append(dst, text[i:i+size]...)
		}
		i += size
	}
	return dst
}

// merge orders spans by start (insertion sort: lists are short) and joins overlapping
// ones, in place.
func merge(s []Span) []Span {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Start < s[j-1].Start; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 && x.Start < out[n-1].End {
			out[n-1].End = max(out[n-1].End, x.End)
			continue
		}
		out = append(out, x)
	}
	return out
}
