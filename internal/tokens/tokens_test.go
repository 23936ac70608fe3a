package tokens

import (
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

func TestCountKnown(t *testing.T) {
	// Expected counts are tiktoken's (checked against the token ids it produces).
	cases := []struct {
		text          string
		cl100k, o200k int
	}{
		{"", 0, 0},
		{"hello world", 2, 2},
		{"Hello, world!", 4, 4},
		{"The quick brown fox jumps over the lazy dog.", 10, 10},
		{"こんにちは世界", 4, 2},
		{"1234567", 3, 3},
		{"  hello  world  ", 5, 5},
		{"🦀🦀", 6, 6},
	}
	for _, c := range cases {
		if got := CountString("gpt-4", c.text); got != c.cl100k {
			t.Errorf("cl100k %q: got %d, want %d", c.text, got, c.cl100k)
		}
		if got := Count("gpt-4o", []byte(c.text)); got != c.o200k {
			t.Errorf("o200k %q: got %d, want %d", c.text, got, c.o200k)
		}
	}
}

func TestCountInvalidUTF8(t *testing.T) {
	// An invalid byte counts like the U+FFFD JSON encoding turns it into.
	if got, want := CountString("gpt-4o", "a\xffb"), CountString("gpt-4o", "a\uFFFDb"); got != want {
		t.Errorf("got %d, want %d", got, want)
	}
}

func TestEncodingFor(t *testing.T) {
	cases := map[string]tokenizer.Encoding{
		"gpt-4o":                           tokenizer.O200kBase,
		"gpt-4o-mini-2024-07-18":           tokenizer.O200kBase,
		"GPT-4o":                           tokenizer.O200kBase,
		"openai/gpt-4o-mini":               tokenizer.O200kBase,
		"ft:gpt-4o-mini:acme::abc123":      tokenizer.O200kBase,
		"gpt-4.1-nano":                     tokenizer.O200kBase,
		"gpt-5":                            tokenizer.O200kBase,
		"gpt-5-mini":                       tokenizer.O200kBase,
		"o1-preview":                       tokenizer.O200kBase,
		"o3-mini":                          tokenizer.O200kBase,
		"o4-mini":                          tokenizer.O200kBase,
		"chatgpt-4o-latest":                tokenizer.O200kBase,
		"gpt-4":                            tokenizer.Cl100kBase,
		"gpt-4-turbo":                      tokenizer.Cl100kBase,
		"gpt-3.5-turbo":                    tokenizer.Cl100kBase,
		"text-embedding-3-small":           tokenizer.Cl100kBase,
		"openai/text-embedding-ada-002":    tokenizer.Cl100kBase,
		"claude-3-5-haiku-latest":          tokenizer.Cl100kBase,
		"anthropic/claude-sonnet-4":        tokenizer.Cl100kBase,
		"":                                 tokenizer.Cl100kBase,
		"/":                                tokenizer.Cl100kBase,
		"meta-llama/Llama-3.1-8B-Instruct": tokenizer.Cl100kBase,
	}
	for model, want := range cases {
		if got := EncodingFor(model); got != want {
			t.Errorf("EncodingFor(%q) = %s, want %s", model, got, want)
		}
	}
}

func TestBoundaries(t *testing.T) {
	for _, text := range []string{"", "hello world", "The quick brown fox jumps over the lazy dog.", "こんにちは世界 🦀", "a\xffb\xfe"} {
		for _, model := range []string{"gpt-4", "gpt-4o"} {
			ends := Boundaries(model, text)
			if len(ends) != CountString(model, text) {
				t.Errorf("%s %q: %d boundaries, %d tokens", model, text, len(ends), CountString(model, text))
			}
			prev := 0
			for _, e := range ends {
				if e < prev || e > len(text) {
					t.Fatalf("%s %q: bad offsets %v", model, text, ends)
				}
				prev = e
			}
			if len(ends) > 0 && ends[len(ends)-1] != len(text) {
				t.Errorf("%s %q: last offset %d, want %d", model, text, ends[len(ends)-1], len(text))
			}
			if !utf8.ValidString(text) {
				continue
			}
			// Every prefix ending on a boundary has as many tokens as the boundary's index.
			for k, e := range ends {
				if utf8.ValidString(text[:e]) {
					if got := CountString(model, text[:e]); got != k+1 {
						t.Errorf("%s %q: prefix %q has %d tokens, want %d", model, text, text[:e], got, k+1)
					}
				}
			}
		}
	}
}

func TestPromptTokensChat(t *testing.T) {
	const m = "gpt-4o"
	c := func(s string) int { return CountString(m, s) }
	cases := []struct {
		name, body string
		want       int
	}{
		{"empty", `{"messages":[]}`, 3},
		{"string", `{"model":"x","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"hello world"}]}`,
			3 + (3 + c("system") + c("You are a helpful assistant.")) + (3 + c("user") + 2)},
		{"name", `{"messages":[{"role":"user","name":"bob","content":"hello world"}]}`,
			3 + 3 + c("user") + 2 + 1 + c("bob")},
		{"parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"hello world"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"text","text":"The quick brown fox jumps over the lazy dog."}]}]}`,
			3 + 3 + c("user") + 2 + 10},
		{"tool calls", `{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"sunny"}]}`,
			3 + (3 + c("assistant") + c("get_weather") + c(`{"city":"Paris"}`)) + (3 + c("tool") + c("sunny"))},
		{"function call", `{"messages":[{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]}`,
			3 + 3 + c("assistant") + c("f") + c("{}")},
	}
	for _, tc := range cases {
		got, err := PromptTokens("chat", m, []byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
	// A literal anchor, independent of the helper above: 3 + (3 + 1 + 2) = 9.
	if got, _ := PromptTokens("chat", "gpt-4o-mini", []byte(`{"messages":[{"role":"user","content":"hello world"}]}`)); got != 9 {
		t.Errorf("anchor: got %d, want 9", got)
	}
}

func TestPromptTokensInputs(t *testing.T) {
	const m = "text-embedding-3-small"
	cases := []struct {
		endpoint, body string
		want           int
	}{
		{"completions", `{"prompt":"hello world"}`, 2},
		{"completions", `{"prompt":["hello world","The quick brown fox jumps over the lazy dog."]}`, 12},
		{"completions", `{"prompt":[1,2,3]}`, 3},
		{"completions", `{"prompt":[[1,2],[3,4,5]]}`, 5},
		{"completions", `{"prompt":[]}`, 0},
		{"embeddings", `{"input":"hello world"}`, 2},
		{"embeddings", `{"input":["hello world","hello world"]}`, 4},
		{"embeddings", `{"input":[15339,1917]}`, 2},
		{"embeddings", `{"input":[[15339],[1917,1917]]}`, 3},
	}
	for _, tc := range cases {
		got, err := PromptTokens(tc.endpoint, m, []byte(tc.body))
		if err != nil {
			t.Errorf("%s %s: %v", tc.endpoint, tc.body, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s %s: got %d, want %d", tc.endpoint, tc.body, got, tc.want)
		}
	}
}

func TestPromptTokensErrors(t *testing.T) {
	cases := []struct{ endpoint, body string }{
		{"chat", ``},
		{"chat", `not json`},
		{"chat", `[]`},
		{"chat", `{}`},
		{"chat", `{"messages":null}`},
		{"chat", `{"messages":{}}`},
		{"chat", `{"messages":["hi"]}`},
		{"chat", `{"messages":[{"role":"user","content":42}]}`},
		{"chat", `{"messages":[{"role":"user","content":{"text":"x"}}]}`},
		{"chat", `{"messages":[{"role":"user","content":["x"]}]}`},
		{"chat", `{"messages":[{"role":"user","content":[{"type":"text"}]}]}`},
		{"chat", `{"messages":[{"role":1,"content":"x"}]}`},
		{"completions", `{}`},
		{"completions", `{"prompt":null}`},
		{"completions", `{"prompt":42}`},
		{"completions", `{"prompt":["a",1]}`},
		{"completions", `{"prompt":[1,"a"]}`},
		{"completions", `{"prompt":[1.5]}`},
		{"embeddings", `{"input":{"a":1}}`},
		{"embeddings", `{"input":[[1],"a"]}`},
		{"embeddings", `{"input":true}`},
		{"responses", `{}`},
	}
	for _, tc := range cases {
		if n, err := PromptTokens(tc.endpoint, "gpt-4o", []byte(tc.body)); err == nil {
			t.Errorf("%s %s: got %d, want an error", tc.endpoint, tc.body, n)
		}
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	// Run with -race: the lazy codecs must be built once and shared safely.
	var wg sync.WaitGroup
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 20)
	want := map[string]int{"gpt-4": CountString("gpt-4", text), "gpt-4o": CountString("gpt-4o", text)}
	for i := range 16 {
		wg.Go(func() {
			m := "gpt-4"
			if i%2 == 1 {
				m = "gpt-4o"
			}
			if got := CountString(m, text); got != want[m] {
				t.Errorf("%s: got %d, want %d", m, got, want[m])
			}
		})
	}
	wg.Wait()
}

func BenchmarkCount(b *testing.B) {
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 25)) // ~250 tokens
	for _, model := range []string{"gpt-4", "gpt-4o"} {
		b.Run(string(EncodingFor(model)), func(b *testing.B) {
			Count(model, text) // load the codec outside the timing
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				Count(model, text)
			}
		})
	}
}

func TestSegmentsMatchWholeText(t *testing.T) {
	// Cutting long whitespace runs must not change a single token: compare against the
	// codec on the whole text, for inputs dense in the whitespace the cuts happen in.
	alphabet := []string{" ", " ", "\n", "\n", "\r", "\t", "\u00a0", "\u3000", "a", "Ab", "1", "!", "/", "'s", "世", "\xff"}
	seed := uint32(1)
	next := func() int { seed = seed*1664525 + 1013904223; return int(seed >> 8) }
	for _, model := range []string{"gpt-4", "gpt-4o"} {
		c := codecFor(EncodingFor(model))
		for range 200 {
			var sb strings.Builder
			for sb.Len() < 300+next()%3000 {
				if next()%4 == 0 {
					sb.WriteString(alphabet[next()%len(alphabet)])
				} else {
					sb.WriteString(alphabet[next()%7])
				}
			}
			text := sb.String()
			want, _, _ := c.Encode(text)
			if got := CountString(model, text); got != len(want) {
				t.Fatalf("%s %q: got %d, whole text %d", model, text, got, len(want))
			}
			if utf8.ValidString(text) {
				_, toks, _ := c.Encode(text)
				ends, off := Boundaries(model, text), 0
				for i, tok := range toks {
					off += len(tok)
					if ends[i] != off {
						t.Fatalf("%s %q: boundary %d is %d, want %d", model, text, i, ends[i], off)
					}
				}
			}
		}
	}
}

func TestLongWhitespaceIsLinear(t *testing.T) {
	// Without segmenting, 512 KiB of this takes minutes; with it, well under a second.
	text := strings.Repeat("\n \n\t", 128<<10)
	done := make(chan int, 1)
	go func() { done <- CountString("gpt-4o", text) }()
	select {
	case n := <-done:
		if n == 0 {
			t.Fatal("no tokens")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("counting 512 KiB of whitespace took more than 30s")
	}
}

func BenchmarkCountWhitespace(b *testing.B) {
	text := []byte(strings.Repeat("\n \n\t", 4<<10)) // 16 KiB, quadratic without segments
	Count("gpt-4o", text)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		Count("gpt-4o", text)
	}
}

func TestCountAllocatesNoMoreThanCodec(t *testing.T) {
	text := []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. \n", 12))
	c := codecFor(EncodingFor("gpt-4o"))
	s := string(text)
	direct := testing.AllocsPerRun(50, func() { _, _ = c.Count(s) })
	ours := testing.AllocsPerRun(50, func() { Count("gpt-4o", text) })
	// Under -race, sync.Pool (used by the codec's regexp) drops items at random, so
	// the counts wobble by a few; without it they are equal.
	if ours > direct*1.03 {
		t.Errorf("Count allocates %.0f times, the codec alone %.0f", ours, direct)
	}
}
