package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A target that stalls for 400 ms must show up in the open-loop latencies: every request
// due during the stall is charged the wait from its scheduled time, and none is skipped.
// A closed-loop measurement of the same stall would record one slow request.
func TestOpenLoopCountsStalls(t *testing.T) {
	const (
		rate       = 200.0
		d          = time.Second
		stallFrom  = 200 * time.Millisecond
		stallUntil = 600 * time.Millisecond
	)
	var h Histogram
	var sent atomic.Int64
	start := time.Now()
	do := func(_ context.Context, _ *scratch, at time.Time) {
		now := time.Since(start)
		if now >= stallFrom && now < stallUntil {
			time.Sleep(stallUntil - now) // the target answers nothing during the stall
		} else {
			time.Sleep(time.Millisecond)
		}
		h.Record(time.Since(at))
	}
	scs := []*scratch{newScratch(), newScratch(), newScratch(), newScratch()}
	wall := openLoop(t.Context(), do, &sent, rate, len(scs), d, scs)
	if sent.Load() != int64(rate*d.Seconds()) || h.Count() != uint64(sent.Load()) {
		t.Fatalf("sent %d, recorded %d; want %d on the timetable", sent.Load(), h.Count(), int(rate*d.Seconds()))
	}
	if wall < d || wall > d+300*time.Millisecond {
		t.Errorf("the run took %v", wall)
	}
	// Requests due in [200ms, 500ms) (30%) waited more than 100 ms; the slowest ~400 ms.
	if p75 := h.Quantile(0.75); p75 < 90*time.Millisecond {
		t.Errorf("p75 = %v: the stall is hidden (coordinated omission)", p75)
	}
	if p50 := h.Quantile(0.5); p50 > 300*time.Millisecond {
		t.Errorf("p50 = %v: more than the stalled requests were charged", p50)
	}
	if mx := h.Max(); mx < 350*time.Millisecond || mx > 700*time.Millisecond {
		t.Errorf("max = %v, want about 400ms", mx)
	}
}

func TestMockAnswers(t *testing.T) {
	m, err := StartMock("127.0.0.1:0", MockConfig{Chunks: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	resp, err := http.Post(m.URL()+"/chat/completions", "application/json", bytes.NewReader(Request("my-model", 1024, false)))
	if err != nil {
		t.Fatal(err)
	}
	var whole struct {
		Model   string
		Choices []struct{ Message struct{ Content string } }
		Usage   struct{ PromptTokens, CompletionTokens, TotalTokens int } `json:"usage"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &whole); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	// encoding/json matches prompt_tokens to PromptTokens only with tags; check the raw text.
	if whole.Model != "my-model" || whole.Choices[0].Message.Content != answerText || !bytes.Contains(raw, []byte(`"prompt_tokens":2`)) || !bytes.Contains(raw, []byte(`"completion_tokens":`)) {
		t.Errorf("whole answer: %s", raw)
	}

	body := bytes.Replace(Request("my-model", 300, true), []byte(`"stream":true`), []byte(`"stream":true,"stream_options":{"include_usage":true}`), 1)
	resp, err = http.Post(m.URL()+"/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var text strings.Builder
	events, usage, done := 0, false, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		events++
		var ev struct {
			Choices []struct{ Delta struct{ Content string } }
			Usage   *struct {
				Total int `json:"total_tokens"`
			}
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		for _, c := range ev.Choices {
			text.WriteString(c.Delta.Content)
		}
		if ev.Usage != nil && ev.Usage.Total > 0 {
			usage = true
		}
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" || events != 1+5+1+1 || !usage || !done || text.String() != answerText {
		t.Errorf("stream: %d events, usage %v, done %v, text %q", events, usage, done, text.String())
	}
}

func TestRequestSize(t *testing.T) {
	for _, n := range []int{256, 1024, 8192} {
		b := Request(DefaultModel, n, false)
		if len(b) < n*9/10 || len(b) > n*11/10+200 || !json.Valid(b) {
			t.Errorf("Request(%d): %d bytes", n, len(b))
		}
	}
}
