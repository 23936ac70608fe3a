package signatures

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A pattern is a sequence of elements matched against consecutive words,
// each element optionally preceded by a bounded gap of arbitrary words.
// Patterns are written in a small notation, compiled once by New:
//
//	word      the word, case-insensitively, diacritics folded
//	word*     any word starting with "word"
//	=WORD     the word with exactly this spelling in the text (for
//	          upper-case names such as DAN that are also common words)
//	#1000     a number of at least 1000 ("100,000", "10k", "2 million")
//	(a|b c)   one of the alternatives; an alternative is a word sequence
//	(a|b)?    an optional element
//	~5        up to 5 arbitrary words before the next element
//	!elem     the anchor: the words the prefilter looks for. It must be
//	          made of exact words and should be the rarest element.
//
// CJK, kana and Hangul are one word per character, so "系统提示" is a
// sequence of four words and the gaps count characters there.
type pattern struct {
	rule    int  // index into rules
	signal  int8 // for scored rules: which signal bit, else -1
	elems   []element
	anchors []uint64 // hashes of the anchor words
	// Where each anchor word sits in the anchor element: the
	// multi-word alternatives that hold it and at which word.
	anchorAt []anchorPos
	bag      bag // words that must all be present for a match
	anchor   int // index of the anchor element
	back     int // most words a match can have before the anchor word
	fwd      int // most words a match can have from the anchor word on
	src      string
}

type anchorPos struct {
	h      uint64
	alt, k int
}

type element struct {
	gap      int
	optional bool // written "(a|b)?": may be left out
	alts     [][]wordTest
	// Single exact words are looked up in a small hash set rather than
	// tried one by one; multi holds the indices of the other
	// alternatives.
	set   []uint64
	multi []int
	// First and last words of the multi-word alternatives, to skip
	// trying them one by one where they cannot start (or end); open
	// when one of them starts (ends) with a word that is not exact.
	firstSet, lastSet   []uint64
	firstOpen, lastOpen bool
	minW                []int // per alternative: fewest words it can match
	maxW                []int // per alternative: most words it can match
	longest             int   // max over maxW
}

// maxNumberWords is the most words a number can take ("1 000 000 words",
// "one hundred thousand").
const maxNumberWords = 6

type wordKind uint8

const (
	wkExact wordKind = iota
	wkStem
	wkCase
	wkNum
)

type wordTest struct {
	kind wordKind
	h    uint64 // wkExact, wkCase: hash of the normalised word
	lit  string // wkStem: normalised prefix; wkCase: exact spelling
	min  int64  // wkNum: smallest accepted value
}

// maxSpan bounds the words a match can cover.
const maxSpan = 63

func compilePattern(src string) (*pattern, error) {
	p := &pattern{src: src, signal: -1}
	anchor := -1
	gap := 0
	s := strings.TrimSpace(src)
	for len(s) > 0 {
		switch {
		case s[0] == ' ':
			s = s[1:]
			continue
		case s[0] == '~':
			j := 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			g, err := strconv.Atoi(s[1:j])
			if err != nil {
				return nil, fmt.Errorf("pattern %q: bad gap", src)
			}
			gap += g
			s = s[j:]
			continue
		}
		isAnchor, optional := false, false
		if s[0] == '!' {
			isAnchor = true
			s = s[1:]
		}
		var alts []string
		if len(s) > 0 && s[0] == '(' {
			j := strings.IndexByte(s, ')')
			if j < 0 {
				return nil, fmt.Errorf("pattern %q: unclosed group", src)
			}
			alts = strings.Split(s[1:j], "|")
			s = s[j+1:]
			if len(s) > 0 && s[0] == '?' {
				optional = true
				s = s[1:]
			}
		} else {
			j := strings.IndexAny(s, " ~")
			if j < 0 {
				j = len(s)
			}
			alts = []string{s[:j]}
			s = s[j:]
		}
		if optional && isAnchor {
			return nil, fmt.Errorf("pattern %q: optional anchor", src)
		}
		el := element{gap: gap, optional: optional}
		gap = 0
		for _, a := range alts {
			seq, err := compileAlt(strings.TrimSpace(a))
			if err != nil {
				return nil, fmt.Errorf("pattern %q: %v", src, err)
			}
			if len(seq) == 0 {
				return nil, fmt.Errorf("pattern %q: empty alternative", src)
			}
			el.addAlt(seq)
		}
		el.set = hashSet(el.set)
		var first, last []uint64
		for _, ai := range el.multi {
			seq := el.alts[ai]
			if f := seq[0]; f.kind == wkExact || f.kind == wkCase {
				first = append(first, f.h)
			} else {
				el.firstOpen = true
			}
			if l := seq[len(seq)-1]; l.kind == wkExact || l.kind == wkCase {
				last = append(last, l.h)
			} else {
				el.lastOpen = true
			}
		}
		el.firstSet, el.lastSet = hashSet(first), hashSet(last)
		if isAnchor {
			if anchor >= 0 {
				return nil, fmt.Errorf("pattern %q: two anchors", src)
			}
			anchor = len(p.elems)
		}
		p.elems = append(p.elems, el)
	}
	if len(p.elems) == 0 {
		return nil, fmt.Errorf("pattern %q: empty", src)
	}
	if anchor < 0 {
		anchor = 0
	}
	for _, seq := range p.elems[anchor].alts {
		// The longest exact word of each alternative is likely the
		// rarest; very common words are avoided where possible.
		best := -1
		for i, w := range seq {
			if w.kind != wkExact && w.kind != wkCase {
				continue
			}
			if best < 0 || (commonWord[seq[best].h] && !commonWord[w.h]) ||
				(commonWord[seq[best].h] == commonWord[w.h] && len(w.lit) > len(seq[best].lit)) {
				best = i
			}
		}
		if best < 0 {
			return nil, fmt.Errorf("pattern %q: anchor alternative without an exact word", src)
		}
		p.anchors = append(p.anchors, seq[best].h)
	}
	// For multi-word anchor alternatives: where their anchor word sits,
	// sorted by word for a binary search.
	ael := &p.elems[anchor]
	for _, ai := range ael.multi {
		seq := ael.alts[ai]
		h := p.anchors[ai]
		for k, t := range seq {
			if t.kind == wkNum {
				return nil, fmt.Errorf("pattern %q: number in the anchor element", src)
			}
			if (t.kind == wkExact || t.kind == wkCase) && t.h == h {
				p.anchorAt = append(p.anchorAt, anchorPos{t.h, ai, k})
			}
		}
	}
	slices.SortFunc(p.anchorAt, func(a, b anchorPos) int { return cmp.Compare(a.h, b.h) })
	p.anchor = anchor
	for i, el := range p.elems {
		g := el.gap
		if i == 0 {
			g = 0
		}
		switch {
		case i < anchor:
			p.back += g + el.longest
		case i == anchor:
			p.back += g + el.longest - 1
			p.fwd += el.longest
		default:
			p.fwd += g + el.longest
		}
	}
	if p.back+p.fwd > maxSpan {
		return nil, fmt.Errorf("pattern %q: spans %d words, more than %d", src, p.back+p.fwd, maxSpan)
	}
	return p, nil
}

func (el *element) addAlt(seq []wordTest) {
	ai := len(el.alts)
	el.alts = append(el.alts, seq)
	mx := 0
	for _, t := range seq {
		if t.kind == wkNum {
			mx += maxNumberWords
		} else {
			mx++
		}
	}
	el.minW = append(el.minW, len(seq))
	el.maxW = append(el.maxW, mx)
	el.longest = max(el.longest, mx)
	if len(seq) == 1 && seq[0].kind == wkExact {
		el.set = append(el.set, seq[0].h)
	} else {
		el.multi = append(el.multi, ai)
	}
}

// hashSet turns a list of word hashes into an open-addressing set whose
// size is a power of two (0 marks an empty slot; hashes are never 0).
func hashSet(hs []uint64) []uint64 {
	if len(hs) == 0 {
		return nil
	}
	size := 2
	for size < 2*len(hs) {
		size *= 2
	}
	set := make([]uint64, size)
	for _, h := range hs {
		i := h & uint64(size-1)
		for set[i] != 0 && set[i] != h {
			i = (i + 1) & uint64(size-1)
		}
		set[i] = h
	}
	return set
}

func inSet(set []uint64, h uint64) bool {
	if len(set) == 0 {
		return false
	}
	m := uint64(len(set) - 1)
	for i := h & m; ; i = (i + 1) & m {
		switch set[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}

// compileAlt turns "word word* =WORD #100" into word tests.
func compileAlt(a string) ([]wordTest, error) {
	var seq []wordTest
	for _, f := range strings.Fields(a) {
		switch {
		case f[0] == '#':
			v, err := strconv.ParseInt(f[1:], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad number %q", f)
			}
			seq = append(seq, wordTest{kind: wkNum, min: v})
		case f[0] == '=':
			b := []byte(f[1:])
			t, _, ok := nextToken(b, 0)
			if !ok || int(t.end) != len(b) || t.start != 0 {
				return nil, fmt.Errorf("bad exact word %q", f)
			}
			seq = append(seq, wordTest{kind: wkCase, lit: f[1:], h: t.h})
		case strings.HasSuffix(f, "*"):
			b := []byte(f[:len(f)-1])
			var buf [64]byte
			t, _, ok := nextToken(b, 0)
			if !ok {
				return nil, fmt.Errorf("bad stem %q", f)
			}
			k := foldWord(b, int(t.start), int(t.end), buf[:])
			seq = append(seq, wordTest{kind: wkStem, lit: string(buf[:k])})
		default:
			b := []byte(f)
			for i := 0; ; {
				t, next, ok := nextToken(b, i)
				if !ok {
					break
				}
				var buf [64]byte
				k := foldWord(b, int(t.start), int(t.end), buf[:])
				seq = append(seq, wordTest{kind: wkExact, h: t.h, lit: string(buf[:k])})
				i = next
			}
		}
	}
	return seq, nil
}

// window is a run of words of the text: either the word log of the
// first pass or words tokenized again by fill. ent interleaves each
// word's hash (2q) and start offset (2q+1).
type window struct {
	text []byte
	ent  []uint64
	n    int
	// budget bounds backtracking so that no input can make a match
	// attempt expensive.
	budget int

	buf [2 * 4 * (maxSpan + 1)]uint64
}

// winWords is how many words fill reads at a time.
const winWords = 4 * (maxSpan + 1)

func (w *window) hash(q int) uint64 { return w.ent[2*q] }
func (w *window) pos(q int) int     { return int(w.ent[2*q+1]) }

// fill tokenizes up to winWords words from text[off:limit].
func (w *window) fill(text []byte, off, limit int) {
	w.text = text
	w.n = 0
	limit = min(limit, len(text))
	for w.n < winWords {
		t, next, ok := nextToken(text[:limit], off)
		if !ok {
			break
		}
		w.buf[2*w.n], w.buf[2*w.n+1] = t.h, uint64(t.start)
		w.n++
		off = next
	}
	w.ent = w.buf[:2*w.n]
}

// use makes the window a view of a word log.
func (w *window) use(text []byte, ent []uint64) {
	w.text, w.ent, w.n = text, ent, len(ent)/2
}

// token re-reads word q in full (its end, for exact spellings, stems and
// numbers).
func (w *window) token(q int) token {
	t, _, _ := nextToken(w.text, w.pos(q))
	return t
}

// matchAt reports whether p matches starting exactly at word i.
func (w *window) matchAt(p *pattern, i int) bool {
	w.budget = 4096
	return w.matchElem(p, 0, i, 0)
}

// matchAnchored reports whether p matches with its anchor element
// covering word a: the anchor element is placed first, then the
// elements after it are matched forwards and those before it backwards.
// This touches only the words near the anchor.
func (w *window) matchAnchored(p *pattern, a int) bool {
	w.budget = 4096
	h := w.hash(a)
	el := &p.elems[p.anchor]
	if inSet(el.set, h) && w.matchElem(p, p.anchor+1, a+1, 0) && w.matchBack(p, p.anchor-1, a, 0) {
		return true
	}
	lo, hi := 0, len(p.anchorAt)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.anchorAt[m].h < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for _, at := range p.anchorAt[lo:] {
		if at.h != h {
			break
		}
		if a < at.k {
			continue
		}
		s := a - at.k
		k := w.matchSeq(el.alts[at.alt], s)
		if k > 0 && w.matchElem(p, p.anchor+1, s+k, 0) && w.matchBack(p, p.anchor-1, s, 0) {
			return true
		}
	}
	return false
}

// matchElem matches elements ei.. with element ei starting within its
// gap (plus the gaps of skipped optional elements) of word pos.
func (w *window) matchElem(p *pattern, ei, pos, extra int) bool {
	if ei == len(p.elems) {
		return true
	}
	el := &p.elems[ei]
	g := el.gap + extra
	if ei == 0 {
		g = 0
	}
	for q := pos; q <= pos+g && q < w.n; q++ {
		w.budget--
		if w.budget < 0 {
			return false
		}
		if inSet(el.set, w.hash(q)) && w.matchElem(p, ei+1, q+1, 0) {
			return true
		}
		if !el.firstOpen && !inSet(el.firstSet, w.hash(q)) {
			continue
		}
		for _, ai := range el.multi {
			if k := w.matchSeq(el.alts[ai], q); k > 0 && w.matchElem(p, ei+1, q+k, 0) {
				return true
			}
		}
	}
	if el.optional {
		return w.matchElem(p, ei+1, pos, g)
	}
	return false
}

// matchBack matches elements ei, ei-1, ... 0 backwards: element ei must
// end within the gap of element ei+1 (plus extra) before word end.
func (w *window) matchBack(p *pattern, ei, end, extra int) bool {
	if ei < 0 {
		return true
	}
	el := &p.elems[ei]
	g := p.elems[ei+1].gap + extra
	for e := end; e >= end-g && e > 0; e-- {
		w.budget--
		if w.budget < 0 {
			return false
		}
		if inSet(el.set, w.hash(e-1)) && w.matchBack(p, ei-1, e-1, 0) {
			return true
		}
		if !el.lastOpen && !inSet(el.lastSet, w.hash(e-1)) {
			continue
		}
		for _, ai := range el.multi {
			seq := el.alts[ai]
			if seq[len(seq)-1].kind == wkNum && !w.numericAt(e-1) {
				continue
			}
			for s := e - el.minW[ai]; s >= 0 && s >= e-el.maxW[ai]; s-- {
				if w.matchSeq(seq, s) == e-s && w.matchBack(p, ei-1, s, 0) {
					return true
				}
			}
		}
	}
	if el.optional {
		return w.matchBack(p, ei-1, end, g)
	}
	return false
}

// matchSeq returns how many words seq consumes at word q, 0 if it does
// not match.
func (w *window) matchSeq(seq []wordTest, q int) int {
	w.budget--
	start := q
	for i := range seq {
		if q >= w.n {
			return 0
		}
		k := w.matchWord(&seq[i], q)
		if k == 0 {
			return 0
		}
		q += k
	}
	return q - start
}

func (w *window) matchWord(t *wordTest, q int) int {
	switch t.kind {
	case wkExact:
		if w.hash(q) == t.h {
			return 1
		}
	case wkStem:
		// Cheap rejection on the first byte before re-reading the word.
		if c := w.text[w.pos(q)]; c < 0x80 && wordByte[c] != t.lit[0] {
			return 0
		}
		tok := w.token(q)
		var buf [64]byte
		k := foldWord(w.text, int(tok.start), int(tok.end), buf[:min(len(buf), len(t.lit))])
		if string(buf[:k]) == t.lit {
			return 1
		}
	case wkCase:
		if w.hash(q) == t.h {
			if tok := w.token(q); string(w.text[tok.start:tok.end]) == t.lit {
				return 1
			}
		}
	case wkNum:
		if c := w.text[w.pos(q)]; (c < '0' || c > '9') && !inSet(numberWords, w.hash(q)) {
			return 0
		}
		v, k := w.number(q)
		if k > 0 && v >= t.min {
			return k
		}
	}
	return 0
}

// number reads a number starting at word q: digits with optional
// thousands separators ("100,000", "100 000"), an optional k/m suffix
// ("10k") and optional scale words ("2 million", "a thousand"). It
// returns the value and how many words it took.
func (w *window) number(q int) (int64, int) {
	tok := w.token(q)
	word := w.text[tok.start:tok.end]
	var v int64
	i := 0
	for i < len(word) && word[i] >= '0' && word[i] <= '9' {
		if v < 1e15 {
			v = v*10 + int64(word[i]-'0')
		}
		i++
	}
	k := 1
	if i == 0 {
		// "a thousand", "one million", "hundreds of thousands"
		switch {
		case lowerIs(word, "a"), lowerIs(word, "an"):
			v = 1
		case smallNumber(word) > 0:
			v = int64(smallNumber(word))
		case lowerIs(word, "hundred"), lowerIs(word, "hundreds"):
			v = 100
		case lowerIs(word, "thousand"), lowerIs(word, "thousands"):
			v = 1000
		case lowerIs(word, "million"), lowerIs(word, "millions"):
			v = 1000000
		default:
			return 0, 0
		}
	} else {
		switch rest := word[i:]; {
		case len(rest) == 0:
			// Thousands groups: "100,000" or "100 000" are separate words
			// of exactly three digits joined by one separator.
			prev := tok
			for q+k < w.n {
				nt := w.token(q + k)
				if nt.end-nt.start != 3 || nt.start-prev.end != 1 || !isDigits(w.text[nt.start:nt.end]) {
					break
				}
				sep := w.text[prev.end]
				if sep != ',' && sep != '.' && sep != ' ' && sep != '\'' && sep != '_' {
					break
				}
				g := w.text[nt.start:nt.end]
				if v < 1e15 {
					v = v*1000 + int64(g[0]-'0')*100 + int64(g[1]-'0')*10 + int64(g[2]-'0')
				}
				prev = nt
				k++
			}
		case lowerIs(rest, "k"):
			v *= 1000
		case lowerIs(rest, "m"):
			v *= 1000000
		default:
			return 0, 0
		}
	}
	// Scale words: "10 thousand", "one hundred thousand", "2 million".
	for q+k < w.n {
		nt := w.token(q + k)
		word := w.text[nt.start:nt.end]
		switch {
		case lowerIs(word, "hundred"):
			v *= 100
		case lowerIs(word, "thousand"):
			v *= 1000
		case lowerIs(word, "million"):
			v *= 1000000
		case lowerIs(word, "billion"):
			v *= 1000000000
		default:
			return v, k
		}
		v = min(v, 1e15)
		k++
	}
	return v, k
}

// scaleWords make a number large ("ten thousand", "a million"), and
// the usual abbreviated large numbers are large by themselves.
var scaleWords = []string{"hundred", "hundreds", "thousand", "thousands", "million", "millions", "billion", "billions",
	"1k", "2k", "5k", "10k", "20k", "25k", "30k", "50k", "100k", "200k", "250k", "500k", "1m", "2m", "5m", "10m", "100m"}

// numberWords can start a number written in words; numericEnd can end
// one ("1000", "thousand").
var numberWords, numericEnd = func() ([]uint64, []uint64) {
	var start, end []uint64
	for _, w := range append([]string{"a", "an", "hundred", "hundreds", "thousand", "thousands", "million", "millions"}, smallNumbers...) {
		start = append(start, hashBytes([]byte(w)))
	}
	for _, w := range scaleWords {
		end = append(end, hashBytes([]byte(w)))
	}
	return hashSet(start), hashSet(end)
}()

// smallNumbers are number words that a scale word can multiply.
var smallNumbers = []string{"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty", "thirty", "forty", "fifty", "hundred"}

func smallNumber(word []byte) int {
	vals := [...]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 20, 30, 40, 50, 100}
	for i, s := range smallNumbers {
		if lowerIs(word, s) {
			return vals[i]
		}
	}
	return 0
}

// numericAt reports whether word q can be the last word of a number: it
// starts with a digit or is a scale word.
func (w *window) numericAt(q int) bool {
	c := w.text[w.pos(q)]
	return c >= '0' && c <= '9' || inSet(numericEnd, w.hash(q))
}

// lowerIs reports whether b, ASCII-lowercased, equals the lowercase s.
func lowerIs(b []byte, s string) bool {
	return len(b) == len(s) && hasPrefixFold(b, s)
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// commonWord holds words too frequent to be good anchors or to be worth
// tracking for the bag-of-words filter.
var commonWord = func() map[uint64]bool {
	m := map[uint64]bool{}
	for _, w := range strings.Fields(commonWords) {
		m[hashBytes([]byte(w))] = true
	}
	for _, r := range commonCJK {
		m[hashSingle(r)] = true
	}
	return m
}()

const commonWords = "a an the of to in on at by for with and or is are was were be been it its this that these those " +
	"you your yours i me my we our he she they them his her their what which who how do does did not no " +
	"all any as from up out so if then than now can will would should could may must have has had s t " +
	"de la le les el los las et y e o di il un una une der die das und zu"

const commonCJK = "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明社内己其力示" +
	"のにはをたがでてとしれさあるいなかすこまンストルーイクリドラ"

// A bag is the words a pattern needs, ignoring order: for each element
// that is not optional, at least one alternative must have all its words
// in the text. A text lacking them cannot match, which rules out most
// patterns after the first pass without looking at positions. Common
// words are left out (assumed present). Alternatives of one word are
// kept as bit masks over the word ids, which are numbered in the order
// the patterns mention them so that an element's words mostly share a
// mask word.
type bag []bagElem

type bagElem struct {
	masks []idMask   // single-word alternatives
	multi [][]uint16 // alternatives of several words
}

type idMask struct {
	word uint16 // index into the seen bit set
	bits uint64
}

func (p *pattern) bagOfWords(id func(uint64) int) bag {
	var b bag
	for _, el := range p.elems {
		if el.optional {
			continue
		}
		var be bagElem
		always := false
		for _, seq := range el.alts {
			var ids []uint16
			for _, t := range seq {
				switch {
				case t.kind == wkNum:
					ids = append(ids, numID)
				case (t.kind == wkExact || t.kind == wkCase) && !commonWord[t.h]:
					ids = append(ids, uint16(id(t.h)))
				}
			}
			switch len(ids) {
			case 0:
				always = true // stems and common words are not tracked
			case 1:
				be.addID(ids[0])
			default:
				be.multi = append(be.multi, ids)
			}
			if always {
				break
			}
		}
		if !always {
			b = append(b, be)
		}
	}
	// Elements with few alternatives first: they are the likeliest to be
	// missing, which ends the check.
	slices.SortStableFunc(b, func(x, y bagElem) int {
		return cmp.Compare(len(x.masks)*4+len(x.multi), len(y.masks)*4+len(y.multi))
	})
	return b
}

func (be *bagElem) addID(w uint16) {
	for i := range be.masks {
		if be.masks[i].word == w>>6 {
			be.masks[i].bits |= 1 << (w & 63)
			return
		}
	}
	be.masks = append(be.masks, idMask{w >> 6, 1 << (w & 63)})
}

func (b bag) present(seen *[maxWords / 64]uint64) bool {
next:
	for i := range b {
		be := &b[i]
		for _, m := range be.masks {
			if seen[m.word]&m.bits != 0 {
				continue next
			}
		}
		for _, ids := range be.multi {
			all := true
			for _, w := range ids {
				if seen[w>>6]&(1<<(w&63)) == 0 {
					all = false
					break
				}
			}
			if all {
				continue next
			}
		}
		return false
	}
	return true
}
