// Package anthropic is the adapter for Anthropic's Messages API, on api.anthropic.com or as
// Claude on Vertex AI (rawPredict/streamRawPredict). It speaks two client wires:
//
//   - Anthropic (/v1/messages and /v1/messages/count_tokens): the client's bytes go upstream
//     unchanged except for spliced members (the upstream model name; on Vertex, no model and
//     an anthropic_version), and answers come back unchanged. Usage and text are read on
//     the way.
//   - OpenAI chat completions: the request is translated into a Messages request and the
//     answer, whole or streamed, back into a chat completion.
//
// The package also holds the conversions the gateway needs when an Anthropic client's
// request goes to a backend that speaks only OpenAI: ChatRequest, MessagesAnswer,
// MessagesStream and ErrorFromOpenAI.
//
// Translation decisions (OpenAI ingress):
//
//   - max_tokens is required by Anthropic; a request without max_tokens or
//     max_completion_tokens gets Options.DefaultMaxTokens (4096, which every Claude model
//     accepts).
//   - response_format json_schema with strict true becomes Anthropic's structured output
//     (output_config.format), which constrains decoding as OpenAI's strict mode does and
//     has the same schema restrictions; without strict, and for json_object, a system
//     instruction asks for JSON only (Anthropic has no schema-less JSON mode, and the old
//     assistant "{" prefill is rejected by recent models). A function tool with strict
//     true keeps strict. Models without structured outputs reject both with a 400.
//   - temperature is clamped to Anthropic's range [0, 1] (OpenAI allows up to 2).
//   - parallel_tool_calls false becomes disable_parallel_tool_use; user becomes
//     metadata.user_id.
//   - thinking, redacted_thinking and server-tool blocks in an answer are dropped: the
//     chat completion wire has no place for them. reasoning_effort, seed, penalties and
//     logprobs have no Messages equivalent and are ignored.
//   - Usage: Anthropic reports input_tokens without cache reads and writes; Sluice's
//     InputTokens and prompt_tokens are the whole prompt (input_tokens +
//     cache_read_input_tokens + cache_creation_input_tokens), as OpenAI counts it, with
//     the cache parts in CachedInputTokens/cached_tokens and
//     CacheCreationTokens/cache_creation_tokens.
package anthropic

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
)

// DefaultVersion is the anthropic-version header sent when Options.Version is empty.
const DefaultVersion = "2023-06-01"

// DefaultMaxTokens is the max_tokens an OpenAI request without a limit gets by default.
const DefaultMaxTokens = 4096

// VertexVersion is the anthropic_version Vertex AI requires in the body.
const VertexVersion = "vertex-2023-10-16"

// Options configure an Adapter.
type Options struct {
	// Version is the anthropic-version header (default DefaultVersion). An Anthropic
	// client's own header wins: it knows the wire it speaks.
	Version string
	// DefaultMaxTokens is used when an OpenAI request sets no max_tokens, since Anthropic
	// requires one (default DefaultMaxTokens).
	DefaultMaxTokens int64
	// Vertex, when set, sends requests to Claude on Vertex AI instead.
	Vertex *VertexOptions
}

// VertexOptions locate Claude on Vertex AI.
type VertexOptions struct {
	Project, Location string
}

// Adapter is the Anthropic adapter. Build it with New.
type Adapter struct {
	version    []string
	maxTokens  int64
	vertex     bool
	vertexPath string // "/v1/projects/P/locations/L/publishers/anthropic/models/"
}

var _ provider.Adapter = (*Adapter)(nil)

// New returns an Adapter for o.
func New(o Options) *Adapter {
	a := &Adapter{version: []string{o.Version}, maxTokens: o.DefaultMaxTokens}
	if o.Version == "" {
		a.version[0] = DefaultVersion
	}
	if a.maxTokens <= 0 {
		a.maxTokens = DefaultMaxTokens
	}
	if v := o.Vertex; v != nil {
		a.vertex = true
		a.vertexPath = "/v1/projects/" + url.PathEscape(v.Project) + "/locations/" + url.PathEscape(v.Location) + "/publishers/anthropic/models/"
	}
	return a
}

// Speaks implements provider.Adapter.
func (a *Adapter) Speaks(w apierr.Wire) bool { return w == apierr.OpenAI || w == apierr.Anthropic }

// native reports whether ex.Body is an Anthropic request (else it is an OpenAI chat one).
func native(ex *exchange.Exchange) bool {
	return ex.Endpoint == exchange.EndpointMessages || ex.Endpoint == exchange.EndpointCountTokens
}

var (
	jsonContentType = []string{"application/json"}
	eventStream     = []string{"text/event-stream"}
)

func badRequest(msg string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: msg}
}

// NewRequest implements provider.Adapter.
func (a *Adapter) NewRequest(ctx context.Context, ex *exchange.Exchange, t provider.Target) (*http.Request, error) {
	var body []byte
	var err error
	switch {
	case native(ex):
		if ex.Endpoint == exchange.EndpointCountTokens && a.vertex {
			return nil, badRequest("Token counting is not supported by this model's backend.")
		}
		body, err = a.nativeBody(ex, t.Model)
	case ex.Endpoint == exchange.EndpointChat:
		body, err = a.translateRequest(ex, t.Model)
	default:
		return nil, badRequest("This endpoint is not supported by Anthropic.")
	}
	if err != nil {
		return nil, err
	}
	u := *t.BaseURL
	u.RawPath = ""
	switch {
	case a.vertex:
		if !validModel(t.Model) {
			return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "model", Message: "The model name cannot be used with this model's backend."}
		}
		method := ":rawPredict"
		if ex.Stream {
			method = ":streamRawPredict"
		}
		u.Path = joinPath(u.Path, a.vertexPath+t.Model+method)
	case ex.Endpoint == exchange.EndpointCountTokens:
		u.Path = joinPath(u.Path, "/v1/messages/count_tokens")
	default:
		u.Path = joinPath(u.Path, "/v1/messages")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.ForwardHeaders(req.Header, ex.Header)
	req.Header["Content-Type"] = jsonContentType
	switch {
	case a.vertex:
		// Vertex takes the version in the body; the header is not its API.
		delete(req.Header, "Anthropic-Version")
	case native(ex) && len(req.Header["Anthropic-Version"]) > 0:
		// the client's own version: it knows the wire it speaks
	default:
		req.Header["Anthropic-Version"] = a.version
	}
	if ex.Stream {
		req.Header["Accept"] = eventStream
	}
	if ex.ID != "" {
		req.Header["X-Request-Id"] = []string{ex.ID}
	}
	return req, nil
}

func joinPath(base, p string) string {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + p
}

// validModel reports whether a model name can go into a URL path as one segment without
// changing what the URL addresses. Vertex names look like "claude-sonnet-4@20250514".
func validModel(m string) bool {
	if m == "" || m == "." || len(m) > 256 {
		return false
	}
	for i := 0; i < len(m); i++ {
		switch c := m[i]; {
		case c <= ' ' || c >= 0x7f:
			return false // white space, control characters, non-ASCII
		case c == '/', c == '\\', c == '?', c == '#', c == '%', c == ':':
			// ':' would change the Vertex method (":rawPredict")
			return false
		case c == '.' && i+1 < len(m) && m[i+1] == '.':
			return false
		}
	}
	return true
}

// edit replaces body[start:end] with text.
type edit struct {
	start, end int
	text       []byte
}

// applyEdits returns body with the edits applied, in a new slice. Edits must not overlap.
func applyEdits(body []byte, edits []edit) []byte {
	slices.SortStableFunc(edits, func(x, y edit) int {
		if x.start != y.start {
			return x.start - y.start
		}
		return x.end - y.end
	})
	n := len(body)
	for _, e := range edits {
		n += len(e.text) - (e.end - e.start)
	}
	out := make([]byte, 0, n)
	prev := 0
	for _, e := range edits {
		out = append(out, body[prev:e.start]...)
		out = append(out, e.text...)
		prev = e.end
	}
	return append(out, body[prev:]...)
}

// keyIs compares a member's key, decoded, with name.
func keyIs(data []byte, m jsonscan.Member, name string) bool {
	k := m.Key(data)
	if bytes.IndexByte(k, '\\') < 0 {
		return string(k) == name
	}
	var scratch [64]byte
	d, ok := jsonscan.AppendUnquoted(scratch[:0], data[m.KeyStart:m.KeyEnd])
	return ok && string(d) == name
}

var vertexVersionJSON = []byte(strconv.Quote(VertexVersion))

// nativeBody is an Anthropic client's body as it goes upstream: unchanged but for the
// model (renamed to model, or removed on Vertex) and, on Vertex, anthropic_version.
func (a *Adapter) nativeBody(ex *exchange.Exchange, model string) ([]byte, error) {
	body := ex.Body
	if !a.vertex {
		if model == "" || model == ex.Model && !ex.BodyMutated {
			return body, nil
		}
		// the gateway found the model at ingress; find it again only if the body changed
		if sp := ex.Spans.Model; !ex.BodyMutated && !sp.Empty() {
			return applyEdits(body, []edit{{sp.Start, sp.End, quote(model)}}), nil
		}
	}
	var (
		mdl, ver, prev, prevOfModel jsonscan.Member
		hasModel, hasVer            bool
		afterModel                  = -1
		members                     int
	)
	err := jsonscan.Object(body, func(m jsonscan.Member) bool {
		members++
		if hasModel && afterModel < 0 {
			afterModel = m.KeyStart
		}
		switch {
		case !hasModel && keyIs(body, m, "model"):
			mdl, hasModel, prevOfModel = m, true, prev
		case !hasVer && keyIs(body, m, "anthropic_version"):
			ver, hasVer = m, true
		}
		prev = m
		return true
	})
	if err != nil {
		return nil, badRequest("The request body is not a valid JSON object.")
	}
	open := bytes.IndexByte(body, '{') + 1
	if !a.vertex {
		if hasModel {
			if s, ok := jsonscan.String(mdl.Value(body)); ok && s == model {
				return body, nil
			}
			return applyEdits(body, []edit{{mdl.ValueStart, mdl.ValueEnd, quote(model)}}), nil
		}
		text := append([]byte(`"model":`), quote(model)...)
		if members > 0 {
			text = append(text, ',')
		}
		return applyEdits(body, []edit{{open, open, text}}), nil
	}
	var edits [2]edit
	n := 0
	if hasModel {
		switch {
		case afterModel >= 0: // cut through the next key, taking the comma
			edits[n] = edit{mdl.KeyStart, afterModel, nil}
		case prevOfModel.KeyEnd > 0: // the last member: cut from the previous value's end
			edits[n] = edit{prevOfModel.ValueEnd, mdl.ValueEnd, nil}
		default:
			edits[n] = edit{mdl.KeyStart, mdl.ValueEnd, nil}
		}
		n++
		members--
	}
	if hasVer {
		edits[n] = edit{ver.ValueStart, ver.ValueEnd, vertexVersionJSON}
	} else {
		text := append([]byte(`"anthropic_version":`), vertexVersionJSON...)
		if members > 0 {
			text = append(text, ',')
		}
		edits[n] = edit{open, open, text}
	}
	n++
	return applyEdits(body, edits[:n]), nil
}

func quote(s string) []byte {
	b, _ := jsonMarshal(s)
	return b
}
