// Package guardeval measures the built-in guardrails on the public evaluation data in
// ../shared/evaldata: prompt-injection recall on the malicious sets and false-positive rate
// on the benign ones (held-out rows only: the classifier never trained on them), and PII
// recall and precision per entity type. `sluice guard eval` prints its report; its tests
// hold the detectors to their targets.
package guardeval

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sluice-gateway/sluice/internal/payload/evaldata"
	"github.com/sluice-gateway/sluice/internal/payload/injection"
	"github.com/sluice-gateway/sluice/internal/payload/pii"
)

// Targets at the default threshold.
const (
	MinRecall      = 0.90
	MaxFalsePos    = 0.02
	MinPIIAccuracy = 0.95
)

// SetResult is the detector's result on one set's held-out rows.
type SetResult struct {
	Name          string
	Malicious     bool
	Informational bool
	Rows          int // held-out rows evaluated
	Detected      int
}

// Rate is the share of rows detected: recall on a malicious set, false-positive rate on a
// benign one.
func (r SetResult) Rate() float64 {
	if r.Rows == 0 {
		return 0
	}
	return float64(r.Detected) / float64(r.Rows)
}

// InjectionResult is the detector on every set, and the totals the targets apply to.
type InjectionResult struct {
	Threshold float64
	Sets      []SetResult
	// Malicious and Benign add up the counted sets of each class.
	Malicious, Benign SetResult
}

// Injection scores the held-out rows of every set at threshold.
func Injection(dir string, threshold float64) (*InjectionResult, error) {
	sets, err := evaldata.LoadInjection(dir)
	if err != nil {
		return nil, err
	}
	d := injection.New()
	res := &InjectionResult{Threshold: threshold,
		Malicious: SetResult{Name: "all malicious sets", Malicious: true},
		Benign:    SetResult{Name: "all benign sets"}}
	for _, s := range sets {
		r := SetResult{Name: s.Name, Malicious: s.Malicious, Informational: s.Informational}
		for _, t := range s.Texts {
			if !evaldata.Heldout(t) {
				continue
			}
			r.Rows++
			if d.Score([]byte(t)).Score >= threshold {
				r.Detected++
			}
		}
		res.Sets = append(res.Sets, r)
		if r.Informational {
			continue
		}
		total := &res.Benign
		if r.Malicious {
			total = &res.Malicious
		}
		total.Rows += r.Rows
		total.Detected += r.Detected
	}
	return res, nil
}

// EntityResult is PII detection of one entity type.
type EntityResult struct {
	Entity             pii.Entity
	Gold, Found        int // labelled spans, and those detected
	Predicted, Correct int // detections, and those matching a label
	Recall, Precision  float64
}

// presidioTypes maps the data set's entity names to ours.
var presidioTypes = map[string]pii.Entity{
	"EMAIL_ADDRESS": pii.Email,
	"PHONE_NUMBER":  pii.Phone,
	"CREDIT_CARD":   pii.CreditCard,
	"US_SSN":        pii.SSN,
	"IBAN_CODE":     pii.IBAN,
	"IP_ADDRESS":    pii.IPAddress,
}

// PII detects entities in the presidio sentences: a labelled span counts as found when a
// detection of its type overlaps it, a detection as correct when it overlaps a labelled
// span of its type. Secrets are not labelled in the data and are left out.
func PII(dir string) ([]EntityResult, error) {
	sentences, err := evaldata.LoadPII(dir)
	if err != nil {
		return nil, err
	}
	d := pii.New()
	var res [pii.Secret]EntityResult
	type span struct {
		e          pii.Entity
		start, end int
	}
	var ms []pii.Match
	for _, s := range sentences {
		var gold []span
		for _, sp := range s.Spans {
			if e, ok := presidioTypes[sp.EntityType]; ok {
				gold = append(gold, span{e, sp.Start, sp.End})
			}
		}
		ms = d.Find([]byte(s.Text), ms[:0])
		for _, g := range gold {
			res[g.e].Gold++
			for _, m := range ms {
				if m.Entity == g.e && m.Start < g.end && g.start < m.End {
					res[g.e].Found++
					break
				}
			}
		}
		for _, m := range ms {
			if m.Entity >= pii.Secret {
				continue
			}
			res[m.Entity].Predicted++
			for _, g := range gold {
				if m.Entity == g.e && m.Start < g.end && g.start < m.End {
					res[m.Entity].Correct++
					break
				}
			}
		}
	}
	out := make([]EntityResult, 0, len(res))
	for e := range res {
		r := res[e]
		r.Entity = pii.Entity(e)
		r.Recall, r.Precision = 1, 1
		if r.Gold > 0 {
			r.Recall = float64(r.Found) / float64(r.Gold)
		}
		if r.Predicted > 0 {
			r.Precision = float64(r.Correct) / float64(r.Predicted)
		}
		out = append(out, r)
	}
	return out, nil
}

// Report prints both evaluations.
func Report(w io.Writer, dir string, threshold float64) error {
	inj, err := Injection(dir, threshold)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Prompt injection and jailbreaks (threshold %.2f; held-out rows only: FNV-64a of the text mod 5 == 0, never trained on)\n\n", threshold)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "set\trows\tdetected\tmeasure")
	line := func(r SetResult) {
		measure := fmt.Sprintf("false positives %.1f%%", 100*r.Rate())
		switch {
		case r.Informational:
			measure = fmt.Sprintf("flagged %.1f%% (informational: harmful requests, not injections)", 100*r.Rate())
		case r.Malicious:
			measure = fmt.Sprintf("recall %.1f%%", 100*r.Rate())
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", r.Name, r.Rows, r.Detected, measure)
	}
	for _, r := range inj.Sets {
		line(r)
	}
	line(inj.Malicious)
	line(inj.Benign)
	tw.Flush()
	fmt.Fprintf(w, "\ntargets: recall >= %.0f%% (%s), false positives <= %.0f%% (%s)\n\n",
		100*MinRecall, verdict(inj.Malicious.Rate() >= MinRecall), 100*MaxFalsePos, verdict(inj.Benign.Rate() <= MaxFalsePos))

	ents, err := PII(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "PII (%s, every sentence; the detector is rules, not trained)\n\n", evaldata.PIIFile)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "entity\tlabelled\tdetected\trecall\tprecision\ttarget")
	for _, r := range ents {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%.1f%%\t%s\n", r.Entity, r.Gold, r.Predicted, 100*r.Recall, 100*r.Precision,
			verdict(r.Recall >= MinPIIAccuracy && r.Precision >= MinPIIAccuracy))
	}
	tw.Flush()
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return strings.ToUpper("not met")
}
