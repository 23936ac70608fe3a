// Package telemetry holds the gateway's metrics: the OpenTelemetry GenAI semantic
// conventions (token usage, request duration, time to first token, time per output token)
// and Sluice's own series (requests by status and code, rate-limit decisions, processor
// actions, cache lookups, backend health, reloads, spend), in a Prometheus registry served
// on the admin listener. Label values that come from clients or configuration pass a
// cardinality guard, so a flood of distinct model names cannot grow the series without
// bound.
package telemetry

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload"
)

// Other replaces label values past a guard's limit.
const Other = "other"

// DefaultLabelLimit bounds the distinct values of each guarded label (route, backend,
// team, model, policy, rule, processor, and MCP's tool and method).
const DefaultLabelLimit = 200

// Metrics is the gateway's metrics. Safe for concurrent use; nil-safe (a nil *Metrics
// records nothing), so the data path needs no checks.
type Metrics struct {
	reg *prometheus.Registry

	tokenUsage *prometheus.HistogramVec
	duration   *prometheus.HistogramVec
	ttft       *prometheus.HistogramVec
	tpot       *prometheus.HistogramVec

	requests     *prometheus.CounterVec
	inFlight     prometheus.Gauge
	tokens       *prometheus.CounterVec
	cost         *prometheus.CounterVec
	rateLimits   *prometheus.CounterVec
	processors   *prometheus.CounterVec
	cacheLookups *prometheus.CounterVec
	cacheSaved   *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	ejections    *prometheus.CounterVec
	reloads      *prometheus.CounterVec
	lastReload   prometheus.Gauge
	mcpRequests  *prometheus.CounterVec
	mcpDuration  *prometheus.HistogramVec
	mcpTokens    *prometheus.CounterVec

	guards map[string]*guard
}

// Options configure New.
type Options struct {
	// LabelLimit bounds each guarded label's distinct values (default DefaultLabelLimit).
	LabelLimit int
	// Process adds the Go runtime and process collectors (memory, CPU, goroutines).
	Process bool
}

// OTel GenAI semantic-convention bucket boundaries.
var (
	tokenBuckets    = []float64{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}
	durationBuckets = []float64{0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92}
	ttftBuckets     = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	tpotBuckets     = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5}
)

// genAILabels are the GenAI conventions' attributes plus Sluice's route and team.
var genAILabels = []string{"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model", "error_type", "route", "team"}

// New returns the metrics, registered in their own registry.
func New(o Options) *Metrics {
	if o.LabelLimit <= 0 {
		o.LabelLimit = DefaultLabelLimit
	}
	m := &Metrics{reg: prometheus.NewRegistry(), guards: map[string]*guard{}}
	for _, name := range []string{"route", "backend", "team", "model", "policy", "rule", "processor", "tool", "method"} {
		m.guards[name] = &guard{limit: o.LabelLimit}
	}
	hist := func(name, help string, buckets []float64, labels []string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		m.reg.MustRegister(h)
		return h
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(c)
		return c
	}
	m.tokenUsage = hist("gen_ai_client_token_usage", "Tokens used per request (GenAI semantic conventions), by gen_ai_token_type input or output.",
		tokenBuckets, append(append([]string{}, genAILabels...), "gen_ai_token_type"))
	m.duration = hist("gen_ai_server_request_duration_seconds", "Time from the request's arrival to the end of its answer.", durationBuckets, genAILabels)
	m.ttft = hist("gen_ai_server_time_to_first_token_seconds", "Time to the first streamed event of a streamed answer.", ttftBuckets, genAILabels)
	m.tpot = hist("gen_ai_server_time_per_output_token_seconds", "Time per output token after the first, for streamed answers.", tpotBuckets, genAILabels)
	m.requests = counter("sluice_requests_total", "Requests answered, by route, backend, team, HTTP status and error code.", "route", "backend", "team", "status", "code")
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_requests_in_flight", Help: "Inference requests being served."})
	m.reg.MustRegister(m.inFlight)
	m.tokens = counter("sluice_tokens_total", "Tokens of answered requests, by team, model and type (input, output, cached_input).", "team", "model", "type")
	m.cost = counter("sluice_usage_cost_usd_total", "Estimated spend in US dollars from the configured prices, by team and model.", "team", "model")
	m.rateLimits = counter("sluice_ratelimit_decisions_total", "Rate-limit rule decisions: allowed, rejected, shadow_rejected.", "policy", "rule", "decision")
	m.processors = counter("sluice_processor_actions_total", "Payload processor actions: block, redact, flag, throttle.", "processor", "action")
	m.cacheLookups = counter("sluice_cache_lookups_total", "Cache lookups by policy and result: hit, semantic_hit, miss.", "policy", "result")
	m.cacheSaved = counter("sluice_cache_saved_tokens_total", "Upstream tokens not spent thanks to cache hits, by type.", "type")
	m.attempts = counter("sluice_backend_attempts_total", "Upstream attempts by backend and outcome (success, failure, throttled).", "backend", "outcome")
	m.ejections = counter("sluice_backend_ejections_total", "Outlier ejections, by backend.", "backend")
	m.mcpRequests = counter("sluice_mcp_requests_total", "MCP requests (one per JSON-RPC message, GET stream or DELETE), by route, server, method, tool or prompt, team and error code (tool_error when a tool reported isError).", "route", "server", "method", "name", "team", "code")
	m.mcpDuration = hist("sluice_mcp_request_duration_seconds", "Time from an MCP request's arrival to the end of its answer, by route, server and method.", durationBuckets, []string{"route", "server", "method"})
	m.mcpTokens = counter("sluice_mcp_text_tokens_total", "Estimated tokens of MCP tool and prompt text, by route, server and direction (arguments, result).", "route", "server", "direction")
	m.reloads = counter("sluice_config_reloads_total", "Configuration reloads, by result: success, failure.", "result")
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_config_last_reload_success_timestamp_seconds", Help: "When the configuration in force was loaded."})
	m.reg.MustRegister(m.lastReload)
	if o.Process {
		m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m
}

// Registry is where the metrics are registered, for the /metrics handler and for
// collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// guard keeps a label's distinct values under a limit: the first values seen keep their
// name, later ones become Other.
type guard struct {
	seen  sync.Map
	n     atomic.Int64
	limit int
}

func (g *guard) value(v string) string {
	if _, ok := g.seen.Load(v); ok {
		return v
	}
	if g.n.Load() >= int64(g.limit) {
		return Other
	}
	if _, loaded := g.seen.LoadOrStore(v, struct{}{}); !loaded {
		if g.n.Add(1) > int64(g.limit) {
			g.seen.Delete(v)
			return Other
		}
	}
	return v
}

func (m *Metrics) label(kind, v string) string { return m.guards[kind].value(v) }

// Begin counts a request in flight; End ends it.
func (m *Metrics) Begin() {
	if m != nil {
		m.inFlight.Inc()
	}
}

// End counts a request out of flight.
func (m *Metrics) End() {
	if m != nil {
		m.inFlight.Dec()
	}
}

// Observe records a finished request: its GenAI metrics, its status, tokens and spend,
// its cache result and the payload processors' actions.
func (m *Metrics) Observe(ex *exchange.Exchange, findings []payload.Finding, elapsed time.Duration) {
	if m == nil {
		return
	}
	team := ""
	if ex.Principal != nil {
		team = ex.Principal.Team
	}
	team = m.label("team", team)
	route, backend, model := m.label("route", ex.Route), m.label("backend", ex.Backend), m.label("model", ex.Model)
	status := ex.Status
	if status == 0 {
		status = 200
	}
	m.requests.WithLabelValues(route, backend, team, statusText(status), ex.Code).Inc()
	for _, f := range findings {
		m.processors.WithLabelValues(m.label("processor", f.Processor), f.Action.String()).Inc()
	}
	if c := ex.MCP; c != nil {
		m.observeMCP(ex, c, route, backend, team, elapsed)
		return
	}
	if ex.Cache != "" {
		m.cacheLookups.WithLabelValues(m.label("policy", ex.CachePolicy), ex.Cache).Inc()
		if ex.Cache != "miss" {
			m.cacheSaved.WithLabelValues("input").Add(float64(ex.CacheSaved.InputTokens))
			m.cacheSaved.WithLabelValues("output").Add(float64(ex.CacheSaved.OutputTokens))
		}
	}
	if ex.Route == "" {
		return // refused before routing: no GenAI operation took place
	}
	errType := ""
	if status >= 400 || ex.Code != "" {
		errType = ex.Code
		if errType == "" {
			errType = strconv.Itoa(status)
		}
	}
	respModel := ex.UpstreamModel
	if respModel == "" {
		respModel = ex.Model
	}
	lv := [...]string{Operation(ex.IngressEndpoint), Provider(ex.Provider), model, m.label("model", respModel), errType, route, team}
	m.duration.WithLabelValues(lv[:]...).Observe(elapsed.Seconds())
	u := ex.Usage
	if u.InputTokens > 0 || u.OutputTokens > 0 {
		tl := [...]string{lv[0], lv[1], lv[2], lv[3], lv[4], lv[5], lv[6], "input"}
		m.tokenUsage.WithLabelValues(tl[:]...).Observe(float64(u.InputTokens))
		tl[7] = "output"
		m.tokenUsage.WithLabelValues(tl[:]...).Observe(float64(u.OutputTokens))
		m.tokens.WithLabelValues(team, model, "input").Add(float64(u.InputTokens))
		m.tokens.WithLabelValues(team, model, "output").Add(float64(u.OutputTokens))
		if u.CachedInputTokens > 0 {
			m.tokens.WithLabelValues(team, model, "cached_input").Add(float64(u.CachedInputTokens))
		}
	}
	if ex.CostUSD > 0 {
		m.cost.WithLabelValues(team, model).Add(ex.CostUSD)
	}
	if ex.Stream && ex.FirstByte > 0 && errType == "" {
		m.ttft.WithLabelValues(lv[:]...).Observe(ex.FirstByte.Seconds())
		if u.OutputTokens > 1 {
			m.tpot.WithLabelValues(lv[:]...).Observe((elapsed - ex.FirstByte).Seconds() / float64(u.OutputTokens-1))
		}
	}
}

func (m *Metrics) observeMCP(ex *exchange.Exchange, c *exchange.MCPCall, route, server, team string, elapsed time.Duration) {
	method, name := m.label("method", c.Method), m.label("tool", c.Name())
	code := ex.Code
	if code == "" && c.IsError {
		code = "tool_error"
	}
	m.mcpRequests.WithLabelValues(route, server, method, name, team, code).Inc()
	m.mcpDuration.WithLabelValues(route, server, method).Observe(elapsed.Seconds())
	if u := ex.Usage; u.InputTokens > 0 || u.OutputTokens > 0 {
		m.mcpTokens.WithLabelValues(route, server, "arguments").Add(float64(u.InputTokens))
		m.mcpTokens.WithLabelValues(route, server, "result").Add(float64(u.OutputTokens))
	}
}

// statusTexts are the HTTP statuses as label values, made once.
var statusTexts = func() (t [600]string) {
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return
}()

func statusText(s int) string {
	if s >= 0 && s < len(statusTexts) {
		return statusTexts[s]
	}
	return strconv.Itoa(s)
}

// Operation is the GenAI operation name (gen_ai.operation.name) of an endpoint.
func Operation(e exchange.Endpoint) string {
	switch e {
	case exchange.EndpointChat, exchange.EndpointMessages:
		return "chat"
	case exchange.EndpointCompletions:
		return "text_completion"
	case exchange.EndpointEmbeddings:
		return "embeddings"
	}
	return e.String()
}

// Provider is the GenAI provider name (gen_ai.provider.name) of a Backend schema.
func Provider(schema string) string {
	switch schema {
	case "OpenAI":
		return "openai"
	case "AzureOpenAI":
		return "azure.ai.openai"
	case "Anthropic":
		return "anthropic"
	case "GCPVertexAI":
		return "gcp.vertex_ai"
	case "AWSBedrock":
		return "aws.bedrock"
	case "Mock":
		return "sluice.mock"
	}
	return schema
}

// RateLimitDecision counts one rule's decision for a request.
func (m *Metrics) RateLimitDecision(policy, rule, decision string) {
	if m != nil {
		m.rateLimits.WithLabelValues(m.label("policy", policy), m.label("rule", rule), decision).Inc()
	}
}

// Attempt counts an upstream attempt's outcome: success, failure or throttled.
func (m *Metrics) Attempt(backend, outcome string) {
	if m != nil {
		m.attempts.WithLabelValues(m.label("backend", backend), outcome).Inc()
	}
}

// Ejected counts an outlier ejection of backend.
func (m *Metrics) Ejected(backend string) {
	if m != nil {
		m.ejections.WithLabelValues(m.label("backend", backend)).Inc()
	}
}

// Reloaded counts a configuration reload.
func (m *Metrics) Reloaded(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.lastReload.SetToCurrentTime()
}

// BackendState is one Backend's health as the backend collector reports it.
type BackendState struct {
	Backend  string
	Up       bool
	InFlight int
	// Endpoints of a pool, by address (nil for a plain Backend).
	Endpoints []EndpointState
}

// EndpointState is one pool endpoint's health.
type EndpointState struct {
	Address  string
	Up       bool
	InFlight int
}

// WatchBackends registers gauges read at scrape time from states: sluice_backend_up,
// sluice_backend_in_flight and, for pools, sluice_pool_endpoint_up and
// sluice_pool_endpoint_in_flight.
func (m *Metrics) WatchBackends(states func() []BackendState) {
	m.reg.MustRegister(&backendCollector{states: states})
}

var (
	backendUpDesc       = prometheus.NewDesc("sluice_backend_up", "1 when the Backend is in rotation, 0 when ejected or down (for a pool: every endpoint out).", []string{"backend"}, nil)
	backendInFlightDesc = prometheus.NewDesc("sluice_backend_in_flight", "Requests in flight to the Backend.", []string{"backend"}, nil)
	endpointUpDesc      = prometheus.NewDesc("sluice_pool_endpoint_up", "1 when the pool endpoint is in rotation.", []string{"backend", "endpoint"}, nil)
	endpointFlightDesc  = prometheus.NewDesc("sluice_pool_endpoint_in_flight", "Requests in flight to the pool endpoint from this gateway.", []string{"backend", "endpoint"}, nil)
)

type backendCollector struct{ states func() []BackendState }

func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backendUpDesc
	ch <- backendInFlightDesc
	ch <- endpointUpDesc
	ch <- endpointFlightDesc
}

func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, s := range c.states() {
		ch <- prometheus.MustNewConstMetric(backendUpDesc, prometheus.GaugeValue, b2f(s.Up), s.Backend)
		ch <- prometheus.MustNewConstMetric(backendInFlightDesc, prometheus.GaugeValue, float64(s.InFlight), s.Backend)
		for _, e := range s.Endpoints {
			ch <- prometheus.MustNewConstMetric(endpointUpDesc, prometheus.GaugeValue, b2f(e.Up), s.Backend, e.Address)
			ch <- prometheus.MustNewConstMetric(endpointFlightDesc, prometheus.GaugeValue, float64(e.InFlight), s.Backend, e.Address)
		}
	}
}

// WatchUsage registers the usage recorder's counters, read at scrape time:
// sluice_usage_records_total{result: written, spilled, dropped} and
// sluice_usage_records_queued.
func (m *Metrics) WatchUsage(stats func() (written, spilled, dropped uint64, queued int)) {
	m.reg.MustRegister(&usageCollector{stats: stats})
}

var (
	usageRecordsDesc = prometheus.NewDesc("sluice_usage_records_total", "Usage records by fate: written to the sink, spilled to the spill file, dropped.", []string{"result"}, nil)
	usageQueuedDesc  = prometheus.NewDesc("sluice_usage_records_queued", "Usage records waiting for the sink.", nil, nil)
)

type usageCollector struct {
	stats func() (written, spilled, dropped uint64, queued int)
}

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- usageRecordsDesc
	ch <- usageQueuedDesc
}

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	w, s, d, q := c.stats()
	ch <- prometheus.MustNewConstMetric(usageRecordsDesc, prometheus.CounterValue, float64(w), "written")
	ch <- prometheus.MustNewConstMetric(usageRecordsDesc, prometheus.CounterValue, float64(s), "spilled")
	ch <- prometheus.MustNewConstMetric(usageRecordsDesc, prometheus.CounterValue, float64(d), "dropped")
	ch <- prometheus.MustNewConstMetric(usageQueuedDesc, prometheus.GaugeValue, float64(q))
}
