// Package server runs the standalone gateway: it loads resources from files (or the
// embedded quickstart), keeps the snapshot current as files change or SIGHUP arrives,
// serves HTTP, and drains in-flight requests on shutdown. The CLI is a thin layer on it,
// and tests drive it directly.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/examples"
	"github.com/sluice-gateway/sluice/internal/admin"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/telemetry"
	"github.com/sluice-gateway/sluice/internal/translate"
	"github.com/sluice-gateway/sluice/internal/usage"
	"go.opentelemetry.io/otel/trace"
)

// Config configures Run.
type Config struct {
	// Paths are files and directories of resources; empty runs the embedded quickstart.
	Paths []string
	// Version is the build's version (MCP clients see it).
	Version string
	// Listen is the address to listen on, unless Listener is set.
	Listen   string
	Listener net.Listener
	// DrainTimeout bounds how long shutdown waits for requests in flight.
	DrainTimeout time.Duration
	// MaxRequestBytes limits request bodies (0: the gateway's default).
	MaxRequestBytes int64
	Logger          *slog.Logger
	// Reload, when not nil, triggers a reload on every receive (SIGHUP).
	Reload <-chan os.Signal
	// WatchDebounce coalesces file events (default 200ms).
	WatchDebounce time.Duration
	// OnReload, when set, is called after every reload attempt (tests wait on it).
	OnReload func(error)
	// OnListen, when set, is called with the bound address once serving.
	OnListen func(net.Addr)
	// AdminListen is the admin listener's address (metrics, dashboard, admin API), unless
	// AdminListener is set; both empty: no admin listener.
	AdminListen   string
	AdminListener net.Listener
	// AdminToken is the admin API's bearer token; empty: the API is off.
	AdminToken string
	// OnAdminListen, when set, is called with the admin listener's bound address.
	OnAdminListen func(net.Addr)
	// Usage, when set, receives every request's usage record; UsageSummary answers the
	// admin API's usage summaries. The caller closes Usage after Run returns.
	Usage        *usage.Recorder
	UsageSummary func(ctx context.Context, since time.Time, by string) (any, error)
	// Tracer, when set, traces requests (see package tracing).
	Tracer trace.Tracer
	// OnDenial, when set, is told of every denied request (cluster mode records them as
	// Events); it must not block.
	OnDenial func(gateway.Denial)
	// Subscribe, when set, replaces files as the source of snapshots (cluster mode): Run
	// calls it once, in the background, with a publish function; it runs until ctx ends.
	// Paths, the file watcher and SIGHUP are then unused, and the gateway answers 503
	// until the first snapshot is published. The source retires old upstreams itself.
	Subscribe func(ctx context.Context, publish func(*translate.Snapshot)) error
	// ListenerSet, when set, gets more ports serving the gateway (cluster mode: the
	// listeners of Gateways of Sluice's class, applied by the controller): Run makes it
	// serve the gateway, and on shutdown closes it, draining with the main listener.
	ListenerSet *ListenerSet
}

// Load reads and compiles the resources of cfg. prev may be nil.
func Load(paths []string, prev *translate.Snapshot) (*translate.Snapshot, error) {
	var set *resource.Set
	var err error
	if len(paths) == 0 {
		set, err = resource.LoadBytes(examples.QuickstartName, examples.Quickstart, os.LookupEnv)
	} else {
		set, err = resource.Load(paths, os.LookupEnv)
	}
	if err != nil {
		return nil, err
	}
	return translate.Build(set, prev)
}

// Run serves until ctx ends, then drains and returns nil (or the error that stopped it).
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var snap *translate.Snapshot
	var err error
	if cfg.Subscribe == nil {
		if snap, err = Load(cfg.Paths, nil); err != nil {
			return err
		}
	}
	metrics := telemetry.New(telemetry.Options{Process: true})
	var record func(*exchange.Exchange)
	if rec := cfg.Usage; rec != nil {
		record = func(ex *exchange.Exchange) { rec.Add(usage.FromExchange(ex)) }
		metrics.WatchUsage(func() (written, spilled, dropped uint64, queued int) {
			st := rec.Stats()
			return st.Written, st.Spilled, st.Dropped, st.Queued
		})
	}
	gw := gateway.New(gateway.Options{Logger: log, Version: cfg.Version, MaxRequestBytes: cfg.MaxRequestBytes, Metrics: metrics, Usage: record, Tracer: cfg.Tracer, OnDenial: cfg.OnDenial})
	if snap != nil {
		gw.Swap(snap)
		metrics.Reloaded(nil)
		log.Info("configuration loaded", "summary", snap.Summary.String())
	}

	// One reload at a time, whoever asks (file change, SIGHUP, the admin API).
	var reloadMu sync.Mutex
	var adminHandler *admin.Handler
	doReload := func() error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		err := reload(gw, cfg, log)
		metrics.Reloaded(err)
		if adminHandler != nil {
			adminHandler.Reloaded(err)
		}
		return err
	}
	var adminSrv *http.Server
	if adminLn := cfg.AdminListener; adminLn != nil || cfg.AdminListen != "" {
		if adminLn == nil {
			if adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
				return err
			}
		}
		reloadFn := doReload
		if cfg.Subscribe != nil {
			reloadFn = nil // the cluster is the source: nothing to reload from
		}
		adminHandler = admin.New(admin.Options{Gateway: gw, Metrics: metrics, Token: cfg.AdminToken, Reload: reloadFn, Usage: cfg.UsageSummary, Logger: log})
		adminSrv = &http.Server{Handler: adminHandler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		go adminSrv.Serve(adminLn)
		defer adminSrv.Close()
		log.Info("admin listening", "addr", adminLn.Addr().String(), "api", cfg.AdminToken != "")
		if cfg.OnAdminListen != nil {
			cfg.OnAdminListen(adminLn.Addr())
		}
	}

	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	if cfg.ListenerSet != nil {
		cfg.ListenerSet.SetHandler(gw)
		defer func() { // on an early return; a no-op after the drain below
			ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
			defer cancel()
			cfg.ListenerSet.Close(ctx)
		}()
	}

	reloadCtx, stopReload := context.WithCancel(ctx)
	defer stopReload()
	subscribed := make(chan error, 1)
	if cfg.Subscribe != nil {
		go func() {
			subscribed <- cfg.Subscribe(reloadCtx, func(next *translate.Snapshot) {
				gw.Swap(next)
				metrics.Reloaded(nil)
				if adminHandler != nil {
					adminHandler.Reloaded(nil)
				}
				log.Info("configuration loaded", "summary", next.Summary.String())
			})
		}()
	}
	var changed <-chan struct{}
	if len(cfg.Paths) > 0 && cfg.Subscribe == nil {
		d := cfg.WatchDebounce
		if d <= 0 {
			d = 200 * time.Millisecond
		}
		if changed, err = resource.Watch(reloadCtx, cfg.Paths, d); err != nil {
			return err
		}
	}
	reloadDone := make(chan struct{})
	go func() {
		defer close(reloadDone)
		for {
			select {
			case <-reloadCtx.Done():
				return
			case _, ok := <-changed:
				if !ok {
					changed = nil
					continue
				}
			case <-cfg.Reload:
				if cfg.Subscribe != nil {
					continue // SIGHUP has nothing to reload in cluster mode
				}
			}
			doReload()
		}
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}

	select {
	case err := <-serveErr:
		return err
	case err := <-subscribed:
		if err != nil {
			return err
		}
		<-ctx.Done()
	case <-ctx.Done():
	}
	stopReload()
	<-reloadDone
	gw.Drain()
	log.Info("draining", "timeout", cfg.DrainTimeout.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	listenersClosed := make(chan struct{})
	go func() {
		defer close(listenersClosed)
		if cfg.ListenerSet != nil {
			cfg.ListenerSet.Close(drainCtx)
		}
	}()
	if err := srv.Shutdown(drainCtx); err != nil {
		log.Warn("drain deadline passed; closing remaining connections")
		srv.Close()
	}
	<-listenersClosed
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func reload(gw *gateway.Gateway, cfg Config, log *slog.Logger) error {
	err := Reload(gw, cfg.Paths, log)
	if cfg.OnReload != nil {
		cfg.OnReload(err)
	}
	return err
}

// Reload reads paths again, against the snapshot gw serves, and puts the result in force;
// a rejected set is logged with every error and the running one stays. Callers serialise
// it.
func Reload(gw *gateway.Gateway, paths []string, log *slog.Logger) error {
	prev := gw.Snapshot()
	next, err := Load(paths, prev)
	if err != nil {
		log.Error("configuration rejected; the running configuration stays", "errors", err.Error())
		return err
	}
	gw.Swap(next)
	translate.Retire(prev, next)
	log.Info("configuration reloaded", "summary", next.Summary.String())
	return nil
}
