package picker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// maxBody bounds a scraped /metrics body; vLLM's is tens of KiB.
const maxBody = 1 << 20

// Start starts the scrape loop (no-op without Config.Metrics). Only the first call does
// anything, also after Stop.
func (p *Pool) Start() {
	p.loopMu.Lock()
	defer p.loopMu.Unlock()
	if p.started || p.metrics == nil {
		return
	}
	p.started = true
	ctx, cancel := context.WithCancel(context.Background())
	p.stop, p.done = cancel, make(chan struct{})
	go p.loop(ctx, p.done)
}

// Stop stops the scrape loop and waits for it and its scrapes to end.
func (p *Pool) Stop() {
	p.loopMu.Lock()
	stop, done := p.stop, p.done
	p.loopMu.Unlock()
	if stop == nil {
		return
	}
	stop()
	<-done
}

func (p *Pool) loop(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(p.metrics.Interval)
	defer t.Stop()
	for {
		p.ScrapeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ScrapeOnce scrapes every endpoint concurrently, each bounded by Timeout, and returns
// when all are done. A failed scrape keeps the old metrics, which go stale in time.
func (p *Pool) ScrapeOnce(ctx context.Context) {
	if p.metrics == nil {
		return
	}
	var wg sync.WaitGroup
	for _, e := range p.state.Load().eps {
		wg.Go(func() {
			if m, err := p.scrape(ctx, e.addr); err == nil {
				e.metrics.Store(&m)
			}
		})
	}
	wg.Wait()
}

// scrape fetches and parses one endpoint's metrics.
func (p *Pool) scrape(ctx context.Context, addr string) (Metrics, error) {
	mc := p.metrics
	ctx, cancel := context.WithTimeout(ctx, mc.Timeout)
	defer cancel()
	u := url.URL{Scheme: mc.Scheme, Host: addr, Path: mc.Path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Metrics{}, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := mc.Client.Do(req)
	if err != nil {
		return Metrics{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Metrics{}, fmt.Errorf("metrics %s: status %d", addr, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return Metrics{}, err
	}
	if len(body) > maxBody {
		return Metrics{}, errors.New("metrics body too large")
	}
	m, err := ParseMetrics(bytes.NewReader(body))
	if err != nil {
		return Metrics{}, err
	}
	m.At = p.now()
	return m, nil
}
