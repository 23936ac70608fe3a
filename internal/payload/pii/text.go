package pii

import (
	"bytes"
	"math"
	"net/netip"
)

const (
	maxLocal  = 64
	maxDomain = 253
	maxToken  = 1024     // longest secret token matched
	maxPEM    = 64 << 10 // longest PEM block matched
)

func isLocalChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

// findEmails matches local@domain.tld around each '@'.
func findEmails(text []byte, dst []Match) []Match {
	off := 0
	for {
		k := bytes.IndexByte(text[off:], '@')
		if k < 0 {
			return dst
		}
		at := off + k
		off = at + 1
		s := at
		for s > 0 && isLocalChar(text[s-1]) && at-s <= maxLocal {
			s--
		}
		if s > 0 && isLocalChar(text[s-1]) {
			continue // local part too long
		}
		for s < at && (text[s] == '.' || text[s] == '-' || text[s] == '+') {
			s++
		}
		if s == at || text[at-1] == '.' || bytes.Contains(text[s:at], []byte("..")) {
			continue
		}
		e := at + 1
		for e < len(text) && class[text[e]]&cDomain != 0 && e-at <= maxDomain+1 {
			e++
		}
		if e < len(text) && class[text[e]]&cDomain != 0 {
			continue
		}
		for e > at+1 && (text[e-1] == '.' || text[e-1] == '-') {
			e--
		}
		if !validDomain(text[at+1 : e]) {
			continue
		}
		if e < len(text) && (text[e] == '@' || text[e] >= 0x80) {
			continue
		}
		dst = append(dst, Match{Email, s, e})
		off = e
	}
}

func validDomain(d []byte) bool {
	labels, ls := 0, 0
	for i := 0; i <= len(d); i++ {
		if i < len(d) && d[i] != '.' {
			continue
		}
		l := d[ls:i]
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		labels++
		if i == len(d) { // TLD
			if len(l) < 2 {
				return false
			}
			for _, c := range l {
				if !isAlpha(c) {
					return false
				}
			}
		}
		ls = i + 1
	}
	return labels >= 2
}

// ibanLen holds IBAN lengths of common countries.
var ibanLen = map[[2]byte]uint8{
	{'A', 'D'}: 24, {'A', 'E'}: 23, {'A', 'L'}: 28, {'A', 'T'}: 20, {'A', 'Z'}: 28, {'B', 'A'}: 20,
	{'B', 'E'}: 16, {'B', 'G'}: 22, {'B', 'H'}: 22, {'B', 'R'}: 29, {'C', 'H'}: 21, {'C', 'R'}: 22,
	{'C', 'Y'}: 28, {'C', 'Z'}: 24, {'D', 'E'}: 22, {'D', 'K'}: 18, {'D', 'O'}: 28, {'E', 'E'}: 20,
	{'E', 'G'}: 29, {'E', 'S'}: 24, {'F', 'I'}: 18, {'F', 'O'}: 18, {'F', 'R'}: 27, {'G', 'B'}: 22,
	{'G', 'E'}: 22, {'G', 'I'}: 23, {'G', 'L'}: 18, {'G', 'R'}: 27, {'G', 'T'}: 28, {'H', 'R'}: 21,
	{'H', 'U'}: 28, {'I', 'E'}: 22, {'I', 'L'}: 23, {'I', 'Q'}: 23, {'I', 'S'}: 26, {'I', 'T'}: 27,
	{'J', 'O'}: 30, {'K', 'W'}: 30, {'K', 'Z'}: 20, {'L', 'B'}: 28, {'L', 'C'}: 32, {'L', 'I'}: 21,
	{'L', 'T'}: 20, {'L', 'U'}: 20, {'L', 'V'}: 21, {'M', 'C'}: 27, {'M', 'D'}: 24, {'M', 'E'}: 22,
	{'M', 'K'}: 19, {'M', 'R'}: 27, {'M', 'T'}: 31, {'M', 'U'}: 30, {'N', 'L'}: 18, {'N', 'O'}: 15,
	{'P', 'K'}: 24, {'P', 'L'}: 28, {'P', 'S'}: 29, {'P', 'T'}: 25, {'Q', 'A'}: 29, {'R', 'O'}: 24,
	{'R', 'S'}: 22, {'S', 'A'}: 24, {'S', 'C'}: 31, {'S', 'E'}: 24, {'S', 'I'}: 19, {'S', 'K'}: 24,
	{'S', 'M'}: 27, {'T', 'L'}: 23, {'T', 'N'}: 24, {'T', 'R'}: 26, {'U', 'A'}: 29, {'V', 'A'}: 22,
	{'V', 'G'}: 24, {'X', 'K'}: 20,
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 32
	}
	return c
}

// findIBANs matches IBANs (optionally grouped in fours by single spaces)
// whose length fits the country and whose mod-97 checksum is 1.
func findIBANs(text []byte, dst []Match) []Match {
	n := len(text)
	for i := 0; i+15 <= n; i++ {
		if !isDigit(text[i+2]) || !isDigit(text[i+3]) || !isAlpha(text[i]) || !isAlpha(text[i+1]) {
			continue
		}
		if i > 0 && (isAlnum(text[i-1]) || text[i-1] >= 0x80) {
			continue
		}
		cc := [2]byte{upper(text[i]), upper(text[i+1])}
		want := int(ibanLen[cc])
		if want == 0 {
			continue
		}
		var buf [34]byte
		k, j := 0, i
		for j < n && k < want {
			c := text[j]
			if isAlnum(c) {
				buf[k] = upper(c)
				k++
				j++
				continue
			}
			if c == ' ' && k%4 == 0 && k > 0 && j+1 < n && isAlnum(text[j+1]) {
				j++
				continue
			}
			break
		}
		if k != want || (j < n && (isAlnum(text[j]) || text[j] >= 0x80)) {
			continue
		}
		if !ibanChecksum(buf[:k]) {
			continue
		}
		dst = append(dst, Match{IBAN, i, j})
	}
	return dst
}

func ibanChecksum(s []byte) bool {
	r := 0
	for i := 0; i < len(s); i++ {
		c := s[(i+4)%len(s)]
		switch {
		case isDigit(c):
			r = (r*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			r = (r*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return r == 1
}

func isV6Char(c byte) bool { return class[c]&cHex != 0 || c == ':' || c == '.' }

// findIPv6 matches IPv6 addresses: tokens of hex digits and colons that
// contain "::" or seven colons and parse with net/netip.
func findIPv6(text []byte, dst []Match) []Match {
	off := 0
	for off < len(text) {
		k := bytes.IndexByte(text[off:], ':')
		if k < 0 {
			break
		}
		p := off + k
		s := p
		for s > 0 && isV6Char(text[s-1]) && p-s < 45 {
			s--
		}
		e := p
		for e < len(text) && isV6Char(text[e]) && e-s < 46 {
			e++
		}
		off = e
		for e > s && text[e-1] == '.' {
			e--
		}
		if e-s < 3 || e-s > 45 {
			continue
		}
		if s > 0 && (isAlnum(text[s-1]) || text[s-1] == '_' || text[s-1] >= 0x80) {
			continue
		}
		if e < len(text) && (isAlnum(text[e]) || text[e] == '_' || text[e] >= 0x80) {
			continue
		}
		tok := text[s:e]
		if tok[len(tok)-1] == ':' && !bytes.HasSuffix(tok, []byte("::")) {
			tok = tok[:len(tok)-1]
			e--
		}
		colons := bytes.Count(tok, []byte(":"))
		if !bytes.Contains(tok, []byte("::")) && colons != 7 && !(colons == 6 && bytes.IndexByte(tok, '.') >= 0) {
			continue
		}
		a, err := netip.ParseAddr(string(tok))
		if err != nil || !a.Is6() {
			continue
		}
		dst = append(dst, Match{IPAddress, s, e})
	}
	return dst
}

// tokenEnd returns the end of the run of bytes of the given class starting
// at i.
func tokenEnd(text []byte, i int, cls uint8) int {
	start := i
	for i < len(text) && class[text[i]]&cls != 0 && i-start <= maxToken {
		i++
	}
	return i
}

func secretStartOK(text []byte, i int) bool {
	return i == 0 || (class[text[i-1]]&cB64URL == 0 && text[i-1] < 0x80)
}

// secretLead marks bytes that can start a secret or a secret keyword.
var secretLead = func() (t [256]bool) {
	for _, c := range []byte("sAgxe-pPsStTaAkKcC") {
		t[c] = true
	}
	return t
}()

var secretWords = []string{"password", "passwd", "pwd", "secret", "token", "api_key", "apikey", "api-key", "access_key", "key", "auth", "credential"}

// findSecrets matches provider key formats, JWTs, PEM private keys and
// high-entropy values assigned to key/token/secret/password words.
func findSecrets(text []byte, dst []Match) []Match {
	n := len(text)
	for i := 0; i < n; i++ {
		c := text[i]
		if !secretLead[c] || (c != '-' && i > 0 && (isAlnum(text[i-1]) || text[i-1] == '_' && c != 't' && c != 'k' && c != 's')) {
			continue
		}
		e := 0
		switch c {
		case 's':
			if !secretStartOK(text, i) || !hasPrefix(text[i:], "sk-") {
				break
			}
			j := tokenEnd(text, i+3, cB64URL)
			if j-i-3 >= 20 && j-i <= maxToken && mixed(text[i+3:j]) {
				e = j
			}
		case 'A':
			if !secretStartOK(text, i) {
				break
			}
			if hasPrefix(text[i:], "AKIA") || hasPrefix(text[i:], "ASIA") {
				j := i + 4
				for j < n && j-i < 20 && (isDigit(text[j]) || (text[j] >= 'A' && text[j] <= 'Z')) {
					j++
				}
				if j-i == 20 && (j == n || !isAlnum(text[j])) {
					e = j
				}
			} else if hasPrefix(text[i:], "AIza") {
				j := tokenEnd(text, i+4, cB64URL)
				if j-i == 39 {
					e = j
				}
			}
		case 'g':
			if !secretStartOK(text, i) {
				break
			}
			if hasPrefix(text[i:], "github_pat_") {
				j := tokenEnd(text, i+11, cB64URL)
				if j-i-11 >= 22 && j-i <= maxToken {
					e = j
				}
			} else if i+4 < n && text[i+1] == 'h' && text[i+3] == '_' && bytes.IndexByte([]byte("pousr"), text[i+2]) >= 0 {
				j := tokenEnd(text, i+4, cUpper|cLower|cDigit)
				if j-i-4 >= 36 && j-i <= maxToken {
					e = j
				}
			}
		case 'x':
			if secretStartOK(text, i) && i+5 < n && hasPrefix(text[i:], "xox") && bytes.IndexByte([]byte("baprs"), text[i+3]) >= 0 && text[i+4] == '-' {
				j := i + 5
				for j < n && (isAlnum(text[j]) || text[j] == '-') && j-i <= maxToken {
					j++
				}
				if j-i-5 >= 10 && j-i <= maxToken {
					e = j
				}
			}
		case 'e':
			if secretStartOK(text, i) && hasPrefix(text[i:], "eyJ") {
				e = matchJWT(text, i)
			}
		case '-':
			if hasPrefix(text[i:], "-----BEGIN ") {
				e = matchPEM(text, i)
			}
		}
		if e == 0 {
			if j, k := matchKeyValue(text, i); k > 0 {
				dst = append(dst, Match{Secret, j, k})
			}
			continue
		}
		dst = append(dst, Match{Secret, i, e})
	}
	return dst
}

func hasPrefix(s []byte, p string) bool {
	return len(s) >= len(p) && string(s[:len(p)]) == p
}

func mixed(s []byte) bool {
	var k uint8
	for _, c := range s {
		k |= class[c] & (cDigit | cUpper | cLower)
	}
	return k&cDigit != 0 && k&(cUpper|cLower) != 0
}

func matchJWT(text []byte, i int) int {
	j := i
	for seg := 0; seg < 3; seg++ {
		if seg > 0 {
			if j >= len(text) || text[j] != '.' {
				return 0
			}
			j++
			if seg == 1 && !hasPrefix(text[j:], "eyJ") {
				return 0
			}
		}
		s := j
		j = tokenEnd(text, j, cB64URL)
		if j-s < 10 || j-i > maxToken {
			return 0
		}
	}
	if j < len(text) && text[j] == '.' && j+1 < len(text) && class[text[j+1]]&cB64URL != 0 {
		return 0
	}
	return j
}

// matchPEM matches a PEM private key block. An unterminated block runs to
// the end of the text (at most maxPEM bytes).
func matchPEM(text []byte, i int) int {
	h := text[i+11:]
	k := 0
	for k < len(h) && k < 40 && (h[k] == ' ' || (h[k] >= 'A' && h[k] <= 'Z') || isDigit(h[k])) {
		k++
	}
	if !hasPrefix(h[k:], "-----") || !bytes.HasSuffix(h[:k], []byte("PRIVATE KEY")) {
		return 0
	}
	limit := min(len(text), i+maxPEM)
	body := text[i:limit]
	endAt := bytes.Index(body[11:], []byte("-----END "))
	if endAt < 0 {
		return limit
	}
	p := i + 11 + endAt + 9
	q := bytes.Index(text[p:min(len(text), p+64)], []byte("-----"))
	if q < 0 {
		return limit
	}
	return p + q + 5
}

// matchKeyValue matches a high-entropy value of at least 24 bytes
// assigned to a secret-like word starting at text[i], returning the
// value's bounds.
func matchKeyValue(text []byte, i int) (int, int) {
	c := lower(text[i])
	if c != 'p' && c != 's' && c != 't' && c != 'a' && c != 'k' && c != 'c' {
		return 0, 0
	}
	if i > 0 && isAlpha(text[i-1]) {
		return 0, 0
	}
	w := ""
	for _, s := range secretWords {
		if s[0] == c && hasPrefixFold(text[i:], s) {
			w = s
			break
		}
	}
	if w == "" {
		return 0, 0
	}
	j := i + len(w)
	for k := 0; j < len(text) && k < 24 && (isAlpha(text[j]) || text[j] == '_' || text[j] == '-'); k++ {
		j++
	}
	for k := 0; j < len(text) && k < 3 && (text[j] == ' ' || text[j] == '"' || text[j] == '\''); k++ {
		j++
	}
	switch {
	case j < len(text) && (text[j] == '=' || text[j] == ':'):
		j++
		if j < len(text) && text[j] == '=' {
			j++
		}
	case hasPrefixFold(text[j:], "is "):
		j += 3
	default:
		return 0, 0
	}
	for k := 0; j < len(text) && k < 4 && (text[j] == ' ' || text[j] == '"' || text[j] == '\'' || text[j] == '`'); k++ {
		j++
	}
	s := j
	e := tokenEnd(text, s, cToken)
	for e > s && (text[e-1] == '.' || text[e-1] == ',') {
		e--
	}
	if e-s < 24 || e-s > maxToken || (e < len(text) && text[e] >= 0x80) {
		return 0, 0
	}
	v := text[s:e]
	if !mixed(v) || entropy(v) < 3.5 {
		return 0, 0
	}
	return s, e
}

// entropy returns the Shannon entropy of s in bits per byte.
func entropy(s []byte) float64 {
	var counts [256]uint16
	for _, c := range s {
		counts[c]++
	}
	h := 0.0
	n := float64(len(s))
	for _, k := range counts {
		if k > 0 {
			p := float64(k) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
