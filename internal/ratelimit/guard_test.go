package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// flakyStore fails with ErrUnavailable while down.
type flakyStore struct {
	Store
	down    bool
	settles int
}

func (f *flakyStore) Reserve(ctx context.Context, now time.Time, items []Item, res *Result) error {
	if f.down {
		return fmt.Errorf("%w: connection refused", ErrUnavailable)
	}
	return f.Store.Reserve(ctx, now, items, res)
}

func (f *flakyStore) Settle(ctx context.Context, now time.Time, ss []Settlement) error {
	f.settles++
	if f.down {
		return fmt.Errorf("%w: connection refused", ErrUnavailable)
	}
	return f.Store.Settle(ctx, now, ss)
}

func TestGuard(t *testing.T) {
	for _, mode := range []FailureMode{FailOpen, FailClosed} {
		t.Run(mode.String(), func(t *testing.T) {
			store := &flakyStore{Store: NewMemory(MemoryOptions{SweepInterval: -1})}
			var log syncBuffer
			g := &Guard{Store: store, Mode: mode, Logger: slog.New(slog.NewTextHandler(&log, nil))}
			r := rule("r", Requests, 1, Minute, 1)
			now := ts("2026-03-04T05:06:00Z")
			it := Item{Rule: r, Key: "k", Cost: 1}
			ok := reserve(t, g, now, it)
			if !ok.Allowed || ok.Unavailable || reserve(t, g, now, it).Allowed {
				t.Fatal("the guard changes a working store's answers")
			}
			store.down = true
			for range 5 {
				res := reserve(t, g, now, it, it)
				if res.Allowed != (mode == FailOpen) || !res.Unavailable || res.Denied != -1 {
					t.Fatalf("down: %+v", res)
				}
				if mode == FailClosed && res.RetryAfter != UnavailableRetryAfter {
					t.Errorf("RetryAfter = %s", res.RetryAfter)
				}
				if res.Reservations[0].Valid() || res.Reservations[1].Valid() || res.States[0] != (State{}) {
					t.Errorf("down: reservations or states set: %+v", res)
				}
				settle(t, g, now, ok, 0) // dropped, no error
				settle(t, g, now, res, 1, 1)
			}
			if n := log.count("rate limit store unavailable"); n != 1 || !g.Down() {
				t.Errorf("outage logged %d times, down %v", n, g.Down())
			}
			store.down = false
			if res := reserve(t, g, now, Item{Rule: r, Key: "k2", Cost: 1}); !res.Allowed || res.Unavailable {
				t.Fatalf("after recovery: %+v", res)
			}
			if g.Down() || log.count("rate limit store available again") != 1 {
				t.Errorf("recovery not logged once")
			}
			store.down = true
			reserve(t, g, now, it)
			if n := log.count("rate limit store unavailable"); n != 2 {
				t.Errorf("second outage: logged %d times in all, want 2", n)
			}
		})
	}
}

// TestGuardPassesErrors: errors that are not outages are not failure modes.
func TestGuardPassesErrors(t *testing.T) {
	g := &Guard{Store: NewMemory(MemoryOptions{SweepInterval: -1}), Mode: FailOpen}
	var res Result
	err := g.Reserve(context.Background(), time.Now(), []Item{{Key: "no rule"}}, &res)
	if err == nil || errors.Is(err, ErrUnavailable) || g.Down() {
		t.Errorf("Reserve with an invalid item: %v", err)
	}
}
