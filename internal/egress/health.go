package egress

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/outlier"
)

// HealthCheck is an active health check: a GET of Path on the Backend every Interval.
type HealthCheck struct {
	Path                                 string
	Interval, Timeout                    time.Duration
	UnhealthyThreshold, HealthyThreshold int
}

// probeLoop runs an Upstream's active health check until stopped.
type probeLoop struct {
	mu      sync.Mutex
	started bool
	cancel  context.CancelFunc
}

// StartProbes starts the Upstream's background work, once: the active health check, and
// a pool's metrics scraping. It runs until StopProbes (or CloseIdle, when the Backend
// leaves the configuration). The gateway starts it for the snapshot in force, so a
// configuration only validated never probes.
func (u *Upstream) StartProbes() {
	u.loop.mu.Lock()
	defer u.loop.mu.Unlock()
	if u.loop.started {
		return
	}
	u.loop.started = true
	if u.Pool != nil {
		u.Pool.Start()
	}
	if u.check == nil || (u.Health == nil && u.Pool == nil) {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	u.loop.cancel = cancel
	go u.healthLoop(ctx)
}

// StopProbes stops the background work StartProbes started.
func (u *Upstream) StopProbes() {
	u.loop.mu.Lock()
	defer u.loop.mu.Unlock()
	if u.loop.cancel != nil {
		u.loop.cancel()
	}
	if u.Pool != nil {
		u.Pool.Stop()
	}
}

// healthState counts one target's results in a row.
type healthState struct{ fails, oks int }

func (u *Upstream) healthLoop(ctx context.Context) {
	c := u.check
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	// A pool is checked endpoint by endpoint: one dead server ejects only itself.
	states := map[string]*healthState{}
	record := func(key string, d *outlier.Detector, ok bool) {
		s := states[key]
		if s == nil {
			s = &healthState{}
			states[key] = s
		}
		if ok {
			s.oks, s.fails = s.oks+1, 0
			if s.oks >= c.HealthyThreshold {
				d.SetDown(false)
			}
		} else {
			s.fails, s.oks = s.fails+1, 0
			if s.fails >= c.UnhealthyThreshold {
				d.SetDown(true)
			}
		}
	}
	for {
		if u.Pool == nil {
			record("", u.Health, u.probe(ctx, ""))
		} else {
			var wg sync.WaitGroup
			eps := u.Pool.Endpoints()
			results := make([]bool, len(eps))
			for i, e := range eps {
				wg.Go(func() { results[i] = u.probe(ctx, e.Address()) })
			}
			wg.Wait()
			for i, e := range eps {
				record(e.Address(), e.Health(), results[i])
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe reports whether the Backend (or the pool endpoint at addr) answered the check:
// any status below 500 except 401 and 403 (a Backend that refuses the gateway's
// credential cannot serve it).
func (u *Upstream) probe(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, u.check.Timeout)
	defer cancel()
	target := *u.BaseURL
	target.Path += u.check.Path
	if addr != "" {
		target.Host = addr
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return false
	}
	resp, err := u.Transport.RoundTrip(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode < 500 && resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden
}
