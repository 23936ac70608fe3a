package gateway

import (
	"net/http"
	"strconv"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/anthropic"
	"github.com/sluice-gateway/sluice/internal/tokens"
)

// Clients of /v1/messages speak Anthropic's wire. An adapter that speaks it too (the
// Anthropic one) gets their bytes unchanged; any other gets the request translated to the
// OpenAI wire, and its answer is translated back. The translation is done once per request
// and kept for later attempts.

// prepare sets ex up for an attempt through adapter a.
func prepare(ex *exchange.Exchange, a provider.Adapter) *apierr.Error {
	if ex.Ingress == apierr.OpenAI {
		return nil
	}
	if a.Speaks(ex.Ingress) {
		if ex.Endpoint != ex.IngressEndpoint { // an earlier attempt ran translated
			ex.Endpoint, ex.Body, ex.BodyMutated, ex.IncludeUsage = ex.IngressEndpoint, ex.IngressBody, true, false
		}
		return nil
	}
	if ex.Translated == nil {
		body, err := anthropic.ChatRequest(ex.IngressBody)
		if err != nil {
			if ae, ok := err.(*apierr.Error); ok {
				return ae
			}
			return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The request could not be translated for this model's backend."}
		}
		ex.Translated = body
	}
	ex.Endpoint, ex.Body, ex.BodyMutated = exchange.EndpointChat, ex.Translated, true
	// The translated request asks for stream usage itself; the OpenAI answer must keep it,
	// since the Anthropic stream reports output tokens at its end.
	ex.IncludeUsage = true
	return nil
}

// translated reports whether the attempt through a runs on a translated request.
func translated(ex *exchange.Exchange, a provider.Adapter) bool {
	return ex.Ingress != apierr.OpenAI && !a.Speaks(ex.Ingress)
}

// clientAnswer turns an OpenAI answer into the client's wire.
func clientAnswer(ex *exchange.Exchange, a provider.Adapter, ans provider.Answer) provider.Answer {
	if !translated(ex, a) {
		return ans
	}
	if ans.Status >= 300 {
		e := anthropic.ErrorFromOpenAI(ans.Status, ans.Body)
		for k, v := range e.Header {
			if ans.Header == nil {
				ans.Header = http.Header{}
			}
			ans.Header[k] = v
		}
		ans.Status, ans.Body = e.Status, e.Body(apierr.Anthropic)
		return ans
	}
	body, err := anthropic.MessagesAnswer(ans.Body, ex.Model)
	if err != nil {
		e := &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream answer could not be translated."}
		ans.Status, ans.Body = e.Status, e.Body(apierr.Anthropic)
		return ans
	}
	ans.Body = body
	return ans
}

// clientStream turns an OpenAI stream into the client's wire.
func clientStream(ex *exchange.Exchange, a provider.Adapter, s provider.Stream) provider.Stream {
	if !translated(ex, a) {
		return s
	}
	return anthropic.MessagesStream(s, ex.Model)
}

// countTokensLocally answers /v1/messages/count_tokens for a backend that cannot: the
// prompt counted with the model's tokenizer (an estimate for non-OpenAI models).
func countTokensLocally(ex *exchange.Exchange) []byte {
	n, err := tokens.PromptTokens("chat", ex.UpstreamModel, ex.Translated)
	if err != nil {
		n = 0
	}
	return []byte(`{"input_tokens":` + strconv.Itoa(n) + `}`)
}

// streamError renders an error event ending a stream, in the client's wire.
func streamError(ex *exchange.Exchange, e *apierr.Error) []byte {
	if ex.Ingress == apierr.Anthropic {
		return append(append([]byte("event: error\ndata: "), e.Body(apierr.Anthropic)...), '\n', '\n')
	}
	return append(append([]byte("data: "), e.Body(apierr.OpenAI)...), '\n', '\n')
}
