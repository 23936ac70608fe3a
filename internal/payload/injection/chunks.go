package injection

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Normalisation of whitespace-separated chunks runs in two passes, both
// shaped for speed (they dominate the detector's running time):
//
//  1. collapse copies the text eight bytes at a time, lower-casing ASCII
//     and squeezing every whitespace run to one space, and notes where
//     each chunk starts. Its loop carries no dependency on chunk lengths.
//  2. chunkWords walks the chunk list: it drops floods, joins spaced-out
//     letters, undoes leetspeak, reads digits as '0' and tokenises. Plain
//     chunks (a word, maybe with punctuation), which need no rewriting,
//     are tokenised by tokState.scanTokens in a loop of their own;
//     anything else goes to chunkState.slow, which may shorten the text
//     (later chunks then move down).

// gap flags, for chunks whose preceding whitespace was not one space.
const (
	gapNewline = 1 << iota // the whitespace had a line break
	gapWide                // two or more whitespace bytes
)

// gap records the start of a chunk preceded by unusual whitespace.
type gap struct {
	pos   int32
	flags uint8
}

// collapse writes src to dst with ASCII letters lower-cased (if ascii;
// otherwise src is already lower case) and each whitespace run (bytes up
// to ' ') replaced by one space, without leading or trailing whitespace.
// It fills st.starts with the start of every chunk and st.gaps with the
// chunks preceded by a line break or wide whitespace. It returns the
// buffer (with sixteen bytes of slack) and the text length.
func collapse(dst, src []byte, ascii bool, st *scratch) ([]byte, int) {
	n := len(src)
	dst = slices.Grow(dst[:0], n+16)[:n+16]
	starts := slices.Grow(st.starts[:0], n/2+2)[:n/2+2]
	gaps := st.gaps[:0]
	w, ns := 0, 0
	inSpace := true // the last byte written was a space (or nothing yet)
	var pend uint8  // gap flags of the current whitespace run
	spaceRun := 0
	i := 0
	for ; i+8 <= n; i += 8 {
		x := binary.LittleEndian.Uint64(src[i : i+8 : i+8])
		var sp, plain, lx uint64
		if ascii {
			sp, plain, lx = aSpace(x), aRange(x, ' ', ' '), x|aRange(x, 'A', 'Z')>>2
		} else {
			sp, plain, lx = ltMask(x, '!'), eqMask(x, ' '), x
		}
		// The common block: spaces are single ' ' bytes, so the output is
		// the input (lower-cased); chunks start after each space.
		if sp&^plain == 0 && sp&(sp<<8) == 0 && !(inSpace && (sp&0x80 != 0 || pend != 0)) {
			binary.LittleEndian.PutUint64(dst[w:w+8:w+8], lx)
			cs := (sp << 8) &^ sp & msb // bytes after a space
			if inSpace {
				cs |= 0x80
			}
			for ; cs != 0; cs &= cs - 1 {
				starts[ns] = int32(w + bits.TrailingZeros64(cs)>>3)
				ns++
			}
			inSpace = sp>>63 != 0
			spaceRun = int(sp >> 63)
			w += 8
			continue
		}
		for j := 0; j < 8; j++ {
			w, ns, inSpace, pend, spaceRun = collapseByte(dst, starts, &gaps, src[i+j], ascii, w, ns, inSpace, pend, spaceRun)
		}
	}
	for ; i < n; i++ {
		w, ns, inSpace, pend, spaceRun = collapseByte(dst, starts, &gaps, src[i], ascii, w, ns, inSpace, pend, spaceRun)
	}
	if inSpace && w > 0 {
		w-- // trailing space
	}
	st.starts, st.gaps = starts[:ns], gaps
	return dst, w
}

// collapseByte is collapse for one byte.
func collapseByte(dst []byte, starts []int32, gaps *[]gap, c byte, ascii bool, w, ns int, inSpace bool, pend uint8, spaceRun int) (int, int, bool, uint8, int) {
	if c <= ' ' {
		if c == '\n' {
			pend |= gapNewline
		}
		if spaceRun++; spaceRun >= 2 {
			pend |= gapWide
		}
		if !inSpace {
			dst[w] = ' '
			w++
			inSpace = true
		}
		return w, ns, inSpace, pend, spaceRun
	}
	if inSpace {
		starts[ns] = int32(w)
		ns++
		if pend != 0 && w > 0 {
			*gaps = append(*gaps, gap{pos: int32(w), flags: pend})
		}
		inSpace, pend = false, 0
	}
	spaceRun = 0
	if ascii {
		c = lowerASCII[c]
	}
	dst[w] = c
	return w + 1, ns, inSpace, pend, spaceRun
}

// chunkState is the state of chunkWords that its loop rarely touches.
type chunkState struct {
	st         *scratch
	tz         *tokState
	buf        []byte
	streak     [4]int // per period p+1: consecutive chunks equal to the one p+1 back
	lastMatch  int    // the last chunk that matched one of the previous four
	digitRun   int    // current run of short chunks with digits
	lastDigit  int    // the last such chunk
	runStart   int    // start of a run of single-letter chunks, or -1
	runLetters int
}

// chunkWords rewrites the chunks of buf[:n] (from collapse) in place and
// tokenises them; it returns the new length. Plain chunks are handled by
// tokState.scanTokens; the rest come back here.
func chunkWords(st *scratch, buf []byte, n int, ascii bool, tz *tokState) int {
	c := &chunkState{st: st, tz: tz, buf: buf, runStart: -1, lastMatch: -2, lastDigit: -2}
	starts, gaps := st.starts, st.gaps
	lines := st.lines[:0]
	var r1, r2, r3, r4 uint64 // hashes of the last four chunks
	w := 0                    // end of the output so far
	gi := 0
	for ci := 0; ci < len(starts); ci++ {
		if c.runStart < 0 {
			nextGap := int32(-1)
			if gi < len(gaps) {
				nextGap = gaps[gi].pos
			}
			ci, w, r1, r2, r3, r4 = tz.scanTokens(buf, n, starts, nextGap, ci, w, r1, r2, r3, r4)
			if ci >= len(starts) {
				break
			}
		}
		s := int(starts[ci])
		e := n
		if ci+1 < len(starts) {
			e = int(starts[ci+1]) - 1
		}
		k := e - s
		var flags uint8
		if gi < len(gaps) && int(gaps[gi].pos) == s {
			flags = gaps[gi].flags
			gi++
		}
		lo, hi := load64(buf[s:]), load64(buf[s+8:])
		if k < 16 {
			m := &lenMask[k]
			lo, hi = lo&m[0], hi&m[1]
		}
		var special uint64 // digits, '@' or '$' (non-zero if any)
		if ascii {
			special = aRange(lo, '0', '@') | aRange(lo, '$', '$') | aRange(hi, '0', '@') | aRange(hi, '$', '$')
		} else {
			special = specialSWAR(lo) | specialSWAR(hi)
		}
		h := chunkHash(lo, hi, k)
		if k > 16 {
			h ^= load64(buf[e-8:]) * 0x94D049BB133111EB
			special |= longSpecial(buf[s+16 : e])
		}
		if k >= minBase64Run || special != 0 {
			c.cand(k, special, ci)
		}

		// Flood: a chunk is dropped once the unit of 1-4 chunks it
		// continues has been seen three times.
		if (h == r1 || h == r2 || h == r3 || h == r4) && c.flood(h == r1, h == r2, h == r3, h == r4, ci) {
			if special == 0 || !hasDigit(buf[s:e]) { // numbers repeat legitimately
				st.info.flood++
			}
			r1, r2, r3, r4 = h, r1, r2, r3
			continue
		}
		r1, r2, r3, r4 = h, r1, r2, r3

		out := 0 // where the chunk goes
		if w > 0 {
			out = w + 1
			buf[w] = ' '
		}
		if out != s {
			copy(buf[out:out+k], buf[s:e])
		}
		if flags&gapNewline != 0 && out > 0 {
			lines = append(lines, int32(out))
		}
		w = c.slow(out, out+k, flags, special, lo, hi)
	}
	if c.runStart >= 0 {
		w = closeRun(buf, c.runStart, w, c.runLetters, &st.info)
		tz.add(c.runStart, w)
	}
	st.lines = lines
	return w
}

func chunkHash(lo, hi uint64, k int) uint64 {
	return (lo*0x9E3779B97F4A7C15 ^ hi*0xC2B2AE3D27D4EB4F) + uint64(k)
}

// scanTokens tokenises plain chunks from chunk ci on: two to fifteen
// ASCII bytes without digits, '@' or '$', not a repeat of the last four
// chunks, not after unusual whitespace (nextGap is the next gap's
// position), already in place (nothing before them was shortened), and
// made of a word possibly followed by punctuation. It stops at the first other chunk and returns the updated
// state. Its loop makes no calls (Go keeps no registers across a call, so
// a call anywhere in a loop costs every iteration); vocabulary look-ups
// happen later, in tokState.finish.
func (tz *tokState) scanTokens(buf []byte, n int, starts []int32, nextGap int32, ci, w int, r1, r2, r3, r4 uint64) (int, int, uint64, uint64, uint64, uint64) {
	toks := tz.toks
	nt := tz.nt
	for ; ci < len(starts); ci++ {
		s := int(starts[ci])
		e := n
		if ci+1 < len(starts) {
			e = int(starts[ci+1]) - 1
		}
		k := e - s
		if uint(k-2) > 13 || starts[ci] == nextGap {
			break // not 2-15 bytes, or after unusual whitespace
		}
		b16 := buf[s : s+16 : s+16] // one bounds check for both loads
		lo, hi := binary.LittleEndian.Uint64(b16[:8]), binary.LittleEndian.Uint64(b16[8:])
		m := &lenMask[k]
		lo, hi = lo&m[0], hi&m[1]
		if (lo|hi)&msb != 0 {
			break
		}
		// With no byte above 0x7f the cheap masks are exact.
		lm1, lm2 := aRange(lo, 'a', 'z'), aRange(hi, 'a', 'z')
		o1, o2 := m[0]&msb&^lm1, m[1]&msb&^lm2 // bytes that are not letters
		if o1|o2 != 0 {
			// Punctuation, or digits and the like for the slow path.
			if aRange(lo, '0', '@')|aRange(lo, '$', '$')|aRange(hi, '0', '@')|aRange(hi, '$', '$') != 0 || isJoinSep[byte(lo>>8)] {
				break
			}
		}
		h := chunkHash(lo, hi, k)
		if h == r1 || h == r2 || h == r3 || h == r4 {
			break
		}
		if w > 0 && s != w+1 || w == 0 && s != 0 {
			break // the text was shortened before: chunks move
		}
		// The token: the chunk's leading letters, with nothing but
		// punctuation after them.
		p := bits.TrailingZeros64(o1) >> 3
		if p == 8 {
			p = 8 + bits.TrailingZeros64(o2)>>3
		}
		p = min(p, k)
		pm := &lenMask[p]
		if lm1&^pm[0]|lm2&^pm[1]|uint64(p-1)>>63 != 0 { // letters after the word, or none
			break
		}
		r1, r2, r3, r4 = h, r1, r2, r3
		w = e
		end := s + p
		toks[nt] = token{start: int32(s), end: int32(end), h: wordHash16(lo&pm[0], hi&pm[1], p)}
		nt++
	}
	tz.nt = nt
	return ci, w, r1, r2, r3, r4
}

// longSpecial reports digits, '@' or '$' in b (the part of a long chunk
// after its first sixteen bytes).
func longSpecial(b []byte) uint64 {
	for _, ch := range b {
		if asciiClass[ch]&(clDigit|clLeet) != 0 {
			return 1
		}
	}
	return 0
}

// flood updates the streaks for chunk number idx, which equals the chunk
// p back for each true argument, and reports whether to drop it.
func (c *chunkState) flood(e1, e2, e3, e4 bool, idx int) bool {
	if c.lastMatch != idx-1 {
		c.streak = [4]int{}
	}
	c.lastMatch = idx
	drop := false
	for p, eq := range [4]bool{e1, e2, e3, e4} {
		if !eq {
			c.streak[p] = 0
			continue
		}
		c.streak[p]++
		if c.streak[p] >= 2*(p+1) {
			drop = true
		}
	}
	return drop
}

// cand notes what findHidden should look at: long chunks (base64 or hex)
// and runs of short chunks with digits (hex dumps of text and binary
// octets are such runs).
func (c *chunkState) cand(k int, special uint64, idx int) {
	st := c.st
	if k >= minBase64Run {
		st.hiddenScan = true
	}
	if special != 0 && k <= 9 {
		if c.lastDigit == idx-1 {
			c.digitRun++
		} else {
			c.digitRun = 1
		}
		c.lastDigit = idx
		if c.digitRun >= minOctets {
			st.hiddenScan = true
		}
	}
}

// slow finishes an unusual chunk buf[cs:ce], already in its final place
// after a space at cs-1: spaced-out letters, separated letters, leetspeak
// and digits, then tokenisation. It returns the new end of the output.
func (c *chunkState) slow(cs, ce int, flags uint8, special, lo, hi uint64) int {
	buf, info, tz := c.buf, &c.st.info, c.tz
	clen := ce - cs
	single := clen == 1 && asciiClass[buf[cs]]&clLetter != 0 ||
		buf[cs] >= 0x80 && clen <= 4 && isSingleLetter(buf[cs:ce])
	if c.runStart >= 0 && (!single || flags&gapNewline != 0) {
		// Close the run before this chunk's separator, then move the
		// separator and chunk down over what the run gave up.
		sep := cs - 1
		end := closeRun(buf, c.runStart, sep, c.runLetters, info)
		if d := sep - end; d > 0 {
			copy(buf[end:], buf[sep:ce])
			cs, ce = cs-d, ce-d
		}
		tz.add(c.runStart, end)
		c.runStart = -1
	}
	if single {
		if c.runStart < 0 {
			c.runStart, c.runLetters = cs, 0
		} else if flags&gapWide != 0 {
			// A word break inside a spaced-out run: mark the separator
			// until closeRun decides.
			buf[cs-1] = wordBreak
		}
		c.runLetters++
		return ce
	}
	if clen >= 7 && isJoinSep[buf[cs+1]] {
		if k := joinSeparated(buf[cs:ce]); k > 0 {
			ce = cs + k
			info.spaced++
		}
	}
	if special != 0 {
		unleet(buf[cs:ce])
		for k := cs; k < ce; k++ {
			if ch := buf[k]; ch >= '1' && ch <= '9' {
				buf[k] = '0'
			}
		}
	}
	if special == 0 && clen < 16 && ce-cs == clen && (lo|hi)&msb == 0 {
		tz.addChunk16(cs, lo, hi, clen)
	} else {
		tz.add(cs, ce)
	}
	return ce
}
