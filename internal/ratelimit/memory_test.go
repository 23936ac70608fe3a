package ratelimit

import (
	"context"
	"runtime"
	"testing"
	"time"
)

func memoryHarness(t *testing.T) harness {
	m := NewMemory(MemoryOptions{SweepInterval: -1})
	t.Cleanup(func() { m.Close() })
	return harness{s: m, counters: m.Counters}
}

func TestMemory(t *testing.T) { suite(t, memoryHarness) }

// TestMemorySweep: buckets go once their windows no longer count, not before.
func TestMemorySweep(t *testing.T) {
	m := NewMemory(MemoryOptions{SweepInterval: -1})
	sec := rule("s", Requests, 5, Second, 1)
	day := rule("d", Requests, 5, Day, 1)
	now := ts("2026-03-04T05:06:07.5Z")
	for _, k := range []string{"a", "b", "c"} {
		reserve(t, m, now, Item{Rule: sec, Key: "sec/" + k, Cost: 1})
	}
	res := reserve(t, m, now, Item{Rule: day, Key: "day", Cost: 1})
	if n := m.Sweep(now.Add(1400 * time.Millisecond)); n != 4 {
		t.Fatalf("%d buckets after 1.4s, want 4 (the second-window is still the previous one)", n)
	}
	if n := m.Sweep(now.Add(1500 * time.Millisecond)); n != 1 {
		t.Fatalf("%d buckets after two windows, want 1", n)
	}
	// Settling a reservation of a swept bucket is harmless.
	if n := m.Sweep(ts("2026-03-05T00:00:00Z")); n != 0 {
		t.Fatalf("%d buckets after the day, want 0", n)
	}
	settle(t, m, ts("2026-03-05T00:00:00Z"), res, 0)
	wantCounters(t, harness{counters: m.Counters}, day.Limit, "day", ts("2026-03-05T00:00:00Z"), 0, 0)
}

// TestMemoryJanitor: the janitor sweeps on its own clock and stops on Close.
func TestMemoryJanitor(t *testing.T) {
	before := runtime.NumGoroutine()
	clk := make(chan time.Time, 1)
	clk <- ts("2026-03-04T05:06:07Z")
	var last time.Time
	m := NewMemory(MemoryOptions{SweepInterval: 64 * time.Millisecond, Now: func() time.Time {
		select {
		case last = <-clk:
		default:
		}
		return last
	}})
	r := rule("s", Requests, 5, Second, 1)
	reserve(t, m, ts("2026-03-04T05:06:07Z"), Item{Rule: r, Key: "k", Cost: 1})
	clk <- ts("2026-03-04T05:07:00Z")
	deadline := time.Now().Add(10 * time.Second)
	for m.Sweep(ts("2026-03-04T05:06:07Z")) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the janitor did not sweep")
		}
		runtime.Gosched()
	}
	m.Close()
	m.Close()
	// Other goroutines of the test binary come and go: wait (bounded) for the count to
	// settle back rather than read it once.
	for n := runtime.NumGoroutine(); n > before; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", n, before)
		}
		runtime.Gosched()
	}
}

// TestMemoryLateNow: a request whose now is older than the bucket's window
// (it read the clock before another request rolled the window) counts in the
// current window, conservatively.
func TestMemoryLateNow(t *testing.T) {
	m := NewMemory(MemoryOptions{SweepInterval: -1})
	r := rule("l", Requests, 2, Minute, 1)
	reserve(t, m, ts("2026-03-04T05:07:00Z"), Item{Rule: r, Key: "k", Cost: 1})
	res := reserve(t, m, ts("2026-03-04T05:06:59.999Z"), Item{Rule: r, Key: "k", Cost: 1})
	if !res.Allowed {
		t.Fatal("late request denied")
	}
	if s, _ := res.Reservations[0].Window(); !s.Equal(ts("2026-03-04T05:07:00Z")) {
		t.Errorf("late request reserved in the window of %s", s)
	}
	wantCounters(t, harness{counters: m.Counters}, r.Limit, "k", ts("2026-03-04T05:07:00Z"), 2, 0)
}

// TestMemoryRuleChange: a bucket whose rule changes window starts over.
func TestMemoryRuleChange(t *testing.T) {
	m := NewMemory(MemoryOptions{SweepInterval: -1})
	now := ts("2026-03-04T05:06:00Z")
	reserve(t, m, now, Item{Rule: rule("r", Requests, 1, Minute, 1), Key: "k", Cost: 1})
	if !reserve(t, m, now, Item{Rule: rule("r", Requests, 1, Hour, 1), Key: "k", Cost: 1}).Allowed {
		t.Error("the hourly rule saw the minute's count")
	}
}

// TestMemoryZeroAlloc: admission plus settlement allocates nothing once the
// buckets exist and the Result and settlement slice are reused.
func TestMemoryZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	m := NewMemory(MemoryOptions{SweepInterval: -1})
	items := []Item{
		{Rule: rule("tpm", Tokens, 1<<40, Minute, 1), Key: "team/research/tpm", Cost: 500},
		{Rule: rule("budget", Tokens, 1<<50, Month, 1), Key: "team/research/month", Cost: 500},
	}
	var res Result
	ss := make([]Settlement, len(items))
	now := ts("2026-03-04T05:06:00Z")
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := m.Reserve(ctx, now, items, &res); err != nil || !res.Allowed {
			t.Fatal("denied")
		}
		for i := range ss {
			ss[i] = Settlement{Reservation: res.Reservations[i], Actual: 300}
		}
		_ = m.Settle(ctx, now, ss)
		now = now.Add(time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
}
