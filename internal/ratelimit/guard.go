package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// FailureMode is what a [Guard] does when its store is unreachable.
type FailureMode uint8

// Failure modes (failureMode).
const (
	FailOpen   FailureMode = iota // admit the request, unlimited
	FailClosed                    // deny the request
)

func (m FailureMode) String() string {
	if m == FailClosed {
		return "FailClosed"
	}
	return "FailOpen"
}

// UnavailableRetryAfter is the RetryAfter of a FailClosed denial.
const UnavailableRetryAfter = time.Second

// Guard is a [Store] that applies a failure mode when its Store returns
// [ErrUnavailable]: FailOpen admits the request, FailClosed denies it; either
// way Result.Unavailable is set, Result.Denied is -1 and the reservations are
// zero. It logs one warning when an outage starts and one line when the store
// answers again (an atomic flag, reset by the first successful Reserve). Use it by
// pointer; the zero Logger means slog.Default().
type Guard struct {
	Store  Store
	Mode   FailureMode
	Logger *slog.Logger

	down atomic.Bool
}

// Reserve implements [Store]. Errors other than ErrUnavailable (invalid
// items, a cancelled request context) are returned unchanged.
func (g *Guard) Reserve(ctx context.Context, now time.Time, items []Item, res *Result) error {
	if len(items) == 0 { // no call to the store: says nothing about it
		return g.Store.Reserve(ctx, now, items, res)
	}
	err := g.Store.Reserve(ctx, now, items, res)
	if err == nil {
		g.up()
		return nil
	}
	if !errors.Is(err, ErrUnavailable) {
		return err
	}
	g.fail(err)
	res.prepare(len(items))
	res.Unavailable = true
	if g.Mode == FailClosed {
		res.RetryAfter = UnavailableRetryAfter
	} else {
		res.Allowed = true
	}
	return nil
}

// Settle implements [Store]. A settlement the store cannot take is dropped
// (the failure mode cannot apply to it) and reported only through the outage
// log line.
func (g *Guard) Settle(ctx context.Context, now time.Time, settlements []Settlement) error {
	// Success here does not end an outage: a store may skip the call (nothing
	// to change, windows that no longer count), which says nothing about it.
	err := g.Store.Settle(ctx, now, settlements)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrUnavailable) {
		return err
	}
	g.fail(err)
	return nil
}

// Down reports whether the guard is in an outage.
func (g *Guard) Down() bool { return g.down.Load() }

func (g *Guard) logger() *slog.Logger {
	if g.Logger != nil {
		return g.Logger
	}
	return slog.Default()
}

func (g *Guard) fail(err error) {
	if !g.down.Load() && g.down.CompareAndSwap(false, true) {
		g.logger().Warn("rate limit store unavailable, applying failure mode until it answers again",
			"failureMode", g.Mode.String(), "error", err)
	}
}

func (g *Guard) up() {
	if g.down.Load() && g.down.CompareAndSwap(true, false) {
		g.logger().Info("rate limit store available again")
	}
}
