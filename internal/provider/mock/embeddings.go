package mock

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"

	"github.com/sluice-gateway/sluice/internal/tokens"
)

const (
	defaultDimensions = 16
	maxDimensions     = 4096
	maxInputs         = 2048
)

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	Dimensions     *int64          `json:"dimensions"`
	EncodingFormat *string         `json:"encoding_format"`
}

type embeddingList struct {
	Object string      `json:"object"`
	Data   []embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

type embedding struct {
	Object string `json:"object"`
	Index  int    `json:"index"`
	// Embedding is []float32, or a base64 string of little-endian float32s.
	Embedding any `json:"embedding"`
}

func (h *handler) embeddings(body []byte) (reply, *apiError) {
	var req embeddingRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, decodeError(err)
	}
	if req.Model == "" {
		return nil, badParam("model", "missing_required_parameter", "You must provide a model parameter.")
	}
	dims := defaultDimensions
	if req.Dimensions != nil {
		if *req.Dimensions < 1 || *req.Dimensions > maxDimensions {
			return nil, badParam("dimensions", "invalid_value", "Invalid 'dimensions': expected a value between 1 and %d, but got %d instead.", maxDimensions, *req.Dimensions)
		}
		dims = int(*req.Dimensions)
	}
	b64 := false
	if f := req.EncodingFormat; f != nil {
		switch *f {
		case "float":
		case "base64":
			b64 = true
		default:
			return nil, badParam("encoding_format", "invalid_value", "Invalid 'encoding_format': expected 'float' or 'base64', but got '%s' instead.", *f)
		}
	}
	seeds, aerr := inputSeeds(req.Input)
	if aerr != nil {
		return nil, aerr
	}
	pt, err := tokens.PromptTokens(tokens.EndpointEmbeddings, req.Model, body)
	if err != nil {
		return nil, badParam("input", "invalid_value", "Invalid 'input': %v.", err)
	}
	resp := embeddingList{Object: "list", Data: make([]embedding, len(seeds)), Model: req.Model}
	resp.Usage.PromptTokens, resp.Usage.TotalTokens = pt, pt
	for i, seed := range seeds {
		v := vector(seed, dims)
		resp.Data[i] = embedding{Object: "embedding", Index: i, Embedding: v}
		if b64 {
			buf := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(f))
			}
			resp.Data[i].Embedding = base64.StdEncoding.EncodeToString(buf)
		}
	}
	return func(w http.ResponseWriter, _ context.Context) { writeJSON(w, http.StatusOK, resp) }, nil
}

// inputSeeds returns a hash of each input (a string, an array of strings, a token
// array, or an array of token arrays), from which its vector is derived.
func inputSeeds(raw json.RawMessage) ([][32]byte, *apiError) {
	invalid := func(format string, args ...any) *apiError {
		return badParam("input", "invalid_value", "Invalid 'input': "+format+".", args...)
	}
	text := func(s string) [32]byte { return sha256.Sum256([]byte("text\x00" + s)) }
	ids := func(a []int64) [32]byte {
		h := sha256.New()
		h.Write([]byte("tokens\x00"))
		for _, id := range a {
			h.Write(binary.LittleEndian.AppendUint64(nil, uint64(id)))
		}
		return [32]byte(h.Sum(nil))
	}
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, invalid("empty string")
		}
		return [][32]byte{text(s)}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, invalid("expected a string, an array of strings or an array of tokens")
	}
	if len(items) == 0 {
		return nil, invalid("empty array")
	}
	var tok []int64
	if json.Unmarshal(raw, &tok) == nil {
		return [][32]byte{ids(tok)}, nil
	}
	if len(items) > maxInputs {
		return nil, invalid("at most %d inputs", maxInputs)
	}
	out := make([][32]byte, len(items))
	for i, it := range items {
		if it[0] == '"' && json.Unmarshal(it, &s) == nil {
			if s == "" {
				return nil, invalid("item %d: empty string", i)
			}
			out[i] = text(s)
			continue
		}
		if json.Unmarshal(it, &tok) != nil || len(tok) == 0 {
			return nil, invalid("item %d: expected a string or a non-empty array of tokens", i)
		}
		out[i] = ids(tok)
	}
	return out, nil
}

// vector expands seed into a deterministic unit-length vector of dims float32s,
// drawing 4 bytes per component from SHA-256 in counter mode.
func vector(seed [32]byte, dims int) []float32 {
	v := make([]float64, dims)
	var block [32]byte
	var in [36]byte
	copy(in[:], seed[:])
	norm := 0.0
	for i := range v {
		if i%8 == 0 {
			binary.LittleEndian.PutUint32(in[32:], uint32(i/8))
			block = sha256.Sum256(in[:])
		}
		u := binary.LittleEndian.Uint32(block[4*(i%8):])
		v[i] = float64(u)/(1<<31) - 1 // in [-1, 1)
		norm += v[i] * v[i]
	}
	out := make([]float32, dims)
	if norm == 0 {
		out[0] = 1
		return out
	}
	norm = math.Sqrt(norm)
	for i, x := range v {
		out[i] = float32(x / norm)
	}
	return out
}
