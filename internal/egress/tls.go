package egress

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
)

// TLSPolicy is a Backend's TLS policy, compiled.
type TLSPolicy struct {
	// MinVersion is raised to TLS 1.2 when lower.
	MinVersion uint16
	// ServerName overrides SNI and the name the certificate is verified against.
	ServerName string
	// RootCAs replaces the system roots when not nil.
	RootCAs *x509.CertPool
	// ClientCert is presented for mutual TLS.
	ClientCert *tls.Certificate
	// SubjectAltNames: the leaf must carry one of these DNS names.
	SubjectAltNames []string
	// Pins: one certificate of the verified chain must have one of these SPKI SHA-256s.
	Pins [][sha256.Size]byte
}

// Errors a refused connection reports (wrapped in the TLS handshake error).
var (
	ErrSANMismatch = errors.New("upstream certificate carries none of the required subjectAltNames")
	ErrPinMismatch = errors.New("upstream certificate chain matches no pinned key")
)

// Config builds the tls.Config. Ordinary chain and hostname verification always runs;
// SAN and pin checks are added on top of it, never instead of it.
func (p *TLSPolicy) Config() *tls.Config {
	cfg := &tls.Config{MinVersion: max(p.MinVersion, tls.VersionTLS12), ServerName: p.ServerName, RootCAs: p.RootCAs}
	if p.ClientCert != nil {
		cfg.Certificates = []tls.Certificate{*p.ClientCert}
	}
	if len(p.SubjectAltNames) == 0 && len(p.Pins) == 0 {
		return cfg
	}
	sans, pins := p.SubjectAltNames, p.Pins
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return ErrSANMismatch
		}
		if len(sans) > 0 {
			leaf := cs.PeerCertificates[0]
			ok := false
			for _, want := range sans {
				if leaf.VerifyHostname(want) == nil {
					ok = true
					break
				}
			}
			if !ok {
				return ErrSANMismatch
			}
		}
		if len(pins) > 0 {
			chain := cs.PeerCertificates
			if len(cs.VerifiedChains) > 0 {
				chain = cs.VerifiedChains[0]
			}
			for _, c := range chain {
				sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
				for _, pin := range pins {
					if sum == pin {
						return nil
					}
				}
			}
			return ErrPinMismatch
		}
		return nil
	}
	return cfg
}
