// Package gatewaytest starts gateways and upstreams for tests: a Gateway built from YAML
// exactly as `sluice serve` builds it, behind a real HTTP server, and a log it writes to
// that tests can read. Test code only; the binary never imports it.
package gatewaytest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// Log collects JSON log lines.
type Log struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced on every write
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written != nil {
		close(l.written)
		l.written = nil
	}
	return l.buf.Write(p)
}

// Wait blocks until at least n records with msg have been logged, or fails the test after
// timeout.
func (l *Log) Wait(t testing.TB, msg string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		if l.written == nil {
			l.written = make(chan struct{})
		}
		ch := l.written
		l.mu.Unlock()
		if len(l.Records(msg)) >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waited %v for %d %q log records; log:\n%s", timeout, n, msg, l.String())
		}
	}
}

// String returns everything logged.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Records returns the log lines whose msg is msg, decoded.
func (l *Log) Records(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// Gateway is a gateway under test.
type Gateway struct {
	*gateway.Gateway
	Server *httptest.Server
	Log    *Log
}

// URL is the gateway's base URL for OpenAI clients (".../v1").
func (g *Gateway) URL() string { return g.Server.URL + "/v1" }

// Start builds a gateway from YAML resources and serves it. vars are substituted for
// ${NAME} in the YAML.
func Start(t testing.TB, yaml string, vars map[string]string, opts gateway.Options) *Gateway {
	t.Helper()
	snap := Build(t, yaml, vars)
	log := &Log{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	gw := gateway.New(opts)
	gw.Swap(snap)
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return &Gateway{Gateway: gw, Server: srv, Log: log}
}

// Build compiles YAML resources into a snapshot, failing the test on any error.
func Build(t testing.TB, yaml string, vars map[string]string) *translate.Snapshot {
	t.Helper()
	env := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	set, err := resource.LoadBytes("test.yaml", []byte(yaml), env)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	snap, err := translate.Build(set, nil)
	if err != nil {
		t.Fatalf("translate: %v", err)
	}
	return snap
}

// KeyHash is an APIKey's spec.hash for key: "sha256:" and its hex SHA-256.
func KeyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}
