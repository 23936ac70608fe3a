package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// testRecords makes n distinct records with every field varied. Times are whole
// microseconds (PostgreSQL's precision) and costs whole nano-dollars, so comparisons can
// be exact; costUnits(i) is record i's cost.
func testRecords(n int) []Record {
	teams := []string{"search", "ads", "", "ünïcode"}
	models := []string{"gpt-4o", "claude-sonnet", "meta-llama/Llama-3.1-8B"}
	rs := make([]Record, n)
	for i := range rs {
		rs[i] = Record{
			Time:                t0.Add(time.Duration(i) * 1001 * time.Microsecond),
			RequestID:           fmt.Sprintf("req-%06d", i),
			Subject:             fmt.Sprintf("user%d@example.com", i%7),
			Team:                teams[i%len(teams)],
			Key:                 fmt.Sprintf("default/key-%d", i%3),
			Route:               fmt.Sprintf("route-%d", i%5),
			Backend:             fmt.Sprintf("backend-%d", i%2),
			Model:               models[i%len(models)],
			UpstreamModel:       models[(i+1)%len(models)],
			Endpoint:            []string{"chat", "completions", "embeddings", "messages"}[i%4],
			Status:              []int{200, 200, 429, 502, 200}[i%5],
			Code:                []string{"", "", "rate_limited", "upstream_error", ""}[i%5],
			Stream:              i%2 == 0,
			InputTokens:         int64(100 + i),
			OutputTokens:        int64(i % 300),
			CachedInputTokens:   int64(i % 50),
			CacheCreationTokens: int64(i % 11),
			ReasoningTokens:     int64(i % 13),
			Estimated:           i%9 == 0,
			Cache:               []string{"", "hit", "semantic_hit", "miss"}[i%4],
			CostUSD:             float64(costNanos(i)) / nanosPerUSD,
			DurationMS:          float64(i) * 1.25,
			TTFBMS:              float64(i) / 3,
			Attempts:            1 + i%3,
		}
	}
	return rs
}

func costNanos(i int) int64 { return int64(i*1237%100_000 + 17) }

// expected sums testRecords(n)[from:] the way a summary should, independently.
func expected(rs []Record, since time.Time, by string) []Group {
	type acc struct {
		g     Group
		nanos int64
	}
	m := map[string]*acc{}
	for i, r := range rs {
		if r.Time.Before(since) {
			continue
		}
		k := groupKey(&rs[i], by)
		a := m[k]
		if a == nil {
			a = &acc{g: Group{Key: k}}
			m[k] = a
		}
		a.g.Requests++
		a.g.InputTokens += r.InputTokens
		a.g.OutputTokens += r.OutputTokens
		a.g.CachedInputTokens += r.CachedInputTokens
		var idx int
		fmt.Sscanf(r.RequestID, "req-%d", &idx)
		a.nanos += costNanos(idx)
		if r.Status >= 400 {
			a.g.Errors++
		}
	}
	var gs []Group
	for _, a := range m {
		a.g.CostUSD = float64(a.nanos) / nanosPerUSD
		gs = append(gs, a.g)
	}
	sortGroups(gs)
	return gs
}

// readLines decodes every line of the given files, in order.
func readLines(t *testing.T, files ...string) []Record {
	t.Helper()
	var out []Record
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if line == "" {
				continue
			}
			var r Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: %v: %q", f, err, line)
			}
			out = append(out, r)
		}
	}
	return out
}

// sameRecords compares as sets, by request ID, and fails on a duplicate.
func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	byID := func(a, b Record) int { return strings.Compare(a.RequestID, b.RequestID) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byID)
	slices.SortFunc(want, byID)
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// memSink keeps what it is given; fail, when set, decides whether a write fails.
type memSink struct {
	mu      sync.Mutex
	got     []Record
	batches []int
	fail    func(try int) error
	tries   int
	delay   time.Duration // a slow sink
	closed  bool
}

func (s *memSink) Write(_ context.Context, batch []Record) error {
	if s.delay > 0 {
		time.Sleep(s.delay) // simulates a slow server; nothing waits on it
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	if s.fail != nil {
		if err := s.fail(s.tries); err != nil {
			return err
		}
	}
	s.got = append(s.got, batch...)
	s.batches = append(s.batches, len(batch))
	return nil
}

func (s *memSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *memSink) records() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}
