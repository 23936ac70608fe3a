// Package bench is the `sluice bench` load harness: a mock OpenAI-compatible upstream, the
// gateway built from a scenario's resources, and a load generator (closed loop with N
// workers, or open loop at a fixed rate without coordinated omission), all in one process.
// It measures the gateway against the same mock reached directly, in interleaved slices of
// the same run, and reports what the gateway adds: latency per percentile, time to first
// token, allocations per request, and the process's peak RSS.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Config is what a run does. Zero fields take the defaults below.
type Config struct {
	Scenario string        // passthrough (default), full or stream
	Duration time.Duration // measured time per target (default 10s)
	Warmup   time.Duration // unmeasured time per target before (default 2s; negative: none)
	// Rate > 0 runs open loop at Rate requests per second; else closed loop.
	Rate float64
	// Concurrency is the closed-loop worker count (default 32), or in open loop the most
	// requests in flight (default: rate/10, at least 64).
	Concurrency int
	// Slice is the length of one interleaved slice (default 1s).
	Slice time.Duration

	UpstreamLatency time.Duration // the mock's wait before the first byte (default 20ms; negative: none)
	Chunks          int           // content events of a streamed answer (default 20)
	PromptBytes     int           // request size (default 1024)
	Model           string        // default gpt-4o-mini

	// Target, when set, is the base URL (…/v1) of a running gateway or proxy to measure
	// instead of the in-process gateway; Direct, when set, the upstream behind it, measured
	// as the baseline. Without Target, both are in process.
	Target string
	Direct string
	APIKey string // sent as Authorization: Bearer (default: BenchKey in the full scenario, which `--print-config` configures too)

	// Progress receives progress: a bar redrawn in place when ProgressTTY, else a line a
	// second. Nil: none.
	Progress    io.Writer
	ProgressTTY bool
	// CPUProfile, when set, receives a CPU profile of the measured slices.
	CPUProfile io.Writer
	// MemProfile, when set, receives the allocation profile (pprof "allocs") at the end.
	MemProfile io.Writer
}

func (c *Config) defaults() error {
	if c.Scenario == "" {
		c.Scenario = Passthrough
	}
	switch c.Scenario {
	case Passthrough, Full, Stream:
	default:
		return fmt.Errorf("unknown scenario %q (passthrough, full or stream)", c.Scenario)
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	c.Warmup = max(c.Warmup, 0)
	if c.Rate < 0 {
		return errors.New("rate must be positive")
	}
	if c.Concurrency < 0 {
		return errors.New("concurrency must be positive")
	}
	if c.Concurrency == 0 {
		if c.Rate > 0 {
			c.Concurrency = max(64, int(c.Rate/10))
		} else {
			c.Concurrency = 32
		}
	}
	if c.Slice <= 0 {
		c.Slice = time.Second
	}
	if c.UpstreamLatency == 0 {
		c.UpstreamLatency = 20 * time.Millisecond
	}
	c.UpstreamLatency = max(c.UpstreamLatency, 0)
	if c.Chunks <= 0 {
		c.Chunks = 20
	}
	if c.PromptBytes <= 0 {
		c.PromptBytes = 1024
	}
	if c.Model == "" {
		c.Model = DefaultModel
	}
	if c.APIKey == "" && c.Scenario == Full {
		c.APIKey = BenchKey
	}
	return nil
}

// Quantiles are latencies in microseconds.
type Quantiles struct {
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

func quantilesOf(h *Histogram) Quantiles {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return Quantiles{us(h.Quantile(.5)), us(h.Quantile(.9)), us(h.Quantile(.99)), us(h.Quantile(.999)), us(h.Max()), us(h.Mean())}
}

func (q Quantiles) minus(o Quantiles) Quantiles {
	return Quantiles{q.P50 - o.P50, q.P90 - o.P90, q.P99 - o.P99, q.P999 - o.P999, q.Max - o.Max, q.Mean - o.Mean}
}

// Phase is what one target measured.
type Phase struct {
	URL        string           `json:"url"`
	Sent       int64            `json:"sent"`
	OK         int64            `json:"ok"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	Seconds    float64          `json:"seconds"`
	Throughput float64          `json:"throughput_rps"`
	Latency    Quantiles        `json:"latency"`
	TTFT       *Quantiles       `json:"ttft,omitempty"`
	// SendLag (open loop) is how late requests left after their scheduled time: the load
	// generator's own delay (dispatch, waiting for a free worker), part of every latency.
	SendLag *Quantiles `json:"send_lag,omitempty"`
	// Service and TTFTService (open loop) count from each request's sending rather than its
	// scheduled time: without the load generator's lag, but blind to coordinated omission.
	Service     *Quantiles `json:"service,omitempty"`
	TTFTService *Quantiles `json:"ttft_service,omitempty"`
	AllocsPerOp float64    `json:"allocs_per_request"`
	BytesPerOp  float64    `json:"bytes_per_request"`
}

// Result is one run's figures; `sluice bench --json` prints it.
type Result struct {
	Scenario        string  `json:"scenario"`
	Mode            string  `json:"mode"` // "open" or "closed"
	Rate            float64 `json:"rate,omitempty"`
	Concurrency     int     `json:"concurrency"`
	DurationSeconds float64 `json:"duration_s"`
	UpstreamLatency float64 `json:"upstream_latency_ms"`
	PromptBytes     int     `json:"prompt_bytes"`
	Chunks          int     `json:"chunks,omitempty"`
	InProcess       bool    `json:"in_process"`
	Metrics         bool    `json:"metrics"`
	GOMAXPROCS      int     `json:"gomaxprocs"`

	Gateway Phase  `json:"gateway"`
	Direct  *Phase `json:"direct,omitempty"`
	// Added is gateway minus direct, per percentile (µs): what the gateway adds.
	Added     *Quantiles `json:"added,omitempty"`
	AddedTTFT *Quantiles `json:"added_ttft,omitempty"`
	// AddedService and AddedTTFTService (open loop) are the same on service times: the
	// load generator's timer lag (Go sleeps below 1 ms last about 1 ms) differs between
	// phases, because a busier process wakes its timers sooner.
	AddedService     *Quantiles `json:"added_service,omitempty"`
	AddedTTFTService *Quantiles `json:"added_ttft_service,omitempty"`
	// GatewayAllocsPerRequest is the gateway phase's allocations per request minus the
	// direct phase's (load generator and mock), i.e. the in-process gateway's own.
	GatewayAllocsPerRequest *float64 `json:"gateway_allocs_per_request,omitempty"`
	GatewayBytesPerRequest  *float64 `json:"gateway_bytes_per_request,omitempty"`
	PeakRSSBytes            int64    `json:"peak_rss_bytes"`
	ThroughputRatio         float64  `json:"throughput_ratio,omitempty"` // gateway / direct
}

// Run runs a benchmark to the end (or until ctx ends) and returns its figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	stream := cfg.Scenario == Stream
	gwURL, directURL := cfg.Target, cfg.Direct
	if cfg.Target == "" {
		mock, err := StartMock("127.0.0.1:0", MockConfig{Latency: cfg.UpstreamLatency, Chunks: cfg.Chunks})
		if err != nil {
			return nil, err
		}
		defer mock.Close()
		gw, err := StartGateway(cfg.Scenario, mock.URL())
		if err != nil {
			return nil, fmt.Errorf("building the %s scenario: %w", cfg.Scenario, err)
		}
		defer gw.Close()
		gwURL, directURL = gw.URL(), mock.URL()
	}
	tr := newTransport(cfg.Concurrency)
	defer tr.CloseIdleConnections()
	hc := newClient(tr)
	body := Request(cfg.Model, cfg.PromptBytes, stream)
	mk := func(name, base string) *target {
		return &target{name: name, url: strings.TrimRight(base, "/") + "/chat/completions", body: body, key: cfg.APIKey, stream: stream, hc: hc}
	}
	targets := []*target{mk("gateway", gwURL)}
	if directURL != "" {
		targets = append(targets, mk("direct", directURL))
	}
	for _, t := range targets {
		if err := probe(ctx, t); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", t.name, t.url, err)
		}
	}

	scs := make([]*scratch, cfg.Concurrency)
	for i := range scs {
		scs[i] = newScratch()
	}
	pr := newProgress(cfg, len(targets))
	defer pr.stop()

	// Warm-up, then the measured slices, alternating targets (ABBA) so that both see the
	// same machine: a shared host's noise lands on both.
	runSlices := func(total time.Duration, measured bool, all []*stats) {
		n := max(1, int((total+cfg.Slice/2)/cfg.Slice))
		for k := range n {
			d := total / time.Duration(n)
			order := make([]int, len(targets))
			for i := range order {
				order[i] = i
			}
			if k%2 == 1 {
				for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
					order[i], order[j] = order[j], order[i]
				}
			}
			for _, i := range order {
				if ctx.Err() != nil {
					return
				}
				s := all[i]
				pr.phase(targets[i].name, measured, s)
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				runSlice(ctx, cfg, targets[i], s, d, scs)
				runtime.ReadMemStats(&m1)
				s.mallocs += m1.Mallocs - m0.Mallocs
				s.allocB += m1.TotalAlloc - m0.TotalAlloc
				pr.done(d)
			}
		}
	}
	if cfg.Warmup > 0 {
		warm := make([]*stats, len(targets))
		for i := range warm {
			warm[i] = &stats{}
		}
		runSlices(cfg.Warmup, false, warm)
	}
	all := make([]*stats, len(targets))
	for i := range all {
		all[i] = &stats{}
	}
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return nil, err
		}
	}
	runSlices(cfg.Duration, true, all)
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	pr.stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.MemProfile != nil {
		if err := pprof.Lookup("allocs").WriteTo(cfg.MemProfile, 0); err != nil {
			return nil, err
		}
	}

	res := &Result{
		Scenario: cfg.Scenario, Mode: "closed", Concurrency: cfg.Concurrency,
		DurationSeconds: cfg.Duration.Seconds(), UpstreamLatency: float64(cfg.UpstreamLatency) / 1e6,
		PromptBytes: len(body), InProcess: cfg.Target == "", GOMAXPROCS: runtime.GOMAXPROCS(0),
		Metrics: cfg.Scenario == Full && cfg.Target == "",
	}
	if stream {
		res.Chunks = cfg.Chunks
	}
	if cfg.Rate > 0 {
		res.Mode, res.Rate = "open", cfg.Rate
	}
	res.Gateway = phaseOf(targets[0], all[0], stream)
	if len(targets) > 1 {
		d := phaseOf(targets[1], all[1], stream)
		res.Direct = &d
		added := res.Gateway.Latency.minus(d.Latency)
		res.Added = &added
		if stream {
			a := res.Gateway.TTFT.minus(*d.TTFT)
			res.AddedTTFT = &a
		}
		if res.Gateway.Service != nil && d.Service != nil {
			a := res.Gateway.Service.minus(*d.Service)
			res.AddedService = &a
		}
		if res.Gateway.TTFTService != nil && d.TTFTService != nil {
			a := res.Gateway.TTFTService.minus(*d.TTFTService)
			res.AddedTTFTService = &a
		}
		if d.Throughput > 0 {
			res.ThroughputRatio = res.Gateway.Throughput / d.Throughput
		}
		if res.InProcess {
			a := res.Gateway.AllocsPerOp - d.AllocsPerOp
			b := res.Gateway.BytesPerOp - d.BytesPerOp
			res.GatewayAllocsPerRequest, res.GatewayBytesPerRequest = &a, &b
		}
	}
	res.PeakRSSBytes = PeakRSS()
	return res, nil
}

func runSlice(ctx context.Context, cfg Config, t *target, s *stats, d time.Duration, scs []*scratch) {
	if cfg.Rate <= 0 {
		closedLoop(ctx, t, s, cfg.Concurrency, d, scs)
		return
	}
	do := func(ctx context.Context, sc *scratch, at time.Time) {
		s.lag.Record(time.Since(at))
		t.do(ctx, sc, at, s)
	}
	s.wall += openLoop(ctx, do, &s.sent, cfg.Rate, cfg.Concurrency, d, scs)
}

func phaseOf(t *target, s *stats, stream bool) Phase {
	p := Phase{
		URL: strings.TrimSuffix(t.url, "/chat/completions"), Sent: s.sent.Load(), OK: s.ok.Load(), Errors: s.errs.Load(),
		ErrorKinds: s.samples, Seconds: s.wall.Seconds(), Latency: quantilesOf(&s.lat),
	}
	if p.Seconds > 0 {
		p.Throughput = float64(p.OK) / p.Seconds
	}
	if stream {
		q := quantilesOf(&s.ttft)
		p.TTFT = &q
	}
	if s.lag.Count() > 0 {
		q := quantilesOf(&s.lag)
		p.SendLag = &q
	}
	if s.svc.Count() > 0 {
		q := quantilesOf(&s.svc)
		p.Service = &q
	}
	if s.ttftSvc.Count() > 0 {
		q := quantilesOf(&s.ttftSvc)
		p.TTFTService = &q
	}
	if p.Sent > 0 {
		p.AllocsPerOp = float64(s.mallocs) / float64(p.Sent)
		p.BytesPerOp = float64(s.allocB) / float64(p.Sent)
	}
	return p
}

// probe sends one request and checks the answer, so that a misconfigured target fails the
// run at once with what it said.
func probe(ctx context.Context, t *target) error {
	var s stats
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t.do(ctx, newScratch(), time.Now(), &s)
	if s.ok.Load() == 1 {
		return nil
	}
	for msg := range s.samples {
		return errors.New(msg)
	}
	return errors.New("no answer")
}

// PeakRSS returns the process's peak resident set size (VmHWM) in bytes, or 0 where
// /proc/self/status does not exist.
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return n << 10 // kB
				}
			}
		}
	}
	return 0
}

// WriteText writes r for people.
func (r *Result) WriteText(w io.Writer) {
	mode := fmt.Sprintf("closed loop, %d workers", r.Concurrency)
	if r.Mode == "open" {
		mode = fmt.Sprintf("open loop at %g req/s (at most %d in flight)", r.Rate, r.Concurrency)
	}
	where := "in-process gateway"
	if !r.InProcess {
		where = "target " + r.Gateway.URL
	}
	fmt.Fprintf(w, "sluice bench: scenario %s, %s, %s\n", r.Scenario, where, mode)
	fmt.Fprintf(w, "  %gs measured per target in interleaved slices; upstream latency %gms; request %d bytes", r.DurationSeconds, r.UpstreamLatency, r.PromptBytes)
	if r.Chunks > 0 {
		fmt.Fprintf(w, "; %d chunks per stream", r.Chunks)
	}
	fmt.Fprintln(w)
	if r.Scenario == Full && r.InProcess {
		if r.Metrics {
			fmt.Fprintln(w, "  full: API keys, access rules, rate limits, guardrails, metrics on")
		}
	}
	fmt.Fprintln(w)
	tw := &table{}
	tw.row("", "sent", "ok", "errors", "req/s", "p50", "p90", "p99", "p99.9", "max")
	line := func(name string, p *Phase, q Quantiles) {
		tw.row(name, itoa(p.Sent), itoa(p.OK), itoa(p.Errors), fmt.Sprintf("%.1f", p.Throughput),
			us(q.P50), us(q.P90), us(q.P99), us(q.P999), us(q.Max))
	}
	gwName := "gateway"
	if !r.InProcess {
		gwName = "target"
	}
	if r.Direct != nil {
		line("direct", r.Direct, r.Direct.Latency)
	}
	line(gwName, &r.Gateway, r.Gateway.Latency)
	if r.Added != nil {
		a := r.Added
		tw.row("added", "", "", "", "", sus(a.P50), sus(a.P90), sus(a.P99), sus(a.P999), sus(a.Max))
	}
	if a := r.AddedService; a != nil {
		tw.row("added (from send)", "", "", "", "", sus(a.P50), sus(a.P90), sus(a.P99), sus(a.P999), sus(a.Max))
	}
	if r.Gateway.TTFT != nil {
		tw.row("")
		tw.row("first token", "", "", "", "", "p50", "p90", "p99", "p99.9", "max")
		if r.Direct != nil {
			q := *r.Direct.TTFT
			tw.row("direct", "", "", "", "", us(q.P50), us(q.P90), us(q.P99), us(q.P999), us(q.Max))
		}
		q := *r.Gateway.TTFT
		tw.row(gwName, "", "", "", "", us(q.P50), us(q.P90), us(q.P99), us(q.P999), us(q.Max))
		if r.AddedTTFT != nil {
			a := r.AddedTTFT
			tw.row("added", "", "", "", "", sus(a.P50), sus(a.P90), sus(a.P99), sus(a.P999), sus(a.Max))
		}
		if a := r.AddedTTFTService; a != nil {
			tw.row("added (from send)", "", "", "", "", sus(a.P50), sus(a.P90), sus(a.P99), sus(a.P999), sus(a.Max))
		}
	}
	if r.Gateway.SendLag != nil {
		tw.row("")
		tw.row("send lag", "", "", "", "", "p50", "p90", "p99", "p99.9", "max")
		for _, x := range []struct {
			name string
			p    *Phase
		}{{"direct", r.Direct}, {gwName, &r.Gateway}} {
			if x.p != nil && x.p.SendLag != nil {
				q := *x.p.SendLag
				tw.row(x.name, "", "", "", "", us(q.P50), us(q.P90), us(q.P99), us(q.P999), us(q.Max))
			}
		}
	}
	tw.write(w)
	fmt.Fprintln(w)
	if r.Gateway.SendLag != nil {
		fmt.Fprintln(w, "send lag: how late the load generator sent requests after their scheduled time (counted in latency);")
		fmt.Fprintln(w, "\"added (from send)\" compares service times, without it.")
	}
	if r.ThroughputRatio > 0 {
		fmt.Fprintf(w, "throughput %s/direct: %.2f\n", gwName, r.ThroughputRatio)
	}
	if r.InProcess {
		fmt.Fprintf(w, "allocations per request: %.1f with the gateway, %.1f direct", r.Gateway.AllocsPerOp, r.Direct.AllocsPerOp)
		if r.GatewayAllocsPerRequest != nil {
			fmt.Fprintf(w, " -> the gateway's own: %.1f (%.1f KiB)", *r.GatewayAllocsPerRequest, *r.GatewayBytesPerRequest/1024)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "peak RSS of this process (VmHWM): %.1f MiB\n", float64(r.PeakRSSBytes)/(1<<20))
	for _, p := range []*Phase{r.Direct, &r.Gateway} {
		if p == nil || len(p.ErrorKinds) == 0 {
			continue
		}
		fmt.Fprintf(w, "errors (%s):\n", p.URL)
		kinds := make([]string, 0, len(p.ErrorKinds))
		for k := range p.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(w, "  %6d  %s\n", p.ErrorKinds[k], k)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// us formats microseconds with three significant digits in a readable unit.
func us(v float64) string {
	switch a := abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.3gs", v/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.3gms", v/1e3)
	default:
		return fmt.Sprintf("%.3gµs", v)
	}
}

// sus is us with a sign.
func sus(v float64) string {
	if v >= 0 {
		return "+" + us(v)
	}
	return us(v)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// table aligns columns: the first left, the others right.
type table struct{ rows [][]string }

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	var width []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	for _, r := range t.rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range r {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}

// progress reports on a run as it goes.
type progress struct {
	w       io.Writer
	tty     bool
	total   time.Duration
	elapsed atomic.Int64 // of finished slices
	cur     atomic.Pointer[progressPhase]
	quit    chan struct{}
	ended   chan struct{}
	stopped atomic.Bool
}

type progressPhase struct {
	name     string
	measured bool
	s        *stats
	since    time.Time
	ok0      int64
}

func newProgress(cfg Config, targets int) *progress {
	p := &progress{w: cfg.Progress, tty: cfg.ProgressTTY, total: time.Duration(targets) * (cfg.Warmup + cfg.Duration),
		quit: make(chan struct{}), ended: make(chan struct{})}
	if p.w == nil {
		close(p.ended)
		return p
	}
	go p.loop()
	return p
}

func (p *progress) phase(name string, measured bool, s *stats) {
	p.cur.Store(&progressPhase{name: name, measured: measured, s: s, since: time.Now(), ok0: s.ok.Load()})
}

func (p *progress) done(d time.Duration) { p.elapsed.Add(int64(d)) }

func (p *progress) stop() {
	if p.stopped.Swap(true) {
		return
	}
	close(p.quit)
	<-p.ended
}

func (p *progress) loop() {
	defer close(p.ended)
	every := time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastOK int64
	var lastAt time.Time
	var lastPh *progressPhase
	for {
		select {
		case <-p.quit:
			if p.tty {
				fmt.Fprint(p.w, "\r\033[K")
			}
			return
		case now := <-tick.C:
			ph := p.cur.Load()
			if ph == nil {
				continue
			}
			if ph != lastPh {
				lastPh, lastOK, lastAt = ph, ph.ok0, ph.since
			}
			ok := ph.s.ok.Load()
			rate := float64(ok-lastOK) / now.Sub(lastAt).Seconds()
			lastOK, lastAt = ok, now
			done := time.Duration(p.elapsed.Load()) + min(now.Sub(ph.since), 0+p.total)
			frac := min(1, float64(done)/float64(p.total))
			what := ph.name
			if !ph.measured {
				what += " (warm-up)"
			}
			if p.tty {
				const width = 30
				n := int(frac * width)
				fmt.Fprintf(p.w, "\r\033[K[%s%s] %3.0f%%  %-18s %8.0f req/s  errors %d", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, what, rate, ph.s.errs.Load())
			} else {
				fmt.Fprintf(p.w, "bench: %3.0f%%  %-18s %8.0f req/s  ok %d  errors %d\n", frac*100, what, rate, ok, ph.s.errs.Load())
			}
		}
	}
}
