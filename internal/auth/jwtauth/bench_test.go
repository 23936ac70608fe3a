package jwtauth

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func benchVerifier(b *testing.B, cacheEntries int) *Verifier {
	k := keys(b)
	v, err := NewVerifier([]Provider{{
		Issuer: testIssuer, Audiences: []string{testAud}, JWKS: allJWKS(k),
		Claims: ClaimMapping{Team: "org.team", Roles: "realm_access.roles"},
	}}, Options{Now: newClock().Now, MaxCacheEntries: cacheEntries})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func benchClaims() jwt.MapClaims {
	return claims(func(c jwt.MapClaims) {
		c["org"] = map[string]any{"team": "ml-platform"}
		c["realm_access"] = map[string]any{"roles": []string{"developer", "reader"}}
		c["email"] = "alice@example.com"
	})
}

// BenchmarkVerifyCached is the per-request cost of a token seen before.
func BenchmarkVerifyCached(b *testing.B) {
	v := benchVerifier(b, 0)
	tok := sign(b, jwt.SigningMethodRS256, keys(b).rsa, "rsa1", benchClaims())
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(tok)))
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	v := benchVerifier(b, 0)
	tok := sign(b, jwt.SigningMethodRS256, keys(b).rsa, "rsa1", benchClaims())
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyUncached is a full verification (cache disabled).
func BenchmarkVerifyUncached(b *testing.B) {
	k := keys(b)
	for _, tc := range []struct {
		m   jwt.SigningMethod
		key any
		kid string
	}{
		{jwt.SigningMethodRS256, k.rsa, "rsa1"},
		{jwt.SigningMethodES256, k.ec256, "ec256"},
		{jwt.SigningMethodES384, k.ec384, "ec384"},
		{jwt.SigningMethodEdDSA, k.ed, "ed1"},
	} {
		b.Run(tc.m.Alg(), func(b *testing.B) {
			v := benchVerifier(b, -1)
			tok := sign(b, tc.m, tc.key, tc.kid, benchClaims())
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
