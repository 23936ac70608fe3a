package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sluice-gateway/sluice/internal/auth/jwtauth"
)

// BenchmarkJWTCached is authentication plus authorization of a bearer JWT already verified
// once (the verified-token cache hit), against the same rules as BenchmarkAPIKey.
func BenchmarkJWTCached(b *testing.B) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "alg": "RS256",
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	v, err := jwtauth.NewVerifier([]jwtauth.Provider{{Issuer: "https://issuer.test", Audiences: []string{"sluice"}, JWKS: jwks, Claims: jwtauth.ClaimMapping{Subject: "sub", Team: "team", Roles: "roles"}}}, jwtauth.Options{})
	if err != nil {
		b.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://issuer.test", "aud": "sluice", "sub": "dana", "team": "research", "roles": []string{"developer"}, "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "k1"
	signed, _ := tok.SignedString(key)
	p := testPolicy(b, 10)
	p.jwt = v
	ctx := context.Background()
	h := http.Header{"Authorization": {"Bearer " + signed}}
	req := &Request{Model: "gpt-4o-mini", Endpoint: "chat", Header: h}
	if _, e, why := p.Authenticate(ctx, h); e != nil {
		b.Fatal(why)
	}
	b.ReportAllocs()
	for b.Loop() {
		pr, e, _ := p.Authenticate(ctx, h)
		if e != nil {
			b.Fatal(e)
		}
		if d := p.Authorize(pr, req); !d.Allowed {
			b.Fatal(d)
		}
	}
}
