package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MockConfig shapes the mock upstream's answers.
type MockConfig struct {
	// Latency is waited after the request is read, before the first byte of the answer.
	Latency time.Duration
	// Chunks is the number of content events of a streamed answer (default 20).
	Chunks int
	// ChunkDelay is waited between streamed content events (default 0: back to back).
	ChunkDelay time.Duration
}

// answerText is what the mock answers: about 100 tokens of ordinary prose, long enough for
// realistic usage figures and streams, free of anything a guardrail reacts to.
const answerText = "Connection pooling keeps a small set of open connections to each upstream and hands " +
	"them to requests as they arrive, so most requests skip the TCP handshake entirely. " +
	"The pool size should follow the expected concurrency: too small and requests queue for a " +
	"connection, too large and idle sockets hold memory on both ends. Timeouts matter as much " +
	"as the size, because a connection the server already closed fails the next request. " +
	"Measure the latency distribution under load before and after any change."

// Mock is an OpenAI-compatible upstream for load tests: POST /v1/chat/completions answers a
// whole chat completion or an SSE stream (with a usage chunk when the request asks for
// stream_options.include_usage), GET /v1/models lists one model. It does the least work an
// upstream can do, so that its cost does not hide the proxy's.
type Mock struct {
	cfg    MockConfig
	pieces [][]byte // the JSON-escaped content of each streamed event
	whole  []byte   // the JSON-escaped whole answer
	compTk int      // completion tokens reported
	ids    atomic.Uint64
	bufs   sync.Pool

	srv *http.Server
	ln  net.Listener
}

// NewMock returns the mock's handler; Serve (or StartMock) puts it on a listener.
func NewMock(cfg MockConfig) *Mock {
	if cfg.Chunks <= 0 {
		cfg.Chunks = 20
	}
	m := &Mock{cfg: cfg}
	words := strings.Fields(answerText)
	m.compTk = len(words) + len(words)/4 // roughly what a BPE tokenizer counts for English prose
	n := min(cfg.Chunks, len(words))
	for i := range n {
		lo, hi := i*len(words)/n, (i+1)*len(words)/n
		s := strings.Join(words[lo:hi], " ")
		if i > 0 {
			s = " " + s
		}
		m.pieces = append(m.pieces, jsonString(s))
	}
	m.whole = jsonString(answerText)
	m.bufs.New = func() any { b := make([]byte, 0, 16<<10); return &b }
	return m
}

// jsonString returns s as the inside of a JSON string (without the quotes).
func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b[1 : len(b)-1]
}

// StartMock serves a Mock on addr ("127.0.0.1:0" for any free port).
func StartMock(addr string, cfg MockConfig) (*Mock, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := NewMock(cfg)
	m.ln = ln
	m.srv = &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go m.srv.Serve(ln)
	return m, nil
}

// URL is the mock's base URL, ending in /v1.
func (m *Mock) URL() string { return "http://" + m.ln.Addr().String() + "/v1" }

// Addr is the address the mock listens on.
func (m *Mock) Addr() string { return m.ln.Addr().String() }

// Close stops the mock at once.
func (m *Mock) Close() error {
	if m.srv == nil {
		return nil
	}
	return m.srv.Close()
}

// Shutdown stops the mock after the requests in flight.
func (m *Mock) Shutdown(ctx context.Context) error {
	if m.srv == nil {
		return nil
	}
	return m.srv.Shutdown(ctx)
}

func (m *Mock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/v1/chat/completions" && r.Method == http.MethodPost:
		m.chat(w, r)
	case r.URL.Path == "/v1/models" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1700000000,"owned_by":"sluice-bench"}]}`)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"message":"not found","type":"invalid_request_error","code":"not_found"}}`)
	}
}

func (m *Mock) chat(w http.ResponseWriter, r *http.Request) {
	bp := m.bufs.Get().(*[]byte)
	defer m.bufs.Put(bp)
	body, err := readAll(r.Body, (*bp)[:0])
	*bp = body[:0]
	if err != nil {
		return
	}
	model := jsonField(body, "model")
	if len(model) == 0 || model[0] != '"' {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"message":"model is required","type":"invalid_request_error","param":"model","code":null}}`)
		return
	}
	model = model[1 : len(model)-1]
	stream := string(jsonField(body, "stream")) == "true"
	usage := stream && bytes.Contains(body, []byte(`"include_usage":true`))
	promptTk := max(1, (len(body)-60)/4)

	// Copy what the answer needs out of body: the buffer is reused for the answer.
	var modelBuf [128]byte
	model = modelBuf[:copy(modelBuf[:], model)]

	if m.cfg.Latency > 0 {
		t := time.NewTimer(m.cfg.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	id := m.ids.Add(1)
	created := time.Now().Unix()
	b := body[:0]
	if !stream {
		b = append(b, `{"id":"chatcmpl-bench`...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, `","object":"chat.completion","created":`...)
		b = strconv.AppendInt(b, created, 10)
		b = append(b, `,"model":"`...)
		b = append(b, model...)
		b = append(b, `","choices":[{"index":0,"message":{"role":"assistant","content":"`...)
		b = append(b, m.whole...)
		b = append(b, `","refusal":null},"logprobs":null,"finish_reason":"stop"}],`...)
		b = m.appendUsage(b, promptTk)
		b = append(b, `,"system_fingerprint":"fp_sluice_bench"}`...)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
		*bp = b[:0]
		return
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	event := func(b []byte, mid string, content []byte, tail string) []byte {
		b = append(b[:0], `data: {"id":"chatcmpl-bench`...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, `","object":"chat.completion.chunk","created":`...)
		b = strconv.AppendInt(b, created, 10)
		b = append(b, `,"model":"`...)
		b = append(b, model...)
		b = append(b, `","system_fingerprint":"fp_sluice_bench","choices":`...)
		b = append(b, mid...)
		b = append(b, content...)
		b = append(b, tail...)
		if usage {
			b = append(b, `,"usage":null`...)
		}
		b = append(b, "}\n\n"...)
		return b
	}
	send := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	b = event(b, `[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]`, nil, "")
	if !send(b) {
		return
	}
	for i, p := range m.pieces {
		if i > 0 && m.cfg.ChunkDelay > 0 {
			time.Sleep(m.cfg.ChunkDelay)
		}
		b = event(b, `[{"index":0,"delta":{"content":"`, p, `"},"logprobs":null,"finish_reason":null}]`)
		if !send(b) {
			return
		}
	}
	b = event(b, `[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]`, nil, "")
	if !send(b) {
		return
	}
	if usage {
		b = append(b[:0], `data: {"id":"chatcmpl-bench`...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, `","object":"chat.completion.chunk","created":`...)
		b = strconv.AppendInt(b, created, 10)
		b = append(b, `,"model":"`...)
		b = append(b, model...)
		b = append(b, `","system_fingerprint":"fp_sluice_bench","choices":[],`...)
		b = m.appendUsage(b, promptTk)
		b = append(b, "}\n\n"...)
		if !send(b) {
			return
		}
	}
	b = append(b[:0], "data: [DONE]\n\n"...)
	send(b)
	*bp = b[:0]
}

func (m *Mock) appendUsage(b []byte, promptTk int) []byte {
	b = append(b, `"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(promptTk), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(m.compTk), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(promptTk+m.compTk), 10)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}`...)
	return b
}

// readAll reads r to the end into b, growing it as needed.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return b, nil
			}
			return b, err
		}
	}
}

// jsonField returns the raw value of a top-level-looking member "name": in body (the first
// occurrence, which is enough for the requests the load generator and proxies send), or nil.
func jsonField(body []byte, name string) []byte {
	var key [32]byte
	k := append(key[:0], '"')
	k = append(k, name...)
	k = append(k, '"')
	for off := 0; ; {
		i := bytes.Index(body[off:], k)
		if i < 0 {
			return nil
		}
		j := off + i + len(k)
		for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
			j++
		}
		if j >= len(body) || body[j] != ':' {
			off = off + i + 1
			continue
		}
		j++
		for j < len(body) && (body[j] == ' ' || body[j] == '\t' || body[j] == '\n' || body[j] == '\r') {
			j++
		}
		start := j
		if j < len(body) && body[j] == '"' {
			j++
			for j < len(body) && body[j] != '"' {
				if body[j] == '\\' {
					j++
				}
				j++
			}
			return body[start:min(j+1, len(body))]
		}
		for j < len(body) && body[j] != ',' && body[j] != '}' && body[j] != ' ' && body[j] != ']' {
			j++
		}
		return body[start:j]
	}
}
