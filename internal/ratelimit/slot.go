package ratelimit

import "strings"

// hashTag returns the part of key Redis Cluster hashes: the substring between
// the first '{' and the first '}' after it when that is not empty, else key.
func hashTag(key string) string {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			return key[s+1 : s+1+e]
		}
	}
	return key
}

// keySlot returns key's Redis Cluster hash slot: CRC16 (XMODEM) of its hash
// tag, modulo 16384.
func keySlot(key string) int {
	return int(crc16(hashTag(key)) & 16383)
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc16(s string) uint16 {
	var c uint16
	for i := 0; i < len(s); i++ {
		c = c<<8 ^ crc16Table[byte(c>>8)^s[i]]
	}
	return c
}
