package auth

import (
	"net/http"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/route"
)

// Rule is a compiled access rule.
type Rule struct {
	Name string
	// Callers: nil sets match anyone; a caller matches when any listed value does.
	Subjects, Teams, Roles map[string]bool
	// Models are names or globs; empty allows any. They do not limit MCP requests.
	Models []string
	// Tools are prefixed MCP tool names or globs; empty allows any. They limit only MCP
	// requests.
	Tools []string
	// Endpoints: nil allows any.
	Endpoints map[string]bool
	// Regions limit routing; nil does not.
	Regions map[string]bool
	// When is the compiled CEL condition, or nil.
	When *Condition
}

// Request is what a rule looks at.
type Request struct {
	Model     string
	Endpoint  string // chat, completions, embeddings, messages, models, mcp
	Stream    bool
	MaxTokens int64
	Header    http.Header
	Body      []byte
	// MCP is the JSON-RPC call of an MCP request, else nil.
	MCP *exchange.MCPCall
}

// Reasons a request is denied (audit and counters).
type Reason uint8

// Reasons.
const (
	ReasonNone Reason = iota
	ReasonNoRule
	ReasonModel
	ReasonEndpoint
	ReasonAuthentication
	ReasonTool
	numReasons
)

var reasonNames = [...]string{"", "no_rule_matched", "model_not_allowed", "endpoint_not_allowed", "authentication_failed", "tool_not_allowed"}

func (r Reason) String() string { return reasonNames[r] }

// Decision is the outcome of Authorize.
type Decision struct {
	Allowed bool
	// Rule is the rule that decided ("" for the default).
	Rule   string
	Reason Reason
	// Regions, when not nil, are the only regions the request may reach.
	Regions map[string]bool
	// refused, when set, is what the client is told instead of Reason (an MCP request no
	// rule matched is refused its endpoint or tool, not a model).
	refused Reason
}

func (r *Rule) matchesCaller(p *Principal) bool {
	if r.Subjects == nil && r.Teams == nil && r.Roles == nil {
		return true
	}
	if r.Subjects[p.Subject] || (p.Team != "" && r.Teams[p.Team]) {
		return true
	}
	for _, role := range p.Roles {
		if r.Roles[role] {
			return true
		}
	}
	return false
}

func (r *Rule) allowsModel(model string) bool {
	return len(r.Models) == 0 || route.MatchAny(r.Models, model)
}

func (r *Rule) allowsTool(tool string) bool {
	return len(r.Tools) == 0 || route.MatchAny(r.Tools, tool)
}

// speaksOf reports whether a rule without endpoints covers MCP requests (mcp) or model
// requests: a rule that lists only models is about models, one that lists only tools is
// about MCP, and one that lists neither or both covers both. So granting a team some
// models does not silently grant it every tool, nor the reverse.
func (r *Rule) speaksOf(mcp bool) bool {
	if mcp {
		return len(r.Models) == 0 || len(r.Tools) > 0
	}
	return len(r.Tools) == 0 || len(r.Models) > 0
}

// allowsModelEndpoint reports whether the rule lets a caller reach models on some endpoint.
func (r *Rule) allowsModelEndpoint() bool {
	if r.Endpoints == nil {
		return r.speaksOf(false)
	}
	for e := range r.Endpoints {
		if e != endpointMCP {
			return true
		}
	}
	return false
}

// endpointMCP is the endpoint of MCP requests as rules name it.
var endpointMCP = exchange.EndpointMCP.String()

// Authorize applies the rules: the first whose callers and condition match decides; the
// request is allowed when its model (its tool, for MCP) and endpoint are within the rule's
// allowance.
func (p *Policy) Authorize(pr *Principal, req *Request) Decision {
	mcp := req.Endpoint == endpointMCP
	for _, r := range p.rules {
		if !r.matchesCaller(pr) {
			continue
		}
		if r.When != nil && !r.When.Eval(pr, req) {
			continue
		}
		switch {
		case !mcp && !r.allowsModel(req.Model):
			return p.deny(r.Name, ReasonModel)
		case r.Endpoints != nil && !r.Endpoints[req.Endpoint]:
			return p.deny(r.Name, ReasonEndpoint)
		case r.Endpoints == nil && !r.speaksOf(mcp):
			return p.deny(r.Name, ReasonEndpoint)
		case mcp && req.MCP != nil && req.MCP.Tool != "" && !r.allowsTool(req.MCP.Tool):
			return p.deny(r.Name, ReasonTool)
		}
		return Decision{Allowed: true, Rule: r.Name, Regions: r.Regions}
	}
	if p.allow {
		return Decision{Allowed: true}
	}
	d := p.deny("", ReasonNoRule)
	if mcp {
		// The client is told what it may not use: the tool it called, or MCP at all.
		d.refused = ReasonEndpoint
		if req.MCP != nil && req.MCP.Tool != "" {
			d.refused = ReasonTool
		}
	}
	return d
}

func (p *Policy) deny(rule string, why Reason) Decision {
	p.denials[why].Add(1)
	return Decision{Rule: rule, Reason: why}
}

// CountAuthenticationFailure records a failed authentication for the counters.
func (p *Policy) CountAuthenticationFailure() { p.denials[ReasonAuthentication].Add(1) }

// Denials returns the count of denials per reason.
func (p *Policy) Denials() map[string]int64 {
	out := map[string]int64{}
	for i := ReasonNoRule; i < numReasons; i++ {
		out[i.String()] = p.denials[i].Load()
	}
	return out
}

// Error is the client's error for a denial: it names what is not allowed, never the rule.
func (d Decision) Error() *apierr.Error {
	why := d.Reason
	if d.refused != ReasonNone {
		why = d.refused
	}
	switch why {
	case ReasonEndpoint:
		return &apierr.Error{Status: http.StatusForbidden, Code: CodeEndpointNotAllowed, Message: "This endpoint is not allowed for your credentials."}
	case ReasonTool:
		return &apierr.Error{Status: http.StatusForbidden, Code: CodeToolNotAllowed, Param: "name", Message: "This tool is not allowed for your credentials."}
	}
	return &apierr.Error{Status: http.StatusForbidden, Code: CodeModelNotAllowed, Param: "model", Message: "This model is not allowed for your credentials."}
}

// Visible reports whether a caller may use model on some endpoint, for GET /v1/models.
// Conditions (when) are not evaluated: a model shows when a rule for the caller could
// allow it.
func (p *Policy) Visible(pr *Principal, model string) bool {
	for _, r := range p.rules {
		if !r.matchesCaller(pr) {
			continue
		}
		if r.allowsModel(model) && r.allowsModelEndpoint() {
			return true
		}
		if r.When == nil {
			return false // this rule decides, and not for this model
		}
	}
	return p.allow
}

// VisibleTool reports whether a caller may call the MCP tool (its prefixed name), for
// tools/list. As for Visible, conditions are not evaluated: a tool shows when a rule for
// the caller could allow it.
func (p *Policy) VisibleTool(pr *Principal, tool string) bool {
	for _, r := range p.rules {
		if !r.matchesCaller(pr) {
			continue
		}
		if (r.Endpoints == nil && r.speaksOf(true) || r.Endpoints[endpointMCP]) && r.allowsTool(tool) {
			return true
		}
		if r.When == nil {
			return false // this rule decides, and not for this tool
		}
	}
	return p.allow
}
