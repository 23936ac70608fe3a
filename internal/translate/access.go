package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/auth/jwtauth"
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/resource"
)

// accessPolicy compiles the AccessPolicy and APIKeys; nil when there is no policy (the
// gateway then lets every caller in).
func (b *builder) accessPolicy() *auth.Policy {
	set := b.set
	if len(set.AccessPolicies) == 0 {
		for _, k := range set.APIKeys {
			b.fail("APIKey", orDefault(k.Namespace), k.Name, field.Invalid(field.NewPath("kind"), "APIKey", "API keys need an AccessPolicy with authentication.apiKeys; without one the gateway authenticates nobody"))
		}
		return nil
	}
	first := set.AccessPolicies[0]
	for _, ap := range set.AccessPolicies {
		if resource.Ref("", ap.Namespace, ap.Name) < resource.Ref("", first.Namespace, first.Name) {
			first = ap
		}
	}
	for _, ap := range set.AccessPolicies {
		if ap != first {
			b.fail("AccessPolicy", orDefault(ap.Namespace), ap.Name, field.Duplicate(field.NewPath("metadata", "name"), "only one AccessPolicy may exist; "+resource.Ref("AccessPolicy", orDefault(first.Namespace), first.Name)+" is the other"))
		}
	}
	ap := first.DeepCopy()
	ap.Default()
	errs := ap.Validate()
	s := &ap.Spec
	opts := auth.Options{APIKeys: s.Authentication.APIKeys != nil, Anonymous: s.Authentication.Anonymous, DefaultAllow: s.Default == v1alpha1.AccessAllow}
	for i, r := range s.Rules {
		rp := field.NewPath("spec", "rules").Index(i)
		rule := &auth.Rule{Name: r.Name, Models: r.Allow.Models, Tools: r.Allow.Tools, Endpoints: set2(r.Allow.Endpoints), Regions: set2(r.Allow.Regions)}
		if f := r.From; f != nil {
			rule.Subjects, rule.Teams, rule.Roles = set2(f.Subjects), set2(f.Teams), set2(f.Roles)
		}
		if r.When != "" {
			c, err := auth.CompileCondition(r.When)
			if err != nil {
				errs = append(errs, field.Invalid(rp.Child("when"), r.When, "CEL: "+strings.ReplaceAll(err.Error(), "\n", " ")))
			}
			rule.When = c
		}
		opts.Rules = append(opts.Rules, rule)
	}
	if j := s.Authentication.JWT; j != nil && len(errs) == 0 {
		var providers []jwtauth.Provider
		for _, pr := range j.Providers {
			providers = append(providers, jwtauth.Provider{
				Issuer: pr.Issuer, Audiences: pr.Audiences, JWKSURI: pr.JWKSURI, JWKS: []byte(pr.JWKS),
				Claims: jwtauth.ClaimMapping{Subject: pr.Claims.Subject, Team: pr.Claims.Team, Roles: pr.Claims.Roles},
			})
		}
		client := &http.Client{Timeout: 15 * time.Second, Transport: egress.NewTransport(egress.Timeouts{Connect: 5 * time.Second, FirstByte: 10 * time.Second})}
		v, err := jwtauth.NewVerifier(providers, jwtauth.Options{Client: client})
		if err != nil {
			errs = append(errs, field.Invalid(field.NewPath("spec", "authentication", "jwt"), "", err.Error()))
		}
		opts.JWT = v
	}
	if len(errs) > 0 {
		b.fail("AccessPolicy", ap.Namespace, ap.Name, errs...)
	}
	opts.Keys = b.apiKeys(opts.APIKeys)
	return auth.NewPolicy(opts)
}

func (b *builder) apiKeys(enabled bool) []auth.Key {
	var keys []auth.Key
	seen := map[[sha256.Size]byte]string{}
	for _, k := range b.set.APIKeys {
		k = k.DeepCopy()
		k.Default()
		errs := k.Validate()
		ref := resource.Ref("APIKey", k.Namespace, k.Name)
		if !enabled {
			errs = append(errs, field.Invalid(field.NewPath("kind"), "APIKey", "the AccessPolicy does not enable authentication.apiKeys"))
		}
		var sum [sha256.Size]byte
		if len(errs) == 0 {
			if k.Spec.Hash != "" {
				raw, _ := hex.DecodeString(strings.TrimPrefix(k.Spec.Hash, "sha256:"))
				copy(sum[:], raw)
			} else {
				r := k.Spec.SecretRef
				data, ok := b.secrets[r.Namespace+"/"+r.Name]
				v, has := data[r.Key]
				key := strings.TrimSpace(string(v))
				if !ok || !has || key == "" {
					errs = append(errs, field.Invalid(field.NewPath("spec", "secretRef"), r.Namespace+"/"+r.Name+"["+r.Key+"]", "Secret or key not found, or empty"))
				}
				sum = sha256.Sum256([]byte(key))
			}
		}
		if other, dup := seen[sum]; dup && len(errs) == 0 {
			errs = append(errs, field.Duplicate(field.NewPath("spec", "hash"), "the same key as "+other))
		}
		if len(errs) > 0 {
			b.fail("APIKey", k.Namespace, k.Name, errs...)
			continue
		}
		seen[sum] = ref
		key := auth.Key{Ref: ref, Hash: sum, Subject: k.Spec.Subject, Team: k.Spec.Team, Roles: k.Spec.Roles, Disabled: k.Spec.Disabled}
		if k.Spec.ExpiresAt != nil {
			key.ExpiresAt = k.Spec.ExpiresAt.Time
		}
		keys = append(keys, key)
	}
	return keys
}

func set2(values []string) map[string]bool {
	if len(values) == 0 {
		return nil
	}
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}
