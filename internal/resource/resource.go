package resource

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
)

// Source says where a resource was read from.
type Source struct {
	File string
	// Doc is the 1-based index of the document within File; 0 means the file as a whole.
	Doc int
}

// String returns "path/to/file.yaml#2", or just the path when Doc is 0.
func (s Source) String() string {
	if s.Doc <= 0 {
		return s.File
	}
	return s.File + "#" + strconv.Itoa(s.Doc)
}

// Set is everything loaded: the input of the translator.
type Set struct {
	Backends    []*v1alpha1.Backend
	ModelRoutes []*v1alpha1.ModelRoute
	// APIKeys and AccessPolicies configure access control.
	APIKeys        []*v1alpha1.APIKey
	AccessPolicies []*v1alpha1.AccessPolicy
	// RateLimitPolicies configure rate limits, quotas and budgets.
	RateLimitPolicies []*v1alpha1.RateLimitPolicy
	// PayloadProcessors inspect, change or reject requests and answers.
	PayloadProcessors []*v1alpha1.PayloadProcessor
	// CachePolicies cache answers.
	CachePolicies []*v1alpha1.CachePolicy
	// MCPRoutes front MCP servers.
	MCPRoutes []*v1alpha1.MCPRoute
	// HTTPRoutes (cluster mode) are the Gateway API routes attached to Sluice's Gateways;
	// their rules send requests by host and path to sluice.dev Backends.
	HTTPRoutes []*gatewayv1.HTTPRoute
	Secrets    []*corev1.Secret
	// Origins maps Ref(kind, namespace, name) of every resource to where it was read.
	Origins map[string]Source
}

// Ref names a resource the way errors and Set.Origins do: "Backend/default/openai".
func Ref(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}

// Error is one problem with one document (or one file, when Source.Doc is 0).
type Error struct {
	Source Source
	// Ref is Ref(kind, namespace, name) when the document got that far; it may be empty.
	Ref string
	Msg string
}

// Error returns "file#doc: Kind/ns/name: message".
func (e Error) Error() string {
	if e.Ref == "" {
		return e.Source.String() + ": " + e.Msg
	}
	return e.Source.String() + ": " + e.Ref + ": " + e.Msg
}

// LoadError is every problem found by one Load or LoadBytes.
type LoadError struct {
	Errors []Error
}

// Error lists every error, one per line.
func (e *LoadError) Error() string {
	var b strings.Builder
	for i, err := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	return b.String()
}
