package translate_test

import (
	"strings"
	"testing"
)

func TestPoolErrors(t *testing.T) {
	_, err := build(t, `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: p}
spec:
  schema: OpenAI
  url: http://vllm:8000/v1
  pool:
    endpoints: ["10.0.0.1:8000", "10.0.0.1:8000", "10.0.0.2", "[::1]:99999", "a b:80"]
    picker: Random
    destinationHeader: Trust
    kvCacheThresholdPercent: 101
    metrics: {path: metrics, interval: 2s, staleAfter: 1s}
    prefixAffinity: {prefixBytes: 8, loadFactorPercent: 90}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: m}
spec: {schema: Mock, pool: {endpoints: ["10.0.0.1:80"]}}
`, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`spec.pool.endpoints[1]: Duplicate value: "10.0.0.1:8000"`,
		`spec.pool.endpoints[2]: Invalid value: "10.0.0.2": must be host:port`,
		`spec.pool.endpoints[3]: Invalid value: "[::1]:99999": port must be between 1 and 65535`,
		`spec.pool.endpoints[4]: Invalid value: "a b:80": host must be a name or an IP address`,
		`spec.pool.picker: Unsupported value: "Random"`,
		`spec.pool.destinationHeader: Unsupported value: "Trust"`,
		`spec.pool.kvCacheThresholdPercent: Invalid value: 101`,
		`spec.pool.metrics.path: Invalid value: "metrics"`,
		`spec.pool.metrics.staleAfter: Invalid value: "1s": must be at least the interval`,
		`spec.pool.prefixAffinity: Forbidden: only for picker PrefixAffinity`,
		`spec.pool.prefixAffinity.prefixBytes: Invalid value: 8`,
		`spec.pool.prefixAffinity.loadFactorPercent: Invalid value: 90`,
		`Backend/default/m: spec.pool: Forbidden: a Mock backend answers in-process`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestPoolDefaults(t *testing.T) {
	snap, err := build(t, `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: p}
spec:
  schema: OpenAI
  url: https://vllm.internal/v1
  pool: {endpoints: ["10.0.0.1:8443", "10.0.0.2:8443"], picker: PrefixAffinity}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	up := snap.Backends["Backend/default/p"].Upstream
	if up.Pool == nil || up.Pool.Size() != 2 || up.PrefixBytes != 512 || up.HonorDestination || up.Health != nil {
		t.Fatalf("pool upstream: %+v", up)
	}
	if up.TLS == nil || up.TLS.ServerName != "vllm.internal" {
		t.Errorf("an https pool must verify certificates against the url's host, got %+v", up.TLS)
	}
	if e := up.Pool.Lookup("10.0.0.1:8443"); e == nil || e.Health() == nil {
		t.Error("endpoints are ejected one by one by default")
	}
}
