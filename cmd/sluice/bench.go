package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-gateway/sluice/internal/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		cfg         bench.Config
		latency     time.Duration
		warmup      time.Duration
		asJSON      bool
		cpuprofile  string
		memprofile  string
		serveMock   string
		mockOnly    bool
		printConfig bool
	)
	cmd := &cobra.Command{
		Use:   "bench [--scenario passthrough|full|stream] [--rate N | --concurrency N] [--duration D]",
		Short: "Load-test the gateway against an in-process mock upstream and report what it adds",
		Long: "Runs a mock OpenAI-compatible upstream, the gateway configured for a scenario, and a load\n" +
			"generator in this process, and measures the gateway against the same mock reached directly,\n" +
			"in interleaved slices of the same run: throughput, latency percentiles and the latency the\n" +
			"gateway adds, time to first token (stream), allocations per request, peak RSS.\n\n" +
			"Scenarios: passthrough (one route, one Backend), full (API keys and access rules, rate limits,\n" +
			"the default guardrails), stream (passthrough, streamed answers).\n\n" +
			"--rate N sends N requests/s on a fixed timetable, latency counted from each request's scheduled\n" +
			"time (no coordinated omission); otherwise --concurrency workers (default 32) loop.\n" +
			"--duration is measured per target: with the direct baseline the run takes about\n" +
			"2 × (warmup + duration).\n\n" +
			"--target URL measures a running gateway or proxy (…/v1) instead; --direct URL adds its upstream\n" +
			"as the baseline. --serve-mock ADDR only serves the mock upstream until interrupted.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if latency == 0 {
				latency = -1 // none; 0 means "default" to bench.Config
			}
			if warmup == 0 {
				warmup = -1
			}
			cfg.UpstreamLatency, cfg.Warmup = latency, warmup

			if printConfig {
				upstream := cfg.Direct
				if upstream == "" {
					return errors.New("--print-config needs --direct URL: the upstream the Backend points at")
				}
				y, err := bench.ScenarioYAML(cfg.Scenario, upstream)
				if err != nil {
					return err
				}
				fmt.Fprint(stdout, y)
				return nil
			}
			if mockOnly || serveMock != "" {
				return runMock(ctx, cmd, serveMock, bench.MockConfig{Latency: max(latency, 0), Chunks: cfg.Chunks})
			}

			cfg.Progress = stderr // --json or not: stdout stays for the result
			if f, ok := stderr.(*os.File); ok {
				if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
					cfg.ProgressTTY = true
				}
			}
			if cpuprofile != "" {
				f, err := os.Create(cpuprofile)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.CPUProfile = f
			}
			if memprofile != "" {
				f, err := os.Create(memprofile)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.MemProfile = f
			}
			res, err := bench.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				return enc.Encode(res)
			}
			res.WriteText(stdout)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Scenario, "scenario", bench.Passthrough, "passthrough, full or stream")
	f.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per target")
	f.DurationVar(&warmup, "warmup", 2*time.Second, "unmeasured time per target before measuring (0: none)")
	f.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second on a fixed timetable (default: closed loop)")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "closed loop: workers (default 32); open loop: most requests in flight (default rate/10, at least 64)")
	f.DurationVar(&cfg.Slice, "slice", time.Second, "length of one interleaved slice")
	f.DurationVar(&latency, "upstream-latency", 20*time.Millisecond, "the mock upstream's wait before the first byte")
	f.IntVar(&cfg.Chunks, "chunks", 20, "content events of a streamed answer")
	f.IntVar(&cfg.PromptBytes, "prompt-bytes", 1024, "request body size (realistic chat text)")
	f.StringVar(&cfg.Model, "model", bench.DefaultModel, "the model requested")
	f.StringVar(&cfg.Target, "target", "", "base URL (…/v1) of a running gateway or proxy to measure instead of the in-process gateway")
	f.StringVar(&cfg.Direct, "direct", "", "with --target: base URL of the upstream behind it, measured as the baseline")
	f.StringVar(&cfg.APIKey, "api-key", "", "sent as Authorization: Bearer (default: the bench key in the full scenario)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object to stdout")
	f.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the measured slices to this file")
	f.StringVar(&memprofile, "memprofile", "", "write the allocation profile (pprof allocs) to this file at the end")
	f.StringVar(&serveMock, "serve-mock", "", "only serve the mock upstream on this address until interrupted")
	f.BoolVar(&mockOnly, "mock-only", false, "only serve the mock upstream (on --serve-mock, default 127.0.0.1:0)")
	f.BoolVar(&printConfig, "print-config", false, "print the scenario's resources for the upstream --direct URL, and exit")
	return cmd
}

// runMock serves the mock upstream until ctx ends.
func runMock(ctx context.Context, cmd *cobra.Command, addr string, mc bench.MockConfig) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	m, err := bench.StartMock(addr, mc)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "mock upstream listening on %s\n", m.URL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.Shutdown(sctx)
}
