package payload

import (
	"sort"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/payload/anomaly"
	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/payload/external"
	"github.com/sluice-gateway/sluice/internal/payload/injection"
	"github.com/sluice-gateway/sluice/internal/payload/pii"
	"github.com/sluice-gateway/sluice/internal/payload/signatures"
	"github.com/sluice-gateway/sluice/internal/payload/textfilter"
)

// StepConfig is what every step has.
type StepConfig struct {
	Name, Resource string
	FailOpen       bool
	Timeout        time.Duration
	Parts          content.Part
	// Request and Response are the scopes.
	Request, Response bool
}

func newStep(c StepConfig, im impl) *Step {
	return &Step{Name: c.Name, Resource: c.Resource, FailOpen: c.FailOpen, Timeout: c.Timeout, Parts: c.Parts,
		OnRequest: c.Request, OnResponse: c.Response, impl: im}
}

// The detectors are immutable and their tables large: one each per process.
var (
	injectionDetector0 = sync.OnceValue(injection.New)
	signatureScanner   = sync.OnceValue(signatures.New)
)

// NewPII returns a step detecting entities (all when none) with action Redact, Block or Flag.
func NewPII(c StepConfig, entities []pii.Entity, a Action) *Step {
	return newStep(c, &textStep{det: &piiDetector{d: pii.New(entities...)}, action: a})
}

// NewContentFilter returns a step matching f with action Block, Redact or Flag.
func NewContentFilter(c StepConfig, f *textfilter.Filter, a Action) *Step {
	return newStep(c, &textStep{det: &filterDetector{f: f}, action: a})
}

// NewPromptInjection returns a request step scoring prompt injection; at or above
// threshold it takes action Block or Flag.
func NewPromptInjection(c StepConfig, threshold float64, a Action) *Step {
	c.Response = false
	return newStep(c, &textStep{det: &injectionDetector{d: injectionDetector0(), threshold: threshold}, action: a})
}

// NewSignatures returns a request step matching attack signatures and, with a tracker,
// traffic anomalies; action Flag, Block or Throttle (a penalty of penalty).
func NewSignatures(c StepConfig, tracker *anomaly.Tracker, a Action, penalty time.Duration) *Step {
	c.Response = false
	return newStep(c, &signaturesStep{scan: signatureScanner(), tracker: tracker, action: a, penalty: penalty})
}

// NewMutations returns a request step changing headers and body.
func NewMutations(c StepConfig, m Mutations) *Step {
	c.Response = false
	return newStep(c, &mutateStep{m: m})
}

// NewExternal returns a step calling an external processor.
func NewExternal(c StepConfig, client external.Client) *Step {
	return newStep(c, &extStep{client: client})
}

// Resource is one compiled PayloadProcessor.
type Resource struct {
	// Ref is Kind/namespace/name; Created orders resources of the same phase.
	Ref     string
	Created time.Time
	Phase   Phase
	// Targets are ModelRoute and MCPRoute refs; empty: every route.
	Targets []string
	Steps   []*Step
}

// NewSet orders resources (phase, then creation time, then namespace/name) and builds
// the chains of every phase: one per targeted route and one for all other routes.
func NewSet(resources []Resource) *Set {
	sort.SliceStable(resources, func(i, j int) bool {
		a, b := resources[i], resources[j]
		if a.Phase != b.Phase {
			return a.Phase < b.Phase
		}
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Ref < b.Ref
	})
	s := &Set{Resources: len(resources)}
	targeted := map[string]bool{}
	for _, res := range resources {
		for _, t := range res.Targets {
			targeted[t] = true
		}
	}
	for p := range s.chains {
		s.chains[p] = map[string]*Chain{}
		s.all[p] = chainOf(resources, Phase(p), "")
		for rt := range targeted {
			s.chains[p][rt] = chainOf(resources, Phase(p), rt)
		}
	}
	return s
}

// chainOf is the steps of phase that apply to route ("" for a route no resource targets).
func chainOf(resources []Resource, p Phase, route string) *Chain {
	c := &Chain{}
	for _, res := range resources {
		if res.Phase != p || !applies(res.Targets, route) {
			continue
		}
		for _, st := range res.Steps {
			c.Steps = append(c.Steps, st)
		}
	}
	return c
}

func applies(targets []string, route string) bool {
	if len(targets) == 0 {
		return true
	}
	for _, t := range targets {
		if t == route {
			return true
		}
	}
	return false
}
