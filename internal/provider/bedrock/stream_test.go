package bedrock

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-gateway/sluice/internal/golden"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
)

// fixtureEvent is one event-stream message of a testdata/stream fixture: an event, an
// exception, or an error message.
type fixtureEvent struct {
	Event     string `json:"event"`
	Exception string `json:"exception"`
	Error     *struct{ Code, Message string }
	Payload   json.RawMessage `json:"payload"`
}

func str(s string) eventstream.Value { return eventstream.StringValue(s) }

// encodeEvents frames events as ConverseStream does.
func encodeEvents(t testing.TB, events []fixtureEvent) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, e := range events {
		var m eventstream.Message
		switch {
		case e.Exception != "":
			m.Headers = eventstream.Headers{{Name: ":message-type", Value: str("exception")}, {Name: ":exception-type", Value: str(e.Exception)}, {Name: ":content-type", Value: str("application/json")}}
		case e.Error != nil:
			m.Headers = eventstream.Headers{{Name: ":message-type", Value: str("error")}, {Name: ":error-code", Value: str(e.Error.Code)}, {Name: ":error-message", Value: str(e.Error.Message)}}
		default:
			m.Headers = eventstream.Headers{{Name: ":event-type", Value: str(e.Event)}, {Name: ":content-type", Value: str("application/json")}, {Name: ":message-type", Value: str("event")}}
		}
		m.Payload = e.Payload
		if err := enc.Encode(&buf, m); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func loadEvents(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/stream/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var events []fixtureEvent
	if err := json.Unmarshal(b, &events); err != nil {
		t.Fatal(err)
	}
	return encodeEvents(t, events)
}

// collect runs a stream to its end, checking that each Next is exactly one SSE event whose
// data is JSON or [DONE]. It returns the events and the error that ended the stream
// (nil for io.EOF).
func collect(t testing.TB, ex *exchange.Exchange, header http.Header, body io.Reader) ([]string, error) {
	t.Helper()
	s := New().Stream(ex, header, body)
	defer s.Close()
	var events []string
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("stream does not end")
		}
		ev, err := s.Next()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return events, err
		}
		if err := checkEvent(ev); err != nil {
			t.Fatalf("event %q: %v", ev, err)
		}
		events = append(events, string(ev))
	}
}

func checkEvent(ev []byte) error {
	data, ok := bytes.CutPrefix(ev, []byte("data: "))
	if !ok || !bytes.HasSuffix(data, []byte("\n\n")) {
		return errors.New("not one SSE data event")
	}
	data = data[:len(data)-2]
	if bytes.Contains(data, []byte("\n")) {
		return errors.New("more than one line")
	}
	if string(data) != "[DONE]" && !json.Valid(data) {
		return errors.New("data is not JSON")
	}
	return nil
}

var streamHeader = http.Header{"X-Amzn-Requestid": {"7c9d3a52-0f1e-4b6a-8c3d-2e1f0a9b8c7d"}, "Content-Type": {"application/vnd.amazon.eventstream"}}

func TestStreamGolden(t *testing.T) {
	jsonSchemaRequest, err := os.ReadFile("testdata/request/json_schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, fixture, request string
		includeUsage           bool
		output                 string
		usage                  exchange.Usage
		code                   string
	}{
		{name: "text", fixture: "text", request: plainRequest, output: `Hello \"w\" ☃\n<b>`, usage: exchange.Usage{InputTokens: 10, OutputTokens: 3, TotalTokens: 13, Reported: true}},
		{name: "text_usage", fixture: "text", request: plainRequest, includeUsage: true, output: `Hello \"w\" ☃\n<b>`, usage: exchange.Usage{InputTokens: 10, OutputTokens: 3, TotalTokens: 13, Reported: true}},
		{name: "tools_usage", fixture: "tools", request: plainRequest, includeUsage: true, output: "Checking.", usage: exchange.Usage{InputTokens: 125, OutputTokens: 30, TotalTokens: 155, CachedInputTokens: 100, CacheCreationTokens: 20, Reported: true}},
		{name: "forced_json", fixture: "forced_json", request: string(jsonSchemaRequest), output: `{\"city\":\"Oslo\",\"celsius\":-3}`, usage: exchange.Usage{InputTokens: 50, OutputTokens: 20, TotalTokens: 70, Reported: true}},
		{name: "max_tokens", fixture: "max_tokens", request: plainRequest, includeUsage: true, output: "One, two"},
		{name: "guardrail", fixture: "guardrail", request: plainRequest, usage: exchange.Usage{InputTokens: 8, TotalTokens: 8, Reported: true}},
		{name: "throttled", fixture: "throttled", request: plainRequest, output: "Partial", code: apierr.CodeRateLimitExceeded},
		{name: "too_long", fixture: "too_long", request: plainRequest, code: apierr.CodeContextLengthExceeded},
		{name: "stream_error", fixture: "stream_error", request: plainRequest, code: apierr.CodeUpstreamError},
		{name: "error_message", fixture: "error_message", request: plainRequest, code: apierr.CodeUpstreamError},
		{name: "cut_off", fixture: "cut_off", request: plainRequest, output: "Half an ans", code: apierr.CodeUpstreamError},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := chatExchange(c.request, true)
			ex.IncludeUsage = c.includeUsage
			events, err := collect(t, ex, streamHeader, bytes.NewReader(loadEvents(t, c.fixture)))
			if err != nil {
				t.Fatal(err)
			}
			got := normalize([]byte(strings.Join(events, "")))
			golden.Compare(t, "stream/"+c.name+".sse", got)
			if string(ex.Output) != c.output {
				t.Errorf("output %q, want %q", ex.Output, c.output)
			}
			if ex.Usage != c.usage {
				t.Errorf("usage %+v, want %+v", ex.Usage, c.usage)
			}
			if ex.Code != c.code {
				t.Errorf("code %q, want %q", ex.Code, c.code)
			}
			// One id, created and model for every chunk of the stream.
			ids := map[string]bool{}
			for _, ev := range events {
				var chunk struct {
					ID      string `json:"id"`
					Created int64  `json:"created"`
					Model   string `json:"model"`
				}
				if json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &chunk) == nil && chunk.ID != "" {
					ids[chunk.ID+"|"+chunk.Model] = true
				}
			}
			if len(ids) > 1 {
				t.Errorf("chunks disagree on id or model: %v", ids)
			}
		})
	}
}

func TestStreamRandomID(t *testing.T) {
	body := loadEvents(t, "text")
	id := func() string {
		events, err := collect(t, chatExchange(plainRequest, true), http.Header{}, bytes.NewReader(body))
		if err != nil || len(events) == 0 {
			t.Fatal(err)
		}
		var chunk struct{ ID string }
		json.Unmarshal([]byte(strings.TrimPrefix(events[0], "data: ")), &chunk)
		return chunk.ID
	}
	a, b := id(), id()
	if !strings.HasPrefix(a, "chatcmpl-") || a == b {
		t.Errorf("ids %q %q", a, b)
	}
}

const decodeFailure = `"code":"upstream_error"`

func TestStreamCorrupt(t *testing.T) {
	good := loadEvents(t, "text")
	first := int(binary.BigEndian.Uint32(good)) // the first message's length
	for _, c := range []struct {
		name   string
		body   func() []byte
		events int // events before the error event
	}{
		{"message crc", func() []byte {
			b := bytes.Clone(good)
			b[first+int(binary.BigEndian.Uint32(b[first:]))-6] ^= 0x40 // in the second message's payload
			return b
		}, 1},
		{"header type", func() []byte { return rawFrame(16+6, 6, []byte{3, 'a', 'b', 'c', 99, 0}, nil) }, 0},
		{"headers past message, valid crc", func() []byte { return rawFrame(16+4, 9, []byte{1, 'a', 7, 0}, nil) }, 0},
		{"length below minimum, valid crc", func() []byte { return rawFrame(8, 0, nil, nil) }, 0},
		{"final crc", func() []byte { b := bytes.Clone(good); b[first-1] ^= 1; return b }, 0},
		{"prelude crc", func() []byte { b := bytes.Clone(good); b[first+9] ^= 1; return b }, 1},
		{"length too small", func() []byte { return []byte{0, 0, 0, 4, 0, 0, 0, 0, 1, 2, 3, 4} }, 0},
		{"length too large", func() []byte { return []byte{0x7f, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6} }, 0},
		{"headers longer than message", func() []byte { return []byte{0, 0, 0, 20, 0, 0, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} }, 0},
		{"truncated prelude", func() []byte { return good[:first+5] }, 1},
		{"truncated payload", func() []byte { return good[:first+40] }, 1},
		{"garbage", func() []byte { return []byte("data: {\"not\":\"event-stream\"}\n\n") }, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := chatExchange(plainRequest, true)
			events, err := collect(t, ex, streamHeader, bytes.NewReader(c.body()))
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != c.events+1 || !strings.Contains(events[len(events)-1], decodeFailure) || !strings.HasPrefix(events[len(events)-1], `data: {"error":`) {
				t.Fatalf("events %q", events)
			}
			if ex.Code != apierr.CodeUpstreamError {
				t.Errorf("code %q", ex.Code)
			}
		})
	}
}

// rawFrame builds a message with the given prelude lengths and valid CRCs, whatever the
// lengths say.
func rawFrame(total, headersLen uint32, headers, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, total)
	b = binary.BigEndian.AppendUint32(b, headersLen)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	b = append(append(b, headers...), payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// brokenReader yields its data, then fails like a dropped connection.
type brokenReader struct {
	data []byte
	err  error
}

func (r *brokenReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestStreamTransportError(t *testing.T) {
	good := loadEvents(t, "text")
	broken := errors.New("connection reset")
	for _, cut := range []int{0, 5, 40, len(good) - 3} {
		events, err := collect(t, chatExchange(plainRequest, true), streamHeader, &brokenReader{data: good[:cut], err: broken})
		if !errors.Is(err, broken) {
			t.Errorf("cut %d: got %v after %q, want the read error", cut, err, events)
		}
		for _, ev := range events {
			if strings.Contains(ev, `"error"`) {
				t.Errorf("cut %d: error event %q for a transport error", cut, ev)
			}
		}
	}
}

// TestStreamConcurrent runs pooled streams side by side (run with -race).
func TestStreamConcurrent(t *testing.T) {
	bodies := map[string][]byte{"text": loadEvents(t, "text"), "tools": loadEvents(t, "tools"), "throttled": loadEvents(t, "throttled")}
	want := map[string]string{}
	for name, b := range bodies {
		events, err := collect(t, chatExchange(plainRequest, true), streamHeader, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		want[name] = string(normalize([]byte(strings.Join(events, ""))))
	}
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		for name, b := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				events, err := collect(t, chatExchange(plainRequest, true), streamHeader, bytes.NewReader(b))
				if err != nil {
					t.Error(err)
					return
				}
				if got := string(normalize([]byte(strings.Join(events, "")))); got != want[name] {
					t.Errorf("%s: got %s, want %s", name, got, want[name])
				}
			}()
		}
	}
	wg.Wait()
}

func BenchmarkStream(b *testing.B) {
	events := []fixtureEvent{{Event: "messageStart", Payload: json.RawMessage(`{"role":"assistant"}`)}}
	for i := 0; i < 200; i++ {
		events = append(events, fixtureEvent{Event: "contentBlockDelta", Payload: json.RawMessage(`{"contentBlockIndex":0,"delta":{"text":"some words \"quoted\" "},"p":"abcdefghijklmnop"}`)})
	}
	events = append(events,
		fixtureEvent{Event: "messageStop", Payload: json.RawMessage(`{"stopReason":"end_turn"}`)},
		fixtureEvent{Event: "metadata", Payload: json.RawMessage(`{"usage":{"inputTokens":10,"outputTokens":200,"totalTokens":210}}`)})
	body := encodeEvents(b, events)
	ex := chatExchange(plainRequest, true)
	r := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(body)
		ex.Output = ex.Output[:0]
		s := New().Stream(ex, streamHeader, r)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
		s.Close()
	}
}
