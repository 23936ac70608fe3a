// Package payload runs PayloadProcessor chains: ordered processors that inspect, change or
// reject a request before it goes upstream and an answer (whole or streamed) before it
// reaches the client. The translator compiles resources into a Set; the gateway asks the
// Set for the chain of a phase and route and runs it on a Run, one per exchange.
//
// A processor's Block answers the client with content_blocked naming the processor, never
// the matched text. Redact rewrites the text in place. Flag lets the exchange pass and
// records a Finding (x-sluice-flags, the access log). A processor that errs or overruns
// its timeout fails closed (processor_failed) or open (skipped, its changes dropped).
package payload

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-gateway/sluice/internal/payload/content"
)

// Action is what a processor did.
type Action uint8

// Actions, in increasing severity.
const (
	Pass Action = iota
	Flag
	Redact
	Block
	Throttle
)

var actionNames = [...]string{"pass", "flag", "redact", "block", "throttle"}

func (a Action) String() string { return actionNames[a] }

// Finding records one processor's action on an exchange.
type Finding struct {
	Processor string
	Action    Action
	// Reason is short and stable (an entity, a rule id, a score); never matched text.
	Reason string
	// Response is set when the answer, not the request, was acted on.
	Response bool
}

// Phase is when request-side processors run.
type Phase uint8

// Phases.
const (
	PreRouting Phase = iota
	PostRouting
)

// Stats count what a step did, for metrics.
type Stats struct {
	Runs, Flagged, Redacted, Blocked, Failed atomic.Int64
}

// Step is one compiled processor.
type Step struct {
	// Name is the processor's name; Resource is the PayloadProcessor's Kind/ns/name.
	Name, Resource string
	FailOpen       bool
	Timeout        time.Duration
	// Parts are what a request-side detector reads.
	Parts content.Part
	// OnRequest and OnResponse are the step's scopes.
	OnRequest, OnResponse bool

	impl  impl
	Stats Stats
}

// impl is one kind of processor; see the implementations in this package.
type impl interface {
	// request inspects or changes the request of r.
	request(s *Step, r *Run) (verdict, error)
}

// verdict is a step's outcome on one message.
type verdict struct {
	action Action
	reason string
	// status and retryAfter, for Throttle and external blocks
	status     int
	retryAfter time.Duration
}

// Chain is the ordered steps that apply to one route in one phase.
type Chain struct {
	Steps []*Step
}

// Empty reports whether the chain does nothing.
func (c *Chain) Empty() bool { return c == nil || len(c.Steps) == 0 }

// Set is every compiled PayloadProcessor of a snapshot.
type Set struct {
	// chains by phase, then by route ref; all is for routes no resource targets.
	chains [2]map[string]*Chain
	all    [2]*Chain
	// Resources counts the PayloadProcessors compiled.
	Resources int
}

// Chain returns the steps of phase for a request routed to route (a ModelRoute or
// MCPRoute ref).
func (s *Set) Chain(p Phase, route string) *Chain {
	if s == nil {
		return nil
	}
	if c, ok := s.chains[p][route]; ok {
		return c
	}
	return s.all[p]
}

// FlagsHeader renders findings as the x-sluice-flags value: a structured-field
// dictionary, processor="action reason" (e.g. injection="flag score=0.93").
func FlagsHeader(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(sfKey(f.Processor))
		b.WriteString(`="`)
		b.WriteString(f.Action.String())
		if f.Response {
			b.WriteString(" response")
		}
		if f.Reason != "" {
			b.WriteByte(' ')
			for i := 0; i < len(f.Reason); i++ {
				c := f.Reason[i]
				if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
					c = '_'
				}
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// sfKey lower-cases a processor name into a structured-field key.
func sfKey(name string) string {
	k := []byte(strings.ToLower(name))
	for i, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			k[i] = '_'
		}
	}
	if len(k) == 0 || !(k[0] >= 'a' && k[0] <= 'z' || k[0] == '*') {
		k = append([]byte{'p'}, k...)
	}
	return string(k)
}
