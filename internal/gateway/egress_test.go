package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

// testCA issues certificates for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Sluice Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns a leaf for the given DNS names and IPs, as a tls.Certificate and PEM.
func (ca *testCA) issue(t *testing.T, client bool, dns []string, ips ...net.IP) (tls.Certificate, string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: dns, IPAddresses: ips, ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

func spkiPin(t *testing.T, c tls.Certificate) string {
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// TestEgressTLS: the Backend's TLS policy decides which upstreams the gateway talks to.
func TestEgressTLS(t *testing.T) {
	ca := newCA(t)
	serverCert, _, _ := ca.issue(t, false, []string{"upstream.test"}, net.ParseIP("127.0.0.1"))
	clientCert, clientPEM, clientKey := ca.issue(t, true, []string{"sluice"})
	otherCA := newCA(t)
	strangerCert, strangerPEM, strangerKey := otherCA.issue(t, true, []string{"stranger"})
	_ = strangerCert

	answer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`))
	})
	serve := func(cfg *tls.Config) *httptest.Server {
		s := httptest.NewUnstartedServer(answer)
		s.TLS = cfg
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)
	mtls := serve(&tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs})
	plain := serve(&tls.Config{Certificates: []tls.Certificate{serverCert}})
	old := serve(&tls.Config{Certificates: []tls.Certificate{serverCert}, MaxVersion: tls.VersionTLS11})

	secrets := `
apiVersion: v1
kind: Secret
metadata: {name: ca}
stringData:
  ca.crt: |
` + indent(ca.pem, 4) + `
---
apiVersion: v1
kind: Secret
metadata: {name: client}
stringData:
  tls.crt: |
` + indent(clientPEM, 4) + `
  tls.key: |
` + indent(clientKey, 4) + `
---
apiVersion: v1
kind: Secret
metadata: {name: stranger}
stringData:
  tls.crt: |
` + indent(strangerPEM, 4) + `
  tls.key: |
` + indent(strangerKey, 4) + `
---
`
	backend := func(name, url, tlsSpec string) string {
		return backendYAML(name, url+"/v1", "  tls:\n"+indent(tlsSpec, 4)) + routeYAML2(name)
	}
	yaml := secrets +
		backend("mtls-ok", mtls.URL, "caBundleRefs: [{name: ca}]\nclientCertificateRef: {name: client}") +
		backend("mtls-no-cert", mtls.URL, "caBundleRefs: [{name: ca}]") +
		backend("mtls-wrong-cert", mtls.URL, "caBundleRefs: [{name: ca}]\nclientCertificateRef: {name: stranger}") +
		backend("untrusted", plain.URL, "minVersion: \"1.2\"") +
		backend("tls11", old.URL, "caBundleRefs: [{name: ca}]") +
		backend("pin-ok", plain.URL, "caBundleRefs: [{name: ca}]\npinnedSHA256: ["+spkiPin(t, serverCert)+"]") +
		backend("pin-bad", plain.URL, "caBundleRefs: [{name: ca}]\npinnedSHA256: ["+spkiPin(t, clientCert)+"]") +
		backend("san-ok", plain.URL, "caBundleRefs: [{name: ca}]\nsubjectAltNames: [upstream.test]") +
		backend("san-bad", plain.URL, "caBundleRefs: [{name: ca}]\nsubjectAltNames: [api.openai.com]") +
		backend("tls13", plain.URL, "caBundleRefs: [{name: ca}]\nminVersion: \"1.3\"")
	gw := gatewaytest.Start(t, yaml, nil, gateway.Options{})
	for model, want := range map[string]int{
		"mtls-ok": 200, "mtls-no-cert": 502, "mtls-wrong-cert": 502, "untrusted": 502, "tls11": 502,
		"pin-ok": 200, "pin-bad": 502, "san-ok": 200, "san-bad": 502, "tls13": 200,
	} {
		resp, e := post(t, gw.URL()+"/chat/completions", `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != want {
			t.Errorf("%s: status %d (%s), want %d", model, resp.StatusCode, e.Error.Code, want)
		}
	}
}

func routeYAML2(model string) string {
	return `apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: ` + model + `}
spec: {models: [` + model + `], backendRefs: [{name: ` + model + `}]}
---
`
}

// TestRegions: a route limited to regions never leaves them, fallbacks included, and says
// so when it cannot serve.
func TestRegions(t *testing.T) {
	eu := newRecordingUpstream(t, "m")
	us := newRecordingUpstream(t, "m")
	yaml := backendYAML("eu", "http://"+closedAddr(t)+"/v1", "  region: eu") +
		backendYAML("eu2", eu.URL+"/v1", "  region: eu") +
		backendYAML("us", us.URL+"/v1", "  region: us") + `
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: eu-only}
spec:
  models: [eu-only]
  regions: [eu]
  backendRefs: [{name: eu, model: m}, {name: us, priority: 1, model: m}, {name: eu2, priority: 2, model: m}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: eu-down}
spec:
  models: [eu-down]
  regions: [eu]
  backendRefs: [{name: eu, model: m}, {name: us, priority: 1, model: m}]
`
	gw := gatewaytest.Start(t, yaml, nil, gateway.Options{})
	resp, _ := post(t, gw.URL()+"/chat/completions", `{"model":"eu-only","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("eu-only: %d", resp.StatusCode)
	}
	us.mu.Lock()
	n := len(us.bodies)
	us.mu.Unlock()
	if n != 0 {
		t.Fatal("a request limited to eu reached the us backend")
	}
	// The only eu backend is down: 502 from it, never a detour to us.
	resp, e := post(t, gw.URL()+"/chat/completions", `{"model":"eu-down","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 502 || e.Error.Code != "upstream_unavailable" {
		t.Fatalf("eu-down: %d %s", resp.StatusCode, e.Error.Code)
	}
	us.mu.Lock()
	n = len(us.bodies)
	us.mu.Unlock()
	if n != 0 {
		t.Fatal("fallback left the allowed region")
	}
}

// TestRegionNotAllowed: when no candidate is in an allowed region the answer is 403
// region_not_allowed. (Configuration validation refuses routes like this; here the
// snapshot is changed after translation to stand in for a caller limited by access
// control to other regions.)
func TestRegionNotAllowed(t *testing.T) {
	up := newRecordingUpstream(t, "m")
	snap := gatewaytest.Build(t, backendYAML("eu", up.URL+"/v1", "  region: eu")+`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r}
spec: {models: [m], regions: [eu], backendRefs: [{name: eu}]}
`, nil)
	for _, b := range snap.Backends {
		b.Region = "us"
	}
	gw := gateway.New(gateway.Options{})
	gw.Swap(snap)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	resp, e := post(t, srv.URL+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 403 || e.Error.Code != "region_not_allowed" {
		t.Fatalf("%d %q", resp.StatusCode, e.Error.Code)
	}
}
