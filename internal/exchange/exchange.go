// Package exchange defines the Exchange: one client request and its answer as they move
// through the gateway's stages. Every stage reads and writes what it needs here, so stages
// never reach into each other's packages. It holds data, not behaviour.
package exchange

import (
	"net/http"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
)

// Endpoint is the API a client called.
type Endpoint uint8

// Endpoints.
const (
	EndpointUnknown Endpoint = iota
	EndpointChat
	EndpointCompletions
	EndpointEmbeddings
	EndpointModels
	// EndpointMessages is Anthropic's /v1/messages.
	EndpointMessages
	// EndpointCountTokens is Anthropic's /v1/messages/count_tokens.
	EndpointCountTokens
	// EndpointMCP is one JSON-RPC message to an MCPRoute.
	EndpointMCP
)

var endpointNames = [...]string{"unknown", "chat", "completions", "embeddings", "models", "messages", "count_tokens", "mcp"}

// String is the endpoint's name as used in configuration and logs ("chat").
func (e Endpoint) String() string {
	if int(e) < len(endpointNames) {
		return endpointNames[e]
	}
	return "unknown"
}

// RuleName is the endpoint as access and rate-limit rules name it: count_tokens belongs
// to messages.
func (e Endpoint) RuleName() string {
	if e == EndpointCountTokens {
		return EndpointMessages.String()
	}
	return e.String()
}

// Usage is what an answer cost, in tokens.
type Usage struct {
	InputTokens         int64
	OutputTokens        int64
	TotalTokens         int64
	CachedInputTokens   int64
	CacheCreationTokens int64
	ReasoningTokens     int64
	// Reported is true when the upstream reported usage.
	Reported bool
	// Estimated is true when the gateway counted the tokens itself.
	Estimated bool
}

// Exchange is one request through the gateway.
type Exchange struct {
	// ID is the request id (X-Request-Id).
	ID string
	// Endpoint is what the current attempt asks of the upstream. It differs from
	// IngressEndpoint when the request was translated (/v1/messages to a non-Anthropic
	// backend runs as chat).
	Endpoint        Endpoint
	IngressEndpoint Endpoint
	// Ingress is the client's wire format; answers and errors go back in it.
	Ingress apierr.Wire
	Started time.Time

	// Header is the client's request header. Read-only.
	Header http.Header

	// IngressBody is the body as the client sent it (in the Ingress wire).
	IngressBody []byte
	// Translated caches IngressBody translated to the OpenAI wire, for attempts on
	// backends that do not speak the ingress wire.
	Translated []byte

	// Body is the request body the current attempt sends from (IngressBody, or
	// Translated); a stage that changes it sets BodyMutated, which also invalidates Spans.
	Body        []byte
	BodyMutated bool
	// Spans locate members of Body found at ingress, so adapters can splice the body
	// without scanning it again. A zero Span means absent.
	Spans struct {
		Model, StreamOptions Span
		// End is the offset of the body object's closing brace.
		End int
	}

	// The request fields the gateway needs, decoded once at ingress.
	Model     string
	Stream    bool
	MaxTokens int64
	// IncludeUsage is whether the client itself asked for usage in the stream.
	IncludeUsage bool

	// Principal is the authenticated caller (nil when no access policy is configured).
	Principal *Principal

	// MCP is the JSON-RPC call of an MCP request (EndpointMCP), else nil.
	MCP *MCPCall

	// Regions, when not nil, restricts the Backends this caller may reach (set by access
	// control); the route's own regions apply as well.
	Regions map[string]bool

	// Routing decisions.
	Route         string // Kind/namespace/name of the ModelRoute
	Backend       string // Kind/namespace/name of the Backend that answered (or last tried)
	Provider      string // that Backend's schema (OpenAI, Anthropic, ...)
	UpstreamModel string
	// Price is what the answering Backend's tokens cost (nil: no price configured);
	// CostUSD is the request's cost from it, once usage is settled.
	Price    *Price
	CostUSD  float64
	Attempts int

	// The answer.
	Status    int
	Code      string // stable error code when the gateway or upstream failed the request
	FirstByte time.Duration
	Usage     Usage
	// Cache is "hit", "semantic_hit" or "miss" when a CachePolicy applied, else empty;
	// CachePolicy names the policy, and CacheSaved is what a hit did not spend upstream.
	Cache       string
	CachePolicy string
	CacheSaved  Usage
	// CacheTokens are the tokens a semantic cache spent embedding the question.
	CacheTokens int64
	// Endpoint of a pool Backend ("host:port") the answer came from, else empty.
	PoolEndpoint string
	// Output accumulates the answer's generated text as delivered, raw JSON-escaped, so
	// usage can be estimated when the upstream reports none.
	Output []byte
}

// MCPCall is what access rules, rate limits and logs see of one MCP request.
type MCPCall struct {
	// Method is the JSON-RPC method (tools/call, tools/list, initialize, ...).
	Method string
	// Tool is the tool's name as the client sees it (with its server's prefix) for
	// tools/call, else empty; Prompt likewise for prompts/get.
	Tool, Prompt string
	// Server is the Backend the call went to ("Backend/ns/name"), empty for a call the
	// gateway answered itself or fanned out to every server.
	Server string
	// Arguments is the raw JSON of params.arguments (tools/call, prompts/get), or nil.
	Arguments []byte
	// IsError is set when a tool answered with isError: true.
	IsError bool
}

// Name is the call's tool, else its prompt, else "".
func (c *MCPCall) Name() string {
	if c.Tool != "" {
		return c.Tool
	}
	return c.Prompt
}

// Price is a model's price in US dollars per million tokens.
type Price struct {
	Input, Output, CachedInput float64
}

// Cost is what usage costs at p: cached input at its own price, the rest of the input
// and the output at theirs.
func (p *Price) Cost(u Usage) float64 {
	if p == nil {
		return 0
	}
	cached := min(u.CachedInputTokens, u.InputTokens)
	return (float64(u.InputTokens-cached)*p.Input + float64(cached)*p.CachedInput + float64(u.OutputTokens)*p.Output) / 1e6
}

// Span is a byte range [Start, End) of a body.
type Span struct{ Start, End int }

// Empty reports whether the span is absent.
func (s Span) Empty() bool { return s.End == 0 }

// Reset clears the Exchange for reuse, keeping the Output buffer's storage.
func (ex *Exchange) Reset() {
	out := ex.Output[:0]
	*ex = Exchange{}
	ex.Output = out
}

// Principal is an authenticated caller.
type Principal struct {
	Subject string
	Team    string
	Roles   []string
	// Claims are a JWT's claims (nil for API keys).
	Claims map[string]any
	// Method is how the caller was authenticated: api_key, jwt or anonymous.
	Method string
	// Key is the APIKey resource ("APIKey/ns/name") when Method is api_key.
	Key string
}
