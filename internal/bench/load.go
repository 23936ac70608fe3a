package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Request builds the body the load generator sends: a system prompt and a user message of
// ordinary prose, together about promptBytes long (at least ~200 bytes), with max_tokens
// set, streamed when stream is true. Nothing in it trips a guardrail.
func Request(model string, promptBytes int, stream bool) []byte {
	const system = "You are a helpful assistant for an engineering team. Answer precisely and briefly, " +
		"and say so when you are not sure."
	sentences := [...]string{
		"We run a small fleet of web services behind a load balancer, and the latency of the checkout service went up last week.",
		"The database team says the queries did not change, but the connection pool now waits longer for a free connection.",
		"Most requests finish in about forty milliseconds, while a few take more than a second at the busiest hour of the day.",
		"We would like to understand whether the pool size, the timeouts or the garbage collector explains the slow requests.",
		"Please suggest what to measure first, which graphs to look at, and how to tell the causes apart without guessing.",
		"The services are written in Go and deployed in containers with two processor cores and four gigabytes of memory each.",
		"Traffic doubled after the spring release, and the number of replicas stayed the same because the autoscaler was disabled.",
		"A colleague thinks we should simply add more replicas, but we would rather find the real bottleneck before spending money.",
	}
	var user strings.Builder
	target := max(promptBytes-len(system)-120, 40)
	for i := 0; user.Len() < target; i++ {
		if i > 0 {
			user.WriteByte(' ')
		}
		user.WriteString(sentences[i%len(sentences)])
	}
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	body := struct {
		Model     string `json:"model"`
		Messages  []msg  `json:"messages"`
		MaxTokens int    `json:"max_tokens"`
		Stream    bool   `json:"stream,omitempty"`
	}{model, []msg{{"system", system}, {"user", user.String()}}, 256, stream}
	b, _ := json.Marshal(body)
	return b
}

// target is one place the load goes: the gateway, or the mock reached directly.
type target struct {
	name   string // "gateway" or "direct"
	url    string // the chat completions URL
	body   []byte
	key    string // sent as Authorization: Bearer, when set
	stream bool
	hc     *http.Client
}

// newTransport returns the load generator's one transport: enough idle connections per
// host for every worker, no compression, HTTP/1.1 (what an OpenAI SDK uses over http://).
func newTransport(workers int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2*workers + 16,
		MaxIdleConnsPerHost: workers + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		WriteBufferSize:     8 << 10,
		ReadBufferSize:      8 << 10,
	}
}

// newClient returns the load generator's client on tr.
func newClient(tr *http.Transport) *http.Client {
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// stats is what one target measured over its slices.
type stats struct {
	lat, ttft Histogram
	lag       Histogram // open loop: from a request's scheduled time to its sending
	// Open loop: latency and time to first token from the request's sending instead of its
	// scheduled time (service time, without the load generator's own lag).
	svc, ttftSvc Histogram
	sent         atomic.Int64
	ok           atomic.Int64
	errs         atomic.Int64
	wall         time.Duration
	mallocs      uint64
	allocB       uint64

	errMu   sync.Mutex
	samples map[string]int64
}

const maxErrorSamples = 8

func (s *stats) fail(msg string) {
	s.errs.Add(1)
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.samples == nil {
		s.samples = map[string]int64{}
	}
	if len(msg) > 160 {
		msg = msg[:160]
	}
	if _, ok := s.samples[msg]; ok || len(s.samples) < maxErrorSamples {
		s.samples[msg]++
	} else {
		s.samples["(other errors)"]++
	}
}

// scratch is a worker's reusable read buffer.
type scratch struct{ buf []byte }

func newScratch() *scratch { return &scratch{buf: make([]byte, 8<<10)} }

var (
	contentKey = []byte(`"content":"`)
	doneEvent  = []byte("data: [DONE]")
)

// do sends one request and records it in s, latency counted from start (the time the
// request was scheduled, which in open-loop mode may be before now). When start is before
// now (open loop), the service time from now is recorded too.
func (t *target) do(ctx context.Context, sc *scratch, start time.Time, s *stats) {
	sentAt := time.Now()
	open := sentAt.After(start)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.body))
	if err != nil {
		s.fail(err.Error())
		return
	}
	req.Header["Content-Type"] = []string{"application/json"}
	if t.key != "" {
		req.Header["Authorization"] = []string{"Bearer " + t.key}
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			s.fail("cancelled at the end of the run")
			return
		}
		s.fail(err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		n, _ := io.ReadFull(resp.Body, sc.buf[:min(len(sc.buf), 300)])
		io.Copy(io.Discard, resp.Body)
		s.fail(fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(sc.buf[:n])))
		return
	}
	if !t.stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			s.fail("reading the answer: " + err.Error())
			return
		}
		now := time.Now()
		s.lat.Record(now.Sub(start))
		if open {
			s.svc.Record(now.Sub(sentAt))
		}
		s.ok.Add(1)
		return
	}
	// A stream: the first event whose delta has non-empty content is the first token; the
	// stream must end with [DONE].
	const keep = 16 // > len(contentKey)+1 and >= len(doneEvent)
	buf := sc.buf
	carry, gotFirst, done := 0, false, false
	for {
		n, err := resp.Body.Read(buf[carry:])
		data := buf[:carry+n]
		if !gotFirst {
			for off := 0; ; {
				i := bytes.Index(data[off:], contentKey)
				if i < 0 {
					break
				}
				j := off + i + len(contentKey)
				if j < len(data) && data[j] != '"' {
					now := time.Now()
					s.ttft.Record(now.Sub(start))
					if open {
						s.ttftSvc.Record(now.Sub(sentAt))
					}
					gotFirst = true
					break
				}
				off = j
			}
		}
		if !done && bytes.Contains(data, doneEvent) {
			done = true
		}
		carry = min(keep, len(data))
		copy(buf, data[len(data)-carry:])
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.fail("reading the stream: " + err.Error())
				return
			}
			break
		}
	}
	if !gotFirst || !done {
		s.fail(fmt.Sprintf("stream ended without content or [DONE] (content %v, done %v)", gotFirst, done))
		return
	}
	now := time.Now()
	s.lat.Record(now.Sub(start))
	if open {
		s.svc.Record(now.Sub(sentAt))
	}
	s.ok.Add(1)
}

// closedLoop runs workers, each sending its next request as soon as the previous one ended,
// for d. No goroutine per request.
func closedLoop(ctx context.Context, t *target, s *stats, workers int, d time.Duration, scs []*scratch) {
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range workers {
		sc := scs[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(deadline) {
					return
				}
				s.sent.Add(1)
				t.do(ctx, sc, now, s)
			}
		})
	}
	wg.Wait()
	s.wall += time.Since(start)
}

// openLoop sends rate requests per second for d on a fixed timetable: request i is due at
// start + i/rate whatever happened before, and its latency is counted from then, so a
// stalled target delays (and is charged for) every request due during the stall instead of
// silently sending fewer (no coordinated omission). At most workers requests are in flight;
// requests due beyond that wait, and their wait counts.
func openLoop(ctx context.Context, do func(context.Context, *scratch, time.Time), sent *atomic.Int64, rate float64, workers int, d time.Duration, scs []*scratch) time.Duration {
	due := make(chan time.Time, 1<<14)
	var wg sync.WaitGroup
	for i := range workers {
		sc := scs[i]
		wg.Go(func() {
			for at := range due {
				do(ctx, sc, at)
			}
		})
	}
	start := time.Now()
	interval := float64(time.Second) / rate
	for i := 0; ctx.Err() == nil; i++ {
		off := time.Duration(float64(i) * interval)
		if off >= d {
			break
		}
		at := start.Add(off)
		if wait := time.Until(at); wait > 0 {
			sleep(ctx, wait)
		}
		sent.Add(1)
		due <- at
	}
	close(due)
	wg.Wait()
	return max(d, time.Since(start))
}

func sleep(ctx context.Context, d time.Duration) {
	if d < 5*time.Millisecond {
		time.Sleep(d)
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
