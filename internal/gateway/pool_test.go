package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/gatewaytest/fakevllm"
)

// poolGateway serves route llama from a pool Backend of the given endpoints.
func poolGateway(t *testing.T, endpoints []string, pool string) *gatewaytest.Gateway {
	t.Helper()
	yaml := fmt.Sprintf(`
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: vllm}
spec:
  schema: OpenAI
  url: http://vllm.pool.invalid:8000/v1
  outlierDetection: {consecutiveFailures: 1, baseEjectionTime: 1h}
  pool:
    endpoints: ["%s"]
%s
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: llama}
spec: {models: [llama], backendRefs: [{name: vllm}]}
`, strings.Join(endpoints, `", "`), pool)
	gw := gatewaytest.Start(t, yaml, nil, gateway.Options{})
	t.Cleanup(gw.Snapshot().Backends["Backend/default/vllm"].Upstream.StopProbes)
	return gw
}

func askLlama(t *testing.T, gw *gatewaytest.Gateway, system, user string, header map[string]string) *http.Response {
	t.Helper()
	body := fmt.Sprintf(`{"model":"llama","messages":[{"role":"system","content":%q},{"role":"user","content":%q}]}`, system, user)
	h := map[string]string{"Authorization": "Bearer client-secret"}
	for k, v := range header {
		h[k] = v
	}
	resp, b := postJSON(t, gw.URL(), "/chat/completions", body, h)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	return resp
}

// TestPoolLoadAware: with fresh vLLM metrics, requests avoid the endpoint with a queue
// and the one whose KV cache is nearly full; the upstream is told which endpoint it is.
func TestPoolLoadAware(t *testing.T) {
	a, b, c := fakevllm.Start(t, "llama"), fakevllm.Start(t, "llama"), fakevllm.Start(t, "llama")
	a.SetLoad(10, 0.3)
	b.SetLoad(0, 0.95)
	c.SetLoad(0, 0.2)
	gw := poolGateway(t, []string{a.Addr, b.Addr, c.Addr}, "    picker: LoadAware\n    metrics: {interval: 1h, staleAfter: 2h}")
	gw.Snapshot().Backends["Backend/default/vllm"].Upstream.Pool.ScrapeOnce(context.Background())
	for i := range 30 {
		askLlama(t, gw, "s", fmt.Sprint("q", i), nil)
	}
	if a.Answers() != 0 || b.Answers() != 0 || c.Answers() != 30 {
		t.Fatalf("queued %d, KV-full %d, idle %d", a.Answers(), b.Answers(), c.Answers())
	}
	if c.Destinations()[0] != c.Addr {
		t.Errorf("x-gateway-destination-endpoint upstream: %q, want %q", c.Destinations()[0], c.Addr)
	}
	if slices.ContainsFunc(c.Authorizations(), func(a string) bool { return a != "" }) {
		t.Error("the client's credential reached the pool")
	}
	gw.Log.Wait(t, "request", 30, 5e9)
	if rec := gw.Log.Records("request")[0]; rec["pool_endpoint"] != c.Addr {
		t.Errorf("access log pool_endpoint %v", rec["pool_endpoint"])
	}
}

// TestPoolPrefixAffinity: requests sharing a system prompt land on one endpoint, and
// different prompts spread over the pool.
func TestPoolPrefixAffinity(t *testing.T) {
	vs := []*fakevllm.Server{fakevllm.Start(t, "llama"), fakevllm.Start(t, "llama"), fakevllm.Start(t, "llama")}
	gw := poolGateway(t, []string{vs[0].Addr, vs[1].Addr, vs[2].Addr}, "    picker: PrefixAffinity\n    prefixAffinity: {prefixBytes: 64}")
	used := map[string]bool{}
	for p := range 12 {
		system := fmt.Sprintf("You are assistant number %d of the support team; answer politely.", p)
		where := ""
		for q := range 5 {
			askLlama(t, gw, system, fmt.Sprint("question ", q), nil)
		}
		gw.Log.Wait(t, "request", 5*(p+1), 5e9)
		recs := gw.Log.Records("request")
		for _, r := range recs[len(recs)-5:] {
			ep := r["pool_endpoint"].(string)
			if where == "" {
				where = ep
			} else if ep != where {
				t.Errorf("prefix %d went to %s and %s", p, where, ep)
			}
		}
		used[where] = true
	}
	if len(used) < 2 {
		t.Errorf("12 prefixes all on %v", used)
	}
}

// TestPoolConnectFailure: a dead endpoint costs one attempt, the request is served by
// another, and the dead one is ejected.
func TestPoolConnectFailure(t *testing.T) {
	live := fakevllm.Start(t, "llama")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	gw := poolGateway(t, []string{dead, live.Addr}, "    picker: LeastOutstanding")
	// Ties are broken at random: in 40 requests the dead endpoint is drawn (and
	// ejected) all but with probability 2^-40.
	for i := range 40 {
		askLlama(t, gw, "s", fmt.Sprint(i), nil)
	}
	if live.Answers() != 40 {
		t.Fatalf("live served %d", live.Answers())
	}
	gw.Log.Wait(t, "request", 40, 5e9)
	tries := 0
	for _, r := range gw.Log.Records("request") {
		tries += int(r["attempts"].(float64))
	}
	if tries != 41 {
		t.Errorf("%d attempts for 40 requests: the dead endpoint should have cost exactly one", tries)
	}
	pool := gw.Snapshot().Backends["Backend/default/vllm"].Upstream.Pool
	if !pool.Lookup(dead).Health().Ejected() || pool.Ejected() {
		t.Error("the dead endpoint, and only it, should be ejected")
	}
}

// TestPoolDestinationHeader: with destinationHeader Honor, x-gateway-destination-endpoint
// chooses among the pool's own endpoints; an address outside the pool is never dialled.
// With the default (Ignore) the header changes nothing.
func TestPoolDestinationHeader(t *testing.T) {
	a, b := fakevllm.Start(t, "llama"), fakevllm.Start(t, "llama")
	a.SetLoad(0, 0.1)
	b.SetLoad(50, 0.1)
	gw := poolGateway(t, []string{a.Addr, b.Addr}, "    destinationHeader: Honor\n    metrics: {interval: 1h, staleAfter: 2h}")
	gw.Snapshot().Backends["Backend/default/vllm"].Upstream.Pool.ScrapeOnce(context.Background())
	askLlama(t, gw, "s", "q", map[string]string{"X-Gateway-Destination-Endpoint": b.Addr})
	askLlama(t, gw, "s", "q", map[string]string{"X-Gateway-Destination-Endpoint": "10.255.0.1:9, " + b.Addr})
	if b.Answers() != 2 {
		t.Fatalf("the named endpoint served %d of 2", b.Answers())
	}
	askLlama(t, gw, "s", "q", map[string]string{"X-Gateway-Destination-Endpoint": "203.0.113.9:8000"})
	if a.Answers() != 1 {
		t.Fatal("a non-member address must fall back to the picker")
	}

	ignoring := poolGateway(t, []string{a.Addr, b.Addr}, "    metrics: {interval: 1h, staleAfter: 2h}")
	ignoring.Snapshot().Backends["Backend/default/vllm"].Upstream.Pool.ScrapeOnce(context.Background())
	askLlama(t, ignoring, "s", "q", map[string]string{"X-Gateway-Destination-Endpoint": b.Addr})
	if b.Answers() != 2 || a.Answers() != 2 {
		t.Fatal("the header must be ignored by default")
	}
}
