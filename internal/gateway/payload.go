package gateway

import (
	"net"
	"net/http"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload"
)

// redecode reads a request again after a payload processor changed its body: the fields
// the gateway acts on and the spans adapters splice.
func redecode(ex *exchange.Exchange) *apierr.Error {
	ex.Model, ex.Stream, ex.MaxTokens, ex.IncludeUsage = "", false, 0, false
	ex.Spans = struct {
		Model, StreamOptions exchange.Span
		End                  int
	}{}
	ex.BodyMutated = false
	return decodeRequest(ex, ex.Body)
}

// clientAddr is the caller's IP: the anomaly key of unauthenticated traffic.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// logFindings writes one line per processor action and per processor that failed open:
// the processor, the action and its reason, never the matched text.
func (g *Gateway) logFindings(ex *exchange.Exchange, run *payload.Run) {
	for _, f := range run.Findings {
		g.log.Info("payload processor", "request_id", ex.ID, "processor", f.Processor, "action", f.Action.String(),
			"reason", f.Reason, "response", f.Response, "route", ex.Route)
	}
	for _, e := range run.Errors {
		g.log.Warn("payload processor failed open", "request_id", ex.ID, "processor", e.Processor, "error", e.Err.Error())
	}
}
