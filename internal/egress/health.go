package egress

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"
)

// HealthCheck is an active health check: a GET of Path on the Backend every Interval.
type HealthCheck struct {
	Path                                 string
	Interval, Timeout                    time.Duration
	UnhealthyThreshold, HealthyThreshold int
}

// healthLoop runs an Upstream's active health check until stopped.
type healthLoop struct {
	once   sync.Once
	cancel context.CancelFunc
}

// StartHealthCheck starts the Upstream's active health check, once; it runs until
// StopHealthCheck (or CloseIdle, when the Backend leaves the configuration). The gateway
// starts it for the snapshot in force, so a configuration only validated never probes.
func (u *Upstream) StartHealthCheck() {
	if u.check == nil || u.Health == nil {
		return
	}
	u.loop.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		u.loop.cancel = cancel
		go u.healthLoop(ctx)
	})
}

// StopHealthCheck stops the active health check.
func (u *Upstream) StopHealthCheck() {
	if u.loop.cancel != nil {
		u.loop.cancel()
	}
}

func (u *Upstream) healthLoop(ctx context.Context) {
	c := u.check
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	fails, oks := 0, 0
	for {
		if u.probe(ctx) {
			oks, fails = oks+1, 0
			if oks >= c.HealthyThreshold {
				u.Health.SetDown(false)
			}
		} else {
			fails, oks = fails+1, 0
			if fails >= c.UnhealthyThreshold {
				u.Health.SetDown(true)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe reports whether the Backend answered the check: any status below 500 except
// 401 and 403 (a Backend that refuses the gateway's credential cannot serve it).
func (u *Upstream) probe(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, u.check.Timeout)
	defer cancel()
	target := *u.BaseURL
	target.Path += u.check.Path
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
