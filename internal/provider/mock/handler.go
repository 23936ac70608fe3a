// Package mock is Sluice's in-process Mock backend: an http.Handler that speaks the
// OpenAI REST wire format with deterministic answers, and an http.RoundTripper that
// calls a handler directly. It lets the quickstart run with no keys and no network,
// and gives tests and benchmarks an upstream whose answers and usage are exact.
package mock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
)

const (
	defaultChunks = 8
	// maxBody bounds what one request may make the mock buffer.
	maxBody = 16 << 20
	ownedBy = "sluice-mock"
)

type handler struct {
	latency time.Duration
	tps     int
	chunks  int
	models  []string
	answers answerCache
}

// NewHandler returns the Mock backend for spec. models are the ids GET /v1/models
// lists; the other endpoints answer for any model name.
//
// It serves, relative to a base URL ending in /v1 (and also without the /v1 prefix):
// POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings,
// GET /v1/models and GET /v1/models/{id}.
func NewHandler(spec v1alpha1.MockSpec, models []string) http.Handler {
	h := &handler{
		tps:    int(max(spec.TokensPerSecond, 0)),
		chunks: int(spec.Chunks),
		models: append([]string(nil), models...),
	}
	if spec.Latency != nil && spec.Latency.Duration > 0 {
		h.latency = spec.Latency.Duration
	}
	if h.chunks <= 0 {
		h.chunks = defaultChunks
	}
	return h
}

// reply writes a successful answer; it runs after the latency wait.
type reply func(w http.ResponseWriter, ctx context.Context)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep, aerr := h.route(r)
	if !wait(r.Context(), h.latency) {
		return
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	rep(w, r.Context())
}

func (h *handler) route(r *http.Request) (reply, *apiError) {
	path := r.URL.Path
	if p, ok := strings.CutPrefix(path, "/v1"); ok && strings.HasPrefix(p, "/") {
		path = p
	}
	var endpoint func(body []byte) (reply, *apiError)
	method := http.MethodPost
	switch path {
	case "/chat/completions":
		endpoint = h.chat
	case "/completions":
		endpoint = h.completions
	case "/embeddings":
		endpoint = h.embeddings
	case "/models":
		method, endpoint = http.MethodGet, h.listModels
	default:
		id, ok := strings.CutPrefix(path, "/models/")
		if !ok || id == "" {
			return nil, &apiError{status: http.StatusNotFound,
				Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)}
		}
		method, endpoint = http.MethodGet, func([]byte) (reply, *apiError) { return h.getModel(id) }
	}
	if r.Method != method {
		return nil, &apiError{status: http.StatusMethodNotAllowed,
			Message: fmt.Sprintf("Invalid method for URL (%s %s)", r.Method, r.URL.Path)}
	}
	var body []byte
	if method == http.MethodPost {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, &apiError{status: http.StatusRequestEntityTooLarge,
					Message: fmt.Sprintf("Request body exceeds the mock backend's limit of %d bytes.", maxBody)}
			}
			return nil, &apiError{Message: "Could not read the request body: " + err.Error()}
		}
	}
	return endpoint(body)
}

// wait blocks for d or until ctx ends, and reports whether the wait ran its course.
// A timer, unlike time.Sleep, lets a cancelled client stop the handler at once.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// apiError is OpenAI's error object; status 0 means 400.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func badParam(param, code, format string, args ...any) *apiError {
	e := &apiError{Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	if code != "" {
		e.Code = &code
	}
	return e
}

// decodeError turns a JSON decoding failure into the 400 OpenAI returns for it,
// naming the offending field when the decoder knows it.
func decodeError(err error) *apiError {
	if ute, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && ute.Field != "" {
		return badParam(ute.Field, "invalid_type", "Invalid type for '%s': expected %s, but got %s instead.", ute.Field, jsonKind(ute.Type), ute.Value)
	}
	return badParam("", "", "We could not parse the JSON body of your request (%v). The OpenAI API expects a JSON payload.", err)
}

// jsonKind names the JSON type a Go type decodes from, so errors do not leak Go names.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "a number"
	}
}

func writeError(w http.ResponseWriter, e *apiError) {
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if e.Type == "" {
		e.Type = "invalid_request_error"
	}
	writeJSON(w, status, struct {
		Error *apiError `json:"error"`
	}{e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b := marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal encodes v as compact JSON without escaping <, > and &, as OpenAI does.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value marshalled here is built from plain strings and numbers.
		panic("mock: marshal: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// identity derives a response id and creation time from what decides the answer
// (endpoint, model, prompts, token limit), so the same request always gets the same
// bytes back, also when a gateway in between adds fields such as stream_options.
func identity(prefix, endpoint, model string, prompts []string, limit int) (id string, created int64) {
	h := sha256.New()
	field := func(s string) {
		h.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(s))))
		io.WriteString(h, s)
	}
	field(endpoint)
	field(model)
	for _, p := range prompts {
		field(p)
	}
	h.Write(binary.LittleEndian.AppendUint64(nil, uint64(limit)))
	sum := h.Sum(nil)
	// A fixed epoch (2025-01-01) plus up to a year looks like a real timestamp.
	created = 1735689600 + int64(binary.BigEndian.Uint32(sum[12:16])%(365*24*3600))
	return prefix + hex.EncodeToString(sum[:12]), created
}

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (h *handler) listModels([]byte) (reply, *apiError) {
	data := make([]model, len(h.models))
	for i, id := range h.models {
		data[i] = model{ID: id, Object: "model", OwnedBy: ownedBy}
	}
	return func(w http.ResponseWriter, _ context.Context) {
		writeJSON(w, http.StatusOK, struct {
			Object string  `json:"object"`
			Data   []model `json:"data"`
		}{"list", data})
	}, nil
}

func (h *handler) getModel(id string) (reply, *apiError) {
	for _, m := range h.models {
		if m == id {
			return func(w http.ResponseWriter, _ context.Context) {
				writeJSON(w, http.StatusOK, model{ID: id, Object: "model", OwnedBy: ownedBy})
			}, nil
		}
	}
	e := badParam("model", "model_not_found", "The model '%s' does not exist", id)
	e.status = http.StatusNotFound
	return nil, e
}
