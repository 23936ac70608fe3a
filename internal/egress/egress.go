// Package egress owns the connections that leave the gateway: one pooled transport per
// Backend, its timeouts, its concurrency limit, and the credentials it injects. Every
// upstream request passes through an Upstream's RoundTripper, which removes any client
// credential before adding the Backend's own. It decides nothing about routing.
package egress

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sluice-gateway/sluice/internal/outlier"
	"github.com/sluice-gateway/sluice/internal/picker"
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
	// TLS and Signer are the Backend's TLS configuration (nil: the defaults) and
	// credential, for clients that do not speak HTTP through Transport (gRPC).
	TLS    *tls.Config
	Signer Signer
	// Health ejects the Backend after repeated failures (outlier detection); nil: never,
	// and for a pool, whose endpoints are ejected one by one.
	Health *outlier.Detector
	// Pool, when set, makes the Backend a pool of endpoints: each attempt goes to the one
	// Pool.Pick chooses, at BaseURL's scheme and path.
	Pool *picker.Pool
	// PrefixBytes is how much prompt text a PrefixAffinity pool hashes; HonorDestination
	// lets a request's x-gateway-destination-endpoint choose among the pool's endpoints.
	PrefixBytes      int
	HonorDestination bool
	check            *HealthCheck
	loop             probeLoop
	slots            chan struct{}
	inFlight         atomic.Int64
	maxQueued        int32
	queued           atomic.Int32
	queueWait        time.Duration
	closeIdle        func()
}

// Options configure NewUpstream.
type Options struct {
	BaseURL  *url.URL
	Timeouts Timeouts
	// MaxConcurrent caps requests in flight; 0 is unlimited.
	MaxConcurrent int
	// MaxQueued lets that many requests wait up to QueueTimeout for a slot.
	MaxQueued    int
	QueueTimeout time.Duration
	// Signer, when set, adds the Backend's credential to every request.
	Signer Signer
	// Headers changes the forwarded client headers.
	Headers *HeaderPolicy
	// TLS is the Backend's TLS client configuration; nil means TLS 1.2+ with system roots.
	TLS *tls.Config
	// Base replaces the network transport (the Mock backend answers in-process).
	Base http.RoundTripper
	// Outlier, when set, turns on outlier detection with this configuration.
	Outlier *outlier.Config
	// HealthCheck, when set (with Outlier), probes the Backend actively.
	HealthCheck *HealthCheck
}

// NewUpstream builds an Upstream.
func NewUpstream(o Options) *Upstream {
	u := &Upstream{BaseURL: o.BaseURL, Timeouts: o.Timeouts, TLS: o.TLS, Signer: o.Signer}
	if o.Outlier != nil {
		u.Health = outlier.New(*o.Outlier)
	}
	u.check = o.HealthCheck
	base := o.Base
	if base == nil {
		t := NewTransport(o.Timeouts)
		if o.TLS != nil {
			t.TLSClientConfig = o.TLS
		}
		base = t
		u.closeIdle = t.CloseIdleConnections
	}
	u.Transport = &credentialTransport{base: base, signer: o.Signer, headers: o.Headers}
	if o.MaxConcurrent > 0 {
		u.slots = make(chan struct{}, o.MaxConcurrent)
		u.maxQueued, u.queueWait = int32(o.MaxQueued), o.QueueTimeout
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

// UsePool makes the Upstream a pool of endpoints chosen by cfg (see picker.Config); the
// endpoints' metrics are scraped through the Upstream's transport, with its TLS policy
// and credential. Build the Upstream without Options.Outlier and give it to cfg: a pool
// ejects endpoints, not itself.
func (u *Upstream) UsePool(cfg picker.Config) error {
	if m := cfg.Metrics; m != nil {
		mc := *m
		mc.Client = &http.Client{Transport: u.Transport}
		cfg.Metrics = &mc
	}
	p, err := picker.New(cfg)
	if err != nil {
		return err
	}
	u.Pool = p
	return nil
}

// TryAcquire takes a concurrency slot; false means the Backend is full.
func (u *Upstream) TryAcquire() bool {
	if u.slots != nil {
		select {
		case u.slots <- struct{}{}:
		default:
			return false
		}
	}
	u.inFlight.Add(1)
	return true
}

// InFlight is the number of requests holding a slot.
func (u *Upstream) InFlight() int { return int(u.inFlight.Load()) }

// Acquire takes a slot, waiting in the Backend's bounded queue when it is full: false when
// the queue is full too, the wait ran out, or ctx ended.
func (u *Upstream) Acquire(ctx context.Context) bool {
	if u.TryAcquire() {
		return true
	}
	if u.maxQueued <= 0 {
		return false
	}
	if u.queued.Add(1) > u.maxQueued {
		u.queued.Add(-1)
		return false
	}
	defer u.queued.Add(-1)
	t := time.NewTimer(u.queueWait)
	defer t.Stop()
	select {
	case u.slots <- struct{}{}:
		u.inFlight.Add(1)
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// Queued is the number of requests waiting for a slot.
func (u *Upstream) Queued() int { return int(u.queued.Load()) }

// Release returns a slot taken by TryAcquire or Acquire.
func (u *Upstream) Release() {
	u.inFlight.Add(-1)
	if u.slots != nil {
		<-u.slots
	}
}

// Ejected reports whether the Backend is out of rotation: ejected itself, or every
// endpoint of its pool ejected.
func (u *Upstream) Ejected() bool {
	if u.Pool != nil {
		return u.Pool.Ejected()
	}
	return u.Health.Ejected()
}

// CloseIdle closes pooled idle connections and stops the probes; used when a Backend
// leaves the snapshot.
func (u *Upstream) CloseIdle() {
	u.StopProbes()
	if u.closeIdle != nil {
		u.closeIdle()
	}
}

// CredentialHeaders are the headers that carry a client's credential (canonical names).
// They are removed from every upstream request, whatever built it; the rest of the
// gateway uses this one list to keep them out of forwarding, logs and CEL.
var CredentialHeaders = []string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key", "Proxy-Authorization", "Cookie"}

// IsCredentialHeader reports whether a canonical header name carries a credential.
func IsCredentialHeader(canonicalName string) bool {
	for _, h := range CredentialHeaders {
		if h == canonicalName {
			return true
		}
	}
	return false
}

// credentialTransport applies the header policy, strips client credentials and signs with
// the Backend's. It edits the request in place: requests reaching it are built by the
// gateway for this one attempt. Signing comes last, so a SigV4 signature covers the final
// headers.
type credentialTransport struct {
	base    http.RoundTripper
	signer  Signer
	headers *HeaderPolicy
}

func (t *credentialTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.prepare(req); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(req)
}

// CredentialError is a failure to obtain or apply the Backend's credential (a token
// endpoint down, a key refused). It is the gateway's problem, never the client's.
type CredentialError struct{ Err error }

func (e *CredentialError) Error() string { return "upstream credential: " + e.Err.Error() }
func (e *CredentialError) Unwrap() error { return e.Err }

// HeaderPolicy changes the client headers forwarded upstream.
type HeaderPolicy struct {
	Allow  map[string]bool // canonical names; nil: all
	Remove []string        // canonical names
	Set    http.Header     // canonical names
}

func (p *HeaderPolicy) apply(h http.Header) {
	if p.Allow != nil {
		for k := range h {
			if !p.Allow[k] && !gatewayHeaders[k] {
				delete(h, k)
			}
		}
	}
	for _, k := range p.Remove {
		delete(h, k)
	}
	for k, v := range p.Set {
		h[k] = v
	}
}

// gatewayHeaders are set by the gateway and adapters, not forwarded from clients, so an
// allow-list never removes them.
var gatewayHeaders = map[string]bool{"Content-Type": true, "Accept": true, "X-Request-Id": true, "Anthropic-Version": true, "User-Agent": true}
