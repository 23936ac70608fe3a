package egress

import "net/http"

// Prepare applies to req what Transport applies before sending, without sending: the
// header policy, the removal of every client credential header and the Backend's
// signature (last). It is for data planes that send the request themselves (Envoy, through
// `sluice extproc`); the gateway's own attempts go through Transport.
func (u *Upstream) Prepare(req *http.Request) error {
	t, ok := u.Transport.(*credentialTransport)
	if !ok {
		t = &credentialTransport{signer: u.Signer}
	}
	return t.prepare(req)
}

// prepare is the part of RoundTrip before the request is sent.
func (t *credentialTransport) prepare(req *http.Request) error {
	if t.headers != nil {
		t.headers.apply(req.Header)
	}
	for _, h := range CredentialHeaders {
		delete(req.Header, h)
	}
	if t.signer != nil {
		if err := t.signer.Sign(req); err != nil {
			return &CredentialError{Err: err}
		}
	}
	return nil
}
