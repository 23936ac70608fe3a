package telemetry

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDeployFilesUseRealMetrics: every metric the Grafana dashboard, the alert rules and
// the operations guide query is one the gateway exports.
func TestDeployFilesUseRealMetrics(t *testing.T) {
	m := New(Options{Process: true})
	m.WatchBackends(func() []BackendState {
		return []BackendState{{Backend: "b", Up: true, Endpoints: []EndpointState{{Address: "a:1"}}}}
	})
	m.WatchUsage(func() (uint64, uint64, uint64, int) { return 0, 0, 0, 0 })
	// Touch every vector so it appears in Gather.
	m.tokenUsage.WithLabelValues("chat", "openai", "m", "m", "", "r", "t", "input")
	m.duration.WithLabelValues("chat", "openai", "m", "m", "", "r", "t")
	m.ttft.WithLabelValues("chat", "openai", "m", "m", "", "r", "t")
	m.tpot.WithLabelValues("chat", "openai", "m", "m", "", "r", "t")
	m.requests.WithLabelValues("r", "b", "t", "200", "")
	m.tokens.WithLabelValues("t", "m", "input")
	m.cost.WithLabelValues("t", "m")
	m.rateLimits.WithLabelValues("p", "r", "allowed")
	m.processors.WithLabelValues("p", "block")
	m.cacheLookups.WithLabelValues("p", "hit")
	m.cacheSaved.WithLabelValues("input")
	m.attempts.WithLabelValues("b", "success")
	m.ejections.WithLabelValues("b")
	m.reloads.WithLabelValues("success")
	m.mcpRequests.WithLabelValues("r", "b", "tools/call", "t", "t", "")
	m.mcpDuration.WithLabelValues("r", "b", "tools/call")
	m.mcpTokens.WithLabelValues("r", "b", "result")
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"sluice_usage": true} // the PostgreSQL table
	for _, f := range fams {
		known[f.GetName()] = true
	}
	name := regexp.MustCompile(`\b(sluice_[a-z_]+|gen_ai_[a-z_]+)`)
	for _, file := range []string{"../../deploy/grafana/sluice.json", "../../deploy/prometheus/alerts.yaml", "../../docs/operations.md"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(b), -1) {
			base := n
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !known[n] && !known[base] && !strings.HasPrefix(n, "gen_ai_token_type") && !strings.HasPrefix(n, "gen_ai_operation_name") &&
				!strings.HasPrefix(n, "gen_ai_provider_name") && !strings.HasPrefix(n, "gen_ai_request_model") && !strings.HasPrefix(n, "gen_ai_response_model") {
				t.Errorf("%s queries %s, which the gateway does not export", file, n)
			}
		}
	}
}

func TestGuard(t *testing.T) {
	g := &guard{limit: 2}
	for _, v := range []string{"a", "b", "a", "c", "b", "d"} {
		got := g.value(v)
		want := v
		if v == "c" || v == "d" {
			want = Other
		}
		if got != want {
			t.Errorf("value(%q) = %q, want %q", v, got, want)
		}
	}
}
