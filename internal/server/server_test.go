package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/server"
	"github.com/sluice-gateway/sluice/internal/translate"
)

const mockBackend = `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock}
spec: {schema: Mock, mock: {chunks: 4}}
---
`

func routeFor(name string, models ...string) string {
	return fmt.Sprintf(`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: %s}
spec:
  models: [%s]
  backendRefs: [{name: mock}]
---
`, name, strings.Join(models, ", "))
}

// running is a server.Run under test.
type running struct {
	addr    string
	reloads chan error
	hup     chan os.Signal
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, cfg server.Config) *running {
	t.Helper()
	r := &running{reloads: make(chan error, 16), hup: make(chan os.Signal, 1), done: make(chan error, 1)}
	listening := make(chan net.Addr, 1)
	cfg.OnListen = func(a net.Addr) { listening <- a }
	cfg.OnReload = func(err error) { r.reloads <- err }
	cfg.Reload = r.hup
	cfg.Listen = "127.0.0.1:0"
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.WatchDebounce == 0 {
		cfg.WatchDebounce = 20 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- server.Run(ctx, cfg) }()
	select {
	case a := <-listening:
		r.addr = "http://" + a.String()
	case err := <-r.done:
		t.Fatalf("server did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *running) waitReload(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.reloads:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no reload")
		return nil
	}
}

func chat(url, model string) (int, error) {
	resp, err := http.Post(url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// write-then-rename, as editors and Kubernetes do, so readers never see half a file
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderTraffic: a valid change is applied while requests flow and none of them
// fails; an invalid change is rejected whole and the running configuration stays; SIGHUP
// reloads too.
func TestReloadUnderTraffic(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sluice.yaml")
	writeFile(t, cfgFile, mockBackend+routeFor("a", "model-a"))
	r := start(t, server.Config{Paths: []string{dir}})

	var failures atomic.Int64
	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, err := chat(r.addr, "model-a")
				sent.Add(1)
				if err != nil || code != 200 {
					failures.Add(1)
				}
			}
		}()
	}

	writeFile(t, cfgFile, mockBackend+routeFor("a", "model-a")+routeFor("b", "model-b"))
	if err := r.waitReload(t); err != nil {
		t.Fatalf("valid change rejected: %v", err)
	}
	if code, _ := chat(r.addr, "model-b"); code != 200 {
		t.Fatalf("new model after reload: %d", code)
	}

	// Invalid: a route to a missing backend, plus a bad weight. Rejected as a whole.
	writeFile(t, cfgFile, mockBackend+routeFor("a", "model-a")+routeFor("b", "model-b")+`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: c}
spec:
  models: [model-c]
  backendRefs: [{name: missing}, {name: mock, weight: -1}]
`)
	// One file write can raise more than one reload (a rename, then a create); reloads that
	// still saw the valid file may come first. Wait for the one that read the invalid file.
	var err error
	for err == nil {
		err = r.waitReload(t)
	}
	for _, want := range []string{"ModelRoute/default/c", "spec.backendRefs[0].name", "spec.backendRefs[1].weight"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
	if code, _ := chat(r.addr, "model-b"); code != 200 {
		t.Fatalf("running configuration lost after a rejected change: %d", code)
	}
	if code, _ := chat(r.addr, "model-c"); code != 404 {
		t.Fatalf("half-applied change: model-c answered %d", code)
	}

	close(stop)
	wg.Wait()
	if failures.Load() != 0 || sent.Load() == 0 {
		t.Fatalf("%d of %d requests failed across reloads", failures.Load(), sent.Load())
	}

	// SIGHUP reloads (the file is unchanged since the invalid write, so still rejected).
	r.hup <- nil
	if err := r.waitReload(t); err == nil {
		t.Fatal("SIGHUP reload of an invalid file accepted")
	}
	writeFile(t, cfgFile, mockBackend+routeFor("a", "model-a"))
	for {
		if err := r.waitReload(t); err == nil {
			break
		}
	}
	if code, _ := chat(r.addr, "model-b"); code != 404 {
		t.Fatalf("removed model still served: %d", code)
	}
}

// TestDrainWaitsForStreams: on shutdown a stream in flight finishes, new connections are
// refused, and Run returns nil.
func TestDrainWaitsForStreams(t *testing.T) {
	dir := t.TempDir()
	// 40 tokens/s: the answer (~50 tokens) takes over a second to stream.
	writeFile(t, filepath.Join(dir, "s.yaml"), `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock}
spec: {schema: Mock, mock: {chunks: 8, tokensPerSecond: 40}}
---
`+routeFor("a", "slow"))
	r := start(t, server.Config{Paths: []string{dir}})

	resp, err := http.Post(r.addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the stream has started
		t.Fatal(err)
	}
	r.cancel() // SIGTERM

	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("stream cut during drain: %v", err)
	}
	if !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Fatalf("stream did not finish: %q", rest)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.done <- nil // for Cleanup
	if _, err := chat(r.addr, "slow"); err == nil {
		t.Fatal("a new request was served after shutdown")
	}
}

// TestDrainDeadline: a stream longer than the drain timeout is cut, and Run still returns.
func TestDrainDeadline(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "s.yaml"), `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock}
spec: {schema: Mock, mock: {chunks: 8, tokensPerSecond: 2}}
---
`+routeFor("a", "slow"))
	r := start(t, server.Config{Paths: []string{dir}, DrainTimeout: 100 * time.Millisecond})
	resp, err := http.Post(r.addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"slow","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	br.ReadString('\n')
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.done <- nil
	// At 2 tokens/s the answer needs ~25s; the 100ms drain deadline must have cut it.
	if rest, err := io.ReadAll(br); err == nil && strings.Contains(string(rest), "[DONE]") {
		t.Fatal("stream finished despite the drain deadline")
	}
}

// TestInvalidStartup: a configuration that does not validate never starts serving.
func TestInvalidStartup(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.yaml"), routeFor("a", "x"))
	err := server.Run(context.Background(), server.Config{Paths: []string{dir}, Listen: "127.0.0.1:0"})
	var terrs translate.Errors
	if !errors.As(err, &terrs) || !strings.Contains(err.Error(), `spec.backendRefs[0].name: Not found: "default/mock"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestQuickstart: with no files, the embedded example serves "demo".
func TestQuickstart(t *testing.T) {
	r := start(t, server.Config{})
	if code, err := chat(r.addr, "demo"); err != nil || code != 200 {
		t.Fatalf("demo: %d %v", code, err)
	}
	resp, err := http.Get(r.addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
}
