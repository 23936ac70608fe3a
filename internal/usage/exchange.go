package usage

import (
	"time"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

// FromExchange is the usage record of a finished exchange (its usage settled and its
// cost computed).
func FromExchange(ex *exchange.Exchange) Record {
	r := Record{
		Time:          ex.Started.UTC(),
		RequestID:     ex.ID,
		Route:         ex.Route,
		Backend:       ex.Backend,
		Model:         ex.Model,
		UpstreamModel: ex.UpstreamModel,
		Endpoint:      ex.IngressEndpoint.RuleName(),
		Status:        ex.Status,
		Code:          ex.Code,
		Stream:        ex.Stream,
		InputTokens:   ex.Usage.InputTokens,
		OutputTokens:  ex.Usage.OutputTokens,
		Estimated:     ex.Usage.Estimated,
		Cache:         ex.Cache,
		CostUSD:       ex.CostUSD,
		DurationMS:    ms(time.Since(ex.Started)),
		TTFBMS:        ms(ex.FirstByte),
		Attempts:      ex.Attempts,

		CachedInputTokens:   ex.Usage.CachedInputTokens,
		CacheCreationTokens: ex.Usage.CacheCreationTokens,
		ReasoningTokens:     ex.Usage.ReasoningTokens,
	}
	if p := ex.Principal; p != nil {
		r.Subject, r.Team, r.Key = p.Subject, p.Team, p.Key
	}
	if c := ex.MCP; c != nil {
		r.MCPMethod, r.MCPName = c.Method, c.Name()
	}
	if r.Status == 0 {
		r.Status = 200
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
