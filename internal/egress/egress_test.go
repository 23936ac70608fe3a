package egress

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCredentialsReplaced(t *testing.T) {
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r.Header.Clone() }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	up := NewUpstream(Options{BaseURL: u, Timeouts: Timeouts{Connect: time.Second}, Signer: NewHeaderSigner("authorization", "Bearer sk-backend")})
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader("{}"))
	for _, h := range []string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key", "Cookie", "Proxy-Authorization"} {
		req.Header.Set(h, "client-secret")
	}
	resp, err := up.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for k, v := range seen {
		if strings.Contains(strings.Join(v, ","), "client-secret") {
			t.Errorf("client credential reached upstream in %s", k)
		}
	}
	if seen.Get("Authorization") != "Bearer sk-backend" {
		t.Errorf("Authorization %q", seen.Get("Authorization"))
	}
}

func TestTLSFloor(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	srv.StartTLS()
	defer srv.Close()
	tr := NewTransport(Timeouts{Connect: time.Second})
	tr.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	req, _ := http.NewRequest("GET", srv.URL, nil)
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.1 upstream was accepted")
	}
}

func TestConcurrencySlots(t *testing.T) {
	up := NewUpstream(Options{MaxConcurrent: 2, Base: http.DefaultTransport})
	if !up.TryAcquire() || !up.TryAcquire() || up.TryAcquire() {
		t.Fatal("slots")
	}
	up.Release()
	if !up.TryAcquire() {
		t.Fatal("released slot not reusable")
	}
}
