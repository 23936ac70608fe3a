package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ModelRoute sends requests for some model names to some Backends.
// +kubebuilder:object:root=true
type ModelRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ModelRouteSpec `json:"spec"`
}

// ModelRouteSpec lists the models a route claims and where they go.
type ModelRouteSpec struct {
	// Models are what clients put in "model": exact names or globs, where * matches any
	// run of characters (slashes included) and ? any one character.
	Models []string `json:"models"`
	// BackendRefs are the candidate backends.
	BackendRefs []BackendRef `json:"backendRefs"`
	// Timeouts bound the whole request, all attempts included.
	Timeouts *RouteTimeouts `json:"timeouts,omitempty"`
	// Regions, when set, allows only Backends whose region is listed, fallbacks
	// included; a request that cannot be served there gets 403 region_not_allowed.
	Regions []string `json:"regions,omitempty"`
}

// BackendRef is one candidate Backend of a route.
type BackendRef struct {
	Name string `json:"name"`
	// Namespace defaults to the route's.
	Namespace string `json:"namespace,omitempty"`
	// Model is the model name sent upstream. Default: the name the client asked for.
	Model string `json:"model,omitempty"`
	// Weight is this ref's share among the refs of the same priority. Default 1; 0 never
	// receives traffic.
	Weight *int32 `json:"weight,omitempty"`
	// Priority orders fallbacks: 0 is tried first, higher numbers after a failure.
	Priority int32 `json:"priority,omitempty"`
}

// RouteTimeouts bound a request on a route.
type RouteTimeouts struct {
	// Request bounds the whole request, from the end of reading its body to the end of
	// the answer (streams
	// included). Default: none.
	Request *metav1.Duration `json:"request,omitempty"`
	// FirstToken bounds the wait for the first byte of the answer's body, per attempt.
	// Default: the Backend's idle timeout.
	FirstToken *metav1.Duration `json:"firstToken,omitempty"`
}

// ModelRouteList is a list of ModelRoutes.
// +kubebuilder:object:root=true
type ModelRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ModelRoute `json:"items"`
}
