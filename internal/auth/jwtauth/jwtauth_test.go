package jwtauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer = "https://issuer.example.com"
	testAud    = "sluice"
)

var t0 = time.Unix(1_800_000_000, 0)

// clock is a settable, race-safe Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock                   { c := &clock{}; c.ns.Store(t0.UnixNano()); return c }
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// testKeys are generated once per test binary (RSA generation is slow).
type testKeys struct {
	rsa, rsa2, rsa3 *rsa.PrivateKey
	ec256, ec384    *ecdsa.PrivateKey
	ed              ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  testKeys
)

func keys(tb testing.TB) *testKeys {
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		k := &keysVal
		k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		var e error
		k.rsa2, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		k.rsa3, e = rsa.GenerateKey(rand.Reader, 2048)
		must(e)
		k.ec256, e = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(e)
		k.ec384, e = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(e)
		_, k.ed, e = ed25519.GenerateKey(rand.Reader)
		must(e)
		if err != nil {
			panic(err)
		}
	})
	return &keysVal
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	e, err := pub.ECDH()
	if err != nil {
		panic(err)
	}
	b := e.Bytes()[1:]
	crv := map[int]string{32: "P-256", 48: "P-384"}[len(b)/2]
	return map[string]any{"kty": "EC", "kid": kid, "crv": crv, "x": b64u(b[:len(b)/2]), "y": b64u(b[len(b)/2:])}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64u(pub)}
}

func jwks(keys ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// allJWKS: every test key under its kid, plus keys this package must ignore.
func allJWKS(k *testKeys) []byte {
	return jwks(
		rsaJWK("rsa1", &k.rsa.PublicKey),
		ecJWK("ec256", &k.ec256.PublicKey),
		ecJWK("ec384", &k.ec384.PublicKey),
		edJWK("ed1", k.ed.Public().(ed25519.PublicKey)),
		map[string]any{"kty": "oct", "kid": "hmac", "k": b64u([]byte("secret"))},
		map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
	)
}

// jwksServer serves a replaceable JWKS and counts fetches.
type jwksServer struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	status  atomic.Int32
	fetches atomic.Int32
	gate    chan struct{} // when non-nil, requests block until it is closed
	entered chan struct{} // when non-nil, receives one value per request
}

func newJWKSServer(t *testing.T, body []byte, gate chan struct{}) *jwksServer {
	s := &jwksServer{gate: gate}
	s.set(body)
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		if s.entered != nil {
			s.entered <- struct{}{}
		}
		if s.gate != nil {
			<-s.gate
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(s.status.Load()))
		w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(b []byte) { s.body.Store(&b) }

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAud,
		"sub": "alice",
		"exp": t0.Add(time.Hour).Unix(),
		"iat": t0.Add(-time.Minute).Unix(),
		"nbf": t0.Add(-time.Minute).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(tb testing.TB, m jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newTestVerifier(t testing.TB, srv *jwksServer, clk *clock, mod func(*Provider, *Options)) *Verifier {
	t.Helper()
	p := Provider{Issuer: testIssuer, Audiences: []string{testAud}, JWKSURI: srv.URL + "/jwks.json"}
	o := Options{Client: srv.Client(), Now: clk.Now}
	if mod != nil {
		mod(&p, &o)
	}
	v, err := NewVerifier([]Provider{p}, o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidEachAlgorithm(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, allJWKS(k), nil)
	clk := newClock()
	v := newTestVerifier(t, srv, clk, nil)
	cases := []struct {
		name string
		m    jwt.SigningMethod
		key  any
		kid  string
	}{
		{"RS256", jwt.SigningMethodRS256, k.rsa, "rsa1"},
		{"RS384", jwt.SigningMethodRS384, k.rsa, "rsa1"},
		{"RS512", jwt.SigningMethodRS512, k.rsa, "rsa1"},
		{"ES256", jwt.SigningMethodES256, k.ec256, "ec256"},
		{"ES384", jwt.SigningMethodES384, k.ec384, "ec384"},
		{"EdDSA", jwt.SigningMethodEdDSA, k.ed, "ed1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, tc.m, tc.key, tc.kid, claims(nil))
			id, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Subject != "alice" || id.Issuer != testIssuer || !id.Expiry.Equal(t0.Add(time.Hour)) || id.Claims["aud"] != testAud {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1 (lazy, cached)", n)
	}
}

func TestRejected(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, allJWKS(k), nil)
	clk := newClock()
	v := newTestVerifier(t, srv, clk, nil)

	valid := sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(nil))
	parts := strings.Split(valid, ".")

	rsaDER, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})

	tamperedPayload := func() string {
		c := claims(func(c jwt.MapClaims) { c["sub"] = "admin" })
		b, _ := json.Marshal(c)
		return parts[0] + "." + b64u(b) + "." + parts[2]
	}()
	tamperedSig := func() string {
		sig := []byte(parts[2])
		i := len(sig) / 2
		if sig[i] == 'A' {
			sig[i] = 'B'
		} else {
			sig[i] = 'A'
		}
		return parts[0] + "." + parts[1] + "." + string(sig)
	}()
	header := func(h map[string]any) string {
		b, _ := json.Marshal(h)
		return b64u(b)
	}
	noneHandMade := func(alg string) string {
		return header(map[string]any{"alg": alg, "typ": "JWT", "kid": "rsa1"}) + "." + parts[1] + "."
	}
	noneLib := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil))
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// kid swapped to another key in a re-encoded header: signature no longer matches.
	kidSwap := header(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rsa1", "x": 1}) + "." + parts[1] + "." + parts[2]

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["exp"] = t0.Add(-2 * time.Minute).Unix() })), ErrExpired},
		{"nbf in future", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["nbf"] = t0.Add(5 * time.Minute).Unix() })), ErrNotYetValid},
		{"iat in future", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["iat"] = t0.Add(5 * time.Minute).Unix() })), ErrNotYetValid},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com" })), ErrUnknownIssuer},
		{"no issuer", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { delete(c, "iss") })), ErrUnknownIssuer},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["aud"] = "other" })), ErrAudience},
		{"wrong audience array", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["aud"] = []string{"a", "b"} })), ErrAudience},
		{"missing audience", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { delete(c, "aud") })), ErrAudience},
		{"missing exp", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { delete(c, "exp") })), ErrClaims},
		{"exp not a number", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), ErrClaims},
		{"missing sub", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { delete(c, "sub") })), ErrClaims},
		{"empty sub", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["sub"] = "" })), ErrClaims},
		{"numeric sub", sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["sub"] = 42 })), ErrClaims},
		{"alg none (library)", noneLib, ErrSignature},
		{"alg none (hand made)", noneHandMade("none"), ErrSignature},
		{"alg NONE", noneHandMade("NONE"), ErrSignature},
		{"alg missing", header(map[string]any{"typ": "JWT"}) + "." + parts[1] + "." + parts[2], ErrSignature},
		{"HS256 with RSA public key PEM", sign(t, jwt.SigningMethodHS256, rsaPEM, "rsa1", claims(nil)), ErrSignature},
		{"HS256 with RSA public key DER", sign(t, jwt.SigningMethodHS256, rsaDER, "rsa1", claims(nil)), ErrSignature},
		{"HS256 with RSA modulus, no kid", sign(t, jwt.SigningMethodHS256, k.rsa.PublicKey.N.Bytes(), "", claims(nil)), ErrSignature},
		{"HS512 with hmac JWK secret", sign(t, jwt.SigningMethodHS512, []byte("secret"), "hmac", claims(nil)), ErrSignature},
		{"PS256 (not allowed)", sign(t, jwt.SigningMethodPS256, k.rsa, "rsa1", claims(nil)), ErrSignature},
		{"tampered payload", tamperedPayload, ErrSignature},
		{"tampered signature", tamperedSig, ErrSignature},
		{"tampered header", kidSwap, ErrSignature},
		{"signed by another RSA key", sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa1", claims(nil)), ErrSignature},
		{"RSA kid, ES256 alg", sign(t, jwt.SigningMethodES256, k.ec256, "rsa1", claims(nil)), ErrSignature},
		{"P-384 kid, ES256 alg", sign(t, jwt.SigningMethodES256, k.ec256, "ec384", claims(nil)), ErrSignature},
		{"Ed25519 kid, RS256 alg", sign(t, jwt.SigningMethodRS256, k.rsa, "ed1", claims(nil)), ErrSignature},
		{"no kid, several keys", sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil)), ErrUnknownKey},
		{"kid not a string", header(map[string]any{"alg": "RS256", "kid": 7}) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"crit header", header(map[string]any{"alg": "RS256", "kid": "rsa1", "crit": []string{"exp"}}) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"two segments", parts[0] + "." + parts[1], ErrMalformed},
		{"four segments", valid + ".x", ErrMalformed},
		{"not base64", "!!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"padded segment", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed},
		{"header not JSON", b64u([]byte("nope")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"empty", "", ErrMalformed},
		{"oversized", strings.Repeat("a", maxTokenLen+1), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", id, err, tc.want)
			}
			if id != nil {
				t.Fatal("identity returned with an error")
			}
			msg := err.Error()
			for _, seg := range strings.Split(tc.token, ".") {
				if len(seg) > 8 && strings.Contains(msg, seg) {
					t.Fatalf("error %q contains token text", msg)
				}
			}
		})
	}
	// The genuine token still verifies after all that.
	if _, err := v.Verify(context.Background(), valid); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times; bad tokens must not refetch a known set within MinRefreshInterval", n)
	}
}

func TestLeewayAccepted(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, allJWKS(k), nil)
	v := newTestVerifier(t, srv, newClock(), nil)
	for name, mod := range map[string]func(jwt.MapClaims){
		"exp 30s ago":      func(c jwt.MapClaims) { c["exp"] = t0.Add(-30 * time.Second).Unix() },
		"nbf in 30s":       func(c jwt.MapClaims) { c["nbf"] = t0.Add(30 * time.Second).Unix() },
		"iat in 30s":       func(c jwt.MapClaims) { c["iat"] = t0.Add(30 * time.Second).Unix() },
		"no nbf, no iat":   func(c jwt.MapClaims) { delete(c, "nbf"); delete(c, "iat") },
		"aud array":        func(c jwt.MapClaims) { c["aud"] = []string{"other", testAud} },
		"fractional times": func(c jwt.MapClaims) { c["exp"] = float64(t0.Add(time.Hour).Unix()) + 0.5 },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "ec256", claims(mod))); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Without Audiences, aud is not checked.
	v2 := newTestVerifier(t, srv, newClock(), func(p *Provider, o *Options) { p.Audiences = nil })
	if _, err := v2.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "ec256", claims(func(c jwt.MapClaims) { delete(c, "aud") }))); err != nil {
		t.Fatal(err)
	}
	// Leeway < 0: none.
	v3 := newTestVerifier(t, srv, newClock(), func(p *Provider, o *Options) { o.Leeway = -1 })
	if _, err := v3.Verify(context.Background(), sign(t, jwt.SigningMethodES256, k.ec256, "ec256", claims(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Second).Unix() }))); !errors.Is(err, ErrExpired) {
		t.Fatalf("no leeway: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwks(rsaJWK("rsa1", &k.rsa.PublicKey)), nil)
	clk := newClock()
	v := newTestVerifier(t, srv, clk, func(p *Provider, o *Options) { o.MinRefreshInterval = 5 * time.Minute })
	ctx := context.Background()

	// A single key and no kid: that key is used.
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(nil))); err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}

	// The issuer rotates to rsa2; a token with the new kid triggers a refetch
	// once MinRefreshInterval has passed since the last fetch.
	srv.set(jwks(rsaJWK("rsa1", &k.rsa.PublicKey), rsaJWK("rsa2", &k.rsa2.PublicKey)))
	clk.Advance(6 * time.Minute)
	tok2 := sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa2", claims(nil))
	if _, err := v.Verify(ctx, tok2); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}

	// Another unknown kid within MinRefreshInterval: no refetch, rejected,
	// even though the server already serves it.
	srv.set(jwks(rsaJWK("rsa2", &k.rsa2.PublicKey), rsaJWK("rsa3", &k.rsa3.PublicKey)))
	clk.Advance(time.Minute)
	tok3 := sign(t, jwt.SigningMethodRS256, k.rsa3, "rsa3", claims(nil))
	if _, err := v.Verify(ctx, tok3); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid within interval: %v", err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa3, "nope", claims(nil))); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid within interval: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (throttled)", n)
	}

	// After the interval, rsa3 is picked up and rsa1 (removed) is no longer trusted.
	clk.Advance(5 * time.Minute)
	if _, err := v.Verify(ctx, tok3); err != nil {
		t.Fatalf("after interval: %v", err)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["jti"] = "fresh" }))); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed key: %v", err)
	}
}

func TestSingleFlightFetch(t *testing.T) {
	k := keys(t)
	gate := make(chan struct{})
	srv := newJWKSServer(t, allJWKS(k), gate)
	v := newTestVerifier(t, srv, newClock(), nil)
	const n = 32
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		tok := sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", claims(func(c jwt.MapClaims) { c["jti"] = i }))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		}()
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1", got)
	}
}

func TestWaiterContextCanceled(t *testing.T) {
	k := keys(t)
	gate := make(chan struct{})
	srv := newJWKSServer(t, allJWKS(k), gate)
	srv.entered = make(chan struct{}, 1)
	v := newTestVerifier(t, srv, newClock(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(ctx, sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", claims(nil)))
		done <- err
	}()
	<-srv.entered
	cancel()
	if err := <-done; !errors.Is(err, ErrUnknownKey) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// The shared fetch was not canceled with the request: it completes and
	// the keys are there for the next caller, without another fetch.
	close(gate)
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodEdDSA, k.ed, "ed1", claims(nil))); err != nil {
		t.Fatal(err)
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Fatalf("fetches = %d, want 1", got)
	}
}

func TestFetchFailures(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwks(rsaJWK("rsa1", &k.rsa.PublicKey)), nil)
	clk := newClock()
	v := newTestVerifier(t, srv, clk, nil)
	ctx := context.Background()
	tok1 := sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(nil))
	if _, err := v.Verify(ctx, tok1); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		prep func()
	}{
		{"status 500", func() { srv.status.Store(http.StatusInternalServerError) }},
		{"not JSON", func() { srv.status.Store(http.StatusOK); srv.set([]byte("<html>")) }},
		{"no usable keys", func() { srv.set(jwks(map[string]any{"kty": "oct", "k": "AAAA"})) }},
		{"larger than 1 MiB", func() {
			big := jwks(rsaJWK("rsa2", &k.rsa2.PublicKey), map[string]any{"kty": "x", "pad": strings.Repeat("a", maxJWKSBytes)})
			srv.set(big)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.prep()
			clk.Advance(6 * time.Minute)
			before := srv.fetches.Load()
			_, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa2", claims(nil)))
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v", err)
			}
			if srv.fetches.Load() != before+1 {
				t.Fatal("no fetch attempted")
			}
			// The old keys are kept.
			if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["jti"] = tc.name }))); err != nil {
				t.Fatalf("old key after failed fetch: %v", err)
			}
		})
	}

	// After a failure the retry comes after 30s, not MinRefreshInterval.
	srv.set(jwks(rsaJWK("rsa2", &k.rsa2.PublicKey)))
	before := srv.fetches.Load()
	tok2 := sign(t, jwt.SigningMethodRS256, k.rsa2, "rsa2", claims(nil))
	clk.Advance(10 * time.Second)
	if _, err := v.Verify(ctx, tok2); !errors.Is(err, ErrUnknownKey) || srv.fetches.Load() != before {
		t.Fatalf("retry too early: %v, fetches %d", err, srv.fetches.Load()-before)
	}
	clk.Advance(25 * time.Second)
	if _, err := v.Verify(ctx, tok2); err != nil || srv.fetches.Load() != before+1 {
		t.Fatalf("retry after backoff: %v, fetches %d", err, srv.fetches.Load()-before)
	}
}

func TestBackgroundRefreshAfterMaxAge(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, jwks(rsaJWK("rsa1", &k.rsa.PublicKey)), nil)
	clk := newClock()
	v := newTestVerifier(t, srv, clk, func(p *Provider, o *Options) { o.JWKSMaxAge = time.Hour })
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(nil))); err != nil {
		t.Fatal(err)
	}
	// The issuer drops rsa1 (say it leaked). Once the set is older than
	// JWKSMaxAge, the next use refreshes it in the background.
	srv.set(jwks(rsaJWK("rsa2", &k.rsa2.PublicKey)))
	clk.Advance(61 * time.Minute)
	fresh := func(j string) string {
		return sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) {
			c["jti"] = j
			c["exp"] = clk.Now().Add(time.Hour).Unix()
		}))
	}
	if _, err := v.Verify(ctx, fresh("a")); err != nil {
		t.Fatalf("current keys keep serving during the refresh: %v", err)
	}
	ks := v.byIssuer[testIssuer].keys
	ks.mu.Lock()
	c := ks.inflight
	ks.mu.Unlock()
	if c != nil {
		<-c.done
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	if _, err := v.Verify(ctx, fresh("b")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("dropped key still trusted: %v", err)
	}
}

func TestInlineJWKS(t *testing.T) {
	k := keys(t)
	v, err := NewVerifier([]Provider{{
		Issuer: testIssuer, Audiences: []string{testAud},
		JWKS: jwks(ecJWK("ec256", &k.ec256.PublicKey)),
	}}, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, kid := range []string{"ec256", ""} {
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, k.ec256, kid, claims(func(c jwt.MapClaims) { c["jti"] = kid }))); err != nil {
			t.Fatalf("kid %q: %v", kid, err)
		}
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodES256, k.ec256, "other", claims(nil))); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid inline: %v", err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil))); !errors.Is(err, ErrSignature) {
		t.Fatalf("RS256 against an EC key: %v", err)
	}
}

func TestJWKAlgPinned(t *testing.T) {
	k := keys(t)
	j := rsaJWK("rsa1", &k.rsa.PublicKey)
	j["alg"] = "RS256"
	v, err := NewVerifier([]Provider{{Issuer: testIssuer, JWKS: jwks(j)}}, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(nil))); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS512, k.rsa, "rsa1", claims(nil))); !errors.Is(err, ErrSignature) {
		t.Fatalf("RS512 with a key pinned to RS256: %v", err)
	}
}

func TestClaimMapping(t *testing.T) {
	k := keys(t)
	jw := jwks(edJWK("ed1", k.ed.Public().(ed25519.PublicKey)))
	mk := func(m ClaimMapping) *Verifier {
		v, err := NewVerifier([]Provider{{Issuer: testIssuer, JWKS: jw, Claims: m}}, Options{Now: newClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	nested := mk(ClaimMapping{Subject: "user.id", Team: "org.team", Roles: "realm_access.roles"})
	verify := func(v *Verifier, mod func(jwt.MapClaims)) (*Identity, error) {
		return v.Verify(context.Background(), sign(t, jwt.SigningMethodEdDSA, k.ed, "", claims(mod)))
	}

	id, err := verify(nested, func(c jwt.MapClaims) {
		c["user"] = map[string]any{"id": "u-123"}
		c["org"] = map[string]any{"team": "ml-platform"}
		c["realm_access"] = map[string]any{"roles": []string{"developer", "admin"}}
	})
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u-123" || id.Team != "ml-platform" || strings.Join(id.Roles, ",") != "developer,admin" {
		t.Fatalf("identity = %+v", id)
	}

	id, err = verify(nested, func(c jwt.MapClaims) {
		c["user"] = map[string]any{"id": "u-1"}
		c["realm_access"] = map[string]any{"roles": "developer"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if id.Team != "" || len(id.Roles) != 1 || id.Roles[0] != "developer" {
		t.Fatalf("single-string role, absent team: %+v", id)
	}

	// Namespaced claim names containing dots are matched as written first.
	ns := mk(ClaimMapping{Team: "https://example.com/team", Roles: "https://example.com/roles"})
	id, err = verify(ns, func(c jwt.MapClaims) {
		c["https://example.com/team"] = "t1"
		c["https://example.com/roles"] = []string{"r1"}
	})
	if err != nil || id.Subject != "alice" || id.Team != "t1" || id.Roles[0] != "r1" {
		t.Fatalf("namespaced: %+v, %v", id, err)
	}

	for name, mod := range map[string]func(jwt.MapClaims){
		"subject missing":        func(c jwt.MapClaims) { c["user"] = map[string]any{} },
		"subject path not a map": func(c jwt.MapClaims) { c["user"] = "u-1" },
		"team not a string":      func(c jwt.MapClaims) { c["user"] = map[string]any{"id": "u"}; c["org"] = map[string]any{"team": 3} },
		"roles not strings": func(c jwt.MapClaims) {
			c["user"] = map[string]any{"id": "u"}
			c["realm_access"] = map[string]any{"roles": []any{"a", 1}}
		},
		"roles an object": func(c jwt.MapClaims) {
			c["user"] = map[string]any{"id": "u"}
			c["realm_access"] = map[string]any{"roles": map[string]any{}}
		},
		"aud not strings": func(c jwt.MapClaims) { c["user"] = map[string]any{"id": "u"}; c["aud"] = 5 },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := verify(nested, mod); !errors.Is(err, ErrClaims) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestCache(t *testing.T) {
	k := keys(t)
	srv := newJWKSServer(t, allJWKS(k), nil)
	clk := newClock()
	v := newTestVerifier(t, srv, clk, nil)
	ctx := context.Background()
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(func(c jwt.MapClaims) { c["exp"] = t0.Add(30 * time.Minute).Unix() }))

	id1, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := v.Verify(ctx, tok)
	if err != nil || id2 != id1 {
		t.Fatalf("cache hit: %p %p %v", id1, id2, err)
	}
	// Cached for at most 10 minutes: then verified again (a new identity).
	clk.Advance(11 * time.Minute)
	id3, err := v.Verify(ctx, tok)
	if err != nil || id3 == id1 {
		t.Fatalf("after cache TTL: %p %p %v", id1, id3, err)
	}
	// Within leeway after exp the token is still accepted, from cache or not.
	clk.Advance(19*time.Minute + 30*time.Second)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	// Past exp + leeway: rejected even though it was cached.
	clk.Advance(time.Minute)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired cached token: %v", err)
	}

	// Disabled cache: every call verifies.
	nc := newTestVerifier(t, srv, newClock(), func(p *Provider, o *Options) { o.MaxCacheEntries = -1 })
	a, _ := nc.Verify(ctx, tok)
	b, _ := nc.Verify(ctx, tok)
	if a == nil || a == b {
		t.Fatal("cache disabled but identity reused")
	}
}

func TestCacheBounded(t *testing.T) {
	c := newCache(5)
	total := 0
	for i := range 1000 {
		var key [32]byte
		key[0], key[1] = byte(i), byte(i>>8)
		c.put(&key, &Identity{}, 100, 0)
	}
	for i := range c.shards {
		total += len(c.shards[i].m)
	}
	if total > 5 || total == 0 {
		t.Fatalf("cache holds %d entries, max 5", total)
	}
	// Expired entries are preferred victims and never returned.
	c = newCache(1)
	var a, b [32]byte
	b[0] = 1
	c.put(&a, &Identity{Subject: "a"}, 10, 0)
	if c.get(&a, 10) != nil {
		t.Fatal("expired entry returned")
	}
	c.put(&a, &Identity{Subject: "a"}, 10, 0)
	c.put(&b, &Identity{Subject: "b"}, 100, 20)
	if c.get(&b, 20) == nil || c.get(&a, 5) != nil {
		t.Fatal("eviction")
	}
}

func TestNewVerifierValidation(t *testing.T) {
	k := keys(t)
	good := jwks(rsaJWK("rsa1", &k.rsa.PublicKey))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	client := http.DefaultClient
	cases := map[string]struct {
		ps []Provider
		o  Options
	}{
		"no providers":       {nil, Options{}},
		"no issuer":          {[]Provider{{JWKS: good}}, Options{}},
		"duplicate issuer":   {[]Provider{{Issuer: "a", JWKS: good}, {Issuer: "a", JWKS: good}}, Options{}},
		"no keys":            {[]Provider{{Issuer: "a"}}, Options{}},
		"both keys":          {[]Provider{{Issuer: "a", JWKS: good, JWKSURI: "https://x/jwks"}}, Options{Client: client}},
		"bad inline":         {[]Provider{{Issuer: "a", JWKS: []byte("{")}}, Options{}},
		"inline no keys":     {[]Provider{{Issuer: "a", JWKS: []byte(`{"keys":[]}`)}}, Options{}},
		"inline not a set":   {[]Provider{{Issuer: "a", JWKS: []byte(`{"kty":"RSA"}`)}}, Options{}},
		"inline bad RSA":     {[]Provider{{Issuer: "a", JWKS: []byte(`{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}`)}}, Options{}},
		"inline small RSA":   {[]Provider{{Issuer: "a", JWKS: jwks(rsaJWK("s", &small.PublicKey))}}, Options{}},
		"inline bad EC":      {[]Provider{{Issuer: "a", JWKS: []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`)}}, Options{}},
		"inline off curve":   {[]Provider{{Issuer: "a", JWKS: jwks(map[string]any{"kty": "EC", "crv": "P-256", "x": b64u(make([]byte, 32)), "y": b64u(make([]byte, 32))})}}, Options{}},
		"inline only oct":    {[]Provider{{Issuer: "a", JWKS: jwks(map[string]any{"kty": "oct", "k": "AAAA"})}}, Options{}},
		"http URI":           {[]Provider{{Issuer: "a", JWKSURI: "http://issuer.example.com/jwks"}}, Options{Client: client}},
		"ftp URI":            {[]Provider{{Issuer: "a", JWKSURI: "ftp://issuer.example.com/jwks"}}, Options{Client: client}},
		"relative URI":       {[]Provider{{Issuer: "a", JWKSURI: "/jwks"}}, Options{Client: client}},
		"URI credentials":    {[]Provider{{Issuer: "a", JWKSURI: "https://u:p@issuer.example.com/jwks"}}, Options{Client: client}},
		"URI without client": {[]Provider{{Issuer: "a", JWKSURI: "https://issuer.example.com/jwks"}}, Options{}},
		"empty audience":     {[]Provider{{Issuer: "a", JWKS: good, Audiences: []string{""}}}, Options{}},
		"bad subject path":   {[]Provider{{Issuer: "a", JWKS: good, Claims: ClaimMapping{Subject: "a..b"}}}, Options{}},
		"bad team path":      {[]Provider{{Issuer: "a", JWKS: good, Claims: ClaimMapping{Team: ".team"}}}, Options{}},
		"bad roles path":     {[]Provider{{Issuer: "a", JWKS: good, Claims: ClaimMapping{Roles: "roles "}}}, Options{}},
		"long path":          {[]Provider{{Issuer: "a", JWKS: good, Claims: ClaimMapping{Roles: strings.Repeat("a", 300)}}}, Options{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := NewVerifier(tc.ps, tc.o); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	for _, uri := range []string{"https://issuer.example.com/jwks", "http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]:1/jwks"} {
		if _, err := NewVerifier([]Provider{{Issuer: "a", JWKSURI: uri}}, Options{Client: client}); err != nil {
			t.Errorf("%s: %v", uri, err)
		}
	}
}

func TestMultipleProviders(t *testing.T) {
	k := keys(t)
	v, err := NewVerifier([]Provider{
		{Issuer: "https://a.example.com", JWKS: jwks(rsaJWK("k", &k.rsa.PublicKey))},
		{Issuer: "https://b.example.com", JWKS: jwks(rsaJWK("k", &k.rsa2.PublicKey))},
	}, Options{Now: newClock().Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tokA := sign(t, jwt.SigningMethodRS256, k.rsa, "k", claims(func(c jwt.MapClaims) { c["iss"] = "https://a.example.com" }))
	if id, err := v.Verify(ctx, tokA); err != nil || id.Issuer != "https://a.example.com" {
		t.Fatalf("%+v %v", id, err)
	}
	// Signed by A's key but claiming B: B's keys are used, so it fails.
	tokX := sign(t, jwt.SigningMethodRS256, k.rsa, "k", claims(func(c jwt.MapClaims) { c["iss"] = "https://b.example.com" }))
	if _, err := v.Verify(ctx, tokX); !errors.Is(err, ErrSignature) {
		t.Fatalf("cross-issuer: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	k := keys(f)
	clk := newClock()
	v, err := NewVerifier([]Provider{{
		Issuer: testIssuer, Audiences: []string{testAud},
		JWKS:   allJWKS(k),
		Claims: ClaimMapping{Team: "org.team", Roles: "realm_access.roles"},
	}}, Options{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	valid := sign(f, jwt.SigningMethodES256, k.ec256, "ec256", claims(func(c jwt.MapClaims) {
		c["org"] = map[string]any{"team": "t"}
		c["realm_access"] = map[string]any{"roles": []string{"a"}}
	}))
	f.Add(valid)
	f.Add(sign(f, jwt.SigningMethodEdDSA, k.ed, "ed1", claims(nil)))
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("x"), "rsa1", claims(nil)))
	f.Add("")
	f.Add("..")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYTEifQ.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlLmNvbSJ9.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := v.Verify(context.Background(), tok)
		if (id == nil) == (err == nil) {
			t.Fatalf("id %v, err %v", id, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownIssuer) && !errors.Is(err, ErrSignature) &&
			!errors.Is(err, ErrExpired) && !errors.Is(err, ErrNotYetValid) && !errors.Is(err, ErrAudience) &&
			!errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrClaims) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	})
}
