package anomaly

import "math/bits"

// maxHashed bounds the work per prompt: of a longer prompt, only the
// first and last halves of this many bytes are hashed.
const maxHashed = 16 << 10

// simHash returns a 64-bit SimHash of the prompt's words (shingles of
// one word), 0 if it has no words. Words are ASCII-lowercased runs of
// letters, digits and non-ASCII bytes, hashed in place; each occurrence
// counts. Single words rather than word pairs: a prompt has a few dozen
// words, and an edited word then moves one feature instead of two, which
// is what lets an edited prompt stay within three bits (measured on
// grade-school maths questions: 66% of one-word edits and 80% of an
// appended request id within three bits, no two distinct questions).
func simHash(prompt []byte) uint64 {
	var acc simAcc
	if len(prompt) <= maxHashed {
		acc.add(prompt)
	} else {
		acc.add(prompt[:maxHashed/2])
		acc.add(prompt[len(prompt)-maxHashed/2:])
	}
	return acc.sum()
}

// simAcc counts, for each of the 64 bit positions, how many word hashes
// have that bit set. Eight counters share a uint64 (one byte
// each), so a shingle costs eight table lookups and additions instead
// of 64; the bytes are flushed into wide counters before they can
// overflow.
type simAcc struct {
	lanes  [8]uint64
	counts [64]int32
	n      int // words in lanes
	total  int // all words
}

// spread[b] has byte k set to bit k of b.
var spread = func() (t [256]uint64) {
	for b := range t {
		for k := 0; k < 8; k++ {
			if b&(1<<k) != 0 {
				t[b] |= 1 << (8 * k)
			}
		}
	}
	return t
}()

// lower maps word bytes to their hashed form (ASCII lowercased), 0 for
// separators. Bytes of non-ASCII characters are kept as they are.
var lower = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c >= 0x80:
			t[c] = byte(c)
		case c >= 'A' && c <= 'Z':
			t[c] = byte(c + 32)
		}
	}
	return t
}()

func (a *simAcc) add(text []byte) {
	var h, acc uint64
	in := false
	for _, c := range text {
		if w := lower[c]; w != 0 {
			acc = acc<<8 | uint64(w)
			if acc>>56 != 0 {
				h = mix(h ^ acc)
				acc = 0
			}
			in = true
			continue
		}
		if in {
			a.word(mix(h ^ acc ^ 0x9E3779B97F4A7C15))
			h, acc, in = 0, 0, false
		}
	}
	if in {
		a.word(mix(h ^ acc ^ 0x9E3779B97F4A7C15))
	}
}

func (a *simAcc) word(x uint64) {
	for j := range a.lanes {
		a.lanes[j] += spread[byte(x>>(8*j))]
	}
	a.n++
	a.total++
	if a.n == 255 {
		a.flush()
	}
}

func (a *simAcc) flush() {
	for j, l := range a.lanes {
		for k := 0; k < 8; k++ {
			a.counts[8*j+k] += int32(byte(l >> (8 * k)))
		}
		a.lanes[j] = 0
	}
	a.n = 0
}

func (a *simAcc) sum() uint64 {
	if a.total == 0 {
		return 0
	}
	var h uint64
	if a.total < 128 {
		// All counts are still bytes below 128 in the lanes: compare
		// them with total/2 eight at a time. A count c sets the high bit
		// of its byte in c+127-t exactly when c > t, without carries.
		t := uint64(a.total / 2)
		for j, l := range a.lanes {
			gt := (l + (127-t)*lsb) & msb
			// Gather the eight high bits into one byte.
			h |= ((gt >> 7) * 0x0102040810204080 >> 56) << (8 * j)
		}
	} else {
		a.flush()
		for i, c := range a.counts {
			if int(c)*2 > a.total {
				h |= 1 << i
			}
		}
	}
	if h == 0 {
		h = 1 << 63 // 0 means "no words"
	}
	return h
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// mix is a 64-bit finaliser (from SplitMix64).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	return x ^ x>>31
}

// near reports whether two SimHashes differ in at most nearBits bits.
func near(a, b uint64) bool {
	return bits.OnesCount64(a^b) <= nearBits
}
