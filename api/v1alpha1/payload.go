package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PayloadProcessor is an ordered chain of processors that inspect, change or reject
// requests and answers (the payload-processing proposal of the AI Gateway Working Group).
// +kubebuilder:object:root=true
type PayloadProcessor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              PayloadProcessorSpec `json:"spec"`
	Status            ResourceStatus       `json:"status,omitempty"`
}

// PayloadProcessorSpec is where the chain applies and what it runs.
type PayloadProcessorSpec struct {
	// TargetRefs are the ModelRoutes it applies to; empty: every request.
	TargetRefs []TargetRef `json:"targetRefs,omitempty"`
	// Phase is when the request-side processors run: PreRouting (default; after access
	// control, before the route's rate limits) or PostRouting (after the route is chosen
	// and the request admitted by the rate limits).
	Phase PayloadPhase `json:"phase,omitempty"`
	// Processors run in order; the first rejection ends the chain.
	Processors []Processor `json:"processors"`
}

// PayloadPhase is when a PayloadProcessor's request processors run.
type PayloadPhase string

// Phases.
const (
	PhasePreRouting  PayloadPhase = "PreRouting"
	PhasePostRouting PayloadPhase = "PostRouting"
)

// ProcessorType says where a processor runs.
type ProcessorType string

// Processor types.
const (
	ProcessorInProcess  ProcessorType = "InProcess"
	ProcessorExtProcess ProcessorType = "ExtProcess"
)

// Processor is one step of the chain.
type Processor struct {
	// Name identifies the processor in errors, logs, metrics and x-sluice-flags.
	Name string `json:"name"`
	// Type is InProcess or ExtProcess; default: whichever of inProcess and extProcess is set.
	Type ProcessorType `json:"type,omitempty"`
	// FailureMode applies when the processor errs or times out: FailClosed (default)
	// rejects the request, FailOpen lets it pass unchanged.
	FailureMode FailureMode `json:"failureMode,omitempty"`
	// Timeout bounds the processor per call. Default 50ms in process, 200ms external.
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Inspect names the parts of a request the detectors read: User, Tool (tool results
	// and documents), System, Assistant. Default [User, Tool].
	Inspect []MessagePart `json:"inspect,omitempty"`
	// InProcess configures a built-in processor.
	InProcess *InProcessProcessor `json:"inProcess,omitempty"`
	// ExtProcess configures an external processor.
	ExtProcess *ExtProcessProcessor `json:"extProcess,omitempty"`
}

// MessagePart is a kind of text in a request.
type MessagePart string

// Message parts.
const (
	PartUser      MessagePart = "User"
	PartTool      MessagePart = "Tool"
	PartSystem    MessagePart = "System"
	PartAssistant MessagePart = "Assistant"
)

// Scope is which side of the exchange a processor reads.
type Scope string

// Scopes.
const (
	ScopeRequest  Scope = "Request"
	ScopeResponse Scope = "Response"
)

// Action is what a detector does with what it found.
type Action string

// Actions.
const (
	ActionBlock    Action = "Block"
	ActionRedact   Action = "Redact"
	ActionFlag     Action = "Flag"
	ActionThrottle Action = "Throttle"
)

// InProcessProcessor is exactly one built-in detector, or any of the mutations.
type InProcessProcessor struct {
	// PromptInjection detects prompt injection and jailbreaks.
	PromptInjection *PromptInjectionProcessor `json:"promptInjection,omitempty"`
	// PII detects personal data and secrets.
	PII *PIIProcessor `json:"pii,omitempty"`
	// ContentFilter matches deny and allow lists of words and regexes.
	ContentFilter *ContentFilterProcessor `json:"contentFilter,omitempty"`
	// Signatures detects known attack signatures and per-principal traffic anomalies.
	Signatures *SignaturesProcessor `json:"signatures,omitempty"`
	// SetHeaders sets request headers (sent upstream) to CEL values.
	SetHeaders []CELField `json:"setHeaders,omitempty"`
	// SetBodyFields sets request body fields (dotted paths) to CEL values.
	SetBodyFields []CELField `json:"setBodyFields,omitempty"`
	// RemoveHeaders removes request headers.
	RemoveHeaders []string `json:"removeHeaders,omitempty"`
	// RemoveBodyFields removes request body fields (dotted paths).
	RemoveBodyFields []string `json:"removeBodyFields,omitempty"`
}

// PromptInjectionProcessor configures the prompt-injection detector.
type PromptInjectionProcessor struct {
	// Action is Block (default) or Flag.
	Action Action `json:"action,omitempty"`
	// Threshold is the score in [0,1] at or above which a text is an attack. Default 0.5.
	Threshold *float64 `json:"threshold,omitempty"`
}

// PIIProcessor configures PII and secret detection.
type PIIProcessor struct {
	// Entities to detect: Email, Phone, CreditCard, SSN, IBAN, IPAddress, Secret. Default all.
	Entities []string `json:"entities,omitempty"`
	// Action is Redact (default), Block or Flag.
	Action Action `json:"action,omitempty"`
	// Scope is Request (default), Response or both.
	Scope []Scope `json:"scope,omitempty"`
}

// ContentFilterProcessor configures word and regex lists.
type ContentFilterProcessor struct {
	// Deny lists what must not pass.
	Deny []Pattern `json:"deny"`
	// Allow lists exceptions: a deny match inside an allow match is ignored.
	Allow []Pattern `json:"allow,omitempty"`
	// Action is Block (default), Redact or Flag.
	Action Action `json:"action,omitempty"`
	// Scope is Request (default), Response or both.
	Scope []Scope `json:"scope,omitempty"`
}

// Pattern is a word (whole words, case-insensitive) or a regular expression (RE2).
type Pattern struct {
	Word  string `json:"word,omitempty"`
	Regex string `json:"regex,omitempty"`
}

// SignaturesProcessor configures attack signatures and traffic anomalies.
type SignaturesProcessor struct {
	// Action is Flag (default), Block or Throttle.
	Action Action `json:"action,omitempty"`
	// Penalty is how long Throttle rejects the principal's requests. Default 1m.
	Penalty *metav1.Duration `json:"penalty,omitempty"`
	// Anomalies tunes traffic-anomaly detection; omitted: on with defaults.
	Anomalies *AnomalySettings `json:"anomalies,omitempty"`
}

// AnomalySettings tune per-principal anomaly detection against an EWMA baseline.
type AnomalySettings struct {
	// Disabled turns anomaly detection off (signatures still run).
	Disabled bool `json:"disabled,omitempty"`
	// HalfLife of the baseline. Default 10m.
	HalfLife *metav1.Duration `json:"halfLife,omitempty"`
	// RateFactor: requests in a minute above this multiple of the baseline. Default 5.
	RateFactor *float64 `json:"rateFactor,omitempty"`
	// TokenFactor: tokens in a minute above this multiple of the baseline. Default 5.
	TokenFactor *float64 `json:"tokenFactor,omitempty"`
	// DuplicatePrompts: near-identical prompts in a minute. Default 10.
	DuplicatePrompts int32 `json:"duplicatePrompts,omitempty"`
}

// CELField is a name (a header, or a dotted body path) and a CEL expression for its value.
type CELField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ExtProcessProcessor calls an external processor.
type ExtProcessProcessor struct {
	// Protocol is ExtProc (Envoy's External Processing gRPC API) or HTTP (a JSON webhook).
	Protocol ExtProtocol `json:"protocol"`
	// BackendRef is the Backend the processor is reached at (its url, TLS and credentials).
	BackendRef BackendObjectRef `json:"backendRef"`
	// Scope is Request (default), Response or both.
	Scope []Scope `json:"scope,omitempty"`
}

// ExtProtocol is how an external processor is called.
type ExtProtocol string

// External protocols.
const (
	ExtProtocolExtProc ExtProtocol = "ExtProc"
	ExtProtocolHTTP    ExtProtocol = "HTTP"
)

// BackendObjectRef names a Backend.
type BackendObjectRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// PayloadProcessorList is a list of PayloadProcessors.
// +kubebuilder:object:root=true
type PayloadProcessorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PayloadProcessor `json:"items"`
}
