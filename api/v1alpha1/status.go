package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResourceStatus is what the controller reports on every Sluice resource (cluster mode;
// files loaded with -f carry none).
type ResourceStatus struct {
	// ObservedGeneration is the metadata.generation the conditions describe.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions are Accepted, ResolvedRefs and, where it applies, Programmed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types, after the Gateway API's.
const (
	// ConditionAccepted: the resource is valid on its own.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs: everything it references exists and is valid.
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionProgrammed: it is in the snapshot the data path serves.
	ConditionProgrammed = "Programmed"
)

// Condition reasons.
const (
	ReasonAccepted      = "Accepted"
	ReasonInvalid       = "Invalid"
	ReasonResolvedRefs  = "ResolvedRefs"
	ReasonRefNotFound   = "BackendNotFound"
	ReasonInvalidRef    = "InvalidReference"
	ReasonSecretMissing = "SecretNotFound"
	ReasonProgrammed    = "Programmed"
	ReasonPending       = "Pending"
)
