package v1alpha1

import (
	"encoding/hex"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Endpoints a rule may name.
var AccessEndpoints = []string{"chat", "completions", "embeddings", "messages", "mcp"}

// Default fills empty fields.
func (k *APIKey) Default() {
	if k.Namespace == "" {
		k.Namespace = DefaultNamespace
	}
	if r := k.Spec.SecretRef; r != nil {
		if r.Namespace == "" {
			r.Namespace = k.Namespace
		}
		if r.Key == "" {
			r.Key = "key"
		}
	}
}

// Validate checks an APIKey alone.
func (k *APIKey) Validate() field.ErrorList {
	errs := validateMeta(k.Name, k.Namespace)
	p := field.NewPath("spec")
	s := &k.Spec
	switch {
	case (s.Hash == "") == (s.SecretRef == nil):
		errs = append(errs, field.Invalid(p, "", "set exactly one of hash and secretRef"))
	case s.Hash != "":
		hexPart, ok := strings.CutPrefix(s.Hash, "sha256:")
		if b, err := hex.DecodeString(hexPart); !ok || err != nil || len(b) != 32 {
			errs = append(errs, field.Invalid(p.Child("hash"), "(hidden)", `must be "sha256:" followed by 64 hex digits`))
		}
	case s.SecretRef.Name == "":
		errs = append(errs, field.Required(p.Child("secretRef", "name"), ""))
	}
	if strings.TrimSpace(s.Subject) == "" {
		errs = append(errs, field.Required(p.Child("subject"), ""))
	}
	return errs
}

// Default fills empty fields.
func (a *AccessPolicy) Default() {
	if a.Namespace == "" {
		a.Namespace = DefaultNamespace
	}
	if a.Spec.Default == "" {
		a.Spec.Default = AccessDeny
	}
	if j := a.Spec.Authentication.JWT; j != nil {
		for i := range j.Providers {
			if j.Providers[i].Claims == nil {
				j.Providers[i].Claims = &ClaimMapping{}
			}
			if j.Providers[i].Claims.Subject == "" {
				j.Providers[i].Claims.Subject = "sub"
			}
		}
	}
}

// Validate checks an AccessPolicy alone (CEL compiles in the translator).
func (a *AccessPolicy) Validate() field.ErrorList {
	errs := validateMeta(a.Name, a.Namespace)
	p := field.NewPath("spec")
	s := &a.Spec
	au := s.Authentication
	if au.APIKeys == nil && au.JWT == nil && !au.Anonymous {
		errs = append(errs, field.Required(p.Child("authentication"), "enable apiKeys, jwt or anonymous"))
	}
	if j := au.JWT; j != nil {
		jp := p.Child("authentication", "jwt", "providers")
		if len(j.Providers) == 0 {
			errs = append(errs, field.Required(jp, "at least one provider"))
		}
		seen := map[string]bool{}
		for i, pr := range j.Providers {
			ip := jp.Index(i)
			if pr.Issuer == "" {
				errs = append(errs, field.Required(ip.Child("issuer"), ""))
			} else if seen[pr.Issuer] {
				errs = append(errs, field.Duplicate(ip.Child("issuer"), pr.Issuer))
			}
			seen[pr.Issuer] = true
			switch {
			case (pr.JWKSURI == "") == (pr.JWKS == ""):
				errs = append(errs, field.Invalid(ip, pr.Issuer, "set exactly one of jwksURI and jwks"))
			case pr.JWKSURI != "":
				if u, err := url.Parse(pr.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					errs = append(errs, field.Invalid(ip.Child("jwksURI"), pr.JWKSURI, "must be an https URL"))
				}
			}
		}
	}
	switch s.Default {
	case AccessAllow, AccessDeny:
	default:
		errs = append(errs, field.NotSupported(p.Child("default"), s.Default, []string{string(AccessAllow), string(AccessDeny)}))
	}
	names := map[string]bool{}
	for i, r := range s.Rules {
		rp := p.Child("rules").Index(i)
		if r.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		} else if names[r.Name] {
			errs = append(errs, field.Duplicate(rp.Child("name"), r.Name))
		}
		names[r.Name] = true
		for j, m := range r.Allow.Models {
			if m == "" || strings.ContainsAny(m, "[]\\") {
				errs = append(errs, field.Invalid(rp.Child("allow", "models").Index(j), m, "a model name or a glob of * and ?"))
			}
		}
		for j, t := range r.Allow.Tools {
			if t == "" || strings.ContainsAny(t, "[]\\") {
				errs = append(errs, field.Invalid(rp.Child("allow", "tools").Index(j), t, "a tool name or a glob of * and ?"))
			}
		}
		for j, e := range r.Allow.Endpoints {
			ok := false
			for _, known := range AccessEndpoints {
				ok = ok || e == known
			}
			if !ok {
				errs = append(errs, field.NotSupported(rp.Child("allow", "endpoints").Index(j), e, AccessEndpoints))
			}
		}
		for j, reg := range r.Allow.Regions {
			for _, msg := range validation.IsDNS1123Label(reg) {
				errs = append(errs, field.Invalid(rp.Child("allow", "regions").Index(j), reg, msg))
			}
		}
	}
	return errs
}
