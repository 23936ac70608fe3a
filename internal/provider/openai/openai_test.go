package openai

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
)

func exFor(body string, stream, includeUsage bool) *exchange.Exchange {
	ex := &exchange.Exchange{Endpoint: exchange.EndpointChat, Body: []byte(body), Stream: stream, IncludeUsage: includeUsage}
	jsonscan.Object(ex.Body, func(m jsonscan.Member) bool {
		if string(m.Key(ex.Body)) == "model" {
			ex.Model, _ = jsonscan.String(m.Value(ex.Body))
		}
		return true
	})
	ex.BodyMutated = true // make UpstreamBody find the spans itself
	return ex
}

func TestUpstreamBody(t *testing.T) {
	for _, c := range []struct {
		name, in    string
		stream, inc bool
		model, want string
	}{
		{"unchanged", `{"model":"a","messages":[]}`, false, false, "a", `{"model":"a","messages":[]}`},
		{"rename", `{"model":"a","messages":[]}`, false, false, "b", `{"model":"b","messages":[]}`},
		{"inject", `{"model":"a","stream":true}`, true, false, "a", `{"model":"a","stream":true,"stream_options":{"include_usage":true}}`},
		{"inject and rename", `{"stream":true,"model":"a"}`, true, false, "b", `{"stream":true,"model":"b","stream_options":{"include_usage":true}}`},
		{"false to true", `{"model":"a","stream":true,"stream_options":{"include_usage":false}}`, true, false, "a", `{"model":"a","stream":true,"stream_options":{"include_usage":true}}`},
		{"empty options", `{"model":"a","stream":true,"stream_options":{}}`, true, false, "a", `{"model":"a","stream":true,"stream_options":{"include_usage":true}}`},
		{"other options kept", `{"model":"a","stream":true,"stream_options":{"x":1}}`, true, false, "a", `{"model":"a","stream":true,"stream_options":{"include_usage":true,"x":1}}`},
		{"null options", `{"model":"a","stream":true,"stream_options":null}`, true, false, "a", `{"model":"a","stream":true,"stream_options":{"include_usage":true}}`},
		{"client asked", `{"model":"a","stream":true,"stream_options":{"include_usage":true}}`, true, true, "a", `{"model":"a","stream":true,"stream_options":{"include_usage":true}}`},
		{"escaping", `{"model":"a"}`, false, false, `x"y`, `{"model":"x\"y"}`},
	} {
		ex := exFor(c.in, c.stream, c.inc)
		out, err := UpstreamBody(ex, c.model)
		if err != nil || string(out) != c.want {
			t.Errorf("%s: got %s (%v), want %s", c.name, out, err, c.want)
		}
	}
}

const usageChunk = `{"id":"x","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}`

func runStream(t *testing.T, ex *exchange.Exchange, in string) string {
	t.Helper()
	s := Adapter{}.Stream(ex, nil, strings.NewReader(in))
	defer s.Close()
	var out strings.Builder
	for {
		ev, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		out.Write(ev)
	}
}

func TestStreamStripsInjectedUsage(t *testing.T) {
	in := "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n" +
		"data: {\"usage\":null,\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n" +
		"data: " + usageChunk + "\n\n" +
		"data: [DONE]\n\n"
	ex := exFor(`{"model":"m","stream":true}`, true, false)
	got := runStream(t, ex, in)
	want := "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n" +
		"data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\" there\"}}]}\n\n" +
		"data: [DONE]\n\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	u := ex.Usage
	if !u.Reported || u.InputTokens != 9 || u.OutputTokens != 4 || u.TotalTokens != 13 || u.CachedInputTokens != 2 || u.ReasoningTokens != 1 {
		t.Fatalf("usage %+v", u)
	}
	if string(ex.Output) != "Hi there" {
		t.Fatalf("output %q", ex.Output)
	}

	// A client that asked for usage gets the stream untouched.
	ex = exFor(`{"model":"m","stream":true}`, true, true)
	if got := runStream(t, ex, in); got != in {
		t.Fatalf("changed a stream the client asked usage for:\n%s", got)
	}
}

func TestStreamNoAllocsPerChunk(t *testing.T) {
	chunk := "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"token\"}}],\"usage\":null}\n\n"
	in := strings.Repeat(chunk, 200)
	ex := exFor(`{"model":"m","stream":true}`, true, false)
	ex.Output = make([]byte, 0, 8192)
	r := strings.NewReader(in)
	allocs := testing.AllocsPerRun(20, func() {
		r.Reset(in)
		ex.Output = ex.Output[:0]
		s := Adapter{}.Stream(ex, nil, r)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
		s.Close()
	})
	// The whole 200-chunk stream, not per chunk: a pooled stream costs nothing.
	if allocs > 2 {
		t.Fatalf("%v allocations for a 200-chunk stream", allocs)
	}
}

func TestComplete(t *testing.T) {
	ex := exFor(`{"model":"m"}`, false, false)
	body := []byte(`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"Hello \"you\""}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
	ans, err := Adapter{}.Complete(ex, 200, nil, body)
	if err != nil || string(ans.Body) != string(body) || ans.Status != 200 {
		t.Fatalf("body changed: %s %v", ans.Body, err)
	}
	if ex.Usage.InputTokens != 3 || ex.Usage.OutputTokens != 2 || string(ex.Output) != `Hello \"you\"` {
		t.Fatalf("usage %+v output %q", ex.Usage, ex.Output)
	}
}

// FuzzStream: no input stream panics the decoder, and with usage stripping on, every data
// event that was a JSON object stays one.
func FuzzStream(f *testing.F) {
	f.Add("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n")
	f.Add("data: {\"usage\":null,\"a\":1}\n\ndata: {\"a\":1,\"usage\":null}\n\ndata: {\"usage\":null}\n\n")
	f.Add(": comment\n\nevent: x\ndata: {}\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		ex := exFor(`{"model":"m","stream":true}`, true, false)
		s := Adapter{}.Stream(ex, nil, strings.NewReader(in))
		defer s.Close()
		for {
			ev, err := s.Next()
			if err != nil {
				return
			}
			// An event is either passed through as received, or rewritten; a rewritten one
			// must still be valid JSON.
			if !strings.Contains(in, string(ev)) {
				d := strings.TrimSuffix(strings.TrimPrefix(string(ev), "data: "), "\n\n")
				if !json.Valid([]byte(d)) {
					t.Fatalf("rewrote an event into invalid JSON: %q", ev)
				}
			}
		}
	})
}
