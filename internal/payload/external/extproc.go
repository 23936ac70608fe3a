package external

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"golang.org/x/net/http/httpguts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
)

// AttributesKey is the ProcessingRequest.attributes key under which Info is sent.
const AttributesKey = "sluice"

// maxMessageBytes bounds one gRPC message either way; bodies are sent whole, and gRPC's
// 4 MiB default is below a large chat request.
const maxMessageBytes = 64 << 20

type extProcClient struct {
	conn   *grpc.ClientConn
	client extprocv3.ExternalProcessorClient
	md     []string // Config.Header as gRPC metadata key/value pairs
	closed atomic.Bool
}

func newExtProc(cfg Config) (*extProcClient, error) {
	host, port, err := net.SplitHostPort(cfg.Address)
	if err != nil || host == "" || port == "" {
		return nil, errors.New("external processor: ExtProc address must be host:port")
	}
	var md []string
	for name, values := range cfg.Header {
		key := strings.ToLower(name)
		switch {
		case strings.HasPrefix(key, "grpc-"), key == "content-type", key == "te", key == "user-agent",
			key == "host", key == "connection", strings.HasSuffix(key, "-bin"):
			// gRPC owns these, and -bin would make the value base64-decoded binary.
			return nil, fmt.Errorf("external processor: header %q cannot be sent as gRPC metadata", name)
		}
		for _, v := range values {
			md = append(md, key, v)
		}
	}
	creds := insecure.NewCredentials()
	if cfg.TLS != nil {
		creds = credentials.NewTLS(clientTLS(cfg.TLS))
	}
	// NewClient does not dial: the connection is made on first use and then shared by every
	// stream (HTTP/2 multiplexing), reconnecting with backoff when it breaks.
	conn, err := grpc.NewClient(cfg.Address,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("sluice-gateway"),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("external processor: ExtProc client: %w", err)
	}
	return &extProcClient{conn: conn, client: extprocv3.NewExternalProcessorClient(conn), md: md}, nil
}

func (c *extProcClient) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.conn.Close()
}

func (c *extProcClient) Open(ctx context.Context, info Info) (Session, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("external processor: open stream: %w", err)
	}
	// The stream lives until Session.Close, not until Open's ctx ends (that ctx is a timeout
	// for opening); WithoutCancel keeps its values (tracing, ...).
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if len(c.md) > 0 {
		sctx = metadata.AppendToOutgoingContext(sctx, c.md...)
	}
	stop := context.AfterFunc(ctx, cancel)
	stream, err := c.client.Process(sctx)
	if !stop() {
		// ctx ended while opening: cancel has run (or is running), the stream is dead.
		cancel()
		return nil, fmt.Errorf("external processor: open stream: %w", ctx.Err())
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("external processor: open stream: %w", err)
	}
	s := &extProcSession{stream: stream, cancel: cancel, attrs: infoAttributes(info)}
	return s, nil
}

// infoAttributes builds the attributes map sent with the first message and response headers.
func infoAttributes(info Info) map[string]*structpb.Struct {
	str := func(v string) *structpb.Value { return structpb.NewStringValue(v) }
	return map[string]*structpb.Struct{AttributesKey: {Fields: map[string]*structpb.Value{
		"requestId": str(info.RequestID),
		"subject":   str(info.Subject),
		"team":      str(info.Team),
		"model":     str(info.Model),
		"endpoint":  str(info.Endpoint),
		"route":     str(info.Route),
	}}}
}

// phase names one step of the exchange, for errors and answer matching.
type phase int

const (
	phaseRequestHeaders phase = iota
	phaseRequestBody
	phaseResponseHeaders
	phaseResponseBody
)

func (p phase) String() string {
	switch p {
	case phaseRequestHeaders:
		return "request_headers"
	case phaseRequestBody:
		return "request_body"
	case phaseResponseHeaders:
		return "response_headers"
	default:
		return "response_body"
	}
}

type extProcSession struct {
	stream extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
	attrs  map[string]*structpb.Struct

	closed    atomic.Bool
	closeOnce sync.Once

	// mu serialises calls, which own the fields below; Close only TryLocks it, so that it
	// never waits for a call stuck on the network (it cancels the stream instead).
	mu        sync.Mutex
	sentFirst bool
	done      bool  // the processor ended the stream (or answered immediately): pass through
	failed    error // a call failed: the stream is cancelled, every later call fails
	skipReq   bool  // CONTINUE_AND_REPLACE on request headers: no request body to send
	skipResp  bool  // same for the response direction
	reqView   http.Header
	respView  http.Header
}

func (s *extProcSession) Close() {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		// Half-close first when no call is running (CloseSend must not race SendMsg), so a
		// processor waiting for the next message sees io.EOF; then cancel, which ends the
		// stream and its goroutines whatever the processor does.
		if s.mu.TryLock() {
			if !s.done && s.failed == nil {
				_ = s.stream.CloseSend()
			}
			s.mu.Unlock()
		}
		s.cancel()
	})
}

// begin checks that the Session may still send. skip is true when the phase passes through
// without contacting the processor.
func (s *extProcSession) begin(p phase) (skip bool, err error) {
	if s.closed.Load() {
		return false, ErrClosed
	}
	if s.failed != nil {
		return false, fmt.Errorf("external processor: %s: stream failed earlier: %w", p, s.failed)
	}
	if s.done {
		return true, nil
	}
	switch p {
	case phaseRequestBody:
		return s.skipReq, nil
	case phaseResponseBody:
		return s.skipResp, nil
	}
	return false, nil
}

// fail poisons the Session after err and returns the error to report.
func (s *extProcSession) fail(ctx context.Context, p phase, err error) error {
	switch {
	case ctx.Err() != nil:
		err = ctx.Err() // our deadline cancelled the stream; report that, not Canceled
	case s.closed.Load():
		err = ErrClosed
	}
	s.failed = err
	s.cancel()
	return fmt.Errorf("external processor: %s: %w", p, err)
}

// roundTrip sends req and waits for the processor's answer. A nil answer with a nil error
// means the processor ended the stream with an OK status: pass through.
func (s *extProcSession) roundTrip(ctx context.Context, p phase, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("external processor: %s: %w", p, err)
	}
	// Send and Recv take no context: when ctx ends, cancelling the stream unblocks them.
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	if !s.sentFirst {
		req.Attributes = s.attrs
		s.sentFirst = true
	}
	if err := s.stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, s.fail(ctx, p, err)
	}
	// io.EOF from Send means the stream has ended; Recv tells how.
	for {
		resp, err := s.stream.Recv()
		if errors.Is(err, io.EOF) && ctx.Err() == nil {
			s.done = true
			return nil, nil
		}
		if err != nil {
			return nil, s.fail(ctx, p, err)
		}
		if resp.GetResponse() == nil {
			continue // e.g. only override_message_timeout: keep waiting within ctx
		}
		return resp, nil
	}
}

// headerMap renders h for the processor: pseudo-headers first, then the forwardable headers,
// lower-cased and sorted (a stable order), values as raw_value.
func headerMap(h http.Header, pseudo ...string) *corev3.HeaderMap {
	names := make([]string, 0, len(h))
	n := len(pseudo) / 2
	for name, vs := range h {
		if forwardable(name) {
			names = append(names, name)
			n += len(vs)
		}
	}
	sort.Strings(names)
	hv := make([]corev3.HeaderValue, n) // one allocation for all values
	out := make([]*corev3.HeaderValue, 0, n)
	i := 0
	for j := 0; j+1 < len(pseudo); j += 2 {
		hv[i].Key, hv[i].RawValue = pseudo[j], []byte(pseudo[j+1])
		out = append(out, &hv[i])
		i++
	}
	for _, name := range names {
		key := strings.ToLower(name)
		for _, v := range h[name] {
			hv[i].Key, hv[i].RawValue = key, []byte(v)
			out = append(out, &hv[i])
			i++
		}
	}
	return &corev3.HeaderMap{Headers: out}
}

func (s *extProcSession) RequestHeaders(ctx context.Context, h http.Header, method, path string) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const p = phaseRequestHeaders
	skip, err := s.begin(p)
	if err != nil || skip {
		return Result{}, err
	}
	s.reqView = canonicalView(h)
	scheme := "http"
	if strings.EqualFold(h.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	pseudo := []string{":method", method, ":path", path, ":scheme", scheme}
	if host := h.Get("Host"); host != "" {
		pseudo = append(pseudo, ":authority", host)
	}
	req := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(h, pseudo...)},
	}}
	return s.exchange(ctx, p, req)
}

func (s *extProcSession) RequestBody(ctx context.Context, body []byte) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const p = phaseRequestBody
	skip, err := s.begin(p)
	if err != nil || skip {
		return Result{}, err
	}
	req := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
		RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true},
	}}
	return s.exchange(ctx, p, req)
}

func (s *extProcSession) ResponseHeaders(ctx context.Context, status int, h http.Header) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const p = phaseResponseHeaders
	skip, err := s.begin(p)
	if err != nil || skip {
		return Result{}, err
	}
	s.respView = canonicalView(h)
	req := &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseHeaders{
			ResponseHeaders: &extprocv3.HttpHeaders{Headers: headerMap(h, ":status", strconv.Itoa(status))},
		},
		Attributes: s.attrs,
	}
	return s.exchange(ctx, p, req)
}

func (s *extProcSession) ResponseBody(ctx context.Context, chunk []byte, end bool) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const p = phaseResponseBody
	skip, err := s.begin(p)
	if err != nil || skip {
		return Result{}, err
	}
	req := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
		ResponseBody: &extprocv3.HttpBody{Body: chunk, EndOfStream: end},
	}}
	return s.exchange(ctx, p, req)
}

// exchange runs one phase: send, wait for the matching answer, turn it into a Result.
func (s *extProcSession) exchange(ctx context.Context, p phase, req *extprocv3.ProcessingRequest) (Result, error) {
	resp, err := s.roundTrip(ctx, p, req)
	if err != nil || resp == nil {
		return Result{}, err
	}
	res, err := s.decode(p, resp)
	if err != nil {
		return Result{}, s.fail(ctx, p, err)
	}
	return res, nil
}

// decode checks that resp answers phase p and turns it into a Result.
func (s *extProcSession) decode(p phase, resp *extprocv3.ProcessingResponse) (Result, error) {
	var common *extprocv3.CommonResponse
	ok := false
	switch r := resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		imm, err := immediate(r.ImmediateResponse)
		if err != nil {
			return Result{}, err
		}
		// Envoy sends nothing more after an immediate response; neither do we.
		s.done = true
		return Result{Immediate: imm}, nil
	case *extprocv3.ProcessingResponse_RequestHeaders:
		ok, common = p == phaseRequestHeaders, r.RequestHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_RequestBody:
		ok, common = p == phaseRequestBody, r.RequestBody.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		ok, common = p == phaseResponseHeaders, r.ResponseHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseBody:
		ok, common = p == phaseResponseBody, r.ResponseBody.GetResponse()
	}
	if !ok {
		return Result{}, fmt.Errorf("%w: %s answered with %s", ErrProtocol, p, responseName(resp))
	}
	if common == nil {
		return Result{}, nil
	}
	view := s.reqView
	if p == phaseResponseHeaders || p == phaseResponseBody {
		view = s.respView
	}
	var res Result
	if hm := common.GetHeaderMutation(); hm != nil {
		edit := headerEdit{base: view}
		if err := applyMutation(&edit, hm); err != nil {
			return Result{}, err
		}
		edit.result(&res, view)
	}
	headers := p == phaseRequestHeaders || p == phaseResponseHeaders
	replace := headers && common.GetStatus() == extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	if bm := common.GetBodyMutation(); bm != nil && (!headers || replace) {
		switch m := bm.GetMutation().(type) {
		case *extprocv3.BodyMutation_Body:
			res.Body = m.Body
			if res.Body == nil {
				res.Body = []byte{} // the field is set: replace with nothing
			}
		case *extprocv3.BodyMutation_ClearBody:
			if m.ClearBody {
				res.Body = []byte{}
			}
		case *extprocv3.BodyMutation_StreamedResponse:
			return Result{}, fmt.Errorf("%w: streamed_response body mutation (FULL_DUPLEX_STREAMED) is not supported", ErrProtocol)
		}
		if replace && res.Body != nil {
			// The old length no longer holds; Envoy drops it too.
			if !slices.Contains(res.RemoveHeaders, "Content-Length") {
				res.RemoveHeaders = append(res.RemoveHeaders, "Content-Length")
			}
			for i := 0; i < len(res.SetHeaders); i++ {
				if res.SetHeaders[i][0] == "Content-Length" {
					res.SetHeaders = append(res.SetHeaders[:i], res.SetHeaders[i+1:]...)
					i--
				}
			}
		}
	}
	if replace {
		// Envoy sends nothing more for this direction after CONTINUE_AND_REPLACE.
		if p == phaseRequestHeaders {
			s.skipReq = true
		} else {
			s.skipResp = true
		}
	}
	return res, nil
}

// applyMutation applies an ext_proc HeaderMutation to edit as Envoy does: removals first,
// then each set in order.
func applyMutation(edit *headerEdit, hm *extprocv3.HeaderMutation) error {
	for _, name := range hm.GetRemoveHeaders() {
		if !httpguts.ValidHeaderFieldName(strings.TrimPrefix(name, ":")) {
			return fmt.Errorf("%w: invalid header name in remove_headers", ErrProtocol)
		}
		if c := textproto.CanonicalMIMEHeaderKey(name); mutable(c) {
			edit.remove(c)
		}
	}
	for _, o := range hm.GetSetHeaders() {
		name, value, err := headerValue(o.GetHeader())
		if err != nil {
			return err
		}
		if name == "" || !mutable(name) {
			continue
		}
		cur := edit.get(name)
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
			// The default action: Envoy then follows the deprecated append flag, whose
			// ext_proc default is false (overwrite).
			if o.GetAppend().GetValue() && len(cur) > 0 {
				edit.put(name, append(append([]string(nil), cur...), value))
			} else {
				edit.put(name, []string{value})
			}
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if len(cur) == 0 {
				edit.put(name, []string{value})
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			edit.put(name, []string{value})
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if len(cur) > 0 {
				edit.put(name, []string{value})
			}
		default:
			return fmt.Errorf("%w: unknown append_action %d", ErrProtocol, o.GetAppendAction())
		}
	}
	return nil
}

// headerValue validates one HeaderValue and returns its canonical name and value; an empty
// name means there was no header.
func headerValue(hv *corev3.HeaderValue) (name, value string, err error) {
	if hv == nil {
		return "", "", nil
	}
	if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
		return "", "", fmt.Errorf("%w: header sets both value and raw_value", ErrProtocol)
	}
	value = hv.GetValue()
	if raw := hv.GetRawValue(); len(raw) > 0 {
		value = string(raw)
	}
	key := hv.GetKey()
	if !httpguts.ValidHeaderFieldName(strings.TrimPrefix(key, ":")) || !httpguts.ValidHeaderFieldValue(value) {
		return "", "", fmt.Errorf("%w: invalid header name or value in set_headers", ErrProtocol)
	}
	return textproto.CanonicalMIMEHeaderKey(key), value, nil
}

// immediate converts an ImmediateResponse.
func immediate(ir *extprocv3.ImmediateResponse) (*Immediate, error) {
	status := int(ir.GetStatus().GetCode())
	if status < 200 || status > 599 {
		status = 200 // Envoy's default, and what it falls back to for an invalid code
	}
	imm := &Immediate{Status: status, Details: ir.GetDetails()}
	if len(ir.GetBody()) > 0 {
		imm.Body = ir.GetBody()
	}
	for _, o := range ir.GetHeaders().GetSetHeaders() {
		name, value, err := headerValue(o.GetHeader())
		if err != nil {
			return nil, err
		}
		if name != "" && mutable(name) {
			imm.Header = append(imm.Header, [2]string{name, value})
		}
	}
	return imm, nil
}

func responseName(resp *extprocv3.ProcessingResponse) string {
	switch resp.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingResponse_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingResponse_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingResponse_RequestTrailers:
		return "request_trailers"
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		return "response_trailers"
	case *extprocv3.ProcessingResponse_StreamedImmediateResponse:
		return "streamed_immediate_response"
	}
	return "an unknown response"
}
