package egress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/google"
)

// Signer adds a Backend's credential to an upstream request.
type Signer interface {
	Sign(req *http.Request) error
}

// HeaderSigner sets one header: an API key in the form the provider expects.
type HeaderSigner struct {
	header string
	value  []string // shared by every request; never modified
}

// NewHeaderSigner returns a signer setting header to value (e.g. Authorization,
// "Bearer sk-...").
func NewHeaderSigner(header, value string) *HeaderSigner {
	return &HeaderSigner{header: http.CanonicalHeaderKey(header), value: []string{value}}
}

// Sign implements Signer.
func (s *HeaderSigner) Sign(req *http.Request) error {
	req.Header[s.header] = s.value
	return nil
}

// Header returns the header the signer sets, for callers that are not HTTP requests
// (an external processor's gRPC metadata).
func (s *HeaderSigner) Header() (name, value string) { return s.header, s.value[0] }

// TokenSigner sets Authorization: Bearer from an OAuth2 token source, which caches the
// token and refreshes it before it expires.
type TokenSigner struct {
	src oauth2.TokenSource
}

// Sign implements Signer.
func (s *TokenSigner) Sign(req *http.Request) error {
	tok, err := s.src.Token()
	if err != nil {
		return err
	}
	req.Header["Authorization"] = []string{"Bearer " + tok.AccessToken}
	return nil
}

// tokenClient fetches tokens: TLS 1.2+, bounded time, no proxy.
func tokenClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: NewTransport(Timeouts{Connect: 10 * time.Second, FirstByte: 30 * time.Second})}
}

// NewGoogleServiceAccount mints Vertex AI tokens from a service-account JSON key. The key's
// token_uri says where; the signed JWT assertion never leaves for anywhere else.
func NewGoogleServiceAccount(keyJSON []byte) (*TokenSigner, error) {
	cfg, err := google.JWTConfigFromJSON(keyJSON, "https://www.googleapis.com/auth/cloud-platform")
	if err != nil {
		return nil, errors.New("not a service-account key")
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tokenClient())
	return &TokenSigner{src: oauth2.ReuseTokenSource(nil, cfg.TokenSource(ctx))}, nil
}

// NewAzureClientCredentials mints Entra ID tokens with the client-credentials grant.
func NewAzureClientCredentials(authorityHost, tenant, clientID, secret, scope string) *TokenSigner {
	cfg := &clientcredentials.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		TokenURL:     authorityHost + "/" + tenant + "/oauth2/v2.0/token",
		Scopes:       []string{scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tokenClient())
	return &TokenSigner{src: oauth2.ReuseTokenSource(nil, cfg.TokenSource(ctx))}
}

// SigV4Signer signs requests with AWS Signature Version 4.
type SigV4Signer struct {
	creds   aws.Credentials
	region  string
	service string
	signer  *v4.Signer
	now     func() time.Time
}

// NewSigV4 returns a SigV4 signer for service (bedrock) in region.
func NewSigV4(accessKeyID, secretAccessKey, sessionToken, region, service string) *SigV4Signer {
	return &SigV4Signer{
		creds:   aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey, SessionToken: sessionToken, Source: "sluice"},
		region:  region,
		service: service,
		signer:  v4.NewSigner(),
		now:     time.Now,
	}
}

// Sign implements Signer: it hashes the body (which the gateway always holds in memory)
// and signs method, URL, headers and that hash.
func (s *SigV4Signer) Sign(req *http.Request) error {
	var body []byte
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return err
		}
		body, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	return s.signer.SignHTTP(req.Context(), s.creds, req, hash, s.service, s.region, s.now())
}
