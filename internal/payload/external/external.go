package external

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sluice-gateway/sluice/internal/egress"
)

// Protocol names accepted in Config.Protocol (case-insensitively).
const (
	ProtocolExtProc = "ExtProc"
	ProtocolHTTP    = "HTTP"
)

var (
	// ErrClosed is returned by calls on a closed Client or Session.
	ErrClosed = errors.New("external processor: closed")
	// ErrProtocol marks an answer that breaks the protocol (wrong phase, bad mutation, bad JSON).
	ErrProtocol = errors.New("protocol error")
)

// Config describes one external processor.
type Config struct {
	Protocol string      // "ExtProc" (Envoy ext_proc gRPC) or "HTTP" (JSON webhook)
	Address  string      // ExtProc: host:port. HTTP: full URL (http:// or https://)
	TLS      *tls.Config // nil: plaintext (gRPC without TLS / plain http URL); set: TLS
	Header   http.Header // extra headers sent on every call (e.g. a webhook's Authorization); never logged
}

// Info says whose request this is; it is sent to the processor (as ext_proc attributes /
// webhook fields).
type Info struct {
	RequestID, Subject, Team, Model, Endpoint, Route string
}

// Client is one configured processor. It is safe for concurrent use; its connections are
// pooled and shared by all its Sessions.
type Client interface {
	// Open starts processing one HTTP exchange (for ExtProc: one bidirectional gRPC stream).
	Open(ctx context.Context, info Info) (Session, error)
	Close() error
}

// Session processes one HTTP exchange. Its phase calls are made one at a time, in exchange
// order; Close may be called at any time, from any goroutine.
type Session interface {
	RequestHeaders(ctx context.Context, h http.Header, method, path string) (Result, error)
	RequestBody(ctx context.Context, body []byte) (Result, error)                   // the whole body, end of stream
	ResponseHeaders(ctx context.Context, status int, h http.Header) (Result, error) // the answer's status and headers
	ResponseBody(ctx context.Context, chunk []byte, end bool) (Result, error)       // once with end=true for a whole answer, or per streamed chunk (SSE event bytes)
	Close()                                                                         // ends the stream/session; idempotent; must not leak goroutines
}

// Result is what a processor asks for after one phase. The zero Result passes through.
// SetHeaders and RemoveHeaders never name the same header, and names are canonical
// (textproto.CanonicalMIMEHeaderKey), so they can be applied to an http.Header in any order.
type Result struct {
	SetHeaders    [][2]string // name, value (set = overwrite)
	RemoveHeaders []string
	Body          []byte     // non-nil: replace the body (or this chunk) with these bytes (empty non-nil slice = clear)
	Immediate     *Immediate // non-nil: stop processing and answer the client with this
}

// Immediate is an answer the processor wants sent to the client instead of the exchange's.
type Immediate struct {
	Status  int
	Header  [][2]string
	Body    []byte // nil: the processor gave none; the caller builds its own
	Details string // ext_proc's details / webhook's reason: for logs, not for the client
}

// New validates cfg and builds its Client. It does not connect: connections are made on
// first use and then reused.
func New(cfg Config) (Client, error) {
	for name, values := range cfg.Header {
		// Names only in errors: values are the processor's credentials.
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("external processor: invalid header name %q", name)
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("external processor: invalid value for header %q", name)
			}
		}
	}
	switch {
	case strings.EqualFold(cfg.Protocol, ProtocolExtProc):
		return newExtProc(cfg)
	case strings.EqualFold(cfg.Protocol, ProtocolHTTP):
		return newWebhook(cfg)
	}
	return nil, fmt.Errorf("external processor: unknown protocol %q (want %q or %q)", cfg.Protocol, ProtocolExtProc, ProtocolHTTP)
}

// clientTLS copies the operator's TLS config and raises its floor to TLS 1.2.
func clientTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c = c.Clone()
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// extraCredentialHeaders complements egress.CredentialHeaders: Set-Cookie carries a session
// credential on the way back.
var extraCredentialHeaders = [...]string{"Authorization", "Proxy-Authorization", "X-Api-Key", "Api-Key", "Cookie", "Set-Cookie"}

// isCredentialHeader reports whether a canonical header name carries a credential.
func isCredentialHeader(canonical string) bool {
	for _, h := range extraCredentialHeaders {
		if h == canonical {
			return true
		}
	}
	return egress.IsCredentialHeader(canonical)
}

// forwardable reports whether header name may be shown to a processor. Host travels as
// :authority, and pseudo-headers are built by the Session, never copied.
func forwardable(name string) bool {
	if strings.HasPrefix(name, ":") {
		return false
	}
	c := textproto.CanonicalMIMEHeaderKey(name)
	return c != "Host" && !isCredentialHeader(c)
}

// mutable reports whether a processor may set or remove header name (canonical): Envoy's
// default mutation rules ignore changes to routing headers.
func mutable(canonical string) bool {
	return !strings.HasPrefix(canonical, ":") && canonical != "Host"
}

// headerEdit accumulates header mutations against a view of the current headers and
// flattens them into a Result's SetHeaders / RemoveHeaders.
type headerEdit struct {
	base    http.Header         // headers before this mutation (canonical keys); read only
	set     map[string][]string // names set by this mutation, with their resulting values
	order   []string            // set names, first-touched order
	removed []string            // names removed by this mutation
}

func (e *headerEdit) get(name string) []string {
	if v, ok := e.set[name]; ok {
		return v
	}
	for _, r := range e.removed {
		if r == name {
			return nil
		}
	}
	return e.base[name]
}

func (e *headerEdit) remove(name string) {
	if _, ok := e.set[name]; ok {
		delete(e.set, name)
		for i, n := range e.order {
			if n == name {
				e.order = append(e.order[:i], e.order[i+1:]...)
				break
			}
		}
	}
	for _, r := range e.removed {
		if r == name {
			return
		}
	}
	e.removed = append(e.removed, name)
}

func (e *headerEdit) put(name string, values []string) {
	if e.set == nil {
		e.set = make(map[string][]string)
	}
	if _, ok := e.set[name]; !ok {
		e.order = append(e.order, name)
	}
	e.set[name] = values
}

// result writes the flattened edit into r and applies it to view (when non-nil), so later
// phases judge conditional mutations against the headers as they now are.
func (e *headerEdit) result(r *Result, view http.Header) {
	for _, name := range e.order {
		v := strings.Join(e.set[name], ", ")
		r.SetHeaders = append(r.SetHeaders, [2]string{name, v})
		if view != nil {
			view[name] = []string{v}
		}
	}
	for _, name := range e.removed {
		if _, ok := e.set[name]; ok {
			continue // removed, then set again: the set wins
		}
		r.RemoveHeaders = append(r.RemoveHeaders, name)
		if view != nil {
			delete(view, name)
		}
	}
}

// canonicalView copies h with canonical keys, as a base for conditional mutations.
func canonicalView(h http.Header) http.Header {
	v := make(http.Header, len(h))
	for k, vs := range h {
		c := textproto.CanonicalMIMEHeaderKey(k)
		v[c] = append(v[c], vs...)
	}
	return v
}
