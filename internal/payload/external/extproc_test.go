package external

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// procFunc is one test processor's stream handler.
type procFunc func(extprocv3.ExternalProcessor_ProcessServer) error

type testProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
	fn     procFunc
	active atomic.Int32 // handlers running, so leak checks can wait for the server side too
}

func (p *testProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	p.active.Add(1)
	defer p.active.Add(-1)
	return p.fn(s)
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

type extProcServer struct {
	addr string
	proc *testProcessor
	lis  *countingListener
}

func startExtProc(t testing.TB, fn procFunc, opts ...grpc.ServerOption) *extProcServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: lis}
	proc := &testProcessor{fn: fn}
	srv := grpc.NewServer(opts...)
	extprocv3.RegisterExternalProcessorServer(srv, proc)
	go func() { _ = srv.Serve(cl) }()
	t.Cleanup(srv.Stop)
	return &extProcServer{addr: lis.Addr().String(), proc: proc, lis: cl}
}

// serveLoop answers each message with answer(req); a nil answer ends the stream with OK.
func serveLoop(answer func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse) procFunc {
	return func(s extprocv3.ExternalProcessor_ProcessServer) error {
		for {
			req, err := s.Recv()
			if err != nil {
				return nil // io.EOF or cancellation: the client is done
			}
			resp := answer(req)
			if resp == nil {
				return nil
			}
			if err := s.Send(resp); err != nil {
				return nil
			}
		}
	}
}

// recorder keeps what a processor received.
type recorder struct {
	mu   sync.Mutex
	reqs []*extprocv3.ProcessingRequest
	md   []metadata.MD
}

func (r *recorder) add(s extprocv3.ExternalProcessor_ProcessServer, req *extprocv3.ProcessingRequest) {
	md, _ := metadata.FromIncomingContext(s.Context())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, proto.Clone(req).(*extprocv3.ProcessingRequest))
	r.md = append(r.md, md)
}

func (r *recorder) all() ([]*extprocv3.ProcessingRequest, []metadata.MD) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs), slices.Clone(r.md)
}

func setHeader(key, value string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, RawValue: []byte(value)}}
}

func common(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse_RequestHeaders {
	return &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: c}}
}

// policyProcessor is a small content policy: it tags and strips request headers, redacts a
// word in the request body, blocks bodies with a trigger word, and upper-cases answer chunks.
func policyProcessor(rec *recorder) procFunc {
	return func(s extprocv3.ExternalProcessor_ProcessServer) error {
		for {
			req, err := s.Recv()
			if err != nil {
				return nil
			}
			rec.add(s, req)
			var resp *extprocv3.ProcessingResponse
			switch r := req.GetRequest().(type) {
			case *extprocv3.ProcessingRequest_RequestHeaders:
				resp = &extprocv3.ProcessingResponse{Response: common(&extprocv3.CommonResponse{
					HeaderMutation: &extprocv3.HeaderMutation{
						SetHeaders:    []*corev3.HeaderValueOption{setHeader("x-processed", "yes")},
						RemoveHeaders: []string{"x-remove-me"},
					},
				})}
			case *extprocv3.ProcessingRequest_RequestBody:
				body := r.RequestBody.GetBody()
				if bytes.Contains(body, []byte("forbidden")) {
					resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
						ImmediateResponse: &extprocv3.ImmediateResponse{
							Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
							Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
								setHeader("content-type", "application/json"),
							}},
							Body:    []byte(`{"error":{"message":"blocked by policy"}}`),
							Details: "policy_trigger_word",
						},
					}}
					break
				}
				resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
					RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
						BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{
							Body: bytes.ReplaceAll(body, []byte("secret"), []byte("[redacted]")),
						}},
					}},
				}}
			case *extprocv3.ProcessingRequest_ResponseHeaders:
				resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
					ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
						HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
							{Header: &corev3.HeaderValue{Key: "x-resp-processed", Value: "1"}},
						}},
					}},
				}}
			case *extprocv3.ProcessingRequest_ResponseBody:
				resp = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
					ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
						BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{
							Body: bytes.ToUpper(r.ResponseBody.GetBody()),
						}},
					}},
				}}
			}
			if err := s.Send(resp); err != nil {
				return nil
			}
		}
	}
}

func newClient(t testing.TB, cfg Config) Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func timeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var testInfo = Info{RequestID: "req-1", Subject: "alice", Team: "research", Model: "gpt-x", Endpoint: "chat", Route: "default"}

// clientHeaders carries every kind of credential; none may reach a processor.
func clientHeaders() http.Header {
	return http.Header{
		"Content-Type":        {"application/json"},
		"Authorization":       {"Bearer user-secret-1"},
		"Proxy-Authorization": {"Basic user-secret-2"},
		"X-Api-Key":           {"user-secret-3"},
		"Api-Key":             {"user-secret-4"},
		"X-Goog-Api-Key":      {"user-secret-5"},
		"Cookie":              {"session=user-secret-6"},
		"X-Remove-Me":         {"1"},
		"X-Multi":             {"a", "b"},
		"Host":                {"api.example.com"},
	}
}

func TestExtProcExchange(t *testing.T) {
	rec := &recorder{}
	srv := startExtProc(t, policyProcessor(rec))
	c := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr, Header: http.Header{"Authorization": {"Bearer processor-token"}}})
	ctx := timeout(t)

	sess, err := c.Open(ctx, testInfo)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	res, err := sess.RequestHeaders(ctx, clientHeaders(), "POST", "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.SetHeaders, [][2]string{{"X-Processed", "yes"}}) || !slices.Equal(res.RemoveHeaders, []string{"X-Remove-Me"}) || res.Body != nil || res.Immediate != nil {
		t.Fatalf("request headers result = %+v", res)
	}

	res, err = sess.RequestBody(ctx, []byte(`{"messages":[{"role":"user","content":"my secret plan"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"messages":[{"role":"user","content":"my [redacted] plan"}]}` {
		t.Fatalf("request body = %q", res.Body)
	}

	res, err = sess.ResponseHeaders(ctx, 200, http.Header{"Content-Type": {"text/event-stream"}, "Set-Cookie": {"s=user-secret-7"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.SetHeaders, [][2]string{{"X-Resp-Processed", "1"}}) {
		t.Fatalf("response headers result = %+v", res)
	}
	for i, chunk := range []string{"data: hello\n\n", "data: world\n\n"} {
		res, err = sess.ResponseBody(ctx, []byte(chunk), i == 1)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Body) != strings.ToUpper(chunk) {
			t.Fatalf("chunk %d = %q", i, res.Body)
		}
	}
	sess.Close()
	sess.Close() // idempotent
	if _, err := sess.RequestBody(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}

	reqs, mds := rec.all()
	if len(reqs) != 5 {
		t.Fatalf("processor got %d messages, want 5", len(reqs))
	}
	// Credentials never reach the processor, whatever their name; the processor's own does.
	for i, r := range reqs {
		if text := prototext.Format(r); strings.Contains(text, "user-secret") {
			t.Fatalf("message %d carries a client credential:\n%s", i, text)
		}
		if got := mds[i].Get("authorization"); !slices.Equal(got, []string{"Bearer processor-token"}) {
			t.Fatalf("processor credential metadata = %q", got)
		}
	}
	hdrs := map[string][]string{}
	for _, h := range reqs[0].GetRequestHeaders().GetHeaders().GetHeaders() {
		if h.GetValue() != "" {
			t.Fatalf("header %s sent in value, want raw_value", h.GetKey())
		}
		hdrs[h.GetKey()] = append(hdrs[h.GetKey()], string(h.GetRawValue()))
	}
	want := map[string][]string{
		":method": {"POST"}, ":path": {"/v1/chat/completions"}, ":scheme": {"http"}, ":authority": {"api.example.com"},
		"content-type": {"application/json"}, "x-remove-me": {"1"}, "x-multi": {"a", "b"},
	}
	if len(hdrs) != len(want) {
		t.Fatalf("request headers sent = %v, want %v", hdrs, want)
	}
	for k, v := range want {
		if !slices.Equal(hdrs[k], v) {
			t.Fatalf("header %s = %q, want %q", k, hdrs[k], v)
		}
	}
	if reqs[0].GetRequestHeaders().GetEndOfStream() {
		t.Fatal("request_headers end_of_stream set although a body follows")
	}
	attrs := reqs[0].GetAttributes()[AttributesKey].GetFields()
	for k, v := range map[string]string{"requestId": "req-1", "subject": "alice", "team": "research", "model": "gpt-x", "endpoint": "chat", "route": "default"} {
		if attrs[k].GetStringValue() != v {
			t.Fatalf("attribute %s = %q, want %q", k, attrs[k].GetStringValue(), v)
		}
	}
	if !reqs[1].GetRequestBody().GetEndOfStream() || reqs[1].GetAttributes() != nil {
		t.Fatalf("request_body = %v", reqs[1])
	}
	rh := reqs[2].GetResponseHeaders()
	if h := rh.GetHeaders().GetHeaders(); len(h) != 2 || h[0].GetKey() != ":status" || string(h[0].GetRawValue()) != "200" || h[1].GetKey() != "content-type" {
		t.Fatalf("response_headers = %v", rh)
	}
	if reqs[2].GetAttributes()[AttributesKey] == nil {
		t.Fatal("response_headers carries no attributes")
	}
	if reqs[3].GetResponseBody().GetEndOfStream() || !reqs[4].GetResponseBody().GetEndOfStream() {
		t.Fatal("end_of_stream must be set on the last chunk only")
	}
}

func TestExtProcImmediateResponse(t *testing.T) {
	rec := &recorder{}
	srv := startExtProc(t, policyProcessor(rec))
	c := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr})
	ctx := timeout(t)
	sess, err := c.Open(ctx, testInfo)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.RequestHeaders(ctx, http.Header{}, "POST", "/v1/chat/completions"); err != nil {
		t.Fatal(err)
	}
	res, err := sess.RequestBody(ctx, []byte(`{"messages":[{"content":"something forbidden"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	imm := res.Immediate
	if imm == nil || imm.Status != 403 || string(imm.Body) != `{"error":{"message":"blocked by policy"}}` ||
		imm.Details != "policy_trigger_word" || !slices.Equal(imm.Header, [][2]string{{"Content-Type", "application/json"}}) {
		t.Fatalf("immediate = %+v", imm)
	}
	// Nothing more goes to the processor after an immediate response.
	if res, err := sess.ResponseHeaders(ctx, 200, nil); err != nil || res.SetHeaders != nil {
		t.Fatalf("after immediate: %+v, %v", res, err)
	}
	if reqs, _ := rec.all(); len(reqs) != 2 {
		t.Fatalf("processor got %d messages, want 2", len(reqs))
	}
}

// TestExtProcHeaderMutationRules covers append actions, remove-then-set, ignored routing
// headers, clear_body and the immediate status default.
func TestExtProcHeaderMutationRules(t *testing.T) {
	srv := startExtProc(t, serveLoop(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			return &extprocv3.ProcessingResponse{Response: common(&extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{
					RemoveHeaders: []string{"x-e", "x-gone", ":path", "host"},
					SetHeaders: []*corev3.HeaderValueOption{
						{Header: &corev3.HeaderValue{Key: "x-a", RawValue: []byte("new")}, AppendAction: corev3.HeaderValueOption_ADD_IF_ABSENT},
						{Header: &corev3.HeaderValue{Key: "x-b", RawValue: []byte("added")}, AppendAction: corev3.HeaderValueOption_ADD_IF_ABSENT},
						{Header: &corev3.HeaderValue{Key: "x-c", RawValue: []byte("no")}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS},
						{Header: &corev3.HeaderValue{Key: "x-d", RawValue: []byte("2")}, Append: wrapperspb.Bool(true)},
						{Header: &corev3.HeaderValue{Key: "x-e", RawValue: []byte("again")}},
						{Header: &corev3.HeaderValue{Key: "x-f", Value: "plain"}, AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD},
						setHeader(":path", "/elsewhere"),
					},
				},
				// Ignored: a body mutation on a headers answer needs CONTINUE_AND_REPLACE.
				BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte("x")}},
			})}
		case *extprocv3.ProcessingRequest_RequestBody:
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
				RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
					HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
						// x-b was added by the headers answer: the view remembers it.
						{Header: &corev3.HeaderValue{Key: "x-b", RawValue: []byte("again")}, AppendAction: corev3.HeaderValueOption_ADD_IF_ABSENT},
					}},
					BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}},
				}},
			}}
		default:
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{
				ImmediateResponse: &extprocv3.ImmediateResponse{Body: []byte("ok")},
			}}
		}
	}))
	c := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr})
	ctx := timeout(t)
	sess, err := c.Open(ctx, Info{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.RequestHeaders(ctx, http.Header{"X-A": {"old"}, "x-d": {"1"}, "X-E": {"e"}, "X-Gone": {"g"}}, "GET", "/")
	if err != nil {
		t.Fatal(err)
	}
	wantSet := [][2]string{{"X-B", "added"}, {"X-D", "1, 2"}, {"X-E", "again"}, {"X-F", "plain"}}
	if !slices.Equal(res.SetHeaders, wantSet) || !slices.Equal(res.RemoveHeaders, []string{"X-Gone"}) || res.Body != nil {
		t.Fatalf("result = %+v, want set %v remove [X-Gone]", res, wantSet)
	}
	res, err = sess.RequestBody(ctx, []byte("body"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Body == nil || len(res.Body) != 0 || res.SetHeaders != nil {
		t.Fatalf("clear_body result = %+v", res)
	}
	res, err = sess.ResponseHeaders(ctx, 502, nil)
	if err != nil || res.Immediate == nil || res.Immediate.Status != 200 || string(res.Immediate.Body) != "ok" {
		t.Fatalf("immediate without status = %+v, %v", res.Immediate, err)
	}
}

func TestExtProcContinueAndReplace(t *testing.T) {
	var bodies atomic.Int32
	srv := startExtProc(t, serveLoop(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			return &extprocv3.ProcessingResponse{Response: common(&extprocv3.CommonResponse{
				Status:         extprocv3.CommonResponse_CONTINUE_AND_REPLACE,
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-replaced", "1")}},
				BodyMutation:   &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(`{"replaced":true}`)}},
			})}
		case *extprocv3.ProcessingRequest_RequestBody:
			bodies.Add(1)
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
		default:
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
		}
	}))
	c := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr})
	ctx := timeout(t)
	sess, err := c.Open(ctx, Info{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.RequestHeaders(ctx, http.Header{"Content-Length": {"10"}}, "POST", "/")
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Body) != `{"replaced":true}` || !slices.Equal(res.SetHeaders, [][2]string{{"X-Replaced", "1"}}) || !slices.Equal(res.RemoveHeaders, []string{"Content-Length"}) {
		t.Fatalf("result = %+v", res)
	}
	// The request direction is finished: its body is not sent.
	if res, err := sess.RequestBody(ctx, []byte("original")); err != nil || res.Body != nil {
		t.Fatalf("request body after replace = %+v, %v", res, err)
	}
	// The response direction still is.
	if _, err := sess.ResponseHeaders(ctx, 200, nil); err != nil {
		t.Fatal(err)
	}
	if n := bodies.Load(); n != 0 {
		t.Fatalf("processor got %d request bodies, want 0", n)
	}
}

// TestExtProcStreamOutlivesOpenContext: Open's ctx bounds the opening only; the stream lives
// until Session.Close.
func TestExtProcStreamOutlivesOpenContext(t *testing.T) {
	srv := startExtProc(t, serveLoop(func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{Response: common(&extprocv3.CommonResponse{})}
	}))
	c := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr})
	openCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	sess, err := c.Open(openCtx, Info{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.RequestHeaders(timeout(t), nil, "GET", "/"); err != nil {
		t.Fatal(err)
	}
	// A call whose ctx is already over fails without harming the stream.
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := sess.RequestBody(done, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
}

// TestExtProcHalfClose: a processor that ends its stream early (OK status) lets the rest of
// the exchange through, as Envoy does.
func TestExtProcHalfClose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers int // headers answered before the handler returns
	}{{"before answering", 0}, {"after headers", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startExtProc(t, func(s extprocv3.ExternalProcessor_ProcessServer) error {
				for i := 0; i < tc.answers; i++ {
					if _, err := s.Recv(); err != nil {
						return nil
					}
					resp := &extprocv3.ProcessingResponse{Response: common(&extprocv3.CommonResponse{
						HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-seen", "1")}},
					})}
					if err := s.Send(resp); err != nil {
						return nil
					}
				}
				return nil // ends the stream with OK
			})
			c := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr})
			ctx := timeout(t)
			sess, err := c.Open(ctx, Info{})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			res, err := sess.RequestHeaders(ctx, http.Header{}, "POST", "/")
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.SetHeaders); got != tc.answers {
				t.Fatalf("headers result = %+v", res)
			}
			for _, call := range []func() (Result, error){
				func() (Result, error) { return sess.RequestBody(ctx, []byte("b")) },
				func() (Result, error) { return sess.ResponseHeaders(ctx, 200, nil) },
				func() (Result, error) { return sess.ResponseBody(ctx, []byte("c"), true) },
			} {
				if res, err := call(); err != nil || res.Body != nil || res.Immediate != nil {
					t.Fatalf("after half-close: %+v, %v", res, err)
				}
			}
		})
	}
}

func TestExtProcErrors(t *testing.T) {
	ctx := timeout(t)
	t.Run("wrong phase", func(t *testing.T) {
		srv := startExtProc(t, serveLoop(func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
			return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
		}))
		sess, err := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr}).Open(ctx, Info{})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if _, err := sess.RequestHeaders(ctx, nil, "GET", "/"); !errors.Is(err, ErrProtocol) {
			t.Fatalf("err = %v, want ErrProtocol", err)
		}
		if _, err := sess.RequestBody(ctx, nil); !errors.Is(err, ErrProtocol) {
			t.Fatalf("later call: err = %v, want the earlier failure", err)
		}
	})
	t.Run("invalid mutation", func(t *testing.T) {
		srv := startExtProc(t, serveLoop(func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
			return &extprocv3.ProcessingResponse{Response: common(&extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
					{Header: &corev3.HeaderValue{Key: "x-a", Value: "v", RawValue: []byte("r")}},
				}},
			})}
		}))
		sess, err := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr}).Open(ctx, Info{})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		if _, err := sess.RequestHeaders(ctx, nil, "GET", "/"); !errors.Is(err, ErrProtocol) {
			t.Fatalf("err = %v, want ErrProtocol", err)
		}
	})
	t.Run("grpc status", func(t *testing.T) {
		srv := startExtProc(t, func(s extprocv3.ExternalProcessor_ProcessServer) error {
			_, _ = s.Recv()
			return status.Error(codes.PermissionDenied, "no")
		})
		sess, err := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr}).Open(ctx, Info{})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		_, err = sess.RequestHeaders(ctx, http.Header{"Authorization": {"Bearer user-secret"}}, "GET", "/")
		if status.Code(errors.Unwrap(err)) != codes.PermissionDenied {
			t.Fatalf("err = %v, want PermissionDenied", err)
		}
		if strings.Contains(err.Error(), "user-secret") {
			t.Fatal("error message carries a header value")
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		_ = lis.Close()
		c := newClient(t, Config{Protocol: "ExtProc", Address: addr})
		if _, err := c.Open(ctx, Info{}); err == nil {
			t.Fatal("Open on a closed port succeeded")
		}
	})
}

// waitFor polls cond until it holds or a few seconds pass: goroutines end asynchronously.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Logf("goroutines: %d\n%s", runtime.NumGoroutine(), buf)
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settledGoroutines returns the goroutine count once it has held still for a few polls, so
// that goroutines still winding down are not counted in a baseline.
func settledGoroutines(t *testing.T) int {
	n, same := runtime.NumGoroutine(), 0
	waitFor(t, "the goroutine count to settle", func() bool {
		m := runtime.NumGoroutine()
		if m == n {
			same++
		} else {
			n, same = m, 0
		}
		return same >= 5
	})
	return n
}

// TestExtProcDeadlineNoLeak: a processor that never answers. Each call returns at its
// deadline, later calls fail at once, and closed Sessions leave no goroutine behind.
func TestExtProcDeadlineNoLeak(t *testing.T) {
	gotGET := make(chan struct{}) // closed when a GET's headers arrive: the last scenario below
	var once sync.Once
	srv := startExtProc(t, func(s extprocv3.ExternalProcessor_ProcessServer) error {
		for {
			req, err := s.Recv()
			if err != nil {
				return nil // never answers; ends only when the client goes away
			}
			for _, h := range req.GetRequestHeaders().GetHeaders().GetHeaders() {
				if h.GetKey() == ":method" && string(h.GetRawValue()) == "GET" {
					once.Do(func() { close(gotGET) })
				}
			}
		}
	})
	c := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr})

	// Warm up: the connection's own goroutines belong in the baseline.
	warm, err := c.Open(timeout(t), Info{})
	if err != nil {
		t.Fatal(err)
	}
	// Once the handler runs, both ends of the connection are fully up.
	waitFor(t, "the warm-up stream to reach the processor", func() bool { return srv.proc.active.Load() == 1 })
	warm.Close()
	waitFor(t, "the warm-up stream to end", func() bool { return srv.proc.active.Load() == 0 })
	baseline := settledGoroutines(t)

	for i := 0; i < 5; i++ {
		sess, err := c.Open(timeout(t), testInfo)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		start := time.Now()
		_, err = sess.RequestHeaders(ctx, http.Header{}, "POST", "/")
		elapsed := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if elapsed > 2*time.Second {
			t.Fatalf("call returned after %v, deadline was 50ms", elapsed)
		}
		// The stream is dead: later calls fail without waiting.
		start = time.Now()
		if _, err := sess.RequestBody(context.Background(), []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("later call: err = %v", err)
		}
		if time.Since(start) > time.Second {
			t.Fatal("later call waited")
		}
		sess.Close()
	}
	// A Session closed while its call is blocked: the call returns, nothing leaks.
	sess, err := c.Open(timeout(t), Info{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := sess.RequestHeaders(context.Background(), http.Header{}, "GET", "/")
		errc <- err
	}()
	// Once the processor holds the message, the call is waiting for its answer.
	select {
	case <-gotGET:
	case <-time.After(5 * time.Second):
		t.Fatal("the processor never got the message")
	}
	sess.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("blocked call succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a running call")
	}

	waitFor(t, "processor handlers to end", func() bool { return srv.proc.active.Load() == 0 })
	waitFor(t, "goroutines to return to the baseline", func() bool { return runtime.NumGoroutine() <= baseline })
	if n := srv.lis.accepted.Load(); n != 1 {
		t.Fatalf("%d connections for 7 sessions, want 1 shared", n)
	}
}

func TestExtProcTLS(t *testing.T) {
	// httptest's self-signed certificate serves for 127.0.0.1.
	hs := httptest.NewTLSServer(http.NotFoundHandler())
	defer hs.Close()
	cert := hs.TLS.Certificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(hs.Certificate())

	srv := startExtProc(t, serveLoop(func(*extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{Response: common(&extprocv3.CommonResponse{
			HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-tls", "1")}},
		})}
	}), grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	ctx := timeout(t)
	c := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr, TLS: &tls.Config{RootCAs: roots}})
	sess, err := c.Open(ctx, Info{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := sess.RequestHeaders(ctx, nil, "GET", "/")
	if err != nil || len(res.SetHeaders) != 1 {
		t.Fatalf("over TLS: %+v, %v", res, err)
	}
	// A plaintext client cannot talk to it.
	plain := newClient(t, Config{Protocol: "ExtProc", Address: srv.addr})
	if s, err := plain.Open(ctx, Info{}); err == nil {
		_, err = s.RequestHeaders(ctx, nil, "GET", "/")
		s.Close()
		if err == nil {
			t.Fatal("plaintext call to a TLS processor succeeded")
		}
	}
}

func TestNewValidation(t *testing.T) {
	for _, cfg := range []Config{
		{Protocol: "SOAP", Address: "127.0.0.1:1"},
		{Protocol: "ExtProc", Address: "127.0.0.1"},
		{Protocol: "ExtProc", Address: "http://127.0.0.1:1"},
		{Protocol: "ExtProc", Address: "127.0.0.1:1", Header: http.Header{"Grpc-Timeout": {"1S"}}},
		{Protocol: "ExtProc", Address: "127.0.0.1:1", Header: http.Header{"X-Bad": {"a\nb"}}},
		{Protocol: "HTTP", Address: "127.0.0.1:1"},
		{Protocol: "HTTP", Address: "ftp://127.0.0.1/x"},
		{Protocol: "HTTP", Address: "http://127.0.0.1/x", TLS: &tls.Config{}},
		{Protocol: "HTTP", Address: "http://127.0.0.1/x", Header: http.Header{"Bad Name": {"v"}}},
	} {
		if c, err := New(cfg); err == nil {
			_ = c.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		} else if strings.Contains(err.Error(), "a\nb") {
			t.Errorf("error carries a header value: %v", err)
		}
	}
	for _, cfg := range []Config{
		{Protocol: "extproc", Address: "localhost:9000"},
		{Protocol: "HTTP", Address: "https://processor.example/hook"},
	} {
		c, err := New(cfg)
		if err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
			continue
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if _, err := c.Open(context.Background(), Info{}); !errors.Is(err, ErrClosed) {
			t.Errorf("Open after Close: %v", err)
		}
	}
}

// BenchmarkExtProcSession measures one ExtProc session over loopback: open the stream,
// request headers and body round trips (the processor mutates both), close.
func BenchmarkExtProcSession(b *testing.B) {
	srv := startExtProc(b, serveLoop(func(req *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		if req.GetRequestHeaders() != nil {
			return &extprocv3.ProcessingResponse{Response: common(&extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{setHeader("x-processed", "yes")}},
			})}
		}
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
			RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
				BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: req.GetRequestBody().GetBody()}},
			}},
		}}
	}))
	c := newClient(b, Config{Protocol: "ExtProc", Address: srv.addr})
	h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer x"}, "User-Agent": {"bench"}, "Accept": {"*/*"}}
	body := []byte(`{"model":"gpt-x","messages":[{"role":"user","content":"` + strings.Repeat("hello ", 200) + `"}]}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sess, err := c.Open(ctx, testInfo)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sess.RequestHeaders(ctx, h, "POST", "/v1/chat/completions"); err != nil {
			b.Fatal(err)
		}
		if res, err := sess.RequestBody(ctx, body); err != nil || len(res.Body) != len(body) {
			b.Fatal(err)
		}
		sess.Close()
	}
}
