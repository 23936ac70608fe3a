package v1alpha1

import (
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Payload-processing defaults.
const (
	DefaultInProcessTimeout   = 50 * time.Millisecond
	DefaultExtProcessTimeout  = 200 * time.Millisecond
	DefaultInjectionThreshold = 0.5
	DefaultThrottlePenalty    = time.Minute
	// MaxProcessorTimeout bounds any processor's timeout.
	MaxProcessorTimeout = 60 * time.Second
)

// PIIEntities are the entity names pii accepts, in documentation order.
var PIIEntities = []string{"Email", "Phone", "CreditCard", "SSN", "IBAN", "IPAddress", "Secret"}

// Default fills empty fields.
func (p *PayloadProcessor) Default() {
	if p.Namespace == "" {
		p.Namespace = DefaultNamespace
	}
	s := &p.Spec
	if s.Phase == "" {
		s.Phase = PhasePreRouting
	}
	for i := range s.TargetRefs {
		if s.TargetRefs[i].Namespace == "" {
			s.TargetRefs[i].Namespace = p.Namespace
		}
	}
	for i := range s.Processors {
		pr := &s.Processors[i]
		if pr.Type == "" {
			switch {
			case pr.InProcess != nil && pr.ExtProcess == nil:
				pr.Type = ProcessorInProcess
			case pr.ExtProcess != nil && pr.InProcess == nil:
				pr.Type = ProcessorExtProcess
			}
		}
		if pr.FailureMode == "" {
			pr.FailureMode = FailClosed
		}
		if pr.Timeout == nil {
			d := DefaultInProcessTimeout
			if pr.Type == ProcessorExtProcess {
				d = DefaultExtProcessTimeout
			}
			pr.Timeout = &metav1.Duration{Duration: d}
		}
		if len(pr.Inspect) == 0 {
			pr.Inspect = []MessagePart{PartUser, PartTool}
		}
		if ip := pr.InProcess; ip != nil {
			if c := ip.PromptInjection; c != nil {
				if c.Action == "" {
					c.Action = ActionBlock
				}
				if c.Threshold == nil {
					t := DefaultInjectionThreshold
					c.Threshold = &t
				}
			}
			if c := ip.PII; c != nil {
				if c.Action == "" {
					c.Action = ActionRedact
				}
				if len(c.Entities) == 0 {
					c.Entities = append([]string(nil), PIIEntities...)
				}
				if len(c.Scope) == 0 {
					c.Scope = []Scope{ScopeRequest}
				}
			}
			if c := ip.ContentFilter; c != nil {
				if c.Action == "" {
					c.Action = ActionBlock
				}
				if len(c.Scope) == 0 {
					c.Scope = []Scope{ScopeRequest}
				}
			}
			if c := ip.Signatures; c != nil {
				if c.Action == "" {
					c.Action = ActionFlag
				}
				defaultDuration(&c.Penalty, DefaultThrottlePenalty)
			}
		}
		if ep := pr.ExtProcess; ep != nil {
			if ep.BackendRef.Namespace == "" {
				ep.BackendRef.Namespace = p.Namespace
			}
			if len(ep.Scope) == 0 {
				ep.Scope = []Scope{ScopeRequest}
			}
		}
	}
}

// Validate checks a PayloadProcessor alone (regexes, CEL and Backend references are
// compiled and resolved by the translator).
func (p *PayloadProcessor) Validate() field.ErrorList {
	errs := validateMeta(p.Name, p.Namespace)
	sp := field.NewPath("spec")
	s := &p.Spec
	errs = append(errs, validateTargetRefs(s.TargetRefs, sp.Child("targetRefs"), "ModelRoute", "MCPRoute")...)
	switch s.Phase {
	case PhasePreRouting, PhasePostRouting:
	default:
		errs = append(errs, field.NotSupported(sp.Child("phase"), s.Phase, []string{"PreRouting", "PostRouting"}))
	}
	if len(s.Processors) == 0 {
		errs = append(errs, field.Required(sp.Child("processors"), "at least one processor"))
	}
	names := map[string]bool{}
	for i := range s.Processors {
		errs = append(errs, validateProcessor(&s.Processors[i], sp.Child("processors").Index(i), names)...)
	}
	return errs
}

func validateProcessor(pr *Processor, pp *field.Path, names map[string]bool) field.ErrorList {
	var errs field.ErrorList
	switch {
	case pr.Name == "":
		errs = append(errs, field.Required(pp.Child("name"), ""))
	case names[pr.Name]:
		errs = append(errs, field.Duplicate(pp.Child("name"), pr.Name))
	case !flagSafe(pr.Name):
		errs = append(errs, field.Invalid(pp.Child("name"), pr.Name, "letters, digits, '-', '_' and '.' only, at most 63"))
	}
	names[pr.Name] = true
	switch pr.FailureMode {
	case FailOpen, FailClosed:
	default:
		errs = append(errs, field.NotSupported(pp.Child("failureMode"), pr.FailureMode, []string{"FailClosed", "FailOpen"}))
	}
	if pr.Timeout != nil && (pr.Timeout.Duration <= 0 || pr.Timeout.Duration > MaxProcessorTimeout) {
		errs = append(errs, field.Invalid(pp.Child("timeout"), pr.Timeout.Duration.String(), "must be > 0 and at most 60s"))
	}
	for j, part := range pr.Inspect {
		switch part {
		case PartUser, PartTool, PartSystem, PartAssistant:
		default:
			errs = append(errs, field.NotSupported(pp.Child("inspect").Index(j), part, []string{"User", "Tool", "System", "Assistant"}))
		}
	}
	switch pr.Type {
	case ProcessorInProcess:
		if pr.InProcess == nil {
			errs = append(errs, field.Required(pp.Child("inProcess"), "for type InProcess"))
		}
		if pr.ExtProcess != nil {
			errs = append(errs, field.Forbidden(pp.Child("extProcess"), "only for type ExtProcess"))
		}
	case ProcessorExtProcess:
		if pr.ExtProcess == nil {
			errs = append(errs, field.Required(pp.Child("extProcess"), "for type ExtProcess"))
		}
		if pr.InProcess != nil {
			errs = append(errs, field.Forbidden(pp.Child("inProcess"), "only for type InProcess"))
		}
	case "":
		errs = append(errs, field.Required(pp.Child("type"), "set exactly one of inProcess and extProcess"))
	default:
		errs = append(errs, field.NotSupported(pp.Child("type"), pr.Type, []string{"InProcess", "ExtProcess"}))
	}
	if ip := pr.InProcess; ip != nil && pr.Type == ProcessorInProcess {
		errs = append(errs, validateInProcess(ip, pp.Child("inProcess"))...)
	}
	if ep := pr.ExtProcess; ep != nil && pr.Type == ProcessorExtProcess {
		ip := pp.Child("extProcess")
		switch ep.Protocol {
		case ExtProtocolExtProc, ExtProtocolHTTP:
		default:
			errs = append(errs, field.NotSupported(ip.Child("protocol"), ep.Protocol, []string{"ExtProc", "HTTP"}))
		}
		if ep.BackendRef.Name == "" {
			errs = append(errs, field.Required(ip.Child("backendRef", "name"), ""))
		}
		errs = append(errs, validateScope(ep.Scope, ip.Child("scope"))...)
	}
	return errs
}

func validateInProcess(ip *InProcessProcessor, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	detectors := 0
	mutations := len(ip.SetHeaders) + len(ip.SetBodyFields) + len(ip.RemoveHeaders) + len(ip.RemoveBodyFields)
	if c := ip.PromptInjection; c != nil {
		detectors++
		cp := p.Child("promptInjection")
		errs = append(errs, validateAction(c.Action, cp.Child("action"), ActionBlock, ActionFlag)...)
		if c.Threshold != nil && (*c.Threshold < 0 || *c.Threshold > 1) {
			errs = append(errs, field.Invalid(cp.Child("threshold"), *c.Threshold, "must be between 0 and 1"))
		}
	}
	if c := ip.PII; c != nil {
		detectors++
		cp := p.Child("pii")
		errs = append(errs, validateAction(c.Action, cp.Child("action"), ActionRedact, ActionBlock, ActionFlag)...)
		for j, e := range c.Entities {
			ok := false
			for _, known := range PIIEntities {
				ok = ok || known == e
			}
			if !ok {
				errs = append(errs, field.NotSupported(cp.Child("entities").Index(j), e, PIIEntities))
			}
		}
		errs = append(errs, validateScope(c.Scope, cp.Child("scope"))...)
	}
	if c := ip.ContentFilter; c != nil {
		detectors++
		cp := p.Child("contentFilter")
		errs = append(errs, validateAction(c.Action, cp.Child("action"), ActionBlock, ActionRedact, ActionFlag)...)
		if len(c.Deny) == 0 {
			errs = append(errs, field.Required(cp.Child("deny"), "at least one word or regex"))
		}
		for j, pat := range c.Deny {
			errs = append(errs, validatePattern(pat, cp.Child("deny").Index(j))...)
		}
		for j, pat := range c.Allow {
			errs = append(errs, validatePattern(pat, cp.Child("allow").Index(j))...)
		}
		errs = append(errs, validateScope(c.Scope, cp.Child("scope"))...)
	}
	if c := ip.Signatures; c != nil {
		detectors++
		cp := p.Child("signatures")
		errs = append(errs, validateAction(c.Action, cp.Child("action"), ActionFlag, ActionBlock, ActionThrottle)...)
		if c.Penalty != nil && c.Penalty.Duration <= 0 {
			errs = append(errs, field.Invalid(cp.Child("penalty"), c.Penalty.Duration.String(), "must be > 0"))
		}
		if a := c.Anomalies; a != nil {
			ap := cp.Child("anomalies")
			if a.HalfLife != nil && a.HalfLife.Duration < time.Minute {
				errs = append(errs, field.Invalid(ap.Child("halfLife"), a.HalfLife.Duration.String(), "must be at least 1m"))
			}
			for name, f := range map[string]*float64{"rateFactor": a.RateFactor, "tokenFactor": a.TokenFactor} {
				if f != nil && *f <= 1 {
					errs = append(errs, field.Invalid(ap.Child(name), *f, "must be > 1"))
				}
			}
			if a.DuplicatePrompts < 0 {
				errs = append(errs, field.Invalid(ap.Child("duplicatePrompts"), a.DuplicatePrompts, "must be >= 0"))
			}
		}
	}
	switch {
	case detectors > 1:
		errs = append(errs, field.Invalid(p, "", "set one detector per processor (promptInjection, pii, contentFilter or signatures); use several processors to chain them"))
	case detectors == 1 && mutations > 0:
		errs = append(errs, field.Invalid(p, "", "a detector and mutations cannot share a processor; use two processors so their order is explicit"))
	case detectors == 0 && mutations == 0:
		errs = append(errs, field.Required(p, "a detector (promptInjection, pii, contentFilter, signatures) or a mutation (setHeaders, setBodyFields, removeHeaders, removeBodyFields)"))
	}
	for j, f := range ip.SetHeaders {
		fp := p.Child("setHeaders").Index(j)
		if !headerName(f.Name) {
			errs = append(errs, field.Invalid(fp.Child("name"), f.Name, "not a valid header name"))
		}
		if f.Value == "" {
			errs = append(errs, field.Required(fp.Child("value"), "a CEL expression"))
		}
	}
	for j, name := range ip.RemoveHeaders {
		if !headerName(name) {
			errs = append(errs, field.Invalid(p.Child("removeHeaders").Index(j), name, "not a valid header name"))
		}
	}
	for j, f := range ip.SetBodyFields {
		fp := p.Child("setBodyFields").Index(j)
		errs = append(errs, validateBodyPath(f.Name, fp.Child("name"))...)
		if f.Value == "" {
			errs = append(errs, field.Required(fp.Child("value"), "a CEL expression"))
		}
	}
	for j, name := range ip.RemoveBodyFields {
		errs = append(errs, validateBodyPath(name, p.Child("removeBodyFields").Index(j))...)
	}
	return errs
}

func validateAction(a Action, p *field.Path, allowed ...Action) field.ErrorList {
	names := make([]string, len(allowed))
	for i, x := range allowed {
		if x == a {
			return nil
		}
		names[i] = string(x)
	}
	return field.ErrorList{field.NotSupported(p, a, names)}
}

func validateScope(scope []Scope, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for j, s := range scope {
		switch s {
		case ScopeRequest, ScopeResponse:
		default:
			errs = append(errs, field.NotSupported(p.Index(j), s, []string{"Request", "Response"}))
		}
	}
	return errs
}

func validatePattern(pat Pattern, p *field.Path) field.ErrorList {
	switch {
	case pat.Word == "" && pat.Regex == "":
		return field.ErrorList{field.Required(p, "word or regex")}
	case pat.Word != "" && pat.Regex != "":
		return field.ErrorList{field.Invalid(p, "", "set word or regex, not both")}
	case pat.Word != "" && strings.TrimSpace(pat.Word) != pat.Word:
		return field.ErrorList{field.Invalid(p.Child("word"), pat.Word, "no leading or trailing spaces")}
	}
	return nil
}

// validateBodyPath checks a dotted path (metadata.team). model and stream are protected:
// changing them after routing decisions would make the gateway route one request and send
// another.
func validateBodyPath(path string, p *field.Path) field.ErrorList {
	if path == "" {
		return field.ErrorList{field.Required(p, "a dotted path such as metadata.team")}
	}
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			return field.ErrorList{field.Invalid(p, path, "empty path segment")}
		}
	}
	switch strings.SplitN(path, ".", 2)[0] {
	case "model", "stream", "stream_options":
		return field.ErrorList{field.Forbidden(p, "model, stream and stream_options are decided by the client and the gateway")}
	}
	return nil
}

// flagSafe keeps processor names fit for headers and logs.
func flagSafe(s string) bool { return len(s) <= 63 && identChars(s) }

func headerName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
