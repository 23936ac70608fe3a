package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Schema names the wire format a Backend speaks.
type Schema string

// The schemas this build can talk to.
const (
	SchemaOpenAI Schema = "OpenAI"
	SchemaMock   Schema = "Mock"
)

// Backend is a place traffic leaves the gateway for: one upstream API.
// +kubebuilder:object:root=true
type Backend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackendSpec `json:"spec"`
}

// BackendSpec says where a Backend is and how to talk to it.
type BackendSpec struct {
	// Schema is the upstream's wire format.
	Schema Schema `json:"schema"`
	// URL is the short form of Destination: scheme, host, optional port and base path,
	// as the provider's own SDK takes it (https://api.openai.com/v1).
	URL string `json:"url,omitempty"`
	// Destination is the long form of URL, as in the egress proposal. Exactly one of URL
	// and Destination is set, except for schema Mock, which needs neither.
	Destination *Destination `json:"destination,omitempty"`
	// Credentials are what the gateway injects upstream. The client's own credential is
	// never forwarded.
	Credentials *Credentials `json:"credentials,omitempty"`
	// Timeouts bound each upstream attempt.
	Timeouts *BackendTimeouts `json:"timeouts,omitempty"`
	// MaxConcurrentRequests caps requests in flight to this Backend; 0 is unlimited. A
	// request that finds the Backend full treats it as unavailable and falls back.
	MaxConcurrentRequests int32 `json:"maxConcurrentRequests,omitempty"`
	// Mock configures the in-process Mock backend (schema Mock only).
	Mock *MockSpec `json:"mock,omitempty"`
}

// DestinationType says how Destination names its host.
type DestinationType string

// Destination types.
const (
	DestinationFqdn              DestinationType = "Fqdn"
	DestinationIP                DestinationType = "Ip"
	DestinationKubernetesService DestinationType = "KubernetesService"
)

// Destination is the long form of a Backend's address.
type Destination struct {
	Type DestinationType `json:"type"`
	// Fqdn is set for type Fqdn.
	Fqdn *FqdnDestination `json:"fqdn,omitempty"`
	// IP is set for type Ip.
	IP *IPDestination `json:"ip,omitempty"`
	// KubernetesService is set for type KubernetesService; it resolves to
	// NAME.NAMESPACE.svc (the cluster's DNS).
	KubernetesService *ServiceDestination `json:"kubernetesService,omitempty"`
	// Ports lists the port to use; the first one is used. Default 443, or 80 when the
	// scheme is http (explicitly, or by default for KubernetesService).
	Ports []DestinationPort `json:"ports,omitempty"`
	// PathPrefix is the base path every upstream path is appended to (e.g. /v1).
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Scheme is http or https. Default: https, except http for type KubernetesService
	// and for ports other than 443 on Ip destinations.
	Scheme string `json:"scheme,omitempty"`
}

// FqdnDestination is a DNS name.
type FqdnDestination struct {
	Hostname string `json:"hostname"`
}

// IPDestination is a literal IP address.
type IPDestination struct {
	Address string `json:"address"`
}

// ServiceDestination is a Service in the cluster.
type ServiceDestination struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// DestinationPort is one port of a Destination.
type DestinationPort struct {
	Number int32 `json:"number"`
}

// Credentials are what the gateway adds to each upstream request.
type Credentials struct {
	// APIKey is sent the way the Backend's schema expects (OpenAI: Authorization: Bearer).
	APIKey *SecretValue `json:"apiKey,omitempty"`
}

// SecretValue is a value read from a Secret.
type SecretValue struct {
	SecretRef SecretKeyRef `json:"secretRef"`
}

// SecretKeyRef names one key of a Secret. Namespace defaults to the referrer's.
type SecretKeyRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Key       string `json:"key,omitempty"`
}

// BackendTimeouts bound one upstream attempt.
type BackendTimeouts struct {
	// Connect bounds the TCP (and TLS) connection set-up. Default 10s.
	Connect *metav1.Duration `json:"connect,omitempty"`
	// FirstByte bounds the wait from the start of an attempt (connecting included) to the
	// response headers. Default 60s.
	FirstByte *metav1.Duration `json:"firstByte,omitempty"`
	// Idle bounds the silence between two reads of a response body, and the wait for its
	// first byte when the route sets no firstToken. Default 60s.
	Idle *metav1.Duration `json:"idle,omitempty"`
}

// MockSpec shapes the Mock backend's answers.
type MockSpec struct {
	// Latency is waited before the first byte of every answer.
	Latency *metav1.Duration `json:"latency,omitempty"`
	// TokensPerSecond paces streamed output; 0 streams as fast as possible.
	TokensPerSecond int32 `json:"tokensPerSecond,omitempty"`
	// Chunks is the number of content chunks a streamed answer is cut into. Default 8.
	Chunks int32 `json:"chunks,omitempty"`
}

// BackendList is a list of Backends.
// +kubebuilder:object:root=true
type BackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backend `json:"items"`
}
