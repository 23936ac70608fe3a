package signatures

import (
	"slices"
	"testing"
)

func FuzzScan(f *testing.F) {
	for _, c := range ruleCases {
		for _, p := range c.pos {
			f.Add([]byte(p))
		}
		for _, n := range c.neg {
			f.Add([]byte(n))
		}
	}
	f.Add([]byte{0xff, 0xc3, 0xe2, 0x82, '<', '!', '-', '-', ']', '('})
	known := map[string]bool{}
	for _, m := range scanner.Rules() {
		known[m.Rule] = true
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		orig := slices.Clone(text)
		got := scanner.Scan(text, nil)
		if !slices.Equal(text, orig) {
			t.Fatalf("Scan modified its input")
		}
		seen := map[string]bool{}
		for _, m := range got {
			if !known[m.Rule] || seen[m.Rule] {
				t.Fatalf("bad or repeated rule %q in %v", m.Rule, got)
			}
			seen[m.Rule] = true
		}
		if again := scanner.Scan(text, nil); !slices.Equal(got, again) {
			t.Fatalf("not deterministic: %v then %v", got, again)
		}
		checkAgree(t, text)
	})
}
