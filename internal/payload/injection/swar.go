package injection

import "encoding/binary"

// Byte-parallel ("SIMD within a register") helpers: the hot loops look at
// eight bytes at a time so that word and chunk boundaries cost one
// predictable loop iteration instead of a mispredicted branch per byte.
// Each mask has the high bit of every byte that satisfies the condition,
// exactly (no borrow or carry leaks between bytes).

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// ltMask marks bytes < n (n <= 0x80).
func ltMask(x uint64, n byte) uint64 {
	return ^((x | msb) - lsb*uint64(n)) & ^x & msb
}

// gtMask marks bytes > n (n < 0x80).
func gtMask(x uint64, n byte) uint64 {
	return ((x &^ msb) + lsb*uint64(0x7f-n) | x) & msb
}

// eqMask marks bytes == c.
func eqMask(x uint64, c byte) uint64 {
	return ltMask(x^(lsb*uint64(c)), 1)
}

func load64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// The a* variants are valid only when every byte is below 0x80 (plain
// ASCII), where additions cannot carry between bytes; they take half the
// instructions.

// aRange marks bytes in [lo, hi] (1 <= lo <= hi < 0x80).
func aRange(x uint64, lo, hi byte) uint64 {
	return (x + lsb*uint64(0x80-lo)) &^ (x + lsb*uint64(0x7f-hi)) & msb
}

// aSpace marks bytes <= ' '.
func aSpace(x uint64) uint64 { return ^(x + lsb*0x5f) & msb }
