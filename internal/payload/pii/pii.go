// Package pii detects and redacts personal data and secrets in text.
//
// A Detector finds e-mail addresses, phone numbers, payment card numbers,
// US social security numbers, IBANs, IP addresses and provider secrets
// (API keys, tokens, private keys). Candidates are validated (Luhn,
// mod-97, range checks, net/netip parsing, entropy) rather than merely
// pattern-matched. Redact replaces each match with a placeholder such as
// "[EMAIL]"; a Redactor does the same for a stream of chunks, holding back
// only the bytes a match could still need.
package pii

import (
	"fmt"
	"slices"
)

// Entity is a kind of personal data or secret.
type Entity uint8

// Supported entities.
const (
	Email Entity = iota
	Phone
	CreditCard
	SSN
	IBAN
	IPAddress
	Secret
	numEntities
)

var entityNames = [numEntities]string{"Email", "Phone", "CreditCard", "SSN", "IBAN", "IPAddress", "Secret"}

var placeholders = [numEntities]string{"[EMAIL]", "[PHONE]", "[CREDIT_CARD]", "[SSN]", "[IBAN]", "[IP_ADDRESS]", "[SECRET]"}

// String returns the entity name as accepted by ParseEntity.
func (e Entity) String() string {
	if e < numEntities {
		return entityNames[e]
	}
	return fmt.Sprintf("Entity(%d)", uint8(e))
}

// Placeholder returns the replacement text used when redacting e.
func (e Entity) Placeholder() string {
	if e < numEntities {
		return placeholders[e]
	}
	return "[REDACTED]"
}

// ParseEntity parses an entity name such as "Email" or "CreditCard".
func ParseEntity(s string) (Entity, error) {
	for i, n := range entityNames {
		if n == s {
			return Entity(i), nil
		}
	}
	return 0, fmt.Errorf("pii: unknown entity %q", s)
}

// Match is a detected entity occupying text[Start:End] (byte offsets).
type Match struct {
	Entity     Entity
	Start, End int
}

// Detector finds entities in text. It is immutable and safe for
// concurrent use.
type Detector struct {
	mask uint8
}

// New returns a Detector for the given entities; with none, all entities
// are detected.
func New(entities ...Entity) *Detector {
	d := &Detector{}
	for _, e := range entities {
		if e < numEntities {
			d.mask |= 1 << e
		}
	}
	if d.mask == 0 {
		d.mask = 1<<numEntities - 1
	}
	return d
}

func (d *Detector) has(e Entity) bool { return d.mask&(1<<e) != 0 }

// priority breaks ties between candidates with equal start and length.
var priority = [numEntities]uint8{Email: 3, Phone: 0, CreditCard: 5, SSN: 4, IBAN: 5, IPAddress: 2, Secret: 6}

// Find appends the matches in text to dst and returns it. Matches are
// sorted by position and do not overlap. Find does not allocate when dst
// has enough capacity.
func (d *Detector) Find(text []byte, dst []Match) []Match {
	return d.find(text, dst, 0)
}

// find is Find restricted to matches starting at or after from; text
// before from serves as left context only.
func (d *Detector) find(text []byte, dst []Match, from int) []Match {
	base := len(dst)
	if d.has(Email) {
		dst = findEmails(text, dst)
	}
	if d.has(Phone) || d.has(CreditCard) || d.has(SSN) || d.has(IPAddress) {
		dst = d.findNumbers(text, dst)
	}
	if d.has(IBAN) {
		dst = findIBANs(text, dst)
	}
	if d.has(IPAddress) {
		dst = findIPv6(text, dst)
	}
	if d.has(Secret) {
		dst = findSecrets(text, dst)
	}
	cand := dst[base:]
	if from > 0 {
		k := 0
		for _, m := range cand {
			if m.Start >= from {
				cand[k] = m
				k++
			}
		}
		cand = cand[:k]
		dst = dst[:base+k]
	}
	if len(cand) < 2 {
		return dst
	}
	slices.SortFunc(cand, func(a, b Match) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		if a.End != b.End {
			return b.End - a.End
		}
		return int(priority[b.Entity]) - int(priority[a.Entity])
	})
	n, last := 0, -1
	for _, m := range cand {
		if m.Start >= last {
			cand[n] = m
			n++
			last = m.End
		}
	}
	return dst[:base+n]
}

// Redact appends text to dst with every match replaced by its entity's
// placeholder, and returns the result and the number of matches.
func (d *Detector) Redact(dst, text []byte) ([]byte, int) {
	var buf [32]Match
	ms := d.Find(text, buf[:0])
	return appendRedacted(dst, text, ms, 0), len(ms)
}

// AppendRedacted appends text to dst with the matches Find returned replaced by their
// placeholders.
func AppendRedacted(dst, text []byte, ms []Match) []byte { return appendRedacted(dst, text, ms, 0) }

func appendRedacted(dst, text []byte, ms []Match, off int) []byte {
	pos := off
	for _, m := range ms {
		dst = append(dst, text[pos:m.Start]...)
		dst = append(dst, placeholders[m.Entity]...)
		pos = m.End
	}
	return append(dst, text[pos:]...)
}

// byte classes
const (
	cDigit = 1 << iota
	cUpper
	cLower
	cEmailLocal
	cDomain
	cHex
	cB64URL
	cToken
)

var class [256]uint8

func init() {
	for c := 0; c < 256; c++ {
		var k uint8
		b := byte(c)
		switch {
		case b >= '0' && b <= '9':
			k |= cDigit | cEmailLocal | cDomain | cHex | cB64URL | cToken
		case b >= 'A' && b <= 'Z':
			k |= cUpper | cEmailLocal | cDomain | cB64URL | cToken
		case b >= 'a' && b <= 'z':
			k |= cLower | cEmailLocal | cDomain | cB64URL | cToken
		}
		if (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F') {
			k |= cHex
		}
		switch b {
		case '.', '_', '%', '+', '-', '\'', '!', '#', '$', '&', '*', '/', '=', '?', '^', '`', '{', '|', '}', '~':
			k |= cEmailLocal
		}
		switch b {
		case '.', '-':
			k |= cDomain
		}
		switch b {
		case '-', '_':
			k |= cB64URL | cToken
		case '+', '/', '=', '.':
			k |= cToken
		}
		class[c] = k
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return class[c]&(cUpper|cLower) != 0 }
func isAlnum(c byte) bool { return class[c]&(cUpper|cLower|cDigit) != 0 }

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 32
	}
	return c
}

// hasPrefixFold reports whether s starts with the lower-case ASCII word w,
// ignoring case.
func hasPrefixFold(s []byte, w string) bool {
	if len(s) < len(w) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if lower(s[i]) != w[i] {
			return false
		}
	}
	return true
}

// containsAnyFold reports whether s contains any of the lower-case words,
// ignoring case.
func containsAnyFold(s []byte, words []string) bool {
	for i := 0; i < len(s); i++ {
		c := lower(s[i])
		for _, w := range words {
			if w[0] == c && hasPrefixFold(s[i:], w) {
				return true
			}
		}
	}
	return false
}

func window(text []byte, start, end, before, after int) ([]byte, []byte) {
	a := max(start-before, 0)
	b := min(end+after, len(text))
	return text[a:start], text[end:b]
}
