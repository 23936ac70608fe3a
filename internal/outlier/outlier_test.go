package outlier

import (
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func fail(d *Detector, n int) (ej bool) {
	for range n {
		ej = d.Failure() || ej
	}
	return ej
}

func TestConsecutiveEjectionAndRecovery(t *testing.T) {
	c := newClock()
	d := New(Config{ConsecutiveFailures: 3, BaseEjection: 10 * time.Second, MaxEjection: 35 * time.Second, Now: c.now})
	if fail(d, 2) || d.Ejected() {
		t.Fatal("ejected too early")
	}
	d.Success() // breaks the run
	if fail(d, 2) {
		t.Fatal("a success must reset the consecutive count")
	}
	if !d.Failure() || !d.Ejected() || d.Admit() {
		t.Fatal("third failure in a row must eject")
	}
	c.add(9 * time.Second)
	if !d.Ejected() {
		t.Fatal("ejection ended early")
	}
	c.add(time.Second)
	if d.Ejected() {
		t.Fatal("still ejected after the period")
	}
	// half-open: one probe at a time
	if !d.Admit() || d.Admit() {
		t.Fatal("half-open must admit exactly one probe")
	}
	// the probe fails: out again, for twice as long
	if !d.Failure() {
		t.Fatal("a failed probe must eject again")
	}
	c.add(19 * time.Second)
	if !d.Ejected() {
		t.Fatal("second ejection must last 20s")
	}
	c.add(time.Second)
	if !d.Admit() {
		t.Fatal("no probe after the second ejection")
	}
	d.Release() // the probe was never sent
	if !d.Admit() {
		t.Fatal("a released probe slot must be free again")
	}
	d.Success()
	if d.Ejected() || !d.Admit() || !d.Admit() || d.Status().Ejections != 0 {
		t.Fatalf("a successful probe must restore the backend: %+v", d.Status())
	}
	// growth is capped
	for range 5 {
		fail(d, 3)
		c.add(time.Hour)
		d.Admit()
	}
	d.Failure() // probe fails
	if until := d.Status().Until; until.Sub(c.now()) != 35*time.Second {
		t.Fatalf("ejection not capped: %v", until.Sub(c.now()))
	}
}

func TestFailureRate(t *testing.T) {
	c := newClock()
	d := New(Config{ConsecutiveFailures: 100, FailureRate: 0.5, Window: 10, MinRequests: 10, Now: c.now})
	for i := range 9 {
		if i%2 == 0 {
			d.Failure()
		} else {
			d.Success()
		}
	}
	if d.Ejected() {
		t.Fatal("ejected before MinRequests outcomes")
	}
	if !d.Failure() || !d.Ejected() {
		t.Fatalf("6 failures of 10 must eject: %+v", d.Status())
	}
}

func TestNilDetector(t *testing.T) {
	var d *Detector
	if d.Ejected() || !d.Admit() || d.Failure() {
		t.Fatal("a nil detector never ejects")
	}
	d.Success()
	d.Release()
}

func TestConcurrent(t *testing.T) {
	d := New(Config{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				if d.Admit() {
					if (i+g)%3 == 0 {
						d.Failure()
					} else {
						d.Success()
					}
				}
				d.Ejected()
			}
		})
	}
	wg.Wait()
}

func TestDownByHealthCheck(t *testing.T) {
	d := New(Config{})
	d.SetDown(true)
	if !d.Ejected() || d.Admit() || !d.Status().Down {
		t.Fatal("a Backend down by its health check must be ejected")
	}
	d.Success() // traffic cannot bring it back; only a passing check
	if !d.Ejected() {
		t.Fatal("traffic overrode the health check")
	}
	d.SetDown(false)
	if d.Ejected() || !d.Admit() {
		t.Fatal("a passing check must bring it back")
	}
}
