package textfilter

import (
	"strings"
	"testing"
)

func find(t *testing.T, f *Filter, text string) []string {
	t.Helper()
	spans, _ := f.Find([]byte(text), nil, nil)
	var out []string
	for _, s := range spans {
		out = append(out, text[s.Start:s.End])
	}
	return out
}

func TestWords(t *testing.T) {
	f, err := New([]Pattern{{Word: "Zeus"}, {Word: "top secret"}, {Word: "機密"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]string{
		"project ZEUS is live":       {"ZEUS"},
		"zeusian and zeus_x":         nil, // no word boundary
		"(zeus), zeus.":              {"zeus", "zeus"},
		"This is Top Secret stuff":   {"Top Secret"},
		"これは機密です":                    {"機密"}, // no spaces in Japanese: no boundaries to test
		"Zeüs is not zeus-like? no.": {"zeus"},
		"ΖΕΥΣ":                       nil,
	}
	for text, want := range cases {
		got := find(t, f, text)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%q: got %q, want %q", text, got, want)
		}
	}
}

func TestCaseFoldNonASCII(t *testing.T) {
	f, _ := New([]Pattern{{Word: "Ärger"}, {Word: "привет"}}, nil)
	if got := find(t, f, "viel ÄRGER heute, ПРИВЕТ мир"); len(got) != 2 {
		t.Fatalf("got %q", got)
	}
}

func TestRegexAndAllow(t *testing.T) {
	f, err := New(
		[]Pattern{{Regex: `(?i)\bproject-[a-z]+\b`}, {Word: "secret"}},
		[]Pattern{{Word: "project-public"}, {Regex: `not a secret`}},
	)
	if err != nil {
		t.Fatal(err)
	}
	got := find(t, f, "project-zeus and project-public; it is not a secret but a secret")
	if strings.Join(got, "|") != "project-zeus|secret" {
		t.Fatalf("got %q", got)
	}
}

func TestBadRegex(t *testing.T) {
	if _, err := New([]Pattern{{Regex: "("}}, nil); err == nil {
		t.Fatal("want error")
	}
}

func TestMaxLen(t *testing.T) {
	cases := []struct {
		p    Pattern
		want int
	}{
		{Pattern{Word: "abc"}, 3 + 8},
		{Pattern{Regex: `abc\d{2}`}, 3 + 8 + 8},
		{Pattern{Regex: `a+`}, UnboundedHold + 8},
		{Pattern{Regex: `(?i)ab|xyz`}, 12 + 8},
	}
	for _, c := range cases {
		f, err := New([]Pattern{c.p}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f.MaxLen() != c.want {
			t.Errorf("%+v: MaxLen %d, want %d", c.p, f.MaxLen(), c.want)
		}
	}
}

func TestOverlapsMerge(t *testing.T) {
	f, _ := New([]Pattern{{Word: "new york"}, {Word: "york city"}}, nil)
	spans, _ := f.Find([]byte("in new york city"), nil, nil)
	if len(spans) != 1 || spans[0] != (Span{3, 16}) {
		t.Fatalf("got %v", spans)
	}
}

func BenchmarkFind4KB(b *testing.B) {
	f, _ := New([]Pattern{{Word: "project-zeus"}, {Word: "confidential"}, {Regex: `(?i)\binternal[- ]only\b`}}, nil)
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog while the team reviews the quarterly report. ", 46))[:4096]
	var spans []Span
	var scratch []byte
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		spans, scratch = f.Find(text, spans[:0], scratch)
	}
}
