// Package openai is the adapter for the OpenAI wire schema, spoken by OpenAI and every
// OpenAI-compatible server (vLLM, Ollama, Groq, ...). Ingress is OpenAI too, so the request
// bytes go upstream unchanged except for two splices: the upstream model name when a route
// renames the model, and stream_options.include_usage, which the gateway turns on so every
// stream reports usage. What the client did not ask for is taken out of the stream again.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/sse"
)

// Adapter is the OpenAI adapter. The zero value is ready to use.
type Adapter struct{}

var _ provider.Adapter = Adapter{}

var paths = [...]string{
	exchange.EndpointChat:        "/chat/completions",
	exchange.EndpointCompletions: "/completions",
	exchange.EndpointEmbeddings:  "/embeddings",
}

// NewRequest implements provider.Adapter.
func (Adapter) NewRequest(ctx context.Context, ex *exchange.Exchange, t provider.Target) (*http.Request, error) {
	if int(ex.Endpoint) >= len(paths) || paths[ex.Endpoint] == "" {
		return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "This endpoint is not available for this model's backend."}
	}
	u := *t.BaseURL
	u.Path = joinPath(u.Path, paths[ex.Endpoint])
	u.RawPath = ""
	body, err := UpstreamBody(ex, t.Model)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	provider.ForwardHeaders(req.Header, ex.Header)
	req.Header["Content-Type"] = jsonContentType
	if ex.Stream {
		req.Header["Accept"] = eventStream
	}
	if ex.ID != "" {
		req.Header["X-Request-Id"] = []string{ex.ID}
	}
	return req, nil
}

var (
	jsonContentType = []string{"application/json"}
	eventStream     = []string{"text/event-stream"}
)

func joinPath(base, p string) string {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + p
}

// WantsUsageInjection reports whether the gateway must ask upstream for stream usage the
// client did not ask for.
func WantsUsageInjection(ex *exchange.Exchange) bool {
	return ex.Stream && !ex.IncludeUsage && (ex.Endpoint == exchange.EndpointChat || ex.Endpoint == exchange.EndpointCompletions)
}

// UpstreamBody returns the body to send upstream: ex.Body itself when nothing needs to
// change, else a spliced copy with the upstream model and include_usage.
func UpstreamBody(ex *exchange.Exchange, model string) ([]byte, error) {
	renameModel := model != "" && model != ex.Model
	inject := WantsUsageInjection(ex)
	if !renameModel && !inject {
		return ex.Body, nil
	}
	body := ex.Body
	spans := ex.Spans
	if ex.BodyMutated || spans.End == 0 {
		var err error
		if spans, err = findSpans(body); err != nil {
			return nil, err
		}
	}
	type edit struct {
		start, end int
		text       []byte
	}
	var edits [2]edit
	n := 0
	if renameModel && !spans.Model.Empty() {
		q, _ := json.Marshal(model)
		edits[n] = edit{spans.Model.Start, spans.Model.End, q}
		n++
	}
	if inject {
		so := spans.StreamOptions
		switch {
		case so.Empty():
			text := []byte(`"stream_options":{"include_usage":true}`)
			if hasMembers(body, spans.End) {
				text = append([]byte{','}, text...)
			}
			edits[n] = edit{spans.End, spans.End, text}
		default:
			e, err := includeUsageEdit(body, so)
			if err != nil {
				return nil, err
			}
			edits[n] = edit{e.start, e.end, e.text}
		}
		n++
	}
	if n == 2 && edits[1].start < edits[0].start {
		edits[0], edits[1] = edits[1], edits[0]
	}
	out := make([]byte, 0, len(body)+64)
	prev := 0
	for _, e := range edits[:n] {
		out = append(out, body[prev:e.start]...)
		out = append(out, e.text...)
		prev = e.end
	}
	return append(out, body[prev:]...), nil
}

// includeUsageEdit turns stream_options (an object or null) into one with include_usage true.
func includeUsageEdit(body []byte, so exchange.Span) (struct {
	start, end int
	text       []byte
}, error) {
	type e = struct {
		start, end int
		text       []byte
	}
	raw := body[so.Start:so.End]
	if raw[0] != '{' {
		return e{so.Start, so.End, []byte(`{"include_usage":true}`)}, nil
	}
	var found *jsonscan.Member
	empty := true
	err := jsonscan.Object(raw, func(m jsonscan.Member) bool {
		empty = false
		if string(m.Key(raw)) == "include_usage" {
			mm := m
			found = &mm
		}
		return true
	})
	if err != nil {
		return e{}, err
	}
	if found != nil {
		return e{so.Start + found.ValueStart, so.Start + found.ValueEnd, []byte("true")}, nil
	}
	at := so.Start + 1
	if empty {
		return e{at, at, []byte(`"include_usage":true`)}, nil
	}
	return e{at, at, []byte(`"include_usage":true,`)}, nil
}

func hasMembers(body []byte, end int) bool {
	for i := end - 1; i >= 0; i-- {
		switch body[i] {
		case ' ', '\t', '\r', '\n':
		case '{':
			return false
		default:
			return true
		}
	}
	return false
}

func findSpans(body []byte) (s struct {
	Model, StreamOptions exchange.Span
	End                  int
}, err error) {
	err = jsonscan.Object(body, func(m jsonscan.Member) bool {
		switch string(m.Key(body)) {
		case "model":
			s.Model = exchange.Span{Start: m.ValueStart, End: m.ValueEnd}
		case "stream_options":
			s.StreamOptions = exchange.Span{Start: m.ValueStart, End: m.ValueEnd}
		}
		return true
	})
	s.End = bytes.LastIndexByte(body, '}')
	return s, err
}

// Speaks implements provider.Adapter.
func (Adapter) Speaks(w apierr.Wire) bool { return w == apierr.OpenAI }

// Complete implements provider.Adapter: OpenAI answers pass through unchanged, errors
// included (they are already OpenAI errors), except the upstream refusing the gateway's
// own credential, which must not reach the client as a 401; usage and generated text are
// read on the way.
func (Adapter) Complete(ex *exchange.Exchange, status int, header http.Header, body []byte) (provider.Answer, error) {
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		e := apierr.FromUpstream(status, header, "", "")
		return provider.Answer{Status: e.Status, Body: e.Body(apierr.OpenAI)}, nil
	}
	if status >= 300 {
		return provider.Answer{Status: status, Body: body}, nil
	}
	jsonscan.Object(body, func(m jsonscan.Member) bool {
		switch string(m.Key(body)) {
		case "usage":
			ParseUsage(m.Value(body), &ex.Usage)
		case "choices":
			ex.Output = appendChoiceText(ex.Output, m.Value(body))
		}
		return true
	})
	return provider.Answer{Status: status, Body: body}, nil
}

// ParseUsage reads an OpenAI usage object into u. A null or malformed value leaves u alone.
func ParseUsage(raw []byte, u *exchange.Usage) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	var got exchange.Usage
	err := jsonscan.Object(raw, func(m jsonscan.Member) bool {
		v := m.Value(raw)
		switch string(m.Key(raw)) {
		case "prompt_tokens", "input_tokens":
			got.InputTokens, _ = jsonscan.Int(v)
		case "completion_tokens", "output_tokens":
			got.OutputTokens, _ = jsonscan.Int(v)
		case "total_tokens":
			got.TotalTokens, _ = jsonscan.Int(v)
		case "prompt_tokens_details", "input_tokens_details":
			got.CachedInputTokens = nestedInt(v, "cached_tokens")
		case "completion_tokens_details", "output_tokens_details":
			got.ReasoningTokens = nestedInt(v, "reasoning_tokens")
		}
		return true
	})
	if err != nil {
		return false
	}
	if got.TotalTokens == 0 {
		got.TotalTokens = got.InputTokens + got.OutputTokens
	}
	got.Reported = true
	*u = got
	return true
}

func nestedInt(raw []byte, key string) int64 {
	v, ok := jsonscan.Get(raw, key)
	if !ok {
		return 0
	}
	n, _ := jsonscan.Int(v)
	return n
}

// appendChoiceText appends the escaped text of every choice (message.content, delta.content
// or text) to dst.
func appendChoiceText(dst, choices []byte) []byte {
	jsonscan.Array(choices, func(s, e int) bool {
		choice := choices[s:e]
		jsonscan.Object(choice, func(m jsonscan.Member) bool {
			switch string(m.Key(choice)) {
			case "text":
				dst = appendStringBody(dst, m.Value(choice))
			case "message", "delta":
				if c, ok := jsonscan.Get(m.Value(choice), "content"); ok {
					dst = appendStringBody(dst, c)
				}
			}
			return true
		})
		return true
	})
	return dst
}

func appendStringBody(dst, raw []byte) []byte {
	if len(raw) >= 2 && raw[0] == '"' {
		return append(dst, raw[1:len(raw)-1]...)
	}
	return dst
}

// Stream implements provider.Adapter.
func (Adapter) Stream(ex *exchange.Exchange, _ http.Header, body io.Reader) provider.Stream {
	s := streamPool.Get().(*stream)
	s.ex = ex
	s.strip = WantsUsageInjection(ex)
	s.r.Reset(body)
	return s
}

var streamPool = sync.Pool{New: func() any {
	return &stream{r: sse.NewReader(nil, make([]byte, 16<<10)), out: make([]byte, 0, 4096)}
}}

type stream struct {
	ex    *exchange.Exchange
	strip bool
	r     *sse.Reader
	out   []byte
}

func (s *stream) Close() {
	s.ex = nil
	s.r.Reset(nil)
	streamPool.Put(s)
}

var done = []byte("[DONE]")

func (s *stream) Next() ([]byte, error) {
	for {
		ev, err := s.r.Next()
		if err != nil {
			return nil, err
		}
		if !ev.HasData || bytes.Equal(ev.Data, done) || len(ev.Data) == 0 || ev.Data[0] != '{' {
			return ev.Raw, nil
		}
		out, keep := s.chunk(ev)
		if keep {
			return out, nil
		}
	}
}

// chunk reads usage and text from one data event and, when the gateway injected
// include_usage, removes what the client did not ask for. It reports whether the event is
// kept.
func (s *stream) chunk(ev sse.Event) ([]byte, bool) {
	data := ev.Data
	var usage, prev jsonscan.Member
	var hasUsage, emptyChoices bool
	usageIdx, idx := -1, 0
	var before jsonscan.Member // the member before usage
	var after = -1             // start of the key after usage
	err := jsonscan.Object(data, func(m jsonscan.Member) bool {
		if usageIdx >= 0 && after < 0 {
			after = m.KeyStart
		}
		switch string(m.Key(data)) {
		case "usage":
			usage, hasUsage, usageIdx = m, true, idx
			before = prev
			if ParseUsage(m.Value(data), &s.ex.Usage) {
				s.ex.Usage.Reported = true
			}
		case "choices":
			v := m.Value(data)
			emptyChoices = isEmptyArray(v)
			s.ex.Output = appendChoiceText(s.ex.Output, v)
		}
		prev = m
		idx++
		return true
	})
	if err != nil || !s.strip || !hasUsage {
		return ev.Raw, true
	}
	if emptyChoices {
		return nil, false // the usage chunk the gateway asked for
	}
	// Cut the usage member out, with one adjacent comma.
	var cutStart, cutEnd int
	switch {
	case usageIdx > 0:
		cutStart, cutEnd = before.ValueEnd, usage.ValueEnd
	case after >= 0:
		cutStart, cutEnd = usage.KeyStart, after
	default:
		cutStart, cutEnd = usage.KeyStart, usage.ValueEnd
	}
	s.out = append(s.out[:0], "data: "...)
	s.out = append(s.out, data[:cutStart]...)
	s.out = append(s.out, data[cutEnd:]...)
	s.out = append(s.out, '\n', '\n')
	return s.out, true
}

func isEmptyArray(v []byte) bool {
	if len(v) < 2 || v[0] != '[' {
		return false
	}
	for _, c := range v[1 : len(v)-1] {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
