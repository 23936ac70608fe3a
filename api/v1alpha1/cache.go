package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CachePolicy caches answers to identical requests, so the same question is not paid for
// twice. Tenants never share entries: the key includes the scope.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Scope",type=string,JSONPath=`.spec.scope`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CachePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +optional
	Spec   CachePolicySpec `json:"spec"`
	Status ResourceStatus  `json:"status,omitempty"`
}

// CachePolicySpec is where the cache applies and how it keeps answers.
// +kubebuilder:validation:XValidation:rule="(has(self.mode) && self.mode == 'Semantic') == has(self.semantic)",message="semantic is required for mode Semantic and only for it"
type CachePolicySpec struct {
	// TargetRefs are the ModelRoutes it applies to; empty: every route.
	TargetRefs []TargetRef `json:"targetRefs,omitempty"`
	// Mode is Exact (default): a canonical hash of the request; or Semantic: the same, and
	// else a request whose last user message is close in meaning to a cached one's, all
	// else (system prompt, earlier turns, tools, parameters) being equal.
	Mode CacheMode `json:"mode,omitempty"`
	// TTL is how long an answer is served from the cache. Default 10m.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	TTL *metav1.Duration `json:"ttl,omitempty"`
	// Scope is who shares entries: Team (default), Subject or Global.
	Scope CacheScope `json:"scope,omitempty"`
	// MaxEntries bounds a Memory store (least recently used evicted). Default 10000.
	// +kubebuilder:validation:Minimum=0
	MaxEntries int32 `json:"maxEntries,omitempty"`
	// Storage is Memory (default) or Redis.
	Storage *CacheStorage `json:"storage,omitempty"`
	// Semantic configures Mode Semantic.
	Semantic *SemanticCache `json:"semantic,omitempty"`
}

// CacheMode is how requests are matched.
// +kubebuilder:validation:Enum=Exact;Semantic
type CacheMode string

// Cache modes.
const (
	CacheExact    CacheMode = "Exact"
	CacheSemantic CacheMode = "Semantic"
)

// CacheScope is who shares cached answers.
// +kubebuilder:validation:Enum=Team;Subject;Global
type CacheScope string

// Cache scopes.
const (
	CacheScopeTeam    CacheScope = "Team"
	CacheScopeSubject CacheScope = "Subject"
	CacheScopeGlobal  CacheScope = "Global"
)

// CacheStorage is where entries live.
// +kubebuilder:validation:XValidation:rule="self.type == 'Redis' ? has(self.redis) : !has(self.redis)",message="redis is required for type Redis and only for it"
type CacheStorage struct {
	Type  StorageType   `json:"type"`
	Redis *RedisStorage `json:"redis,omitempty"`
}

// SemanticCache matches by embedding similarity: the last user message is embedded
// through a Backend's embeddings API and compared by cosine similarity with the cached
// questions of the same scope and context.
type SemanticCache struct {
	// BackendRef is the Backend that computes embeddings (its OpenAI-compatible
	// /embeddings, or the provider's equivalent).
	BackendRef BackendObjectRef `json:"backendRef"`
	// Model is the embedding model sent to it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Model string `json:"model"`
	// Threshold is the least cosine similarity that counts as the same question, in
	// (0, 1]. Default 0.95.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Maximum=1
	Threshold *float64 `json:"threshold,omitempty"`
	// Timeout bounds the embeddings call; when it runs out the request goes on uncached.
	// Default 2s.
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// CachePolicyList is a list of CachePolicies.
// +kubebuilder:object:root=true
type CachePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CachePolicy `json:"items"`
}

// Cache defaults.
const (
	DefaultCacheTTL        = 10 * time.Minute
	DefaultCacheMaxEntries = 10000
	// DefaultSemanticThreshold is high on purpose: a wrong cached answer costs more
	// than a paid one.
	DefaultSemanticThreshold = 0.95
	DefaultSemanticTimeout   = 2 * time.Second
)

// Default fills empty fields.
func (p *CachePolicy) Default() {
	if p.Namespace == "" {
		p.Namespace = DefaultNamespace
	}
	s := &p.Spec
	if s.Mode == "" {
		s.Mode = CacheExact
	}
	defaultDuration(&s.TTL, DefaultCacheTTL)
	if s.Scope == "" {
		s.Scope = CacheScopeTeam
	}
	if s.MaxEntries == 0 {
		s.MaxEntries = DefaultCacheMaxEntries
	}
	if s.Storage == nil {
		s.Storage = &CacheStorage{Type: StorageMemory}
	}
	if sc := s.Semantic; sc != nil {
		if sc.Threshold == nil {
			t := DefaultSemanticThreshold
			sc.Threshold = &t
		}
		defaultDuration(&sc.Timeout, DefaultSemanticTimeout)
		if sc.BackendRef.Namespace == "" {
			sc.BackendRef.Namespace = p.Namespace
		}
	}
	for i := range s.TargetRefs {
		if s.TargetRefs[i].Namespace == "" {
			s.TargetRefs[i].Namespace = p.Namespace
		}
	}
}

// Validate checks a CachePolicy alone.
func (p *CachePolicy) Validate() field.ErrorList {
	errs := validateMeta(p.Name, p.Namespace)
	sp := field.NewPath("spec")
	s := &p.Spec
	errs = append(errs, validateTargetRefs(s.TargetRefs, sp.Child("targetRefs"), "ModelRoute")...)
	switch s.Mode {
	case CacheExact:
		if s.Semantic != nil {
			errs = append(errs, field.Forbidden(sp.Child("semantic"), "only for mode Semantic"))
		}
	case CacheSemantic:
		sc := s.Semantic
		if sc == nil {
			errs = append(errs, field.Required(sp.Child("semantic"), "mode Semantic needs backendRef and model"))
			break
		}
		scp := sp.Child("semantic")
		if sc.BackendRef.Name == "" {
			errs = append(errs, field.Required(scp.Child("backendRef", "name"), ""))
		}
		if sc.Model == "" || len(sc.Model) > 256 {
			errs = append(errs, field.Required(scp.Child("model"), "the embedding model (at most 256 characters)"))
		}
		if t := sc.Threshold; t != nil && !(*t > 0 && *t <= 1) {
			errs = append(errs, field.Invalid(scp.Child("threshold"), *t, "must be in (0, 1]"))
		}
		errs = append(errs, positive(scp.Child("timeout"), sc.Timeout)...)
	default:
		errs = append(errs, field.NotSupported(sp.Child("mode"), s.Mode, []string{"Exact", "Semantic"}))
	}
	errs = append(errs, positive(sp.Child("ttl"), s.TTL)...)
	switch s.Scope {
	case CacheScopeTeam, CacheScopeSubject, CacheScopeGlobal:
	default:
		errs = append(errs, field.NotSupported(sp.Child("scope"), s.Scope, []string{"Team", "Subject", "Global"}))
	}
	if s.MaxEntries < 1 {
		errs = append(errs, field.Invalid(sp.Child("maxEntries"), s.MaxEntries, "must be > 0"))
	}
	if st := s.Storage; st != nil {
		errs = append(errs, validateStorage(st.Type, st.Redis, sp.Child("storage"))...)
	}
	return errs
}
