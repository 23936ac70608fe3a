// Package jwtauth verifies bearer JWTs for the gateway's AccessPolicy
// (authentication.jwt): it selects a provider by the token's issuer, checks the
// signature against the provider's JWKS (inline, or fetched from a URI through
// the gateway's HTTP client), validates exp, nbf, iat and aud, maps claims to a
// subject, team and roles, and caches verified tokens until they expire.
//
// Signatures are verified by github.com/golang-jwt/jwt/v5. Only RS256, RS384,
// RS512, ES256, ES384 and EdDSA are accepted, and the key must be of the
// algorithm's type (an RSA key never verifies ES256, and no public key is ever
// used as an HMAC secret), so "alg": "none" and HS* tokens are always rejected.
//
// Remote key sets are fetched lazily on first use and refetched when a token
// names an unknown kid, at most once per Options.MinRefreshInterval per
// provider, with concurrent verifications sharing one fetch. A key set older
// than Options.JWKSMaxAge is refreshed in the background on next use (the
// current keys keep serving meanwhile), so keys removed from a JWKS stop being
// trusted within about that age even if no unknown kid ever shows up. There is
// no timer-driven refresh: an idle provider does not fetch.
//
// Verified tokens are cached by the SHA-256 of the token string for at most
// ten minutes (never past exp plus leeway); a cached identity stays valid for
// that time even if its key is rotated out of the JWKS meanwhile.
package jwtauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// Sentinel errors. Every error Verify returns wraps exactly one of them; error
// text never contains the token.
var (
	ErrMalformed     = errors.New("jwtauth: malformed token")
	ErrUnknownIssuer = errors.New("jwtauth: unknown issuer")
	ErrSignature     = errors.New("jwtauth: invalid signature")
	ErrExpired       = errors.New("jwtauth: token expired")
	ErrNotYetValid   = errors.New("jwtauth: token not yet valid")
	ErrAudience      = errors.New("jwtauth: audience not accepted")
	ErrUnknownKey    = errors.New("jwtauth: unknown signing key")
	ErrClaims        = errors.New("jwtauth: invalid claims")
)

// Provider is one accepted token issuer.
type Provider struct {
	// Issuer must equal the token's iss claim exactly. Required, unique.
	Issuer string
	// Audiences, when set, must contain one of the token's aud values (aud may
	// be a string or an array). When empty, aud is not checked.
	Audiences []string
	// JWKSURI is fetched with Options.Client. https, or http only to a loopback
	// host. Exactly one of JWKSURI and JWKS must be set.
	JWKSURI string
	// JWKS is an inline JSON Web Key Set.
	JWKS []byte
	// Claims maps claims to the identity.
	Claims ClaimMapping
}

// ClaimMapping names the claims an Identity is built from, as dotted paths into
// the claims ("sub", "org.team", "realm_access.roles"). A path that exists as a
// top-level claim name as written (for example a namespaced claim such as
// "https://example.com/roles") is used as is before it is split at dots.
type ClaimMapping struct {
	// Subject defaults to "sub"; the claim must be a non-empty string.
	Subject string
	// Team is optional ("" = not mapped); the claim, when present, must be a string.
	Team string
	// Roles is optional ("" = not mapped); the claim, when present, must be a
	// string (one role) or an array of strings.
	Roles string
}

// Identity is a verified token's caller. Identities may be shared between
// callers (the cache returns the same pointer): treat them as read-only.
type Identity struct {
	Subject string
	Team    string
	Roles   []string
	// Claims are all of the token's claims as decoded JSON.
	Claims map[string]any
	Issuer string
	Expiry time.Time
}

// Options tunes a Verifier. The zero value is usable for inline JWKS only.
type Options struct {
	// Client fetches remote JWKS; required when any provider has a JWKSURI.
	// Its Timeout (if any) applies in addition to FetchTimeout.
	Client *http.Client
	// Leeway is the clock skew allowed for exp, nbf and iat. Default 60s;
	// negative means none.
	Leeway time.Duration
	// MinRefreshInterval is how often at most an unknown kid triggers a JWKS
	// refetch, per provider. Default 5m; negative means no limit. After a failed
	// fetch the next attempt is allowed after min(MinRefreshInterval, 30s).
	MinRefreshInterval time.Duration
	// JWKSMaxAge: a fetched key set older than this is refreshed in the
	// background on next use. Default 1h; negative disables.
	JWKSMaxAge time.Duration
	// FetchTimeout bounds one JWKS fetch. Default 10s. The fetch is shared by
	// every verification waiting for it, so it does not inherit the triggering
	// request's cancellation; each waiter still returns when its own context ends.
	FetchTimeout time.Duration
	// MaxCacheEntries bounds the verified-token cache. Default 10000; negative
	// disables the cache. When full, an arbitrary entry (preferably an expired
	// one) is evicted.
	MaxCacheEntries int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

const (
	defaultLeeway       = 60 * time.Second
	defaultMinRefresh   = 5 * time.Minute
	defaultMaxAge       = time.Hour
	defaultFetchTimeout = 10 * time.Second
	defaultCacheEntries = 10000
	failureBackoff      = 30 * time.Second
	maxCacheTTL         = 10 * time.Minute
	maxTokenLen         = 64 << 10
	maxClaimPathLen     = 256
)

// allowedAlgs are the only algorithms ever accepted.
var allowedAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"}

// Verifier verifies tokens from a fixed set of providers. It is safe for
// concurrent use.
type Verifier struct {
	byIssuer map[string]*provider
	parser   *jwt.Parser
	leeway   time.Duration
	now      func() time.Time
	cache    *cache
}

type provider struct {
	issuer    string
	audiences []string
	subject   claimPath
	team      claimPath
	roles     claimPath
	keys      *keySource
}

// NewVerifier validates the providers and options and returns a Verifier.
// Remote key sets are not fetched until a token needs them.
func NewVerifier(providers []Provider, o Options) (*Verifier, error) {
	if len(providers) == 0 {
		return nil, errors.New("jwtauth: no providers")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.Leeway == 0:
		o.Leeway = defaultLeeway
	case o.Leeway < 0:
		o.Leeway = 0
	}
	switch {
	case o.MinRefreshInterval == 0:
		o.MinRefreshInterval = defaultMinRefresh
	case o.MinRefreshInterval < 0:
		o.MinRefreshInterval = 0
	}
	switch {
	case o.JWKSMaxAge == 0:
		o.JWKSMaxAge = defaultMaxAge
	case o.JWKSMaxAge < 0:
		o.JWKSMaxAge = 0
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = defaultFetchTimeout
	}
	if o.MaxCacheEntries == 0 {
		o.MaxCacheEntries = defaultCacheEntries
	}

	v := &Verifier{byIssuer: make(map[string]*provider, len(providers)), leeway: o.Leeway, now: o.Now}
	for i, p := range providers {
		pp, err := newProvider(p, &o)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: provider %d (%q): %w", i, p.Issuer, err)
		}
		if _, dup := v.byIssuer[p.Issuer]; dup {
			return nil, fmt.Errorf("jwtauth: provider %d: duplicate issuer %q", i, p.Issuer)
		}
		v.byIssuer[p.Issuer] = pp
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(allowedAlgs),
		jwt.WithLeeway(o.Leeway),
		jwt.WithTimeFunc(o.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
	)
	if o.MaxCacheEntries > 0 {
		v.cache = newCache(o.MaxCacheEntries)
	}
	return v, nil
}

func newProvider(p Provider, o *Options) (*provider, error) {
	if p.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	for _, a := range p.Audiences {
		if a == "" {
			return nil, errors.New("empty audience")
		}
	}
	pp := &provider{issuer: p.Issuer, audiences: append([]string(nil), p.Audiences...)}
	var err error
	subj := p.Claims.Subject
	if subj == "" {
		subj = "sub"
	}
	if pp.subject, err = parseClaimPath(subj); err != nil {
		return nil, fmt.Errorf("claims.subject: %w", err)
	}
	if p.Claims.Team != "" {
		if pp.team, err = parseClaimPath(p.Claims.Team); err != nil {
			return nil, fmt.Errorf("claims.team: %w", err)
		}
	}
	if p.Claims.Roles != "" {
		if pp.roles, err = parseClaimPath(p.Claims.Roles); err != nil {
			return nil, fmt.Errorf("claims.roles: %w", err)
		}
	}
	switch {
	case p.JWKSURI != "" && len(p.JWKS) > 0:
		return nil, errors.New("set only one of jwksURI and jwks")
	case p.JWKSURI != "":
		if err := checkJWKSURI(p.JWKSURI); err != nil {
			return nil, err
		}
		if o.Client == nil {
			return nil, errors.New("jwksURI needs an HTTP client")
		}
		pp.keys = &keySource{
			uri: p.JWKSURI, client: o.Client, now: o.Now,
			minRefresh: o.MinRefreshInterval, maxAge: o.JWKSMaxAge, timeout: o.FetchTimeout,
		}
	case len(p.JWKS) > 0:
		set, err := parseJWKS(p.JWKS, true)
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		pp.keys = &keySource{now: o.Now}
		pp.keys.set.Store(set)
	default:
		return nil, errors.New("one of jwksURI and jwks is required")
	}
	return pp, nil
}

func checkJWKSURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("jwksURI is not a valid URL")
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return errors.New("jwksURI must be an absolute URL without credentials or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		switch u.Hostname() {
		case "127.0.0.1", "localhost", "::1":
			return nil
		}
		return errors.New("jwksURI must use https (http only for a loopback host)")
	}
	return errors.New("jwksURI must use https")
}

// Verify checks token and returns the caller's identity. The token is the bare
// compact JWT (without "Bearer "). Errors wrap one of the package's sentinels.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	if len(token) == 0 || len(token) > maxTokenLen {
		return nil, fmt.Errorf("%w: empty or oversized", ErrMalformed)
	}
	now := v.now()
	var key [sha256.Size]byte
	if v.cache != nil {
		// sha256 only reads its input: hash the string's bytes without copying.
		key = sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
		if id := v.cache.get(&key, now.UnixNano()); id != nil {
			return id, nil
		}
	}
	id, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		until := id.Expiry.Add(v.leeway)
		if limit := now.Add(maxCacheTTL); limit.Before(until) {
			until = limit
		}
		if now.Before(until) {
			v.cache.put(&key, id, until.UnixNano(), now.UnixNano())
		}
	}
	return id, nil
}

// verify does the full, uncached verification.
func (v *Verifier) verify(ctx context.Context, token string) (*Identity, error) {
	var (
		prov *provider
		kerr error
	)
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		var key any
		key, kerr = v.selectKey(ctx, t, &prov)
		return key, kerr
	})
	if kerr != nil {
		return nil, kerr
	}
	if err != nil {
		return nil, mapParseError(err)
	}
	return prov.identity(claims)
}

// selectKey picks the provider by the (not yet verified) iss and the key by
// kid and alg; the signature check that follows proves both.
func (v *Verifier) selectKey(ctx context.Context, t *jwt.Token, prov **provider) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, fmt.Errorf("%w: unsupported critical header", ErrMalformed)
	}
	claims, _ := t.Claims.(jwt.MapClaims)
	iss, _ := claims["iss"].(string)
	p := v.byIssuer[iss]
	if p == nil {
		return nil, ErrUnknownIssuer
	}
	kid := ""
	if k, ok := t.Header["kid"]; ok {
		s, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%w: kid is not a string", ErrMalformed)
		}
		kid = s
	}
	key, err := p.keys.lookup(ctx, kid, t.Method.Alg())
	if err != nil {
		return nil, err
	}
	*prov = p
	return key, nil
}

// mapParseError turns golang-jwt's errors into the package's, dropping their
// text (which can quote token bytes).
func mapParseError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		// Includes algorithms outside the allowed set (none, HS*, unknown).
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fmt.Errorf("%w: nbf is in the future", ErrNotYetValid)
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Errorf("%w: iat is in the future", ErrNotYetValid)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("%w: exp is required", ErrClaims)
	}
	return fmt.Errorf("%w: exp, nbf or iat is not a number", ErrClaims)
}

// identity checks the provider-specific claims of a signature-verified token.
func (p *provider) identity(claims jwt.MapClaims) (*Identity, error) {
	if iss, _ := claims["iss"].(string); iss != p.issuer {
		return nil, ErrUnknownIssuer
	}
	switch aud := claims["aud"].(type) {
	case nil:
		if len(p.audiences) > 0 {
			return nil, ErrAudience
		}
	case string:
		if len(p.audiences) > 0 && !contains(p.audiences, aud) {
			return nil, ErrAudience
		}
	case []any:
		found := len(p.audiences) == 0
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("%w: aud is not a string or array of strings", ErrClaims)
			}
			found = found || contains(p.audiences, s)
		}
		if !found {
			return nil, ErrAudience
		}
	default:
		return nil, fmt.Errorf("%w: aud is not a string or array of strings", ErrClaims)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, fmt.Errorf("%w: exp is required", ErrClaims)
	}
	id := &Identity{Claims: claims, Issuer: p.issuer, Expiry: exp.Time}
	sub, _ := p.subject.lookup(claims)
	if id.Subject, _ = sub.(string); id.Subject == "" {
		return nil, fmt.Errorf("%w: subject claim %q is missing or not a non-empty string", ErrClaims, p.subject.raw)
	}
	if p.team.raw != "" {
		if t, ok := p.team.lookup(claims); ok && t != nil {
			s, ok := t.(string)
			if !ok {
				return nil, fmt.Errorf("%w: team claim %q is not a string", ErrClaims, p.team.raw)
			}
			id.Team = s
		}
	}
	if p.roles.raw != "" {
		if r, ok := p.roles.lookup(claims); ok && r != nil {
			switch r := r.(type) {
			case string:
				id.Roles = []string{r}
			case []any:
				id.Roles = make([]string, len(r))
				for i, e := range r {
					s, ok := e.(string)
					if !ok {
						return nil, fmt.Errorf("%w: roles claim %q is not an array of strings", ErrClaims, p.roles.raw)
					}
					id.Roles[i] = s
				}
			default:
				return nil, fmt.Errorf("%w: roles claim %q is not a string or array of strings", ErrClaims, p.roles.raw)
			}
		}
	}
	return id, nil
}

// claimPath is a dotted path into the claims.
type claimPath struct {
	raw  string
	segs []string
}

func parseClaimPath(s string) (claimPath, error) {
	if len(s) > maxClaimPathLen {
		return claimPath{}, errors.New("claim path too long")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return claimPath{}, fmt.Errorf("claim path %q contains whitespace or control characters", s)
		}
	}
	segs := strings.Split(s, ".")
	for _, seg := range segs {
		if seg == "" {
			return claimPath{}, fmt.Errorf("claim path %q has an empty segment", s)
		}
	}
	return claimPath{raw: s, segs: segs}, nil
}

// lookup resolves the path: the whole path as one top-level claim name first,
// then segment by segment through nested objects.
func (c claimPath) lookup(claims map[string]any) (any, bool) {
	if v, ok := claims[c.raw]; ok {
		return v, true
	}
	if len(c.segs) == 1 {
		return nil, false
	}
	var cur any = claims
	for _, seg := range c.segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Issuers returns the accepted issuers, sorted.
func (v *Verifier) Issuers() []string {
	out := make([]string, 0, len(v.byIssuer))
	for iss := range v.byIssuer {
		out = append(out, iss)
	}
	slices.Sort(out)
	return out
}
