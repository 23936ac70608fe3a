package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PayloadProcessor is an ordered chain of processors that inspect, change or reject
// requests and answers (the payload-processing proposal of the AI Gateway Working Group).
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.spec.phase`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
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
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	Processors []Processor `json:"processors"`
}

// PayloadPhase is when a PayloadProcessor's request processors run.
// +kubebuilder:validation:Enum=PreRouting;PostRouting
type PayloadPhase string

// Phases.
const (
	PhasePreRouting  PayloadPhase = "PreRouting"
	PhasePostRouting PayloadPhase = "PostRouting"
)

// ProcessorType says where a processor runs.
// +kubebuilder:validation:Enum=InProcess;ExtProcess
type ProcessorType string

// Processor types.
const (
	ProcessorInProcess  ProcessorType = "InProcess"
	ProcessorExtProcess ProcessorType = "ExtProcess"
)

// Processor is one step of the chain.
// +kubebuilder:validation:XValidation:rule="has(self.type) ? ((self.type == 'InProcess') == has(self.inProcess) && (self.type == 'ExtProcess') == has(self.extProcess)) : has(self.inProcess) != has(self.extProcess)",message="set exactly one of inProcess and extProcess, the one type names"
type Processor struct {
	// Name identifies the processor in errors, logs, metrics and x-sluice-flags.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	Name string `json:"name"`
	// Type is InProcess or ExtProcess; default: whichever of inProcess and extProcess is set.
	Type ProcessorType `json:"type,omitempty"`
	// FailureMode applies when the processor errs or times out: FailClosed (default)
	// rejects the request, FailOpen lets it pass unchanged.
	FailureMode FailureMode `json:"failureMode,omitempty"`
	// Timeout bounds the processor per call. Default 50ms in process, 200ms external.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s') && duration(self) <= duration('60s')",message="must be > 0 and at most 60s"
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
// +kubebuilder:validation:Enum=User;Tool;System;Assistant
type MessagePart string

// Message parts.
const (
	PartUser      MessagePart = "User"
	PartTool      MessagePart = "Tool"
	PartSystem    MessagePart = "System"
	PartAssistant MessagePart = "Assistant"
)

// Scope is which side of the exchange a processor reads.
// +kubebuilder:validation:Enum=Request;Response
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
// +kubebuilder:validation:XValidation:rule="[has(self.promptInjection), has(self.pii), has(self.contentFilter), has(self.signatures)].filter(x, x).size() <= 1",message="set one detector per processor (promptInjection, pii, contentFilter or signatures); use several processors to chain them"
// +kubebuilder:validation:XValidation:rule="[has(self.promptInjection), has(self.pii), has(self.contentFilter), has(self.signatures)].filter(x, x).size() == 0 || (has(self.setHeaders) ? size(self.setHeaders) : 0) + (has(self.setBodyFields) ? size(self.setBodyFields) : 0) + (has(self.removeHeaders) ? size(self.removeHeaders) : 0) + (has(self.removeBodyFields) ? size(self.removeBodyFields) : 0) == 0",message="a detector and mutations cannot share a processor; use two processors so their order is explicit"
// +kubebuilder:validation:XValidation:rule="[has(self.promptInjection), has(self.pii), has(self.contentFilter), has(self.signatures)].filter(x, x).size() + (has(self.setHeaders) ? size(self.setHeaders) : 0) + (has(self.setBodyFields) ? size(self.setBodyFields) : 0) + (has(self.removeHeaders) ? size(self.removeHeaders) : 0) + (has(self.removeBodyFields) ? size(self.removeBodyFields) : 0) > 0",message="set a detector (promptInjection, pii, contentFilter, signatures) or a mutation (setHeaders, setBodyFields, removeHeaders, removeBodyFields)"
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
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(f, size(f.name) <= 256 && f.name.matches('^[-!#$%&\\'*+.^_`|~0-9A-Za-z]+$'))",message="setHeaders: not a valid header name"
	SetHeaders []CELField `json:"setHeaders,omitempty"`
	// SetBodyFields sets request body fields (dotted paths) to CEL values.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(f, f.name.matches('^[^.]+(\\\\.[^.]+)*$') && !(f.name == 'model' || f.name == 'stream' || f.name == 'stream_options' || f.name.startsWith('model.') || f.name.startsWith('stream.') || f.name.startsWith('stream_options.')))",message="setBodyFields: a dotted path with no empty segment; model, stream and stream_options are decided by the client and the gateway"
	SetBodyFields []CELField `json:"setBodyFields,omitempty"`
	// RemoveHeaders removes request headers.
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern="^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"
	// +kubebuilder:validation:MaxItems=64
	RemoveHeaders []string `json:"removeHeaders,omitempty"`
	// RemoveBodyFields removes request body fields (dotted paths).
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[^.]+(\.[^.]+)*$`
	// +kubebuilder:validation:XValidation:rule="self.all(p, !(p == 'model' || p == 'stream' || p == 'stream_options' || p.startsWith('model.') || p.startsWith('stream.') || p.startsWith('stream_options.')))",message="model, stream and stream_options are decided by the client and the gateway"
	RemoveBodyFields []string `json:"removeBodyFields,omitempty"`
}

// PromptInjectionProcessor configures the prompt-injection detector.
type PromptInjectionProcessor struct {
	// Action is Block (default) or Flag.
	// +kubebuilder:validation:Enum=Block;Flag
	Action Action `json:"action,omitempty"`
	// Threshold is the score in [0,1] at or above which a text is an attack. Default 0.5.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1
	Threshold *float64 `json:"threshold,omitempty"`
}

// PIIProcessor configures PII and secret detection.
type PIIProcessor struct {
	// Entities to detect: Email, Phone, CreditCard, SSN, IBAN, IPAddress, Secret. Default all.
	// +kubebuilder:validation:items:Enum=Email;Phone;CreditCard;SSN;IBAN;IPAddress;Secret
	Entities []string `json:"entities,omitempty"`
	// Action is Redact (default), Block or Flag.
	// +kubebuilder:validation:Enum=Redact;Block;Flag
	Action Action `json:"action,omitempty"`
	// Scope is Request (default), Response or both.
	Scope []Scope `json:"scope,omitempty"`
}

// ContentFilterProcessor configures word and regex lists.
type ContentFilterProcessor struct {
	// Deny lists what must not pass.
	// +kubebuilder:validation:MinItems=1
	Deny []Pattern `json:"deny"`
	// Allow lists exceptions: a deny match inside an allow match is ignored.
	Allow []Pattern `json:"allow,omitempty"`
	// Action is Block (default), Redact or Flag.
	// +kubebuilder:validation:Enum=Block;Redact;Flag
	Action Action `json:"action,omitempty"`
	// Scope is Request (default), Response or both.
	Scope []Scope `json:"scope,omitempty"`
}

// Pattern is a word (whole words, case-insensitive) or a regular expression (RE2).
// +kubebuilder:validation:XValidation:rule="(has(self.word) && self.word != \"\") != (has(self.regex) && self.regex != \"\")",message="set word or regex, not both"
type Pattern struct {
	// +kubebuilder:validation:Pattern=`^$|(?s)^\S(.*\S)?$`
	Word  string `json:"word,omitempty"`
	Regex string `json:"regex,omitempty"`
}

// SignaturesProcessor configures attack signatures and traffic anomalies.
type SignaturesProcessor struct {
	// Action is Flag (default), Block or Throttle.
	// +kubebuilder:validation:Enum=Flag;Block;Throttle
	Action Action `json:"action,omitempty"`
	// Penalty is how long Throttle rejects the principal's requests. Default 1m.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Penalty *metav1.Duration `json:"penalty,omitempty"`
	// Anomalies tunes traffic-anomaly detection; omitted: on with defaults.
	Anomalies *AnomalySettings `json:"anomalies,omitempty"`
}

// AnomalySettings tune per-principal anomaly detection against an EWMA baseline.
type AnomalySettings struct {
	// Disabled turns anomaly detection off (signatures still run).
	Disabled bool `json:"disabled,omitempty"`
	// HalfLife of the baseline. Default 10m.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="must be at least 1m"
	HalfLife *metav1.Duration `json:"halfLife,omitempty"`
	// RateFactor: requests in a minute above this multiple of the baseline. Default 5.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:ExclusiveMinimum=true
	RateFactor *float64 `json:"rateFactor,omitempty"`
	// TokenFactor: tokens in a minute above this multiple of the baseline. Default 5.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:ExclusiveMinimum=true
	TokenFactor *float64 `json:"tokenFactor,omitempty"`
	// DuplicatePrompts: near-identical prompts in a minute. Default 10.
	// +kubebuilder:validation:Minimum=0
	DuplicatePrompts int32 `json:"duplicatePrompts,omitempty"`
}

// CELField is a name (a header, or a dotted body path) and a CEL expression for its value.
type CELField struct {
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
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
// +kubebuilder:validation:Enum=ExtProc;HTTP
type ExtProtocol string

// External protocols.
const (
	ExtProtocolExtProc ExtProtocol = "ExtProc"
	ExtProtocolHTTP    ExtProtocol = "HTTP"
)

// BackendObjectRef names a Backend.
type BackendObjectRef struct {
	// +kubebuilder:validation:MinLength=1
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
