package azure

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

func TestNewRequest(t *testing.T) {
	base, _ := url.Parse("https://res.openai.azure.com/")
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for _, c := range []struct {
		ep   exchange.Endpoint
		want string
	}{
		{exchange.EndpointChat, "https://res.openai.azure.com/openai/deployments/my-dep/chat/completions?api-version=2024-10-21"},
		{exchange.EndpointEmbeddings, "https://res.openai.azure.com/openai/deployments/my-dep/embeddings?api-version=2024-10-21"},
		{exchange.EndpointCompletions, "https://res.openai.azure.com/openai/deployments/my-dep/completions?api-version=2024-10-21"},
	} {
		ex := &exchange.Exchange{Endpoint: c.ep, Body: []byte(body), Model: "gpt-4o-mini", BodyMutated: true}
		req, err := New("").NewRequest(t.Context(), ex, provider.Target{BaseURL: base, Model: "my-dep"})
		if err != nil {
			t.Fatal(err)
		}
		if req.URL.String() != c.want || req.Host != "res.openai.azure.com" {
			t.Errorf("%v: %s", c.ep, req.URL)
		}
	}
	for _, bad := range []string{"../x", "a/b", "a?b", "a#b", "a b", ".."} {
		ex := &exchange.Exchange{Endpoint: exchange.EndpointChat, Body: []byte(body), Model: "m", BodyMutated: true}
		_, err := New("2025-01-01").NewRequest(t.Context(), ex, provider.Target{BaseURL: base, Model: bad})
		if ae, ok := err.(*apierr.Error); !ok || ae.Status != 400 {
			t.Errorf("deployment %q: err %v", bad, err)
		}
	}
	ex := &exchange.Exchange{Endpoint: exchange.EndpointMessages, Body: []byte(body), Model: "m"}
	if _, err := New("").NewRequest(t.Context(), ex, provider.Target{BaseURL: base, Model: "d"}); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("messages endpoint: %v", err)
	}
}
