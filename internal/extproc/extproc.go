// Package extproc is Sluice as an Envoy External Processing (ext_proc) server: Envoy
// carries the bytes, Sluice runs its pipeline on them. One gRPC stream is one HTTP request.
//
// On the request side the server authenticates from the request headers (401 as an
// ImmediateResponse), waits for the whole body, then runs the gateway's stages through
// gateway.Proxied (authorization, routing, payload processors, rate-limit admission, the
// Backend's choice, the body in the Backend's wire, the Backend's credential) and answers
// with header mutations (:path, :authority, x-sluice-backend, the credential, the client's
// credentials removed, content-length; x-gateway-destination-endpoint and envoy.lb
// metadata for pools) and the new body; a refusal is an ImmediateResponse in the client's
// wire. On the response side it decodes the answer as the gateway does (usage, translation
// back to the client's wire, response processors) and settles the rate-limit admission at
// the end of the answer, or when the stream ends early.
//
// Request bodies must come BUFFERED or FULL_DUPLEX_STREAMED: the route depends on the body,
// and in STREAMED mode Envoy has sent the headers upstream before the first chunk. Answers
// may come in any mode; see examples/envoy/README.md for what each mode allows.
package extproc

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/gateway"
)

// BackendHeader is the request header naming the chosen Backend ("namespace/name"), for
// Envoy's route table to match on (with the route cache cleared).
const BackendHeader = "x-sluice-backend"

// DestinationHeader and LBNamespace are the Gateway API Inference Extension's
// endpoint-picker protocol: the header and the dynamic metadata (namespace envoy.lb, same
// key) naming the pool endpoint ("ip:port") the request must go to.
const (
	DestinationHeader = "x-gateway-destination-endpoint"
	LBNamespace       = "envoy.lb"
)

// Server implements envoy.service.ext_proc.v3.ExternalProcessor on a gateway.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer
	gw  *gateway.Gateway
	log *slog.Logger
}

// New returns a server running gw's pipeline (and its snapshot in force).
func New(gw *gateway.Gateway, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{gw: gw, log: log}
}

// Process implements the ext_proc service: one stream per HTTP request.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	x := &exchangeState{s: s, ctx: stream.Context(), reqMode: filterv3.ProcessingMode_BUFFERED, respMode: filterv3.ProcessingMode_STREAMED}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("panic in ext_proc stream", "panic", v)
		}
		x.p.Finish()
	}()
	first := true
	for {
		req, err := stream.Recv()
		if err != nil {
			if err == io.EOF || status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		if first {
			first = false
			if req.GetObservabilityMode() {
				return status.Error(codes.Unimplemented, "sluice extproc does not run in observability mode")
			}
			if pc := req.GetProtocolConfig(); pc != nil {
				x.reqMode, x.respMode = pc.GetRequestBodyMode(), pc.GetResponseBodyMode()
			}
		}
		out := x.handle(req)
		for _, r := range out {
			if err := stream.Send(r); err != nil {
				return err
			}
		}
		if x.done {
			return nil
		}
	}
}

// exchangeState is one stream's request as it goes.
type exchangeState struct {
	s        *Server
	ctx      context.Context
	reqMode  filterv3.ProcessingMode_BodySendMode
	respMode filterv3.ProcessingMode_BodySendMode
	p        *gateway.Proxied
	reqHead  http.Header // the client's request header
	body     []byte
	tooLarge bool
	sent     bool // the request was decided (mutations or an immediate response sent)
	// response side
	respHead   http.Header // the upstream's answer header (canonical)
	streaming  bool
	heldHeader bool // full duplex, whole answer: the response headers' answer waits for the body
	respEnded  bool
	done       bool // an immediate response was sent: the stream is over
}

func (x *exchangeState) handle(req *extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	switch r := req.Request.(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return x.requestHeaders(req, r.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		return x.requestBody(r.RequestBody)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		out := []*extprocv3.ProcessingResponse{}
		if !x.sent && x.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
			out = x.decide(false)
			if x.done {
				return out
			}
		}
		return append(out, &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}})
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return x.responseHeaders(r.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		return x.responseBody(r.ResponseBody.GetBody(), r.ResponseBody.GetEndOfStream())
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		var out []*extprocv3.ProcessingResponse
		if !x.respEnded && x.p != nil {
			// The body ended with trailers: finish it (what it completes cannot be sent in
			// STREAMED mode any more; the usage still counts).
			x.respEnded = true
			x.p.ResponseBody(nil, true)
			x.p.Finish()
		}
		return append(out, &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}})
	}
	return nil
}

func (x *exchangeState) requestHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) []*extprocv3.ProcessingResponse {
	header, pseudo := fromEnvoy(h.GetHeaders())
	x.reqHead = header
	method := pseudo[":method"]
	if method == "" {
		method = http.MethodPost
	}
	path := pseudo[":path"]
	if path == "" {
		path = "/"
	}
	p, rep := x.s.gw.Proxy(x.ctx, method, path, header, remoteAddr(req))
	x.p = p
	if rep != nil {
		return x.immediate(rep)
	}
	switch x.reqMode {
	case filterv3.ProcessingMode_BUFFERED, filterv3.ProcessingMode_BUFFERED_PARTIAL, filterv3.ProcessingMode_FULL_DUPLEX_STREAMED:
	default:
		x.s.log.Error("ext_proc request_body_mode must be BUFFERED or FULL_DUPLEX_STREAMED", "mode", x.reqMode.String())
		return x.immediate(&gateway.Reply{Status: http.StatusInternalServerError, Header: http.Header{"Content-Type": {"application/json"}},
			Body: (&apierr.Error{Status: 500, Code: apierr.CodeInternal, Message: "The proxy is misconfigured: the request body is not sent to the gateway."}).Body(apierr.OpenAI), Code: apierr.CodeInternal})
	}
	if h.GetEndOfStream() { // no body will come
		return x.decide(true)
	}
	if x.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return nil // the headers' answer waits for the body: the route depends on it
	}
	return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}}
}

func (x *exchangeState) requestBody(b *extprocv3.HttpBody) []*extprocv3.ProcessingResponse {
	if x.p == nil || x.sent {
		return x.continueBody()
	}
	if !x.tooLarge {
		x.body = append(x.body, b.GetBody()...)
		if int64(len(x.body)) > x.s.gw.MaxRequestBytes() {
			x.tooLarge = true // Request refuses it with 413; keep no more
		}
	}
	// BUFFERED sends the whole body in one message (end_of_stream false only when trailers
	// follow); FULL_DUPLEX_STREAMED sends pieces, answered once at the end.
	if x.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED && !b.GetEndOfStream() {
		return nil
	}
	return x.decide(false)
}

func (x *exchangeState) continueBody() []*extprocv3.ProcessingResponse {
	if x.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return nil
	}
	return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}}
}

// decide runs the pipeline on the whole request and answers: mutations, or an immediate
// response.
func (x *exchangeState) decide(atHeaders bool) []*extprocv3.ProcessingResponse {
	x.sent = true
	up, rep := x.p.Request(x.body)
	if rep != nil {
		return x.immediate(rep)
	}
	hm := requestMutation(x.reqHead, up)
	common := &extprocv3.CommonResponse{HeaderMutation: hm, ClearRouteCache: true}
	var meta *structpb.Struct
	if up.Endpoint != "" {
		meta = &structpb.Struct{Fields: map[string]*structpb.Value{
			LBNamespace: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
				DestinationHeader: structpb.NewStringValue(up.Endpoint),
			}}),
		}}
	}
	if atHeaders { // no body: only the headers change
		return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: common}}, DynamicMetadata: meta}}
	}
	if x.reqMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return []*extprocv3.ProcessingResponse{
			{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: common}}, DynamicMetadata: meta},
			{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
				BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{Body: up.Body, EndOfStream: true}}},
			}}}},
		}
	}
	common.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: up.Body}}
	return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: common}}, DynamicMetadata: meta}}
}

// requestMutation turns the client's header into the upstream request's.
func requestMutation(client http.Header, up *gateway.Upstream) *extprocv3.HeaderMutation {
	want := up.Header.Clone()
	want[":path"] = []string{up.Path}
	want[":authority"] = []string{up.Host}
	want[http.CanonicalHeaderKey(BackendHeader)] = []string{strings.TrimPrefix(up.Backend, "Backend/")}
	if up.Endpoint != "" {
		want[http.CanonicalHeaderKey(DestinationHeader)] = []string{up.Endpoint}
	}
	if up.Method != "" && up.Method != http.MethodPost {
		want[":method"] = []string{up.Method}
	}
	return diff(client, want)
}

func (x *exchangeState) responseHeaders(h *extprocv3.HttpHeaders) []*extprocv3.ProcessingResponse {
	header, pseudo := fromEnvoy(h.GetHeaders())
	x.respHead = header
	if x.p == nil {
		return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}}
	}
	code, _ := strconv.Atoi(pseudo[":status"])
	if code == 0 {
		code = http.StatusOK
	}
	want, streaming := x.p.ResponseHeaders(code, header)
	x.streaming = streaming
	if h.GetEndOfStream() { // no body
		x.respEnded = true
		_, rep := x.p.ResponseBody(nil, true)
		if rep != nil {
			want = rep.Header
		}
		delete(want, "Content-Length")
		resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: diff(header, want)}}}}
		x.p.Finish()
		return []*extprocv3.ProcessingResponse{resp}
	}
	if !streaming && x.respMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		x.heldHeader = true // answered with the whole body, status and headers included
		return nil
	}
	if !streaming {
		delete(want, "Content-Length") // the body may change; BUFFERED sets it at the end
	}
	resp := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: diff(header, want)}}}}
	if !streaming && x.respMode == filterv3.ProcessingMode_STREAMED {
		// A whole answer is best taken whole, so its status and headers can still change
		// (Envoy honours this with allow_mode_override; else the pieces are held back).
		// Either way responseBody answers the same: pieces cleared, the whole at the end.
		resp.ModeOverride = &filterv3.ProcessingMode{ResponseBodyMode: filterv3.ProcessingMode_BUFFERED}
	}
	return []*extprocv3.ProcessingResponse{resp}
}

func (x *exchangeState) responseBody(chunk []byte, end bool) []*extprocv3.ProcessingResponse {
	if x.p == nil || x.respEnded {
		return x.bodyAnswer(chunk, false, nil, end)
	}
	if end {
		x.respEnded = true
	}
	out, rep := x.p.ResponseBody(chunk, end)
	if x.streaming {
		var hm *extprocv3.HeaderMutation
		if end && x.respMode == filterv3.ProcessingMode_BUFFERED {
			hm = &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{set("content-length", strconv.Itoa(len(out)), false)}}
		}
		resps := x.bodyAnswer(out, true, hm, end)
		if end {
			x.p.Finish()
		}
		return resps
	}
	if !end {
		// a whole answer held back until its end: this piece is replaced by nothing
		return x.bodyAnswer(nil, true, nil, false)
	}
	want := rep.Header.Clone()
	want[":status"] = []string{strconv.Itoa(rep.Status)}
	hm := diff(x.respHead, want)
	x.p.Finish()
	if x.heldHeader {
		return []*extprocv3.ProcessingResponse{
			{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: hm}}}},
			{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: &extprocv3.CommonResponse{
				BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{Body: rep.Body, EndOfStream: true}}},
			}}}},
		}
	}
	// BUFFERED (or STREAMED with the mode override honoured): headers change with the body.
	// STREAMED without it: Envoy ignores the header mutation; the body is still replaced.
	return x.bodyAnswer(rep.Body, true, hm, true)
}

// bodyAnswer answers one response body message: replace its bytes with out (when
// replace), in the form the body mode needs.
func (x *exchangeState) bodyAnswer(out []byte, replace bool, hm *extprocv3.HeaderMutation, end bool) []*extprocv3.ProcessingResponse {
	if x.respMode == filterv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		if !replace {
			return []*extprocv3.ProcessingResponse{bodyResp(&extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{Body: out, EndOfStream: end}}}})}
		}
		if len(out) == 0 && !end {
			return nil
		}
		return []*extprocv3.ProcessingResponse{bodyResp(&extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{Body: out, EndOfStream: end}}}})}
	}
	c := &extprocv3.CommonResponse{HeaderMutation: hm}
	if replace {
		if len(out) == 0 {
			c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}}
		} else {
			c.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
		}
	}
	return []*extprocv3.ProcessingResponse{bodyResp(c)}
}

func bodyResp(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{Response: c}}}
}

// immediate answers the client directly and ends the stream.
func (x *exchangeState) immediate(rep *gateway.Reply) []*extprocv3.ProcessingResponse {
	x.done, x.sent = true, true
	hm := &extprocv3.HeaderMutation{}
	keys := make([]string, 0, len(rep.Header))
	for k := range rep.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "Content-Length" {
			continue // Envoy sets it
		}
		for i, v := range rep.Header[k] {
			hm.SetHeaders = append(hm.SetHeaders, set(strings.ToLower(k), v, i > 0))
		}
	}
	details := "sluice"
	if rep.Code != "" {
		details = "sluice_" + rep.Code
	}
	return []*extprocv3.ProcessingResponse{{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(rep.Status)},
		Headers: hm,
		Body:    rep.Body,
		Details: details,
	}}}}
}

// fromEnvoy reads Envoy's header map: regular headers canonical, pseudo-headers apart.
func fromEnvoy(m *corev3.HeaderMap) (http.Header, map[string]string) {
	h := http.Header{}
	pseudo := map[string]string{}
	for _, hv := range m.GetHeaders() {
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		k := strings.ToLower(hv.GetKey())
		if strings.HasPrefix(k, ":") {
			pseudo[k] = v
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		h[ck] = append(h[ck], v)
	}
	return h, pseudo
}

// diff is the mutation turning header have into want: headers to set (whose values
// differ) and headers to remove (in have, not in want). Pseudo-headers in want are set;
// Host is Envoy's (:authority).
func diff(have, want http.Header) *extprocv3.HeaderMutation {
	hm := &extprocv3.HeaderMutation{}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "Host" {
			continue
		}
		vv := want[k]
		if slices.Equal(have[k], vv) {
			continue
		}
		for i, v := range vv {
			hm.SetHeaders = append(hm.SetHeaders, set(strings.ToLower(k), v, i > 0))
		}
	}
	var rm []string
	for k := range have {
		if _, ok := want[k]; !ok && k != "Host" {
			rm = append(rm, strings.ToLower(k))
		}
	}
	sort.Strings(rm)
	hm.RemoveHeaders = rm
	return hm
}

func set(k, v string, appendValue bool) *corev3.HeaderValueOption {
	action := corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	if appendValue {
		action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
	}
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}, AppendAction: action}
}

// remoteAddr is the client's address from the request attributes (request_attributes:
// [source.address] in the filter's configuration), else empty.
func remoteAddr(req *extprocv3.ProcessingRequest) string {
	for _, st := range req.GetAttributes() {
		if v, ok := st.GetFields()["source.address"]; ok {
			return v.GetStringValue()
		}
	}
	return ""
}
