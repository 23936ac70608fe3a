package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Schema names the wire format a Backend speaks.
// +kubebuilder:validation:Enum=OpenAI;AzureOpenAI;Anthropic;GCPVertexAI;AWSBedrock;Mock
type Schema string

// The schemas this build can talk to.
const (
	SchemaOpenAI      Schema = "OpenAI"
	SchemaAzureOpenAI Schema = "AzureOpenAI"
	SchemaAnthropic   Schema = "Anthropic"
	SchemaGCPVertexAI Schema = "GCPVertexAI"
	SchemaAWSBedrock  Schema = "AWSBedrock"
	SchemaMock        Schema = "Mock"
)

// Protocol is what a Backend speaks.
type Protocol string

// Protocols.
const (
	ProtocolHTTP Protocol = "HTTP"
	ProtocolMCP  Protocol = "MCP"
)

// Schemas lists every schema, in documentation order.
var Schemas = []Schema{SchemaOpenAI, SchemaAzureOpenAI, SchemaAnthropic, SchemaGCPVertexAI, SchemaAWSBedrock, SchemaMock}

// OutlierDetection tunes ejection: after ConsecutiveFailures failures in a row (connection
// failures, 5xx, timeouts; not 429s), or a failure rate of at least FailureRatePercent over
// the last 20 outcomes (10 at least), the Backend is skipped by routing for BaseEjectionTime,
// doubled for each further ejection up to MaxEjectionTime; then one probe request decides.
// A route whose every candidate is ejected still tries them.
type OutlierDetection struct {
	// Disabled turns ejection off for this Backend.
	Disabled bool `json:"disabled,omitempty"`
	// ConsecutiveFailures: default 5.
	// +kubebuilder:validation:Minimum=0
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
	// FailureRatePercent: default 50.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	FailureRatePercent int32 `json:"failureRatePercent,omitempty"`
	// BaseEjectionTime: default 10s. MaxEjectionTime: default 5m.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	BaseEjectionTime *metav1.Duration `json:"baseEjectionTime,omitempty"`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	MaxEjectionTime *metav1.Duration `json:"maxEjectionTime,omitempty"`
}

// HealthCheck is a GET of path (relative to the Backend's url, with its credential)
// every interval; any status below 500 but 401 and 403 passes.
type HealthCheck struct {
	// Path is appended to the url. Default /models.
	// +kubebuilder:validation:Pattern=`^/[^?#\r\n]*$`
	Path string `json:"path,omitempty"`
	// Interval between checks (default 10s) and Timeout of one (default 2s).
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Interval *metav1.Duration `json:"interval,omitempty"`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// UnhealthyThreshold failures in a row mark it down (default 2); HealthyThreshold
	// passes in a row bring it back (default 1).
	// +kubebuilder:validation:Minimum=0
	UnhealthyThreshold int32 `json:"unhealthyThreshold,omitempty"`
	// +kubebuilder:validation:Minimum=0
	HealthyThreshold int32 `json:"healthyThreshold,omitempty"`
}

// Backend is a place traffic leaves the gateway for: one upstream API.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Schema",type=string,JSONPath=`.spec.schema`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Backend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackendSpec    `json:"spec"`
	Status            ResourceStatus `json:"status,omitempty"`
}

// BackendSpec says where a Backend is and how to talk to it.
// +kubebuilder:validation:XValidation:rule="(has(self.protocol) && self.protocol == 'MCP') != (has(self.schema) && self.schema != \"\")",message="set schema for protocol HTTP and none for protocol MCP"
// +kubebuilder:validation:XValidation:rule="!has(self.protocol) || self.protocol != 'MCP' || !has(self.pool)",message="an MCP Backend takes no pool"
// +kubebuilder:validation:XValidation:rule="(has(self.schema) ? self.schema : \"\") == 'Mock' || (has(self.url) && self.url != \"\") != has(self.destination)",message="set exactly one of url and destination"
// +kubebuilder:validation:XValidation:rule="(has(self.schema) ? self.schema : \"\") != 'Mock' || (!(has(self.url) && self.url != \"\") && !has(self.destination))",message="schema Mock answers in-process and takes no url or destination"
// +kubebuilder:validation:XValidation:rule="(has(self.schema) ? self.schema : \"\") == 'Mock' || !has(self.mock)",message="mock is only for schema Mock"
// +kubebuilder:validation:XValidation:rule="(has(self.schema) ? self.schema : \"\") != 'Mock' || !has(self.credentials)",message="schema Mock needs no credentials"
// +kubebuilder:validation:XValidation:rule="(has(self.schema) ? self.schema : \"\") != 'Mock' || !has(self.healthCheck)",message="a Mock backend has nothing to check"
// +kubebuilder:validation:XValidation:rule="(has(self.schema) ? self.schema : \"\") != 'Mock' || !has(self.pool)",message="a Mock backend answers in-process and takes no pool"
// +kubebuilder:validation:XValidation:rule="(has(self.schema) ? self.schema : \"\") != 'AWSBedrock' || (has(self.credentials) && has(self.credentials.awsSigV4))",message="AWSBedrock requests must be signed: set credentials.awsSigV4"
// +kubebuilder:validation:XValidation:rule="(has(self.schema) ? self.schema : \"\") != 'GCPVertexAI' || (has(self.credentials) && has(self.credentials.gcpServiceAccount))",message="GCPVertexAI needs credentials.gcpServiceAccount"
// +kubebuilder:validation:XValidation:rule="!has(self.credentials) || !has(self.credentials.apiKey) || !((has(self.schema) ? self.schema : \"\") in ['AWSBedrock', 'GCPVertexAI'])",message="credentials.apiKey is not for schemas AWSBedrock and GCPVertexAI"
// +kubebuilder:validation:XValidation:rule="!has(self.credentials) || !has(self.credentials.awsSigV4) || (has(self.schema) ? self.schema : \"\") == 'AWSBedrock'",message="credentials.awsSigV4 is only for schema AWSBedrock"
// +kubebuilder:validation:XValidation:rule="!has(self.credentials) || !has(self.credentials.gcpServiceAccount) || (has(self.schema) ? self.schema : \"\") == 'GCPVertexAI'",message="credentials.gcpServiceAccount is only for schema GCPVertexAI"
// +kubebuilder:validation:XValidation:rule="!has(self.credentials) || !has(self.credentials.azure) || (has(self.schema) ? self.schema : \"\") == 'AzureOpenAI'",message="credentials.azure is only for schema AzureOpenAI"
// +kubebuilder:validation:XValidation:rule="!has(self.azure) || (has(self.schema) ? self.schema : \"\") == 'AzureOpenAI'",message="azure is only for schema AzureOpenAI"
// +kubebuilder:validation:XValidation:rule="!has(self.anthropic) || (has(self.schema) ? self.schema : \"\") in ['Anthropic', 'GCPVertexAI']",message="anthropic is only for schemas Anthropic and GCPVertexAI"
// +kubebuilder:validation:XValidation:rule="!has(self.maxQueuedRequests) || self.maxQueuedRequests == 0 || (has(self.maxConcurrentRequests) && self.maxConcurrentRequests > 0)",message="maxQueuedRequests needs maxConcurrentRequests: without a limit nothing waits"
// +kubebuilder:validation:XValidation:rule="!has(self.healthCheck) || !has(self.outlierDetection) || !has(self.outlierDetection.disabled) || !self.outlierDetection.disabled",message="healthCheck needs outlierDetection (a failed check ejects the Backend)"
type BackendSpec struct {
	// Protocol is what the Backend speaks: HTTP (default), an inference API in the wire
	// format of Schema, or MCP, a Model Context Protocol server's Streamable HTTP endpoint
	// at URL, which MCPRoutes front and which takes no schema.
	// +kubebuilder:validation:Enum=HTTP;MCP
	Protocol Protocol `json:"protocol,omitempty"`
	// Schema is the upstream's wire format (protocol HTTP; required there).
	// +optional
	Schema Schema `json:"schema,omitempty"`
	// URL is the short form of Destination: scheme, host, optional port and base path,
	// as the provider's own SDK takes it (https://api.openai.com/v1).
	// +kubebuilder:validation:Pattern=`^$|^(?i)https?://[^/?#@\s]+(/[^?#]*)?$`
	URL string `json:"url,omitempty"`
	// Destination is the long form of URL, as in the egress proposal. Exactly one of URL
	// and Destination is set, except for schema Mock, which needs neither.
	Destination *Destination `json:"destination,omitempty"`
	// TLS is the policy for https destinations.
	TLS *BackendTLS `json:"tls,omitempty"`
	// Region is a free-form label (eu, us-east-1) that data-residency rules match.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Region string `json:"region,omitempty"`
	// Credentials are what the gateway injects upstream. The client's own credential is
	// never forwarded.
	Credentials *Credentials `json:"credentials,omitempty"`
	// RequestHeaders changes the client headers forwarded upstream.
	RequestHeaders *HeaderPolicy `json:"requestHeaders,omitempty"`
	// Azure holds AzureOpenAI settings.
	Azure *AzureSpec `json:"azure,omitempty"`
	// Anthropic holds Anthropic settings (also used for Claude models on Vertex AI).
	Anthropic *AnthropicSpec `json:"anthropic,omitempty"`
	// Timeouts bound each upstream attempt.
	Timeouts *BackendTimeouts `json:"timeouts,omitempty"`
	// MaxConcurrentRequests caps requests in flight to this Backend; 0 is unlimited. A
	// request that finds the Backend full treats it as unavailable and falls back.
	// +kubebuilder:validation:Minimum=0
	MaxConcurrentRequests int32 `json:"maxConcurrentRequests,omitempty"`
	// MaxQueuedRequests lets up to this many requests wait (timeouts.queue at most) for a
	// slot when the Backend is full, before it counts as unavailable. 0: no queue.
	// +kubebuilder:validation:Minimum=0
	MaxQueuedRequests int32 `json:"maxQueuedRequests,omitempty"`
	// OutlierDetection ejects the Backend from routing after repeated failures; on by
	// default with the defaults below.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// HealthCheck probes the Backend actively; a Backend that fails it is ejected until it
	// passes again. Off unless set.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
	// Pricing is what the Backend's tokens cost, for usage records and spend metrics; a
	// ModelRoute's backendRef may set its own.
	Pricing *Pricing `json:"pricing,omitempty"`
	// Pool makes the Backend a pool of model servers, one chosen per request.
	Pool *EndpointPool `json:"pool,omitempty"`
	// Mock configures the in-process Mock backend (schema Mock only).
	Mock *MockSpec `json:"mock,omitempty"`
}

// DestinationType says how Destination names its host.
// +kubebuilder:validation:Enum=Fqdn;Ip;KubernetesService
type DestinationType string

// Destination types.
const (
	DestinationFqdn              DestinationType = "Fqdn"
	DestinationIP                DestinationType = "Ip"
	DestinationKubernetesService DestinationType = "KubernetesService"
)

// Destination is the long form of a Backend's address.
// +kubebuilder:validation:XValidation:rule="(self.type == 'Fqdn') == has(self.fqdn) && (self.type == 'Ip') == has(self.ip) && (self.type == 'KubernetesService') == has(self.kubernetesService)",message="set exactly one of fqdn, ip and kubernetesService, the one type names"
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
	// +kubebuilder:validation:Pattern=`^/[^?#]*$`
	PathPrefix string `json:"pathPrefix,omitempty"`
	// Scheme is http or https. Default: https, except http for type KubernetesService
	// and for ports other than 443 on Ip destinations.
	// +kubebuilder:validation:Enum=http;https
	Scheme string `json:"scheme,omitempty"`
}

// FqdnDestination is a DNS name.
type FqdnDestination struct {
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Hostname string `json:"hostname"`
}

// IPDestination is a literal IP address.
type IPDestination struct {
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="not an IP address"
	Address string `json:"address"`
}

// ServiceDestination is a Service in the cluster.
type ServiceDestination struct {
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace,omitempty"`
}

// DestinationPort is one port of a Destination.
type DestinationPort struct {
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Number int32 `json:"number"`
}

// Credentials are what the gateway adds to each upstream request. Set one.
// +kubebuilder:validation:XValidation:rule="[has(self.apiKey), has(self.awsSigV4), has(self.gcpServiceAccount), has(self.azure)].filter(x, x).size() == 1",message="set exactly one of apiKey, awsSigV4, gcpServiceAccount, azure"
type Credentials struct {
	// APIKey is sent the way the Backend's schema expects: OpenAI Authorization: Bearer,
	// Anthropic x-api-key, AzureOpenAI api-key, GCPVertexAI x-goog-api-key.
	APIKey *SecretValue `json:"apiKey,omitempty"`
	// AWSSigV4 signs every request (AWSBedrock).
	AWSSigV4 *AWSSigV4Credentials `json:"awsSigV4,omitempty"`
	// GCPServiceAccount mints OAuth2 access tokens from a service-account key (GCPVertexAI).
	GCPServiceAccount *GCPServiceAccountCredentials `json:"gcpServiceAccount,omitempty"`
	// Azure is an api-key or Entra ID client credentials (AzureOpenAI).
	Azure *AzureCredentials `json:"azure,omitempty"`
}

// AWSSigV4Credentials name a Secret with accessKeyId, secretAccessKey and optionally
// sessionToken.
type AWSSigV4Credentials struct {
	// Region is the signing region (us-east-1). Default: read from the Backend's host
	// (bedrock-runtime.REGION.amazonaws.com).
	Region    string    `json:"region,omitempty"`
	SecretRef SecretRef `json:"secretRef"`
}

// GCPServiceAccountCredentials mint tokens from a service-account JSON key.
type GCPServiceAccountCredentials struct {
	// SecretRef's key holds the service-account JSON (default key credentials.json). Its
	// token_uri is where tokens are minted.
	SecretRef SecretKeyRef `json:"secretRef"`
	// Project and Location place Vertex AI requests.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="must not be . or .."
	Project string `json:"project"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="must not be . or .."
	Location string `json:"location"`
}

// AzureCredentials are one of an api-key and Entra ID client credentials.
// +kubebuilder:validation:XValidation:rule="has(self.apiKey) != has(self.clientCredentials)",message="set exactly one of apiKey, clientCredentials"
type AzureCredentials struct {
	APIKey            *SecretValue            `json:"apiKey,omitempty"`
	ClientCredentials *AzureClientCredentials `json:"clientCredentials,omitempty"`
}

// AzureClientCredentials mint Entra ID tokens with the client-credentials grant.
type AzureClientCredentials struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="must not be . or .."
	TenantID string `json:"tenantID"`
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientID"`
	// SecretRef's key holds the client secret (default key clientSecret).
	SecretRef SecretKeyRef `json:"secretRef"`
	// AuthorityHost is the Entra ID endpoint. Default https://login.microsoftonline.com.
	// +kubebuilder:validation:Pattern=`^$|^(?i)https?://[^/?#@\s]+(/[^?#]*)?$`
	AuthorityHost string `json:"authorityHost,omitempty"`
	// Scope is requested. Default https://cognitiveservices.azure.com/.default.
	Scope string `json:"scope,omitempty"`
}

// SecretRef names a Secret. Namespace defaults to the referrer's.
type SecretRef struct {
	// +kubebuilder:validation:MinLength=1
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// BackendTLS is the TLS policy of a Backend.
type BackendTLS struct {
	// MinVersion is "1.2" (default) or "1.3"; never lower than 1.2.
	// +kubebuilder:validation:Enum="1.2";"1.3"
	MinVersion string `json:"minVersion,omitempty"`
	// SNI overrides the server name sent and verified. Default: the destination host.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SNI string `json:"sni,omitempty"`
	// CABundleRefs are Secrets whose ca.crt (PEM) replace the system roots.
	CABundleRefs []SecretRef `json:"caBundleRefs,omitempty"`
	// ClientCertificateRef is a Secret with tls.crt and tls.key, for mutual TLS.
	ClientCertificateRef *SecretRef `json:"clientCertificateRef,omitempty"`
	// SubjectAltNames, when set, must include one of the certificate's DNS SANs.
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// PinnedSHA256 are base64 SHA-256 hashes of SubjectPublicKeyInfo; one must match a
	// certificate of the verified chain.
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9+/]{43}=$`
	PinnedSHA256 []string `json:"pinnedSHA256,omitempty"`
}

// HeaderPolicy changes the client headers forwarded upstream. Credentials, cookies and
// hop-by-hop headers are never forwarded, whatever it says.
type HeaderPolicy struct {
	// Allow, when set, forwards only these client headers (case-insensitive).
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	Allow []string `json:"allow,omitempty"`
	// Remove drops these client headers.
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	Remove []string `json:"remove,omitempty"`
	// Set adds or replaces headers on every upstream request.
	// +kubebuilder:validation:MaxItems=128
	Set []HeaderValue `json:"set,omitempty"`
}

// HeaderValue is one header.
// +kubebuilder:validation:XValidation:rule="!(self.name.lowerAscii() in ['authorization', 'x-api-key', 'api-key', 'x-goog-api-key', 'cookie', 'proxy-authorization', 'host', 'content-length'])",message="credentials are set with spec.credentials"
type HeaderValue struct {
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	Name string `json:"name"`
	// +optional
	// +kubebuilder:validation:Pattern=`^[^\r\n\x00]*$`
	Value string `json:"value"`
}

// AzureSpec holds AzureOpenAI settings. The route's upstream model name is the
// deployment name.
type AzureSpec struct {
	// APIVersion is sent as ?api-version=. Default 2024-10-21.
	APIVersion string `json:"apiVersion,omitempty"`
}

// AnthropicSpec holds Anthropic settings.
type AnthropicSpec struct {
	// Version is the anthropic-version header. Default 2023-06-01.
	Version string `json:"version,omitempty"`
	// DefaultMaxTokens is sent when an OpenAI-format request has no max_tokens
	// (Anthropic requires one). Default 4096.
	// +kubebuilder:validation:Minimum=0
	DefaultMaxTokens int64 `json:"defaultMaxTokens,omitempty"`
}

// SecretValue is a value read from a Secret.
type SecretValue struct {
	SecretRef SecretKeyRef `json:"secretRef"`
}

// SecretKeyRef names one key of a Secret. Namespace defaults to the referrer's.
type SecretKeyRef struct {
	// +kubebuilder:validation:MinLength=1
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	Key       string `json:"key,omitempty"`
}

// BackendTimeouts bound one upstream attempt.
type BackendTimeouts struct {
	// Connect bounds the TCP (and TLS) connection set-up. Default 10s.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Connect *metav1.Duration `json:"connect,omitempty"`
	// FirstByte bounds the wait from the start of an attempt (connecting included) to the
	// response headers. Default 60s.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	FirstByte *metav1.Duration `json:"firstByte,omitempty"`
	// Idle bounds the silence between two reads of a response body, and the wait for its
	// first byte when the route sets no firstToken. Default 60s.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Idle *metav1.Duration `json:"idle,omitempty"`
	// Queue bounds a request's wait in the Backend's queue (maxQueuedRequests). Default 5s.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Queue *metav1.Duration `json:"queue,omitempty"`
}

// MockSpec shapes the Mock backend's answers.
type MockSpec struct {
	// Latency is waited before the first byte of every answer.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must be >= 0"
	Latency *metav1.Duration `json:"latency,omitempty"`
	// TokensPerSecond paces streamed output; 0 streams as fast as possible.
	// +kubebuilder:validation:Minimum=0
	TokensPerSecond int32 `json:"tokensPerSecond,omitempty"`
	// Chunks is the number of content chunks a streamed answer is cut into. Default 8.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4096
	Chunks int32 `json:"chunks,omitempty"`
}

// BackendList is a list of Backends.
// +kubebuilder:object:root=true
type BackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Backend `json:"items"`
}
