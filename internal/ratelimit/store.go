package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Store counts cost in buckets. Implementations are safe for concurrent use.
type Store interface {
	// Reserve atomically checks every bucket of one request and reserves each
	// item's cost in all of them, all or nothing: if any non-shadow item would
	// go over its limit nothing is reserved, res.Allowed is false and
	// res.Denied and res.RetryAfter say which item and when to retry. Shadow
	// items are counted when the request is admitted but never deny. It is one
	// call (one Redis round trip) for all the items of a request.
	//
	// res is overwritten; its slices are reused when large enough, so a
	// caller that reuses Results (for example from a sync.Pool) allocates
	// nothing. On error res is not meaningful; a store that cannot be reached
	// returns an error wrapping [ErrUnavailable] (see [Guard]).
	Reserve(ctx context.Context, now time.Time, items []Item, res *Result) error

	// Settle replaces reservations by actual costs (0 releases the
	// reservation; more than reserved charges the excess, even over the
	// limit). Each settlement applies to the window its reservation was made
	// in; settlements for windows that no longer count are dropped. Zero
	// reservations (from a denied, failed-open or empty result) are skipped.
	// It is one call (at most one Redis round trip) for all the settlements.
	// Reservations must be settled by the store that made them.
	Settle(ctx context.Context, now time.Time, settlements []Settlement) error
}

// ErrUnavailable is wrapped by the errors of a store that could not be reached
// or did not answer in time.
var ErrUnavailable = errors.New("ratelimit: store unavailable")

// Item is one bucket charged by a request.
type Item struct {
	Rule *Rule
	// Key identifies the bucket. It must already include the policy and rule
	// identity (two rules never share a key) and the rule's bucket key value.
	Key string
	// Cost is the estimated cost reserved at admission: 1 for Requests, the
	// estimated tokens for token units. Negative costs count as 0.
	Cost int64
}

// Result is the outcome of [Store.Reserve].
type Result struct {
	Allowed bool
	// Denied is the index of the first non-shadow item over its limit, or -1.
	Denied int
	// RetryAfter is, when denied, the longest time any over-limit non-shadow
	// item needs before it could admit this request's cost, assuming nothing
	// else is admitted meanwhile. For a cost larger than the whole volume it is
	// the time until the bucket is empty.
	RetryAfter time.Duration
	// Unavailable is set by [Guard] when the store could not be reached and
	// the failure mode decided; States then hold zeros and Reservations are
	// zero (settling them is a no-op).
	Unavailable bool
	// States has one entry per item, for rate-limit response headers.
	States []State
	// Reservations has one entry per item: the handles to settle. They are
	// zero when the request was denied.
	Reservations []Reservation

	scratch []scratch
}

// State is the state of one item's bucket after Reserve.
type State struct {
	Limit     int64         // the volume
	Remaining int64         // volume left after this request (never negative)
	Reset     time.Duration // time until the bucket is back to full capacity if nothing else is admitted
	Exceeded  bool          // the item was over its limit (for a shadow rule: it would have denied)
}

// Reservation is the handle of one reserved item. It is a value; the zero
// Reservation is valid and settles as a no-op.
type Reservation struct {
	rule  *Rule
	key   string
	start int64 // window start, Unix ns
	end   int64 // window end, Unix ns
	cost  int64
	b     *bucket // Memory only: the bucket, to settle without a map lookup
	shard uint8   // Memory only: the shard of b
}

// Valid reports whether r holds a reservation.
func (r Reservation) Valid() bool { return r.rule != nil }

// Rule returns the rule the reservation was made under.
func (r Reservation) Rule() *Rule { return r.rule }

// Key returns the bucket key.
func (r Reservation) Key() string { return r.key }

// Cost returns the reserved cost.
func (r Reservation) Cost() int64 { return r.cost }

// Window returns the window the reservation was made in.
func (r Reservation) Window() (start, end time.Time) {
	return time.Unix(0, r.start).UTC(), time.Unix(0, r.end).UTC()
}

// Settlement is the actual cost of one reservation.
type Settlement struct {
	Reservation Reservation
	Actual      int64 // negative counts as 0
}

// scratch is the per-item state of one Reserve call.
type scratch struct {
	b          *bucket
	shard      uint8
	over       bool
	cost       int64
	cur, prev  int64 // counters before this item
	now        int64 // effective now
	start, end int64 // window
	size       int64 // window length for sliding limits, 0 for calendar limits
}

func (r *Result) prepare(n int) {
	r.Allowed, r.Denied, r.RetryAfter, r.Unavailable = false, -1, 0, false
	r.States = resize(r.States, n)
	r.Reservations = resize(r.Reservations, n)
	r.scratch = resize(r.scratch, n)
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

func checkItems(items []Item) error {
	for i := range items {
		it := &items[i]
		if it.Rule == nil {
			return fmt.Errorf("ratelimit: item %d has no rule", i)
		}
		if !it.Rule.Limit.valid() {
			return fmt.Errorf("%w: rule %q", ErrInvalidLimit, it.Rule.Name)
		}
	}
	return nil
}

// estimate is the sliding-window estimate of a bucket's use with rem
// nanoseconds left in a window of size nanoseconds (size 0: calendar window,
// cur only). The Redis script computes the same float64 expression, so both
// stores decide identically.
func estimate(cur, prev, rem, size int64) int64 {
	if prev <= 0 || size <= 0 {
		return cur
	}
	return cur + int64(math.Ceil(float64(prev)*float64(rem)/float64(size)))
}

// over reports whether a request of cost does not fit: a bucket at or over
// its volume denies even zero-cost requests.
func over(used, cost, volume int64) bool {
	return used > volume-max(cost, 1)
}

// retryAfter is the time from now until a request of cost fits, assuming
// nothing else is admitted meanwhile.
func retryAfter(sc *scratch, volume int64) time.Duration {
	rem := sc.end - sc.now
	if sc.size <= 0 {
		return time.Duration(rem)
	}
	limit := volume - max(sc.cost, 1) // the highest use that still admits
	if limit < 0 {
		return time.Duration(rem + sc.size) // never fits: until the bucket is empty
	}
	if a := limit - sc.cur; a >= 0 {
		// The current window fits; wait for the previous one to decay:
		// ceil(prev×r/size) <= a  <=>  r <= a×size/prev.
		if sc.prev <= 0 {
			return 0
		}
		r := int64(math.Floor(float64(a) * float64(sc.size) / float64(sc.prev)))
		return time.Duration(max(rem-r, 1))
	}
	// Wait into the next window, where cur decays as the previous window.
	r := int64(math.Floor(float64(limit) * float64(sc.size) / float64(sc.cur)))
	return time.Duration(rem + sc.size - r)
}

// resetAfter is the time until a bucket with these counters is back to full
// capacity if nothing else is admitted.
func resetAfter(cur, prev int64, sc *scratch) time.Duration {
	rem := sc.end - sc.now
	switch {
	case cur > 0 && sc.size > 0:
		return time.Duration(rem + sc.size)
	case cur > 0 || (prev > 0 && sc.size > 0):
		return time.Duration(rem)
	}
	return 0
}

// finish fills res from the scratch of a decided Reserve.
func finish(res *Result, items []Item, denied int) {
	res.Allowed = denied < 0
	res.Denied = denied
	for i := range items {
		it, sc := &items[i], &res.scratch[i]
		lim := &it.Rule.Limit
		used := estimate(sc.cur, sc.prev, sc.end-sc.now, sc.size)
		cur := sc.cur
		if res.Allowed {
			used += sc.cost
			cur += sc.cost
			res.Reservations[i] = Reservation{
				rule: it.Rule, key: it.Key, start: sc.start, end: sc.end,
				cost: sc.cost, b: sc.b, shard: sc.shard,
			}
		} else if sc.over && !it.Rule.Shadow {
			res.RetryAfter = max(res.RetryAfter, retryAfter(sc, lim.Volume))
		}
		res.States[i] = State{
			Limit:     lim.Volume,
			Remaining: max(lim.Volume-used, 0),
			Reset:     resetAfter(cur, sc.prev, sc),
			Exceeded:  sc.over,
		}
	}
}
