package controller

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/internal/server"
)

// Listeners of Gateways of Sluice's class are served by the data path (OnListeners, a
// server.ListenerSet's Apply): every HTTP and HTTPS listener whose references resolve
// and which does not conflict with an earlier one (Gateways by creation time, then
// namespace/name; listeners in order). An HTTPS listener's certificates are the Secrets
// of tls.certificateRefs (core Secrets in the Gateway's namespace: ReferenceGrants are
// not read, so a reference to another namespace is RefNotPermitted), keys tls.crt and
// tls.key. Programmed True means the listener was handed to the data path; whether the
// port could be bound is in the data path's log, not in the status.

// listenerVerdict is what the controller decided of one Gateway listener.
type listenerVerdict struct {
	conflict    string // Conflicted reason; "": none
	conflictMsg string
	refsReason  string // ResolvedRefs False reason; "": resolved
	refsMsg     string
}

// listenerSet is the listeners to publish, their verdicts by "ns/gateway/listener", a
// fingerprint of the published ones, and the Secrets read ("ns/name").
type listenerSet struct {
	listeners []server.Listener
	verdicts  map[string]*listenerVerdict
	key       string
	secrets   map[string]bool
}

// gatewayListeners computes the listeners of our Gateways.
func (r *Reconciler) gatewayListeners(ctx context.Context, gs *gatewayState) (*listenerSet, error) {
	out := &listenerSet{verdicts: map[string]*listenerVerdict{}, secrets: map[string]bool{}, listeners: []server.Listener{}}
	var gws []*gatewayv1.Gateway
	for _, g := range gs.gateways {
		if gs.ours(g) {
			gws = append(gws, g)
		}
	}
	sort.Slice(gws, func(a, b int) bool {
		ta, tb := gws[a].CreationTimestamp, gws[b].CreationTimestamp
		if !ta.Equal(&tb) {
			return ta.Before(&tb)
		}
		return gws[a].Namespace+"/"+gws[a].Name < gws[b].Namespace+"/"+gws[b].Name
	})
	type claim struct {
		protocol gatewayv1.ProtocolType
		hosts    map[string]string // hostname → listener
		owner    string
	}
	ports := map[int32]*claim{}
	h := sha256.New()
	for _, g := range gws {
		for i := range g.Spec.Listeners {
			l := &g.Spec.Listeners[i]
			if !supportedProtocol(l.Protocol) {
				continue
			}
			name := g.Namespace + "/" + g.Name + "/" + string(l.Name)
			v := &listenerVerdict{}
			out.verdicts[name] = v
			host := ""
			if l.Hostname != nil {
				host = strings.ToLower(string(*l.Hostname))
			}
			c := ports[int32(l.Port)]
			switch {
			case c == nil:
				ports[int32(l.Port)] = &claim{protocol: l.Protocol, hosts: map[string]string{host: name}, owner: name}
			case c.protocol != l.Protocol:
				v.conflict = string(gatewayv1.ListenerReasonProtocolConflict)
				v.conflictMsg = fmt.Sprintf("port %d already serves %s for listener %s", l.Port, c.protocol, c.owner)
			case c.hosts[host] != "":
				v.conflict = string(gatewayv1.ListenerReasonHostnameConflict)
				v.conflictMsg = fmt.Sprintf("port %d already serves hostname %q for listener %s", l.Port, host, c.hosts[host])
			default:
				c.hosts[host] = name
			}
			var certs []tls.Certificate
			if l.Protocol == gatewayv1.HTTPSProtocolType {
				var sum []byte
				var err error
				certs, sum, err = r.listenerCertificates(ctx, g, l, v, out.secrets)
				if err != nil {
					return nil, err
				}
				h.Write(sum)
			}
			if v.conflict != "" || v.refsReason != "" {
				continue
			}
			out.listeners = append(out.listeners, server.Listener{
				Name: name, Port: int32(l.Port), Protocol: string(l.Protocol), Hostname: host, Certificates: certs,
			})
			fmt.Fprintf(h, "\n%s %d %s %s\n", name, l.Port, l.Protocol, host)
		}
	}
	out.key = hex.EncodeToString(h.Sum(nil))
	return out, nil
}

// listenerCertificates reads the certificates of HTTPS listener l of g, recording the
// Secrets it reads in secrets, and a verdict on v; sum is a fingerprint of what was read.
// The error is an API error other than not found.
func (r *Reconciler) listenerCertificates(ctx context.Context, g *gatewayv1.Gateway, l *gatewayv1.Listener, v *listenerVerdict, secrets map[string]bool) ([]tls.Certificate, []byte, error) {
	bad := func(reason gatewayv1.ListenerConditionReason, format string, args ...any) ([]tls.Certificate, []byte, error) {
		if v.refsReason == "" {
			v.refsReason, v.refsMsg = string(reason), clip(fmt.Sprintf(format, args...))
		}
		return nil, nil, nil
	}
	if l.TLS == nil || len(l.TLS.CertificateRefs) == 0 {
		return bad(gatewayv1.ListenerReasonInvalidCertificateRef, "an HTTPS listener needs tls.certificateRefs")
	}
	if l.TLS.Mode != nil && *l.TLS.Mode != gatewayv1.TLSModeTerminate {
		return bad(gatewayv1.ListenerReasonInvalidCertificateRef, "tls.mode %s is not supported on HTTPS: only Terminate", *l.TLS.Mode)
	}
	var certs []tls.Certificate
	h := sha256.New()
	for _, ref := range l.TLS.CertificateRefs {
		if ref.Group != nil && *ref.Group != "" || ref.Kind != nil && *ref.Kind != "Secret" {
			return bad(gatewayv1.ListenerReasonInvalidCertificateRef, "certificateRef %s: only core Secrets are supported", ref.Name)
		}
		ns := g.Namespace
		if ref.Namespace != nil && *ref.Namespace != "" {
			ns = string(*ref.Namespace)
		}
		if ns != g.Namespace {
			return bad(gatewayv1.ListenerReasonRefNotPermitted, "certificateRef Secret %s/%s: references to another namespace are not permitted (ReferenceGrants are not supported)", ns, ref.Name)
		}
		secrets[ns+"/"+string(ref.Name)] = true
		var s corev1.Secret
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: string(ref.Name)}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return bad(gatewayv1.ListenerReasonInvalidCertificateRef, "certificateRef Secret %s/%s not found", ns, ref.Name)
			}
			return nil, nil, err
		}
		crt, key := secretValue(&s, corev1.TLSCertKey), secretValue(&s, corev1.TLSPrivateKeyKey)
		cert, err := tls.X509KeyPair(crt, key)
		if err != nil {
			return bad(gatewayv1.ListenerReasonInvalidCertificateRef, "certificateRef Secret %s/%s: %s/%s: %v", ns, ref.Name, corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
		}
		certs = append(certs, cert)
		h.Write([]byte(strconv.Itoa(len(crt))))
		h.Write(crt)
		h.Write(key)
	}
	return certs, h.Sum(nil), nil
}

func secretValue(s *corev1.Secret, k string) []byte {
	if v, ok := s.Data[k]; ok {
		return v
	}
	return []byte(s.StringData[k]) // a fake client does not merge stringData
}

// publishListeners hands ls to OnListeners when it changed since the last call.
func (r *Reconciler) publishListeners(ls *listenerSet) {
	if r.OnListeners == nil || r.listenersPublished && r.listenersKey == ls.key {
		return
	}
	r.OnListeners(ls.listeners)
	r.listenersPublished, r.listenersKey = true, ls.key
	r.log().Info("listeners published", "count", len(ls.listeners))
}
