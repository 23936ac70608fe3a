package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RateLimitPolicy limits requests, tokens and spend per bucket (a key, a team, a model).
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Storage",type=string,JSONPath=`.spec.storage.type`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RateLimitPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RateLimitPolicySpec `json:"spec"`
	Status            ResourceStatus      `json:"status,omitempty"`
}

// RateLimitPolicySpec is where the policy applies and its rules.
type RateLimitPolicySpec struct {
	// TargetRefs are the ModelRoutes it applies to; empty: every request.
	TargetRefs []TargetRef `json:"targetRefs,omitempty"`
	// Rules are all charged; any over its limit rejects.
	// +kubebuilder:validation:MinItems=1
	// +listType=map
	// +listMapKey=name
	Rules []RateLimitRule `json:"rules"`
	// Storage is where counters live. Default Memory.
	Storage *RateLimitStorage `json:"storage,omitempty"`
	// FailureMode applies when the store is unreachable: FailOpen (default) or FailClosed.
	FailureMode FailureMode `json:"failureMode,omitempty"`
	// EmitRateLimitResponseHeaders adds x-ratelimit-* headers to every answer.
	EmitRateLimitResponseHeaders bool `json:"emitRateLimitResponseHeaders,omitempty"`
	// OutputTokenEstimate is the output reserved for a request that sets no max_tokens.
	// Default 256.
	// +kubebuilder:validation:Minimum=0
	OutputTokenEstimate int64 `json:"outputTokenEstimate,omitempty"`
}

// TargetRef names a resource a policy applies to.
type TargetRef struct {
	// Kind is ModelRoute, or MCPRoute for RateLimitPolicies and PayloadProcessors.
	// +kubebuilder:validation:Enum=ModelRoute;MCPRoute
	Kind string `json:"kind"`
	// +kubebuilder:validation:MinLength=1
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// RateLimitRule is one limit.
// +kubebuilder:validation:XValidation:rule="!has(self.costExpression) || size(self.costExpression) == 0 || self.limit.volumeUnits != 'Requests'",message="costExpression is not for a Requests limit: it counts requests"
type RateLimitRule struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key is a CEL expression giving the bucket (principal.team, request.model, ...).
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
	// Limit is the volume per window.
	Limit RateLimitValue `json:"limit"`
	// CostExpression is CEL over usage.* giving the cost of an answer. Default: by unit.
	CostExpression string `json:"costExpression,omitempty"`
	// TrafficMatcher limits the rule to matching requests.
	TrafficMatcher *TrafficMatcher `json:"trafficMatcher,omitempty"`
	// ShadowMode counts and reports but never rejects.
	ShadowMode bool `json:"shadowMode,omitempty"`
}

// RateLimitValue is volume per timeValue × timeUnit.
type RateLimitValue struct {
	VolumeUnits VolumeUnit `json:"volumeUnits"`
	// +kubebuilder:validation:Minimum=1
	Volume   int64    `json:"volume"`
	TimeUnit TimeUnit `json:"timeUnit"`
	// TimeValue multiplies TimeUnit. Default 1.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	TimeValue int32 `json:"timeValue,omitempty"`
}

// VolumeUnit is what a limit counts.
// +kubebuilder:validation:Enum=Requests;Tokens;InputTokens;OutputTokens
type VolumeUnit string

// Volume units.
const (
	VolumeRequests     VolumeUnit = "Requests"
	VolumeTokens       VolumeUnit = "Tokens"
	VolumeInputTokens  VolumeUnit = "InputTokens"
	VolumeOutputTokens VolumeUnit = "OutputTokens"
)

// TimeUnit is a window's unit.
// +kubebuilder:validation:Enum=Second;Minute;Hour;Day;Month
type TimeUnit string

// Time units.
const (
	TimeSecond TimeUnit = "Second"
	TimeMinute TimeUnit = "Minute"
	TimeHour   TimeUnit = "Hour"
	TimeDay    TimeUnit = "Day"
	TimeMonth  TimeUnit = "Month"
)

// TrafficMatcher selects requests.
type TrafficMatcher struct {
	CELMatcher string `json:"celMatcher,omitempty"`
}

// RateLimitStorage is Memory or Redis.
// +kubebuilder:validation:XValidation:rule="self.type == 'Redis' ? has(self.redis) : !has(self.redis)",message="redis is required for type Redis and only for it"
type RateLimitStorage struct {
	Type  StorageType   `json:"type"`
	Redis *RedisStorage `json:"redis,omitempty"`
}

// StorageType names a store.
// +kubebuilder:validation:Enum=Memory;Redis
type StorageType string

// Stores.
const (
	StorageMemory StorageType = "Memory"
	StorageRedis  StorageType = "Redis"
)

// RedisStorage locates Redis.
type RedisStorage struct {
	// URL is redis://[user:password@]host:port/db (rediss:// for TLS).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:Pattern=`^(?i)rediss?://([^/?#]*@)?[^/?#@]+([/?#].*)?$`
	URL string `json:"url"`
}

// FailureMode is what to do when the store is unreachable.
// +kubebuilder:validation:Enum=FailOpen;FailClosed
type FailureMode string

// Failure modes.
const (
	FailOpen   FailureMode = "FailOpen"
	FailClosed FailureMode = "FailClosed"
)

// RateLimitPolicyList is a list of RateLimitPolicies.
// +kubebuilder:object:root=true
type RateLimitPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RateLimitPolicy `json:"items"`
}
