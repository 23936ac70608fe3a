package ratelimit

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// fakeClock is the tests' clock: the store takes now as an argument, so the
// clock only needs to be advanced.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }
func (c *fakeClock) Set(s string)            { c.t = ts(s) }

// harness is a store under test and a way to read its raw counters.
type harness struct {
	s        Store
	counters func(l Limit, key string, now time.Time) (cur, prev int64)
}

// suite runs the behaviour every store must have.
func suite(t *testing.T, mk func(t *testing.T) harness) {
	t.Run("Periods", func(t *testing.T) { testPeriods(t, mk(t)) })
	t.Run("SlidingWeighting", func(t *testing.T) { testSlidingWeighting(t, mk(t)) })
	t.Run("SlidingCountAndRetryAfter", func(t *testing.T) { testSlidingCount(t, mk(t)) })
	t.Run("DayBoundary", func(t *testing.T) { testDayBoundary(t, mk(t)) })
	t.Run("MonthBoundaries", func(t *testing.T) { testMonthBoundaries(t, mk(t)) })
	t.Run("CalendarCount", func(t *testing.T) { testCalendarCount(t, mk(t)) })
	t.Run("AllOrNothing", func(t *testing.T) { testAllOrNothing(t, mk(t)) })
	t.Run("Shadow", func(t *testing.T) { testShadow(t, mk(t)) })
	t.Run("Settle", func(t *testing.T) { testSettle(t, mk(t)) })
	t.Run("SettleAfterRollover", func(t *testing.T) { testSettleAfterRollover(t, mk(t)) })
	t.Run("SettleAfterMonthEnd", func(t *testing.T) { testSettleAfterMonthEnd(t, mk(t)) })
	t.Run("States", func(t *testing.T) { testStates(t, mk(t)) })
	t.Run("ZeroCostAndOverspend", func(t *testing.T) { testZeroCostAndOverspend(t, mk(t)) })
	t.Run("TooLarge", func(t *testing.T) { testTooLarge(t, mk(t)) })
	t.Run("Concurrent1000", func(t *testing.T) { testConcurrent(t, mk(t), 1000, false) })
	t.Run("Concurrent1000Overspend", func(t *testing.T) { testConcurrent(t, mk(t), 1000, true) })
}

func rule(name string, unit Unit, volume int64, p Period, count int) *Rule {
	return &Rule{Name: name, Limit: Limit{Unit: unit, Volume: volume, Period: p, Count: count}}
}

func reserve(t *testing.T, s Store, now time.Time, items ...Item) *Result {
	t.Helper()
	var res Result
	if err := s.Reserve(context.Background(), now, items, &res); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if len(res.States) != len(items) || len(res.Reservations) != len(items) {
		t.Fatalf("Reserve: %d states, %d reservations for %d items", len(res.States), len(res.Reservations), len(items))
	}
	return &res
}

func settle(t *testing.T, s Store, now time.Time, res *Result, actual ...int64) {
	t.Helper()
	ss := make([]Settlement, len(res.Reservations))
	for i := range ss {
		ss[i] = Settlement{Reservation: res.Reservations[i], Actual: actual[i]}
	}
	if err := s.Settle(context.Background(), now, ss); err != nil {
		t.Fatalf("Settle: %v", err)
	}
}

// admit reserves cost n times and returns how many were admitted.
func admit(t *testing.T, s Store, now time.Time, it Item, n int) int {
	t.Helper()
	k := 0
	for range n {
		if reserve(t, s, now, it).Allowed {
			k++
		}
	}
	return k
}

func wantCounters(t *testing.T, h harness, l Limit, key string, now time.Time, cur, prev int64) {
	t.Helper()
	c, p := h.counters(l, key, now)
	if c != cur || p != prev {
		t.Errorf("counters of %s at %s = %d, %d, want %d, %d", key, now.Format(time.RFC3339Nano), c, p, cur, prev)
	}
}

// testPeriods: for each period, a full bucket denies until its window (and,
// for sliding limits, the decay of the previous one) frees capacity.
func testPeriods(t *testing.T, h harness) {
	for _, c := range []struct {
		p      Period
		start  string
		period time.Duration
	}{
		{Second, "2026-03-04T05:06:07Z", time.Second},
		{Minute, "2026-03-04T05:06:00Z", time.Minute},
		{Hour, "2026-03-04T05:00:00Z", time.Hour},
		{Day, "2026-03-04T00:00:00Z", 24 * time.Hour},
		{Month, "2026-04-01T00:00:00Z", 30 * 24 * time.Hour},
	} {
		t.Run(c.p.String(), func(t *testing.T) {
			r := rule("r", Requests, 3, c.p, 1)
			it := Item{Rule: r, Key: "periods/" + c.p.String(), Cost: 1}
			clk := &fakeClock{t: ts(c.start)}
			if n := admit(t, h.s, clk.Now(), it, 5); n != 3 {
				t.Fatalf("admitted %d of 5, want 3", n)
			}
			res := reserve(t, h.s, clk.Now(), it)
			if res.Allowed || res.Denied != 0 || res.RetryAfter <= 0 {
				t.Fatalf("full bucket: %+v", res)
			}
			wantCounters(t, h, r.Limit, it.Key, clk.Now(), 3, 0)
			clk.Advance(res.RetryAfter - time.Nanosecond)
			if reserve(t, h.s, clk.Now(), it).Allowed {
				t.Fatalf("admitted before RetryAfter %s", res.RetryAfter)
			}
			clk.Advance(time.Nanosecond)
			if !reserve(t, h.s, clk.Now(), it).Allowed {
				t.Fatalf("denied at RetryAfter %s", res.RetryAfter)
			}
			if !r.Limit.Sliding() {
				// Calendar windows start from zero: RetryAfter was the window end.
				if want := c.period; c.p == Day && res.RetryAfter != want {
					t.Errorf("RetryAfter = %s, want %s", res.RetryAfter, want)
				}
				wantCounters(t, h, r.Limit, it.Key, clk.Now(), 1, 0)
				if n := admit(t, h.s, clk.Now(), it, 5); n != 2 {
					t.Errorf("new calendar window admitted %d more, want 2", n)
				}
			}
		})
	}
}

// testSlidingWeighting: the previous window counts by the fraction of the
// current window still to run.
func testSlidingWeighting(t *testing.T, h harness) {
	r := rule("w", Requests, 10, Minute, 1)
	it := Item{Rule: r, Key: "weighting", Cost: 1}
	clk := &fakeClock{}
	clk.Set("2026-03-04T05:06:00Z")
	if n := admit(t, h.s, clk.Now(), it, 10); n != 10 {
		t.Fatalf("admitted %d, want 10", n)
	}
	// 15s into the next window: the previous 10 count as ceil(10 × 45/60) = 8.
	clk.Set("2026-03-04T05:07:15Z")
	if n := admit(t, h.s, clk.Now(), it, 5); n != 2 {
		t.Errorf("at 25%%: admitted %d, want 2", n)
	}
	// At 50%: ceil(10 × 0.5) + 2 = 7, so 3 more.
	clk.Set("2026-03-04T05:07:30Z")
	if n := admit(t, h.s, clk.Now(), it, 5); n != 3 {
		t.Errorf("at 50%%: admitted %d, want 3", n)
	}
	// At 90%: ceil(10 × 0.1) + 5 = 6, so 4 more.
	clk.Set("2026-03-04T05:07:54Z")
	if n := admit(t, h.s, clk.Now(), it, 5); n != 4 {
		t.Errorf("at 90%%: admitted %d, want 4", n)
	}
	wantCounters(t, h, r.Limit, it.Key, clk.Now(), 9, 10)
	// Two windows later nothing is left of either.
	clk.Set("2026-03-04T05:09:00Z")
	wantCounters(t, h, r.Limit, it.Key, clk.Now(), 0, 0)
	if n := admit(t, h.s, clk.Now(), it, 11); n != 10 {
		t.Errorf("after two windows: admitted %d, want 10", n)
	}
}

// testSlidingCount: Count > 1 sliding windows, and RetryAfter for a request
// that has to wait into the next window.
func testSlidingCount(t *testing.T, h harness) {
	r := rule("c", Tokens, 100, Minute, 5) // 100 tokens per 5 minutes
	key := "slidingcount"
	clk := &fakeClock{}
	clk.Set("2026-03-04T05:05:00Z") // a 5-minute window starts
	if !reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 100}).Allowed {
		t.Fatal("denied the first 100")
	}
	clk.Set("2026-03-04T05:09:59Z")
	res := reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 10})
	if res.Allowed {
		t.Fatal("admitted over the limit")
	}
	// cur 100 must decay to 90 as the previous window: 1s to the end of this
	// window, then 10% of the next (30s).
	if want := 31 * time.Second; res.RetryAfter != want {
		t.Errorf("RetryAfter = %s, want %s", res.RetryAfter, want)
	}
	clk.Advance(res.RetryAfter)
	if !reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 10}).Allowed {
		t.Error("denied at RetryAfter")
	}
	if reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 1}).Allowed {
		t.Error("admitted 1 more at the limit")
	}
	// In the previous window's decay: 2 of the remaining 90 free up every 6s.
	clk.Set("2026-03-04T05:12:30Z") // 50%: ceil(100 × 0.5) + 10 = 60
	res = reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 45})
	if res.Allowed {
		t.Fatal("admitted 45 at 60 of 100")
	}
	if want := 15 * time.Second; res.RetryAfter != want { // ceil(100 × r/300s) <= 45 at r = 135s
		t.Errorf("RetryAfter = %s, want %s", res.RetryAfter, want)
	}
	clk.Advance(res.RetryAfter)
	if !reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 45}).Allowed {
		t.Error("denied 45 at RetryAfter")
	}
}

func testDayBoundary(t *testing.T, h harness) {
	r := rule("d", Tokens, 1000, Day, 1)
	key := "day"
	clk := &fakeClock{}
	clk.Set("2026-03-04T23:59:59.999Z")
	if !reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 1000}).Allowed {
		t.Fatal("denied the budget")
	}
	res := reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 1})
	if res.Allowed || res.RetryAfter != time.Millisecond {
		t.Fatalf("full day: allowed %v, RetryAfter %s, want 1ms", res.Allowed, res.RetryAfter)
	}
	clk.Set("2026-03-05T00:00:00Z")
	if !reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 1000}).Allowed {
		t.Fatal("budget did not reset at 00:00 UTC")
	}
	wantCounters(t, h, r.Limit, key, clk.Now(), 1000, 0)
	// A local midnight is not a boundary.
	clk.Set("2026-03-05T23:30:00-01:00") // 00:30 UTC on the 6th
	if !reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 1000}).Allowed {
		t.Error("denied on the next UTC day")
	}
	clk.Set("2026-03-06T23:30:00+01:00") // 22:30 UTC on the 6th
	if reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 1}).Allowed {
		t.Error("admitted after a local, not UTC, midnight")
	}
}

func testMonthBoundaries(t *testing.T, h harness) {
	r := rule("m", Tokens, 500, Month, 1)
	for _, c := range []struct{ name, last, next string }{
		{"Jan31-Feb1", "2026-01-31T23:59:59.999999999Z", "2026-02-01T00:00:00Z"},
		{"Dec-Jan", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z"},
		{"leap Feb", "2028-02-29T23:59:59Z", "2028-03-01T00:00:00Z"},
		{"Feb-Mar", "2027-02-28T23:59:59Z", "2027-03-01T00:00:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := "month/" + c.name
			last := ts(c.last)
			// Spend the budget early in the month, so the last second of it is
			// still the same window.
			first, _ := r.Limit.Window(last)
			if !reserve(t, h.s, first, Item{Rule: r, Key: key, Cost: 500}).Allowed {
				t.Fatal("denied the budget")
			}
			res := reserve(t, h.s, last, Item{Rule: r, Key: key, Cost: 1})
			if res.Allowed {
				t.Fatal("admitted over the budget in the last instant of the month")
			}
			if want := ts(c.next).Sub(last); res.RetryAfter != want {
				t.Errorf("RetryAfter = %s, want %s", res.RetryAfter, want)
			}
			next := ts(c.next)
			if !reserve(t, h.s, next, Item{Rule: r, Key: key, Cost: 500}).Allowed {
				t.Fatal("budget did not reset on the 1st")
			}
			if reserve(t, h.s, next, Item{Rule: r, Key: key, Cost: 1}).Allowed {
				t.Error("admitted over the new month's budget")
			}
			wantCounters(t, h, r.Limit, key, next, 500, 0)
		})
	}
}

func testCalendarCount(t *testing.T, h harness) {
	q := rule("q", Requests, 2, Month, 3) // 2 per quarter
	clk := &fakeClock{}
	clk.Set("2026-01-10T00:00:00Z")
	if n := admit(t, h.s, clk.Now(), Item{Rule: q, Key: "quarter", Cost: 1}, 3); n != 2 {
		t.Fatalf("admitted %d, want 2", n)
	}
	clk.Set("2026-03-31T23:59:59Z")
	if admit(t, h.s, clk.Now(), Item{Rule: q, Key: "quarter", Cost: 1}, 1) != 0 {
		t.Error("admitted in the same quarter")
	}
	clk.Set("2026-04-01T00:00:00Z")
	if n := admit(t, h.s, clk.Now(), Item{Rule: q, Key: "quarter", Cost: 1}, 3); n != 2 {
		t.Errorf("next quarter admitted %d, want 2", n)
	}
	w := rule("w", Requests, 1, Day, 7) // 1 per 7 days from the epoch (2026-02-26, 2026-03-05, ...)
	clk.Set("2026-02-26T00:00:00Z")
	if admit(t, h.s, clk.Now(), Item{Rule: w, Key: "week", Cost: 1}, 2) != 1 {
		t.Error("7-day window")
	}
	clk.Set("2026-03-04T23:59:59Z")
	res := reserve(t, h.s, clk.Now(), Item{Rule: w, Key: "week", Cost: 1})
	if res.Allowed || res.RetryAfter != time.Second {
		t.Errorf("end of 7-day window: allowed %v, RetryAfter %s", res.Allowed, res.RetryAfter)
	}
	clk.Set("2026-03-05T00:00:00Z")
	if admit(t, h.s, clk.Now(), Item{Rule: w, Key: "week", Cost: 1}, 2) != 1 {
		t.Error("next 7-day window")
	}
}

func testAllOrNothing(t *testing.T, h harness) {
	a := rule("a", Tokens, 100, Minute, 1)
	b := rule("b", Requests, 2, Minute, 1)
	now := ts("2026-03-04T05:06:00Z")
	req := func(cost int64) []Item {
		return []Item{{Rule: a, Key: "aon/a", Cost: cost}, {Rule: b, Key: "aon/b", Cost: 1}}
	}
	for range 2 {
		if !reserve(t, h.s, now, req(10)...).Allowed {
			t.Fatal("denied under both limits")
		}
	}
	res := reserve(t, h.s, now, req(10)...)
	if res.Allowed || res.Denied != 1 {
		t.Fatalf("b full: Allowed %v Denied %d, want denied by item 1", res.Allowed, res.Denied)
	}
	for i, r := range res.Reservations {
		if r.Valid() {
			t.Errorf("denied request has reservation %d", i)
		}
	}
	wantCounters(t, h, a.Limit, "aon/a", now, 20, 0)
	wantCounters(t, h, b.Limit, "aon/b", now, 2, 0)

	// The first of several denying items is named; RetryAfter is the longest.
	c := rule("c", Tokens, 10, Day, 1)
	res = reserve(t, h.s, now, Item{Rule: c, Key: "aon/c", Cost: 11}, Item{Rule: a, Key: "aon/a", Cost: 81}, Item{Rule: b, Key: "aon/b", Cost: 1})
	if res.Allowed || res.Denied != 0 {
		t.Fatalf("Denied = %d, want 0", res.Denied)
	}
	if !res.States[0].Exceeded || !res.States[1].Exceeded || !res.States[2].Exceeded {
		t.Errorf("Exceeded = %v %v %v, want all", res.States[0].Exceeded, res.States[1].Exceeded, res.States[2].Exceeded)
	}
	if want := 18*time.Hour + 54*time.Minute; res.RetryAfter != want { // the Day bucket, until midnight
		t.Errorf("RetryAfter = %s, want %s", res.RetryAfter, want)
	}
	wantCounters(t, h, c.Limit, "aon/c", now, 0, 0)
	wantCounters(t, h, a.Limit, "aon/a", now, 20, 0)
}

func testShadow(t *testing.T, h harness) {
	s := &Rule{Name: "s", Limit: Limit{Unit: Requests, Volume: 1, Period: Minute, Count: 1}, Shadow: true}
	e := rule("e", Requests, 3, Minute, 1)
	now := ts("2026-03-04T05:06:00Z")
	for i := range 3 {
		res := reserve(t, h.s, now, Item{Rule: s, Key: "shadow/s", Cost: 1}, Item{Rule: e, Key: "shadow/e", Cost: 1})
		if !res.Allowed {
			t.Fatalf("request %d denied", i)
		}
		if res.States[0].Exceeded != (i > 0) {
			t.Errorf("request %d: shadow Exceeded = %v", i, res.States[0].Exceeded)
		}
	}
	wantCounters(t, h, s.Limit, "shadow/s", now, 3, 0)
	// A request denied by an enforced rule reserves nothing, shadow included.
	res := reserve(t, h.s, now, Item{Rule: s, Key: "shadow/s", Cost: 1}, Item{Rule: e, Key: "shadow/e", Cost: 1})
	if res.Allowed || res.Denied != 1 {
		t.Fatalf("Allowed %v Denied %d, want denied by item 1", res.Allowed, res.Denied)
	}
	wantCounters(t, h, s.Limit, "shadow/s", now, 3, 0)
}

func testSettle(t *testing.T, h harness) {
	r := rule("t", Tokens, 1000, Hour, 1)
	key := "settle"
	now := ts("2026-03-04T05:00:00Z")
	a := reserve(t, h.s, now, Item{Rule: r, Key: key, Cost: 400})
	b := reserve(t, h.s, now, Item{Rule: r, Key: key, Cost: 400})
	c := reserve(t, h.s, now, Item{Rule: r, Key: key, Cost: 300})
	if !a.Allowed || !b.Allowed || c.Allowed {
		t.Fatalf("reserve 400, 400, 300: %v %v %v", a.Allowed, b.Allowed, c.Allowed)
	}
	settle(t, h.s, now, a, 100) // down
	wantCounters(t, h, r.Limit, key, now, 500, 0)
	if !reserve(t, h.s, now, Item{Rule: r, Key: key, Cost: 300}).Allowed {
		t.Fatal("settling down did not free capacity")
	}
	wantCounters(t, h, r.Limit, key, now, 800, 0)
	settle(t, h.s, now, b, 0) // release
	wantCounters(t, h, r.Limit, key, now, 400, 0)
	d := reserve(t, h.s, now, Item{Rule: r, Key: key, Cost: 500})
	settle(t, h.s, now, d, 900) // up, over the limit: the tokens were spent
	wantCounters(t, h, r.Limit, key, now, 1300, 0)
	res := reserve(t, h.s, now, Item{Rule: r, Key: key, Cost: 0})
	if res.Allowed || res.States[0].Remaining != 0 {
		t.Errorf("over the limit: Allowed %v Remaining %d", res.Allowed, res.States[0].Remaining)
	}
	// Settling denied and zero reservations is a no-op.
	settle(t, h.s, now, c, 300)
	settle(t, h.s, now, &Result{Reservations: []Reservation{{}}}, 5)
	wantCounters(t, h, r.Limit, key, now, 1300, 0)
}

func testSettleAfterRollover(t *testing.T, h harness) {
	r := rule("t", Tokens, 100, Minute, 1)
	key := "rollover"
	clk := &fakeClock{}
	clk.Set("2026-03-04T05:06:30Z")
	a := reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 60})
	b := reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 40})
	if !a.Allowed || !b.Allowed {
		t.Fatal("denied")
	}
	// The stream ends in the next window: the settlement corrects the
	// previous window's counter, not the current one.
	clk.Set("2026-03-04T05:07:30Z")
	c := reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 10})
	if !c.Allowed { // ceil(100 × 0.5) + 10 = 60
		t.Fatal("denied at 50")
	}
	settle(t, h.s, clk.Now(), a, 0)
	wantCounters(t, h, r.Limit, key, clk.Now(), 10, 40)
	// ceil(40 × 0.5) + 10 = 30: 70 more fit.
	if !reserve(t, h.s, clk.Now(), Item{Rule: r, Key: key, Cost: 70}).Allowed {
		t.Error("release in the previous window did not free capacity")
	}
	// Two windows later the reservation's window no longer counts: dropped.
	clk.Set("2026-03-04T05:08:00Z")
	settle(t, h.s, clk.Now(), b, 0)
	wantCounters(t, h, r.Limit, key, clk.Now(), 0, 80)
	settle(t, h.s, clk.Now(), c, 0)
	wantCounters(t, h, r.Limit, key, clk.Now(), 0, 70)
}

func testSettleAfterMonthEnd(t *testing.T, h harness) {
	r := rule("m", Tokens, 1000, Month, 1)
	key := "settle-month"
	jan := ts("2026-01-31T23:59:00Z")
	a := reserve(t, h.s, jan, Item{Rule: r, Key: key, Cost: 800})
	feb := ts("2026-02-01T00:01:00Z")
	b := reserve(t, h.s, feb, Item{Rule: r, Key: key, Cost: 100})
	settle(t, h.s, feb, a, 50) // January's window is over: February is not touched
	wantCounters(t, h, r.Limit, key, feb, 100, 0)
	settle(t, h.s, feb, b, 150)
	wantCounters(t, h, r.Limit, key, feb, 150, 0)
}

func testStates(t *testing.T, h harness) {
	r := rule("s", Tokens, 1000, Minute, 1)
	d := rule("d", Requests, 10, Day, 1)
	clk := &fakeClock{}
	clk.Set("2026-03-04T05:06:00Z")
	items := []Item{{Rule: r, Key: "states/m", Cost: 300}, {Rule: d, Key: "states/d", Cost: 1}}
	res := reserve(t, h.s, clk.Now(), items...)
	want := []State{
		{Limit: 1000, Remaining: 700, Reset: 2 * time.Minute}, // decays as the previous window
		{Limit: 10, Remaining: 9, Reset: 18*time.Hour + 54*time.Minute},
	}
	for i := range want {
		if res.States[i] != want[i] {
			t.Errorf("state %d = %+v, want %+v", i, res.States[i], want[i])
		}
	}
	clk.Set("2026-03-04T05:07:20Z") // previous 300 count as 200
	items[0].Cost = 900
	res = reserve(t, h.s, clk.Now(), items...)
	if res.Allowed {
		t.Fatal("admitted 900 at 200")
	}
	want[0] = State{Limit: 1000, Remaining: 800, Reset: 40 * time.Second, Exceeded: true}
	want[1] = State{Limit: 10, Remaining: 9, Reset: 18*time.Hour + 52*time.Minute + 40*time.Second}
	for i := range want {
		if res.States[i] != want[i] {
			t.Errorf("denied state %d = %+v, want %+v", i, res.States[i], want[i])
		}
	}
	// ceil(300 × r/60s) <= 100 at r = 20s: 20s from now.
	if res.RetryAfter != 20*time.Second {
		t.Errorf("RetryAfter = %s, want 20s", res.RetryAfter)
	}
}

func testZeroCostAndOverspend(t *testing.T, h harness) {
	r := rule("o", OutputTokens, 100, Minute, 1)
	key := "zero"
	now := ts("2026-03-04T05:06:00Z")
	// Output tokens unknown at admission: reserve 0, charge after.
	a := reserve(t, h.s, now, Item{Rule: r, Key: key, Cost: 0})
	if !a.Allowed {
		t.Fatal("zero cost denied on an empty bucket")
	}
	settle(t, h.s, now, a, 100)
	wantCounters(t, h, r.Limit, key, now, 100, 0)
	if reserve(t, h.s, now, Item{Rule: r, Key: key, Cost: 0}).Allowed {
		t.Error("zero cost admitted on a full bucket")
	}
	var res Result
	if err := h.s.Reserve(context.Background(), now, []Item{{Rule: &Rule{Limit: Limit{Volume: -1}}, Key: "x"}}, &res); err == nil {
		t.Error("invalid limit accepted")
	}
}

func testTooLarge(t *testing.T, h harness) {
	r := rule("big", Tokens, 100, Minute, 1)
	now := ts("2026-03-04T05:06:10Z")
	res := reserve(t, h.s, now, Item{Rule: r, Key: "toolarge", Cost: 101})
	if res.Allowed {
		t.Fatal("admitted more than the volume")
	}
	if want := 110 * time.Second; res.RetryAfter != want { // until the bucket is empty
		t.Errorf("RetryAfter = %s, want %s", res.RetryAfter, want)
	}
}

// testConcurrent: n goroutines reserve estimated token costs against one
// Tokens bucket and settle random actuals no greater than the estimate. The
// total settled never exceeds the limit, and the store's counter equals the
// total settled: reserved == settled + released. With overspend, one in ten
// settles up to 50 tokens over its estimate, and the total settled exceeds
// the limit by at most the sum of those excesses (the documented bound).
func testConcurrent(t *testing.T, h harness, n int, overspend bool) {
	const limit = 50_000
	r := rule("tokens", Tokens, limit, Minute, 1)
	key := "concurrent"
	now := ts("2026-03-04T05:06:00Z")
	var (
		mu                          sync.Mutex
		reserved, settled, released int64
		excess                      int64
		admitted                    int
		wg                          sync.WaitGroup
		errs                        = make(chan error, n)
	)
	start := make(chan struct{})
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			est := 50 + rng.Int64N(200)
			var res Result
			<-start
			if err := h.s.Reserve(context.Background(), now, []Item{{Rule: r, Key: key, Cost: est}}, &res); err != nil {
				errs <- err
				return
			}
			if !res.Allowed {
				return
			}
			actual := rng.Int64N(est + 1)
			if overspend && g%10 == 0 {
				actual = est + rng.Int64N(51)
			}
			if err := h.s.Settle(context.Background(), now, []Settlement{{Reservation: res.Reservations[0], Actual: actual}}); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			admitted++
			reserved += est
			settled += actual
			if actual > est {
				excess += actual - est
			} else {
				released += est - actual
			}
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if reserved+excess != settled+released {
		t.Fatalf("reserved %d + excess %d != settled %d + released %d", reserved, excess, settled, released)
	}
	if settled > limit+excess {
		t.Errorf("settled %d over the limit %d + excess %d", settled, limit, excess)
	}
	if admitted == n || admitted == 0 {
		t.Errorf("admitted %d of %d: the test does not reach the limit", admitted, n)
	}
	wantCounters(t, h, r.Limit, key, now, settled, 0)
	t.Logf("%d of %d admitted, %d reserved, %d settled, %d over estimates", admitted, n, reserved, settled, excess)
}
