package gateway

import (
	"context"
	"io"
	"sync/atomic"
	"time"
)

// watchdog cancels an attempt when the upstream is silent too long. One timer per attempt,
// reset on every read, so the streaming path does not allocate per chunk.
type watchdog struct {
	t     *time.Timer
	idle  time.Duration
	next  time.Duration
	body  io.Reader
	phase atomic.Int32 // what the timer is waiting for, so its cause names the timeout
	read  bool
}

// The watchdog's phases, each with its own cancellation cause and error code.
const (
	waitHeaders int32 = iota
	waitFirstToken
	waitIdle
)

var phaseCause = [...]error{errFirstByteTimeout, errFirstTokenTimeout, errIdleTimeout}

func newWatchdog(first time.Duration, cancel context.CancelCauseFunc) *watchdog {
	wd := &watchdog{}
	wd.t = time.AfterFunc(first, func() { cancel(phaseCause[wd.phase.Load()]) })
	return wd
}

// arm restarts the timer with d for the first body byte, and with idle after it.
func (wd *watchdog) arm(d, idle time.Duration) {
	wd.idle = idle
	wd.phase.Store(waitFirstToken)
	wd.t.Reset(d)
}

func (wd *watchdog) stop() { wd.t.Stop() }

func (wd *watchdog) reader(r io.Reader) io.Reader {
	wd.body = r
	return wd
}

func (wd *watchdog) Read(p []byte) (int, error) {
	n, err := wd.body.Read(p)
	if n > 0 {
		if !wd.read {
			wd.read = true
			wd.phase.Store(waitIdle)
		}
		wd.t.Reset(wd.idle)
	}
	return n, err
}
