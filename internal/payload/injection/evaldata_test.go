package injection

import (
	"errors"
	"testing"

	"github.com/sluice-gateway/sluice/internal/payload/evaldata"
)

// TestHeldoutTargets measures the embedded model on the public evaluation
// data's held-out rows (evaldata.Heldout: one row in five, never trained
// on) and asserts the targets: recall >= 90% over all attack sets together
// and false-positive rate <= 2% over all benign sets together, at
// DefaultThreshold. It is skipped where ../shared/evaldata is absent.
func TestHeldoutTargets(t *testing.T) {
	sets, err := evaldata.LoadInjection(evaldata.Dir())
	if errors.Is(err, evaldata.ErrNoData) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	d := New()
	var mal, malHit, ben, benHit int
	for _, s := range sets {
		n, hit := 0, 0
		for _, text := range s.Texts {
			if !evaldata.Heldout(text) {
				continue
			}
			n++
			if d.Score([]byte(text)).Score >= DefaultThreshold {
				hit++
			}
		}
		switch {
		case s.Informational:
			t.Logf("%-40s %4d held out, flagged %5.1f%% (informational)", s.Name, n, pct(hit, n))
		case s.Malicious:
			t.Logf("%-40s %4d held out, recall %5.1f%%", s.Name, n, pct(hit, n))
			mal, malHit = mal+n, malHit+hit
		default:
			t.Logf("%-40s %4d held out, false positives %4.1f%% (%d)", s.Name, n, pct(hit, n), hit)
			ben, benHit = ben+n, benHit+hit
		}
	}
	recall, fpr := pct(malHit, mal), pct(benHit, ben)
	t.Logf("all attacks: %d held out, recall %.1f%%; all benign: %d held out, false positives %.1f%%", mal, recall, ben, fpr)
	if recall < 90 {
		t.Errorf("held-out recall %.1f%%, want >= 90%%", recall)
	}
	if fpr > 2 {
		t.Errorf("held-out false-positive rate %.1f%%, want <= 2%%", fpr)
	}
}

func pct(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
