// Package auth decides who a caller is and what it may do: API keys and JWTs become a
// Principal, and the AccessPolicy's rules, tried in order, allow or deny each request by
// model (tool, for MCP), endpoint and region, with optional CEL conditions. Everything is
// compiled once per snapshot by the translator; per request, an API key costs a hash and a
// map lookup.
// Denials never say whether a key exists or which rule would have allowed the request.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/auth/jwtauth"
	"github.com/sluice-gateway/sluice/internal/exchange"
)

// Stable error codes of access control.
const (
	CodeInvalidAPIKey      = "invalid_api_key"
	CodeInvalidToken       = "invalid_token"
	CodeModelNotAllowed    = "model_not_allowed"
	CodeEndpointNotAllowed = "endpoint_not_allowed"
	CodeToolNotAllowed     = "tool_not_allowed"
)

// Methods a principal was authenticated by.
const (
	MethodAPIKey    = "api_key"
	MethodJWT       = "jwt"
	MethodAnonymous = "anonymous"
)

// Principal is an authenticated caller; it travels on the Exchange.
type Principal = exchange.Principal

// Key is an API key's holder, as configured.
type Key struct {
	// Ref is "APIKey/namespace/name".
	Ref       string
	Hash      [sha256.Size]byte
	Subject   string
	Team      string
	Roles     []string
	ExpiresAt time.Time // zero: never
	Disabled  bool
}

type keyEntry struct {
	hash      [sha256.Size]byte
	principal Principal
	expiresAt time.Time
	disabled  bool
}

// Policy is a compiled AccessPolicy with its keys. Safe for concurrent use.
type Policy struct {
	keys      map[[sha256.Size]byte]*keyEntry
	apiKeys   bool
	jwt       *jwtauth.Verifier
	anonymous bool
	rules     []*Rule
	allow     bool // default decision
	// Now is the clock (tests set it).
	Now func() time.Time

	denials [numReasons]atomic.Int64
}

// Issuers are the JWT issuers the policy accepts (nil without JWT authentication): the
// authorization servers an MCP client is told to get tokens from.
func (p *Policy) Issuers() []string {
	if p == nil || p.jwt == nil {
		return nil
	}
	return p.jwt.Issuers()
}

// Options build a Policy.
type Options struct {
	APIKeys   bool
	Keys      []Key
	JWT       *jwtauth.Verifier
	Anonymous bool
	Rules     []*Rule
	// DefaultAllow is the decision when no rule matches.
	DefaultAllow bool
}

// NewPolicy compiles a policy.
func NewPolicy(o Options) *Policy {
	p := &Policy{keys: map[[sha256.Size]byte]*keyEntry{}, apiKeys: o.APIKeys, jwt: o.JWT, anonymous: o.Anonymous, rules: o.Rules, allow: o.DefaultAllow, Now: time.Now}
	for _, k := range o.Keys {
		p.keys[k.Hash] = &keyEntry{
			hash:      k.Hash,
			principal: Principal{Subject: k.Subject, Team: k.Team, Roles: k.Roles, Method: MethodAPIKey, Key: k.Ref},
			expiresAt: k.ExpiresAt,
			disabled:  k.Disabled,
		}
	}
	return p
}

// Failure is why authentication failed, for the audit log (never for the client).
type Failure string

// Authentication failures.
const (
	FailMissing  Failure = "missing_credential"
	FailUnknown  Failure = "unknown_key"
	FailExpired  Failure = "expired_key"
	FailDisabled Failure = "disabled_key"
	FailToken    Failure = "invalid_token"
)

var anonymous = &Principal{Subject: "anonymous", Method: MethodAnonymous}

// Authenticate identifies the caller from Authorization: Bearer or x-api-key. On failure
// it returns the client's error and the reason for the audit log.
func (p *Policy) Authenticate(ctx context.Context, h http.Header) (*Principal, *apierr.Error, Failure) {
	cred := credential(h)
	if cred == "" {
		if p.anonymous {
			return anonymous, nil, ""
		}
		return nil, errMissing, FailMissing
	}
	if p.jwt != nil && looksLikeJWT(cred) {
		id, err := p.jwt.Verify(ctx, cred)
		if err != nil {
			return nil, errToken, FailToken
		}
		return &Principal{Subject: id.Subject, Team: id.Team, Roles: id.Roles, Claims: id.Claims, Method: MethodJWT}, nil, ""
	}
	if !p.apiKeys {
		if p.jwt != nil {
			return nil, errToken, FailToken
		}
		return nil, errKey, FailUnknown
	}
	// Hash the key where it lies: no copy of it is made.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(cred), len(cred)))
	e, ok := p.keys[sum]
	if !ok || subtle.ConstantTimeCompare(e.hash[:], sum[:]) != 1 {
		return nil, errKey, FailUnknown
	}
	if e.disabled {
		return nil, errKey, FailDisabled
	}
	if !e.expiresAt.IsZero() && !p.Now().Before(e.expiresAt) {
		return nil, errKey, FailExpired
	}
	return &e.principal, nil, ""
}

// The client's errors say the same for a missing, unknown, expired or disabled key.
var (
	errMissing = &apierr.Error{Status: http.StatusUnauthorized, Code: CodeInvalidAPIKey, Message: "No API key was provided. Send it as Authorization: Bearer KEY or x-api-key: KEY.", Header: http.Header{"Www-Authenticate": {`Bearer realm="sluice"`}}}
	errKey     = &apierr.Error{Status: http.StatusUnauthorized, Code: CodeInvalidAPIKey, Message: "Invalid API key.", Header: http.Header{"Www-Authenticate": {`Bearer realm="sluice", error="invalid_token"`}}}
	errToken   = &apierr.Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Message: "Invalid or expired token.", Header: http.Header{"Www-Authenticate": {`Bearer realm="sluice", error="invalid_token"`}}}
)

// credential returns the presented key or token.
func credential(h http.Header) string {
	if v := h["Authorization"]; len(v) > 0 {
		if tok, ok := cutPrefixFold(v[0], "Bearer "); ok {
			return strings.TrimSpace(tok)
		}
	}
	if v := h["X-Api-Key"]; len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// looksLikeJWT: three base64url segments, the first a JSON object ("eyJ").
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}
