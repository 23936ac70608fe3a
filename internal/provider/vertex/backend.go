package vertex

import (
	"context"
	"io"
	"net/http"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

// Backend serves one GCPVertexAI Backend, which hosts two wires: Gemini models through
// this package's Adapter, and Claude models through the Anthropic adapter in its Vertex
// mode (given by the caller, so this package does not depend on it). The model of each
// attempt decides.
type Backend struct {
	gemini *Adapter
	claude provider.Adapter
}

// NewBackend returns the adapter of a GCPVertexAI Backend.
func NewBackend(o Options, claude provider.Adapter) *Backend {
	return &Backend{gemini: New(o), claude: claude}
}

func (b *Backend) pick(model string) provider.Adapter {
	if IsAnthropicModel(model) {
		return b.claude
	}
	return b.gemini
}

// Speaks implements provider.Adapter. Only the OpenAI wire: which wire a Vertex model
// speaks depends on the model, and Anthropic clients of Claude on Vertex are served by
// translating through the OpenAI form.
func (b *Backend) Speaks(w apierr.Wire) bool { return w == apierr.OpenAI }

// NewRequest implements provider.Adapter.
func (b *Backend) NewRequest(ctx context.Context, ex *exchange.Exchange, t provider.Target) (*http.Request, error) {
	return b.pick(t.Model).NewRequest(ctx, ex, t)
}

// Complete implements provider.Adapter.
func (b *Backend) Complete(ex *exchange.Exchange, status int, header http.Header, body []byte) (provider.Answer, error) {
	return b.pick(ex.UpstreamModel).Complete(ex, status, header, body)
}

// Stream implements provider.Adapter.
func (b *Backend) Stream(ex *exchange.Exchange, header http.Header, body io.Reader) provider.Stream {
	return b.pick(ex.UpstreamModel).Stream(ex, header, body)
}
