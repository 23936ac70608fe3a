package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/golden"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

func TestStreamChatGolden(t *testing.T) {
	for _, c := range []struct {
		in, out      string
		includeUsage bool
		usage        exchange.Usage
		output       string
		code         string
	}{
		{"stream_text.sse", "stream_text.chat.golden.sse", true, exchange.Usage{InputTokens: 35, OutputTokens: 15, TotalTokens: 50, CachedInputTokens: 10, Reported: true}, `Hello, \"world\"\n`, ""},
		{"stream_text.sse", "stream_text.chat.nousage.golden.sse", false, exchange.Usage{InputTokens: 35, OutputTokens: 15, TotalTokens: 50, CachedInputTokens: 10, Reported: true}, `Hello, \"world\"\n`, ""},
		{"stream_tool.sse", "stream_tool.chat.golden.sse", true, exchange.Usage{InputTokens: 502, OutputTokens: 89, TotalTokens: 591, CacheCreationTokens: 30, Reported: true}, `Let me check.`, ""},
		{"stream_error.sse", "stream_error.chat.golden.sse", true, exchange.Usage{InputTokens: 9, OutputTokens: 1, TotalTokens: 10, Reported: true}, `Partial`, "upstream_error"},
	} {
		t.Run(c.out, func(t *testing.T) {
			ex := chatEx(nil)
			ex.Stream, ex.IncludeUsage = true, c.includeUsage
			got, err := drain(t, New(Options{}).Stream(ex, nil, bytes.NewReader(fixture(t, c.in))))
			if err != nil {
				t.Fatal(err)
			}
			golden.Compare(t, c.out, got)
			for _, d := range events(got) {
				if d != "[DONE]" && !json.Valid([]byte(d)) {
					t.Errorf("invalid event %s", d)
				}
			}
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

// The tool call arguments a client assembles from the chunks are the tool input.
func TestStreamChatToolArguments(t *testing.T) {
	ex := chatEx(nil)
	got, _ := drain(t, New(Options{}).Stream(ex, nil, bytes.NewReader(fixture(t, "stream_tool.sse"))))
	args := map[int]string{}
	names := map[int]string{}
	for _, d := range events(got) {
		var c struct {
			Choices []struct {
				Delta struct {
					ToolCalls []struct {
						Index    int
						ID       string
						Function struct{ Name, Arguments string }
					} `json:"tool_calls"`
				}
			}
		}
		json.Unmarshal([]byte(d), &c)
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				args[tc.Index] += tc.Function.Arguments
				names[tc.Index] += tc.Function.Name
			}
		}
	}
	if args[0] != `{"city": "San Francisco"}` || names[0] != "get_weather" || args[1] != `{}` || names[1] != "now" || len(args) != 2 {
		t.Errorf("tool calls %v %v", names, args)
	}
}

func TestStreamChatTruncated(t *testing.T) {
	in := fixture(t, "stream_text.sse")
	in = in[:bytes.Index(in, []byte("event: message_delta"))]
	_, err := drain(t, New(Options{}).Stream(chatEx(nil), nil, bytes.NewReader(in)))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a stream cut before message_stop must fail, got %v", err)
	}
}

func TestStreamNativePassThrough(t *testing.T) {
	for _, name := range []string{"stream_text.sse", "stream_tool.sse", "stream_error.sse"} {
		in := fixture(t, name)
		ex := messagesEx("{}")
		ex.Stream = true
		s := New(Options{}).Stream(ex, nil, bytes.NewReader(in))
		var got []byte
		for {
			ev, err := s.Next()
			if err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				break
			}
			got = append(got, ev...)
		}
		s.Close()
		if !bytes.Equal(got, in) {
			t.Errorf("%s: pass-through changed the bytes:\n%s", name, got)
		}
		if !ex.Usage.Reported || ex.Usage.InputTokens == 0 {
			t.Errorf("%s: usage %+v", name, ex.Usage)
		}
	}
	ex := messagesEx("{}")
	drain(t, New(Options{}).Stream(ex, nil, bytes.NewReader(fixture(t, "stream_text.sse"))))
	want := exchange.Usage{InputTokens: 35, OutputTokens: 15, TotalTokens: 50, CachedInputTokens: 10, Reported: true}
	if ex.Usage != want || string(ex.Output) != `Hello, \"world\"\n` {
		t.Errorf("usage %+v output %q", ex.Usage, ex.Output)
	}
}

// message_delta may carry the input side too (cumulative counts); it wins.
func TestStreamUsageInMessageDelta(t *testing.T) {
	in := strings.Replace(string(fixture(t, "stream_text.sse")), `"usage":{"output_tokens":15}`, `"usage":{"input_tokens":30,"cache_read_input_tokens":10,"output_tokens":15}`, 1)
	ex := messagesEx("{}")
	drain(t, New(Options{}).Stream(ex, nil, strings.NewReader(in)))
	if ex.Usage.InputTokens != 40 || ex.Usage.OutputTokens != 15 {
		t.Errorf("usage %+v", ex.Usage)
	}
}

// The streams allocate nothing per event: a long stream costs what a short one does.
func TestStreamAllocations(t *testing.T) {
	anthropicSSE := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"c\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n")
		for range n {
			b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word \"}}\n\n")
		}
		b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
		return b.Bytes()
	}
	openAISSE := func(n int) []byte {
		var b bytes.Buffer
		for range n {
			b.WriteString("data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word \"}}]}\n\n")
		}
		b.WriteString("data: [DONE]\n\n")
		return b.Bytes()
	}
	drainAll := func(s provider.Stream) {
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
		s.Close()
	}
	a := New(Options{})
	for _, c := range []struct {
		name string
		run  func(in []byte)
		in   func(int) []byte
	}{
		{"to chat", func(in []byte) {
			ex := chatEx(nil)
			ex.Output = make([]byte, 0, len(in))
			drainAll(a.Stream(ex, nil, bytes.NewReader(in)))
		}, anthropicSSE},
		{"native", func(in []byte) {
			ex := messagesEx("{}")
			ex.Output = make([]byte, 0, len(in))
			drainAll(a.Stream(ex, nil, bytes.NewReader(in)))
		}, anthropicSSE},
		{"to messages", func(in []byte) { drainAll(MessagesStream(openAIStream(in), "m")) }, openAISSE},
	} {
		short, long := c.in(20), c.in(1000)
		c.run(long) // grow the pooled buffers
		s := testing.AllocsPerRun(20, func() { c.run(short) })
		l := testing.AllocsPerRun(20, func() { c.run(long) })
		if l-s > 5 && !raceEnabled {
			t.Errorf("%s: %v allocations for 20 events, %v for 1000", c.name, s, l)
		}
	}
}

func TestScanEventRejectsGarbage(t *testing.T) {
	if _, ok := scanEvent([]byte(`{"type":`)); ok {
		t.Error("invalid JSON accepted")
	}
	if v := member([]byte(`[1]`), "x"); v != nil {
		t.Error("member of an array")
	}
}
