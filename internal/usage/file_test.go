package usage

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestFileSinkRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	s, err := NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rs := testRecords(1000)
	ctx := context.Background()
	for i := 0; i < len(rs); i += 100 {
		if err := s.Write(ctx, rs[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, rs[:1]); err != ErrClosed {
		t.Fatalf("Write after Close: %v", err)
	}
	got := readLines(t, path)
	sameRecords(t, got, rs)
	for i := range got { // and in order
		if got[i].RequestID != rs[i].RequestID {
			t.Fatalf("line %d is %s", i, got[i].RequestID)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	first := strings.SplitN(string(b), "\n", 2)[0]
	for _, name := range []string{`"time":"2026-05-01T12:00:00Z"`, `"request_id":"req-000000"`, `"input_tokens":100`, `"cost_usd":`, `"ttfb_ms":0`, `"attempts":1`} {
		if !strings.Contains(first, name) {
			t.Errorf("line lacks %s: %s", name, first)
		}
	}

	// Reopening appends.
	s, err = NewFileSink(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	more := testRecords(1001)[1000:]
	if err := s.Write(ctx, more); err != nil {
		t.Fatal(err)
	}
	s.Close()
	sameRecords(t, readLines(t, path), append(rs, more...))
}

func TestFileSinkCleans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "u.jsonl")
	s, _ := NewFileSink(path, 0, 0)
	r := testRecords(1)[0]
	r.CostUSD, r.DurationMS, r.TTFBMS = math.NaN(), math.Inf(1), math.Inf(-1)
	r.Model = "bad\x00model\xff"
	if err := s.Write(context.Background(), []Record{r}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got := readLines(t, path)[0]
	if got.CostUSD != 0 || got.DurationMS != 0 || got.TTFBMS != 0 || got.Model != "bad\uFFFDmodel\uFFFD" {
		t.Fatalf("not cleaned: %+v", got)
	}
}

func TestFileSinkRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "usage.jsonl")
	const maxBytes, maxFiles = 4000, 3
	s, err := NewFileSink(path, maxBytes, maxFiles)
	if err != nil {
		t.Fatal(err)
	}
	rs := testRecords(300)
	ctx := context.Background()
	for i := 0; i < len(rs); {
		n := min(1+i%7, len(rs)-i) // batches of varied sizes, some crossing a rotation
		if err := s.Write(ctx, rs[i:i+n]); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	s.Close()

	files := []string{path + ".3", path + ".2", path + ".1", path} // oldest first
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxBytes || fi.Size() == 0 {
			t.Errorf("%s: %d bytes, want 1..%d", f, fi.Size(), maxBytes)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", f, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".4"); !os.IsNotExist(err) {
		t.Fatalf("%s.4 kept: %v", path, err)
	}
	// What is kept is exactly the newest records, in order.
	got := readLines(t, files...)
	want := rs[len(rs)-len(got):]
	for i := range got {
		if got[i].RequestID != want[i].RequestID {
			t.Fatalf("kept record %d is %s, want %s", i, got[i].RequestID, want[i].RequestID)
		}
	}
	// The summary reads the rotated files too.
	gs, err := SummarizeFile(path, t0, "model")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, g := range gs {
		n += g.Requests
	}
	if n != int64(len(got)) {
		t.Fatalf("summary counted %d, files hold %d", n, len(got))
	}

	// A line longer than maxBytes gets a file of its own instead of looping.
	big := rs[0]
	big.Model = strings.Repeat("m", 2*maxBytes)
	s, _ = NewFileSink(path, maxBytes, maxFiles)
	if err := s.Write(ctx, []Record{big, rs[1]}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := readLines(t, path+".1"); len(got) != 1 || got[0].Model != big.Model {
		t.Fatalf("long line not alone in %s.1", path)
	}
}

func TestFileSinkConcurrent(t *testing.T) {
	for _, maxBytes := range []int64{0, 20_000} { // without and with rotation
		t.Run(fmt.Sprint(maxBytes), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "usage.jsonl")
			s, err := NewFileSink(path, maxBytes, 10_000)
			if err != nil {
				t.Fatal(err)
			}
			rs := testRecords(4000)
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					part := rs[w*500 : (w+1)*500]
					for i := 0; i < len(part); i += 25 {
						if err := s.Write(context.Background(), part[i:i+25]); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			files, err := usageFiles(path)
			if err != nil {
				t.Fatal(err)
			}
			if maxBytes > 0 && len(files) < 2 {
				t.Fatalf("no rotation: %v", files)
			}
			sameRecords(t, readLines(t, files...), rs)
		})
	}
}
