package payload

import (
	"net/http"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/payload/anomaly"
	"github.com/sluice-gateway/sluice/internal/payload/signatures"
)

// signaturesStep matches known attack signatures in the request and watches each
// principal's traffic for anomalies. Throttle puts the principal under a penalty: its
// requests are refused until the penalty ends.
type signaturesStep struct {
	scan    *signatures.Scanner
	tracker *anomaly.Tracker // nil: anomaly detection off
	action  Action
	penalty time.Duration
}

func (s *signaturesStep) request(st *Step, r *Run) (verdict, error) {
	key := r.principalKey()
	if s.tracker != nil {
		if left := s.tracker.Throttled(key); left > 0 {
			return verdict{action: Throttle, reason: "penalty", retryAfter: left}, nil
		}
		r.done = append(r.done, st)
	}
	segs, err := r.segments()
	if err != nil {
		return verdict{}, err
	}
	var why reasons
	var ms [4]signatures.Match
	last := -1
	for i, seg := range segs {
		if seg.Part&st.Parts == 0 {
			continue
		}
		if r.expired() {
			return verdict{}, errTimeout
		}
		for _, m := range s.scan.Scan(r.segmentText(i), ms[:0]) {
			why.add(string(m.Category) + ":" + m.Rule)
		}
		last = i
	}
	if s.tracker != nil {
		var prompt []byte
		if last >= 0 {
			prompt = r.segmentText(last)
		}
		var as [4]anomaly.Anomaly
		for _, a := range s.tracker.Request(key, prompt, as[:0]) {
			why.add("anomaly:" + string(a.Kind))
		}
	}
	if why.n == 0 {
		return verdict{}, nil
	}
	v := verdict{action: s.action, reason: why.String()}
	if s.action == Throttle && s.tracker != nil {
		s.tracker.Throttle(key, s.penalty)
		v.retryAfter = s.penalty
	} else if s.action == Throttle {
		v.action = Block
	}
	return v, nil
}

// outcome feeds the exchange's result into the principal's baselines.
func (s *signaturesStep) outcome(r *Run) {
	ex := r.Ex
	blocked := ex.Code == apierr.CodeContentBlocked || ex.Code == apierr.CodeThrottled
	failed := ex.Status >= http.StatusInternalServerError
	s.tracker.Outcome(r.principalKey(), ex.Usage.TotalTokens, blocked, failed)
}
