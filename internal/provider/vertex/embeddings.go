package vertex

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// embeddingRequest is the part of an OpenAI embeddings request that is translated; user
// and other members are dropped.
type embeddingRequest struct {
	Input          json.RawMessage `json:"input"`
	Dimensions     *int64          `json:"dimensions"`
	EncodingFormat *string         `json:"encoding_format"`
}

type (
	predictRequest struct {
		Instances  []predictInstance  `json:"instances"`
		Parameters *predictParameters `json:"parameters,omitempty"`
	}
	predictInstance struct {
		Content string `json:"content"`
	}
	predictParameters struct {
		OutputDimensionality int64 `json:"outputDimensionality"`
	}
	predictResponse struct {
		Predictions []struct {
			Embeddings struct {
				Values     []float32 `json:"values"`
				Statistics struct {
					// TokenCount is a JSON number that Vertex may write as 6.0.
					TokenCount float64 `json:"token_count"`
				} `json:"statistics"`
			} `json:"embeddings"`
		} `json:"predictions"`
	}
)

func decodeEmbeddingRequest(body []byte) (*embeddingRequest, error) {
	var r embeddingRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, badRequest("", "The request body does not match the embeddings schema.")
	}
	if f := r.EncodingFormat; f != nil && *f != "float" && *f != "base64" {
		return nil, badRequest("encoding_format", "encoding_format must be float or base64.")
	}
	return &r, nil
}

// embeddingsBody translates an OpenAI embeddings request into a predict request: one
// instance per input text. Token arrays have no Vertex counterpart.
func embeddingsBody(body []byte) ([]byte, error) {
	r, err := decodeEmbeddingRequest(body)
	if err != nil {
		return nil, err
	}
	var texts []string
	in := bytes.TrimSpace(r.Input)
	switch {
	case len(in) > 0 && in[0] == '"':
		var s string
		if json.Unmarshal(in, &s) != nil {
			return nil, badRequest("input", "input must be a string or an array of strings.")
		}
		texts = []string{s}
	case len(in) > 0 && in[0] == '[':
		if json.Unmarshal(in, &texts) != nil {
			return nil, badRequest("input", "Token arrays are not supported for Vertex AI embeddings: send input as text.")
		}
	default:
		return nil, badRequest("input", "input must be a string or an array of strings.")
	}
	if len(texts) == 0 {
		return nil, badRequest("input", "input must not be empty.")
	}
	p := predictRequest{Instances: make([]predictInstance, len(texts))}
	for i, t := range texts {
		p.Instances[i].Content = t
	}
	if r.Dimensions != nil {
		p.Parameters = &predictParameters{OutputDimensionality: *r.Dimensions}
	}
	return json.Marshal(p)
}

type (
	embeddingList struct {
		Object string      `json:"object"`
		Data   []embedding `json:"data"`
		Model  string      `json:"model"`
		Usage  struct {
			PromptTokens int64 `json:"prompt_tokens"`
			TotalTokens  int64 `json:"total_tokens"`
		} `json:"usage"`
	}
	embedding struct {
		Object string `json:"object"`
		Index  int    `json:"index"`
		// Embedding is []float32, or a base64 string of little-endian float32s.
		Embedding any `json:"embedding"`
	}
)

func embeddingsAnswer(ex *exchange.Exchange, body []byte) ([]byte, error) {
	var pr predictResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return nil, err
	}
	b64 := false
	if r, err := decodeEmbeddingRequest(ex.Body); err == nil && r.EncodingFormat != nil {
		b64 = *r.EncodingFormat == "base64"
	}
	out := embeddingList{Object: "list", Data: make([]embedding, len(pr.Predictions)), Model: ex.UpstreamModel}
	var tokens int64
	for i, p := range pr.Predictions {
		tokens += int64(p.Embeddings.Statistics.TokenCount)
		v := p.Embeddings.Values
		if v == nil {
			v = []float32{}
		}
		out.Data[i] = embedding{Object: "embedding", Index: i, Embedding: v}
		if b64 {
			buf := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(f))
			}
			out.Data[i].Embedding = base64.StdEncoding.EncodeToString(buf)
		}
	}
	out.Usage.PromptTokens, out.Usage.TotalTokens = tokens, tokens
	u := chat.Usage{PromptTokens: tokens, TotalTokens: tokens}
	u.Record(ex)
	return json.Marshal(out)
}
