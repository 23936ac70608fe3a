package vertex

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

func drain(s provider.Stream) (string, error) {
	defer s.Close()
	var out strings.Builder
	for {
		ev, err := s.Next()
		if err == io.EOF {
			return out.String(), nil
		}
		if err != nil {
			return out.String(), err
		}
		out.Write(ev)
	}
}

func TestStreamGolden(t *testing.T) {
	for _, c := range []struct {
		name         string
		includeUsage bool
		usage        exchange.Usage
		output       string
		code         string
	}{
		{"text", true, exchange.Usage{InputTokens: 10, OutputTokens: 25, TotalTokens: 35, CachedInputTokens: 8, ReasoningTokens: 20, Reported: true}, `Hello, \"world\"\n<3!`, ""},
		{"tools", false, exchange.Usage{InputTokens: 30, OutputTokens: 13, TotalTokens: 43, ReasoningTokens: 4, Reported: true}, `Checking.`, ""},
		{"error", true, exchange.Usage{}, `Par`, "rate_limit_exceeded"},
		{"max_tokens", false, exchange.Usage{InputTokens: 3, OutputTokens: 2, TotalTokens: 5, Reported: true}, `A long`, ""},
		{"blocked", true, exchange.Usage{InputTokens: 6, TotalTokens: 6, Reported: true}, ``, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := chatEx(nil, true)
			ex.IncludeUsage = c.includeUsage
			got, err := drain(testAdapter.Stream(ex, nil, bytes.NewReader(readFile(t, "stream/"+c.name+".sse"))))
			if err != nil {
				t.Fatal(err)
			}
			if want := string(readFile(t, "stream/"+c.name+".golden")); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			checkEvents(t, got)
			if ex.Usage != c.usage {
				t.Errorf("usage %+v, want %+v", ex.Usage, c.usage)
			}
			if string(ex.Output) != c.output {
				t.Errorf("output %q, want %q", ex.Output, c.output)
			}
			if ex.Code != c.code {
				t.Errorf("code %q, want %q", ex.Code, c.code)
			}
		})
	}
}

// TestStreamCutOff: an upstream stream that ends without a finish reason is an error, so
// the gateway does not end the client's stream as if it were complete.
func TestStreamCutOff(t *testing.T) {
	in := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\n"
	got, err := drain(testAdapter.Stream(chatEx(nil, true), nil, strings.NewReader(in)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(got, "[DONE]") || strings.Contains(got, "finish_reason\":\"") {
		t.Errorf("cut-off stream looks complete: %s", got)
	}
}

func TestStreamMalformed(t *testing.T) {
	in := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\ndata: {\"candidates\":[\n\n"
	if _, err := drain(testAdapter.Stream(chatEx(nil, true), nil, strings.NewReader(in))); err == nil || err == io.EOF {
		t.Fatalf("err %v", err)
	}
}

// TestStreamConsistentID: every chunk carries the same id and created, even when only some
// upstream events carry a responseId.
func TestStreamConsistentID(t *testing.T) {
	in := "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n" +
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":\"STOP\"}],\"responseId\":\"late\"}\n\n"
	got, err := drain(testAdapter.Stream(chatEx(nil, true), nil, strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, ev := range events(got) {
		var c struct{ ID string }
		if ev != "[DONE]" {
			json.Unmarshal([]byte(ev), &c)
			ids[c.ID] = true
		}
	}
	if len(ids) != 1 || !ids["chatcmpl-fixedrandomid"] {
		t.Errorf("ids %v", ids)
	}
}

// TestStreamPoolReuse: a stream from the pool carries nothing from the previous one.
func TestStreamPoolReuse(t *testing.T) {
	for range 3 {
		ex := chatEx(nil, true)
		got, err := drain(testAdapter.Stream(ex, nil, bytes.NewReader(readFile(t, "stream/max_tokens.sse"))))
		if err != nil {
			t.Fatal(err)
		}
		if want := string(readFile(t, "stream/max_tokens.golden")); got != want {
			t.Fatalf("got\n%s\nwant\n%s", got, want)
		}
	}
}

// loopReader repeats one event forever.
type loopReader struct {
	ev  []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.ev[r.off:])
		n += c
		r.off = (r.off + c) % len(r.ev)
	}
	return n, nil
}

func TestStreamNoAllocPerChunk(t *testing.T) {
	ev := []byte(`data: {"candidates":[{"content":{"role":"model","parts":[{"text":"some words here"}]}}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":4,"totalTokenCount":14},"responseId":"r"}` + "\n\n")
	ex := chatEx(nil, true)
	s := testAdapter.Stream(ex, nil, &loopReader{ev: ev})
	defer s.Close()
	for range 100 { // warm up buffers
		s.Next()
		ex.Output = ex.Output[:0]
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
		ex.Output = ex.Output[:0]
	})
	if allocs != 0 {
		t.Errorf("%v allocations per chunk", allocs)
	}
}

func events(stream string) []string {
	var out []string
	for _, ev := range strings.Split(stream, "\n\n") {
		if ev == "" {
			continue
		}
		out = append(out, strings.TrimPrefix(ev, "data: "))
	}
	return out
}

// checkEvents asserts the stream is well-formed: data events only, each one JSON or
// [DONE] (last).
func checkEvents(t testing.TB, stream string) {
	t.Helper()
	if stream != "" && !strings.HasSuffix(stream, "\n\n") {
		t.Fatalf("stream does not end an event: %q", stream)
	}
	evs := strings.Split(strings.TrimSuffix(stream, "\n\n"), "\n\n")
	for i, ev := range evs {
		if stream == "" {
			break
		}
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.ContainsAny(data, "\r\n") {
			t.Fatalf("event %d is not one data line: %q", i, ev)
		}
		if data == "[DONE]" {
			if i != len(evs)-1 {
				t.Fatalf("[DONE] before the end")
			}
			continue
		}
		if !json.Valid([]byte(data)) {
			t.Fatalf("event %d is not JSON: %q", i, data)
		}
	}
}

func FuzzStream(f *testing.F) {
	for _, name := range []string{"text", "tools", "error", "max_tokens", "blocked"} {
		b, err := readFileF("stream/" + name + ".sse")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
	}
	f.Add([]byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\u0000\\\"\"},{\"functionCall\":{\"name\":\"f\",\"args\":[\"</x>\\n\"]}}]},\"finishReason\":\"SPII\"}],\"responseId\":\"a\\\"b\"}\n\n"), false)
	f.Add([]byte("data: {\"error\":{\"code\":\"x\",\"status\":7}}\n\n"), true)
	f.Add([]byte("data: {\"candidates\":{},\"usageMetadata\":[],\"promptFeedback\":{\"blockReason\":1}}\r\n\r\ndata: [DONE]\n\n"), true)
	f.Fuzz(func(t *testing.T, in []byte, includeUsage bool) {
		ex := chatEx(nil, true)
		ex.IncludeUsage = includeUsage
		ex.UpstreamModel = "gemini\"model"
		got, _ := drain(testAdapter.Stream(ex, nil, bytes.NewReader(in)))
		checkEvents(t, got)
		if !json.Valid([]byte(`"` + string(ex.Output) + `"`)) {
			t.Fatalf("Output is not JSON string content: %q", ex.Output)
		}
	})
}

func readFileF(name string) ([]byte, error) {
	return os.ReadFile("testdata/" + name)
}
