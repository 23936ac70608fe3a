package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// selfSigned returns a certificate for names and its pool.
func selfSigned(t *testing.T, cn string, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return cert, pool
}

// loopback dials the port of addr on 127.0.0.1, whatever its host name.
func loopback(ctx context.Context, network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
}

func freePort(t *testing.T) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// handshake returns the CommonName of the certificate served to SNI name on port.
func handshake(t *testing.T, port int32, name string, pool *x509.CertPool) (string, error) {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(int(port)), &tls.Config{ServerName: name, RootCAs: pool})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestListenerSet(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "hello "+r.TLS.ServerName)
	})
	s := NewListenerSet(nil, "127.0.0.1", nil)
	s.DrainTimeout = 10 * time.Second
	t.Cleanup(func() { s.Close(t.Context()) })
	pHTTP, pTLS := freePort(t), freePort(t)

	get := func(c *http.Client, url string) (string, error) {
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return strconv.Itoa(resp.StatusCode) + " " + string(b), err
	}
	httpURL := "http://127.0.0.1:" + strconv.Itoa(int(pHTTP))

	// HTTP: 503 until the handler is set, then the handler.
	if err := s.Update([]Listener{{Name: "a", Port: pHTTP, Protocol: ProtocolHTTP}}); err != nil {
		t.Fatal(err)
	}
	if got, err := get(http.DefaultClient, httpURL+"/"); err != nil || got[:3] != "503" {
		t.Fatalf("before the handler: %q %v", got, err)
	}
	s.SetHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			io.WriteString(w, "plain")
			return
		}
		h(w, r)
	}))
	if got, err := get(http.DefaultClient, httpURL+"/"); err != nil || got != "200 plain" {
		t.Fatalf("http: %q %v", got, err)
	}

	// HTTPS: two hostnames on one port, SNI picks; a wildcard.
	one, pool1 := selfSigned(t, "one", "one.example.com")
	wild, poolW := selfSigned(t, "wild", "*.example.org")
	desired := []Listener{
		{Name: "a", Port: pHTTP, Protocol: ProtocolHTTP},
		{Name: "b", Port: pTLS, Protocol: ProtocolHTTPS, Hostname: "one.example.com", Certificates: []tls.Certificate{one}},
		{Name: "c", Port: pTLS, Protocol: ProtocolHTTPS, Hostname: "*.example.org", Certificates: []tls.Certificate{wild}},
		{Name: "bad", Port: pTLS, Protocol: ProtocolHTTP},
	}
	if err := s.Update(desired); err == nil {
		t.Error("a protocol conflict on one port: no error")
	}
	desired = desired[:3]
	if err := s.Update(desired); err != nil {
		t.Fatal(err)
	}
	s.Update(desired) // idempotent
	if cn, err := handshake(t, pTLS, "one.example.com", pool1); err != nil || cn != "one" {
		t.Fatalf("one.example.com: %q %v", cn, err)
	}
	if cn, err := handshake(t, pTLS, "a.example.org", poolW); err != nil || cn != "wild" {
		t.Fatalf("a.example.org: %q %v", cn, err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool1, ServerName: "one.example.com", MinVersion: tls.VersionTLS12}, DialContext: loopback}
	defer tr.CloseIdleConnections()
	// The Host must be one of the port's listener hostnames; the client dials 127.0.0.1.
	tlsURL := "https://one.example.com:" + strconv.Itoa(int(pTLS))
	if got, err := get(&http.Client{Transport: tr}, tlsURL+"/"); err != nil || got != "200 hello one.example.com" {
		t.Fatalf("https: %q %v", got, err)
	}
	// TLS 1.2 minimum.
	if _, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(pTLS)), &tls.Config{ServerName: "one.example.com", RootCAs: pool1, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 handshake succeeded")
	}

	// Rotation: new handshakes see the new certificate, the port stays open (a kept-alive
	// connection still works).
	addr := s.Ports()[pTLS]
	two, pool2 := selfSigned(t, "two", "one.example.com")
	desired[1].Certificates = []tls.Certificate{two}
	if err := s.Update(desired); err != nil {
		t.Fatal(err)
	}
	if s.Ports()[pTLS] != addr {
		t.Error("the HTTPS port was reopened")
	}
	if cn, err := handshake(t, pTLS, "one.example.com", pool2); err != nil || cn != "two" {
		t.Fatalf("after rotation: %q %v", cn, err)
	}
	if got, err := get(&http.Client{Transport: tr}, tlsURL+"/"); err != nil || got != "200 hello one.example.com" {
		t.Fatalf("kept-alive connection after rotation: %q %v", got, err)
	}

	// Removal: the port closes at once, the request in flight completes.
	done := make(chan string, 1)
	go func() {
		got, err := get(&http.Client{Transport: tr}, tlsURL+"/slow")
		if err != nil {
			got = err.Error()
		}
		done <- got
	}()
	<-entered
	if err := s.Update(desired[:1]); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(int(pTLS)), time.Second); err == nil {
		c.Close()
		t.Error("the removed port still accepts")
	}
	close(release)
	if got := <-done; got != "200 hello one.example.com" {
		t.Errorf("in-flight request: %q", got)
	}
	if got, err := get(http.DefaultClient, httpURL+"/"); err != nil || got != "200 plain" {
		t.Fatalf("http after removing https: %q %v", got, err)
	}

	// Close: every port closes; Update fails.
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := get(http.DefaultClient, httpURL+"/"); err == nil {
		t.Error("http after Close")
	}
	if err := s.Update(desired); err == nil {
		t.Error("Update after Close: no error")
	}
}

// TestListenerHostnames: a port whose listeners all name hostnames answers only those
// hosts (404 for others); a listener without a hostname opens the port to any host.
func TestListenerHostnames(t *testing.T) {
	s := NewListenerSet(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), "127.0.0.1", nil)
	t.Cleanup(func() { s.Close(t.Context()) })
	p := freePort(t)
	ask := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(int(p))+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := s.Update([]Listener{
		{Name: "a", Port: p, Protocol: ProtocolHTTP, Hostname: "api.example.com"},
		{Name: "b", Port: p, Protocol: ProtocolHTTP, Hostname: "*.teams.example.com"},
	}); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{
		"api.example.com": 200, "API.example.com:8080": 200, "a.teams.example.com": 200,
		"teams.example.com": 404, "other.example.com": 404,
	} {
		if got := ask(host); got != want {
			t.Errorf("Host %s: %d, want %d", host, got, want)
		}
	}
	if err := s.Update([]Listener{
		{Name: "a", Port: p, Protocol: ProtocolHTTP, Hostname: "api.example.com"},
		{Name: "any", Port: p, Protocol: ProtocolHTTP},
	}); err != nil {
		t.Fatal(err)
	}
	if got := ask("other.example.com"); got != 200 {
		t.Errorf("with a listener for any host: %d", got)
	}
}
