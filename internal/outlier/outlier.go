// Package outlier ejects failing backends for a while and brings them back carefully: a
// Backend that fails several times in a row, or too often within a window, is ejected for
// a period that grows with each ejection; when the period ends one probe request is let
// through (half-open), and its outcome restores the Backend or ejects it again for longer.
package outlier

import (
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Detector. Zero fields take the defaults.
type Config struct {
	// ConsecutiveFailures ejects after this many failures in a row. Default 5.
	ConsecutiveFailures int
	// FailureRate ejects when, over the last Window outcomes (at least MinRequests of
	// them), the share of failures reaches it. Default 0.5 over 20, at least 10.
	FailureRate float64
	Window      int
	MinRequests int
	// BaseEjection is the first ejection's length; each further one doubles it, up to
	// MaxEjection. Defaults 10s and 5m.
	BaseEjection, MaxEjection time.Duration
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Detector is one Backend's health. Safe for concurrent use.
type Detector struct {
	cfg Config
	// healthy is true while the Backend is neither ejected nor down: the common case is
	// answered without the lock (routing asks once per candidate per request).
	healthy atomic.Bool

	mu          sync.Mutex
	consecutive int
	ring        []bool // recent outcomes, true = failure
	next        int
	filled      int
	failures    int
	ejections   int       // ejections in a row, for the growing period
	until       time.Time // ejected until; zero: not ejected
	probing     bool      // a half-open probe is in flight
	down        bool      // an active health check says the Backend is down
}

// SetDown records an active health check's verdict: a Backend that is down is ejected
// until a check finds it up again, whatever its traffic says.
func (d *Detector) SetDown(down bool) {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.down = down
	d.sync()
	d.mu.Unlock()
}

// sync refreshes the lock-free flag; called with mu held after down or until changes.
func (d *Detector) sync() { d.healthy.Store(!d.down && d.until.IsZero()) }

// New returns a Detector with cfg's defaults filled.
func New(cfg Config) *Detector {
	if cfg.ConsecutiveFailures <= 0 {
		cfg.ConsecutiveFailures = 5
	}
	if cfg.FailureRate <= 0 {
		cfg.FailureRate = 0.5
	}
	if cfg.Window <= 0 {
		cfg.Window = 20
	}
	if cfg.MinRequests <= 0 {
		cfg.MinRequests = 10
	}
	cfg.MinRequests = min(cfg.MinRequests, cfg.Window)
	if cfg.BaseEjection <= 0 {
		cfg.BaseEjection = 10 * time.Second
	}
	if cfg.MaxEjection < cfg.BaseEjection {
		cfg.MaxEjection = max(5*time.Minute, cfg.BaseEjection)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Detector{cfg: cfg, ring: make([]bool, cfg.Window)}
	d.healthy.Store(true)
	return d
}

// Ejected reports whether the Backend is out of rotation now. A Backend whose ejection
// ended is not ejected: it is half-open, and Admit lets one request probe it.
func (d *Detector) Ejected() bool {
	if d == nil || d.healthy.Load() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down || !d.until.IsZero() && d.cfg.Now().Before(d.until)
}

// Admit is asked before sending a request. It is false only while a half-open Backend's
// probe is in flight (or the Backend is still ejected): the caller picks another.
func (d *Detector) Admit() bool {
	if d == nil || d.healthy.Load() {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return false
	}
	if d.until.IsZero() {
		return true
	}
	if d.cfg.Now().Before(d.until) || d.probing {
		return false
	}
	d.probing = true
	return true
}

// Release undoes an Admit whose request was never sent.
func (d *Detector) Release() {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.probing = false
	d.mu.Unlock()
}

// Success records a healthy outcome: a probe's success restores the Backend.
func (d *Detector) Success() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.consecutive = 0
	d.record(false)
	if !d.until.IsZero() && !d.cfg.Now().Before(d.until) {
		d.until, d.probing, d.ejections = time.Time{}, false, 0
		d.reset()
		d.sync()
	}
}

// Failure records a failed outcome; it reports whether the Backend was ejected by it.
func (d *Detector) Failure() bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.consecutive++
	d.record(true)
	now := d.cfg.Now()
	switch {
	case !d.until.IsZero() && !now.Before(d.until):
		// the half-open probe failed: out again, for longer
	case !d.until.IsZero():
		return false // already ejected (a request admitted before the ejection)
	case d.consecutive >= d.cfg.ConsecutiveFailures:
	case d.filled >= d.cfg.MinRequests && float64(d.failures) >= d.cfg.FailureRate*float64(d.filled):
	default:
		return false
	}
	d.ejections++
	period := d.cfg.BaseEjection
	for i := 1; i < d.ejections && period < d.cfg.MaxEjection; i++ {
		period *= 2
	}
	d.until = now.Add(min(period, d.cfg.MaxEjection))
	d.probing = false
	d.consecutive = 0
	d.reset()
	d.sync()
	return true
}

// record adds an outcome to the window.
func (d *Detector) record(failed bool) {
	if d.filled == len(d.ring) {
		if d.ring[d.next] {
			d.failures--
		}
	} else {
		d.filled++
	}
	d.ring[d.next] = failed
	if failed {
		d.failures++
	}
	d.next = (d.next + 1) % len(d.ring)
}

func (d *Detector) reset() {
	clear(d.ring)
	d.next, d.filled, d.failures = 0, 0, 0
}

// Status is a snapshot for operators.
type Status struct {
	Ejected    bool
	Down       bool // by the active health check
	Until      time.Time
	Ejections  int
	Recent     int // outcomes in the window
	RecentFail int
}

// Status returns the Detector's state.
func (d *Detector) Status() Status {
	if d == nil {
		return Status{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return Status{Ejected: d.down || !d.until.IsZero() && d.cfg.Now().Before(d.until), Down: d.down, Until: d.until, Ejections: d.ejections,
		Recent: d.filled, RecentFail: d.failures}
}
