package egress

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/golang-jwt/jwt/v5"
)

// upstreamSeeing records the Authorization header of each request.
func upstreamSeeing(t *testing.T) (*httptest.Server, *atomic.Value) {
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Clone())
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func send(t *testing.T, up *Upstream, url string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"x":1}`))
	req.Header.Set("Authorization", "Bearer client-secret")
	resp, err := up.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// TestGoogleServiceAccount: the token endpoint named by the key receives a JWT assertion
// signed with the key, and its token is sent upstream, cached between requests.
func TestGoogleServiceAccount(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	var mints atomic.Int32
	var tokenURL string
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			t.Errorf("grant_type %q", r.Form.Get("grant_type"))
		}
		tok, err := jwt.Parse(r.Form.Get("assertion"), func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"RS256"}))
		if err != nil {
			t.Errorf("assertion: %v", err)
			w.WriteHeader(400)
			return
		}
		c := tok.Claims.(jwt.MapClaims)
		if c["iss"] != "sluice@proj.iam.gserviceaccount.com" || c["aud"] != tokenURL || !strings.Contains(c["scope"].(string), "cloud-platform") {
			t.Errorf("claims %v", c)
		}
		mints.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"ya29.minted","token_type":"Bearer","expires_in":3600}`))
	}))
	defer tokenSrv.Close()
	tokenURL = tokenSrv.URL + "/token"
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj", "private_key_id": "k1", "private_key": string(keyPEM),
		"client_email": "sluice@proj.iam.gserviceaccount.com", "client_id": "1", "token_uri": tokenURL,
	})
	signer, err := NewGoogleServiceAccount(sa)
	if err != nil {
		t.Fatal(err)
	}
	srv, seen := upstreamSeeing(t)
	up := NewUpstream(Options{Signer: signer, Timeouts: Timeouts{Connect: time.Second}})
	send(t, up, srv.URL)
	send(t, up, srv.URL)
	if got := seen.Load().(http.Header).Get("Authorization"); got != "Bearer ya29.minted" {
		t.Fatalf("Authorization %q", got)
	}
	if mints.Load() != 1 {
		t.Fatalf("%d tokens minted for 2 requests", mints.Load())
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestAzureClientCredentials: Entra ID's token endpoint gets the client-credentials grant.
func TestAzureClientCredentials(t *testing.T) {
	var mints atomic.Int32
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.URL.Path != "/tenant-1/oauth2/v2.0/token" || r.Form.Get("grant_type") != "client_credentials" ||
			r.Form.Get("client_id") != "app-1" || r.Form.Get("client_secret") != "s3cret" ||
			r.Form.Get("scope") != "https://cognitiveservices.azure.com/.default" {
			t.Errorf("token request %s %v", r.URL.Path, r.Form)
			w.WriteHeader(400)
			return
		}
		mints.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"entra-token","token_type":"Bearer","expires_in":3600}`))
	}))
	defer tokenSrv.Close()
	srv, seen := upstreamSeeing(t)
	up := NewUpstream(Options{Signer: NewAzureClientCredentials(tokenSrv.URL, "tenant-1", "app-1", "s3cret", "https://cognitiveservices.azure.com/.default")})
	send(t, up, srv.URL)
	send(t, up, srv.URL)
	if got := seen.Load().(http.Header).Get("Authorization"); got != "Bearer entra-token" || mints.Load() != 1 {
		t.Fatalf("Authorization %q after %d mints", got, mints.Load())
	}
}

// TestTokenEndpointDown: a credential that cannot be obtained is a CredentialError, and
// the request never goes upstream.
func TestTokenEndpointDown(t *testing.T) {
	tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer tokenSrv.Close()
	srv, seen := upstreamSeeing(t)
	up := NewUpstream(Options{Signer: NewAzureClientCredentials(tokenSrv.URL, "t", "c", "s", "x")})
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader("{}"))
	_, err := up.Transport.RoundTrip(req)
	var ce *CredentialError
	if !asCredErr(err, &ce) || seen.Load() != nil {
		t.Fatalf("err %v, upstream reached: %v", err, seen.Load() != nil)
	}
}

func asCredErr(err error, target **CredentialError) bool {
	ce, ok := err.(*CredentialError)
	if ok {
		*target = ce
	}
	return ok
}

// TestSigV4: the upstream recomputes the signature with the SDK's signer from what it
// received, and it matches.
func TestSigV4(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "session-1"}
	var checked atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			t.Errorf("X-Amz-Date: %v", err)
			return
		}
		// Rebuild the request as the client signed it and sign it again.
		re, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		// Only the headers the signature says it covers (the transport adds others, such
		// as Accept-Encoding, after signing, as AWS expects).
		auth := r.Header.Get("Authorization")
		_, signed, _ := strings.Cut(auth, "SignedHeaders=")
		signed, _, _ = strings.Cut(signed, ",")
		for _, k := range strings.Split(signed, ";") {
			if v := r.Header.Values(k); len(v) > 0 && k != "host" {
				re.Header[http.CanonicalHeaderKey(k)] = v
			}
		}
		hash := r.Header.Get("X-Amz-Content-Sha256")
		if err := v4.NewSigner().SignHTTP(r.Context(), creds, re, hash, "bedrock", "eu-central-1", date); err != nil {
			t.Error(err)
		}
		if re.Header.Get("Authorization") != r.Header.Get("Authorization") || r.Header.Get("X-Amz-Security-Token") != "session-1" {
			t.Errorf("signature mismatch:\n got %s\nwant %s", r.Header.Get("Authorization"), re.Header.Get("Authorization"))
		}
		if !strings.Contains(r.Header.Get("Authorization"), "Credential=AKIDEXAMPLE/") || strings.Contains(r.Header.Get("Authorization"), "client-secret") {
			t.Errorf("Authorization %q", r.Header.Get("Authorization"))
		}
		checked.Store(true)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	up := NewUpstream(Options{BaseURL: u, Signer: NewSigV4(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, "eu-central-1", "bedrock")})
	send(t, up, srv.URL+"/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")
	if !checked.Load() {
		t.Fatal("upstream not reached")
	}
}
