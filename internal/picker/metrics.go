package picker

import (
	"fmt"
	"io"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
)

// Metrics is what the picker uses of a vLLM server's /metrics.
type Metrics struct {
	Waiting, Running float64 // vllm:num_requests_waiting / vllm:num_requests_running, summed over series
	// KVCache is vllm:kv_cache_usage_perc (0..1), or vllm:gpu_cache_usage_perc on older
	// vLLM; the maximum over series (one per model or engine).
	KVCache float64
	At      time.Time // when it was scraped; zero from ParseMetrics
}

// ParseMetrics reads the Prometheus text exposition format (with prometheus/common's
// parser) and extracts the vLLM gauges. Missing gauges are 0; a body that is not the
// text format is an error.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Metrics{}, fmt.Errorf("metrics: %w", err)
	}
	var m Metrics
	m.Waiting = sum(fams["vllm:num_requests_waiting"])
	m.Running = sum(fams["vllm:num_requests_running"])
	if f, ok := fams["vllm:kv_cache_usage_perc"]; ok {
		m.KVCache = maxOf(f)
	} else {
		m.KVCache = maxOf(fams["vllm:gpu_cache_usage_perc"])
	}
	return m, nil
}

// value reads a gauge, counter or untyped sample; NaN, infinities and negatives are 0.
func value(s *dto.Metric) float64 {
	var v float64
	switch {
	case s.Gauge != nil:
		v = s.Gauge.GetValue()
	case s.Untyped != nil:
		v = s.Untyped.GetValue()
	case s.Counter != nil:
		v = s.Counter.GetValue()
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

func sum(f *dto.MetricFamily) float64 {
	var t float64
	for _, s := range f.GetMetric() {
		t += value(s)
	}
	return t
}

func maxOf(f *dto.MetricFamily) float64 {
	var t float64
	for _, s := range f.GetMetric() {
		t = max(t, value(s))
	}
	return t
}
