package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/cache"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/route"
)

// maxEmbeddingAnswer bounds an embeddings answer (one vector of a few thousand floats).
const maxEmbeddingAnswer = 4 << 20

// embed asks the semantic cache's Backend for the embedding of text, through the
// Backend's adapter (so any schema with an embeddings API works) and its Upstream (its
// credential, TLS and concurrency limit). It returns the vector and the tokens it cost.
func (g *Gateway) embed(ctx context.Context, be *route.Backend, sem *cache.Semantic, text []byte) ([]float32, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, sem.Timeout)
	defer cancel()
	body := []byte(`{"model":`)
	body = jsonscan.AppendQuoted(body, sem.Model)
	body = append(body, `,"input":`...)
	body = jsonscan.AppendQuoted(body, text)
	body = append(body, '}')
	ex := &exchange.Exchange{
		Endpoint: exchange.EndpointEmbeddings, IngressEndpoint: exchange.EndpointEmbeddings,
		Ingress: apierr.OpenAI, Header: http.Header{}, IngressBody: body, Body: body,
		Backend: be.Ref, UpstreamModel: sem.Model,
	}
	if e := decodeRequest(ex, body); e != nil {
		return nil, 0, e
	}
	up := be.Upstream
	if !up.TryAcquire() {
		return nil, 0, errors.New("the embeddings Backend is at its concurrency limit")
	}
	defer up.Release()
	req, err := be.Adapter.NewRequest(ctx, ex, provider.Target{BaseURL: up.BaseURL, Model: sem.Model})
	if err != nil {
		return nil, 0, err
	}
	resp, err := up.Transport.RoundTrip(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbeddingAnswer+1))
	if err != nil {
		return nil, 0, err
	}
	if len(b) > maxEmbeddingAnswer {
		return nil, 0, errors.New("embeddings answer too large")
	}
	ans, err := be.Adapter.Complete(ex, resp.StatusCode, resp.Header, b)
	if err != nil {
		return nil, 0, err
	}
	if ans.Status != http.StatusOK {
		return nil, 0, fmt.Errorf("embeddings answered %d", ans.Status)
	}
	var out struct {
		Data []struct {
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage struct {
			PromptTokens int64 `json:"prompt_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(ans.Body, &out); err != nil || len(out.Data) != 1 || len(out.Data[0].Embedding) == 0 {
		return nil, 0, errors.New("embeddings answer without one vector")
	}
	return out.Data[0].Embedding, out.Usage.PromptTokens, nil
}
