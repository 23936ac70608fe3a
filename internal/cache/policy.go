package cache

import (
	"time"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

// Scope is who shares cached answers.
type Scope uint8

// Scopes.
const (
	ScopeTeam Scope = iota
	ScopeSubject
	ScopeGlobal
)

// Policy is one compiled CachePolicy.
type Policy struct {
	Ref   string
	TTL   time.Duration
	Scope Scope
	Store Store
	// Semantic, when set, also matches questions by meaning.
	Semantic *Semantic
}

// Semantic is a policy's semantic matching: embeddings from Backend (a Backend ref) and
// Model, a match at Threshold cosine similarity or above, in Index.
type Semantic struct {
	Backend   string
	Model     string
	Threshold float32
	Timeout   time.Duration
	Index     *SemanticIndex
}

// ScopeKey names the tenant whose entries a request may read and write: one team or
// subject never receives another's answer. An unauthenticated caller is the anonymous
// tenant of its scope.
func (p *Policy) ScopeKey(pr *exchange.Principal) string {
	switch p.Scope {
	case ScopeGlobal:
		return "global"
	case ScopeSubject:
		if pr == nil {
			return "subject:"
		}
		return "subject:" + pr.Subject
	}
	if pr == nil {
		return "team:"
	}
	return "team:" + pr.Team
}

// Set is the compiled CachePolicies: at most one applies to a route (a targeted policy
// before an untargeted one).
type Set struct {
	ByRoute map[string]*Policy
	All     *Policy
}

// For returns the policy of route, or nil.
func (s *Set) For(route string) *Policy {
	if s == nil {
		return nil
	}
	if p, ok := s.ByRoute[route]; ok {
		return p
	}
	return s.All
}
