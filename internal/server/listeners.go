package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/sluice-gateway/sluice/internal/apierr"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Protocols of a Listener.
const (
	ProtocolHTTP  = "HTTP"
	ProtocolHTTPS = "HTTPS"
)

// Listener is one listener the data path serves on: in cluster mode, one listener of a
// Gateway of Sluice's class. Several Listeners may share a port when they agree on the
// protocol; HTTPS ones then pick their certificate by SNI hostname.
type Listener struct {
	// Name identifies the listener (the controller uses "namespace/gateway/listener").
	Name     string
	Port     int32
	Protocol string // ProtocolHTTP or ProtocolHTTPS
	// Hostname, optional: for HTTPS, the SNI names this listener's certificates serve
	// ("api.example.com", or "*.example.com" for any name under example.com). Not used
	// to filter HTTP requests.
	Hostname string
	// Certificates of an HTTPS listener (tls.X509KeyPair); the first one the client
	// supports is served.
	Certificates []tls.Certificate
}

// DefaultListenerDrain bounds how long a removed port waits for its requests in flight.
const DefaultListenerDrain = 30 * time.Second

// ListenerSet keeps a set of real listeners (one per port) in line with the Listeners
// it is given, all serving the same handler. It is safe for concurrent use; Apply is
// idempotent.
type ListenerSet struct {
	// DrainTimeout bounds how long a removed port's requests in flight may take
	// (default DefaultListenerDrain). Set it before the first Apply.
	DrainTimeout time.Duration

	bind    string
	log     *slog.Logger
	handler atomic.Pointer[handlerBox]

	mu       sync.Mutex
	ports    map[int32]*port
	closed   bool
	draining sync.WaitGroup
}

type handlerBox struct{ h http.Handler }

// port is one open port.
type port struct {
	protocol string
	ln       net.Listener
	srv      *http.Server
	served   chan struct{} // closed when Serve returns
	certs    atomic.Pointer[certTable]
	// hosts are the hostnames the port's listeners accept (nil: any host).
	hosts atomic.Pointer[hostSet]
}

// hostSet is the Host names a port answers: exact names and "*.suffix" wildcards.
type hostSet struct {
	exact map[string]bool
	wild  []string // ".example.com"
}

// newHostSet returns the names listeners accept together; nil when one of them accepts
// any host.
func newHostSet(ls []Listener) *hostSet {
	hs := &hostSet{exact: map[string]bool{}}
	for _, l := range ls {
		h := strings.ToLower(strings.TrimSuffix(l.Hostname, "."))
		switch {
		case h == "":
			return nil
		case strings.HasPrefix(h, "*."):
			hs.wild = append(hs.wild, h[1:])
		default:
			hs.exact[h] = true
		}
	}
	return hs
}

func (hs *hostSet) allows(host string) bool {
	if hs == nil {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if hs.exact[host] {
		return true
	}
	for _, w := range hs.wild {
		if strings.HasSuffix(host, w) && len(host) > len(w) {
			return true
		}
	}
	return false
}

// serve answers a request on p: 404 when its Host is not one of the port's listeners'
// hostnames (as the Gateway API asks), else the set's handler.
func (p *port) serve(s *ListenerSet) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.hosts.Load().allows(r.Host) {
			(&apierr.Error{Status: http.StatusNotFound, Code: apierr.CodeNotFound, Message: "No listener of this port serves host " + strconv.Quote(r.Host) + "."}).Write(w, apierr.OpenAI)
			return
		}
		s.ServeHTTP(w, r)
	})
}

// NewListenerSet returns an empty set serving handler (nil: 503 until SetHandler) on
// bind:port for every port (bind "": every interface).
func NewListenerSet(handler http.Handler, bind string, log *slog.Logger) *ListenerSet {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &ListenerSet{bind: bind, log: log, ports: map[int32]*port{}}
	if handler != nil {
		s.SetHandler(handler)
	}
	return s
}

// SetHandler replaces the handler every port serves (Run sets the gateway).
func (s *ListenerSet) SetHandler(h http.Handler) { s.handler.Store(&handlerBox{h}) }

func (s *ListenerSet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := s.handler.Load()
	if b == nil || b.h == nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	b.h.ServeHTTP(w, r)
}

// Apply is Update that logs its errors: the Reconciler's OnListeners callback.
func (s *ListenerSet) Apply(desired []Listener) {
	if err := s.Update(desired); err != nil {
		s.log.Error("listeners not all applied", "error", err.Error())
	}
}

// Update opens the ports of desired not open yet, closes the ports no longer wanted
// (gracefully: they stop accepting at once, requests in flight finish within
// DrainTimeout, in the background), reopens a port whose protocol changed, and swaps
// the certificates of HTTPS ports without closing them. Listeners on one port must agree
// on the protocol: the first one sets it, the others are left out (an error). A port
// that cannot be bound is an error; the next Update tries again.
func (s *ListenerSet) Update(desired []Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("listener set is closed")
	}
	var errs []error
	byPort := map[int32][]Listener{}
	proto := map[int32]string{}
	for _, l := range desired {
		if l.Protocol != ProtocolHTTP && l.Protocol != ProtocolHTTPS {
			errs = append(errs, fmt.Errorf("listener %s: protocol %q is not supported", l.Name, l.Protocol))
			continue
		}
		if l.Port <= 0 || l.Port > 65535 {
			errs = append(errs, fmt.Errorf("listener %s: port %d is out of range", l.Name, l.Port))
			continue
		}
		if p, ok := proto[l.Port]; ok && p != l.Protocol {
			errs = append(errs, fmt.Errorf("listener %s: port %d already serves %s", l.Name, l.Port, p))
			continue
		}
		if l.Protocol == ProtocolHTTPS && len(l.Certificates) == 0 {
			errs = append(errs, fmt.Errorf("listener %s: HTTPS without a certificate", l.Name))
			continue
		}
		proto[l.Port] = l.Protocol
		byPort[l.Port] = append(byPort[l.Port], l)
	}
	for num, p := range s.ports {
		if ls, ok := byPort[num]; !ok || ls[0].Protocol != p.protocol {
			s.closePort(num, p)
		}
	}
	nums := make([]int32, 0, len(byPort))
	for num := range byPort {
		nums = append(nums, num)
	}
	sort.Slice(nums, func(a, b int) bool { return nums[a] < nums[b] })
	for _, num := range nums {
		ls := byPort[num]
		p := s.ports[num]
		if p == nil {
			var err error
			if p, err = s.openPort(num, ls[0].Protocol); err != nil {
				errs = append(errs, err)
				continue
			}
			s.ports[num] = p
		}
		if p.protocol == ProtocolHTTPS {
			p.certs.Store(newCertTable(ls))
		}
		p.hosts.Store(newHostSet(ls))
	}
	return errors.Join(errs...)
}

// Ports returns the open ports and their bound addresses.
func (s *ListenerSet) Ports() map[int32]net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]net.Addr{}
	for n, p := range s.ports {
		out[n] = p.ln.Addr()
	}
	return out
}

func (s *ListenerSet) openPort(num int32, protocol string) (*port, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(s.bind, strconv.Itoa(int(num))))
	if err != nil {
		return nil, fmt.Errorf("port %d: %w", num, err)
	}
	p := &port{protocol: protocol, ln: ln, served: make(chan struct{})}
	p.srv = &http.Server{
		Handler:           p.serve(s),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if protocol == ProtocolHTTPS {
		p.certs.Store(&certTable{})
		p.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: p.certificate}
	}
	go func() {
		defer close(p.served)
		var err error
		if protocol == ProtocolHTTPS {
			err = p.srv.ServeTLS(ln, "", "")
		} else {
			err = p.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("listener stopped", "port", num, "error", err.Error())
		}
	}()
	s.log.Info("listening", "port", num, "protocol", protocol, "addr", ln.Addr().String())
	return p, nil
}

// closePort stops accepting on p now and drains it in the background. s.mu is held.
func (s *ListenerSet) closePort(num int32, p *port) {
	delete(s.ports, num)
	p.ln.Close() // no new connections from here on
	d := s.DrainTimeout
	if d <= 0 {
		d = DefaultListenerDrain
	}
	s.log.Info("closing listener", "port", num, "drain", d.String())
	s.draining.Add(1)
	go func() {
		defer s.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		shutdown(ctx, p)
	}()
}

func shutdown(ctx context.Context, p *port) {
	if err := p.srv.Shutdown(ctx); err != nil {
		p.srv.Close()
	}
	<-p.served
}

// Close stops every port, waiting until ctx ends for requests in flight (then closing
// their connections), and for the ports removed earlier still draining. Later Updates
// fail.
func (s *ListenerSet) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ports := s.ports
	s.ports = map[int32]*port{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ports {
		p.ln.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			shutdown(ctx, p)
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { s.draining.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// certTable picks an HTTPS port's certificate by SNI name.
type certTable struct {
	exact map[string][]tls.Certificate
	wild  []wildCerts         // longest suffix first
	plain []tls.Certificate   // of the listeners without a hostname
	all   [][]tls.Certificate // every listener's, in order: the last resort
}

type wildCerts struct {
	suffix string // ".example.com"
	certs  []tls.Certificate
}

func newCertTable(ls []Listener) *certTable {
	t := &certTable{exact: map[string][]tls.Certificate{}}
	for _, l := range ls {
		h := strings.ToLower(strings.TrimSuffix(l.Hostname, "."))
		switch {
		case h == "":
			t.plain = append(t.plain, l.Certificates...)
		case strings.HasPrefix(h, "*."):
			t.wild = append(t.wild, wildCerts{suffix: h[1:], certs: l.Certificates})
		default:
			t.exact[h] = append(t.exact[h], l.Certificates...)
		}
		t.all = append(t.all, l.Certificates)
	}
	sort.SliceStable(t.wild, func(a, b int) bool { return len(t.wild[a].suffix) > len(t.wild[b].suffix) })
	return t
}

func (p *port) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	t := p.certs.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := pick(hello, t.exact[name]); c != nil {
			return c, nil
		}
		for _, w := range t.wild {
			if strings.HasSuffix(name, w.suffix) && len(name) > len(w.suffix) {
				if c := pick(hello, w.certs); c != nil {
					return c, nil
				}
			}
		}
	}
	if c := pick(hello, t.plain); c != nil {
		return c, nil
	}
	for _, cs := range t.all {
		if c := pick(hello, cs); c != nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no certificate for %q", hello.ServerName)
}

// pick returns the first of certs the client supports, else the first.
func pick(hello *tls.ClientHelloInfo, certs []tls.Certificate) *tls.Certificate {
	for i := range certs {
		if hello.SupportsCertificate(&certs[i]) == nil {
			return &certs[i]
		}
	}
	if len(certs) > 0 {
		return &certs[0]
	}
	return nil
}
