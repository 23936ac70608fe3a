package usage

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path string, maxBytes int64, rs []Record) {
	t.Helper()
	s, err := NewFileSink(path, maxBytes, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSummarizeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.jsonl")
	rs := testRecords(2000)
	writeFile(t, path, 50_000, rs) // rotated into several files
	for _, by := range Groupings {
		for _, since := range []time.Time{{}, rs[1234].Time} {
			got, err := SummarizeFile(path, since, by)
			if err != nil {
				t.Fatal(err)
			}
			if want := expected(rs, since, by); !reflect.DeepEqual(got, want) {
				t.Fatalf("by %s since %v:\n got %+v\nwant %+v", by, since, got, want)
			}
		}
	}
	got, _ := SummarizeFile(path, time.Time{}, "team")
	for i := 1; i < len(got); i++ {
		if got[i].CostUSD > got[i-1].CostUSD {
			t.Fatalf("not sorted by cost: %+v", got)
		}
	}
}

func TestSummarizeFileBadLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "usage.jsonl")
	rs := testRecords(10)
	writeFile(t, path, 0, rs)
	// A line cut short by a crash, some garbage, a blank line, and a very long bad line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2026-05-01T12:00:00Z","request_id":"cut` + "\nnot json\n\n" + strings.Repeat("x", 200_000) + "\n")
	f.Close()
	got, err := SummarizeFile(path, time.Time{}, "model")
	if err != nil {
		t.Fatal(err)
	}
	if want := expected(rs, time.Time{}, "model"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	junk := filepath.Join(dir, "junk.jsonl")
	os.WriteFile(junk, []byte("a\nb\n"), 0o600)
	if _, err := SummarizeFile(junk, time.Time{}, "model"); err == nil || !strings.Contains(err.Error(), "none of 2 lines") {
		t.Fatalf("a file of junk: %v", err)
	}
	empty := filepath.Join(dir, "empty.jsonl")
	os.WriteFile(empty, nil, 0o600)
	if gs, err := SummarizeFile(empty, time.Time{}, "model"); err != nil || len(gs) != 0 {
		t.Fatalf("an empty file: %v %v", gs, err)
	}
	if _, err := SummarizeFile(filepath.Join(dir, "absent.jsonl"), time.Time{}, "model"); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("an absent file: %v", err)
	}
	if _, err := SummarizeFile(path, time.Time{}, "model; DROP TABLE x"); err == nil {
		t.Fatal("an unknown grouping was accepted")
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestUsageFilesIgnoresOthers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "u.jsonl")
	for _, name := range []string{"u.jsonl", "u.jsonl.1", "u.jsonl.12", "u.jsonl.2", "u.jsonl.x", "u.jsonl.01", "u.jsonl2", "other"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o600)
	}
	got, err := usageFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + ".12", path + ".2", path + ".1", path}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
