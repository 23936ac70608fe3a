// Package usage records one Record per request the gateway served and sums them up: sinks
// that store records (a rotating JSONL file, a PostgreSQL table), the Recorder that takes
// them off the request path in batches, and summaries grouped by team, model and so on.
package usage

import (
	"context"
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one request's usage. Its JSON form is a line of the usage file; its fields are
// the columns of the PostgreSQL table.
type Record struct {
	Time                time.Time `json:"time"` // when the request started (UTC)
	RequestID           string    `json:"request_id"`
	Subject             string    `json:"subject,omitempty"`
	Team                string    `json:"team,omitempty"`
	Key                 string    `json:"key,omitempty"` // APIKey resource ref, when a key authenticated
	Route               string    `json:"route,omitempty"`
	Backend             string    `json:"backend,omitempty"`
	Model               string    `json:"model"` // as the client asked
	UpstreamModel       string    `json:"upstream_model,omitempty"`
	Endpoint            string    `json:"endpoint"` // chat, completions, embeddings, messages, mcp
	Status              int       `json:"status"`
	Code                string    `json:"code,omitempty"`
	Stream              bool      `json:"stream,omitempty"`
	InputTokens         int64     `json:"input_tokens"`
	OutputTokens        int64     `json:"output_tokens"`
	CachedInputTokens   int64     `json:"cached_input_tokens"`
	CacheCreationTokens int64     `json:"cache_creation_tokens"`
	ReasoningTokens     int64     `json:"reasoning_tokens"`
	Estimated           bool      `json:"estimated,omitempty"` // tokens counted by the gateway, not reported upstream
	Cache               string    `json:"cache,omitempty"`     // hit, semantic_hit, miss
	CostUSD             float64   `json:"cost_usd"`
	DurationMS          float64   `json:"duration_ms"`
	TTFBMS              float64   `json:"ttfb_ms"`
	Attempts            int       `json:"attempts"`
	// MCPMethod and MCPName are an MCP request's JSON-RPC method and its tool or prompt
	// (prefixed), for requests to an MCPRoute.
	MCPMethod string `json:"mcp_method,omitempty"`
	MCPName   string `json:"mcp_name,omitempty"`
}

// Sink stores batches of records. Write may be called from several goroutines.
type Sink interface {
	Write(ctx context.Context, batch []Record) error
	Close() error
}

// ErrClosed is returned by a sink's Write after Close.
var ErrClosed = errors.New("usage: sink closed")

// permanentError marks a write that fails for the batch's content, not for the sink's
// health: retrying it cannot help, so the Recorder spills it at once.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// clean returns r fit for every sink, so that no record can fail a whole batch forever and
// both sinks store the same values: JSON cannot encode NaN or infinities, PostgreSQL text
// holds neither NUL nor invalid UTF-8 (the model name comes from the client).
func (r Record) clean() Record {
	for _, f := range []*float64{&r.CostUSD, &r.DurationMS, &r.TTFBMS} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = 0
		}
	}
	// The table's integer columns are 32-bit; a status or count beyond is a bug upstream.
	for _, n := range []*int{&r.Status, &r.Attempts} {
		*n = max(min(*n, math.MaxInt32), math.MinInt32)
	}
	for _, s := range []*string{&r.RequestID, &r.Subject, &r.Team, &r.Key, &r.Route, &r.Backend,
		&r.Model, &r.UpstreamModel, &r.Endpoint, &r.Code, &r.Cache} {
		*s = cleanText(*s)
	}
	return r
}

func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s // the usual case, without allocating
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
