package guardeval

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/payload/evaldata"
	"github.com/sluice-gateway/sluice/internal/payload/injection"
)

// TestTargets holds the guardrails to their targets on the evaluation data, when present.
func TestTargets(t *testing.T) {
	dir := evaldata.Dir()
	var report strings.Builder
	err := Report(&report, dir, v1alpha1.DefaultInjectionThreshold)
	if errors.Is(err, evaldata.ErrNoData) {
		t.Skipf("no evaluation data: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + report.String())
	inj, _ := Injection(dir, v1alpha1.DefaultInjectionThreshold)
	if r := inj.Malicious.Rate(); r < MinRecall {
		t.Errorf("injection recall %.3f < %.2f", r, MinRecall)
	}
	if r := inj.Benign.Rate(); r > MaxFalsePos {
		t.Errorf("false-positive rate %.3f > %.2f", r, MaxFalsePos)
	}
	ents, _ := PII(dir)
	for _, e := range ents {
		if e.Recall < MinPIIAccuracy || e.Precision < MinPIIAccuracy {
			t.Errorf("%v: recall %.3f precision %.3f", e.Entity, e.Recall, e.Precision)
		}
	}
}

// TestDefaultThreshold: the resource default is the detector's calibrated threshold.
func TestDefaultThreshold(t *testing.T) {
	if v1alpha1.DefaultInjectionThreshold != injection.DefaultThreshold {
		t.Fatalf("v1alpha1 %v, injection %v", v1alpha1.DefaultInjectionThreshold, injection.DefaultThreshold)
	}
}

func TestNoData(t *testing.T) {
	var b strings.Builder
	if err := Report(&b, t.TempDir()+"/absent", 0.5); !errors.Is(err, evaldata.ErrNoData) {
		t.Fatalf("got %v", err)
	}
}
