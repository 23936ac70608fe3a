package gateway

import (
	"context"
	"io"
	"time"
)

// watchdog cancels an attempt when the upstream is silent too long. One timer per attempt,
// reset on every read, so the streaming path does not allocate per chunk.
type watchdog struct {
	t    *time.Timer
	idle time.Duration
	next time.Duration
	body io.Reader
}

func newWatchdog(first time.Duration, cancel context.CancelCauseFunc) *watchdog {
	wd := &watchdog{}
	wd.t = time.AfterFunc(first, func() { cancel(errUpstreamTimeout) })
	return wd
}

// arm restarts the timer with d, and with idle after the first read.
func (wd *watchdog) arm(d, idle time.Duration) {
	wd.idle = idle
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
		wd.t.Reset(wd.idle)
	}
	return n, err
}
