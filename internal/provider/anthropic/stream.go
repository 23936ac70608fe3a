package anthropic

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/sse"
)

// queue holds events built from one upstream event (a translation may make several) and
// hands them out one at a time. Its storage is reused.
type queue struct {
	buf  []byte
	ends []int
	i    int
}

func (q *queue) reset() { q.buf, q.ends, q.i = q.buf[:0], q.ends[:0], 0 }

// mark ends the event appended since the previous mark.
func (q *queue) mark() { q.ends = append(q.ends, len(q.buf)) }

func (q *queue) pop() ([]byte, bool) {
	if q.i >= len(q.ends) {
		return nil, false
	}
	start := 0
	if q.i > 0 {
		start = q.ends[q.i-1]
	}
	q.i++
	return q.buf[start:q.ends[q.i-1]], true
}

// event is the top-level members of an Anthropic stream event that matter here, as raw
// values (sub-slices of the event's data).
type event struct {
	typ, index, message, usage, delta, block, err []byte
}

func scanEvent(data []byte) (ev event, ok bool) {
	err := jsonscan.Object(data, func(m jsonscan.Member) bool {
		v := m.Value(data)
		switch string(m.Key(data)) {
		case "type":
			ev.typ = v
		case "index":
			ev.index = v
		case "message":
			ev.message = v
		case "usage":
			ev.usage = v
		case "delta":
			ev.delta = v
		case "content_block":
			ev.block = v
		case "error":
			ev.err = v
		}
		return true
	})
	return ev, err == nil
}

// member returns obj's member key when obj is an object.
func member(obj []byte, key string) []byte {
	if len(obj) == 0 || obj[0] != '{' {
		return nil
	}
	v, _ := jsonscan.Get(obj, key)
	return v
}

func isString(v []byte) bool { return len(v) >= 2 && v[0] == '"' }

// Stream implements provider.Adapter. An Anthropic client's events pass through as they
// are; an OpenAI client's are translated into chat.completion.chunk events.
func (a *Adapter) Stream(ex *exchange.Exchange, _ http.Header, body io.Reader) provider.Stream {
	s := streamPool.Get().(*stream)
	s.ex = ex
	s.native = native(ex)
	s.r.Reset(body)
	return s
}

var streamPool = sync.Pool{New: func() any {
	return &stream{r: sse.NewReader(nil, make([]byte, 16<<10))}
}}

type stream struct {
	ex     *exchange.Exchange
	native bool
	r      *sse.Reader
	q      queue
	u      usage

	// translation state
	head     []byte // `data: {"id":…,"object":…,"created":…,"model":…,`
	started  bool   // the role chunk went out
	finished bool   // message_stop, or an error event, went out
	done     bool   // nothing more to send
	// tools maps content block indexes to tool call indexes: a few entries, searched.
	tools []toolIndex
}

type toolIndex struct{ block, tool int64 }

func (s *stream) Close() {
	s.ex = nil
	s.r.Reset(nil)
	s.q.reset()
	s.u = usage{}
	s.head = s.head[:0]
	s.started, s.finished, s.done = false, false, false
	s.tools = s.tools[:0]
	streamPool.Put(s)
}

func (s *stream) Next() ([]byte, error) {
	if s.native {
		return s.nextNative()
	}
	for {
		if ev, ok := s.q.pop(); ok {
			return ev, nil
		}
		if s.done {
			return nil, io.EOF
		}
		s.q.reset()
		ev, err := s.r.Next()
		if err != nil {
			if err == io.EOF && !s.finished {
				// the upstream stopped before message_stop: a broken stream, not an answer
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if !ev.HasData || len(ev.Data) == 0 || ev.Data[0] != '{' {
			continue
		}
		if e, ok := scanEvent(ev.Data); ok {
			s.translate(&e)
		}
	}
}

// nextNative passes events through, reading usage and text on the way.
func (s *stream) nextNative() ([]byte, error) {
	ev, err := s.r.Next()
	if err != nil {
		return nil, err
	}
	if ev.HasData && len(ev.Data) > 0 && ev.Data[0] == '{' {
		if e, ok := scanEvent(ev.Data); ok {
			switch string(e.typ) {
			case `"message_start"`:
				s.readUsage(member(e.message, "usage"))
			case `"message_delta"`:
				s.readUsage(e.usage)
			case `"content_block_delta"`:
				if string(member(e.delta, "type")) == `"text_delta"` {
					s.ex.Output = appendStringBody(s.ex.Output, member(e.delta, "text"))
				}
			}
		}
	}
	return ev.Raw, nil
}

func (s *stream) readUsage(raw []byte) {
	if s.u.read(raw) {
		s.u.record(s.ex)
	}
}

// translate turns one Anthropic event into OpenAI chunks in s.q. Thinking, signature and
// citation deltas and server-tool blocks have no place in a chunk and are dropped, as are
// pings.
func (s *stream) translate(e *event) {
	if s.finished {
		return
	}
	switch string(e.typ) {
	case `"message_start"`:
		s.readUsage(member(e.message, "usage"))
		s.setHead(member(e.message, "id"), member(e.message, "model"))
		s.start()
	case `"content_block_start"`:
		switch string(member(e.block, "type")) {
		case `"text"`:
			if t := member(e.block, "text"); isString(t) && len(t) > 2 {
				s.content(t)
			}
		case `"tool_use"`:
			s.toolStart(e)
		}
	case `"content_block_delta"`:
		switch string(member(e.delta, "type")) {
		case `"text_delta"`:
			if t := member(e.delta, "text"); isString(t) {
				s.content(t)
			}
		case `"input_json_delta"`:
			if p := member(e.delta, "partial_json"); isString(p) && len(p) > 2 {
				s.toolArgs(e.index, p)
			}
		}
	case `"message_delta"`:
		s.readUsage(e.usage)
		stop, _ := jsonscan.String(member(e.delta, "stop_reason"))
		s.start()
		s.chunk()
		s.q.buf = append(s.q.buf, `{},"finish_reason":"`...)
		s.q.buf = append(s.q.buf, finishReason(stop)...)
		s.q.buf = append(s.q.buf, `"}]}`+"\n\n"...)
		s.q.mark()
	case `"message_stop"`:
		s.start()
		if s.ex.IncludeUsage {
			s.usageChunk()
		}
		s.q.buf = append(s.q.buf, "data: [DONE]\n\n"...)
		s.q.mark()
		s.finished, s.done = true, true
	case `"error"`:
		kind, _ := jsonscan.String(member(e.err, "type"))
		msg, _ := jsonscan.String(member(e.err, "message"))
		ae := apierr.FromUpstream(errorStatus(kind), nil, kind, msg)
		s.ex.Code = ae.Code
		s.q.buf = append(s.q.buf, "data: "...)
		s.q.buf = append(s.q.buf, ae.Body(apierr.OpenAI)...)
		s.q.buf = append(s.q.buf, "\n\n"...)
		s.q.mark()
		s.finished, s.done = true, true
	}
}

// setHead builds the members every chunk repeats. id and model are raw JSON strings.
func (s *stream) setHead(id, model []byte) {
	if !isString(id) {
		id = []byte(`""`)
	}
	if !isString(model) {
		model = []byte(`""`)
	}
	s.head = append(s.head[:0], `data: {"id":`...)
	s.head = append(s.head, id...)
	s.head = append(s.head, `,"object":"chat.completion.chunk","created":`...)
	s.head = strconv.AppendInt(s.head, time.Now().Unix(), 10)
	s.head = append(s.head, `,"model":`...)
	s.head = append(s.head, model...)
	s.head = append(s.head, ',')
}

// start sends the role chunk once, before anything else.
func (s *stream) start() {
	if s.started {
		return
	}
	s.started = true
	if len(s.head) == 0 {
		s.setHead(nil, nil)
	}
	s.chunk()
	s.q.buf = append(s.q.buf, `{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n"...)
	s.q.mark()
}

// chunk opens a chunk with one choice, up to its delta.
func (s *stream) chunk() {
	s.q.buf = append(s.q.buf, s.head...)
	s.q.buf = append(s.q.buf, `"choices":[{"index":0,"delta":`...)
}

const openDelta = `,"finish_reason":null}]}` + "\n\n"

// content sends a text delta; text is a raw JSON string.
func (s *stream) content(text []byte) {
	s.start()
	s.ex.Output = appendStringBody(s.ex.Output, text)
	s.chunk()
	s.q.buf = append(s.q.buf, `{"content":`...)
	s.q.buf = append(s.q.buf, text...)
	s.q.buf = append(s.q.buf, '}')
	s.q.buf = append(s.q.buf, openDelta...)
	s.q.mark()
}

func (s *stream) toolStart(e *event) {
	block, ok := jsonscan.Int(e.index)
	if !ok {
		return
	}
	id, name := member(e.block, "id"), member(e.block, "name")
	if !isString(id) {
		id = []byte(`""`)
	}
	if !isString(name) {
		name = []byte(`""`)
	}
	tool := int64(len(s.tools))
	s.tools = append(s.tools, toolIndex{block, tool})
	s.start()
	s.chunk()
	s.q.buf = append(s.q.buf, `{"tool_calls":[{"index":`...)
	s.q.buf = strconv.AppendInt(s.q.buf, tool, 10)
	s.q.buf = append(s.q.buf, `,"id":`...)
	s.q.buf = append(s.q.buf, id...)
	s.q.buf = append(s.q.buf, `,"type":"function","function":{"name":`...)
	s.q.buf = append(s.q.buf, name...)
	s.q.buf = append(s.q.buf, `,"arguments":""}}]}`...)
	s.q.buf = append(s.q.buf, openDelta...)
	s.q.mark()
}

// toolArgs sends a piece of a tool call's arguments; partial is a raw JSON string.
func (s *stream) toolArgs(index, partial []byte) {
	block, ok := jsonscan.Int(index)
	if !ok {
		return
	}
	tool := int64(-1)
	for _, t := range s.tools {
		if t.block == block {
			tool = t.tool
		}
	}
	if tool < 0 {
		return // not a tool_use block (a server tool's input)
	}
	s.chunk()
	s.q.buf = append(s.q.buf, `{"tool_calls":[{"index":`...)
	s.q.buf = strconv.AppendInt(s.q.buf, tool, 10)
	s.q.buf = append(s.q.buf, `,"function":{"arguments":`...)
	s.q.buf = append(s.q.buf, partial...)
	s.q.buf = append(s.q.buf, `}}]}`...)
	s.q.buf = append(s.q.buf, openDelta...)
	s.q.mark()
}

// usageChunk sends OpenAI's final usage chunk: no choices, the usage.
func (s *stream) usageChunk() {
	u := &s.u
	p := u.prompt()
	b := append(s.q.buf, s.head...)
	b = append(b, `"choices":[],"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, p, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.output, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, p+u.output, 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, u.cacheRead, 10)
	if u.cacheCreate > 0 {
		b = append(b, `,"cache_creation_tokens":`...)
		b = strconv.AppendInt(b, u.cacheCreate, 10)
	}
	b = append(b, "}}}\n\n"...)
	s.q.buf = b
	s.q.mark()
}
