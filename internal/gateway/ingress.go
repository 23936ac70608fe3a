package gateway

import (
	"github.com/sluice-gateway/sluice/internal/apierr"
	"net/http"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

// decodeRequest reads, in one pass over the body, the few fields of an OpenAI request the
// gateway needs, and the spans adapters splice. It rejects what no upstream should see:
// invalid JSON, a missing model, and duplicate keys among the fields the gateway acts on
// (upstream parsers disagree on which duplicate wins, so routing on one and forwarding the
// other would let a client pick a model the gateway did not route).
func decodeRequest(ex *exchange.Exchange, body []byte) *apierr.Error {
	var (
		seen    uint8
		dup     string
		badType string
		has     struct{ messages, prompt, input bool }
		scratch [32]byte
	)
	const (
		fModel = 1 << iota
		fStream
		fStreamOptions
		fMaxTokens
	)
	once := func(bit uint8, name string) {
		if seen&bit != 0 && dup == "" {
			dup = name
		}
		seen |= bit
	}
	err := jsonscan.Object(body, func(m jsonscan.Member) bool {
		key := m.Key(body)
		for _, c := range key {
			if c == '\\' {
				// an escaped key: compare it decoded (rare, so the allocation is fine)
				key, _ = jsonscan.AppendUnquoted(scratch[:0], body[m.KeyStart:m.KeyEnd])
				break
			}
		}
		v := m.Value(body)
		switch string(key) {
		case "model":
			once(fModel, "model")
			s, ok := jsonscan.String(v)
			if !ok {
				badType = "model"
				return false
			}
			ex.Model = s
			ex.Spans.Model = exchange.Span{Start: m.ValueStart, End: m.ValueEnd}
		case "stream":
			once(fStream, "stream")
			if jsonscan.IsNull(v) {
				break
			}
			b, ok := jsonscan.Bool(v)
			if !ok {
				badType = "stream"
				return false
			}
			ex.Stream = b
		case "stream_options":
			once(fStreamOptions, "stream_options")
			ex.Spans.StreamOptions = exchange.Span{Start: m.ValueStart, End: m.ValueEnd}
			if iu, ok := jsonscan.Get(v, "include_usage"); ok {
				ex.IncludeUsage, _ = jsonscan.Bool(iu)
			}
		case "max_tokens", "max_completion_tokens":
			once(fMaxTokens, "max_tokens")
			if !jsonscan.IsNull(v) {
				n, ok := jsonscan.Int(v)
				if !ok || n < 0 {
					badType = string(key)
					return false
				}
				ex.MaxTokens = n
			}
		case "messages":
			has.messages = len(v) > 0 && v[0] == '['
			if !has.messages && !jsonscan.IsNull(v) {
				badType = "messages"
				return false
			}
		case "prompt":
			has.prompt = !jsonscan.IsNull(v)
		case "input":
			has.input = !jsonscan.IsNull(v)
		}
		return true
	})
	switch {
	case badType != "":
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: badType, Message: "Invalid type or value for '" + badType + "'."}
	case err == jsonscan.ErrNotObject:
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The request body must be a JSON object."}
	case err != nil:
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The request body is not valid JSON."}
	case dup != "":
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: dup, Message: "Duplicate key '" + dup + "' in the request body."}
	case ex.Model == "":
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "model", Message: "You must provide a model parameter."}
	}
	switch ex.Endpoint {
	case exchange.EndpointChat:
		if !has.messages {
			return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "messages", Message: "Missing required parameter: 'messages'."}
		}
	case exchange.EndpointCompletions:
		if !has.prompt {
			return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "prompt", Message: "Missing required parameter: 'prompt'."}
		}
	case exchange.EndpointMessages, exchange.EndpointCountTokens:
		if !has.messages {
			return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "messages", Message: "messages: Field required"}
		}
		if ex.Endpoint == exchange.EndpointMessages && seen&fMaxTokens == 0 {
			return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "max_tokens", Message: "max_tokens: Field required"}
		}
		if ex.Endpoint == exchange.EndpointCountTokens {
			ex.Stream = false
		}
	case exchange.EndpointEmbeddings:
		if !has.input {
			return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "input", Message: "Missing required parameter: 'input'."}
		}
		ex.Stream = false // embeddings never stream
	}
	ex.Spans.End = lastBrace(body)
	return nil
}

func lastBrace(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '}' {
			return i
		}
	}
	return 0
}
