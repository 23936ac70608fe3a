package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/route"
	"github.com/sluice-gateway/sluice/internal/sse"
)

// Header names of the Streamable HTTP transport.
const (
	HeaderSession  = "Mcp-Session-Id"
	HeaderProtocol = "Mcp-Protocol-Version"
)

// Server is one MCP server behind a route: a Backend with protocol MCP.
type Server struct {
	// Ref is the Backend's ref; Name its name (logs, metrics).
	Ref, Name string
	// Prefix is put before the server's tool and prompt names.
	Prefix string
	// Include and Exclude select tools by unprefixed name (globs); Include nil: all.
	Include, Exclude []string
	// URL is the server's Streamable HTTP endpoint.
	URL string
	// Upstream is the Backend's way out (TLS policy, credential, concurrency).
	Upstream *egress.Upstream
}

// Exposes reports whether the route shows the server's tool (unprefixed name).
func (s *Server) Exposes(tool string) bool {
	if s.Include != nil && !route.MatchAny(s.Include, tool) {
		return false
	}
	return !route.MatchAny(s.Exclude, tool)
}

// ErrSessionGone is a server's 404 to a request in a session: the server no longer knows
// it (restarted, expired), so the client must initialize again.
var ErrSessionGone = errors.New("the MCP server no longer knows the session")

// StatusError is a server's HTTP refusal.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("MCP server answered HTTP %d: %s", e.Status, e.Body)
}

// Do sends one HTTP request to the server in session ss (nil: none yet). body may be nil
// (GET, DELETE). A non-2xx answer is returned as an error (ErrSessionGone for 404 in a
// session) with its body closed.
func (s *Server) Do(ctx context.Context, method string, ss *ServerSession, body []byte, requestID string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL, rd)
	if err != nil {
		return nil, err
	}
	h := req.Header
	if body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	switch method {
	case http.MethodPost:
		h["Accept"] = []string{"application/json, text/event-stream"}
	case http.MethodGet:
		h["Accept"] = []string{"text/event-stream"}
	}
	if ss != nil {
		if ss.ID != "" {
			h[HeaderSession] = []string{ss.ID}
		}
		if ss.Protocol != "" {
			h[HeaderProtocol] = []string{ss.Protocol}
		}
	}
	if requestID != "" {
		h["X-Request-Id"] = []string{requestID}
	}
	resp, err := s.Upstream.Transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound && ss != nil && ss.ID != "" {
		return nil, ErrSessionGone
	}
	return nil, &StatusError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(msg))}
}

// MaxMessageBytes bounds one message from a server.
const MaxMessageBytes = 16 << 20

// Reader reads the JSON-RPC messages of a server's answer: one for application/json,
// one per event for text/event-stream.
type Reader struct {
	body   io.ReadCloser
	events *sse.Reader
	buf    *[]byte
	done   bool
}

// eventBuffers are the event readers' buffers, reused across answers.
var eventBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// NewReader reads resp's messages; Close closes its body.
func NewReader(resp *http.Response) *Reader {
	r := &Reader{body: resp.Body}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "text/event-stream" {
		r.buf = eventBuffers.Get().(*[]byte)
		r.events = sse.NewReader(resp.Body, *r.buf)
	}
	return r
}

// Streaming reports whether the answer is an event stream.
func (r *Reader) Streaming() bool { return r.events != nil }

// Next returns the next message (valid until the next call), or io.EOF.
func (r *Reader) Next() ([]byte, error) {
	if r.events == nil {
		if r.done {
			return nil, io.EOF
		}
		r.done = true
		b, err := io.ReadAll(io.LimitReader(r.body, MaxMessageBytes+1))
		if err != nil {
			return nil, err
		}
		if len(b) > MaxMessageBytes {
			return nil, errors.New("MCP server message too large")
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, io.EOF // 202 Accepted and friends
		}
		return b, nil
	}
	for {
		ev, err := r.events.Next()
		if err != nil {
			return nil, err
		}
		if ev.HasData && len(bytes.TrimSpace(ev.Data)) > 0 {
			return ev.Data, nil
		}
	}
}

// Close closes the answer's body. Messages returned before are no longer valid.
func (r *Reader) Close() error {
	if r.buf != nil {
		eventBuffers.Put(r.buf)
		r.buf, r.events = nil, nil
	}
	return r.body.Close()
}

// Call sends a request and returns the server's response to it, skipping what the
// server sends before it (notifications, and requests, which a gateway-made call cannot
// answer). The response's id is the request's.
func (s *Server) Call(ctx context.Context, ss *ServerSession, id json.RawMessage, method string, params json.RawMessage, requestID string) (*Message, *http.Response, error) {
	resp, err := s.Do(ctx, http.MethodPost, ss, Request(id, method, params), requestID)
	if err != nil {
		return nil, nil, err
	}
	rd := NewReader(resp)
	defer rd.Close()
	for {
		raw, err := rd.Next()
		if err == io.EOF {
			return nil, resp, errors.New("MCP server ended its answer without a response")
		}
		if err != nil {
			return nil, resp, err
		}
		m, err := Parse(raw)
		if err != nil {
			return nil, resp, fmt.Errorf("MCP server sent an invalid message: %w", err)
		}
		if m.IsRequest() {
			// The gateway made this call and has no client to ask: refuse at once, so the
			// server does not wait for an answer that never comes.
			refusal := Response(bytes.Clone(m.ID), nil, json.RawMessage(`{"code":`+strconv.Itoa(apierr.RPCMethodNotFound)+`,"message":"The gateway cannot relay requests to the client during this call."}`))
			go func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				s.Notify(ctx, ss, refusal, requestID)
			}()
			continue
		}
		if m.IsResponse() && bytes.Equal(m.ID, id) {
			m.Result = bytes.Clone(m.Result)
			m.Error = bytes.Clone(m.Error)
			m.ID = bytes.Clone(m.ID)
			m.Params = nil
			return m, resp, nil
		}
	}
}

// Notify sends a notification and drains the answer (202 Accepted, usually).
func (s *Server) Notify(ctx context.Context, ss *ServerSession, msg []byte, requestID string) error {
	resp, err := s.Do(ctx, http.MethodPost, ss, msg, requestID)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.Body.Close()
}
