package external

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

const (
	// maxAnswerBytes bounds a webhook's answer.
	maxAnswerBytes = 1 << 20
	// drainBytes is how much of an unwanted answer is read so the connection can be reused.
	drainBytes = 64 << 10
)

type webhookClient struct {
	url       string
	header    http.Header
	transport *http.Transport
	client    *http.Client
	closed    atomic.Bool
}

func newWebhook(cfg Config) (*webhookClient, error) {
	u, err := url.Parse(cfg.Address)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		// The address is not echoed: a URL may carry a token.
		return nil, errors.New("external processor: HTTP address must be an absolute http:// or https:// URL")
	}
	if u.Scheme == "http" && cfg.TLS != nil {
		return nil, errors.New("external processor: TLS is configured but the HTTP address is http://")
	}
	t := &http.Transport{
		Proxy: nil, // processors are reached directly, never through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    64, // every gateway worker may call at once; keep their connections
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if u.Scheme == "https" {
		t.TLSClientConfig = clientTLS(cfg.TLS) // nil TLS on https: system roots, TLS 1.2+
	}
	header := make(http.Header, len(cfg.Header))
	for k, vs := range cfg.Header {
		header[textproto.CanonicalMIMEHeaderKey(k)] = append([]string(nil), vs...)
	}
	return &webhookClient{
		url:       u.String(),
		header:    header,
		transport: t,
		client: &http.Client{
			Transport: t,
			// A redirect would resend Config.Header elsewhere; a 3xx is an error instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

func (c *webhookClient) Open(ctx context.Context, info Info) (Session, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	return &webhookSession{c: c, info: info}, nil
}

func (c *webhookClient) Close() error {
	c.closed.Store(true)
	c.transport.CloseIdleConnections()
	return nil
}

// webhookSession remembers headers and status for the body calls; it holds no connection.
type webhookSession struct {
	c           *webhookClient
	info        Info
	reqHeaders  map[string]string
	respHeaders map[string]string
	status      int
	closed      atomic.Bool
}

type webhookPrincipal struct {
	Subject string `json:"subject,omitempty"`
	Team    string `json:"team,omitempty"`
}

// webhookRequest is the JSON posted to the webhook (see the package documentation).
type webhookRequest struct {
	Version   string            `json:"version"`
	Phase     string            `json:"phase"`
	RequestID string            `json:"requestId"`
	Principal webhookPrincipal  `json:"principal"`
	Model     string            `json:"model,omitempty"`
	Endpoint  string            `json:"endpoint,omitempty"`
	Route     string            `json:"route,omitempty"`
	Status    int               `json:"status,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"body,omitempty"`
	BodyText  string            `json:"bodyText,omitempty"`
	End       bool              `json:"end"`
}

// webhookAnswer is the JSON the webhook answers with.
type webhookAnswer struct {
	Action        string            `json:"action"`
	Reason        string            `json:"reason"`
	Status        int               `json:"status"`
	SetHeaders    map[string]string `json:"setHeaders"`
	RemoveHeaders []string          `json:"removeHeaders"`
	Body          json.RawMessage   `json:"body"`
	BodyText      *string           `json:"bodyText"`
}

// webhookHeaders renders h for the webhook: lower-cased names, values joined, credentials out.
func webhookHeaders(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	m := make(map[string]string, len(h))
	for name, vs := range h {
		if !forwardable(name) || len(vs) == 0 {
			continue
		}
		key := strings.ToLower(name)
		v := strings.Join(vs, ", ")
		if prev, ok := m[key]; ok {
			v = prev + ", " + v
		}
		m[key] = v
	}
	return m
}

func (s *webhookSession) RequestHeaders(ctx context.Context, h http.Header, method, path string) (Result, error) {
	if s.closed.Load() {
		return Result{}, ErrClosed
	}
	s.reqHeaders = webhookHeaders(h)
	return Result{}, nil
}

func (s *webhookSession) RequestBody(ctx context.Context, body []byte) (Result, error) {
	if s.closed.Load() {
		return Result{}, ErrClosed
	}
	return s.post(ctx, "request", 0, s.reqHeaders, body, true)
}

func (s *webhookSession) ResponseHeaders(ctx context.Context, status int, h http.Header) (Result, error) {
	if s.closed.Load() {
		return Result{}, ErrClosed
	}
	s.status, s.respHeaders = status, webhookHeaders(h)
	return Result{}, nil
}

func (s *webhookSession) ResponseBody(ctx context.Context, chunk []byte, end bool) (Result, error) {
	if s.closed.Load() {
		return Result{}, ErrClosed
	}
	return s.post(ctx, "response", s.status, s.respHeaders, chunk, end)
}

// Close marks the Session closed. It owns no connection or goroutine; a call in flight ends
// with its own context.
func (s *webhookSession) Close() { s.closed.Store(true) }

func (s *webhookSession) post(ctx context.Context, phase string, status int, headers map[string]string, body []byte, end bool) (Result, error) {
	wr := webhookRequest{
		Version:   "v1",
		Phase:     phase,
		RequestID: s.info.RequestID,
		Principal: webhookPrincipal{Subject: s.info.Subject, Team: s.info.Team},
		Model:     s.info.Model,
		Endpoint:  s.info.Endpoint,
		Route:     s.info.Route,
		Status:    status,
		Headers:   headers,
		End:       end,
	}
	if len(body) > 0 {
		if json.Valid(body) {
			wr.Body = body
		} else {
			wr.BodyText = string(body)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep the body's bytes as they are
	if err := enc.Encode(&wr); err != nil {
		return Result{}, fmt.Errorf("external processor: webhook %s: encode: %w", phase, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url, &buf)
	if err != nil {
		return Result{}, fmt.Errorf("external processor: webhook %s: %w", phase, err)
	}
	for k, vs := range s.c.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "sluice-gateway")
	}
	resp, err := s.c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, which may carry a token
		}
		return Result{}, fmt.Errorf("external processor: webhook %s: %w", phase, err)
	}
	defer func() {
		// Read what is left (bounded) so the connection goes back to the pool.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Result{}, fmt.Errorf("external processor: webhook %s: answered HTTP %d", phase, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Result{}, fmt.Errorf("external processor: webhook %s: read answer: %w", phase, err)
	}
	if len(data) > maxAnswerBytes {
		return Result{}, fmt.Errorf("external processor: webhook %s: %w: answer larger than %d bytes", phase, ErrProtocol, maxAnswerBytes)
	}
	res, err := decodeAnswer(data)
	if err != nil {
		return Result{}, fmt.Errorf("external processor: webhook %s: %w", phase, err)
	}
	return res, nil
}

// decodeAnswer turns a webhook answer into a Result. Its errors name no value from the answer.
func decodeAnswer(data []byte) (Result, error) {
	var a webhookAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return Result{}, fmt.Errorf("%w: answer is not a valid JSON object", ErrProtocol)
	}
	hasBody := len(a.Body) > 0 && string(a.Body) != "null"
	if hasBody && a.BodyText != nil {
		return Result{}, fmt.Errorf("%w: answer sets both body and bodyText", ErrProtocol)
	}
	var body []byte
	switch {
	case hasBody:
		body = []byte(a.Body)
	case a.BodyText != nil:
		body = make([]byte, len(*a.BodyText)) // non-nil even when empty: "" clears the body
		copy(body, *a.BodyText)
	}
	names := make([]string, 0, len(a.SetHeaders))
	for name, v := range a.SetHeaders {
		if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(v) {
			return Result{}, fmt.Errorf("%w: invalid header name or value in setHeaders", ErrProtocol)
		}
		names = append(names, name)
	}
	sort.Strings(names) // a stable order for a map
	switch strings.ToLower(a.Action) {
	case "allow":
		return Result{}, nil
	case "block":
		status := a.Status
		if status == 0 {
			status = http.StatusForbidden
		}
		if status < 200 || status > 599 {
			return Result{}, fmt.Errorf("%w: block status %d out of range", ErrProtocol, status)
		}
		imm := &Immediate{Status: status, Details: a.Reason, Body: body}
		hasType := false
		for _, name := range names {
			c := textproto.CanonicalMIMEHeaderKey(name)
			if !mutable(c) {
				continue
			}
			hasType = hasType || c == "Content-Type"
			imm.Header = append(imm.Header, [2]string{c, a.SetHeaders[name]})
		}
		if body != nil && !hasType {
			ct := "text/plain; charset=utf-8"
			if hasBody {
				ct = "application/json"
			}
			imm.Header = append(imm.Header, [2]string{"Content-Type", ct})
		}
		return Result{Immediate: imm}, nil
	case "modify":
		var edit headerEdit
		for _, name := range a.RemoveHeaders {
			if !httpguts.ValidHeaderFieldName(name) {
				return Result{}, fmt.Errorf("%w: invalid header name in removeHeaders", ErrProtocol)
			}
			if c := textproto.CanonicalMIMEHeaderKey(name); mutable(c) {
				edit.remove(c)
			}
		}
		for _, name := range names {
			if c := textproto.CanonicalMIMEHeaderKey(name); mutable(c) {
				edit.put(c, []string{a.SetHeaders[name]})
			}
		}
		res := Result{Body: body}
		edit.result(&res, nil)
		return res, nil
	}
	return Result{}, fmt.Errorf("%w: unknown action", ErrProtocol)
}
