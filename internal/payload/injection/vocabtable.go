package injection

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// vocab maps words (and word prefixes) of the normalised text to concept
// entries. Look-ups happen for every word, so the table is a flat cuckoo
// hash keyed by the word's hash.
type vocab struct {
	prefixLens uint64     // bit l set: some term's first word is a prefix of l bytes
	stemStarts *bitset64k // one bit per stemStart of the prefix terms' first words
	keys       []uint32   // cuckoo hash table of key fingerprints: a key is in one of its two slots
	vals       []int16
	full       []uint64 // the full keys, for building the table only
	lists      []vlist  // what each key starts
	entries    []vocabEntry
	concepts   map[string]int
	rot13      uint8 // concept of rot13-encoded attack words
	reversed   uint8 // concept of reversed attack words
}

// vlist is what the words with one key start: one-word terms (as a mask
// of concepts) and multi-word terms.
type vlist struct {
	mask    uint64
	phrases []phraseRef
}

// phraseRef is a multi-word entry with its second word, checked before the
// entry itself is loaded (most phrases already fail there).
type phraseRef struct {
	second termWord
	entry  int32
}

// vocabEntry is one term: its concept and the words after the first.
type vocabEntry struct {
	concept uint8
	rest    []termWord
}

// termWord is a word of a multi-word term: the word's hash, or with plen
// > 0 the hash of its first plen bytes.
type termWord struct {
	h     uint64
	plen  int32
	start uint32 // stemStart of the word (prefix terms)
}

// minStem is the shortest prefix term, in bytes; stemStart reads that
// many bytes.
const minStem = 4

// stemStart reads four bytes at b (the buffers have slack beyond the text).
func stemStart(b []byte) uint32 {
	return binary.LittleEndian.Uint32(b)
}

// bitset64k is a 65536-bit set indexed by a hash.
type bitset64k [1024]uint64

func (b *bitset64k) slot(x uint32) (int, uint64) {
	h := x * 0x9E3779B1 >> 16
	return int(h >> 6), 1 << (h & 63)
}

func (b *bitset64k) set(x uint32) {
	i, m := b.slot(x)
	b[i] |= m
}

func (b *bitset64k) has(x uint32) bool {
	i, m := b.slot(x)
	return b[i]&m != 0
}

const vocabTableBits = 13

// lookup returns the list of entries for key, or -1. It reads both of the
// key's slots without branching on what it finds: a quarter of all words
// are in the vocabulary, so a branch would be mispredicted often.
func (v *vocab) lookup(key uint64) int32 {
	if v.keys == nil {
		return -1
	}
	i1, i2, fp := slot1(key), slot2(key), fingerprint(key)
	a, b := int32(v.vals[i1]), int32(v.vals[i2])
	l := int32(-1)
	if v.keys[i1] == fp {
		l = a
	}
	if v.keys[i2] == fp {
		l = b
	}
	return l
}

// A key is stored as a 31-bit fingerprint (never 0, the empty slot) in one
// of two slots, which halves the table (48 KiB); a word that is not in the
// vocabulary matches a fingerprint about once in a billion look-ups.
func slot1(key uint64) uint64       { return key >> (64 - vocabTableBits) }
func slot2(key uint64) uint64       { return (key * 0xC2B2AE3D27D4EB4F) >> (64 - vocabTableBits) }
func fingerprint(key uint64) uint32 { return uint32(key) | 1 }

// insert adds entry to key's list, placing a new key by cuckoo hashing.
func (v *vocab) insert(key uint64, entry int32) {
	add := func(l *vlist) {
		if e := &v.entries[entry]; len(e.rest) == 0 {
			l.mask |= 1 << e.concept
		} else {
			l.phrases = append(l.phrases, phraseRef{second: e.rest[0], entry: entry})
		}
	}
	fp := fingerprint(key)
	for _, i := range [2]uint64{slot1(key), slot2(key)} {
		if v.keys[i] == fp && v.full[i] == key {
			add(&v.lists[v.vals[i]])
			return
		}
	}
	if len(v.lists) >= 1<<15 {
		panic("injection: vocabulary too large")
	}
	val := int16(len(v.lists))
	v.lists = append(v.lists, vlist{})
	add(&v.lists[val])
	i := slot1(key)
	for range 1000 {
		if v.keys[i] == 0 {
			v.keys[i], v.vals[i], v.full[i] = fp, val, key
			return
		}
		// Evict the occupant to its other slot.
		key, v.full[i] = v.full[i], key
		fp, v.keys[i] = v.keys[i], fp
		val, v.vals[i] = v.vals[i], val
		if j := slot1(key); j != i {
			i = j
		} else {
			i = slot2(key)
		}
	}
	panic("injection: vocabulary table too full")
}

// Attack words whose rot13 or reversed spelling marks a text worth decoding.
var encodedMarkers = []string{
	"ignore", "instructions", "previous", "prompt", "system", "password", "disregard",
	"forget", "secret", "reveal", "rules", "above", "pretend", "jailbreak", "restrictions",
	"bypass", "override",
}

func rot13(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = 'a' + (c-'a'+13)%26
		case c >= 'A' && c <= 'Z':
			b[i] = 'A' + (c-'A'+13)%26
		}
	}
	return string(b)
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

var defaultVocab = buildVocab()

func buildVocab() *vocab {
	v := &vocab{concepts: map[string]int{}}
	defs := append([]struct {
		name  string
		terms []string
	}(nil), conceptTerms...)
	var r13, rev []string
	for _, w := range encodedMarkers {
		r13 = append(r13, rot13(w))
		rev = append(rev, reverse(w))
	}
	defs = append(defs,
		struct {
			name  string
			terms []string
		}{"ROT13", r13},
		struct {
			name  string
			terms []string
		}{"REVERSED", rev})
	if len(defs) > 64 {
		panic("injection: more than 64 concepts")
	}

	// Tokenise every term with the text pipeline; an empty vocabulary
	// makes scan's look-ups no-ops.
	empty := &vocab{}
	st := newScratch()
	type pending struct {
		first  termWord
		entry  vocabEntry
		source string
	}
	var all []pending
	for ci, d := range defs {
		v.concepts[d.name] = ci
		for _, term := range d.terms {
			prefix := strings.HasSuffix(term, "*")
			normalize([]byte(strings.TrimSuffix(term, "*")), st, 0, empty)
			if len(st.toks) == 0 {
				panic(fmt.Sprintf("injection: term %q has no words", term))
			}
			words := make([]termWord, len(st.toks))
			for i, t := range st.toks {
				words[i] = termWord{h: t.h}
			}
			if prefix {
				last := st.toks[len(st.toks)-1]
				words[len(words)-1].plen = last.end - last.start
				if last.end-last.start >= minStem {
					words[len(words)-1].start = stemStart(st.norm[last.start:])
				}
			}
			all = append(all, pending{first: words[0], entry: vocabEntry{concept: uint8(ci), rest: words[1:]}, source: term})
		}
	}
	v.stemStarts = new(bitset64k)
	v.keys = make([]uint32, 1<<vocabTableBits)
	v.vals = make([]int16, 1<<vocabTableBits)
	v.full = make([]uint64, 1<<vocabTableBits)
	if len(all) > len(v.keys)/2 {
		panic("injection: vocabulary table too small")
	}
	type dupKey struct {
		key     uint64
		concept uint8
		rest    string
	}
	seen := map[dupKey]bool{}
	for _, p := range all {
		dk := dupKey{key: p.first.h ^ uint64(p.first.plen), concept: p.entry.concept, rest: fmt.Sprint(p.entry.rest)}
		if seen[dk] {
			continue // the same term listed twice (e.g. English and French "ignore")
		}
		seen[dk] = true
		idx := int32(len(v.entries))
		v.entries = append(v.entries, p.entry)
		key := exactKey(p.first.h)
		if p.first.plen > 0 {
			if p.first.plen >= 64 {
				panic(fmt.Sprintf("injection: prefix term %q too long", p.source))
			}
			key = prefixKey(p.first.h)
			v.prefixLens |= 1 << p.first.plen
			if p.first.plen < minStem {
				panic(fmt.Sprintf("injection: prefix term %q shorter than %d bytes", p.source, minStem))
			}
			v.stemStarts.set(p.first.start)
		}
		v.insert(key, idx)
	}
	v.rot13 = uint8(v.concepts["ROT13"])
	v.reversed = uint8(v.concepts["REVERSED"])
	compileRules(v.concepts)
	v.full = nil // only needed while inserting
	return v
}

// resolve appends the concept hits of toks (tokens of text, with their
// vocabulary look-ups; hitToks lists those that hit) to hits, ordered by
// start.
func (v *vocab) resolve(text []byte, toks []token, lks []lookup, hitToks []int32, hits []hit) []hit {
	for _, i32 := range hitToks {
		i := int(i32)
		t := &toks[i]
		for _, l := range [2]int32{lks[i].pfx, lks[i].exact} {
			if l < 0 {
				continue
			}
			vl := &v.lists[l]
			if vl.mask != 0 {
				hits = append(hits, hit{mask: vl.mask, t0: int32(i), t1: int32(i), start: t.start, end: t.end})
			}
			for _, pr := range vl.phrases {
				if i+1 >= len(toks) || pr.second.plen == 0 && toks[i+1].h != pr.second.h {
					continue
				}
				e := &v.entries[pr.entry]
				if matchRest(text, toks, i+1, e.rest) {
					last := i + len(e.rest)
					hits = append(hits, hit{mask: 1 << e.concept, t0: int32(i), t1: int32(last), start: t.start, end: toks[last].end})
				}
			}
		}
	}
	return hits
}

// matchRest matches the remaining words of a term against toks[i:].
func matchRest(text []byte, toks []token, i int, rest []termWord) bool {
	if i+len(rest) > len(toks) {
		return false
	}
	for k, w := range rest {
		t := &toks[i+k]
		if w.plen == 0 {
			if t.h != w.h {
				return false
			}
		} else if t.end-t.start < w.plen || wordHash(text[t.start:t.start+w.plen]) != w.h {
			return false
		}
	}
	return true
}
