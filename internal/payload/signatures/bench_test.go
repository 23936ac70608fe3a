package signatures

import (
	"os"
	"testing"
)

func benign4K(tb testing.TB) string {
	b, err := os.ReadFile("testdata/benign_4k.txt")
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// BenchmarkScan4KB scans a realistic 4 KB benign English prompt (meeting
// notes with questions; it has words such as system, developer, rules,
// character and message that patterns use).
func BenchmarkScan4KB(b *testing.B) {
	text := []byte(benign4K(b))
	s := New()
	dst := make([]Match, 0, 8)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		dst = s.Scan(text, dst[:0])
	}
	if len(dst) != 0 {
		b.Fatalf("benign text matched: %v", dst)
	}
}
