package gateway

import (
	"bytes"
	"encoding/json"
	"github.com/sluice-gateway/sluice/internal/apierr"
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider/openai"
)

// FuzzDecodeRequest feeds arbitrary bodies to the ingress decoder and the OpenAI body
// splicer. Neither may panic; what the decoder accepts must be a JSON object whose model
// encoding/json reads the same way; and the spliced upstream body must be valid JSON with
// the upstream model, include_usage on for streams, and every other member unchanged.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"gpt-4o","messages":[],"stream":true}`,
		`{"model":"gpt-4o","messages":[],"stream":true,"stream_options":{"include_usage":false}}`,
		`{"model":"gpt-4o","messages":[],"stream":true,"stream_options":{}}`,
		`{"model":"gpt-4o","messages":[],"stream":true,"stream_options":null}`,
		`{"stream":true,"messages":[],"model":"x","max_tokens":12}`,
		`{"model":"a","messages":[],"model":"b"}`,
		`{"model":"caf\u00e9","messages":[]}`,
		`{"mod\u0065l":"x","messages":[]}`,
		`{"model":"x","prompt":"p","stream":true}`,
		` {"model" : "x" , "messages" : [ ] , "stream" : true } `,
		`[]`, `{`, `{"model":1}`, ``,
		`{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"stream":true}`,
	} {
		f.Add([]byte(s), uint8(exchange.EndpointChat))
	}
	f.Fuzz(func(t *testing.T, body []byte, ep uint8) {
		endpoints := [...]exchange.Endpoint{exchange.EndpointChat, exchange.EndpointCompletions, exchange.EndpointEmbeddings, exchange.EndpointMessages, exchange.EndpointCountTokens}
		ex := &exchange.Exchange{Endpoint: endpoints[int(ep)%len(endpoints)]}
		if err := decodeRequest(ex, body); err != nil {
			if err.Status != 400 || err.Code != apierr.CodeInvalidRequest {
				t.Fatalf("unexpected error %+v", err)
			}
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body encoding/json rejects: %v", err)
		}
		var model string
		if err := json.Unmarshal(m["model"], &model); err != nil || model != ex.Model {
			t.Fatalf("model %q, encoding/json says %q (%v)", ex.Model, model, err)
		}
		ex.Body = body
		out, err := openai.UpstreamBody(ex, "upstream/model")
		if err != nil {
			t.Fatalf("splice: %v", err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("spliced body is not JSON: %v\n%s", err, out)
		}
		if string(got["model"]) != `"upstream/model"` {
			t.Fatalf("model not replaced: %s", out)
		}
		if openai.WantsUsageInjection(ex) {
			// a map, not a struct: encoding/json matches struct fields case-insensitively,
			// upstream servers do not
			var so map[string]json.RawMessage
			if json.Unmarshal(got["stream_options"], &so); string(so["include_usage"]) != "true" {
				t.Fatalf("include_usage not set: %s", out)
			}
		}
		for k, v := range m {
			if k == "model" || k == "stream_options" {
				continue
			}
			if !bytes.Equal(bytes.TrimSpace(got[k]), bytes.TrimSpace(v)) {
				t.Fatalf("member %q changed: %s -> %s", k, v, got[k])
			}
		}
	})
}
