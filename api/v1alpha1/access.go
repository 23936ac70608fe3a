package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIKey is one caller's key. Only its hash is configured (or a Secret holding the key).
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.spec.subject`
// +kubebuilder:printcolumn:name="Team",type=string,JSONPath=`.spec.team`
// +kubebuilder:printcolumn:name="Disabled",type=boolean,JSONPath=`.spec.disabled`,priority=1
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type APIKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              APIKeySpec     `json:"spec"`
	Status            ResourceStatus `json:"status,omitempty"`
}

// APIKeySpec says whose key it is.
// +kubebuilder:validation:XValidation:rule="(has(self.hash) && self.hash != \"\") != has(self.secretRef)",message="set exactly one of hash and secretRef"
type APIKeySpec struct {
	// Hash is "sha256:" and the hex SHA-256 of the key. Set Hash or SecretRef.
	// +kubebuilder:validation:Pattern=`^$|^sha256:[0-9a-fA-F]{64}$`
	Hash string `json:"hash,omitempty"`
	// SecretRef names a Secret key holding the key itself (default key "key").
	SecretRef *SecretKeyRef `json:"secretRef,omitempty"`
	// Subject is who the key belongs to.
	// +kubebuilder:validation:Pattern=`\S`
	Subject string `json:"subject"`
	// Team and Roles are what access rules match.
	Team  string   `json:"team,omitempty"`
	Roles []string `json:"roles,omitempty"`
	// ExpiresAt, when set, is when the key stops working.
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// Disabled turns the key off without deleting it.
	Disabled bool `json:"disabled,omitempty"`
}

// APIKeyList is a list of APIKeys.
// +kubebuilder:object:root=true
type APIKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []APIKey `json:"items"`
}

// AccessPolicy says who may call the gateway and what they may do. At most one exists.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Default",type=string,JSONPath=`.spec.default`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AccessPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              AccessPolicySpec `json:"spec"`
	Status            ResourceStatus   `json:"status,omitempty"`
}

// AccessPolicySpec is authentication, then rules.
type AccessPolicySpec struct {
	Authentication Authentication `json:"authentication"`
	// Rules are tried in order; the first whose from and when match decides.
	// +listType=map
	// +listMapKey=name
	Rules []AccessRule `json:"rules,omitempty"`
	// Default decides when no rule matches: Deny (default) or Allow.
	Default AccessDecision `json:"default,omitempty"`
}

// AccessDecision is Allow or Deny.
// +kubebuilder:validation:Enum=Allow;Deny
type AccessDecision string

// Decisions.
const (
	AccessAllow AccessDecision = "Allow"
	AccessDeny  AccessDecision = "Deny"
)

// Authentication lists the accepted ways to identify a caller.
// +kubebuilder:validation:XValidation:rule="has(self.apiKeys) || has(self.jwt) || (has(self.anonymous) && self.anonymous)",message="enable apiKeys, jwt or anonymous"
type Authentication struct {
	// APIKeys, when set, accepts the APIKey resources' keys from Authorization: Bearer or
	// x-api-key.
	APIKeys *APIKeyAuthentication `json:"apiKeys,omitempty"`
	// JWT accepts bearer JWTs from these providers.
	JWT *JWTAuthentication `json:"jwt,omitempty"`
	// Anonymous lets unauthenticated callers in as subject "anonymous".
	Anonymous bool `json:"anonymous,omitempty"`
}

// APIKeyAuthentication turns API keys on.
type APIKeyAuthentication struct{}

// JWTAuthentication is the accepted token issuers.
type JWTAuthentication struct {
	// +kubebuilder:validation:MinItems=1
	// +listType=map
	// +listMapKey=issuer
	Providers []JWTProvider `json:"providers"`
}

// JWTProvider is one token issuer.
// +kubebuilder:validation:XValidation:rule="(has(self.jwksURI) && self.jwksURI != \"\") != (has(self.jwks) && self.jwks != \"\")",message="set exactly one of jwksURI and jwks"
type JWTProvider struct {
	// +kubebuilder:validation:MinLength=1
	Issuer    string   `json:"issuer"`
	Audiences []string `json:"audiences,omitempty"`
	// JWKSURI is fetched (and refetched on an unknown kid); or JWKS inline.
	// +kubebuilder:validation:Pattern=`^$|^(?i)https?://[^/?#\s]+`
	JWKSURI string `json:"jwksURI,omitempty"`
	JWKS    string `json:"jwks,omitempty"`
	// Claims maps claims (dotted paths) to the principal.
	Claims *ClaimMapping `json:"claims,omitempty"`
}

// ClaimMapping names the claims holding subject, team and roles.
type ClaimMapping struct {
	Subject string `json:"subject,omitempty"`
	Team    string `json:"team,omitempty"`
	Roles   string `json:"roles,omitempty"`
}

// AccessRule allows some callers some things.
type AccessRule struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// From matches callers; empty matches everyone. Any listed value matches.
	From *CallerMatch `json:"from,omitempty"`
	// Allow is what a matching caller may do; an empty list allows anything of its kind.
	Allow AccessAllowance `json:"allow,omitempty"`
	// When is an optional CEL condition over request and principal.
	When string `json:"when,omitempty"`
}

// CallerMatch matches principals.
type CallerMatch struct {
	Subjects []string `json:"subjects,omitempty"`
	Teams    []string `json:"teams,omitempty"`
	Roles    []string `json:"roles,omitempty"`
}

// AccessAllowance is what a rule allows.
type AccessAllowance struct {
	// Models are model names or globs.
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:Pattern=`^[^\[\]\\]+$`
	Models []string `json:"models,omitempty"`
	// Endpoints are chat, completions, embeddings, messages (count_tokens is messages)
	// and mcp (every MCPRoute).
	// +kubebuilder:validation:items:Enum=chat;completions;embeddings;messages;mcp
	Endpoints []string `json:"endpoints,omitempty"`
	// Tools are MCP tool names (with their route's prefix) or globs a caller may list and
	// call; empty allows every tool. Models do not limit MCP requests, nor tools model
	// requests.
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:Pattern=`^[^\[\]\\]+$`
	Tools []string `json:"tools,omitempty"`
	// Regions limits the Backends the caller's requests may reach.
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Regions []string `json:"regions,omitempty"`
}

// AccessPolicyList is a list of AccessPolicies.
// +kubebuilder:object:root=true
type AccessPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AccessPolicy `json:"items"`
}
