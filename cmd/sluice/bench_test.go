package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// benchRoot is the root command, as main builds it.
func benchRoot(out, errOut *bytes.Buffer) *cobra.Command {
	return newRoot(out, errOut)
}

func TestBenchJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	root := benchRoot(&out, &errOut)
	root.SetArgs([]string{"bench", "--duration", "1s", "--rate", "50", "--json", "--warmup", "200ms", "--upstream-latency", "1ms"})
	if err := root.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var res struct {
		Scenario string
		Gateway  struct {
			OK         int64   `json:"ok"`
			Errors     int64   `json:"errors"`
			Throughput float64 `json:"throughput_rps"`
		}
		Direct *struct {
			OK int64 `json:"ok"`
		}
		Added *struct {
			P50 float64 `json:"p50_us"`
		}
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if res.Scenario != "passthrough" || res.Gateway.OK == 0 || res.Gateway.Errors != 0 || res.Gateway.Throughput <= 0 || res.Direct == nil || res.Direct.OK == 0 || res.Added == nil {
		t.Errorf("result: %s", out.String())
	}
	if !strings.Contains(errOut.String(), "bench: ") {
		t.Errorf("no progress on stderr: %q", errOut.String())
	}
}

func TestBenchPrintConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	root := benchRoot(&out, &errOut)
	root.SetArgs([]string{"bench", "--print-config", "--scenario", "full", "--direct", "http://127.0.0.1:9/v1"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: AccessPolicy", "kind: RateLimitPolicy", "kind: PayloadProcessor", `url: "http://127.0.0.1:9/v1"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q in:\n%s", want, out.String())
		}
	}
}
