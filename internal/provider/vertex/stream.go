package vertex

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
	"github.com/sluice-gateway/sluice/internal/sse"
)

// Stream implements provider.Adapter. Each upstream event (one GenerateContentResponse)
// becomes zero or more chat.completion.chunk events, written from the upstream's raw JSON
// string values into one reused buffer, so a text event costs no allocation. The finish
// chunk waits for the end of the upstream stream, because usage may follow the finish
// reason.
func (a *Adapter) Stream(ex *exchange.Exchange, _ http.Header, body io.Reader) provider.Stream {
	s := streamPool.Get().(*stream)
	s.ex = ex
	s.created = now().Unix()
	s.r.Reset(body)
	return s
}

var streamPool = sync.Pool{New: func() any {
	return &stream{r: sse.NewReader(nil, make([]byte, 16<<10)), out: make([]byte, 0, 4096), head: make([]byte, 0, 256)}
}}

type stream struct {
	ex      *exchange.Exchange
	r       *sse.Reader
	created int64
	out     []byte
	// head is every chunk's beginning, through `"choices":`.
	head    []byte
	args    bytes.Buffer
	started bool
	ended   bool
	// textOpen is set while a content delta is being written into out.
	textOpen bool
	finish   uint8
	tools    int
	hasUsage bool
	usage    chat.Usage
	// The usage details live here so recording usage allocates nothing.
	promptDetails     chat.PromptTokensDetails
	completionDetails chat.CompletionTokensDetails
}

func (s *stream) Close() {
	s.ex = nil
	s.r.Reset(nil)
	s.out, s.head = s.out[:0], s.head[:0]
	s.args.Reset()
	s.started, s.ended, s.textOpen = false, false, false
	s.finish, s.tools, s.hasUsage = finishNone, 0, false
	s.usage = chat.Usage{}
	streamPool.Put(s)
}

func (s *stream) Next() ([]byte, error) {
	if s.ended {
		return nil, io.EOF
	}
	for {
		ev, err := s.r.Next()
		if err == io.EOF {
			return s.end()
		}
		if err != nil {
			return nil, err
		}
		data := bytes.TrimSpace(ev.Data)
		if !ev.HasData || len(data) == 0 {
			continue
		}
		if string(data) == "[DONE]" {
			return s.end()
		}
		out, err := s.event(data)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 {
			return out, nil
		}
	}
}

// end writes the finish chunk, the usage chunk when the client asked for it, and [DONE].
// An upstream stream that ends without a finish reason was cut off, and must not look
// complete to the client.
func (s *stream) end() ([]byte, error) {
	s.ended = true
	if s.finish == finishNone {
		return nil, io.ErrUnexpectedEOF
	}
	s.out = s.out[:0]
	reason := finishName(s.finish, s.tools > 0)
	s.open()
	s.out = append(s.out, `[{"index":0,"delta":{},"finish_reason":"`...)
	s.out = append(s.out, reason...)
	s.out = append(s.out, `"}]}`+"\n\n"...)
	if s.ex.IncludeUsage && s.hasUsage {
		u, _ := json.Marshal(&s.usage)
		s.open()
		s.out = append(s.out, `[],"usage":`...)
		s.out = append(s.out, u...)
		s.out = append(s.out, "}\n\n"...)
	}
	s.out = append(s.out, chat.Done...)
	return s.out, nil
}

// event translates one GenerateContentResponse (or a Google error).
func (s *stream) event(data []byte) ([]byte, error) {
	var cands, usage, respID, errv, feedback []byte
	err := jsonscan.Object(data, func(m jsonscan.Member) bool {
		switch string(m.Key(data)) {
		case "candidates":
			cands = m.Value(data)
		case "usageMetadata":
			usage = m.Value(data)
		case "responseId":
			respID = m.Value(data)
		case "error":
			errv = m.Value(data)
		case "promptFeedback":
			feedback = m.Value(data)
		}
		return true
	})
	if err != nil {
		return nil, errMalformed
	}
	s.out = s.out[:0]
	if errv != nil {
		return s.errorEvent(data), nil
	}
	if !s.started {
		s.start(respID)
	}
	if len(usage) > 0 && usage[0] == '{' {
		s.readUsage(usage)
	}
	if len(feedback) > 0 && feedback[0] == '{' {
		if br, ok := jsonscan.Get(feedback, "blockReason"); ok && len(br) > 2 && br[0] == '"' {
			s.finish = finishFilter // the prompt was blocked: no candidates follow
		}
	}
	if len(cands) > 0 && cands[0] == '[' {
		jsonscan.Array(cands, func(a, b int) bool {
			s.candidate(cands[a:b])
			return false // n is 1: only the first candidate
		})
	}
	s.closeText()
	return s.out, nil
}

// start writes the chunk head and the first chunk, which carries the role. The id is the
// upstream's responseId when there is one, so every chunk of the stream shares it.
func (s *stream) start(respID []byte) {
	s.started = true
	h := append(s.head[:0], `{"id":"chatcmpl-`...)
	if len(respID) > 2 && respID[0] == '"' {
		h = append(h, respID[1:len(respID)-1]...) // still escaped: valid inside quotes
	} else {
		h = append(h, randomID()...)
	}
	h = append(h, `","object":"chat.completion.chunk","created":`...)
	h = strconv.AppendInt(h, s.created, 10)
	h = append(h, `,"model":"`...)
	h = jsonscan.AppendEscaped(h, s.ex.UpstreamModel)
	h = append(h, `","choices":`...)
	s.head = h
	s.open()
	s.out = append(s.out, `[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n"...)
}

func (s *stream) open() {
	s.out = append(s.out, "data: "...)
	s.out = append(s.out, s.head...)
}

func (s *stream) closeText() {
	if s.textOpen {
		s.out = append(s.out, `"},"finish_reason":null}]}`+"\n\n"...)
		s.textOpen = false
	}
}

func (s *stream) candidate(c []byte) {
	var parts, reason []byte
	jsonscan.Object(c, func(m jsonscan.Member) bool {
		switch string(m.Key(c)) {
		case "content":
			if v := m.Value(c); len(v) > 0 && v[0] == '{' {
				parts, _ = jsonscan.Get(v, "parts")
			}
		case "finishReason":
			reason = m.Value(c)
		}
		return true
	})
	if len(parts) > 0 && parts[0] == '[' {
		jsonscan.Array(parts, func(a, b int) bool {
			s.part(parts[a:b])
			return true
		})
	}
	if len(reason) > 2 && reason[0] == '"' {
		s.finish = finishCategory(reason[1 : len(reason)-1])
	}
}

func (s *stream) part(p []byte) {
	if len(p) == 0 || p[0] != '{' {
		return
	}
	var text, call []byte
	thought := false
	jsonscan.Object(p, func(m jsonscan.Member) bool {
		switch string(m.Key(p)) {
		case "text":
			text = m.Value(p)
		case "thought":
			thought, _ = jsonscan.Bool(m.Value(p))
		case "functionCall":
			call = m.Value(p)
		}
		return true
	})
	switch {
	case thought:
		// a thought summary is not part of the answer
	case len(call) > 0 && call[0] == '{':
		s.toolCall(call)
	case len(text) > 2 && text[0] == '"':
		inner := text[1 : len(text)-1]
		if !s.textOpen {
			s.open()
			s.out = append(s.out, `[{"index":0,"delta":{"content":"`...)
			s.textOpen = true
		}
		s.out = append(s.out, inner...)
		s.ex.Output = append(s.ex.Output, inner...)
	}
}

// toolCall writes one complete tool call: Gemini sends each function call whole.
func (s *stream) toolCall(call []byte) {
	s.closeText()
	var name, args []byte
	jsonscan.Object(call, func(m jsonscan.Member) bool {
		switch string(m.Key(call)) {
		case "name":
			name = m.Value(call)
		case "args":
			args = m.Value(call)
		}
		return true
	})
	if len(name) == 0 || name[0] != '"' {
		name = []byte(`""`)
	}
	s.args.Reset()
	if len(args) == 0 || jsonscan.IsNull(args) || json.Compact(&s.args, args) != nil {
		s.args.Reset()
		s.args.WriteString("{}")
	}
	s.open()
	s.out = append(s.out, `[{"index":0,"delta":{"tool_calls":[{"index":`...)
	s.out = strconv.AppendInt(s.out, int64(s.tools), 10)
	s.out = append(s.out, `,"id":"call_`...)
	s.out = strconv.AppendInt(s.out, int64(s.tools), 10)
	s.out = append(s.out, `","type":"function","function":{"name":`...)
	s.out = append(s.out, name...)
	s.out = append(s.out, `,"arguments":"`...)
	s.out = jsonscan.AppendEscaped(s.out, s.args.Bytes())
	s.out = append(s.out, `"}}]},"finish_reason":null}]}`+"\n\n"...)
	s.tools++
}

// readUsage records the latest usageMetadata: Vertex repeats it, cumulative, on every event.
func (s *stream) readUsage(u []byte) {
	var m usageMetadata
	jsonscan.Object(u, func(f jsonscan.Member) bool {
		n, _ := jsonscan.Int(f.Value(u))
		switch string(f.Key(u)) {
		case "promptTokenCount":
			m.PromptTokenCount = n
		case "candidatesTokenCount":
			m.CandidatesTokenCount = n
		case "totalTokenCount":
			m.TotalTokenCount = n
		case "cachedContentTokenCount":
			m.CachedContentTokenCount = n
		case "thoughtsTokenCount":
			m.ThoughtsTokenCount = n
		case "toolUsePromptTokenCount":
			m.ToolUsePromptTokenCount = n
		}
		return true
	})
	m.fill(&s.usage, &s.promptDetails, &s.completionDetails)
	s.usage.Record(s.ex)
	s.hasUsage = true
}

// errorEvent turns a Google error inside the stream into an OpenAI error event, which ends
// the stream.
func (s *stream) errorEvent(data []byte) []byte {
	s.ended = true
	var ge googleError
	json.Unmarshal(data, &ge)
	e := upstreamError(statusOf(ge.Error.Code, ge.Error.Status), nil, ge)
	s.ex.Code = e.Code
	s.out = append(s.out[:0], "data: "...)
	s.out = append(s.out, e.Body(apierr.OpenAI)...)
	return append(s.out, "\n\n"...)
}
