// Package azure is the adapter for Azure OpenAI: the OpenAI wire, addressed by deployment.
// Requests and answers are OpenAI's byte for byte, so everything but the URL is the openai
// adapter's; the route's upstream model name is the deployment name.
package azure

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/openai"
)

// DefaultAPIVersion is the api-version sent when the Backend names none (a GA version that
// supports stream_options.include_usage).
const DefaultAPIVersion = "2024-10-21"

// Adapter is the Azure OpenAI adapter.
type Adapter struct {
	openai.Adapter
	apiVersion string
}

// New returns an adapter sending ?api-version=apiVersion (DefaultAPIVersion if empty).
func New(apiVersion string) *Adapter {
	if apiVersion == "" {
		apiVersion = DefaultAPIVersion
	}
	return &Adapter{apiVersion: apiVersion}
}

var operations = map[exchange.Endpoint]string{
	exchange.EndpointChat:        "/chat/completions",
	exchange.EndpointCompletions: "/completions",
	exchange.EndpointEmbeddings:  "/embeddings",
}

// NewRequest implements provider.Adapter: the OpenAI request, sent to
// {base}/openai/deployments/{deployment}/{operation}?api-version=.
func (a *Adapter) NewRequest(ctx context.Context, ex *exchange.Exchange, t provider.Target) (*http.Request, error) {
	op, ok := operations[ex.Endpoint]
	if !ok {
		return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "This endpoint is not available for this model's backend."}
	}
	if !provider.SafePathSegment(t.Model) {
		return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "model", Message: "The deployment name cannot be used in a URL."}
	}
	req, err := a.Adapter.NewRequest(ctx, ex, t)
	if err != nil {
		return nil, err
	}
	u := *t.BaseURL
	u.Path = trimSlash(u.Path) + "/openai/deployments/" + t.Model + op
	u.RawPath = ""
	u.RawQuery = url.Values{"api-version": {a.apiVersion}}.Encode()
	req.URL = &u
	req.Host = u.Host
	return req, nil
}

func trimSlash(p string) string {
	for len(p) > 0 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// Complete implements provider.Adapter. Answers are OpenAI's, but Azure's errors are not
// quite: their code is often the status as a string ("429") or Azure's own name
// ("DeploymentNotFound"), so errors are mapped to the stable codes; Azure's content-filter
// refusals keep their code, which clients act on.
func (a *Adapter) Complete(ex *exchange.Exchange, status int, header http.Header, body []byte) (provider.Answer, error) {
	if status < 300 {
		return a.Adapter.Complete(ex, status, header, body)
	}
	var e struct {
		Error struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(body, &e)
	code, _ := e.Error.Code.(string)
	if code == "content_filter" {
		return provider.Answer{Status: status, Body: body}, nil
	}
	ae := apierr.FromUpstream(status, header, code, e.Error.Message)
	return provider.Answer{Status: ae.Status, Header: ae.Header, Body: ae.Body(apierr.OpenAI)}, nil
}
