// Package signatures finds known attack signatures in prompts: jailbreak
// templates (DAN, Developer Mode, AIM, grandma exploit, custom personas
// without rules, ...), requests to leak the system prompt (in English,
// German, French, Spanish, Portuguese, Italian, Russian, Chinese,
// Japanese and Korean), payload smuggling (Unicode tag characters,
// invisible characters, markdown exfiltration URLs, hidden HTML
// instructions, decode-and-execute) and repetition or overload attacks.
//
// Instruction-override phrasings ("ignore previous instructions") are
// left to the statistical prompt-injection detector; this package only
// reports named, recognisable attack families, each as a stable rule id
// with a short reason that never quotes the text.
//
// Rules are word patterns (see pattern) plus a few checks in code. A
// Scanner is built once and shared. Scan works in three steps:
//
//  1. One pass splits the text into words (ASCII lowercased, Latin
//     diacritics folded, invisible characters skipped, each CJK
//     character a word of its own), hashes each word and logs its hash
//     and offset.
//  2. The logged words are looked up in the patterns' vocabulary (a
//     Bloom filter first): this marks which words occur, counts
//     repetition, and notes where each pattern's anchor word occurs.
//  3. A pattern is tried only if its anchor occurs and every one of its
//     elements has some word present anywhere (a bag-of-words test);
//     then it is matched, on the logged words, at each occurrence of
//     its anchor, outwards from the anchor.
//
// Ordinary text therefore costs about one pass and a little matching,
// with no allocation (buffers are pooled).
package signatures

import (
	"bytes"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"unicode/utf8"
)

// Category groups rules by the kind of attack.
type Category string

// Categories.
const (
	JailbreakTemplate Category = "jailbreak-template"
	PromptLeak        Category = "prompt-leak"
	Smuggling         Category = "smuggling"
	Repetition        Category = "repetition"
	Overload          Category = "overload"
)

// Match is one rule that matched.
type Match struct {
	Rule     string // stable short id, e.g. "dan", "system-prompt-request"
	Category Category
	Reason   string // one short sentence; never quotes the matched text
}

// Scanner finds attack signatures. It is immutable after New and safe
// for concurrent use.
type Scanner struct {
	rules []rule
	pats  []*pattern // anchored patterns

	// Every word the patterns use: a Bloom filter that rejects most
	// words of a text with one load, then an open-addressing table from
	// word hash to word id and many-shot role flags.
	bloom [bloomBits / 64]uint64
	keys  []uint64
	vals  []uint32
	mask  uint64
	// Per word id: the patterns anchored on that word (offset<<8|count
	// into refs).
	wordRefs []uint32
	refs     []uint16

	exfil  []*pattern // instructions to put data into a URL (context only)
	hidden []*pattern // instructions addressed to a model (in hidden HTML)

	special [numSpecial]int // rule index of each built-in check
}

type rule struct {
	id        string
	cat       Category
	reason    string
	threshold int // scored rules: distinct signals needed; 0 = any pattern
}

const (
	valIDMask   = 1<<16 - 1
	valRoleUser = 1 << 30
	valRoleAsst = 1 << 31
	valAnchor   = 1 << 29 // the word anchors at least one pattern
	valNumber   = 1 << 28 // a scale word: "thousand", "million"

	// numID is the pseudo word "a large number" (500 or more, or a
	// scale word such as "thousand", or "10k") in the bag-of-words
	// filter; word ids start after it.
	numID = 0

	bloomBits   = 1 << 16
	maxWords    = 1 << 13 // vocabulary of the patterns
	maxPatterns = 1 << 9

	maxLog = 1 << 16 // words remembered from the first pass
	maxOcc = 1 << 12 // anchor occurrences remembered
)

// Limits of the built-in (non-pattern) checks.
const (
	repeatMin      = 200  // a word this many times ...
	repeatMinShare = 5    // ... and at least 1/5 of all words, or
	repeatHalfMin  = 64   // at least half of a text of this many words
	repeatRun      = 64   // the same word this many times in a row
	longToken      = 4096 // bytes without whitespace
	manyShotTurns  = 20   // user/assistant exchanges in one message
	invisibleMin   = 8    // zero-width, bidi-control or variation characters
)

// New compiles the built-in rules.
func New() *Scanner {
	s, err := build(ruleDefs, exfilPatterns, hiddenPatterns)
	if err != nil {
		panic(err)
	}
	return s
}

func build(defs []ruleDef, exfil, hidden []string) (*Scanner, error) {
	s := &Scanner{}
	if len(defs) > 64 {
		return nil, fmt.Errorf("signatures: more than 64 rules")
	}
	ids := map[uint64]int{0: numID}
	roles := []uint32{0}
	anchored := [][]uint16{nil}
	id := func(h uint64) int {
		i, ok := ids[h]
		if !ok {
			i = len(ids)
			ids[h] = i
			roles = append(roles, 0)
			anchored = append(anchored, nil)
		}
		return i
	}
	for i := range s.special {
		s.special[i] = -1
	}
	for ri, d := range defs {
		s.rules = append(s.rules, rule{id: d.id, cat: d.cat, reason: d.reason, threshold: d.threshold})
		if d.special != 0 {
			s.special[d.special] = ri
		}
		for si, src := range d.patterns {
			p, err := compilePattern(src)
			if err != nil {
				return nil, fmt.Errorf("signatures: rule %s: %v", d.id, err)
			}
			p.rule = ri
			if d.threshold > 0 {
				if si >= 64 {
					return nil, fmt.Errorf("signatures: rule %s: more than 64 signals", d.id)
				}
				p.signal = int8(si)
			}
			pi := len(s.pats)
			s.pats = append(s.pats, p)
			for _, h := range p.anchors {
				w := id(h)
				if a := anchored[w]; len(a) == 0 || a[len(a)-1] != uint16(pi) {
					anchored[w] = append(a, uint16(pi))
				}
			}
			p.bag = p.bagOfWords(id)
			if d.gate != "" {
				var g bagElem
				for _, w := range strings.Fields(d.gate) {
					g.addID(uint16(id(hashBytes([]byte(w)))))
				}
				p.bag = append(bag{g}, p.bag...) // checked first
			}
		}
	}
	if len(s.pats) > maxPatterns {
		return nil, fmt.Errorf("signatures: more than %d patterns", maxPatterns)
	}
	for _, w := range roleUserWords {
		roles[id(hashBytes([]byte(w)))] |= valRoleUser
	}
	for _, w := range roleAsstWords {
		roles[id(hashBytes([]byte(w)))] |= valRoleAsst
	}
	for _, w := range scaleWords {
		roles[id(hashBytes([]byte(w)))] |= valNumber
	}
	if len(ids) > maxWords {
		return nil, fmt.Errorf("signatures: more than %d words", maxWords)
	}
	size := 64
	for size < 2*len(ids) {
		size *= 2
	}
	s.keys = make([]uint64, size)
	s.vals = make([]uint32, size)
	s.mask = uint64(size - 1)
	s.wordRefs = make([]uint32, len(ids))
	for h, w := range ids {
		if w == numID {
			continue
		}
		i := h & s.mask
		for s.keys[i] != 0 {
			i = (i + 1) & s.mask
		}
		v := uint32(w) | roles[w]
		if len(anchored[w]) > 0 {
			v |= valAnchor
		}
		s.keys[i], s.vals[i] = h, v
		b := bloomIndex(h)
		s.bloom[b>>6] |= 1 << (b & 63)
		if len(anchored[w]) >= 256 {
			return nil, fmt.Errorf("signatures: too many patterns on one anchor")
		}
		s.wordRefs[w] = uint32(len(s.refs))<<8 | uint32(len(anchored[w]))
		s.refs = append(s.refs, anchored[w]...)
	}
	for _, src := range exfil {
		p, err := compilePattern(src)
		if err != nil {
			return nil, err
		}
		s.exfil = append(s.exfil, p)
	}
	for _, src := range hidden {
		p, err := compilePattern(src)
		if err != nil {
			return nil, err
		}
		s.hidden = append(s.hidden, p)
	}
	return s, nil
}

// bloomIndex uses hash bits that neither the table (low bits) nor the
// repetition buckets (top byte) use.
func bloomIndex(h uint64) uint64 { return (h >> 32) & (bloomBits - 1) }

// Rules lists the rule ids with their categories, in a stable order.
func (s *Scanner) Rules() []Match {
	out := make([]Match, len(s.rules))
	for i, r := range s.rules {
		out[i] = Match{Rule: r.id, Category: r.cat, Reason: r.reason}
	}
	return out
}

// scratch holds the per-call buffers too large for the stack: the word
// log of the first pass (hash and start of every word), the positions of
// anchor words in it, and the matching window. Pooled, so a Scan does
// not allocate once the pool is warm.
type scratch struct {
	log  []uint64 // per word: hash, start offset
	occ  []occurrence
	pass [256]int32 // logPass: words that passed the Bloom filter
	win  window
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{
		log: make([]uint64, 2*2048),
		occ: make([]occurrence, 0, 256),
	}
}}

// occurrence is an anchor word in the word log: its position and word id.
type occurrence struct {
	pos int32
	id  uint16
}

// state is the per-call scan state.
type state struct {
	s    *Scanner
	sc   *scratch
	text []byte

	seen  [maxWords / 64]uint64    // pattern words present in the text
	cand  [maxPatterns / 64]uint64 // patterns whose anchor is present
	done  uint64                   // rules matched
	sigs  uint64                   // signals of the scored rule seen
	ncand int
	full  bool // the word or occurrence log overflowed

	log   []uint64 // the word log being written (sc.log)
	nlog  int
	roomy bool // the log has room for every word

	counts   [256]uint32 // words with a letter, bucketed by hash
	lettered int         // words with a letter
	prevH    uint64      // the last word with a letter ...
	run      int         // ... and how many times in a row
	maxRun   int
	userRole int
	asstRole int

	tags, invisible  int
	lastHigh         rune // the last non-ASCII rune ...
	highEnd          int  // ... and the offset just after it
	flagSeq          bool // inside an emoji tag sequence (subdivision flag)
	lockOpen, lockCl bool
	longTok          bool
	mdLink           int // offset of the first "](", -1 if none
	sawTag           bool
}

// Scan appends to dst one Match per rule that matches text, in rule
// order, and returns it. It does not allocate unless something matches
// (or a text longer than any before grows the pooled buffers).
func (s *Scanner) Scan(text []byte, dst []Match) []Match {
	sc := scratchPool.Get().(*scratch)
	sc.occ = sc.occ[:0]
	st := state{s: s, sc: sc, text: text, mdLink: -1, highEnd: -1}
	st.scan()
	if st.ncand > 0 {
		st.confirm()
	}
	dst = st.finish(dst)
	sc.win.text = nil
	scratchPool.Put(sc)
	return dst
}

// scan is the single pass over the text: it hashes and logs every word,
// and notes the characters and markup that the built-in checks need.
// The common case, ASCII words separated by single spaces, takes the
// shortest path (wordsRun). Then logPass goes over the log.
func (st *state) scan() {
	text := st.text
	n := len(text)
	// The log gets one entry per word; a text of n bytes has at most
	// n/2+1 words.
	need := min(maxLog, n/2+2)
	if cap(st.sc.log) < 2*need {
		st.sc.log = make([]uint64, 2*need)
	}
	st.log, st.nlog = st.sc.log[:2*need], 0
	// The fast path for ASCII words needs room for every word.
	st.roomy = need == n/2+2
	st.maxRun = 0
	lastWS := -1 // offset of the last whitespace (for long tokens)
	for i := 0; i < n; {
		c := text[i]
		start := i
		var h, acc uint64
		var letter byte
		switch {
		case wordByte[c] != 0 && st.roomy:
			// The common case: ASCII words separated by single spaces.
			j, nlog, ws, long, slow := wordsRun(text, i, st.log, st.nlog, lastWS)
			st.nlog, lastWS = nlog, ws
			if long {
				st.longTok = true
			}
			if !slow {
				i = j
				continue
			}
			// The word at j goes on with non-ASCII letters.
			i, start = j, j
			fallthrough
		case wordByte[c] != 0:
			i, h, acc, letter = asciiRun(text, i, hashSeed, 0)
			if i < n && text[i] >= utf8.RuneSelf {
				i, h, acc, letter = st.wordTail(i, h, acc, letter)
			}
		case c < utf8.RuneSelf:
			switch {
			case c <= ' ': // whitespace (and control characters)
				if i-lastWS > longToken {
					st.longTok = true
				}
				lastWS = i
			case c == ']':
				if st.mdLink < 0 && i+1 < n && text[i+1] == '(' {
					st.mdLink = i
				}
			case c == '<':
				if i+1 < n && (text[i+1] == '!' || wordByte[text[i+1]] != 0) {
					st.sawTag = true
				}
			}
			i++
			continue
		default:
			r, size := utf8.DecodeRune(text[i:])
			kind, f := st.rune(r, i, size)
			i += size
			switch kind {
			case rkLetter:
				x := newHasher()
				x.rune(f)
				i, h, acc, letter = st.wordTail(i, x.h, x.acc, 0x40)
			case rkSingle:
				// A CJK character is a word by itself, and CJK text needs
				// no spaces: no long token.
				x := newHasher()
				x.rune(f)
				h, acc, letter = x.h, x.acc, 0x40
				lastWS = i
			default:
				if r == 0xA0 || r == 0x3000 || (r >= 0x2000 && r <= 0x200A) {
					lastWS = i
				}
				continue
			}
		}
		// A word text[start:i] ends here.
		st.add(hashSum(h, acc, letter), start)
	}
	if n-lastWS > longToken {
		st.longTok = true
	}
	st.logPass(st.log[:2*st.nlog])
	st.sc.log = st.log[:2*st.nlog]
}

// add logs the word starting at text[start] with hash wh.
func (st *state) add(wh uint64, start int) {
	if 2*st.nlog == len(st.log) {
		// A very long text: the log restarts, and confirm will tokenize
		// again.
		st.logPass(st.log)
		st.nlog, st.full = 0, true
	}
	st.log[2*st.nlog], st.log[2*st.nlog+1] = wh, uint64(start)
	st.nlog++
}

// wordsRun reads ASCII words and the ASCII separators between them from
// the word byte text[i] on, hashing each word into log[2*nlog:]: the
// bulk of ordinary text. It is a separate function with few values, so
// that they stay in registers. It stops at a byte the main loop must see
// (non-ASCII, ']' or '<') and returns where, the new nlog, the offset of
// the last whitespace (starting from lastWS), whether a run without
// whitespace ending at whitespace it passed was longer than longToken,
// and slow, with next at the start of a word it did not take, if that
// word goes on with non-ASCII letters. The log must have room for every
// word.
//
//go:noinline
func wordsRun(text []byte, i int, log []uint64, nlog, lastWS int) (next, nlog2, ws int, long, slow bool) {
	for {
		start := i
		var h, acc uint64 = hashSeed, 0
		var lw byte
		for ; i < len(text); i++ {
			w := wordByte[text[i]]
			if w == 0 {
				break
			}
			lw |= w
			acc = acc<<8 | uint64(w)
			if acc >= 1<<56 { // full: 8 bytes, none of them 0
				h, acc = mixChunk(h, acc), 0
			}
		}
		if i < len(text) && text[i] >= utf8.RuneSelf {
			return start, nlog, lastWS, long, true
		}
		log[2*nlog], log[2*nlog+1] = hashSum(h, acc, lw&0x40), uint64(start)
		nlog++
		// Separators up to the next word.
		for ; i < len(text); i++ {
			c := text[i]
			if wordByte[c] != 0 {
				goto word
			}
			if c <= ' ' { // whitespace (and control characters)
				long = long || i-lastWS > longToken
				lastWS = i
			} else if c == ']' || c == '<' || c >= utf8.RuneSelf {
				return i, nlog, lastWS, long, false
			}
		}
		return i, nlog, lastWS, long, false
	word:
	}
}

// logPass goes over logged words: it looks each up in the pattern
// vocabulary, and keeps the statistics that need every word: repetition
// counts (words with a letter, bucketed by hash), the longest run of one
// word, and whether a large number ("1500", "10k") occurs. Kept out of
// the first pass, which it would slow down.
func (st *state) logPass(ent []uint64) {
	st.vocab(ent)
	prevH, run, maxRun := st.prevH, st.run, st.maxRun
	lettered := 0
	numSeen := st.seen[numID>>6]&(1<<(numID&63)) != 0
	counts := &st.counts
	for k := 0; k+1 < len(ent); k += 2 {
		h := ent[k]
		if h&1 != 0 {
			counts[h>>56]++
			lettered++
			if h == prevH {
				run++
				maxRun = max(maxRun, run)
			} else {
				prevH, run = h, 1
			}
		} else if !numSeen {
			// Digits only: is it a large number?
			numSeen = largeNumberAt(st.text, int(ent[k+1]))
		}
	}
	st.prevH, st.run, st.maxRun = prevH, run, maxRun
	st.lettered += lettered
	if numSeen {
		st.seen[numID>>6] |= 1 << (numID & 63)
	}
}

// vocab looks the logged words up in the pattern vocabulary. Words that
// pass the Bloom filter are collected without a branch (which would be
// mispredicted often) and looked up afterwards.
func (st *state) vocab(ent []uint64) {
	bloom := &st.s.bloom
	pass := &st.sc.pass
	np := 0
	for k := 0; k+1 < len(ent); k += 2 {
		b := bloomIndex(ent[k])
		pass[np&255] = int32(k)
		np += int(bloom[b>>6] >> (b & 63) & 1)
		if np == len(pass) {
			st.lookups(ent, pass[:np])
			np = 0
		}
	}
	st.lookups(ent, pass[:np])
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// largeNumberAt reports whether the digits at text[p:] make a number of
// at least 500 (the smallest the output-size rule asks about), allowing
// thousands separators: "500", "1500", "100,000", "20 000".
func largeNumberAt(text []byte, p int) bool {
	v, digits := 0, 0
	for p < len(text) && v < 1000 {
		c := text[p]
		switch {
		case isDigit(c):
			v = v*10 + int(c-'0')
			digits++
		case digits > 0 && (c == ',' || c == '.' || c == ' ' || c == '\'' || c == '_') &&
			p+3 < len(text) && isDigit(text[p+1]) && isDigit(text[p+2]) && isDigit(text[p+3]) &&
			(p+4 == len(text) || !isDigit(text[p+4])):
			// a thousands group follows
		default:
			return v >= 500
		}
		p++
	}
	return v >= 500
}

// lookups finds the logged words at ent[k] for k in pass, which passed
// the Bloom filter, in the vocabulary.
func (st *state) lookups(ent []uint64, pass []int32) {
	s := st.s
	for _, k := range pass {
		h := ent[k]
		for j := h & s.mask; ; j = (j + 1) & s.mask {
			if key := s.keys[j]; key == h {
				st.hit(s.vals[j], int(ent[k+1]), int(k/2))
				break
			} else if key == 0 {
				break
			}
		}
	}
}

// asciiRun hashes the ASCII letters and digits from text[i] on and
// returns where they stop; lw has bit 0x40 set if one was a letter. It
// is kept out of line so that its few values stay in registers (an
// 8-bytes-at-a-time version measured slower: words are short).
//
//go:noinline
func asciiRun(text []byte, i int, h, acc uint64) (int, uint64, uint64, byte) {
	var lw byte
	for ; i < len(text); i++ {
		w := wordByte[text[i]]
		if w == 0 {
			break
		}
		lw |= w
		acc = acc<<8 | uint64(w)
		if acc >= 1<<56 { // full: 8 bytes, none of them 0
			h, acc = mixChunk(h, acc), 0
		}
	}
	return i, h, acc, lw & 0x40
}

// wordTail continues a word at text[i] where it may go on with
// non-ASCII letters or invisible characters.
func (st *state) wordTail(i int, h, acc uint64, letter byte) (int, uint64, uint64, byte) {
	text := st.text
	for i < len(text) {
		c := text[i]
		if wordByte[c] != 0 {
			var lw byte
			i, h, acc, lw = asciiRun(text, i, h, acc)
			letter |= lw
			continue
		}
		if c < utf8.RuneSelf {
			break
		}
		r, size := utf8.DecodeRune(text[i:])
		kind, f := classifyRune(r)
		if r == utf8.RuneError && size == 1 || kind == rkSep || kind == rkSingle {
			break // the main loop handles this rune
		}
		st.rune(r, i, size)
		if kind == rkLetter {
			x := hasher{h: h, acc: acc}
			x.rune(f)
			h, acc, letter = x.h, x.acc, 0x40
		}
		i += size
	}
	return i, h, acc, letter
}

// rune classifies a non-ASCII rune at text[i:i+size] and counts the
// invisible and marker characters among them.
func (st *state) rune(r rune, i, size int) (runeKind, rune) {
	prevASCII := st.highEnd != i
	switch {
	case r >= 0xE0000 && r <= 0xE007F:
		// Tag characters are legitimate only in emoji subdivision flags
		// (black flag, tags, cancel tag).
		if st.flagSeq || (!prevASCII && st.lastHigh == 0x1F3F4) {
			st.flagSeq = r != 0xE007F
		} else {
			st.tags++
		}
	case r >= 0xE0100 && r <= 0xE01EF:
		st.invisible++ // variation selectors used to hide bytes
	case r >= 0x200B && r <= 0x200F, r >= 0x2060 && r <= 0x2064, r == 0x180E, r == 0xFEFF && i > 0:
		// In Latin text these have no purpose; after emoji (ZWJ) or in
		// Arabic, Indic or Persian text (ZWNJ, RLM) they do.
		if prevASCII || isInvisible(st.lastHigh) {
			st.invisible++
		}
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		st.invisible++ // bidi embeddings, overrides and isolates
	case r == 0x1F513:
		st.lockOpen = true
	case r == 0x1F512:
		st.lockCl = true
	}
	if r < 0xE0000 || r > 0xE007F {
		st.flagSeq = false
	}
	st.lastHigh, st.highEnd = r, i+size
	if r == utf8.RuneError && size == 1 {
		return rkSep, r
	}
	return classifyRune(r)
}

func isInvisible(r rune) bool {
	return r >= 0x200B && r <= 0x200F || r >= 0x2060 && r <= 0x2064 || r == 0x180E || r == 0xFEFF
}

// hit handles a word of the pattern vocabulary starting at text[start],
// at log position pos: it is marked as present, its anchored patterns
// become candidates and the occurrence is remembered; role words
// followed by a colon count as many-shot turns.
func (st *state) hit(v uint32, start, pos int) {
	s := st.s
	id := v & valIDMask
	if v&valNumber != 0 {
		st.seen[numID>>6] |= 1 << (numID & 63)
	}
	if bit := uint64(1) << (id & 63); st.seen[id>>6]&bit == 0 {
		st.seen[id>>6] |= bit
		r := s.wordRefs[id]
		for _, pi := range s.refs[r>>8 : r>>8+r&255] {
			if b := uint64(1) << (pi & 63); st.cand[pi>>6]&b == 0 {
				st.cand[pi>>6] |= b
				st.ncand++
			}
		}
	}
	if v&valAnchor != 0 {
		if len(st.sc.occ) < maxOcc && !st.full {
			st.sc.occ = append(st.sc.occ, occurrence{int32(pos), uint16(id)})
		} else {
			st.full = true
		}
	}
	if v&(valRoleUser|valRoleAsst) != 0 {
		st.role(v, start)
	}
}

// role counts "User:", "Assistant:", "Q:", "A:" as many-shot turns; a
// single letter only at the start of a line.
func (st *state) role(v uint32, start int) {
	text := st.text
	end := start
	for end < len(text) && wordByte[text[end]] != 0 {
		end++
	}
	if end >= len(text) || text[end] != ':' {
		return
	}
	if end-start == 1 {
		for j := start - 1; j >= 0 && text[j] != '\n'; j-- {
			if c := text[j]; c >= utf8.RuneSelf || wordByte[c] != 0 {
				return
			}
		}
	}
	if v&valRoleUser != 0 {
		st.userRole++
	} else {
		st.asstRole++
	}
}

// confirm matches the candidate patterns whose words are all present
// (in any order) at each occurrence of their anchor.
func (st *state) confirm() {
	s := st.s
	var live [maxPatterns / 64]uint64
	n := 0
	for wi, c := range st.cand {
		for ; c != 0; c &= c - 1 {
			pi := wi*64 + bits.TrailingZeros64(c)
			p := s.pats[pi]
			if st.isDone(p) || !p.bag.present(&st.seen) {
				continue
			}
			live[wi] |= 1 << uint(pi&63)
			n++
		}
	}
	if n == 0 {
		return
	}
	w := &st.sc.win
	if !st.full {
		w.use(st.text, st.sc.log)
		for _, o := range st.sc.occ {
			st.tryAnchor(&live, int(o.pos), int(o.id))
		}
		return
	}
	// The logs overflowed (a very long text): slide a window over the
	// text instead, trying the anchors that have their whole context
	// inside it.
	back, fwd := 0, 0
	for pi, p := range s.pats {
		if live[pi>>6]&(1<<(pi&63)) != 0 {
			back, fwd = max(back, p.back), max(fwd, p.fwd)
		}
	}
	for off, lo := 0, 0; ; {
		w.fill(st.text, off, len(st.text))
		end := w.n
		if w.n == winWords {
			end = w.n - fwd
		}
		for a := lo; a < end; a++ {
			st.tryAnchor(&live, a, -1)
		}
		if w.n < winWords {
			return
		}
		off, lo = w.pos(end-back), back
	}
}

// tryAnchor matches the live patterns anchored on word a of the window,
// whose word id is id (-1: look it up).
func (st *state) tryAnchor(live *[maxPatterns / 64]uint64, a, id int) {
	s := st.s
	w := &st.sc.win
	if id < 0 {
		h := w.hash(a)
		i := h & s.mask
		for s.keys[i] != h {
			if s.keys[i] == 0 {
				return
			}
			i = (i + 1) & s.mask
		}
		id = int(s.vals[i] & valIDMask)
	}
	r := s.wordRefs[id]
	for _, pi := range s.refs[r>>8 : r>>8+r&255] {
		if live[pi>>6]&(1<<(pi&63)) == 0 {
			continue
		}
		p := s.pats[pi]
		if !st.isDone(p) && w.matchAnchored(p, a) {
			st.setDone(p)
		}
	}
}

func (st *state) isDone(p *pattern) bool {
	if p.signal >= 0 {
		return st.sigs&(1<<uint(p.signal)) != 0 || st.done&(1<<uint(p.rule)) != 0
	}
	return st.done&(1<<uint(p.rule)) != 0
}

func (st *state) setDone(p *pattern) {
	if p.signal < 0 {
		st.done |= 1 << uint(p.rule)
		return
	}
	st.sigs |= 1 << uint(p.signal)
	if bits.OnesCount64(st.sigs) >= st.s.rules[p.rule].threshold {
		st.done |= 1 << uint(p.rule)
	}
}

// finish runs the checks that need the whole text and appends the
// matches in rule order.
func (st *state) finish(dst []Match) []Match {
	s := st.s
	set := func(k special) {
		if ri := s.special[k]; ri >= 0 {
			st.done |= 1 << uint(ri)
		}
	}
	if st.tags > 0 {
		set(spUnicodeTags)
	}
	if st.invisible >= invisibleMin {
		set(spInvisible)
	}
	if st.longTok {
		set(spLongToken)
	}
	if min(st.userRole, st.asstRole) >= manyShotTurns {
		set(spManyShot)
	}
	if st.repetitive() {
		set(spRepetition)
	}
	if st.lockOpen && st.lockCl && (st.sigs != 0 || st.done != 0) {
		set(spDualLock)
	}
	if st.mdLink >= 0 {
		img, link := st.markdownExfil()
		if img {
			set(spMarkdownImage)
		}
		if link {
			set(spMarkdownLink)
		}
	}
	if st.sawTag && st.hiddenHTML() {
		set(spHiddenHTML)
	}
	for d := st.done; d != 0; d &= d - 1 {
		r := &s.rules[bits.TrailingZeros64(d)]
		dst = append(dst, Match{Rule: r.id, Category: r.cat, Reason: r.reason})
	}
	return dst
}

// repetitive reports whether one word (with a letter) makes up much of
// the text: a run of repeatRun in a row, at least repeatMin times and a
// fifth of all words, or half of a text of at least repeatHalfMin words.
// The absolute count alone is not enough: "the" passes 200 in any long
// document. The hash buckets over-count (collisions), so a candidate
// bucket is confirmed by counting its most frequent word exactly.
func (st *state) repetitive() bool {
	if st.maxRun >= repeatRun {
		return true
	}
	n := st.lettered
	if n < repeatHalfMin {
		return false
	}
	ok := func(c int) bool {
		return (c >= repeatMin && c*repeatMinShare >= n) || c*2 >= n
	}
	for b, c := range st.counts {
		// Either condition needs at least a fifth of the words.
		if int(c)*repeatMinShare >= n && ok(int(c)) && ok(st.topWordInBucket(uint64(b))) {
			return true
		}
	}
	return false
}

// topWordInBucket returns the count of the most frequent word with a
// letter (among the first few distinct ones) whose hash falls in bucket
// b.
func (st *state) topWordInBucket(b uint64) int {
	var hs [8]uint64
	var cs [8]int
	k := 0
	count := func(h uint64) {
		if h>>56 != b || h&1 == 0 {
			return
		}
		j := 0
		for j < k && hs[j] != h {
			j++
		}
		if j == k {
			if k == len(hs) {
				return
			}
			hs[k] = h
			k++
		}
		cs[j]++
	}
	if st.full {
		for i := 0; ; {
			t, next, ok := nextToken(st.text, i)
			if !ok {
				break
			}
			i = next
			count(t.h)
		}
	} else {
		for q := 0; q < len(st.sc.log); q += 2 {
			count(st.sc.log[q])
		}
	}
	top := 0
	for _, c := range cs[:k] {
		top = max(top, c)
	}
	return top
}

// anyPattern reports whether one of pats matches anywhere in
// text[from:to], sliding a window over the words.
func (st *state) anyPattern(pats []*pattern, from, to int) bool {
	span := 0
	for _, p := range pats {
		span = max(span, p.back+p.fwd)
	}
	w := &st.sc.win
	for off := from; ; {
		w.fill(st.text, off, to)
		if w.n == 0 {
			return false
		}
		last := w.n - span // starts that still see a full span
		if w.n < winWords {
			last = w.n - 1 // the end of the region: try every start
		}
		for j := 0; j <= last; j++ {
			for _, p := range pats {
				if w.matchAt(p, j) {
					return true
				}
			}
		}
		if w.n < winWords {
			return false
		}
		off = w.pos(last + 1)
	}
}

// indexFold is bytes.Index for a lowercase ASCII needle, ignoring the
// case of the text.
func indexFold(text []byte, needle string) int {
	if len(needle) == 0 {
		return 0
	}
	c0 := needle[0]
	up := c0
	if c0 >= 'a' && c0 <= 'z' {
		up = c0 - 32
	}
	for i := 0; i+len(needle) <= len(text); {
		j := bytes.IndexByte(text[i:], c0)
		if up != c0 {
			if k := bytes.IndexByte(text[i:], up); k >= 0 && (j < 0 || k < j) {
				j = k
			}
		}
		if j < 0 {
			return -1
		}
		i += j
		if i+len(needle) > len(text) {
			return -1
		}
		if hasPrefixFold(text[i:], needle) {
			return i
		}
		i++
	}
	return -1
}

func hasPrefixFold(b []byte, lower string) bool {
	if len(b) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
