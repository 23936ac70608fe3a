package pii

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

const presidioPath = "../../../../shared/evaldata/presidio/generated_large.json"

type presidioSample struct {
	FullText string `json:"full_text"`
	Spans    []struct {
		EntityType string `json:"entity_type"`
		Start      int    `json:"start_position"`
		End        int    `json:"end_position"`
	} `json:"spans"`
}

var presidioTypes = map[string]Entity{
	"EMAIL_ADDRESS": Email,
	"PHONE_NUMBER":  Phone,
	"CREDIT_CARD":   CreditCard,
	"US_SSN":        SSN,
	"IBAN_CODE":     IBAN,
	"IP_ADDRESS":    IPAddress,
}

// runeToByte converts code-point offsets (as used by the data set) to
// byte offsets in s.
func runeToByte(s string) []int {
	offs := make([]int, 0, len(s)+1)
	for i := range s {
		offs = append(offs, i)
	}
	return append(offs, len(s))
}

func TestPresidio(t *testing.T) {
	data, err := os.ReadFile(filepath.FromSlash(presidioPath))
	if err != nil {
		t.Skipf("presidio evaluation data not available (%s): %v", presidioPath, err)
	}
	var samples []presidioSample
	if err := json.Unmarshal(data, &samples); err != nil {
		t.Fatal(err)
	}
	type span struct {
		e          Entity
		start, end int
	}
	var gold, found, pred, correct [numEntities]int
	d := New()
	verbose := os.Getenv("PII_VERBOSE") != ""
	secrets := 0
	for _, s := range samples {
		if !utf8.ValidString(s.FullText) {
			continue
		}
		offs := runeToByte(s.FullText)
		var spans []span
		for _, sp := range s.Spans {
			e, ok := presidioTypes[sp.EntityType]
			if !ok || sp.End >= len(offs) {
				continue
			}
			spans = append(spans, span{e, offs[sp.Start], offs[sp.End]})
		}
		text := []byte(s.FullText)
		ms := d.Find(text, nil)
		for _, g := range spans {
			gold[g.e]++
			hit := false
			for _, m := range ms {
				if m.Entity == g.e && m.Start < g.end && g.start < m.End {
					hit = true
					break
				}
			}
			if hit {
				found[g.e]++
			} else if verbose {
				t.Logf("MISS %v %q in %q", g.e, text[g.start:g.end], text[max(0, g.start-40):min(len(text), g.end+20)])
			}
		}
		for _, m := range ms {
			if m.Entity == Secret {
				secrets++
				if verbose {
					t.Logf("SECRET %q", text[m.Start:m.End])
				}
				continue
			}
			pred[m.Entity]++
			ok := false
			for _, g := range spans {
				if m.Entity == g.e && m.Start < g.end && g.start < m.End {
					ok = true
					break
				}
			}
			if ok {
				correct[m.Entity]++
			} else if verbose {
				t.Logf("FP %v %q in %q", m.Entity, text[m.Start:m.End], text[max(0, m.Start-40):min(len(text), m.End+20)])
			}
		}
	}
	t.Logf("Secret matches (data set has no secrets): %d", secrets)
	for e := Entity(0); e < Secret; e++ {
		recall, precision := 1.0, 1.0
		if gold[e] > 0 {
			recall = float64(found[e]) / float64(gold[e])
		}
		if pred[e] > 0 {
			precision = float64(correct[e]) / float64(pred[e])
		}
		t.Logf("%-10s gold=%3d pred=%3d recall=%.3f precision=%.3f", e, gold[e], pred[e], recall, precision)
		if recall < 0.95 || precision < 0.95 {
			t.Errorf("%v: recall %.3f precision %.3f, want >= 0.95", e, recall, precision)
		}
	}
}
