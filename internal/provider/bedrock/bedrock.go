// Package bedrock is the adapter for Amazon Bedrock's Converse API. Clients speak the
// OpenAI chat-completions wire; the adapter translates each request into a Converse
// (or ConverseStream) call and translates the answer back: whole answers into a
// chat.completion, streams from AWS's binary event-stream framing into OpenAI SSE chunks.
//
// It never handles credentials: the egress transport signs the request with SigV4 after
// NewRequest has built it, so the request must be complete (body, URL, headers) and must
// not be changed afterwards.
//
// Translation choices, where the two wires differ:
//   - system and developer messages become Converse's top-level system blocks, in order;
//     consecutive messages of one role are merged because Converse requires user and
//     assistant turns to alternate, and the first turn must be the user's.
//   - tool messages become toolResult blocks in a user turn; assistant tool_calls become
//     toolUse blocks.
//   - images must be base64 data: URLs (Converse takes bytes, it fetches nothing); image
//     links are refused with 400.
//   - tool_choice "required" is Converse's "any"; "none" has no Converse equivalent, so the
//     tools are left out. Converse refuses toolUse and toolResult blocks without a
//     toolConfig, so when the conversation holds tool calls but no tool may be called (none,
//     or no tools given) a placeholder tool that says not to call it is sent instead.
//   - response_format json_object and json_schema are served with a forced tool whose input
//     schema is the requested schema; the tool's input comes back as the message content
//     with finish_reason "stop". It cannot be combined with the client's own tools (400).
//   - seed, penalties, logprobs, user, reasoning_effort and parallel_tool_calls have no
//     Converse equivalent and are ignored; n > 1 is refused by chat.DecodeRequest.
//   - reasoning content, citations and other non-text blocks of an answer are dropped.
//   - usage: Converse's inputTokens leaves out prompt-cache reads and writes, so
//     prompt_tokens is inputTokens + cacheReadInputTokens + cacheWriteInputTokens, with the
//     reads as cached_tokens and the writes as cache_creation_tokens.
//   - errors take their status from the AWS error type where it is known (a
//     ThrottlingException is 429 whatever the HTTP status). In a stream, exception events
//     and undecodable framing become an OpenAI error event that ends the stream; a stream
//     that ends without messageStop does too. Only the body's own read errors are returned
//     from Next, for the gateway to handle.
package bedrock

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// Adapter is the Bedrock Converse adapter. It holds no per-request state and is safe for
// concurrent use.
type Adapter struct{}

// New returns a Bedrock adapter.
func New() *Adapter { return &Adapter{} }

var _ provider.Adapter = (*Adapter)(nil)

// Speaks implements provider.Adapter: only the OpenAI wire.
func (*Adapter) Speaks(w apierr.Wire) bool { return w == apierr.OpenAI }

var (
	jsonContentType = []string{"application/json"}
	eventStreamType = []string{"application/vnd.amazon.eventstream"}
)

// NewRequest implements provider.Adapter.
func (*Adapter) NewRequest(ctx context.Context, ex *exchange.Exchange, t provider.Target) (*http.Request, error) {
	if ex.Endpoint != exchange.EndpointChat {
		return nil, badRequest("", "This endpoint is not supported by Bedrock; only chat completions are.")
	}
	model := t.Model
	if model == "" {
		model = ex.Model
	}
	if err := checkModelID(model); err != nil {
		return nil, err
	}
	r, err := chat.DecodeRequest(ex.Body)
	if err != nil {
		return nil, err
	}
	cr, err := translate(r)
	if err != nil {
		return nil, err
	}
	body, err := marshal(cr)
	if err != nil {
		return nil, err
	}
	op := "/converse"
	if ex.Stream {
		op = "/converse-stream"
	}
	u := *t.BaseURL
	base, rawBase := strings.TrimRight(u.Path, "/"), strings.TrimRight(u.EscapedPath(), "/")
	u.Path = base + "/model/" + model + op
	// The escaped form is what goes on the wire and what SigV4 signs; without RawPath an
	// ARN's '/' would split the model id into path segments.
	u.RawPath = rawBase + "/model/" + url.PathEscape(model) + op
	u.Fragment = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	forwardHeaders(req.Header, ex.Header)
	req.Header["Content-Type"] = jsonContentType
	if ex.Stream {
		req.Header["Accept"] = eventStreamType
	} else {
		req.Header["Accept"] = jsonContentType
	}
	return req, nil
}

// forwardHeaders forwards the client's headers except X-Amz-*: that namespace belongs to
// the SigV4 signer (X-Amz-Date, X-Amz-Security-Token, X-Amz-Content-Sha256), and a
// client's values there would be signed as if they were the gateway's.
func forwardHeaders(dst, src http.Header) {
	provider.ForwardHeaders(dst, src)
	for k := range dst {
		if len(k) >= 6 && strings.EqualFold(k[:6], "X-Amz-") {
			delete(dst, k)
		}
	}
}

// checkModelID refuses model ids that cannot be one path segment. Ids hold '.', ':' and
// '-' (anthropic.claude-3-5-sonnet-20240620-v1:0); ARNs of inference profiles and
// provisioned models also hold '/', which is escaped.
func checkModelID(id string) error {
	if id == "" {
		return badRequest("model", "A model is required.")
	}
	isARN := isBedrockARN(id)
	bad := !utf8.ValidString(id) || strings.Contains(id, "..") || strings.ContainsAny(id, "?#%\\") ||
		(!isARN && strings.Contains(id, "/"))
	if !bad {
		for _, r := range id {
			if unicode.IsSpace(r) || unicode.IsControl(r) {
				bad = true
				break
			}
		}
	}
	if bad {
		return badRequest("model", "The model name cannot be used as a Bedrock model id.")
	}
	return nil
}

// isBedrockARN reports whether id looks like arn:<partition>:bedrock:<region>:<account>:<resource>.
func isBedrockARN(id string) bool {
	parts := strings.SplitN(id, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && strings.HasPrefix(parts[1], "aws") &&
		parts[2] == "bedrock" && parts[5] != ""
}

func badRequest(param, msg string) *apierr.Error {
	return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: param, Message: msg}
}
