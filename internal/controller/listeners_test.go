package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"k8s.io/apimachinery/pkg/api/meta"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/internal/server"
)

// tlsSecret returns a kubernetes.io/tls Secret ns/name with a self-signed certificate
// for CommonName cn.
func tlsSecret(t *testing.T, ns, name, cn string) *corev1.Secret {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data: map[string][]byte{
			corev1.TLSCertKey:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		},
	}
}

const listenerGateways = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: sluice}
spec: {controllerName: sluice.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: sluice
  listeners:
  - {name: http, protocol: HTTP, port: 8080}
  - name: https
    protocol: HTTPS
    port: 8443
    hostname: api.example.com
    tls: {certificateRefs: [{name: cert}]}
  - name: missing
    protocol: HTTPS
    port: 8443
    hostname: other.example.com
    tls: {certificateRefs: [{name: nope}]}
  - name: foreign
    protocol: HTTPS
    port: 8443
    hostname: third.example.com
    tls: {certificateRefs: [{name: cert, namespace: elsewhere}]}
  - {name: clash, protocol: HTTP, port: 8443}
`

func TestGatewayListeners(t *testing.T) {
	e := newGatewayEnv(t)
	var got [][]server.Listener
	e.r.OnListeners = func(ls []server.Listener) { got = append(got, ls) }
	e.apply(listenerGateways)
	if err := e.c.Create(t.Context(), tlsSecret(t, "default", "cert", "api.example.com")); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Create(t.Context(), tlsSecret(t, "elsewhere", "cert", "third.example.com")); err != nil {
		t.Fatal(err)
	}
	e.reconcile()
	if len(got) != 1 {
		t.Fatalf("OnListeners calls: %d", len(got))
	}
	ls := got[0]
	if len(ls) != 2 || ls[0].Name != "default/gw/http" || ls[0].Port != 8080 || ls[0].Protocol != "HTTP" ||
		ls[1].Name != "default/gw/https" || ls[1].Port != 8443 || ls[1].Protocol != "HTTPS" || ls[1].Hostname != "api.example.com" ||
		len(ls[1].Certificates) != 1 || ls[1].Certificates[0].Leaf == nil || ls[1].Certificates[0].Leaf.Subject.CommonName != "api.example.com" {
		t.Fatalf("listeners %+v", ls)
	}
	if !e.r.WantsSecret("default", "cert") || !e.r.WantsSecret("default", "nope") {
		t.Error("certificate Secrets are not watched")
	}

	// Status.
	g := e.gateway("gw")
	lc := func(name, typ string) metav1.Condition {
		t.Helper()
		for _, l := range g.Status.Listeners {
			if string(l.Name) == name {
				if c := meta.FindStatusCondition(l.Conditions, typ); c != nil {
					return *c
				}
			}
		}
		t.Fatalf("listener %s: no %s in %+v", name, typ, g.Status.Listeners)
		return metav1.Condition{}
	}
	for _, name := range []string{"http", "https"} {
		if c := lc(name, "Programmed"); c.Status != metav1.ConditionTrue {
			t.Errorf("%s Programmed: %+v", name, c)
		}
		if c := lc(name, "ResolvedRefs"); c.Status != metav1.ConditionTrue {
			t.Errorf("%s ResolvedRefs: %+v", name, c)
		}
	}
	if c := lc("missing", "ResolvedRefs"); c.Status != metav1.ConditionFalse || c.Reason != "InvalidCertificateRef" || !strings.Contains(c.Message, "default/nope not found") {
		t.Errorf("missing ResolvedRefs: %+v", c)
	}
	if c := lc("missing", "Programmed"); c.Status != metav1.ConditionFalse {
		t.Errorf("missing Programmed: %+v", c)
	}
	if c := lc("foreign", "ResolvedRefs"); c.Status != metav1.ConditionFalse || c.Reason != "RefNotPermitted" {
		t.Errorf("foreign ResolvedRefs: %+v", c)
	}
	if c := lc("clash", "Conflicted"); c.Status != metav1.ConditionTrue || c.Reason != "ProtocolConflict" {
		t.Errorf("clash Conflicted: %+v", c)
	}
	if c := lc("clash", "Programmed"); c.Status != metav1.ConditionFalse {
		t.Errorf("clash Programmed: %+v", c)
	}
	if c := lc("http", "Conflicted"); c.Status != metav1.ConditionFalse {
		t.Errorf("http Conflicted: %+v", c)
	}
	if c := meta.FindStatusCondition(g.Status.Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "ListenersNotValid" {
		t.Errorf("gateway Accepted: %+v", c)
	}

	// Unchanged: not published again.
	e.reconcile()
	if len(got) != 1 {
		t.Fatalf("OnListeners calls after a no-op reconcile: %d", len(got))
	}

	// The missing Secret appears with an invalid certificate: still not published.
	bad := tlsSecret(t, "default", "nope", "other.example.com")
	bad.Data[corev1.TLSPrivateKeyKey] = []byte("garbage")
	if err := e.c.Create(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	e.reconcile()
	g = e.gateway("gw")
	if c := lc("missing", "ResolvedRefs"); c.Status != metav1.ConditionFalse || c.Reason != "InvalidCertificateRef" || !strings.Contains(c.Message, "tls.crt/tls.key") {
		t.Errorf("invalid ResolvedRefs: %+v", c)
	}
	if n := len(got[len(got)-1]); n != 2 {
		t.Errorf("published %d listeners with an invalid certificate", n)
	}

	// Rotation of the valid certificate: published again with the new one.
	var cert corev1.Secret
	if err := e.c.Get(t.Context(), client.ObjectKey{Namespace: "default", Name: "cert"}, &cert); err != nil {
		t.Fatal(err)
	}
	cert.Data = tlsSecret(t, "default", "cert", "rotated.example.com").Data
	if err := e.c.Update(t.Context(), &cert); err != nil {
		t.Fatal(err)
	}
	n := len(got)
	e.reconcile()
	if len(got) != n+1 || got[n][1].Certificates[0].Leaf.Subject.CommonName != "rotated.example.com" {
		t.Errorf("after rotation: %d calls, %+v", len(got), got[len(got)-1])
	}

	// The Gateway goes: no listeners.
	e.delete(&gatewayv1.Gateway{}, "gw")
	e.reconcile()
	if last := got[len(got)-1]; len(last) != 0 {
		t.Errorf("after deleting the Gateway: %+v", last)
	}
}
