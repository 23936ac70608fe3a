package picker

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

const model = `model_name="meta-llama/Llama-3.1-8B-Instruct"`

// vllmBody renders a realistic vLLM /metrics page: two engines (data parallel), counters,
// a histogram and process metrics around the gauges the picker reads.
func vllmBody(waiting, running, kv float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 12345.0
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.76e+09
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",%[1]s} %[3]g
vllm:num_requests_running{engine="1",%[1]s} 0.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",%[1]s} %[2]g
vllm:num_requests_waiting{engine="1",%[1]s} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",%[1]s} 0.01
vllm:kv_cache_usage_perc{engine="1",%[1]s} %[4]g
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",%[1]s} 987654.0
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_sum{engine="0",%[1]s} 123.4
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",%[1]s} 2.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",%[1]s} 40.0
vllm:e2e_request_latency_seconds_count{engine="0",%[1]s} 40.0
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",gpu_memory_utilization="0.9",prefix_caching="True"} 1.0
`, model, waiting, running, kv)
	return b.String()
}

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(vllmBody(7, 3, 0.42)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Waiting != 7 || m.Running != 3 || m.KVCache != 0.42 || !m.At.IsZero() {
		t.Errorf("got %+v, want waiting 7 running 3 kv 0.42", m)
	}

	// Older vLLM: gpu_cache_usage_perc, timestamps, odd spacing.
	old := "# TYPE vllm:gpu_cache_usage_perc gauge\n" +
		"vllm:gpu_cache_usage_perc{model_name=\"x\"}   0.75 1712345678000\n" +
		"vllm:num_requests_waiting{model_name=\"x\",} 2\n" +
		"\n" +
		"  vllm:num_requests_running 1\n"
	if m, err = ParseMetrics(strings.NewReader(old)); err != nil {
		t.Fatal(err)
	}
	if m.KVCache != 0.75 || m.Waiting != 2 || m.Running != 1 {
		t.Errorf("old names: got %+v", m)
	}

	// The new name wins over the old one even when lower.
	both := "vllm:gpu_cache_usage_perc 0.9\nvllm:kv_cache_usage_perc 0.2\n"
	if m, _ = ParseMetrics(strings.NewReader(both)); m.KVCache != 0.2 {
		t.Errorf("both names: KVCache %v, want 0.2", m.KVCache)
	}

	// UTF-8 quoted names, escapes in label values, NaN ignored.
	utf := `{"vllm:num_requests_waiting", model_name="a \"b\" \\ c\n"} 4` + "\n" +
		"vllm:num_requests_waiting NaN\n"
	if m, err = ParseMetrics(strings.NewReader(utf)); err != nil || m.Waiting != 4 {
		t.Errorf("quoted name: %+v, %v", m, err)
	}

	if m, err = ParseMetrics(strings.NewReader("")); err != nil || m != (Metrics{}) {
		t.Errorf("empty body: %+v, %v", m, err)
	}

	for _, bad := range []string{
		"<html><body>Not Found</body></html>",
		`{"waiting": 3}`,
		"Not Found",
		"vllm:num_requests_waiting\n",
		"vllm:num_requests_waiting{model_name=\"x} 1\n",
		"vllm:num_requests_waiting{model_name=x} 1\n",
		"vllm:num_requests_waiting 1 2 3\n",
		"vllm:num_requests_waiting 1 notatime\n",
		"# TYPE vllm:num_requests_waiting thing\n",
		"1abc 2\n",
		"\x0a\x1dvllm:num_requests_waiting\x12\x04help\x18\x01",
	} {
		if _, err := ParseMetrics(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseMetrics(%q): no error", bad)
		}
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add(vllmBody(1, 2, 0.5))
	f.Add("vllm:gpu_cache_usage_perc{a=\"b\"} 0.5 123\n")
	f.Add(`{"x", y="\n"} +Inf`)
	f.Add("# HELP\n# TYPE a gauge\n")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMetrics(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, v := range []float64{m.Waiting, m.Running, m.KVCache} {
			if math.IsNaN(v) || v < 0 {
				t.Fatalf("ParseMetrics(%q) = %+v", s, m)
			}
		}
	})
}
