// Package admin serves the admin listener: Prometheus metrics at /metrics, the live
// dashboard at /, and the admin API under /admin/ (the loaded resources and their status,
// backend health, a rate-limit bucket's state, usage summaries, reload). The API needs the
// admin bearer token; metrics and the dashboard show only aggregates and are open, so bind
// the listener to a private address (the default is 127.0.0.1).
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-gateway/sluice/internal/admin/dashboard"
	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/telemetry"
)

// Options configure the admin handler.
type Options struct {
	Gateway *gateway.Gateway
	Metrics *telemetry.Metrics
	// Token is the bearer token of the admin API; empty turns the API off (403).
	Token string
	// Reload reloads the configuration now (POST /admin/reload); nil: 404.
	Reload func() error
	// Usage summarises usage records since a time, grouped by team, model, subject,
	// backend or route (GET /admin/usage); nil: 404.
	Usage  func(ctx context.Context, since time.Time, by string) (any, error)
	Logger *slog.Logger
}

// Handler is the admin listener's handler.
type Handler struct {
	o   Options
	mux *http.ServeMux

	mu         sync.Mutex
	lastReload reloadStatus
}

type reloadStatus struct {
	At    time.Time `json:"at"`
	Error string    `json:"error,omitempty"`
}

// New returns the admin handler.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{o: o, mux: http.NewServeMux(), lastReload: reloadStatus{At: time.Now()}}
	if o.Metrics != nil {
		h.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics.Registry(), promhttp.HandlerOpts{ErrorLog: nil}))
	}
	h.mux.Handle("GET /", dashboard.Handler())
	h.mux.HandleFunc("GET /admin/resources", h.api(h.resources))
	h.mux.HandleFunc("GET /admin/backends", h.api(h.backends))
	h.mux.HandleFunc("GET /admin/ratelimits", h.api(h.ratelimit))
	h.mux.HandleFunc("GET /admin/usage", h.api(h.usage))
	h.mux.HandleFunc("POST /admin/reload", h.api(h.reload))
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h.mux.ServeHTTP(w, r)
}

// Reloaded records the outcome of a reload, however it was triggered (file change,
// SIGHUP, the API), for /admin/resources.
func (h *Handler) Reloaded(err error) {
	h.mu.Lock()
	h.lastReload = reloadStatus{At: time.Now()}
	if err != nil {
		h.lastReload.Error = err.Error()
	}
	h.mu.Unlock()
}

// apiError is the admin API's error body.
type apiError struct {
	Error string `json:"error"`
}

// api checks the bearer token (in constant time) and writes f's answer as JSON.
func (h *Handler) api(f func(r *http.Request) (int, any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body := http.StatusForbidden, any(apiError{"the admin API is off: start the gateway with an admin token"})
		if h.o.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.o.Token)) == 1 {
				status, body = f(r)
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sluice-admin"`)
				status, body = http.StatusUnauthorized, apiError{"a valid admin bearer token is required"}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(body)
	}
}

// resourceView is one loaded resource as the API shows it.
type resourceView struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Source    string `json:"source,omitempty"`
	Status    string `json:"status"`
	Spec      any    `json:"spec"`
}

// resources lists the resources in force. Secrets show their keys, never their values;
// API keys hide their hash.
func (h *Handler) resources(*http.Request) (int, any) {
	snap := h.o.Gateway.Snapshot()
	h.mu.Lock()
	last := h.lastReload
	h.mu.Unlock()
	out := struct {
		LastReload reloadStatus   `json:"lastReload"`
		Summary    string         `json:"summary"`
		Resources  []resourceView `json:"resources"`
	}{LastReload: last, Resources: []resourceView{}}
	if snap == nil || snap.Source == nil {
		return http.StatusOK, out
	}
	out.Summary = snap.Summary.String()
	set := snap.Source
	add := func(kind, ns, name string, spec any) {
		src := ""
		if o, ok := set.Origins[resource.Ref(kind, ns, name)]; ok {
			src = o.String()
		}
		out.Resources = append(out.Resources, resourceView{Kind: kind, Namespace: ns, Name: name, Source: src, Status: "Accepted", Spec: spec})
	}
	for _, r := range set.Backends {
		add("Backend", r.Namespace, r.Name, r.Spec)
	}
	for _, r := range set.ModelRoutes {
		add("ModelRoute", r.Namespace, r.Name, r.Spec)
	}
	for _, r := range set.APIKeys {
		spec := r.Spec
		if spec.Hash != "" {
			spec.Hash = "(hidden)"
		}
		add("APIKey", r.Namespace, r.Name, spec)
	}
	for _, r := range set.AccessPolicies {
		add("AccessPolicy", r.Namespace, r.Name, r.Spec)
	}
	for _, r := range set.RateLimitPolicies {
		add("RateLimitPolicy", r.Namespace, r.Name, r.Spec)
	}
	for _, r := range set.PayloadProcessors {
		add("PayloadProcessor", r.Namespace, r.Name, r.Spec)
	}
	for _, r := range set.CachePolicies {
		add("CachePolicy", r.Namespace, r.Name, r.Spec)
	}
	for _, r := range set.MCPRoutes {
		add("MCPRoute", r.Namespace, r.Name, r.Spec)
	}
	for _, s := range set.Secrets {
		keys := make([]string, 0, len(s.Data)+len(s.StringData))
		for k := range s.Data {
			keys = append(keys, k)
		}
		for k := range s.StringData {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		add("Secret", s.Namespace, s.Name, map[string]any{"keys": keys})
	}
	return http.StatusOK, out
}

// backends reports every Backend's health, pool endpoints included.
func (h *Handler) backends(*http.Request) (int, any) {
	return http.StatusOK, map[string]any{"backends": h.o.Gateway.BackendStates()}
}

// ratelimit shows one bucket: ?policy=namespace/name&rule=NAME&key=VALUE.
func (h *Handler) ratelimit(r *http.Request) (int, any) {
	q := r.URL.Query()
	policy, rule := q.Get("policy"), q.Get("rule")
	if policy == "" || rule == "" {
		return http.StatusBadRequest, apiError{"policy (namespace/name), rule and key are required"}
	}
	if !strings.Contains(policy, "/") {
		policy = "default/" + policy
	}
	snap := h.o.Gateway.Snapshot()
	if snap == nil {
		return http.StatusServiceUnavailable, apiError{"no configuration loaded"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st, found, err := snap.Limits.Peek(ctx, "RateLimitPolicy/"+policy, rule, q.Get("key"))
	switch {
	case !found:
		return http.StatusNotFound, apiError{"no such policy and rule"}
	case err != nil:
		return http.StatusServiceUnavailable, apiError{"the rate-limit store cannot be read right now"}
	}
	return http.StatusOK, map[string]any{
		"policy": policy, "rule": rule, "key": q.Get("key"),
		"limit": st.Limit, "remaining": st.Remaining, "used": st.Limit - st.Remaining, "resetSeconds": st.Reset.Seconds(),
	}
}

// usage summarises usage records: ?since=24h&by=team.
func (h *Handler) usage(r *http.Request) (int, any) {
	if h.o.Usage == nil {
		return http.StatusNotFound, apiError{"no usage sink is configured"}
	}
	q := r.URL.Query()
	since := 24 * time.Hour
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return http.StatusBadRequest, apiError{"since must be a positive duration such as 24h"}
		}
		since = d
	}
	by := q.Get("by")
	if by == "" {
		by = "team"
	}
	out, err := h.o.Usage(r.Context(), time.Now().Add(-since), by)
	if err != nil {
		h.o.Logger.Warn("admin usage summary failed", "error", err.Error())
		return http.StatusBadRequest, apiError{err.Error()}
	}
	return http.StatusOK, map[string]any{"since": since.String(), "by": by, "groups": out}
}

// reload reloads the configuration and says how it went.
func (h *Handler) reload(*http.Request) (int, any) {
	if h.o.Reload == nil {
		return http.StatusNotFound, apiError{"reload is not available"}
	}
	if err := h.o.Reload(); err != nil {
		return http.StatusUnprocessableEntity, map[string]any{"reloaded": false, "error": err.Error()}
	}
	summary := ""
	if s := h.o.Gateway.Snapshot(); s != nil {
		summary = s.Summary.String()
	}
	return http.StatusOK, map[string]any{"reloaded": true, "summary": summary}
}
