package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/extproc"
	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/server"
	"github.com/sluice-gateway/sluice/internal/translate"
	"github.com/sluice-gateway/sluice/internal/usage"
)

// newExtprocCmd is `sluice extproc`: Sluice's pipeline as an Envoy External Processing
// server (see examples/envoy).
func newExtprocCmd() *cobra.Command {
	var (
		paths    []string
		listen   string
		drain    time.Duration
		maxBytes int64
		level    string
		uFile    string
		uPG      string
	)
	cmd := &cobra.Command{
		Use:   "extproc -f PATH...",
		Short: "Serve Envoy's External Processing API (ext_proc) with Sluice's pipeline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stderr := cmd.ErrOrStderr()
			log, ctx, stop, err := startServer(level, stderr)
			if err != nil {
				return err
			}
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)

			snap, err := server.Load(paths, nil)
			if err != nil {
				var terrs translate.Errors
				var lerr *resource.LoadError
				if errors.As(err, &terrs) || errors.As(err, &lerr) {
					fmt.Fprintln(stderr, "sluice: invalid configuration:")
					fmt.Fprintln(stderr, indent(err.Error()))
					return exitError{}
				}
				return err
			}
			rec, _, err := usageSink(ctx, uFile, usage.DefaultMaxBytes, usage.DefaultMaxFiles, uPG, log)
			if err != nil {
				return err
			}
			var record func(*exchange.Exchange)
			if rec != nil {
				record = func(ex *exchange.Exchange) { rec.Add(usage.FromExchange(ex)) }
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := rec.Close(ctx); err != nil {
						log.Error("usage records not all written", "error", err.Error())
					}
				}()
			}
			gw := gateway.New(gateway.Options{Logger: log, MaxRequestBytes: maxBytes, Usage: record})
			gw.Swap(snap)
			log.Info("configuration loaded", "summary", snap.Summary.String())

			// Reload on file changes and SIGHUP, as `sluice serve` does.
			var mu sync.Mutex
			reload := func() {
				mu.Lock()
				defer mu.Unlock()
				server.Reload(gw, paths, log)
			}
			var changed <-chan struct{}
			if len(paths) > 0 {
				if changed, err = resource.Watch(ctx, paths, 200*time.Millisecond); err != nil {
					return err
				}
			}
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case _, ok := <-changed:
						if !ok {
							changed = nil
							continue
						}
					case <-hup:
					}
					reload()
				}
			}()

			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := grpc.NewServer(grpc.MaxRecvMsgSize(int(maxBytes)+1<<20), grpc.MaxSendMsgSize(64<<20))
			extprocv3.RegisterExternalProcessorServer(srv, extproc.New(gw, log))
			hs := health.NewServer()
			hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			hs.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
			healthpb.RegisterHealthServer(srv, hs)
			serveErr := make(chan error, 1)
			go func() { serveErr <- srv.Serve(ln) }()
			log.Info("ext_proc listening", "addr", ln.Addr().String())
			select {
			case err := <-serveErr:
				return err
			case <-ctx.Done():
			}
			hs.Shutdown() // NOT_SERVING: Envoy's health checks move traffic away
			gw.Drain()
			log.Info("draining", "timeout", drain.String())
			done := make(chan struct{})
			go func() { srv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(drain):
				log.Warn("drain deadline passed; closing remaining streams")
				srv.Stop()
				<-done
			}
			log.Info("stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&paths, "filename", "f", nil, "resource file or directory (repeatable); default: the built-in quickstart")
	f.StringVar(&listen, "listen", "127.0.0.1:9002", "gRPC address to serve ext_proc on")
	f.DurationVar(&drain, "drain-timeout", 30*time.Second, "how long shutdown waits for streams in flight")
	f.Int64Var(&maxBytes, "max-request-bytes", gateway.DefaultMaxRequestBytes, "request body limit (413 above it)")
	f.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&uFile, "usage-file", "", "JSONL file of usage records; empty: none")
	f.StringVar(&uPG, "usage-postgres", os.Getenv(envUsagePostgres), "PostgreSQL DSN for usage records (default $SLUICE_USAGE_POSTGRES)")
	return cmd
}
