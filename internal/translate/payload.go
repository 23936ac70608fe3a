package translate

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/payload"
	"github.com/sluice-gateway/sluice/internal/payload/anomaly"
	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/payload/external"
	"github.com/sluice-gateway/sluice/internal/payload/pii"
	"github.com/sluice-gateway/sluice/internal/payload/textfilter"
	"github.com/sluice-gateway/sluice/internal/resource"
)

// payloadState keeps what must outlive a snapshot: anomaly baselines (a reload must not
// forget who was attacking) and external processors' connection pools.
type payloadState struct {
	trackers map[string]*anomaly.Tracker
	clients  map[string]external.Client
}

// payloadProcessors compiles the PayloadProcessors.
func (b *builder) payloadProcessors(routes map[string]bool, snap *Snapshot) (*payload.Set, *payloadState) {
	st := &payloadState{trackers: map[string]*anomaly.Tracker{}, clients: map[string]external.Client{}}
	var prev *payloadState
	if b.prev != nil {
		prev = b.prev.payload
	}
	var resources []payload.Resource
	for _, pp := range b.set.PayloadProcessors {
		p := pp.DeepCopy()
		p.Default()
		errs := p.Validate()
		ref := resource.Ref("PayloadProcessor", p.Namespace, p.Name)
		res := payload.Resource{Ref: ref, Created: p.CreationTimestamp.Time, Phase: payload.PreRouting}
		if p.Spec.Phase == v1alpha1.PhasePostRouting {
			res.Phase = payload.PostRouting
		}
		for i, t := range p.Spec.TargetRefs {
			tr := resource.Ref(t.Kind, t.Namespace, t.Name) // a ModelRoute or an MCPRoute
			if !routes[tr] {
				errs = append(errs, field.NotFound(field.NewPath("spec", "targetRefs").Index(i).Child("name"), t.Namespace+"/"+t.Name))
			}
			res.Targets = append(res.Targets, tr)
		}
		// Compile even when validation failed, so the operator sees every problem at once.
		{
			for i := range p.Spec.Processors {
				step, perrs := b.processor(ref, &p.Spec.Processors[i], field.NewPath("spec", "processors").Index(i), snap, prev, st)
				errs = append(errs, perrs...)
				if step != nil {
					res.Steps = append(res.Steps, step)
				}
			}
		}
		if len(errs) > 0 {
			b.fail("PayloadProcessor", p.Namespace, p.Name, errs...)
			continue
		}
		resources = append(resources, res)
	}
	return payload.NewSet(resources), st
}

func (b *builder) processor(ref string, pr *v1alpha1.Processor, pp *field.Path, snap *Snapshot, prev, st *payloadState) (*payload.Step, field.ErrorList) {
	cfg := payload.StepConfig{Name: pr.Name, Resource: ref, FailOpen: pr.FailureMode == v1alpha1.FailOpen, Timeout: pr.Timeout.Duration, Request: true}
	for _, part := range pr.Inspect {
		switch part {
		case v1alpha1.PartUser:
			cfg.Parts |= content.User
		case v1alpha1.PartTool:
			cfg.Parts |= content.Tool
		case v1alpha1.PartSystem:
			cfg.Parts |= content.System
		case v1alpha1.PartAssistant:
			cfg.Parts |= content.Assistant
		}
	}
	scope := func(ss []v1alpha1.Scope) {
		cfg.Request, cfg.Response = false, false
		for _, s := range ss {
			cfg.Request = cfg.Request || s == v1alpha1.ScopeRequest
			cfg.Response = cfg.Response || s == v1alpha1.ScopeResponse
		}
	}
	var errs field.ErrorList
	switch {
	case pr.Type == v1alpha1.ProcessorExtProcess && pr.ExtProcess != nil:
	case pr.Type == v1alpha1.ProcessorInProcess && pr.InProcess != nil:
	default:
		return nil, nil // reported by Validate
	}
	if ep := pr.ExtProcess; pr.Type == v1alpha1.ProcessorExtProcess {
		scope(ep.Scope)
		client, err := b.externalClient(ep, snap, prev, st)
		if err != nil {
			return nil, field.ErrorList{field.Invalid(pp.Child("extProcess", "backendRef"), ep.BackendRef.Namespace+"/"+ep.BackendRef.Name, err.Error())}
		}
		return payload.NewExternal(cfg, client), nil
	}
	ip := pr.InProcess
	ipp := pp.Child("inProcess")
	switch {
	case ip.PromptInjection != nil:
		c := ip.PromptInjection
		return payload.NewPromptInjection(cfg, *c.Threshold, action(c.Action)), nil
	case ip.PII != nil:
		c := ip.PII
		scope(c.Scope)
		var ents []pii.Entity
		for _, name := range c.Entities {
			e, err := pii.ParseEntity(name)
			if err != nil {
				errs = append(errs, field.NotSupported(ipp.Child("pii", "entities"), name, v1alpha1.PIIEntities))
			}
			ents = append(ents, e)
		}
		return payload.NewPII(cfg, ents, action(c.Action)), errs
	case ip.ContentFilter != nil:
		c := ip.ContentFilter
		scope(c.Scope)
		f, err := textfilter.New(patterns(c.Deny), patterns(c.Allow))
		if err != nil {
			return nil, field.ErrorList{field.Invalid(ipp.Child("contentFilter"), "", err.Error())}
		}
		return payload.NewContentFilter(cfg, f, action(c.Action)), nil
	case ip.Signatures != nil:
		c := ip.Signatures
		var tracker *anomaly.Tracker
		if c.Anomalies == nil || !c.Anomalies.Disabled {
			tracker = tracker0(ref+"/"+pr.Name, c.Anomalies, prev, st)
		}
		return payload.NewSignatures(cfg, tracker, action(c.Action), c.Penalty.Duration), nil
	}
	var m payload.Mutations
	for j, f := range ip.SetHeaders {
		fp := ipp.Child("setHeaders").Index(j)
		if payload.ProtectedHeader(f.Name) {
			errs = append(errs, field.Forbidden(fp.Child("name"), "credential and framing headers cannot be set"))
			continue
		}
		e, err := auth.CompileExpression(f.Value)
		if err != nil {
			errs = append(errs, field.Invalid(fp.Child("value"), f.Value, err.Error()))
			continue
		}
		m.SetHeaders = append(m.SetHeaders, payload.HeaderValue{Name: f.Name, Expr: e})
	}
	for j, f := range ip.SetBodyFields {
		e, err := auth.CompileExpression(f.Value)
		if err != nil {
			errs = append(errs, field.Invalid(ipp.Child("setBodyFields").Index(j).Child("value"), f.Value, err.Error()))
			continue
		}
		m.SetBodyFields = append(m.SetBodyFields, payload.BodyValue{Path: strings.Split(f.Name, "."), Expr: e})
	}
	for j, name := range ip.RemoveHeaders {
		if payload.ProtectedHeader(name) && !egress.IsCredentialHeader(http.CanonicalHeaderKey(name)) {
			errs = append(errs, field.Forbidden(ipp.Child("removeHeaders").Index(j), "framing headers cannot be removed"))
		}
		m.RemoveHeaders = append(m.RemoveHeaders, name)
	}
	for _, name := range ip.RemoveBodyFields {
		m.RemoveBodyFields = append(m.RemoveBodyFields, strings.Split(name, "."))
	}
	return payload.NewMutations(cfg, m), errs
}

func action(a v1alpha1.Action) payload.Action {
	switch a {
	case v1alpha1.ActionFlag:
		return payload.Flag
	case v1alpha1.ActionRedact:
		return payload.Redact
	case v1alpha1.ActionThrottle:
		return payload.Throttle
	}
	return payload.Block
}

func patterns(ps []v1alpha1.Pattern) []textfilter.Pattern {
	out := make([]textfilter.Pattern, len(ps))
	for i, p := range ps {
		out[i] = textfilter.Pattern{Word: p.Word, Regex: p.Regex}
	}
	return out
}

// tracker0 returns the anomaly tracker of a signatures processor, the previous
// snapshot's when its settings did not change.
func tracker0(key string, a *v1alpha1.AnomalySettings, prev, st *payloadState) *anomaly.Tracker {
	cfg := anomaly.Config{}
	if a != nil {
		if a.HalfLife != nil {
			cfg.HalfLife = a.HalfLife.Duration
		}
		if a.RateFactor != nil {
			cfg.RateFactor = *a.RateFactor
		}
		if a.TokenFactor != nil {
			cfg.TokenFactor = *a.TokenFactor
		}
		cfg.DuplicateCount = int(a.DuplicatePrompts)
	}
	fp, _ := json.Marshal(cfg)
	key += "#" + string(fp)
	if prev != nil {
		if t, ok := prev.trackers[key]; ok {
			st.trackers[key] = t
			return t
		}
	}
	t := anomaly.New(cfg)
	st.trackers[key] = t
	return t
}

// externalClient returns the client of an external processor, reusing the previous
// snapshot's (and its connections) when the Backend did not change.
func (b *builder) externalClient(ep *v1alpha1.ExtProcessProcessor, snap *Snapshot, prev, st *payloadState) (external.Client, error) {
	bref := resource.Ref("Backend", ep.BackendRef.Namespace, ep.BackendRef.Name)
	be, ok := snap.Backends[bref]
	if !ok {
		if _, exists := b.set.Origins[bref]; exists {
			return nil, errString("the Backend is invalid")
		}
		return nil, errString("Backend not found")
	}
	up := be.Upstream
	if up.BaseURL == nil || be.Schema == v1alpha1.SchemaMock {
		return nil, errString("an external processor needs a Backend with a url")
	}
	cfg := external.Config{Protocol: string(ep.Protocol), Header: map[string][]string{}}
	switch ep.Protocol {
	case v1alpha1.ExtProtocolExtProc:
		host := up.BaseURL.Host
		if up.BaseURL.Port() == "" {
			port := "80"
			if up.BaseURL.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(up.BaseURL.Hostname(), port)
		}
		cfg.Address = host
		if up.BaseURL.Scheme == "https" {
			cfg.TLS = up.TLS
			if cfg.TLS == nil {
				cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
			}
		}
	default:
		cfg.Address = up.BaseURL.String()
		cfg.TLS = up.TLS
	}
	switch s := up.Signer.(type) {
	case nil:
	case *egress.HeaderSigner:
		name, value := s.Header()
		cfg.Header[name] = []string{value}
	default:
		return nil, errString("an external processor's Backend may carry an apiKey credential only")
	}
	key := string(ep.Protocol) + " " + bref + " " + snap.fingerprints[bref]
	if prev != nil {
		if c, ok := prev.clients[key]; ok {
			st.clients[key] = c
			return c, nil
		}
	}
	if c, ok := st.clients[key]; ok {
		return c, nil
	}
	c, err := external.New(cfg)
	if err != nil {
		return nil, err
	}
	st.clients[key] = c
	return c, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// retire closes the clients prev has and next does not.
func (p *payloadState) retire(next *payloadState) {
	if p == nil {
		return
	}
	for k, c := range p.clients {
		if next == nil || next.clients[k] != c {
			c.Close()
		}
	}
}
