package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/payload"
	"github.com/sluice-gateway/sluice/internal/provider/anthropic"
	"github.com/sluice-gateway/sluice/internal/tokens"
)

// settle completes the exchange's usage. When the upstream reported none but an answer
// (or part of one) was delivered, the gateway counts the prompt and the delivered output
// with the model's tokenizer and marks the usage estimated.
func (g *Gateway) settle(ex *exchange.Exchange, w *recorder) {
	if ex.Status == 0 && w.wrote {
		ex.Status = http.StatusOK
	}
	if ex.Backend == "" || ex.MCP != nil {
		return // an MCP exchange counts its own text (mcpHandler.processAnswer)
	}
	// A stream that broke off (upstream failure, timeout, client gone) may have reported
	// only part of its usage (Anthropic reports output at the end; Vertex cumulatively):
	// the delivered text is then counted too, and the larger count kept.
	broken := ex.Code != "" && len(ex.Output) > 0
	if ex.Usage.Reported && !broken {
		return
	}
	delivered := ex.Status >= 200 && ex.Status < 300 || (ex.Status == 499 && len(ex.Output) > 0) || broken
	if !delivered {
		return
	}
	model := ex.UpstreamModel
	u := &ex.Usage
	if u.InputTokens == 0 {
		endpoint, body := ex.Endpoint.String(), ex.Body
		if ex.Endpoint == exchange.EndpointMessages {
			// Anthropic's request shape: count it in its OpenAI translation.
			endpoint, body = "chat", ex.Translated
			if body == nil {
				body, _ = anthropic.ChatRequest(ex.IngressBody)
			}
		}
		if n, err := tokens.PromptTokens(endpoint, model, body); err == nil {
			u.InputTokens = int64(n)
		}
	}
	if len(ex.Output) > 0 {
		text, _ := jsonscan.AppendUnquoted(nil, append(append([]byte{'"'}, ex.Output...), '"'))
		if n := int64(tokens.Count(model, text)); n > u.OutputTokens {
			u.OutputTokens = n
		}
	}
	u.TotalTokens = u.InputTokens + u.OutputTokens
	u.Estimated = true
}

// accessLog writes one line per request: never bodies, never credentials.
func (g *Gateway) accessLog(r *http.Request, ex *exchange.Exchange, w *recorder, run *payload.Run) {
	status := ex.Status
	if status == 0 {
		status = http.StatusOK
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	if !g.log.Enabled(context.Background(), level) {
		return
	}
	subject, team := "", ""
	if p := ex.Principal; p != nil {
		subject, team = p.Subject, p.Team
	}
	flags := ""
	if run != nil && len(run.Findings) > 0 {
		flags = payload.FlagsHeader(run.Findings)
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", ex.ID),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("subject", subject),
		slog.String("team", team),
		slog.String("model", ex.Model),
		slog.String("route", ex.Route),
		slog.String("backend", ex.Backend),
		slog.String("upstream_model", ex.UpstreamModel),
		slog.Int("status", status),
		slog.String("code", ex.Code),
		slog.Bool("stream", ex.Stream),
		slog.Int("attempts", ex.Attempts),
		slog.Float64("duration_ms", ms(time.Since(ex.Started))),
		slog.Float64("ttfb_ms", ms(ex.FirstByte)),
		slog.Int64("input_tokens", ex.Usage.InputTokens),
		slog.Int64("output_tokens", ex.Usage.OutputTokens),
		slog.Bool("usage_estimated", ex.Usage.Estimated),
		slog.String("flags", flags),
		slog.String("cache", ex.Cache),
		slog.Int64("cache_embedding_tokens", ex.CacheTokens),
		slog.String("pool_endpoint", ex.PoolEndpoint),
	}
	if c := ex.MCP; c != nil {
		g.log.LogAttrs(context.Background(), level, "request", append(attrs[:],
			slog.String("mcp_method", c.Method), slog.String("mcp_name", c.Name()), slog.Bool("mcp_tool_error", c.IsError))...)
		return
	}
	g.log.LogAttrs(context.Background(), level, "request", attrs[:]...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
