package v1alpha1

import (
	"encoding/json"
	"k8s.io/apimachinery/pkg/util/validation/field"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// ModelRoute sends requests for some model names to some Backends.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Models",type=string,JSONPath=`.spec.models`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ModelRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ModelRouteSpec   `json:"spec"`
	Status            ModelRouteStatus `json:"status,omitempty"`
}

// ModelRouteStatus is a ResourceStatus and, for a route with spec.parentRefs, the
// Gateway API status of each parent (cluster mode with the Gateway API enabled).
type ModelRouteStatus struct {
	ResourceStatus `json:",inline"`
	// Parents is the status of the route on each of its spec.parentRefs, as in a
	// Gateway API route: Accepted (by the parent's listeners) and ResolvedRefs.
	// +kubebuilder:validation:MaxItems=32
	// +optional
	Parents []gatewayv1.RouteParentStatus `json:"parents,omitempty"`
}

// ModelRouteSpec lists the models a route claims and where they go.
type ModelRouteSpec struct {
	// Models are what clients put in "model": exact names or globs, where * matches any
	// run of characters (slashes included) and ? any one character.
	// +kubebuilder:validation:MinItems=1
	// +listType=set
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:Pattern=`^[^\[\]\\]+$`
	Models []string `json:"models"`
	// BackendRefs are the candidate backends.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	BackendRefs []BackendRef `json:"backendRefs"`
	// Timeouts bound the whole request, all attempts included.
	Timeouts *RouteTimeouts `json:"timeouts,omitempty"`
	// Regions, when set, allows only Backends whose region is listed, fallbacks
	// included; a request that cannot be served there gets 403 region_not_allowed.
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Regions []string `json:"regions,omitempty"`
	// Retry sets how failed attempts are retried. Without it, an attempt that fails with a
	// connection failure or a 5xx before any byte reached the client falls back to each
	// other candidate once, without waiting.
	Retry *RetryPolicy `json:"retry,omitempty"`
	// ParentRefs are the Gateways (gateway.networking.k8s.io) the route attaches to, in
	// cluster mode with the Gateway API enabled. Without them the route is served as
	// always; with them, only when at least one parent (a Gateway of Sluice's
	// GatewayClass whose listeners allow the route) accepts it. Files loaded with -f
	// ignore them.
	// +kubebuilder:validation:MaxItems=16
	// +optional
	ParentRefs []gatewayv1.ParentReference `json:"parentRefs,omitempty"`
}

// RetryPolicy is how a route retries failed attempts. An attempt is never retried once
// bytes of its answer reached the client.
type RetryPolicy struct {
	// Attempts is the most attempts a request makes, the first included (1 to 10).
	// Candidates are taken as without a policy (the tier's other refs, then the next
	// tier); when all were tried, they are tried again in the same order.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	Attempts int32 `json:"attempts"`
	// RetryOn lists what is retried: 5xx, 429, connect-failure, timeout (no answer
	// headers in time). Default [5xx, connect-failure]. (Not "on", as the design has it:
	// YAML 1.1 reads a bare on: key as the boolean true, in Sluice and in kubectl alike.)
	RetryOn []RetryOn `json:"retryOn,omitempty"`
	// Backoff is the wait before a retry: exponential from base, capped at max, with full
	// jitter. A 429's Retry-After is waited instead when it is longer and at most max;
	// a longer Retry-After moves on to the next candidate at once.
	Backoff *RetryBackoff `json:"backoff,omitempty"`
}

// RetryOn is a retryable condition.
// +kubebuilder:validation:XIntOrString
// +kubebuilder:validation:Type=""
// +kubebuilder:validation:Enum="5xx";429;"429";"connect-failure";"timeout"
type RetryOn string

// UnmarshalJSON also takes a bare number, so `retryOn: [429, 5xx]` reads as written.
func (r *RetryOn) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		*r = RetryOn(b)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*r = RetryOn(s)
	return nil
}

// Retryable conditions.
const (
	RetryOn5xx            RetryOn = "5xx"
	RetryOn429            RetryOn = "429"
	RetryOnConnectFailure RetryOn = "connect-failure"
	RetryOnTimeout        RetryOn = "timeout"
)

// RetryBackoff is exponential backoff. Defaults: base 100ms, max 2s.
// +kubebuilder:validation:XValidation:rule="!has(self.max) || duration(self.max) >= duration(has(self.base) ? self.base : '100ms')",message="max must be at least base (default 100ms)"
type RetryBackoff struct {
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Base *metav1.Duration `json:"base,omitempty"`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Max *metav1.Duration `json:"max,omitempty"`
}

// BackendRef is one candidate Backend of a route.
type BackendRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Namespace defaults to the route's.
	Namespace string `json:"namespace,omitempty"`
	// Model is the model name sent upstream. Default: the name the client asked for.
	Model string `json:"model,omitempty"`
	// Weight is this ref's share among the refs of the same priority. Default 1; 0 never
	// receives traffic.
	// +kubebuilder:validation:Minimum=0
	Weight *int32 `json:"weight,omitempty"`
	// Priority orders fallbacks: 0 is tried first, higher numbers after a failure.
	// +kubebuilder:validation:Minimum=0
	Priority int32 `json:"priority,omitempty"`
	// Pricing of this model on this Backend; overrides the Backend's.
	Pricing *Pricing `json:"pricing,omitempty"`
}

// Pricing is what tokens cost, in US dollars per million tokens, for usage records and
// spend metrics.
type Pricing struct {
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +kubebuilder:validation:ExclusiveMaximum=true
	Input float64 `json:"input"`
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +kubebuilder:validation:ExclusiveMaximum=true
	Output float64 `json:"output"`
	// CachedInput is the price of input tokens served from the provider's prompt cache.
	// Default: Input.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +kubebuilder:validation:ExclusiveMaximum=true
	CachedInput *float64 `json:"cachedInput,omitempty"`
}

func (p *Pricing) validate(fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	check := func(name string, v float64) {
		if !(v >= 0 && v < 1e6) {
			errs = append(errs, field.Invalid(fp.Child(name), v, "must be between 0 and 1000000 (US dollars per million tokens)"))
		}
	}
	check("input", p.Input)
	check("output", p.Output)
	if p.CachedInput != nil {
		check("cachedInput", *p.CachedInput)
	}
	return errs
}

// RouteTimeouts bound a request on a route.
type RouteTimeouts struct {
	// Request bounds the whole request, from the end of reading its body to the end of
	// the answer (streams
	// included). Default: none.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Request *metav1.Duration `json:"request,omitempty"`
	// FirstToken bounds the wait for the first byte of the answer's body, per attempt.
	// Default: the Backend's idle timeout.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	FirstToken *metav1.Duration `json:"firstToken,omitempty"`
}

// ModelRouteList is a list of ModelRoutes.
// +kubebuilder:object:root=true
type ModelRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ModelRoute `json:"items"`
}
