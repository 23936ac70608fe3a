package pii

// findNumbers scans digit-led candidates once and tries IPv4, SSN, credit
// card and phone rules at each candidate start.
func (d *Detector) findNumbers(text []byte, dst []Match) []Match {
	n := len(text)
	for i := 0; i < n; {
		c := text[i]
		if !numLead[c] {
			i++
			continue
		}
		if !numberStartOK(text, i) {
			i = skipDigits(text, i+1)
			continue
		}
		if isDigit(c) {
			if d.has(IPAddress) {
				if e := matchIPv4(text, i); e > 0 {
					dst = append(dst, Match{IPAddress, i, e})
				}
			}
			if d.has(SSN) {
				if e := matchSSN(text, i); e > 0 {
					dst = append(dst, Match{SSN, i, e})
				}
			}
			if d.has(CreditCard) {
				if e := matchCard(text, i); e > 0 {
					dst = append(dst, Match{CreditCard, i, e})
				}
			}
		}
		if d.has(Phone) {
			if e := matchPhone(text, i); e > 0 {
				dst = append(dst, Match{Phone, i, e})
			}
		}
		i = skipDigits(text, i+1)
	}
	return dst
}

var numLead = func() (t [256]bool) {
	for _, c := range []byte("0123456789+(") {
		t[c] = true
	}
	return t
}()

func skipDigits(text []byte, i int) int {
	for i < len(text) && isDigit(text[i]) {
		i++
	}
	return i
}

// numberStartOK reports whether a number may start at text[i]: it must
// not continue a word, a longer number or a dotted/dashed sequence.
func numberStartOK(text []byte, i int) bool {
	if i == 0 {
		return true
	}
	p := text[i-1]
	if isAlnum(p) || p == '_' || p == '@' || p == '+' || p >= 0x80 {
		return false
	}
	switch p {
	case '.', '-', '/', ':', ',':
		if i >= 2 && isDigit(text[i-2]) {
			return false
		}
	}
	if text[i] == '(' && i >= 1 && isDigit(p) {
		return false
	}
	return true
}

// numberEndOK reports whether a number may end at text[e].
func numberEndOK(text []byte, e int) bool {
	if e >= len(text) {
		return true
	}
	c := text[e]
	if isAlnum(c) || c == '_' || c == '@' || c >= 0x80 {
		return false
	}
	switch c {
	case '.', '-', '/', ':', ',':
		if e+1 < len(text) && isDigit(text[e+1]) {
			return false
		}
	}
	return true
}

// matchIPv4 matches a dotted quad at text[i:], returning its end or 0.
func matchIPv4(text []byte, i int) int {
	j := i
	for oct := 0; oct < 4; oct++ {
		if oct > 0 {
			if j >= len(text) || text[j] != '.' {
				return 0
			}
			j++
		}
		s, v := j, 0
		for j < len(text) && isDigit(text[j]) && j-s < 4 {
			v = v*10 + int(text[j]-'0')
			j++
		}
		l := j - s
		if l == 0 || l > 3 || v > 255 || (l > 1 && text[s] == '0') {
			return 0
		}
	}
	if !numberEndOK(text, j) {
		return 0
	}
	return j
}

var ssnWords = []string{"ssn", "social security", "social sec", "ss#", "ss #", "soc sec"}

// matchSSN matches ddd-dd-dddd (or ddd dd dddd / ddddddddd near SSN
// context words) with valid area, group and serial numbers.
func matchSSN(text []byte, i int) int {
	var dg [9]byte
	j, k := i, 0
	sep := byte(0)
	for k < 9 && j < len(text) {
		c := text[j]
		if isDigit(c) {
			dg[k] = c - '0'
			k++
			j++
			continue
		}
		if (k == 3 || k == 5) && (c == '-' || c == ' ') && j+1 < len(text) && isDigit(text[j+1]) {
			if k == 3 {
				sep = c
			} else if c != sep {
				return 0
			}
			j++
			continue
		}
		break
	}
	if k != 9 || !numberEndOK(text, j) {
		return 0
	}
	if j-i == 10 { // a single separator: inconsistent grouping
		return 0
	}
	if j < len(text) && (text[j] == '-' || (text[j] == ' ' && sep == ' ')) && j+1 < len(text) && isDigit(text[j+1]) {
		return 0
	}
	area := int(dg[0])*100 + int(dg[1])*10 + int(dg[2])
	group := int(dg[3])*10 + int(dg[4])
	serial := int(dg[5])*1000 + int(dg[6])*100 + int(dg[7])*10 + int(dg[8])
	if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
		return 0
	}
	if sep != '-' {
		b, a := window(text, i, j, 48, 16)
		if !containsAnyFold(b, ssnWords) && !containsAnyFold(a, ssnWords) {
			return 0
		}
	}
	return j
}

// matchCard matches 13–19 digits with optional single space or dash
// separators that pass the Luhn check and carry a known IIN prefix.
func matchCard(text []byte, i int) int {
	var dg [19]byte
	var ends [20]int // ends[k] = byte end after k digits, at group boundaries (0 if not)
	j, k := i, 0
	sep := byte(0)
	for j < len(text) {
		c := text[j]
		if isDigit(c) {
			if k == 19 {
				if sep == 0 {
					return 0 // longer digit run
				}
				break
			}
			dg[k] = c - '0'
			k++
			j++
			continue
		}
		if (c == ' ' || c == '-') && j+1 < len(text) && isDigit(text[j+1]) && (sep == 0 || c == sep) {
			if sep == 0 {
				sep = c
			}
			ends[k] = j
			j++
			continue
		}
		break
	}
	if k < 13 {
		return 0
	}
	ends[k] = j
	if j < len(text) && isDigit(text[j]) {
		return 0
	}
	for n := k; n >= 13; n-- {
		e := ends[n]
		if e == 0 {
			continue
		}
		if n != k && sep != ' ' {
			break
		}
		if !numberEndOK(text, e) && n == k {
			return 0
		}
		if luhn(dg[:n]) && knownIIN(dg[:n]) {
			return e
		}
	}
	return 0
}

func luhn(dg []byte) bool {
	sum := 0
	for i := len(dg) - 1; i >= 0; i-- {
		v := int(dg[i])
		if (len(dg)-1-i)%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

func prefixNum(dg []byte, n int) int {
	v := 0
	for i := 0; i < n && i < len(dg); i++ {
		v = v*10 + int(dg[i])
	}
	return v
}

// knownIIN reports whether the digits start with a known card issuer
// prefix compatible with their length.
func knownIIN(dg []byte) bool {
	n := len(dg)
	p2, p3, p4 := prefixNum(dg, 2), prefixNum(dg, 3), prefixNum(dg, 4)
	switch {
	case dg[0] == 4: // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // Amex
		return n == 15
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners
		return n >= 14 && n <= 19
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16 && n <= 19
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p2 == 62: // Discover, UnionPay
		return n >= 16 && n <= 19
	case p2 == 50, p2 >= 56 && p2 <= 58, p2 == 63, p2 == 67: // Maestro
		return n >= 13 && n <= 19
	}
	return false
}

var phoneWords = []string{
	"phone", "tel", "call", "mobile", "cell", "fax", "office", "reach", "contact",
	"whatsapp", "sms", "text me", "dial", "ring", "answer", "hotline", "landline",
}

// matchPhone matches an international or national phone number at text[i:].
func matchPhone(text []byte, i int) int {
	n := len(text)
	j := i
	plus := false
	open := 0
	if text[j] == '+' {
		plus = true
		j++
	}
	if j < n && text[j] == '(' {
		open++
		j++
	}
	if j >= n || !isDigit(text[j]) {
		return 0
	}
	if i > 0 && (text[i-1] == '#' || text[i-1] == '$') {
		return 0
	}
	var groups [8]int
	var seps [8]byte
	ng, d, end := 0, 0, 0
	dots := false
	for {
		s := j
		for j < n && isDigit(text[j]) {
			j++
		}
		gl := j - s
		if gl == 0 {
			break
		}
		if ng == len(groups) {
			return 0
		}
		groups[ng] = gl
		ng++
		d += gl
		end = j
		if d > 15 {
			return 0
		}
		// separator
		k, o, plain := j, open, 0
		var sc byte
		for k < n && k-j < 3 {
			c := text[k]
			if c == ' ' || c == '-' || c == '.' {
				if plain > 0 && (c == sc || c == '.' || sc == '.') {
					break
				}
				plain++
				sc = c
			} else if c == '(' && o == 0 {
				o++
			} else if c == ')' && o > 0 {
				o--
			} else {
				break
			}
			k++
		}
		if k == j || k >= n || !isDigit(text[k]) {
			break
		}
		if sc == '.' {
			dots = true
		}
		if ng-1 < len(seps) {
			seps[ng-1] = sc
		}
		open = o
		j = k
	}
	if open != 0 || d < 6 || (d == 6 && ng < 3) {
		return 0
	}
	// extension
	e := end
	if x := extensionEnd(text, end); x > 0 {
		e = x
	} else if !numberEndOK(text, end) {
		return 0
	}
	g := groups[:ng]
	if dots {
		if ng < 3 || ng > 5 {
			return 0
		}
		for _, l := range g {
			if l < 2 {
				return 0
			}
		}
		if ng == 4 && g[0] <= 3 && g[1] <= 3 && g[2] <= 3 && g[3] <= 3 {
			return 0 // IPv4-like
		}
	}
	if ng == 3 && ((g[0] == 4 && g[1] == 2 && g[2] == 2) || (g[0] <= 2 && g[1] <= 2 && g[2] == 4)) {
		return 0 // date
	}
	if ng == 3 && g[0] == 3 && g[1] == 2 && g[2] == 4 && seps[0] == '-' && !plus {
		return 0 // SSN shape
	}
	if d >= 13 {
		var dg [15]byte
		k := 0
		for p := i; p < end; p++ {
			if isDigit(text[p]) {
				dg[k] = text[p] - '0'
				k++
			}
		}
		if luhn(dg[:k]) && knownIIN(dg[:k]) {
			return 0
		}
	}
	if plus && d >= 8 {
		return e
	}
	if ng == 1 && d < 10 {
		return 0
	}
	b, a := window(text, i, e, 48, 24)
	ctx := containsAnyFold(b, phoneWords) || containsAnyFold(a, phoneWords)
	// Identifiers such as order or invoice numbers are not phones unless
	// phone words are also present.
	if nb, _ := window(text, i, e, 32, 0); !ctx && containsAnyFold(nb, notPhoneWords) {
		return 0
	}
	if ctx || (ng >= 2 && d >= 10) {
		return e
	}
	return 0
}

var notPhoneWords = []string{
	"order", "invoice", "tracking", "ref", "account", "acct", "transaction", "serial",
	"ticket", "case", "id:", "id #", "id no", "isbn", "sku", "version", "build",
}

// extensionEnd returns the end of an extension ("x123", " ext. 123")
// following a phone number at text[i], or 0.
func extensionEnd(text []byte, i int) int {
	j := i
	if j < len(text) && text[j] == ' ' {
		j++
	}
	switch {
	case hasPrefixFold(text[j:], "ext."):
		j += 4
	case hasPrefixFold(text[j:], "ext"):
		j += 3
	case j < len(text) && (text[j] == 'x' || text[j] == 'X'):
		j++
	default:
		return 0
	}
	if j < len(text) && text[j] == ' ' {
		j++
	}
	s := j
	for j < len(text) && isDigit(text[j]) && j-s < 7 {
		j++
	}
	if j == s || j-s > 6 || (j < len(text) && isAlnum(text[j])) {
		return 0
	}
	return j
}
