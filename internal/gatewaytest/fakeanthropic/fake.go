// Package fakeanthropic is a fake of Anthropic's Messages API for tests: an http.Handler
// (and, with Start, an httptest server) that checks every request the way the real API
// does and answers deterministically, so tests can tell exactly what reached Anthropic
// and what it said.
//
// It serves:
//
//   - POST /v1/messages: a whole message (application/json), or with "stream": true the
//     event stream (message_start, content_block_start/ping/delta/stop for each block,
//     message_delta with stop_reason and usage, message_stop).
//   - POST /v1/messages/count_tokens: {"input_tokens": N}.
//   - Claude on Vertex AI: POST /v1/projects/P/locations/L/publishers/anthropic/models/M:rawPredict
//     and :streamRawPredict, whose body has no model and has anthropic_version
//     "vertex-2023-10-16".
//
// What it checks, as the real API does: the credential (x-api-key equal to
// Options.APIKey, else 401 authentication_error; on Vertex, Authorization: Bearer
// Options.VertexToken, else a Google 401), the anthropic-version header (not on Vertex),
// a JSON body with no unknown top-level members, model, max_tokens, messages that start
// with user and alternate, non-empty text blocks, tool_result blocks that answer the
// previous turn's tool_use blocks (and come first in their turn), tools and tool_choice.
// Errors are Anthropic's error JSON ({"type":"error","error":{"type","message"}}).
//
// Answers: the text is AnswerText of the last user message's text (or, when that
// message holds tool results, "The tool returned: " and their text). When the request
// has tools and tool_choice allows it, and either tool_choice forces a tool or the last
// user message mentions "weather", the answer is a short text block and a tool_use
// block (stop_reason tool_use) whose input fills the tool's schema (a location from
// "... in Paris" for location/city properties). Usage counts whitespace-separated words:
// input_tokens over the system prompt, tools and messages (count_tokens gives the same
// number), output_tokens over the answer's text and tool input. max_tokens truncates the
// answer (stop_reason max_tokens) and stop_sequences cut it (stop_reason stop_sequence).
//
// Every request is recorded (method, path, headers, body, and the answer given) for
// assertions; FailNext makes the next requests fail with a chosen status.
package fakeanthropic

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// VertexVersion is the anthropic_version Claude on Vertex requires in the body.
const VertexVersion = "vertex-2023-10-16"

// Versions are the anthropic-version header values the fake accepts.
var Versions = []string{"2023-06-01", "2023-01-01"}

// Options configure a Fake.
type Options struct {
	// APIKey is the x-api-key every /v1/messages request must carry.
	APIKey string
	// VertexToken is the bearer token every Vertex request must carry.
	VertexToken string
	// Project and Location, when set, are the only ones Vertex paths may name.
	Project, Location string
	// Models, when set, are the only model names accepted (else 404 not_found_error).
	// When empty, any name starting with "claude" is accepted.
	Models []string
}

// Failure is an error answer served instead of a message (after the credential check).
type Failure struct {
	Status  int
	Type    string // Anthropic error type, e.g. rate_limit_error, overloaded_error
	Message string
	Header  http.Header // e.g. Retry-After
}

// Request is one request the fake received, and what it answered.
type Request struct {
	Method   string
	Path     string // the URL path, as received (escaped form)
	RawQuery string
	Header   http.Header
	Body     []byte
	// Vertex reports whether the request came in on a Vertex path; Model is the model
	// from the body or, on Vertex, from the path.
	Vertex bool
	Model  string
	// Status is the status answered. For a message answered with 2xx, Answer is set.
	Status int
	Answer *Answer
	// Response is the whole body answered (the raw event stream when streamed).
	Response []byte
}

// Answer is what the fake answered to a message request.
type Answer struct {
	ID           string
	Model        string
	Stream       bool
	Text         string          // the text block ("" when none)
	ToolUseID    string          // the tool_use block's id ("" when none)
	ToolName     string          // the tool_use block's name
	ToolInput    json.RawMessage // compact JSON object
	StopReason   string
	StopSequence string
	InputTokens  int64
	OutputTokens int64
}

// Fake is the fake API. Its zero value is not usable: build it with New or Start.
type Fake struct {
	// URL is the server's base URL when started with Start.
	URL    string
	Server *httptest.Server

	opts     Options
	mu       sync.Mutex
	requests []Request
	failures []Failure
}

// New returns a Fake for o; serve it with any http.Server.
func New(o Options) *Fake { return &Fake{opts: o} }

// Start serves a new Fake on a local httptest server closed when the test ends.
func Start(t testing.TB, o Options) *Fake {
	f := New(o)
	f.Server = httptest.NewServer(f)
	f.URL = f.Server.URL
	t.Cleanup(f.Server.Close)
	return f
}

// FailNext makes the next len(fs) requests that pass the credential check fail, in
// order, with fs.
func (f *Fake) FailNext(fs ...Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fs...)
}

// Requests returns every request received so far, in order.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// Len is the number of requests received so far.
func (f *Fake) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

// Last returns the last request received; it fails the test if there was none.
func (f *Fake) Last(t testing.TB) Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("fakeanthropic: no request received")
	}
	return f.requests[len(f.requests)-1]
}

// ServeHTTP implements http.Handler. The answer is decided and recorded before any of
// it is sent, so a test that has its answer finds the request recorded.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Request{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
	resp := &response{status: http.StatusOK, header: http.Header{}}
	f.serve(resp, r, body, &rec)
	rec.Status = resp.status
	rec.Response = bytes.Join(resp.parts, nil)
	f.mu.Lock()
	f.requests = append(f.requests, rec)
	f.mu.Unlock()

	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.status)
	fl, _ := w.(http.Flusher)
	for _, p := range resp.parts {
		w.Write(p)
		if fl != nil && len(resp.parts) > 1 {
			fl.Flush() // one event at a time
		}
	}
}

// response is an answer built before it is sent: a whole body, or stream events.
type response struct {
	status int
	header http.Header
	parts  [][]byte
}

func (r *response) Header() http.Header  { return r.header }
func (r *response) WriteHeader(code int) { r.status = code }
func (r *response) Write(b []byte) (int, error) {
	r.parts = append(r.parts, bytes.Clone(b))
	return len(b), nil
}

// apiError is an error answer; writeError renders it in Anthropic's shape, or in
// Google's for credential failures on Vertex paths.
type apiError struct {
	status  int
	typ     string
	message string
	header  http.Header
}

func invalid(format string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", message: format}
}

func requestID(body []byte) string {
	sum := sha256.Sum256(body)
	return "req_" + hex.EncodeToString(sum[:12])
}

func (f *Fake) writeError(w *response, e *apiError, vertex bool, body []byte) {
	for k, v := range e.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	id := requestID(body)
	var b []byte
	if vertex && (e.status == http.StatusUnauthorized || e.status == http.StatusForbidden) {
		// Google's front end answers credential failures before Anthropic sees them.
		status := "UNAUTHENTICATED"
		if e.status == http.StatusForbidden {
			status = "PERMISSION_DENIED"
		}
		b, _ = json.Marshal(map[string]any{"error": map[string]any{"code": e.status, "message": e.message, "status": status}})
	} else {
		w.Header().Set("Request-Id", id)
		b, _ = json.Marshal(map[string]any{
			"type":       "error",
			"error":      map[string]string{"type": e.typ, "message": e.message},
			"request_id": id,
		})
	}
	w.WriteHeader(e.status)
	w.Write(b)
}

// vertexPath parses /v1/projects/P/locations/L/publishers/anthropic/models/M:METHOD.
func vertexPath(p string) (project, location, model, method string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v1/projects/")
	if !found {
		return
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 7 || parts[1] != "locations" || parts[3] != "publishers" || parts[4] != "anthropic" || parts[5] != "models" {
		return
	}
	last, err := url.PathUnescape(parts[6])
	if err != nil {
		return
	}
	i := strings.LastIndexByte(last, ':')
	if i <= 0 {
		return
	}
	project, _ = url.PathUnescape(parts[0])
	location, _ = url.PathUnescape(parts[2])
	return project, location, last[:i], last[i+1:], true
}

func (f *Fake) serve(w *response, r *http.Request, body []byte, rec *Request) {
	var (
		vertex      bool
		vertexModel string
		stream      bool // decided by the path on Vertex
		count       bool
	)
	path := r.URL.EscapedPath()
	switch {
	case path == "/v1/messages":
	case path == "/v1/messages/count_tokens":
		count = true
	default:
		project, location, model, method, ok := vertexPath(path)
		if !ok || (method != "rawPredict" && method != "streamRawPredict") {
			f.writeError(w, &apiError{status: http.StatusNotFound, typ: "not_found_error", message: "Not Found"}, false, body)
			return
		}
		vertex, vertexModel, stream = true, model, method == "streamRawPredict"
		rec.Vertex, rec.Model = true, model
		if (f.opts.Project != "" && project != f.opts.Project) || (f.opts.Location != "" && location != f.opts.Location) {
			f.writeError(w, &apiError{status: http.StatusNotFound, typ: "not_found_error", message: "Publisher model projects/" + project + "/locations/" + location + "/publishers/anthropic/models/" + model + " was not found."}, true, body)
			return
		}
	}
	if r.Method != http.MethodPost {
		f.writeError(w, &apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error", message: "Method Not Allowed"}, vertex, body)
		return
	}
	// The credential first, as the real front ends do.
	if vertex {
		if r.Header.Get("Authorization") != "Bearer "+f.opts.VertexToken || f.opts.VertexToken == "" {
			f.writeError(w, &apiError{status: http.StatusUnauthorized, message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}, true, body)
			return
		}
	} else {
		switch key := r.Header.Get("X-Api-Key"); {
		case key == "":
			f.writeError(w, &apiError{status: http.StatusUnauthorized, typ: "authentication_error", message: "x-api-key header is required"}, false, body)
			return
		case key != f.opts.APIKey:
			f.writeError(w, &apiError{status: http.StatusUnauthorized, typ: "authentication_error", message: "invalid x-api-key"}, false, body)
			return
		}
		switch v := r.Header.Get("Anthropic-Version"); {
		case v == "":
			f.writeError(w, invalid("anthropic-version: header is required"), false, body)
			return
		case !slices.Contains(Versions, v):
			f.writeError(w, invalid("anthropic-version: invalid version "+v), false, body)
			return
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.writeError(w, invalid("Content-Type must be application/json"), vertex, body)
		return
	}
	f.mu.Lock()
	var fail *Failure
	if len(f.failures) > 0 {
		fail = &f.failures[0]
		f.failures = f.failures[1:]
	}
	f.mu.Unlock()
	if fail != nil {
		f.writeError(w, &apiError{status: fail.Status, typ: fail.Type, message: fail.Message, header: fail.Header}, vertex, body)
		return
	}

	req, aerr := f.parse(body, vertex, count)
	if aerr != nil {
		f.writeError(w, aerr, vertex, body)
		return
	}
	if vertex {
		req.Model = vertexModel
		if stream && !req.Stream {
			f.writeError(w, invalid("stream: streamRawPredict requires \"stream\": true"), true, body)
			return
		}
	}
	rec.Model = req.Model
	if !f.modelKnown(req.Model) {
		f.writeError(w, &apiError{status: http.StatusNotFound, typ: "not_found_error", message: "model: " + req.Model}, vertex, body)
		return
	}
	if count {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", requestID(body))
		b, _ := json.Marshal(map[string]int64{"input_tokens": req.inputTokens()})
		w.Write(b)
		return
	}
	a := answer(req, body)
	rec.Answer = a
	w.Header().Set("Request-Id", requestID(body))
	if req.Stream {
		writeStream(w, a)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(a.message())
}

func (f *Fake) modelKnown(m string) bool {
	if len(f.opts.Models) > 0 {
		return slices.Contains(f.opts.Models, m)
	}
	return strings.HasPrefix(m, "claude")
}
