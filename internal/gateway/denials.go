package gateway

import (
	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload"
)

// Denial is a request refused by policy, for Options.OnDenial: by access control
// (authentication or authorization), by data residency (region_not_allowed) or by a
// payload processor's Block (content_blocked). It names who, what and why; never a
// credential, a header or any request or answer content.
type Denial struct {
	// Reason says why: an authentication failure ("missing_credential", "unknown_key",
	// ...), an authorization reason ("model_not_allowed", with ` (rule NAME)` when a
	// rule decided), "region_not_allowed", or the blocking processor's name for
	// content_blocked.
	Reason string
	// Code is the error code the client was answered with.
	Code string
	// Subject and Team are the caller's, when authenticated.
	Subject, Team string
	// Model is the model requested, when read.
	Model string
	// Route is the ModelRoute ("ModelRoute/ns/name") when the request was routed.
	Route string
	// Backend is the Backend ("Backend/ns/name") when one was tried.
	Backend string
}

// deny hands d to Options.OnDenial, on the request's goroutine.
func (g *Gateway) deny(ex *exchange.Exchange, reason, code string) {
	d := Denial{Reason: reason, Code: code, Model: ex.Model, Route: ex.Route, Backend: ex.Backend}
	if p := ex.Principal; p != nil {
		d.Subject, d.Team = p.Subject, p.Team
	}
	g.opts.OnDenial(d)
}

// auditDenial reports an access-control denial (see audit): rule is the rule that
// decided ("" for the default or an authentication failure), reason the audit reason,
// code the error code the client was answered with.
func (g *Gateway) auditDenial(ex *exchange.Exchange, rule, reason, code string) {
	if g.opts.OnDenial == nil {
		return
	}
	if rule != "" {
		reason += " (rule " + rule + ")"
	}
	g.deny(ex, reason, code)
}

// finishDenial reports, once the exchange is over, a refusal by data residency or by a
// processor's Block (request or answer side, on either data path).
func (g *Gateway) finishDenial(ex *exchange.Exchange, run *payload.Run) {
	if g.opts.OnDenial == nil {
		return
	}
	switch ex.Code {
	case apierr.CodeRegionNotAllowed:
		g.deny(ex, apierr.CodeRegionNotAllowed, ex.Code)
	case apierr.CodeContentBlocked:
		if run == nil {
			return
		}
		for i := len(run.Findings) - 1; i >= 0; i-- {
			if f := run.Findings[i]; f.Action == payload.Block {
				g.deny(ex, f.Processor, ex.Code)
				return
			}
		}
	}
}
