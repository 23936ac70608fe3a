package injection

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
)

// Classifier features are hashed into 1<<FeatureBits buckets: the
// character 4-grams of the normalised text (some independence from
// language, inflection and spelling) and its words (CJK text, which has no
// spaces, contributes character bigrams as its words). Digits are all read
// as '0' so that numbers do not become features. (Word bigrams and
// character 3- and 5-grams measured no better on held-back training rows
// and cost time.)
const FeatureBits = 18

const numBuckets = 1 << FeatureBits

// Feature-set flags (stored in the model so that a model is never read with
// other features than it was trained on). The values are part of the model
// format.
const (
	featChar4 = 1 << 1
	featWord  = 1 << 3
)

// Texts are scored in windows so that length does not drive the score: a
// window is windowSegs segments of segBytes bytes of normalised text, and
// windows start every segment. A text up to one window long is scored as a
// whole; a longer one scores as its highest window.
const (
	segBytes   = 64
	windowSegs = 8
)

// Seeds that keep the two kinds of feature apart in the shared buckets.
const (
	seedC4 = 0x4d00000000000000
	seedW  = 0x9b5f1e3a7c2d4e61
)

func bucket(x uint64) uint32 { return uint32((x * 0x9E3779B97F4A7C15) >> (64 - FeatureBits)) }

// Byte kinds for tokenisation.
const (
	kSep  = iota // ends a word
	kWord        // part of a word
	kCJK         // lead byte of a three-byte CJK character (U+3000-U+9FFF)
)

// byteKind classifies bytes for tokenisation.
var byteKind = func() (kind [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= '0' && c <= '9':
			kind[c] = kWord
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			kind[c] = kWord
		case c >= 0xE3 && c <= 0xE9:
			kind[c] = kCJK
		case c >= 0x80:
			kind[c] = kWord
		default:
			kind[c] = kSep
		}
	}
	return kind
}()

// token is a word (or CJK character bigram) of the normalised text.
type token struct {
	start, end int32
	h          uint64 // wordHash of the bytes
}

// lookup is what a token starts in the rule vocabulary (kept apart from
// the tokens, which the hot loop writes, to keep those small).
type lookup struct {
	exact int32 // vocab.lists index for the whole word, or -1
	pfx   int32 // the same for a prefix of the word (stems), or -1
}

// Character 4-grams: the key of position i is the four bytes ending there,
// read little-endian from the text preceded by three spaces. The text
// buffer always has slack after its end (collapse), so keys are read
// eight bytes at a time: one load gives four positions.

func char4(k uint32) uint32 { return bucket(uint64(k) ^ seedC4) }

// key4 returns the 4-gram key of position i < 3 (before a full key fits).
func key4(text []byte, i int) uint32 {
	k := uint32(0x20202020)
	for j := 0; j <= i; j++ {
		k = k&^(0xFF<<(8*(j+3-i))) | uint32(text[j])<<(8*(j+3-i))
	}
	return k
}

// charFeatures appends the character 4-gram buckets of text to dst, one per
// byte in text order (segment s starts at s*segBytes). Training uses it;
// scoring sums the same buckets' weights directly (charSums).
func charFeatures(dst []uint32, text []byte) []uint32 {
	for i := range text {
		if i < 3 {
			dst = append(dst, char4(key4(text, i)))
		} else {
			dst = append(dst, char4(binary.LittleEndian.Uint32(text[i-3:])))
		}
	}
	return dst
}

// charSums adds the weights of text's character 4-grams to sums[s] for each
// segment s; it computes exactly the buckets of charFeatures. text must be
// followed by at least eight bytes of slack in its buffer.
func charSums(sums []int32, text []byte, w []int8) {
	n := len(text)
	w = w[:numBuckets]
	buf := text[:n+8]
	for s := 0; s*segBytes < n; s++ {
		lo, hi := s*segBytes, min((s+1)*segBytes, n)
		var a0, a1, a2, a3 int32
		i := lo
		for ; i < 3 && i < hi; i++ {
			a0 += int32(w[char4(key4(text, i))])
		}
		for ; i+4 <= hi; i += 4 {
			x := binary.LittleEndian.Uint64(buf[i-3 : i+5 : i+5])
			a0 += int32(w[char4(uint32(x))])
			a1 += int32(w[char4(uint32(x>>8))])
			a2 += int32(w[char4(uint32(x>>16))])
			a3 += int32(w[char4(uint32(x>>24))])
		}
		for ; i < hi; i++ {
			a0 += int32(w[char4(binary.LittleEndian.Uint32(buf[i-3:]))])
		}
		sums[s] += a0 + a1 + a2 + a3
	}
}

// tokState tokenises the normalised text while chunkWords produces it:
// each chunk is tokenised as soon as its bytes are final.
//
// A word is a run of lower-case letters, '0' (all digits read as '0') and
// non-ASCII bytes; a run of CJK characters, which has no spaces, becomes
// its character bigrams (a lone character is a token of its own). Each
// token yields a word feature (st.wfeats, with st.wsegs[s] the index of the
// first feature of a token ending in segment s) and, in finish, the
// look-ups of the word (and its stems) in the rule vocabulary.
// (Both come from finish, which keeps the tokenising loops small.)
type tokState struct {
	text  []byte // the output buffer of collapse and chunkWords
	v     *vocab
	words bool // emit word features
	toks  []token
	nt    int
}

// start prepares st's token buffers for a text of at most n bytes.
func (tz *tokState) start(st *scratch, n int, flags uint32, v *vocab) {
	maxToks := n/2 + 2
	*tz = tokState{
		v:     v,
		words: flags&featWord != 0,
		toks:  slices.Grow(st.toks[:0], maxToks)[:maxToks],
	}
}

// finish looks the tokens up in the vocabulary and stores the results in
// st for a text of n bytes. The look-ups run in a loop of their own: done
// per token while tokenising, their latency held up everything else.
func (tz *tokState) finish(st *scratch, n int) {
	v := tz.v
	toks := tz.toks[:tz.nt]
	text := tz.text
	lks := slices.Grow(st.lookups[:0], len(toks))[:len(toks)]
	for i := range toks {
		t := &toks[i]
		lk := &lks[i]
		lk.exact, lk.pfx = v.lookup(exactKey(t.h)), -1
		// Prefix terms: look up the hash of the word's first l bytes for
		// every stem length l in use, if some stem starts like the word.
		if v.prefixLens != 0 && v.stemStarts.has(stemStart(text[t.start:])) && t.end-t.start >= minStem {
			b := text[t.start:t.end]
			for m := v.prefixLens & (2<<uint(min(len(b), 63)) - 1); m != 0; m &= m - 1 {
				l := bits.TrailingZeros64(m)
				if p := v.lookup(prefixKey(wordHash(b[:l]))); p >= 0 {
					lk.pfx = p // the longest stem wins
				}
			}
		}
	}
	// The tokens with vocabulary hits, listed without a branch per token
	// (a quarter of all words hit, unpredictably).
	hit := slices.Grow(st.hitToks[:0], len(toks)+1)[:len(toks)+1]
	nh := 0
	for i := range lks {
		hit[nh] = int32(i)
		nh += int(uint32(lks[i].exact&lks[i].pfx)>>31 ^ 1)
	}
	st.hitToks, st.lookups = hit[:nh], lks

	// Word features, and where each segment's begin.
	nseg := (n + segBytes - 1) / segBytes
	wsegs := slices.Grow(st.wsegs[:0], nseg)[:nseg]
	wfeats := st.wfeats[:0]
	seg := 0
	if tz.words {
		wfeats = slices.Grow(wfeats, len(toks))[:len(toks)]
		for i := range toks {
			wfeats[i] = bucket(toks[i].h ^ seedW)
			for end := int(toks[i].end); seg*segBytes <= end-1; seg++ {
				wsegs[seg] = int32(i)
			}
		}
	}
	for ; seg < nseg; seg++ {
		wsegs[seg] = int32(len(wfeats))
	}
	st.toks, st.wfeats, st.wsegs = toks, wfeats, wsegs
}

// add tokenises text[lo:hi], whose bytes are final; text must have eight
// bytes of slack after hi.
func (tz *tokState) add(lo, hi int) {
	text := tz.text
	for i := lo; i < hi; {
		var start, end int
		var h uint64
		switch byteKind[text[i]] {
		case kWord:
			j := i + 1
			// Find the word's end eight bytes at a time while it is ASCII.
			for j < hi {
				x := load64(text[j:])
				if x&msb != 0 {
					for j < hi && byteKind[text[j]] == kWord {
						j++
					}
					break
				}
				other := ^(gtMask(x, 'a'-1)&ltMask(x, 'z'+1) | eqMask(x, '0')) & msb
				if other != 0 {
					j += bits.TrailingZeros64(other) >> 3
					break
				}
				j += 8
			}
			j = min(j, hi)
			start, end = i, j
			h = wordHash(text[i:j])
			i = j
		case kCJK:
			if i+3 > hi { // truncated character
				i++
				continue
			}
			// One token per character pair; a lone character is its own.
			start, end = i, i+6
			if end > hi || byteKind[text[i+3]] != kCJK {
				end = i + 3
			}
			h = wordHash(text[start:end])
			i += 3
			if end == i && tz.nt > 0 && tz.toks[tz.nt-1].end == int32(i) {
				continue // the last character of a run: already in a bigram
			}
		default:
			i++
			continue
		}
		tz.emit(start, end, h)
	}
}

// addChunk16 tokenises a chunk of k < 16 bytes at text[start:] that has no
// digits, given its bytes lo and hi (lower-cased, zero beyond k): the
// common case of one word, possibly followed by punctuation, is handled
// from the registers; anything else goes to add.
func (tz *tokState) addChunk16(start int, lo, hi uint64, k int) {
	if (lo|hi)&msb != 0 {
		tz.add(start, start+k)
		return
	}
	lm1, lm2 := aRange(lo, 'a', 'z'), aRange(hi, 'a', 'z')
	p1 := bits.TrailingZeros64(^lm1&msb) >> 3
	p := p1
	if p1 == 8 {
		p = 8 + bits.TrailingZeros64(^lm2&msb)>>3
	}
	p = min(p, k)
	// After the word only punctuation may follow.
	m := &lenMask[p]
	if (lm1&^m[0]|lm2&^m[1]) != 0 || p == 0 {
		tz.add(start, start+k)
		return
	}
	tz.emit(start, start+p, wordHash16(lo&m[0], hi&m[1], p))
}

// emit records a token (features and vocabulary look-ups come in finish).
func (tz *tokState) emit(start, end int, h uint64) {
	tz.toks[tz.nt] = token{start: int32(start), end: int32(end), h: h}
	tz.nt++
}

// wordHash hashes a word eight bytes at a time (the length is part of the
// hash, so a stem's hash is wordHash of the word's first bytes).
func wordHash(b []byte) uint64 {
	h := uint64(len(b))*0x9E3779B97F4A7C15 ^ 0x243F6A8885A308D3
	for len(b) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(b)) * 0xff51afd7ed558ccd
		h ^= h >> 32
		b = b[8:]
	}
	if len(b) > 0 {
		var t uint64
		if cap(b) >= 8 {
			// Load eight bytes (within the buffer) and keep len(b).
			t = binary.LittleEndian.Uint64(b[:8]) & (1<<(8*uint(len(b))) - 1)
		} else {
			for k, c := range b {
				t |= uint64(c) << (8 * k)
			}
		}
		h = (h ^ t) * 0xff51afd7ed558ccd
		h ^= h >> 32
	}
	return h ^ h>>29
}

// wordHash16 is wordHash of a word of k <= 16 bytes given as two
// little-endian words (zero beyond k).
func wordHash16(lo, hi uint64, k int) uint64 {
	h := uint64(k)*0x9E3779B97F4A7C15 ^ 0x243F6A8885A308D3
	h = (h ^ lo) * 0xff51afd7ed558ccd
	h ^= h >> 32
	if k > 8 {
		h = (h ^ hi) * 0xff51afd7ed558ccd
		h ^= h >> 32
	}
	return h ^ h>>29
}

// exactKey and prefixKey turn a word hash into a vocabulary key; the two
// never coincide for the same bytes.
func exactKey(h uint64) uint64  { return (h ^ 0x6a09e667f3bcc908) * 0x9E3779B97F4A7C15 }
func prefixKey(h uint64) uint64 { return (h ^ 0xbb67ae8584caa73b) * 0x9E3779B97F4A7C15 }

// segmentSums fills st.sums with prefix sums of the weights per segment and
// st.counts with prefix feature counts: sums[s] covers segments [0, s).
func segmentSums(st *scratch, w []int8) {
	n := len(st.norm)
	nseg := (n + segBytes - 1) / segBytes
	sums := slices.Grow(st.sums[:0], nseg+1)[:nseg+1]
	counts := slices.Grow(st.counts[:0], nseg+1)[:nseg+1]
	clear(sums)
	charSums(sums[1:], st.norm, w)
	wfeats, wsegs := st.wfeats, st.wsegs
	counts[0] = 0
	for s := 0; s < nseg; s++ {
		wlo, whi := int(wsegs[s]), len(wfeats)
		if s+1 < nseg {
			whi = int(wsegs[s+1])
		}
		var acc int32
		for _, f := range wfeats[wlo:whi] {
			acc += int32(w[f])
		}
		chars := min((s+1)*segBytes, n) - s*segBytes // one 4-gram per byte
		sums[s+1] += sums[s] + acc
		counts[s+1] = counts[s] + int32(chars+whi-wlo)
	}
	st.sums, st.counts = sums, counts
}

// windowMax returns the highest window score: the weights of a window's
// features summed and divided by the square root of their number (the
// length normalisation that keeps long texts from scoring high on mass
// alone). The result is in units of the model's quantised weights.
func windowMax(st *scratch, w []int8) float64 {
	segmentSums(st, w)
	sums, counts := st.sums, st.counts
	nseg := len(sums) - 1
	if nseg <= windowSegs {
		if counts[nseg] == 0 {
			return 0
		}
		return float64(sums[nseg]) / sqrtInt(int(counts[nseg]))
	}
	best := math.Inf(-1)
	for s := 0; s+windowSegs <= nseg; s++ {
		c := counts[s+windowSegs] - counts[s]
		if c == 0 {
			continue
		}
		if v := float64(sums[s+windowSegs]-sums[s]) / sqrtInt(int(c)); v > best {
			best = v
		}
	}
	if math.IsInf(best, -1) {
		return 0
	}
	return best
}

// Windows returns, for training, the feature buckets of text's scoring
// windows exactly as Score sees them (after normalisation), and the rule
// logit of the text. A text up to one window long has one window.
func Windows(text []byte) (windows [][]uint32, ruleLogit float64) {
	st := getScratch()
	defer putScratch(st)
	normalize(text, st, FeatureFlags, defaultVocab)
	ruleLogit = evalRules(st, &st.rules)
	n := len(st.norm)
	nseg := (n + segBytes - 1) / segBytes
	feats := charFeatures(nil, st.norm)
	window := func(s0, s1 int) []uint32 {
		var out []uint32
		out = append(out, feats[s0*segBytes:min(s1*segBytes, n)]...)
		whi := len(st.wfeats)
		if s1 < nseg {
			whi = int(st.wsegs[s1])
		}
		if s0 < nseg {
			out = append(out, st.wfeats[st.wsegs[s0]:whi]...)
		}
		return out
	}
	if nseg <= windowSegs {
		return [][]uint32{window(0, nseg)}, ruleLogit
	}
	for s := 0; s+windowSegs <= nseg; s++ {
		windows = append(windows, window(s, s+windowSegs))
	}
	return windows, ruleLogit
}
