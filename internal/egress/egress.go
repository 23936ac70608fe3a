// Package egress owns the connections that leave the gateway: one pooled transport per
// Backend, its timeouts, its concurrency limit, and the credentials it injects. Every
// upstream request passes through an Upstream's RoundTripper, which removes any client
// credential before adding the Backend's own. It decides nothing about routing.
package egress

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Timeouts bound one upstream attempt.
type Timeouts struct {
	Connect   time.Duration
	FirstByte time.Duration
	Idle      time.Duration
}

// Upstream is one Backend's way out.
type Upstream struct {
	// BaseURL is built from the Backend alone.
	BaseURL   *url.URL
	Timeouts  Timeouts
	Transport http.RoundTripper
	slots     chan struct{}
	closeIdle func()
}

// Options configure NewUpstream.
type Options struct {
	BaseURL  *url.URL
	Timeouts Timeouts
	// MaxConcurrent caps requests in flight; 0 is unlimited.
	MaxConcurrent int
	// Credential, when set, is injected into every request.
	Credential *Credential
	// Base replaces the network transport (the Mock backend answers in-process).
	Base http.RoundTripper
}

// Credential is one header the gateway sets on every upstream request.
type Credential struct {
	Header string // canonical header name, e.g. Authorization
	Value  string // e.g. "Bearer sk-..."
}

// NewUpstream builds an Upstream.
func NewUpstream(o Options) *Upstream {
	u := &Upstream{BaseURL: o.BaseURL, Timeouts: o.Timeouts}
	base := o.Base
	if base == nil {
		t := NewTransport(o.Timeouts)
		base = t
		u.closeIdle = t.CloseIdleConnections
	}
	ct := &credentialTransport{base: base}
	if c := o.Credential; c != nil {
		ct.header, ct.value = http.CanonicalHeaderKey(c.Header), []string{c.Value}
	}
	u.Transport = ct
	if o.MaxConcurrent > 0 {
		u.slots = make(chan struct{}, o.MaxConcurrent)
	}
	return u
}

// NewTransport returns the pooled network transport of one Backend: TLS 1.2 at least,
// HTTP/2 where the upstream offers it, the connect and first-byte timeouts.
func NewTransport(t Timeouts) *http.Transport {
	d := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil, // the gateway connects only where a Backend says
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   t.Connect,
		ResponseHeaderTimeout: t.FirstByte,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// TryAcquire takes a concurrency slot; false means the Backend is full.
func (u *Upstream) TryAcquire() bool {
	if u.slots == nil {
		return true
	}
	select {
	case u.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// Release returns a slot taken by TryAcquire.
func (u *Upstream) Release() {
	if u.slots != nil {
		<-u.slots
	}
}

// CloseIdle closes pooled idle connections; used when a Backend leaves the snapshot.
func (u *Upstream) CloseIdle() {
	if u.closeIdle != nil {
		u.closeIdle()
	}
}

// clientCredentialHeaders are removed from every upstream request, whatever built it.
var clientCredentialHeaders = []string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key", "Proxy-Authorization", "Cookie"}

// credentialTransport strips client credentials and injects the Backend's. It edits the
// request in place: requests reaching it are built by the gateway for this one attempt.
type credentialTransport struct {
	base   http.RoundTripper
	header string
	value  []string // shared by every request; never modified
}

func (t *credentialTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for _, h := range clientCredentialHeaders {
		delete(req.Header, h)
	}
	if t.header != "" {
		req.Header[t.header] = t.value
	}
	return t.base.RoundTrip(req)
}
