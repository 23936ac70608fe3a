package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxJWKSBytes  = 1 << 20
	minRSABits    = 2048
	maxRSABits    = 16384
	familyRSA     = 1
	familyP256    = 2
	familyP384    = 3
	familyEd25519 = 4
)

// verificationKey is one usable JWK.
type verificationKey struct {
	kid    string
	alg    string // the JWK's alg, "" when absent
	family int
	key    any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

func (k *verificationKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512":
		return k.family == familyRSA
	case "ES256":
		return k.family == familyP256
	case "ES384":
		return k.family == familyP384
	case "EdDSA":
		return k.family == familyEd25519
	}
	return false
}

type keySet struct {
	keys    []verificationKey
	fetched time.Time // zero for inline sets
}

// find returns the key for kid and alg. found is false when the set does not
// know kid (a refetch may help); otherwise err is the definitive answer.
func (s *keySet) find(kid, alg string) (key any, found bool, err error) {
	if s == nil || len(s.keys) == 0 {
		return nil, false, nil
	}
	if kid == "" {
		if len(s.keys) > 1 {
			return nil, true, fmt.Errorf("%w: kid is required when the key set has several keys", ErrUnknownKey)
		}
		if k := &s.keys[0]; k.fits(alg) {
			return k.key, true, nil
		}
		return nil, true, fmt.Errorf("%w: key does not fit alg %s", ErrSignature, alg)
	}
	matched := false
	for i := range s.keys {
		k := &s.keys[i]
		if k.kid != kid {
			continue
		}
		if k.fits(alg) {
			return k.key, true, nil
		}
		matched = true
	}
	if matched {
		return nil, true, fmt.Errorf("%w: key does not fit alg %s", ErrSignature, alg)
	}
	return nil, false, nil
}

// keySource is a provider's keys: inline (uri == "") or fetched.
type keySource struct {
	uri        string
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration
	timeout    time.Duration

	set atomic.Pointer[keySet]

	mu          sync.Mutex
	lastAttempt time.Time
	lastOK      bool
	inflight    *fetchCall
}

type fetchCall struct {
	done chan struct{}
	err  error
}

func (ks *keySource) lookup(ctx context.Context, kid, alg string) (any, error) {
	set := ks.set.Load()
	key, found, err := set.find(kid, alg)
	if found {
		if err == nil && ks.uri != "" && ks.maxAge > 0 && ks.now().Sub(set.fetched) >= ks.maxAge {
			ks.refresh(ctx, set, false) // background: keep serving the current keys
		}
		return key, err
	}
	if ks.uri == "" {
		return nil, ErrUnknownKey
	}
	call, err := ks.refresh(ctx, set, true)
	if err != nil {
		return nil, err
	}
	if call != nil {
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for the key set: %w", ErrUnknownKey, ctx.Err())
		}
	}
	key, found, err = ks.set.Load().find(kid, alg)
	if found {
		return key, err
	}
	if call != nil && call.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownKey, call.err)
	}
	return nil, ErrUnknownKey
}

// refresh starts a fetch, or joins the one in flight, unless the key set
// changed since seen (the caller should look again: nil, nil) or the last
// attempt is too recent (ErrUnknownKey when wantKey).
func (ks *keySource) refresh(ctx context.Context, seen *keySet, wantKey bool) (*fetchCall, error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if c := ks.inflight; c != nil {
		return c, nil
	}
	if ks.set.Load() != seen {
		return nil, nil
	}
	now := ks.now()
	if !ks.lastAttempt.IsZero() {
		wait := ks.minRefresh
		if !ks.lastOK && wait > failureBackoff {
			wait = failureBackoff
		}
		if now.Before(ks.lastAttempt.Add(wait)) {
			if wantKey {
				return nil, ErrUnknownKey
			}
			return nil, nil
		}
	}
	c := &fetchCall{done: make(chan struct{})}
	ks.inflight = c
	ks.lastAttempt = now
	// Shared by every waiter: not tied to the triggering request's cancellation.
	go ks.fetch(context.WithoutCancel(ctx), c)
	return c, nil
}

func (ks *keySource) fetch(ctx context.Context, c *fetchCall) {
	ctx, cancel := context.WithTimeout(ctx, ks.timeout)
	defer cancel()
	set, err := ks.get(ctx)
	ks.mu.Lock()
	if err == nil {
		set.fetched = ks.now()
		ks.set.Store(set)
	}
	ks.lastOK = err == nil
	c.err = err
	ks.inflight = nil
	ks.mu.Unlock()
	close(c.done)
}

// get fetches and parses the key set; a failure leaves the current keys in place.
func (ks *keySource) get(ctx context.Context) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.uri, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks fetch: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("jwks fetch: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks fetch: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("jwks fetch: response larger than 1 MiB")
	}
	set, err := parseJWKS(body, false)
	if err != nil {
		return nil, fmt.Errorf("jwks fetch: %w", err)
	}
	return set, nil
}

type rawJWK struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Kid    string   `json:"kid"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWKS parses a JWK Set, keeping signature keys of the supported types.
// Keys of other types, curves or uses are skipped. A malformed key of a
// supported type is an error when strict (inline configuration) and skipped
// otherwise (a remote set may carry keys this package cannot use). A set with
// no usable key is an error.
func parseJWKS(data []byte, strict bool) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, errors.New("not a JSON Web Key Set")
	}
	if doc.Keys == nil {
		return nil, errors.New(`not a JSON Web Key Set: no "keys"`)
	}
	set := &keySet{}
	for i, raw := range doc.Keys {
		var j rawJWK
		if err := json.Unmarshal(raw, &j); err != nil {
			if strict {
				return nil, fmt.Errorf("key %d: not a JSON Web Key", i)
			}
			continue
		}
		k, ok, err := parseJWK(&j)
		if err != nil {
			if strict {
				return nil, fmt.Errorf("key %d (kid %q): %w", i, j.Kid, err)
			}
			continue
		}
		if ok {
			set.keys = append(set.keys, k)
		}
	}
	if len(set.keys) == 0 {
		return nil, errors.New("no usable signature key (RSA, EC P-256/P-384 or Ed25519)")
	}
	return set, nil
}

// parseJWK returns ok=false for keys that are not for verifying signatures
// with a supported type.
func parseJWK(j *rawJWK) (verificationKey, bool, error) {
	if j.Use != "" && j.Use != "sig" {
		return verificationKey{}, false, nil
	}
	if j.KeyOps != nil && !contains(j.KeyOps, "verify") {
		return verificationKey{}, false, nil
	}
	k := verificationKey{kid: j.Kid, alg: j.Alg}
	if j.Alg != "" && !contains(allowedAlgs, j.Alg) {
		return verificationKey{}, false, nil
	}
	switch j.Kty {
	case "RSA":
		n, err := b64(j.N)
		if err != nil || len(n) == 0 {
			return k, false, errors.New("bad RSA modulus")
		}
		e, err := b64(j.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return k, false, errors.New("bad RSA exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
		for _, b := range e {
			pub.E = pub.E<<8 | int(b)
		}
		if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return k, false, fmt.Errorf("RSA key of %d bits (need %d to %d)", bits, minRSABits, maxRSABits)
		}
		if pub.E < 3 || pub.E&1 == 0 {
			return k, false, errors.New("bad RSA exponent")
		}
		k.family, k.key = familyRSA, pub
	case "EC":
		var curve elliptic.Curve
		var size int
		switch j.Crv {
		case "P-256":
			curve, size, k.family = elliptic.P256(), 32, familyP256
		case "P-384":
			curve, size, k.family = elliptic.P384(), 48, familyP384
		default:
			return k, false, nil
		}
		x, errX := b64(j.X)
		y, errY := b64(j.Y)
		if errX != nil || errY != nil || len(x) != size || len(y) != size {
			return k, false, errors.New("bad EC coordinates")
		}
		point := make([]byte, 0, 1+2*size)
		point = append(append(append(point, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return k, false, errors.New("EC point not on the curve")
		}
		k.key = pub
	case "OKP":
		if j.Crv != "Ed25519" {
			return k, false, nil
		}
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return k, false, errors.New("bad Ed25519 key")
		}
		k.family, k.key = familyEd25519, ed25519.PublicKey(x)
	default:
		return k, false, nil
	}
	return k, true, nil
}

// b64 decodes base64url, tolerating padding.
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
