package server_test

import (
	"context"
	"testing"

	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/server"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// TestSubscribe: with a snapshot source (cluster mode), the gateway answers 503 until the
// first snapshot arrives, then serves it, and serves each later one.
func TestSubscribe(t *testing.T) {
	publishCh := make(chan func(*translate.Snapshot), 1)
	r := start(t, server.Config{Subscribe: func(ctx context.Context, publish func(*translate.Snapshot)) error {
		publishCh <- publish
		<-ctx.Done()
		return nil
	}})
	publish := <-publishCh
	if code, _ := chat(r.addr, "demo"); code != 503 {
		t.Fatalf("before the first snapshot: %d", code)
	}
	publish(gatewaytest.Build(t, mockBackend+routeFor("m1", "demo"), nil))
	if code, _ := chat(r.addr, "demo"); code != 200 {
		t.Fatalf("after: %d", code)
	}
	publish(gatewaytest.Build(t, mockBackend+routeFor("m1", "other"), nil))
	if code, _ := chat(r.addr, "demo"); code != 404 {
		t.Fatalf("after the second: %d", code)
	}
}
