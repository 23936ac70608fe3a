package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/telemetry"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// Scenarios.
const (
	Passthrough = "passthrough" // one route, one Backend (the mock), nothing else
	Full        = "full"        // API keys and access rules, rate limits, guardrails, metrics
	Stream      = "stream"      // passthrough, streamed answers (time to first token)
)

// BenchKey is the API key the load generator sends in the full scenario. It is public: the
// configuration only ever runs on 127.0.0.1 for the length of a benchmark.
const BenchKey = "sk-sluice-bench-client-0000000000000000000000000000"

// DefaultModel is the model the load generator asks for.
const DefaultModel = "gpt-4o-mini"

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ScenarioYAML returns the resources of a scenario, with the Backend pointing at upstream
// (a base URL ending in /v1). `sluice bench --print-config` prints it, so that the same
// configuration can be served by `sluice serve` in its own process.
func ScenarioYAML(scenario, upstream string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `# sluice bench, scenario %s.
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: bench-upstream}
spec:
  schema: OpenAI
  url: %q
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: bench}
spec:
  models: [%q, "bench-*"]
  backendRefs: [{name: bench-upstream}]
`, scenario, upstream, DefaultModel)
	switch scenario {
	case Passthrough, Stream:
		return b.String(), nil
	case Full:
	default:
		return "", fmt.Errorf("unknown scenario %q (passthrough, full or stream)", scenario)
	}
	fmt.Fprintf(&b, `---
# The load generator's key: %s
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: bench-client}
spec:
  hash: %s
  subject: bench-client@example.com
  team: platform
  roles: [developer]
---
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: bench-indexer}
spec:
  hash: %s
  subject: search-indexer
  team: search
  roles: [embedder]
---
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: bench-admin}
spec:
  hash: %s
  subject: admin@example.com
  team: platform
  roles: [admin]
---
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: bench-access}
spec:
  authentication:
    apiKeys: {}
  rules:
  - name: embeddings-only
    from: {roles: [embedder]}
    allow: {models: ["text-embedding-*"], endpoints: [embeddings]}
  - name: admins
    from: {roles: [admin]}
    allow: {models: ["*"]}
  - name: developers
    from: {roles: [developer]}
    allow: {models: [%q, "bench-*"], endpoints: [chat, completions, messages]}
    when: 'request.max_tokens <= 4096'
  default: Deny
---
# High limits, never reached, but every request is counted against them.
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: bench-limits}
spec:
  targetRefs: [{kind: ModelRoute, name: bench}]
  emitRateLimitResponseHeaders: true
  rules:
  - name: team-tokens-per-minute
    key: principal.team
    limit: {volumeUnits: Tokens, volume: 100000000000, timeUnit: Minute}
  - name: key-requests-per-minute
    key: principal.subject
    limit: {volumeUnits: Requests, volume: 1000000000, timeUnit: Minute}
  storage: {type: Memory}
  failureMode: FailOpen
---
# The default guardrails (examples/guardrails.yaml without the signatures step).
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: guardrails}
spec:
  phase: PreRouting
  processors:
  - name: injection
    # What is measured is the processors' cost; a generous timeout keeps a loaded machine
    # (the race detector in CI) from failing requests instead; the same for the others.
    timeout: 1s
    inProcess:
      promptInjection: {action: Block, threshold: 0.5}
  - name: pii
    timeout: 1s
    inProcess:
      pii:
        entities: [Email, Phone, CreditCard, SSN, IBAN, IPAddress, Secret]
        action: Redact
        scope: [Request, Response]
  - name: codenames
    timeout: 1s
    inProcess:
      contentFilter:
        deny: [{word: project-zeus}, {regex: '(?i)\bzeus-[0-9]{3}\b'}]
        allow: [{word: project-zeus-public}]
        action: Block
        scope: [Request, Response]
`, BenchKey, keyHash(BenchKey), keyHash("sk-sluice-bench-indexer-not-used"), keyHash("sk-sluice-bench-admin-not-used"), DefaultModel)
	return b.String(), nil
}

// Gateway is an in-process gateway serving a scenario on 127.0.0.1.
type Gateway struct {
	GW      *gateway.Gateway
	Metrics *telemetry.Metrics // the full scenario's; nil otherwise
	srv     *http.Server
	ln      net.Listener
}

// URL is the gateway's base URL, ending in /v1.
func (g *Gateway) URL() string { return "http://" + g.ln.Addr().String() + "/v1" }

// Close stops the gateway at once.
func (g *Gateway) Close() error { return g.srv.Close() }

// StartGateway builds the scenario's resources with the repository's own packages, exactly
// as `sluice serve` does, and serves them on a fresh 127.0.0.1 port. The access log is
// formatted as in production (JSON) and thrown away.
func StartGateway(scenario, upstream string) (*Gateway, error) {
	y, err := ScenarioYAML(scenario, upstream)
	if err != nil {
		return nil, err
	}
	set, err := resource.LoadBytes("bench-"+scenario+".yaml", []byte(y), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	snap, err := translate.Build(set, nil)
	if err != nil {
		return nil, err
	}
	opts := gateway.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	var metrics *telemetry.Metrics
	if scenario == Full {
		// What `sluice serve` runs with: the gateway's metrics and the process collectors.
		metrics = telemetry.New(telemetry.Options{Process: true})
		opts.Metrics = metrics
	}
	gw := gateway.New(opts)
	gw.Swap(snap)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn),
	}
	go srv.Serve(ln)
	return &Gateway{GW: gw, Metrics: metrics, srv: srv, ln: ln}, nil
}
