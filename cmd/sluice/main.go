// Command sluice is the Sluice AI gateway: `sluice serve` runs it, `sluice validate` checks
// resource files, `sluice version` says which build this is.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-gateway/sluice/internal/controller"
	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/server"
	"github.com/sluice-gateway/sluice/internal/tracing"
	"github.com/sluice-gateway/sluice/internal/translate"
	"github.com/sluice-gateway/sluice/internal/usage"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		var silent exitError
		if !errors.As(err, &silent) {
			fmt.Fprintln(os.Stderr, "sluice:", err)
		}
		os.Exit(1)
	}
}

// exitError fails the command after it has already said why.
type exitError struct{}

func (exitError) Error() string { return "failed" }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "Sluice is an AI gateway: it understands AI traffic and enforces policy on it.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(serveCmd(stderr), validateCmd(stdout), keysCmd(stdout), guardCmd(stdout), versionCmd(stdout), newUsageCmd(), newBenchCmd(), newExtprocCmd(), controllerCmd(stderr))
	return root
}

// startServer sets up what a long-running command needs: the JSON logger at level (also
// the default logger, so stores and libraries log there too) and a context that ends on
// SIGTERM or SIGINT.
func startServer(level string, stderr io.Writer) (*slog.Logger, context.Context, context.CancelFunc, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, nil, fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	return log, ctx, stop, nil
}

// controllerCmd is `serve --kubernetes`: the gateway configured from the cluster's
// sluice.dev resources, writing their status.
func controllerCmd(stderr io.Writer) *cobra.Command {
	cmd := serveCmd(stderr)
	cmd.Use, cmd.Short = "controller", "Run the gateway configured from the cluster's sluice.dev resources (same as serve --kubernetes)"
	cmd.Flags().Set("kubernetes", "true")
	return cmd
}

func serveCmd(stderr io.Writer) *cobra.Command {
	var (
		paths    []string
		listen   string
		drain    time.Duration
		maxBytes int64
		level    string
		admin    string
		tokenF   string
		otlp     string
		ratio    float64
		uFile    string
		uMax     int64
		uKeep    int
		uPG      string
		k8s      bool
		kubecfg  string
		ns       string
		elect    bool
		electNS  string
		gwClass  bool
		gwBind   string
	)
	cmd := &cobra.Command{
		Use:   "serve [-f PATH]...",
		Short: "Run the gateway (with no -f, on the built-in quickstart example)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, ctx, stop, err := startServer(level, stderr)
			if err != nil {
				return err
			}
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			token := os.Getenv("SLUICE_ADMIN_TOKEN")
			if tokenF != "" {
				b, err := os.ReadFile(tokenF)
				if err != nil {
					return fmt.Errorf("--admin-token-file: %w", err)
				}
				token = strings.TrimSpace(string(b))
			}
			tracer, shutdownTracing, err := tracing.Setup(tracing.Options{Endpoint: otlp, SampleRatio: ratio, Version: buildVersion()})
			if err != nil {
				return fmt.Errorf("--otlp-endpoint: %w", err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				shutdownTracing(ctx) // flush the last spans
			}()
			rec, summary, err := usageSink(cmd.Context(), uFile, uMax, uKeep, uPG, log)
			if err != nil {
				return err
			}
			if rec != nil {
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := rec.Close(ctx); err != nil { // drain every record before exit
						log.Error("usage records not all written", "error", err.Error())
					}
				}()
			}
			var subscribe func(context.Context, func(*translate.Snapshot)) error
			var listeners *server.ListenerSet
			var reconciler atomic.Pointer[controller.Reconciler] // records denials as Events
			if k8s {
				if len(paths) > 0 {
					return errors.New("--kubernetes reads the cluster's resources; drop -f")
				}
				restCfg, err := controller.RESTConfig(kubecfg)
				if err != nil {
					return fmt.Errorf("kubeconfig: %w", err)
				}
				// Gateways of our class open their listeners here; Run attaches the gateway.
				listeners = server.NewListenerSet(nil, gwBind, log)
				subscribe = func(ctx context.Context, publish func(*translate.Snapshot)) error {
					mgr, rec, err := controller.New(controller.Options{
						Config: restCfg, Namespace: ns, LeaderElection: elect, LeaderElectionNamespace: electNS,
						OnSnapshot: publish, OnListeners: listeners.Apply, Logger: log, GatewayClass: gwClass,
					})
					if err != nil {
						return err
					}
					reconciler.Store(rec)
					return mgr.Start(ctx) // returns when ctx ends, or when a leader loses its lease
				}
			}
			err = server.Run(ctx, server.Config{
				Version:   buildVersion(),
				Subscribe: subscribe, ListenerSet: listeners,
				OnDenial: func(d gateway.Denial) {
					if r := reconciler.Load(); r != nil {
						r.RecordDenial(d)
					}
				},
				Paths: paths, Listen: listen, DrainTimeout: drain, MaxRequestBytes: maxBytes,
				Logger: log, Reload: hup, AdminListen: admin, AdminToken: token, Tracer: tracer,
				Usage: rec, UsageSummary: summary,
			})
			var terrs translate.Errors
			var lerr *resource.LoadError
			if errors.As(err, &terrs) || errors.As(err, &lerr) {
				fmt.Fprintln(stderr, "sluice: invalid configuration:")
				fmt.Fprintln(stderr, indent(err.Error()))
				return exitError{}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&paths, "filename", "f", nil, "resource file or directory (repeatable); default: the built-in quickstart")
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.DurationVar(&drain, "drain-timeout", 30*time.Second, "how long shutdown waits for requests and streams in flight")
	f.Int64Var(&maxBytes, "max-request-bytes", gateway.DefaultMaxRequestBytes, "request body limit (413 above it)")
	f.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&admin, "admin-listen", "127.0.0.1:9090", "admin listener (metrics, dashboard, admin API); empty: none")
	f.StringVar(&uFile, "usage-file", "usage.jsonl", "JSONL file of usage records, rotated by size (with --usage-postgres: the spill file); empty: none")
	f.Int64Var(&uMax, "usage-file-max-bytes", usage.DefaultMaxBytes, "rotate the usage file past this size")
	f.IntVar(&uKeep, "usage-file-keep", usage.DefaultMaxFiles, "rotated usage files kept")
	f.StringVar(&uPG, "usage-postgres", os.Getenv(envUsagePostgres), "PostgreSQL DSN for usage records (default $SLUICE_USAGE_POSTGRES)")
	f.BoolVar(&k8s, "kubernetes", false, "read resources from the cluster (sluice.dev CRDs and Secrets) instead of files, and write their status")
	f.StringVar(&kubecfg, "kubeconfig", "", "with --kubernetes: kubeconfig file; default $KUBECONFIG, in-cluster, ~/.kube/config")
	f.StringVar(&ns, "namespace", "", "with --kubernetes: watch only this namespace; default all")
	f.BoolVar(&elect, "leader-elect", false, "with --kubernetes: elect one replica to write status and events (every replica serves)")
	f.StringVar(&electNS, "leader-elect-namespace", os.Getenv("POD_NAMESPACE"), "namespace of the leader-election Lease; default --namespace, or $POD_NAMESPACE")
	f.BoolVar(&gwClass, "gateway-class", false, "with --kubernetes: accept GatewayClasses of controller "+controller.GatewayControllerName+" (needs the Gateway API CRDs)")
	f.StringVar(&gwBind, "gateway-listen-address", "", "with --gateway-class: the address Gateway listeners bind their ports on; default all interfaces")
	f.StringVar(&otlp, "otlp-endpoint", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTLP/HTTP collector for traces (http://collector:4318); default $OTEL_EXPORTER_OTLP_ENDPOINT; empty: no tracing")
	f.Float64Var(&ratio, "trace-sample-ratio", 1, "share of new traces recorded (a sampled parent is always followed)")
	f.StringVar(&tokenF, "admin-token-file", "", "file holding the admin API's bearer token (a mounted Secret); default: $SLUICE_ADMIN_TOKEN; none: the API is off")
	return cmd
}

// usageSink opens where usage records go: PostgreSQL (spilling to the file when it
// cannot keep up or is down), else the JSONL file, else nowhere.
func usageSink(ctx context.Context, file string, maxBytes int64, keep int, dsn string, log *slog.Logger) (*usage.Recorder, func(context.Context, time.Time, string) (any, error), error) {
	if ctx == nil {
		ctx = context.Background()
	}
	switch {
	case dsn != "":
		sink, err := usage.NewPostgresSink(ctx, dsn)
		if err != nil {
			return nil, nil, fmt.Errorf("--usage-postgres: %w", err)
		}
		rec := usage.NewRecorder(sink, usage.RecorderOptions{SpillPath: file, Logger: log})
		return rec, func(ctx context.Context, since time.Time, by string) (any, error) {
			return usage.SummarizePostgres(ctx, dsn, since, by)
		}, nil
	case file != "":
		sink, err := usage.NewFileSink(file, maxBytes, keep)
		if err != nil {
			return nil, nil, fmt.Errorf("--usage-file: %w", err)
		}
		rec := usage.NewRecorder(sink, usage.RecorderOptions{Logger: log})
		return rec, func(_ context.Context, since time.Time, by string) (any, error) {
			return usage.SummarizeFile(file, since, by)
		}, nil
	}
	return nil, nil, nil
}

func validateCmd(stdout io.Writer) *cobra.Command {
	var paths []string
	cmd := &cobra.Command{
		Use:   "validate -f PATH...",
		Short: "Check resource files: print every error and exit 1, or a summary and exit 0",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(paths) == 0 {
				return errors.New("validate needs at least one -f PATH")
			}
			snap, err := server.Load(paths, nil)
			if err != nil {
				fmt.Fprintln(stdout, err.Error())
				return exitError{}
			}
			fmt.Fprintf(stdout, "valid: %s\n", snap.Summary)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&paths, "filename", "f", nil, "resource file or directory (repeatable)")
	return cmd
}

func versionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(stdout, "sluice", buildVersion())
		},
	}
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return "dev+" + rev + " (" + bi.GoVersion + ")"
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version + " (" + bi.GoVersion + ")"
		}
		return "dev (" + bi.GoVersion + ")"
	}
	return "dev"
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
