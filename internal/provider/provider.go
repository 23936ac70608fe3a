// Package provider defines what a provider adapter does: turn an Exchange into one upstream
// request in the backend's wire format, and turn the upstream's answer back into the
// client's wire format while recording usage on the Exchange. Each wire schema lives in its
// own subpackage; provider quirks stay there, out of the core.
package provider

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/exchange"
)

// Target is where one attempt goes.
type Target struct {
	// BaseURL is the Backend's base URL (scheme, host, base path); built from the Backend
	// alone, never from the request.
	BaseURL *url.URL
	// Model is the model name to send upstream.
	Model string
}

// Adapter speaks one upstream wire schema. An adapter takes requests in the OpenAI wire
// (ex.Body is an OpenAI request for ex.Endpoint) and answers in it; an adapter that also
// Speaks another client wire natively (the Anthropic adapter and /v1/messages) takes and
// answers that wire unchanged when ex.Ingress is it. Adapters are built per Backend and are
// safe for concurrent use.
type Adapter interface {
	// Speaks reports whether requests and answers in client wire w pass through this
	// adapter natively. Every adapter speaks apierr.OpenAI.
	Speaks(w apierr.Wire) bool
	// NewRequest builds the upstream request for one attempt. It must not set credentials:
	// the egress transport does. A request the upstream cannot serve (an endpoint the
	// provider lacks, a model name that cannot go into a URL) is an *apierr.Error.
	NewRequest(ctx context.Context, ex *exchange.Exchange, t Target) (*http.Request, error)
	// Complete takes a whole answer (not streamed, or an error status) and returns what
	// the client gets, recording usage and generated text on ex. Error statuses become
	// apierr.FromUpstream errors in the client's wire (OpenAI pass-through aside).
	Complete(ex *exchange.Exchange, status int, header http.Header, body []byte) (Answer, error)
	// Stream decodes a streamed 2xx answer into client events (SSE, in the client's
	// wire), recording usage and generated text on ex as they pass.
	Stream(ex *exchange.Exchange, header http.Header, body io.Reader) Stream
}

// Answer is a whole answer as the client receives it.
type Answer struct {
	Status int
	// Header holds headers to set in addition to the upstream's (e.g. Retry-After).
	Header http.Header
	Body   []byte
}

// Stream yields a streamed answer as client-ready events.
type Stream interface {
	// Next returns the next event's bytes, valid until the next call, or io.EOF at the
	// end of the stream.
	Next() ([]byte, error)
	// Close releases the stream's buffers; it does not close the upstream body.
	Close()
}

// hopHeaders are connection-level headers that never cross a proxy.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// dropHeaders are never forwarded upstream: the client's credentials (egress's list) and
// what the gateway sets itself.
var dropHeaders = func() map[string]bool {
	m := map[string]bool{
		"Host": true, "Content-Length": true, "Accept-Encoding": true,
		"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	}
	for _, h := range egress.CredentialHeaders {
		m[h] = true
	}
	return m
}()

// ForwardHeaders copies the client's headers that may go upstream into dst. The value
// slices are shared, not copied: the upstream request is built fresh for each attempt.
func ForwardHeaders(dst, src http.Header) {
	var connTokens string
	if c := src["Connection"]; len(c) > 0 {
		connTokens = strings.Join(c, ",")
	}
	for k, vv := range src {
		if hopHeaders[k] || dropHeaders[k] {
			continue
		}
		if connTokens != "" && listed(connTokens, k) {
			continue
		}
		dst[k] = vv
	}
}

// ResponseHeaders copies an upstream answer's headers that may reach the client.
func ResponseHeaders(dst, src http.Header) {
	for k, vv := range src {
		if hopHeaders[k] || k == "Content-Length" || k == "Set-Cookie" {
			continue
		}
		if k == "X-Request-Id" {
			dst["X-Upstream-Request-Id"] = vv
			continue
		}
		dst[k] = vv
	}
}

func listed(tokens, name string) bool {
	for t := range strings.SplitSeq(tokens, ",") {
		if strings.EqualFold(strings.TrimSpace(t), name) {
			return true
		}
	}
	return false
}

// SafePathSegment reports whether a name (a model, a deployment) can go into a URL path
// as one segment without escaping or steering the request elsewhere: letters, digits and
// - _ . : @ only, and never "." or "..".
func SafePathSegment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '@') {
			return false
		}
	}
	return !strings.Contains(s, "..")
}
