package bedrock

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// Limits of the event-stream framing: a message is at most 16 MiB with at most 128 KiB of
// headers. They are checked before the SDK decoder runs, which trusts the lengths in a
// prelude once its CRC matches.
const (
	minMessage = 16 // prelude (8), prelude CRC (4), message CRC (4)
	maxMessage = 16 << 20
	maxHeaders = 128 << 10
)

// decoder is stateless without options, so one serves every stream.
var decoder = eventstream.NewDecoder()

// Stream implements provider.Adapter: it decodes ConverseStream's event-stream messages
// and yields OpenAI chat.completion.chunk events, one per Next.
func (*Adapter) Stream(ex *exchange.Exchange, header http.Header, body io.Reader) provider.Stream {
	s := streamPool.Get().(*stream)
	s.ex = ex
	s.src.r = body
	s.br.Reset(&s.src)
	// Every chunk of the stream shares id, created and model.
	s.prefix = append(s.prefix[:0], `data: {"id":"`...)
	s.prefix = jsonscan.AppendEscaped(s.prefix, []byte(responseID(header)))
	s.prefix = append(s.prefix, `","object":"chat.completion.chunk","created":`...)
	s.prefix = strconv.AppendInt(s.prefix, time.Now().Unix(), 10)
	s.prefix = append(s.prefix, `,"model":"`...)
	s.prefix = jsonscan.AppendEscaped(s.prefix, []byte(responseModel(ex)))
	s.prefix = append(s.prefix, `","choices":`...)
	return s
}

var streamPool = sync.Pool{New: func() any {
	s := &stream{out: make([]byte, 0, 1024), payload: make([]byte, 0, 1024)}
	s.br = bufio.NewReaderSize(nil, 8<<10)
	return s
}}

type stream struct {
	ex  *exchange.Exchange
	src errReader
	br  *bufio.Reader

	prefix  []byte // `data: {"id":...,"choices":`
	payload []byte // the decoder's payload buffer, reused
	scratch []byte // unquoted text
	out     []byte // pending events
	cuts    []int  // end offset in out of each pending event
	next    int    // the next pending event

	blocks  []blockState // tool-use content blocks
	tools   int          // tool calls emitted
	forced  string       // the forced JSON tool's name, once looked up
	looked  bool
	started bool // the role chunk went out
	stopped bool // messageStop arrived
	done    bool // nothing follows the pending events
}

// blockState ties a Converse content block to the OpenAI tool call it streams into.
type blockState struct {
	block int64
	tool  int  // tool call index
	json  bool // the forced JSON tool: its input streams as content
}

// errReader remembers the body's own read error, to tell a broken connection (which the
// gateway handles) from a malformed stream (which becomes an error event).
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// Close implements provider.Stream.
func (s *stream) Close() {
	s.ex, s.src = nil, errReader{}
	s.br.Reset(nil)
	if cap(s.payload) > 1<<20 {
		s.payload = make([]byte, 0, 1024)
	}
	if cap(s.out) > 1<<20 {
		s.out = make([]byte, 0, 1024)
	}
	s.scratch, s.blocks = s.scratch[:0], s.blocks[:0]
	s.out, s.cuts, s.next = s.out[:0], s.cuts[:0], 0
	s.tools, s.forced, s.looked = 0, "", false
	s.started, s.stopped, s.done = false, false, false
	streamPool.Put(s)
}

var errCorrupt = errors.New("bedrock: malformed event stream")

// Next implements provider.Stream.
func (s *stream) Next() ([]byte, error) {
	for {
		if s.next < len(s.cuts) {
			start := 0
			if s.next > 0 {
				start = s.cuts[s.next-1]
			}
			end := s.cuts[s.next]
			s.next++
			return s.out[start:end], nil
		}
		if s.done {
			return nil, io.EOF
		}
		s.out, s.cuts, s.next = s.out[:0], s.cuts[:0], 0
		m, err := s.read()
		switch {
		case err == io.EOF:
			s.finish()
		case err == errCorrupt:
			s.fail(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream stream could not be decoded."})
		case err != nil:
			return nil, err
		default:
			s.message(m)
		}
	}
}

// read decodes the next message: io.EOF at a clean end, errCorrupt for bad framing or a
// truncated message, or the body's own read error.
func (s *stream) read() (eventstream.Message, error) {
	p, err := s.br.Peek(12)
	if len(p) == 0 && err == io.EOF {
		return eventstream.Message{}, io.EOF
	}
	if err != nil {
		return eventstream.Message{}, s.readErr()
	}
	total, headers := binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:])
	if total < minMessage || total > maxMessage || headers > maxHeaders || headers > total-minMessage {
		return eventstream.Message{}, errCorrupt
	}
	m, err := decoder.Decode(s.br, s.payload[:0])
	if err != nil {
		return eventstream.Message{}, s.readErr()
	}
	if cap(m.Payload) > cap(s.payload) {
		s.payload = m.Payload[:0]
	}
	return m, nil
}

func (s *stream) readErr() error {
	if s.src.err != nil {
		return s.src.err
	}
	return errCorrupt
}

func headerString(m eventstream.Message, name string) string {
	if v, ok := m.Headers.Get(name).(eventstream.StringValue); ok {
		return string(v)
	}
	return ""
}

// message handles one decoded event-stream message.
func (s *stream) message(m eventstream.Message) {
	switch headerString(m, ":message-type") {
	case "exception":
		msg, _ := jsonscan.Get(m.Payload, "message")
		text, _ := jsonscan.String(msg)
		s.fail(upstreamError(0, nil, headerString(m, ":exception-type"), text))
		return
	case "error":
		s.fail(upstreamError(0, nil, headerString(m, ":error-code"), headerString(m, ":error-message")))
		return
	}
	p := m.Payload
	switch headerString(m, ":event-type") {
	case "messageStart":
		s.start()
	case "contentBlockStart":
		start, _ := jsonscan.Get(p, "start")
		tu, ok := jsonscan.Get(start, "toolUse")
		if !ok {
			return
		}
		s.toolStart(blockIndex(p), tu)
	case "contentBlockDelta":
		delta, _ := jsonscan.Get(p, "delta")
		if text, ok := jsonscan.Get(delta, "text"); ok {
			s.content(text)
			return
		}
		if tu, ok := jsonscan.Get(delta, "toolUse"); ok {
			input, _ := jsonscan.Get(tu, "input")
			s.toolInput(blockIndex(p), input)
		}
	case "messageStop":
		reason, _ := jsonscan.Get(p, "stopReason")
		s.stop(reason)
	case "metadata":
		if u, ok := jsonscan.Get(p, "usage"); ok {
			s.usage(u)
		}
	}
}

func blockIndex(p []byte) int64 {
	raw, _ := jsonscan.Get(p, "contentBlockIndex")
	n, _ := jsonscan.Int(raw)
	return n
}

// begin starts a chunk event: the shared prefix, then the choices.
func (s *stream) begin() { s.out = append(s.out, s.prefix...) }

// end closes an event begun with begin.
func (s *stream) end() {
	s.out = append(s.out, "}\n\n"...)
	s.cuts = append(s.cuts, len(s.out))
}

// start sends the role chunk, once, before anything else.
func (s *stream) start() {
	if s.started {
		return
	}
	s.started = true
	s.begin()
	s.out = append(s.out, `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]`...)
	s.end()
}

// unquote decodes a raw JSON string into s.scratch; false when raw is not a string.
func (s *stream) unquote(raw []byte) bool {
	var ok bool
	s.scratch, ok = jsonscan.AppendUnquoted(s.scratch[:0], raw)
	return ok
}

// content sends a text delta; raw is the JSON string from the event.
func (s *stream) content(raw []byte) {
	if !s.unquote(raw) || len(s.scratch) == 0 {
		return
	}
	s.start()
	s.begin()
	s.out = append(s.out, `[{"index":0,"delta":{"content":"`...)
	mark := len(s.out)
	s.out = jsonscan.AppendEscaped(s.out, s.scratch)
	s.ex.Output = append(s.ex.Output, s.out[mark:]...)
	s.out = append(s.out, `"},"finish_reason":null}]`...)
	s.end()
}

func (s *stream) toolStart(block int64, tu []byte) {
	rawName, _ := jsonscan.Get(tu, "name")
	rawID, _ := jsonscan.Get(tu, "toolUseId")
	name, _ := jsonscan.String(rawName)
	if !s.looked {
		s.forced, s.looked = forcedToolName(s.ex.Body), true
	}
	s.start()
	if s.forced != "" && name == s.forced {
		s.blocks = append(s.blocks, blockState{block: block, json: true})
		return
	}
	st := blockState{block: block, tool: s.tools}
	s.tools++
	s.blocks = append(s.blocks, st)
	s.begin()
	s.out = append(s.out, `[{"index":0,"delta":{"tool_calls":[{"index":`...)
	s.out = strconv.AppendInt(s.out, int64(st.tool), 10)
	s.out = append(s.out, `,"id":"`...)
	if s.unquote(rawID) {
		s.out = jsonscan.AppendEscaped(s.out, s.scratch)
	}
	s.out = append(s.out, `","type":"function","function":{"name":"`...)
	s.out = jsonscan.AppendEscaped(s.out, []byte(name))
	s.out = append(s.out, `","arguments":""}}]},"finish_reason":null}]`...)
	s.end()
}

func (s *stream) toolInput(block int64, raw []byte) {
	var st *blockState
	for i := range s.blocks {
		if s.blocks[i].block == block {
			st = &s.blocks[i]
		}
	}
	if st == nil {
		return // input for a block that never started: nothing to attach it to
	}
	if st.json {
		s.content(raw)
		return
	}
	if !s.unquote(raw) || len(s.scratch) == 0 {
		return
	}
	s.begin()
	s.out = append(s.out, `[{"index":0,"delta":{"tool_calls":[{"index":`...)
	s.out = strconv.AppendInt(s.out, int64(st.tool), 10)
	s.out = append(s.out, `,"function":{"arguments":"`...)
	s.out = jsonscan.AppendEscaped(s.out, s.scratch)
	s.out = append(s.out, `"}}]},"finish_reason":null}]`...)
	s.end()
}

func (s *stream) stop(rawReason []byte) {
	if s.stopped {
		return
	}
	s.stopped = true
	var reason string
	if s.unquote(rawReason) {
		reason = string(s.scratch)
	}
	forcedOnly := s.tools == 0 && len(s.blocks) > 0
	s.start()
	s.begin()
	s.out = append(s.out, `[{"index":0,"delta":{},"finish_reason":"`...)
	s.out = append(s.out, finishReason(reason, forcedOnly)...)
	s.out = append(s.out, `"}]`...)
	s.end()
}

// usage records the metadata event's usage and, when the client asked for it, sends
// OpenAI's usage chunk (no choices).
func (s *stream) usage(raw []byte) {
	var u tokenUsage
	jsonscan.Object(raw, func(m jsonscan.Member) bool {
		v, _ := jsonscan.Int(m.Value(raw))
		switch string(m.Key(raw)) {
		case "inputTokens":
			u.InputTokens = v
		case "outputTokens":
			u.OutputTokens = v
		case "totalTokens":
			u.TotalTokens = v
		case "cacheReadInputTokens":
			u.CacheReadInputTokens = v
		case "cacheWriteInputTokens":
			u.CacheWriteInputTokens = v
		}
		return true
	})
	cu := u.chat()
	cu.Record(s.ex)
	if !s.ex.IncludeUsage {
		return
	}
	s.begin()
	s.out = append(s.out, `[],"usage":{"prompt_tokens":`...)
	s.out = strconv.AppendInt(s.out, cu.PromptTokens, 10)
	s.out = append(s.out, `,"completion_tokens":`...)
	s.out = strconv.AppendInt(s.out, cu.CompletionTokens, 10)
	s.out = append(s.out, `,"total_tokens":`...)
	s.out = strconv.AppendInt(s.out, cu.TotalTokens, 10)
	s.out = append(s.out, `,"prompt_tokens_details":{"cached_tokens":`...)
	s.out = strconv.AppendInt(s.out, cu.PromptTokensDetails.CachedTokens, 10)
	if n := cu.PromptTokensDetails.CacheCreationTokens; n > 0 {
		s.out = append(s.out, `,"cache_creation_tokens":`...)
		s.out = strconv.AppendInt(s.out, n, 10)
	}
	s.out = append(s.out, "}}"...)
	s.end()
}

// finish ends a stream whose body ended cleanly: [DONE] after messageStop, else an error
// event, so a cut-off answer never looks complete.
func (s *stream) finish() {
	if !s.stopped {
		s.fail(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The upstream stream ended before the answer was complete."})
		return
	}
	s.out = append(s.out, chat.Done...)
	s.cuts = append(s.cuts, len(s.out))
	s.done = true
}

// fail sends an OpenAI stream error event and ends the stream.
func (s *stream) fail(e *apierr.Error) {
	s.ex.Code = e.Code
	s.out = append(s.out, "data: "...)
	s.out = append(s.out, e.Body(apierr.OpenAI)...)
	s.out = append(s.out, "\n\n"...)
	s.cuts = append(s.cuts, len(s.out))
	s.done = true
}
