package gateway

import (
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/picker"
)

// pickEndpoint chooses the pool endpoint of one attempt: the one a trusted endpoint
// picker named in x-gateway-destination-endpoint when the Backend honours it, else the
// pool's strategy, with the prompt prefix's hash for prefix affinity.
func pickEndpoint(ex *exchange.Exchange, up *egress.Upstream, failed []*picker.Endpoint) *picker.Endpoint {
	r := picker.Request{Exclude: failed}
	if up.HonorDestination {
		if v := ex.Header["X-Gateway-Destination-Endpoint"]; len(v) > 0 {
			r.Preferred = v[0]
		}
	}
	if up.PrefixBytes > 0 {
		r.PrefixHash, r.HasPrefix = prefixHash(ex.Endpoint, ex.Body, up.PrefixBytes)
	}
	ep, _ := up.Pool.Pick(r)
	return ep
}

// prefixHash hashes the start of a request's prompt: the texts up to and including the
// first user message (the system prompt, few-shot examples, the question that opened
// the conversation), each with its role, at most n bytes of raw JSON text. Later turns of
// a conversation repeat that start, so the whole conversation stays on the server whose
// KV cache holds it; field order and whitespace around the texts do not matter.
func prefixHash(ep exchange.Endpoint, body []byte, n int) (uint64, bool) {
	var buf [32]content.Segment
	segs, err := content.Request(ep, body, buf[:0])
	if err != nil || len(segs) == 0 {
		return 0, false
	}
	h := picker.PrefixSeed
	user := false
	for _, s := range segs {
		if n <= 0 || user && s.Part != content.User {
			break
		}
		user = s.Part == content.User
		raw := s.Raw(body)
		raw = raw[1 : len(raw)-1] // without the quotes
		if len(raw) > n {
			raw = raw[:n]
		}
		h = picker.PrefixHash(h, []byte{byte(s.Part)})
		h = picker.PrefixHash(h, raw)
		n -= len(raw)
	}
	return h, true
}
