package anthropic

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/sse"
)

// MessagesStream translates an OpenAI chunk stream (inner, ending in data: [DONE]) into
// Anthropic's event stream for model, for an Anthropic client whose request went to an
// OpenAI backend. Usage comes last in an OpenAI stream, so message_delta, which carries
// output_tokens, waits for the usage chunk or [DONE]; message_start says input_tokens 0
// unless the first chunk already has usage, and message_delta repeats the input side.
// Closing the returned stream closes inner.
//
// Tool calls are assumed to stream one after another, as OpenAI sends them; a delta for
// an earlier tool call still goes out, to that call's content block index.
func MessagesStream(inner provider.Stream, model string) provider.Stream {
	s := msgStreamPool.Get().(*msgStream)
	s.src.s = inner
	s.r.Reset(&s.src)
	s.model = append(s.model[:0], quote(model)...)
	s.open = -1
	return s
}

var msgStreamPool = sync.Pool{New: func() any {
	s := &msgStream{}
	s.r = sse.NewReader(nil, make([]byte, 16<<10))
	return s
}}

// chunkReader reads the bytes of a Stream's events, for an sse.Reader: events are whole
// in practice, but need not be.
type chunkReader struct {
	s   provider.Stream
	cur []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		ev, err := c.s.Next()
		if err != nil {
			return 0, err
		}
		c.cur = ev
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

type msgStream struct {
	src   chunkReader
	r     *sse.Reader
	q     queue
	model []byte // JSON string
	id    []byte // JSON string

	started, done bool
	next          int // the next content block index
	open          int // the open block, or -1
	openText      bool
	tools         []toolIndex // OpenAI tool call index → block index
	finish        string      // the finish_reason, once known
	u             usage
	hasUsage      bool
	scratch       []byte
}

func (s *msgStream) Close() {
	if s.src.s != nil {
		s.src.s.Close()
	}
	s.src = chunkReader{}
	s.r.Reset(nil)
	s.q.reset()
	s.id = s.id[:0]
	s.started, s.done = false, false
	s.next, s.open, s.openText = 0, -1, false
	s.tools = s.tools[:0]
	s.finish = ""
	s.u, s.hasUsage = usage{}, false
	msgStreamPool.Put(s)
}

func (s *msgStream) Next() ([]byte, error) {
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
			if err == io.EOF {
				if s.finish == "" {
					return nil, io.ErrUnexpectedEOF // cut off before the answer ended
				}
				s.end()
				continue
			}
			return nil, err
		}
		if !ev.HasData {
			continue
		}
		if string(ev.Data) == "[DONE]" {
			s.end()
			continue
		}
		if len(ev.Data) > 0 && ev.Data[0] == '{' {
			s.chunk(ev.Data)
		}
	}
}

// chunk translates one OpenAI chunk.
func (s *msgStream) chunk(data []byte) {
	var id, choices, usageRaw, errObj []byte
	err := jsonscan.Object(data, func(m jsonscan.Member) bool {
		v := m.Value(data)
		switch string(m.Key(data)) {
		case "id":
			id = v
		case "choices":
			choices = v
		case "usage":
			usageRaw = v
		case "error":
			errObj = v
		}
		return true
	})
	if err != nil {
		return
	}
	if len(errObj) > 0 && errObj[0] == '{' {
		s.fail(data)
		return
	}
	if s.readUsage(usageRaw) {
		s.hasUsage = true
	}
	if !s.started {
		s.start(id)
	}
	if len(choices) > 0 && choices[0] == '[' {
		jsonscan.Array(choices, func(b, e int) bool {
			s.choice(choices[b:e])
			return false // n is 1: only the first choice
		})
	}
	if s.finish != "" && s.hasUsage {
		s.end()
	}
}

// readUsage reads an OpenAI usage object.
func (s *msgStream) readUsage(raw []byte) bool {
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	var prompt, cached, created int64
	err := jsonscan.Object(raw, func(m jsonscan.Member) bool {
		v := m.Value(raw)
		switch string(m.Key(raw)) {
		case "prompt_tokens":
			prompt, _ = jsonscan.Int(v)
		case "completion_tokens":
			s.u.output, _ = jsonscan.Int(v)
		case "prompt_tokens_details":
			if c := member(v, "cached_tokens"); c != nil {
				cached, _ = jsonscan.Int(c)
			}
			if c := member(v, "cache_creation_tokens"); c != nil {
				created, _ = jsonscan.Int(c)
			}
		}
		return true
	})
	if err != nil {
		return false
	}
	s.u.cacheRead, s.u.cacheCreate = cached, created
	s.u.input = max(0, prompt-cached-created)
	return true
}

func (s *msgStream) choice(c []byte) {
	var delta, finish []byte
	if jsonscan.Object(c, func(m jsonscan.Member) bool {
		switch string(m.Key(c)) {
		case "delta":
			delta = m.Value(c)
		case "finish_reason":
			finish = m.Value(c)
		}
		return true
	}) != nil {
		return
	}
	if len(delta) > 0 && delta[0] == '{' {
		jsonscan.Object(delta, func(m jsonscan.Member) bool {
			v := m.Value(delta)
			switch string(m.Key(delta)) {
			case "content":
				if isString(v) && len(v) > 2 {
					s.text(v)
				}
			case "refusal":
				if isString(v) && len(v) > 2 {
					s.text(v)
					s.finish = "refusal"
				}
			case "tool_calls":
				if len(v) > 0 && v[0] == '[' {
					jsonscan.Array(v, func(b, e int) bool {
						s.toolCall(v[b:e])
						return true
					})
				}
			}
			return true
		})
	}
	if f, ok := jsonscan.String(finish); ok && f != "" && s.finish != "refusal" {
		s.finish = stopReason(f)
	}
	if s.finish != "" {
		s.closeBlock()
	}
}

// event opens an event; the caller appends its JSON and calls s.q.mark after endEvent.
func (s *msgStream) event(name string) {
	s.q.buf = append(s.q.buf, "event: "...)
	s.q.buf = append(s.q.buf, name...)
	s.q.buf = append(s.q.buf, "\ndata: "...)
}

func (s *msgStream) endEvent() {
	s.q.buf = append(s.q.buf, "\n\n"...)
	s.q.mark()
}

func (s *msgStream) start(chunkID []byte) {
	s.started = true
	s.id = append(s.id[:0], `"msg_`...)
	if isString(chunkID) && len(chunkID) > 2 {
		inner := chunkID[1 : len(chunkID)-1]
		if len(inner) > 9 && string(inner[:9]) == "chatcmpl-" {
			inner = inner[9:]
		}
		s.id = append(s.id, inner...)
	} else {
		s.id = appendRandomHex(s.id)
	}
	s.id = append(s.id, '"')
	s.event("message_start")
	b := append(s.q.buf, `{"type":"message_start","message":{"id":`...)
	b = append(b, s.id...)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = append(b, s.model...)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	s.q.buf = s.appendUsage(b, s.hasUsage, 0)
	s.q.buf = append(s.q.buf, `}}`...)
	s.endEvent()
}

// appendUsage appends a usage object: the input side when known, and output tokens.
func (s *msgStream) appendUsage(b []byte, input bool, output int64) []byte {
	b = append(b, `{"input_tokens":`...)
	if input {
		b = strconv.AppendInt(b, s.u.input, 10)
		b = append(b, `,"cache_creation_input_tokens":`...)
		b = strconv.AppendInt(b, s.u.cacheCreate, 10)
		b = append(b, `,"cache_read_input_tokens":`...)
		b = strconv.AppendInt(b, s.u.cacheRead, 10)
	} else {
		b = append(b, `0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0`...)
	}
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, output, 10)
	return append(b, '}')
}

func appendRandomHex(b []byte) []byte {
	var r [12]byte
	rand.Read(r[:])
	return hex.AppendEncode(b, r[:])
}

var textBlockStart = []byte(`{"type":"text","text":""}`)

func (s *msgStream) blockStart(block []byte, tool bool) int {
	s.closeBlock()
	idx := s.next
	s.next++
	s.open, s.openText = idx, !tool
	s.event("content_block_start")
	s.q.buf = append(s.q.buf, `{"type":"content_block_start","index":`...)
	s.q.buf = strconv.AppendInt(s.q.buf, int64(idx), 10)
	s.q.buf = append(s.q.buf, `,"content_block":`...)
	s.q.buf = append(s.q.buf, block...)
	return idx
}

func (s *msgStream) closeBlock() {
	if s.open < 0 {
		return
	}
	s.event("content_block_stop")
	s.q.buf = append(s.q.buf, `{"type":"content_block_stop","index":`...)
	s.q.buf = strconv.AppendInt(s.q.buf, int64(s.open), 10)
	s.q.buf = append(s.q.buf, '}')
	s.endEvent()
	s.open = -1
}

// text sends a text delta; raw is a JSON string.
func (s *msgStream) text(raw []byte) {
	if s.open < 0 || !s.openText {
		s.blockStart(textBlockStart, false)
		s.q.buf = append(s.q.buf, '}')
		s.endEvent()
	}
	s.event("content_block_delta")
	s.q.buf = append(s.q.buf, `{"type":"content_block_delta","index":`...)
	s.q.buf = strconv.AppendInt(s.q.buf, int64(s.open), 10)
	s.q.buf = append(s.q.buf, `,"delta":{"type":"text_delta","text":`...)
	s.q.buf = append(s.q.buf, raw...)
	s.q.buf = append(s.q.buf, `}}`...)
	s.endEvent()
}

// toolCall translates one element of delta.tool_calls.
func (s *msgStream) toolCall(tc []byte) {
	if len(tc) == 0 || tc[0] != '{' {
		return
	}
	var index int64
	var id, fn []byte
	jsonscan.Object(tc, func(m jsonscan.Member) bool {
		v := m.Value(tc)
		switch string(m.Key(tc)) {
		case "index":
			index, _ = jsonscan.Int(v)
		case "id":
			id = v
		case "function":
			fn = v
		}
		return true
	})
	name, args := member(fn, "name"), member(fn, "arguments")
	block := int64(-1)
	for _, t := range s.tools {
		if t.tool == index {
			block = t.block
		}
	}
	if block < 0 {
		b := append(s.scratch[:0], `{"type":"tool_use","id":`...)
		if isString(id) && len(id) > 2 {
			b = append(b, id...)
		} else {
			b = append(b, `"toolu_`...)
			b = appendRandomHex(b)
			b = append(b, '"')
		}
		b = append(b, `,"name":`...)
		if isString(name) {
			b = append(b, name...)
		} else {
			b = append(b, `""`...)
		}
		b = append(b, `,"input":{}}`...)
		s.scratch = b
		block = int64(s.blockStart(b, true))
		s.q.buf = append(s.q.buf, '}')
		s.endEvent()
		s.tools = append(s.tools, toolIndex{block: block, tool: index})
	}
	if isString(args) && len(args) > 2 {
		s.event("content_block_delta")
		s.q.buf = append(s.q.buf, `{"type":"content_block_delta","index":`...)
		s.q.buf = strconv.AppendInt(s.q.buf, block, 10)
		s.q.buf = append(s.q.buf, `,"delta":{"type":"input_json_delta","partial_json":`...)
		s.q.buf = append(s.q.buf, args...)
		s.q.buf = append(s.q.buf, `}}`...)
		s.endEvent()
	}
}

// end closes the message: message_delta with the stop reason and usage, message_stop.
func (s *msgStream) end() {
	if s.done {
		return
	}
	if !s.started {
		s.start(nil)
	}
	s.closeBlock()
	stop := s.finish
	if stop == "" {
		stop = "end_turn"
	}
	s.event("message_delta")
	b := append(s.q.buf, `{"type":"message_delta","delta":{"stop_reason":"`...)
	b = append(b, stop...)
	b = append(b, `","stop_sequence":null},"usage":`...)
	s.q.buf = s.appendUsage(b, s.hasUsage, s.u.output)
	s.q.buf = append(s.q.buf, '}')
	s.endEvent()
	s.event("message_stop")
	s.q.buf = append(s.q.buf, `{"type":"message_stop"}`...)
	s.endEvent()
	s.done = true
}

// fail sends an OpenAI error event on as Anthropic's error event and ends the stream.
func (s *msgStream) fail(data []byte) {
	e := ErrorFromOpenAI(http.StatusInternalServerError, data)
	e.Status = streamErrorStatus(e.Code)
	s.event("error")
	s.q.buf = append(s.q.buf, e.Body(apierr.Anthropic)...)
	s.endEvent()
	s.done = true
}

// streamErrorStatus is the status an error arriving in a stream would have had, so it
// renders with the right Anthropic type.
func streamErrorStatus(code string) int {
	switch code {
	case apierr.CodeRateLimitExceeded, "rate_limit_error":
		return http.StatusTooManyRequests
	case apierr.CodeInvalidRequest, apierr.CodeContextLengthExceeded:
		return http.StatusBadRequest
	case apierr.CodeModelNotFound:
		return http.StatusNotFound
	case apierr.CodeUpstreamTimeout:
		return http.StatusGatewayTimeout
	case apierr.CodeUpstreamUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
