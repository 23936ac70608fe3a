// Package fakecloud holds fakes of the cloud model APIs the gateway talks to: Gemini on
// Vertex AI (with a Google OAuth2 token endpoint), Amazon Bedrock's Converse API, and Azure
// OpenAI (with an Entra ID token endpoint). Each fake is an httptest.Server that answers as
// the real API is documented to, and checks the wire as strictly as the real one would:
// the credential (a minted OAuth token, a SigV4 signature recomputed with the AWS SDK's
// signer, an api-key), the URL, and the request body, whose unknown members are refused.
//
// Answers are deterministic: text, or a tool call when the request declares tools and the
// last user turn asks about the weather, with usage counted in words. Every request is
// recorded with what was answered (status, text, tool calls, the usage object reported),
// recorded before the answer is written, so a test that has its answer can read it.
//
// Test code only.
package fakecloud

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Request is one request a fake received, with what it answered.
type Request struct {
	Method     string
	RequestURI string // as received, escaping and query included
	Path       string // decoded
	Query      url.Values
	Header     http.Header
	Body       []byte
	// Model is the model id, or the Azure deployment, the path names ("" if none).
	Model  string
	Stream bool

	// Status is the HTTP status answered.
	Status int
	// Rejected says why the fake refused the request as the real API would (a bad
	// credential, a malformed body); "" when it was served, injected faults included.
	Rejected string
	// Answer is the text answered; Calls the tool calls.
	Answer string
	Calls  []Call
	// Usage is the usage object reported, as sent (usageMetadata for Vertex, usage for
	// Bedrock and Azure); nil when none was.
	Usage json.RawMessage
}

// Call is a tool call the fake answered with.
type Call struct {
	ID   string
	Name string
	Args json.RawMessage // a JSON object
}

// Fault is an error a fake answers with instead of serving a request (after checking its
// credential and wire).
type Fault struct {
	Status int
	// Type is the provider's error type: a Google status (PERMISSION_DENIED), an AWS
	// exception (ThrottlingException), an Azure error code.
	Type    string
	Message string
	// RetryAfter, when set, is sent as Retry-After.
	RetryAfter string
	// InStream makes a streamed request start its answer and fail inside the stream (an
	// exception event, an error event) instead of with an HTTP status.
	InStream bool
}

// recorder keeps the requests a fake received.
type recorder struct {
	mu   sync.Mutex
	reqs []Request
}

// Requests returns a copy of every request received so far, in order.
func (r *recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Last returns the last request received; ok is false when there was none.
func (r *recorder) Last() (req Request, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return Request{}, false
	}
	return r.reqs[len(r.reqs)-1], true
}

// ByRequestID returns the requests that carried X-Request-Id id.
func (r *recorder) ByRequestID(id string) []Request {
	var out []Request
	for _, q := range r.Requests() {
		if q.Header.Get("X-Request-Id") == id {
			out = append(out, q)
		}
	}
	return out
}

func (r *recorder) add(q *Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, *q)
}

// newRequest reads r into a Request. A body that cannot be read is an empty one.
func newRequest(r *http.Request) *Request {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	return &Request{
		Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, Query: r.URL.Query(),
		Header: r.Header.Clone(), Body: body,
	}
}

// decodeStrict decodes one JSON value into v, refusing unknown members and trailing data,
// as Google's and AWS's JSON front ends do.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// words counts whitespace-separated words: the fakes' tokenizer.
func words(s string) int64 { return int64(len(strings.Fields(s))) }

// splitWords cuts s into n pieces at spaces (fewer when s has fewer words), so no piece
// splits a UTF-8 sequence and the pieces join back into s.
func splitWords(s string, n int) []string {
	var cuts []int
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' {
			cuts = append(cuts, i)
		}
	}
	if n < 1 {
		n = 1
	}
	var out []string
	start := 0
	for k := 1; k < n && len(cuts) > 0; k++ {
		c := cuts[(k*len(cuts))/n]
		if c <= start {
			continue
		}
		out = append(out, s[start:c])
		start = c
	}
	return append(out, s[start:])
}

// splitBytes cuts s into pieces of at most n bytes, at UTF-8 boundaries.
func splitBytes(s string, n int) []string {
	var out []string
	for len(s) > n {
		i := n
		for i > 0 && s[i]&0xC0 == 0x80 {
			i--
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return append(out, s)
}

func isBase64(s string) bool {
	_, err := base64.StdEncoding.DecodeString(s)
	return err == nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// The answers. They hold what a pipeline could get wrong: quotes, a backslash, a line
// break, HTML-significant characters and text outside ASCII.
const (
	geminiAnswer  = `Gemini on Vertex says: a gateway "routes" requests <to> models & back \ line one` + "\n" + `line two — ünïcödé 🚀 done.`
	bedrockAnswer = `Claude on Bedrock says: a gateway "routes" requests <to> models & back \ line one` + "\n" + `line two — ünïcödé 🚀 done.`
	toolPreamble  = "Let me look that up."
)

// wantsTool reports whether a user's text asks for a tool: it names the tool's topic (the
// name without "get_": "weather" for get_weather).
func wantsTool(text, name string) bool {
	topic := strings.TrimPrefix(strings.ToLower(name), "get_")
	return topic != "" && strings.Contains(strings.ToLower(text), topic)
}

// chooseTools picks the tools to call, in declaration order: the one forced if set, else
// those the text asks for, else the first when a call is required. None means the answer
// is text.
func chooseTools(names []string, text, forced string, required bool) []int {
	if forced != "" {
		for i, n := range names {
			if n == forced {
				return []int{i}
			}
		}
		return nil
	}
	var out []int
	for i, n := range names {
		if wantsTool(text, n) {
			out = append(out, i)
		}
	}
	if len(out) == 0 && required && len(names) > 0 {
		out = []int{0}
	}
	return out
}

// argsFor builds a tool call's arguments from the tool's JSON (or OpenAPI) schema: a value
// for every property, of its type: the first enum value, "Paris" for strings, 21 for
// numbers, true for booleans.
func argsFor(schema json.RawMessage) json.RawMessage {
	var s struct {
		Properties map[string]struct {
			Type any      `json:"type"`
			Enum []string `json:"enum"`
		} `json:"properties"`
		PropertyOrdering []string `json:"propertyOrdering"`
	}
	json.Unmarshal(schema, &s)
	args := map[string]any{}
	for name, p := range s.Properties {
		typ, _ := p.Type.(string)
		if list, ok := p.Type.([]any); ok && len(list) > 0 {
			typ, _ = list[0].(string)
		}
		switch {
		case len(p.Enum) > 0:
			args[name] = p.Enum[0]
		case strings.EqualFold(typ, "string"):
			args[name] = "Paris"
		case strings.EqualFold(typ, "number"), strings.EqualFold(typ, "integer"):
			args[name] = 21
		case strings.EqualFold(typ, "boolean"):
			args[name] = true
		}
	}
	return mustJSON(args) // encoding/json sorts the keys: deterministic
}
