package pii

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func findStrings(d *Detector, s string) []string {
	var out []string
	for _, m := range d.Find([]byte(s), nil) {
		out = append(out, m.Entity.String()+":"+s[m.Start:m.End])
	}
	return out
}

func TestParseEntity(t *testing.T) {
	for e := Entity(0); e < numEntities; e++ {
		got, err := ParseEntity(e.String())
		if err != nil || got != e {
			t.Errorf("ParseEntity(%q) = %v, %v", e.String(), got, err)
		}
	}
	if _, err := ParseEntity("Name"); err == nil {
		t.Error("ParseEntity(Name): want error")
	}
	want := []string{"[EMAIL]", "[PHONE]", "[CREDIT_CARD]", "[SSN]", "[IBAN]", "[IP_ADDRESS]", "[SECRET]"}
	for e := Entity(0); e < numEntities; e++ {
		if e.Placeholder() != want[e] {
			t.Errorf("%v.Placeholder() = %q", e, e.Placeholder())
		}
	}
}

func TestEntities(t *testing.T) {
	awsKey := "AKIA" + "IOSFODNN7EXAMPLE"
	ghToken := "ghp_" + strings.Repeat("aB3dE5", 6)
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234\nabcd\n-----END RSA PRIVATE KEY-----"
	tests := []struct {
		in   string
		want []string
	}{
		// Email
		{"mail john.doe+x@example.co.uk now", []string{"Email:john.doe+x@example.co.uk"}},
		{"end.<a@b.io>.", []string{"Email:a@b.io"}},
		{"user@localhost and @handle and a@b.c and x@-bad.com", nil},
		// Phone
		{"call +44 20 7946 0958 today", []string{"Phone:+44 20 7946 0958"}},
		{"US (415) 555-2671 or 415.555.2671", []string{"Phone:(415) 555-2671", "Phone:415.555.2671"}},
		{"+1-202-555-0143x123", []string{"Phone:+1-202-555-0143x123"}},
		{"+49 (0) 30 1234567", []string{"Phone:+49 (0) 30 1234567"}},
		{"mobile: 4155552671", []string{"Phone:4155552671"}},
		{"order 4155552671 shipped", nil},
		{"Order number: 415-555-2671", nil},
		{"invoice no. 2024 1234 5678", nil},
		{"ts 1700000000 at 2023-01-15T14:56:41Z", nil},
		{"Phone number: 555 1234", []string{"Phone:555 1234"}},
		{"order #415-555-2671", nil},
		{"version 1.2.3.4.5 and 10.12.14.16.18.20", nil},
		{"on 2023-01-15 at 2023-01-15 14:56:41", nil},
		{"dated 12/05/2023 or 12-05-2023", nil},
		{"id 12345678901234567890", nil},
		// CreditCard
		{"card 4111 1111 1111 1111 exp", []string{"CreditCard:4111 1111 1111 1111"}},
		{"card 4111-1111-1111-1111.", []string{"CreditCard:4111-1111-1111-1111"}},
		{"amex 378282246310005", []string{"CreditCard:378282246310005"}},
		{"mc 5555555555554444 and 2223003122003222", []string{"CreditCard:5555555555554444", "CreditCard:2223003122003222"}},
		{"bad 4111111111111112", nil},
		{"unknown issuer 9111111111111111 ", nil},
		{"longer 41111111111111110", nil},
		// SSN
		{"SSN 123-45-6789", []string{"SSN:123-45-6789"}},
		{"my ssn is 123456789", []string{"SSN:123456789"}},
		{"zip 123456789", nil},
		{"000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000", nil},
		// IBAN
		{"IBAN GB82 WEST 1234 5698 7654 32.", []string{"IBAN:GB82 WEST 1234 5698 7654 32"}},
		{"de89370400440532013000", []string{"IBAN:de89370400440532013000"}},
		{"GB82WEST12345698765433", nil},
		{"XX82WEST12345698765432", nil},
		// IPAddress
		{"from 192.168.1.10, to 8.8.8.8.", []string{"IPAddress:192.168.1.10", "IPAddress:8.8.8.8"}},
		{"v6 2001:db8::1 and fe80::1ff:fe23:4567:890a", []string{"IPAddress:2001:db8::1", "IPAddress:fe80::1ff:fe23:4567:890a"}},
		{"2001:0db8:85a3:0000:0000:8a2e:0370:7334", []string{"IPAddress:2001:0db8:85a3:0000:0000:8a2e:0370:7334"}},
		{"version 1.2.3.4.5 256.1.1.1 at 12:30:45 std::vector", nil},
		// Secret
		{"key " + awsKey + " x", []string{"Secret:" + awsKey}},
		{"OPENAI_API_KEY sk-proj-abcDEF1234567890abcdef", []string{"Secret:sk-proj-abcDEF1234567890abcdef"}},
		{"sk-ant-api03-AbCdEf0123456789xyz", []string{"Secret:sk-ant-api03-AbCdEf0123456789xyz"}},
		{"t=" + ghToken, []string{"Secret:" + ghToken}},
		{"slack xoxb-123456789012-abcdefABCDEF", []string{"Secret:xoxb-123456789012-abcdefABCDEF"}},
		{"AIzaSyA1234567890abcdefghijklmnopqrstuv", []string{"Secret:AIzaSyA1234567890abcdefghijklmnopqrstuv"}},
		{"Bearer " + jwt, []string{"Secret:" + jwt}},
		{"x\n" + pem + "\ny", []string{"Secret:" + pem}},
		{`password="Xk9#mP2vL8qR4wT6yZ1nB3cF"`, nil}, // '#' splits the token below 24
		{`api_key = "q8Zr2LmX4vN7pT1sK9wB3yH6dF0g"`, []string{"Secret:q8Zr2LmX4vN7pT1sK9wB3yH6dF0g"}},
		{"the token is aaaaaaaaaaaaaaaaaaaaaaaaaaaa", nil},
		{"sk-learn is a library; monkey=q8Zr2LmX4vN7pT1sK9wB3yH6dF0g", nil},
	}
	d := New()
	for _, tt := range tests {
		got := findStrings(d, tt.in)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Find(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestNewSubset(t *testing.T) {
	d := New(Email)
	got := findStrings(d, "a@b.io 4111111111111111 123-45-6789")
	if fmt.Sprint(got) != "[Email:a@b.io]" {
		t.Errorf("got %q", got)
	}
}

func TestRedact(t *testing.T) {
	in := "Email jane@example.com, card 4111 1111 1111 1111, SSN 123-45-6789, ip 10.0.0.1."
	out, n := New().Redact(nil, []byte(in))
	want := "Email [EMAIL], card [CREDIT_CARD], SSN [SSN], ip [IP_ADDRESS]."
	if string(out) != want || n != 4 {
		t.Errorf("Redact = %q, %d; want %q, 4", out, n, want)
	}
}

func TestFindNoAlloc(t *testing.T) {
	d := New()
	text := []byte(benchText())
	dst := make([]Match, 0, 64)
	allocs := testing.AllocsPerRun(20, func() { dst = d.Find(text, dst[:0]) })
	if allocs != 0 {
		t.Errorf("Find allocates %v times", allocs)
	}
}

func streamRedact(d *Detector, chunks [][]byte) []byte {
	r := d.NewRedactor()
	var out []byte
	for _, c := range chunks {
		out = r.Write(out, c)
	}
	return r.Flush(out)
}

func TestRedactorSplitCard(t *testing.T) {
	d := New()
	prefix := strings.Repeat("lorem ipsum dolor sit amet ", 200)
	in := prefix + "pay with 4111 1111 1111 1111 please, mail a@b.io"
	want, _ := d.Redact(nil, []byte(in))
	if !bytes.Contains(want, []byte("[CREDIT_CARD]")) {
		t.Fatal("card not redacted in one shot")
	}
	start := len(prefix) + len("pay with ")
	for cut := start - 2; cut <= start+21; cut++ {
		got := streamRedact(d, [][]byte{[]byte(in[:cut]), []byte(in[cut:])})
		if !bytes.Equal(got, want) {
			t.Fatalf("split at %d: got %q", cut, got[len(got)-80:])
		}
	}
	// byte-at-a-time, and three-way splits
	var chunks [][]byte
	for i := 0; i < len(in); i++ {
		chunks = append(chunks, []byte(in[i:i+1]))
	}
	if got := streamRedact(d, chunks); !bytes.Equal(got, want) {
		t.Fatalf("byte-wise: got %q", got)
	}
}

func TestRedactorReleasesEarly(t *testing.T) {
	d := New()
	r := d.NewRedactor()
	chunk := []byte(strings.Repeat("plain text with no personal data. ", 40))
	var out []byte
	total := 0
	for i := 0; i < 20; i++ {
		out = r.Write(out, chunk)
		total += len(chunk)
	}
	if held := total - len(out); held > spaceHold+minRelease+40 {
		t.Errorf("holding back %d bytes", held)
	}
	out = r.Flush(out)
	if len(out) != total {
		t.Errorf("flush: %d bytes, want %d", len(out), total)
	}
}

func TestRedactorLongPEM(t *testing.T) {
	d := New()
	body := strings.Repeat("MIIEowIBAAKCAQEA1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLM\n", 100)
	in := "key:\n-----BEGIN PRIVATE KEY-----\n" + body + "-----END PRIVATE KEY-----\ndone"
	var chunks [][]byte
	for i := 0; i < len(in); i += 100 {
		chunks = append(chunks, []byte(in[i:min(i+100, len(in))]))
	}
	got := streamRedact(d, chunks)
	if string(got) != "key:\n[SECRET]\ndone" {
		t.Errorf("got %q", got)
	}
}

func FuzzRedactor(f *testing.F) {
	f.Add([]byte("card 4111 1111 1111 1111 ssn 123-45-6789 a@b.io"), uint8(7))
	f.Add([]byte("+44 20 7946 0958 GB82 WEST 1234 5698 7654 32 2001:db8::1"), uint8(3))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----"), uint8(1))
	f.Add([]byte(benchText()), uint8(50))
	d := New()
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		want, _ := d.Redact(nil, data)
		n := int(step)%64 + 1
		var chunks [][]byte
		for i := 0; i < len(data); i += n {
			chunks = append(chunks, data[i:min(i+n, len(data))])
		}
		got := streamRedact(d, chunks)
		if !bytes.Equal(got, want) {
			t.Fatalf("stream %q\n  != redact %q", got, want)
		}
		// Large inputs exercise early release.
		big := bytes.Repeat(data, 4096/(len(data)+1)+1)
		want, _ = d.Redact(nil, big)
		chunks = chunks[:0]
		for i := 0; i < len(big); i += n * 17 {
			chunks = append(chunks, big[i:min(i+n*17, len(big))])
		}
		if got := streamRedact(d, chunks); !bytes.Equal(got, want) {
			t.Fatalf("big stream mismatch")
		}
	})
}

func benchText() string {
	var b strings.Builder
	para := "The quarterly report covers revenue growth across all regions, with notes on churn, " +
		"pricing experiments and the roadmap for the next two releases (v2.4.1 and 2.5.0). "
	for b.Len() < 1800 {
		b.WriteString(para)
	}
	b.WriteString("Contact Jane at jane.doe@example.com or +1 415-555-2671. Card on file: 4111 1111 1111 1111. ")
	for b.Len() < 3600 {
		b.WriteString(para)
	}
	b.WriteString("Server 10.20.30.40 uses key AKIAIOSFODNN7EXAMPLE; SSN 123-45-6789. ")
	for b.Len() < 4096 {
		b.WriteString("x")
	}
	return b.String()[:4096]
}

func BenchmarkRedact4KB(b *testing.B) {
	d := New()
	text := []byte(benchText())
	dst := make([]byte, 0, 8192)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = d.Redact(dst[:0], text)
	}
}

func TestRedactorRandomChunks(t *testing.T) {
	items := []string{
		"jane.doe@example.com", "+44 20 7946 0958", "(415) 555-2671", "4111 1111 1111 1111",
		"378282246310005", "123-45-6789", "my ssn is 123456789", "GB82 WEST 1234 5698 7654 32",
		"192.168.0.1", "2001:db8::1", "AKIAIOSFODNN7EXAMPLE", "call 555 1234",
		"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----",
		"token=q8Zr2LmX4vN7pT1sK9wB3yH6dF0g", "v1.2.3.4.5", "2023-01-15 14:56:41",
		strings.Repeat("word ", 30), strings.Repeat("x", 300), "\n", "  ", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijklmnop",
	}
	seps := []string{" ", "", "\n", ", ", "-", "."}
	rng := rand.New(rand.NewPCG(1, 2))
	d := New()
	for iter := 0; iter < 300; iter++ {
		var b strings.Builder
		for b.Len() < 6000 {
			b.WriteString(items[rng.IntN(len(items))])
			b.WriteString(seps[rng.IntN(len(seps))])
		}
		in := []byte(b.String())
		want, _ := d.Redact(nil, in)
		var chunks [][]byte
		for i := 0; i < len(in); {
			n := 1 + rng.IntN(200)
			chunks = append(chunks, in[i:min(i+n, len(in))])
			i += n
		}
		if got := streamRedact(d, chunks); !bytes.Equal(got, want) {
			k := 0
			for k < min(len(got), len(want)) && got[k] == want[k] {
				k++
			}
			t.Fatalf("iter %d: mismatch at %d:\n got %q\nwant %q", iter, k, got[max(0, k-60):min(len(got), k+60)], want[max(0, k-60):min(len(want), k+60)])
		}
	}
}
