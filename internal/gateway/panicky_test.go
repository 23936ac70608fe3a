package gateway_test

import (
	"context"
	"net/http"
	"strings"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

// panicky panics on requests whose body says "panic please".
type panicky struct{ provider.Adapter }

func (p panicky) NewRequest(ctx context.Context, ex *exchange.Exchange, t provider.Target) (*http.Request, error) {
	if strings.Contains(string(ex.Body), "panic please") {
		panic("test panic")
	}
	return p.Adapter.NewRequest(ctx, ex, t)
}
