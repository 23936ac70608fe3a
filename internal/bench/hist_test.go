package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsTileTheLine(t *testing.T) {
	prevHi := uint64(0)
	for i := range numBucket {
		lo, hi := bucketRange(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, the previous ended at %d", i, lo, prevHi)
		}
		if hi < lo {
			t.Fatalf("bucket %d: [%d, %d]", i, lo, hi)
		}
		if lo >= subCount && float64(hi-lo+1)/float64(lo) > 1.0/halfCount+1e-12 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its values", i, lo, hi, halfCount)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		prevHi = hi
	}
	if bucketOf(math.MaxUint64) != numBucket-1 {
		t.Fatal("huge values must land in the last bucket")
	}
}

// exact returns the true q-quantile of sorted as Quantile defines it (the ceil(q·n)-th value).
func exact(sorted []time.Duration, q float64) time.Duration {
	r := int(math.Ceil(q * float64(len(sorted))))
	r = min(max(r, 1), len(sorted))
	return sorted[r-1]
}

func TestQuantilesExactToResolution(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := map[string][]time.Duration{
		"small exact": {1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		"uniform":     nil,
		"log-normal":  nil,
		"bimodal":     nil,
	}
	for i := range 10000 {
		cases["uniform"] = append(cases["uniform"], time.Duration(i+1)*time.Microsecond)
		cases["log-normal"] = append(cases["log-normal"], time.Duration(math.Exp(r.NormFloat64()*1.5+12)))
		d := 20*time.Millisecond + time.Duration(r.IntN(200))*time.Microsecond
		if i%100 == 0 {
			d = 2*time.Second + time.Duration(r.IntN(1000))*time.Millisecond
		}
		cases["bimodal"] = append(cases["bimodal"], d)
	}
	for name, vals := range cases {
		var h Histogram
		for _, v := range vals {
			h.Record(v)
		}
		sorted := slices.Clone(vals)
		slices.Sort(sorted)
		for _, q := range []float64{0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
			want, got := exact(sorted, q), h.Quantile(q)
			if got < want || float64(got-want) > float64(want)/halfCount {
				t.Errorf("%s: q%g = %v, want %v within +%.2f%%", name, q, got, want, 100.0/halfCount)
			}
		}
		if h.Max() != sorted[len(sorted)-1] || h.Min() != sorted[0] || h.Count() != uint64(len(vals)) {
			t.Errorf("%s: min %v max %v count %d", name, h.Min(), h.Max(), h.Count())
		}
		var sum time.Duration
		for _, v := range vals {
			sum += v
		}
		if h.Mean() != sum/time.Duration(len(vals)) {
			t.Errorf("%s: mean %v, want %v", name, h.Mean(), sum/time.Duration(len(vals)))
		}
	}
	// Below 4,096 ns every value has its own bucket: exact.
	var h Histogram
	for v := range 200 {
		h.Record(time.Duration(v))
	}
	if h.Quantile(0.5) != 99 || h.Quantile(0.9) != 179 || h.Quantile(1) != 199 {
		t.Errorf("exact range: p50 %v p90 %v p100 %v", h.Quantile(0.5), h.Quantile(0.9), h.Quantile(1))
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	var a, b, all Histogram
	if a.Quantile(0.5) != 0 || a.Min() != 0 || a.Max() != 0 || a.Mean() != 0 {
		t.Fatal("an empty histogram reports zeros")
	}
	for i := range 1000 {
		d := time.Duration(i) * 37 * time.Microsecond
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	for _, q := range []float64{0.1, 0.5, 0.99, 1} {
		if a.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged q%g = %v, want %v", q, a.Quantile(q), all.Quantile(q))
		}
	}
	if a.Min() != all.Min() || a.Max() != all.Max() || a.Count() != all.Count() {
		t.Error("merged min/max/count differ")
	}
	a.Reset()
	if a.Count() != 0 || a.Quantile(0.5) != 0 {
		t.Error("Reset")
	}
}

func TestHistogramNoAllocs(t *testing.T) {
	var h Histogram
	d := time.Duration(1)
	if n := testing.AllocsPerRun(10000, func() {
		h.Record(d)
		d = d*3 + 7
		if d > time.Hour {
			d = 1
		}
	}); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = h.Quantile(0.99) }); n != 0 {
		t.Errorf("Quantile allocates %v times", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i) * 101)
	}
}
