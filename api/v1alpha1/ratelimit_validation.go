package v1alpha1

import (
	"net/url"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DefaultOutputTokenEstimate is reserved for output when a request sets no max_tokens.
const DefaultOutputTokenEstimate = 256

// Default fills empty fields.
func (p *RateLimitPolicy) Default() {
	if p.Namespace == "" {
		p.Namespace = DefaultNamespace
	}
	s := &p.Spec
	if s.Storage == nil {
		s.Storage = &RateLimitStorage{Type: StorageMemory}
	}
	if s.FailureMode == "" {
		s.FailureMode = FailOpen
	}
	if s.OutputTokenEstimate == 0 {
		s.OutputTokenEstimate = DefaultOutputTokenEstimate
	}
	for i := range s.TargetRefs {
		if s.TargetRefs[i].Namespace == "" {
			s.TargetRefs[i].Namespace = p.Namespace
		}
	}
	for i := range s.Rules {
		if s.Rules[i].Limit.TimeValue == 0 {
			s.Rules[i].Limit.TimeValue = 1
		}
	}
}

// Validate checks a RateLimitPolicy alone (CEL compiles in the translator).
func (p *RateLimitPolicy) Validate() field.ErrorList {
	errs := validateMeta(p.Name, p.Namespace)
	sp := field.NewPath("spec")
	s := &p.Spec
	errs = append(errs, validateTargetRefs(s.TargetRefs, sp.Child("targetRefs"), "ModelRoute", "MCPRoute")...)
	if len(s.Rules) == 0 {
		errs = append(errs, field.Required(sp.Child("rules"), "at least one rule"))
	}
	names := map[string]bool{}
	for i, r := range s.Rules {
		rp := sp.Child("rules").Index(i)
		if r.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		} else if names[r.Name] {
			errs = append(errs, field.Duplicate(rp.Child("name"), r.Name))
		}
		names[r.Name] = true
		if r.Key == "" {
			errs = append(errs, field.Required(rp.Child("key"), "a CEL expression, e.g. principal.team"))
		}
		l := r.Limit
		lp := rp.Child("limit")
		switch l.VolumeUnits {
		case VolumeRequests, VolumeTokens, VolumeInputTokens, VolumeOutputTokens:
		default:
			errs = append(errs, field.NotSupported(lp.Child("volumeUnits"), l.VolumeUnits, []string{"Requests", "Tokens", "InputTokens", "OutputTokens"}))
		}
		if l.Volume <= 0 {
			errs = append(errs, field.Invalid(lp.Child("volume"), l.Volume, "must be > 0"))
		}
		switch l.TimeUnit {
		case TimeSecond, TimeMinute, TimeHour, TimeDay, TimeMonth:
		default:
			errs = append(errs, field.NotSupported(lp.Child("timeUnit"), l.TimeUnit, []string{"Second", "Minute", "Hour", "Day", "Month"}))
		}
		if l.TimeValue < 1 || l.TimeValue > 10000 {
			errs = append(errs, field.Invalid(lp.Child("timeValue"), l.TimeValue, "must be between 1 and 10000"))
		}
		if r.CostExpression != "" && l.VolumeUnits == VolumeRequests {
			errs = append(errs, field.Forbidden(rp.Child("costExpression"), "a Requests limit counts requests"))
		}
	}
	if st := s.Storage; st != nil {
		errs = append(errs, validateStorage(st.Type, st.Redis, sp.Child("storage"))...)
	}
	if s.OutputTokenEstimate < 1 {
		errs = append(errs, field.Invalid(sp.Child("outputTokenEstimate"), s.OutputTokenEstimate, "must be > 0"))
	}
	switch s.FailureMode {
	case FailOpen, FailClosed:
	default:
		errs = append(errs, field.NotSupported(sp.Child("failureMode"), s.FailureMode, []string{"FailOpen", "FailClosed"}))
	}
	return errs
}

// validateTargetRefs checks a policy's targetRefs: routes of the kinds given, named.
func validateTargetRefs(refs []TargetRef, p *field.Path, kinds ...string) field.ErrorList {
	var errs field.ErrorList
	for i, t := range refs {
		if !slices.Contains(kinds, t.Kind) {
			errs = append(errs, field.NotSupported(p.Index(i).Child("kind"), t.Kind, kinds))
		}
		if t.Name == "" {
			errs = append(errs, field.Required(p.Index(i).Child("name"), ""))
		}
	}
	return errs
}

// validateStorage checks a Memory or Redis storage choice.
func validateStorage(t StorageType, r *RedisStorage, p *field.Path) field.ErrorList {
	switch t {
	case StorageMemory:
		if r != nil {
			return field.ErrorList{field.Forbidden(p.Child("redis"), "only for type Redis")}
		}
	case StorageRedis:
		if r == nil || r.URL == "" {
			return field.ErrorList{field.Required(p.Child("redis", "url"), "")}
		}
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return field.ErrorList{field.Invalid(p.Child("redis", "url"), "(hidden)", "must be redis://host:port/db or rediss://...")}
		}
	default:
		return field.ErrorList{field.NotSupported(p.Child("type"), t, []string{"Memory", "Redis"})}
	}
	return nil
}
