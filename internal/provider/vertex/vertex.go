// Package vertex is the adapter for Gemini models on Google Cloud Vertex AI. Clients speak
// the OpenAI wire; chat requests are translated to generateContent (streamGenerateContent
// with alt=sse when streaming) and embeddings requests to predict, and the answers are
// translated back, with usage and generated text recorded on the Exchange. Credentials are
// never set here: the egress transport adds the OAuth token.
//
// Claude models on Vertex speak Anthropic's Messages API and are not served here; the
// caller dispatches them elsewhere (see IsAnthropicModel).
//
// Translation choices:
//   - system and developer messages, wherever they occur, form the systemInstruction, in
//     order; consecutive messages of one Gemini role are merged into one content.
//   - Tool call ids are "call_<n>", numbered within each answer. A tool message is matched
//     to the most recent earlier call with its id, so reused ids across turns are fine.
//   - Gemini's thought signatures have no place in the OpenAI wire and are dropped;
//     replayed function calls to Gemini 3 and later carry Google's documented
//     skip_thought_signature_validator value instead, as those models require one.
//   - Image URLs other than data URLs go as fileData, with the media type guessed from
//     the extension (JPEG when unknown); Vertex fetches them (https, http, gs).
//   - Schemas are rewritten to Vertex's OpenAPI subset (see convertSchema).
//   - completion_tokens includes thinking tokens (reported as reasoning_tokens), and
//     total_tokens is prompt_tokens + completion_tokens.
//
// Not supported: the completions endpoint, n > 1, logprobs, audio and file content parts,
// tools other than functions, token-array embedding inputs. reasoning_effort,
// parallel_tool_calls, user and metadata are ignored, as are thought summaries in answers.
package vertex

import (
	"bytes"
	"context"
	"net/http"
	"strings"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

// Options place an Adapter's requests. Both are validated by the caller: they go into the
// URL path unescaped.
type Options struct {
	Project  string
	Location string
}

// Adapter is the Vertex AI Gemini adapter. It is safe for concurrent use.
type Adapter struct {
	// prefix is "/v1/projects/{project}/locations/{location}/publishers/google/models/".
	prefix string
}

var _ provider.Adapter = (*Adapter)(nil)

// New returns an Adapter for one project and location.
func New(o Options) *Adapter {
	return &Adapter{prefix: "/v1/projects/" + o.Project + "/locations/" + o.Location + "/publishers/google/models/"}
}

// IsAnthropicModel reports whether a model name is one of Anthropic's Claude models, which
// Vertex serves through a different API than Gemini's.
func IsAnthropicModel(model string) bool {
	return len(model) >= 6 && strings.EqualFold(model[:6], "claude")
}

// Speaks implements provider.Adapter: only the OpenAI wire.
func (*Adapter) Speaks(w apierr.Wire) bool { return w == apierr.OpenAI }

// NewRequest implements provider.Adapter.
func (a *Adapter) NewRequest(ctx context.Context, ex *exchange.Exchange, t provider.Target) (*http.Request, error) {
	model := t.Model
	if model == "" {
		model = ex.Model
	}
	if err := checkModel(model); err != nil {
		return nil, err
	}
	var (
		body   []byte
		method string
		err    error
	)
	switch ex.Endpoint {
	case exchange.EndpointChat:
		body, err = chatBody(ex.Body, model)
		method = ":generateContent"
		if ex.Stream {
			method = ":streamGenerateContent"
		}
	case exchange.EndpointEmbeddings:
		body, err = embeddingsBody(ex.Body)
		method = ":predict"
	default:
		return nil, badRequest("", "This endpoint is not available for Gemini models on Vertex AI.")
	}
	if err != nil {
		return nil, err
	}
	u := *t.BaseURL
	u.Path = strings.TrimRight(u.Path, "/") + a.prefix + model + method
	u.RawPath = ""
	u.Fragment = ""
	if ex.Endpoint == exchange.EndpointChat && ex.Stream {
		// Without alt=sse Vertex streams one JSON array, which cannot be read incrementally.
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += "alt=sse"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.ForwardHeaders(req.Header, ex.Header)
	req.Header["Content-Type"] = jsonContentType
	if ex.Endpoint == exchange.EndpointChat && ex.Stream {
		req.Header["Accept"] = eventStream
	} else {
		req.Header["Accept"] = jsonContentType
	}
	if ex.ID != "" {
		req.Header["X-Request-Id"] = []string{ex.ID}
	}
	return req, nil
}

var (
	jsonContentType = []string{"application/json"}
	eventStream     = []string{"text/event-stream"}
)

// checkModel keeps a model name to one path segment that cannot change the method or the
// resource it names. It accepts only the characters Google's model names use (letters,
// digits, '-', '_', '.', '@'), which excludes '/', '?', '#', '%', ':', white space and
// control characters; ".." is refused too.
func checkModel(model string) error {
	bad := model == "" || len(model) > 256 || strings.Contains(model, "..")
	for i := 0; i < len(model) && !bad; i++ {
		c := model[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '@':
		default:
			bad = true
		}
	}
	if bad {
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "model", Message: "The model name cannot be sent to Vertex AI: it may contain only letters, digits, '-', '_', '.' and '@'."}
	}
	return nil
}

func badRequest(param, msg string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: param, Message: msg}
}
