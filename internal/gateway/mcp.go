package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/jsonscan"
	"github.com/sluice-gateway/sluice/internal/limits"
	"github.com/sluice-gateway/sluice/internal/mcp"
	"github.com/sluice-gateway/sluice/internal/payload"
	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/sse"
	"github.com/sluice-gateway/sluice/internal/tokens"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// This file serves MCPRoutes: one Streamable HTTP endpoint in front of several MCP
// servers. Every JSON-RPC message a client POSTs is one Exchange and goes through the
// same stages as an inference request (authentication, access rules, payload processors,
// rate limits, usage, metrics, the access log); what differs is the dispatch: a call goes
// to the one server its tool or prompt prefix names, a list is fanned out to every server
// of the session and merged.

// mcpHandler is one MCP request in progress.
type mcpHandler struct {
	g    *Gateway
	snap *translate.Snapshot
	rt   *mcp.Route
	r    *http.Request
	rw   *recorder
	ex   *exchange.Exchange
	msg  *mcp.Message
	sess *mcp.Session
	run  *payload.Run
	// events is the buffer events are framed in, reused for every event.
	events []byte
}

// serveMCP dispatches a request to an MCPRoute's path by HTTP method.
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request, snap *translate.Snapshot, rt *mcp.Route) {
	if o := r.Header.Get("Origin"); !rt.AllowsOrigin(o) {
		g.log.Warn("MCP request from a browser origin the route does not allow", "request_id", w.Header().Get("X-Request-Id"), "route", rt.Ref, "origin", o)
		(&apierr.Error{Status: http.StatusForbidden, Code: apierr.CodeOriginNotAllowed, Message: "Requests from this origin are not allowed."}).Write(w, apierr.JSONRPC)
		return
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
		g.mcpExchange(w, r, snap, rt)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		(&apierr.Error{Status: http.StatusMethodNotAllowed, Code: apierr.CodeMethodNotAllowed, Message: "Use POST, GET or DELETE for " + r.URL.Path + "."}).Write(w, apierr.JSONRPC)
	}
}

// mcpExchange runs one MCP request (a POSTed message, a GET stream, a DELETE) as an
// Exchange, ending it with finish like every other request.
func (g *Gateway) mcpExchange(w http.ResponseWriter, r *http.Request, snap *translate.Snapshot, rt *mcp.Route) {
	ex := exchangePool.Get().(*exchange.Exchange)
	ex.Started = time.Now()
	ex.Endpoint, ex.IngressEndpoint, ex.Ingress = exchange.EndpointMCP, exchange.EndpointMCP, apierr.JSONRPC
	ex.Header = r.Header
	ex.ID = w.Header()["X-Request-Id"][0]
	ex.Route = rt.Ref
	ex.MCP = &exchange.MCPCall{}
	g.metrics.Begin()
	r, span := g.startSpan(r)
	h := &mcpHandler{g: g, snap: snap, rt: rt, r: r, rw: &recorder{ResponseWriter: w}, ex: ex}
	var body *bodyBuffer
	var admission *limits.Admission
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			g.log.Error("panic serving request", "request_id", ex.ID, "panic", v)
			if !h.rw.wrote {
				h.fail(&apierr.Error{Status: http.StatusInternalServerError, Code: apierr.CodeInternal, Message: "Internal error; request id " + ex.ID + "."})
			}
			ex.Code = apierr.CodeInternal
		}
		g.finish(r, ex, h.rw, admission, h.run, span, body)
	}()
	if pol := snap.Policy; pol != nil {
		pr, e, why := pol.Authenticate(r.Context(), r.Header)
		if e != nil {
			pol.CountAuthenticationFailure()
			g.audit(ex, "", string(why), e.Code)
			if snap.Policy.Issuers() != nil {
				// Tell the client where to find how to get a token (RFC 9728).
				c := *e
				c.Header = e.Header.Clone()
				if c.Header == nil {
					c.Header = http.Header{}
				}
				meta := `resource_metadata="` + origin(r) + protectedResourcePath + rt.Path + `"`
				if challenge := c.Header.Get("WWW-Authenticate"); challenge != "" {
					meta = challenge + ", " + meta
				} else {
					meta = "Bearer " + meta
				}
				c.Header.Set("WWW-Authenticate", meta)
				e = &c
			}
			g.fail(h.rw, ex, e)
			return
		}
		ex.Principal = pr
	}
	switch r.Method {
	case http.MethodGet:
		ex.MCP.Method = "stream"
		if h.openSession() {
			h.stream()
		}
		return
	case http.MethodDelete:
		ex.MCP.Method = "session/delete"
		if h.openSession() {
			h.deleteSession()
		}
		return
	}
	var gerr *apierr.Error
	if body, gerr = readBody(r, g.opts.MaxRequestBytes); gerr != nil {
		g.fail(h.rw, ex, gerr)
		return
	}
	ex.Body, ex.IngressBody = body.b, body.b
	msg, err := mcp.Parse(body.b)
	if err != nil {
		code := apierr.CodeParseError
		if err == mcp.ErrBatch {
			code = apierr.CodeInvalidRequest
		}
		g.fail(h.rw, ex, &apierr.Error{Status: http.StatusBadRequest, Code: code, Message: err.Error() + "."})
		return
	}
	h.msg = msg
	if msg.Method == "initialize" {
		ex.MCP.Method = msg.Method
		h.request(&admission)
		return
	}
	if !h.openSession() {
		return
	}
	switch {
	case msg.IsResponse():
		ex.MCP.Method = "response"
		h.relayResponse()
	case msg.IsNotification():
		ex.MCP.Method = msg.Method
		h.notify()
	default:
		ex.MCP.Method = msg.Method
		h.request(&admission)
	}
}

// protectedResourcePath is where OAuth 2.0 Protected Resource Metadata (RFC 9728) lives;
// MCP's authorization spec has clients read it to find where to get a token.
const protectedResourcePath = "/.well-known/oauth-protected-resource"

// serveProtectedResource answers the metadata of the MCPRoute at path, when the access
// policy accepts JWTs: the route's URL as the resource, the JWT issuers as its
// authorization servers. It reports false when there is nothing to answer.
func serveProtectedResource(w http.ResponseWriter, r *http.Request, snap *translate.Snapshot, path string) bool {
	rt := snap.MCP.Route(path)
	issuers := snap.Policy.Issuers()
	if rt == nil || issuers == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	b, _ := json.Marshal(map[string]any{
		"resource":                 origin(r) + rt.Path,
		"authorization_servers":    issuers,
		"bearer_methods_supported": []string{"header"},
	})
	w.Header()["Content-Type"] = jsonContentType
	w.Write(b)
	return true
}

// origin is the scheme and host the client reached the gateway at (a TLS-terminating
// proxy in front says https in X-Forwarded-Proto).
func origin(r *http.Request) string {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// caller is who a session is bound to.
func caller(p *exchange.Principal) string {
	if p == nil {
		return ""
	}
	return p.Method + "/" + p.Subject
}

// openSession reads the client's session id. A missing id is 400, an id that does not
// open (forged, expired, another key, another caller, another route) is 404, which tells
// the client to initialize again.
func (h *mcpHandler) openSession() bool {
	id := h.r.Header.Get(mcp.HeaderSession)
	if id == "" {
		h.g.fail(h.rw, h.ex, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeSessionMissing, Message: "Send the Mcp-Session-Id header the gateway gave on initialize."})
		return false
	}
	s, err := h.rt.Sealer.Open(id, time.Now())
	if err == nil && (s.Route != h.rt.Ref || s.Caller != caller(h.ex.Principal)) {
		err = mcp.ErrSession
	}
	if err != nil {
		h.g.fail(h.rw, h.ex, sessionUnknown)
		return false
	}
	h.sess = s
	return true
}

var sessionUnknown = &apierr.Error{Status: http.StatusNotFound, Code: apierr.CodeSessionUnknown, Message: "Unknown or expired MCP session; initialize a new one."}

// fail answers a refusal of the whole HTTP request (no JSON-RPC id to answer).
func (h *mcpHandler) fail(e *apierr.Error) { h.g.fail(h.rw, h.ex, e) }

// reply answers the client's request with e as a JSON-RPC error. The HTTP status is 200:
// the transport carried the message; the call failed.
func (h *mcpHandler) reply(e *apierr.Error) {
	h.ex.Code = e.Code
	if ra := e.Header.Get("Retry-After"); ra != "" {
		h.rw.Header().Set("Retry-After", ra)
	}
	h.writeJSON(e.RPC(h.msg.ID))
}

func (h *mcpHandler) writeJSON(b []byte) {
	hd := h.rw.Header()
	hd["Content-Type"] = jsonContentType
	hd["Content-Length"] = []string{strconv.Itoa(len(b))}
	h.rw.WriteHeader(http.StatusOK)
	h.ex.Status = http.StatusOK
	h.rw.Write(b)
}

// accepted answers a notification or a response: 202, no body.
func (h *mcpHandler) accepted() {
	h.ex.Status = http.StatusAccepted
	h.rw.WriteHeader(http.StatusAccepted)
}

// callParams reads what governance needs from a request's params.
func (h *mcpHandler) callParams() *apierr.Error {
	call := h.ex.MCP
	switch h.msg.Method {
	case "tools/call", "prompts/get":
	case "completion/complete":
		// A prompt's completion names the prompt: rules and limits see it as mcp.prompt.
		ref, err := mcp.Param(h.msg.Params, "ref")
		typ, err2 := mcp.Param(ref, "type")
		name, err3 := mcp.Param(ref, "name")
		if err != nil || err2 != nil || err3 != nil {
			return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "ref", Message: "params.ref gives a member twice or in another letter case."}
		}
		if t, _ := jsonscan.String(typ); t == "ref/prompt" {
			call.Prompt, _ = jsonscan.String(name)
			if s, _ := h.rt.ToolServer(call.Prompt); s != nil {
				call.Server = s.Ref
			}
		}
		return nil
	default:
		return nil
	}
	what := strings.TrimSuffix(h.msg.Method[:strings.IndexByte(h.msg.Method, '/')], "s")
	rawName, err := mcp.Param(h.msg.Params, "name")
	name, ok := jsonscan.String(rawName)
	if err != nil || !ok || name == "" {
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "name", Message: "params.name must name a " + what + " (once, in lower case)."}
	}
	args, err := mcp.Param(h.msg.Params, "arguments")
	if err != nil || len(args) > 0 && args[0] != '{' && string(args) != "null" {
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Param: "arguments", Message: "params.arguments must be an object (given once)."}
	}
	if h.msg.Method == "tools/call" {
		call.Tool = name
	} else {
		call.Prompt = name
	}
	// The server is known from the prefix before any rule runs, so rules, limits and
	// processors can read mcp.server.
	if s, _ := h.rt.ToolServer(name); s != nil {
		call.Server = s.Ref
	}
	call.Arguments = args
	return nil
}

// request runs a client's request through the stages, then dispatches it.
func (h *mcpHandler) request(admission **limits.Admission) {
	ex, g, r := h.ex, h.g, h.r
	if !mcpMethods[h.msg.Method] {
		// Refused before any rule, limit or processor: it would reach no server.
		h.reply(&apierr.Error{Status: http.StatusNotFound, Code: apierr.CodeMethodNotFound, Message: "Method " + strconv.Quote(h.msg.Method) + " is not supported by this gateway."})
		return
	}
	if e := h.callParams(); e != nil {
		h.reply(e)
		return
	}
	if pol := h.snap.Policy; pol != nil {
		d := pol.Authorize(ex.Principal, &auth.Request{Endpoint: exchange.EndpointMCP.String(), Header: r.Header, Body: ex.IngressBody, MCP: ex.MCP})
		if !d.Allowed {
			g.audit(ex, d.Rule, d.Reason.String(), d.Error().Code)
			h.reply(d.Error())
			return
		}
	}
	pre := h.snap.Payload.Chain(payload.PreRouting, h.rt.Ref)
	post := h.snap.Payload.Chain(payload.PostRouting, h.rt.Ref)
	if !pre.Empty() || !post.Empty() {
		h.run = payload.NewRun(r.Context(), ex, clientAddr(r), h.redecode)
		if e := h.run.Request(r.Context(), pre, payload.PreRouting); e != nil {
			h.reply(e)
			return
		}
	}
	var lerr *apierr.Error
	if *admission, lerr = h.snap.Limits.Admit(r.Context(), ex, h.rt.Ref, r.Header); lerr != nil {
		g.log.Info("rate limited", "request_id", ex.ID, "route", ex.Route, "tool", ex.MCP.Tool, "code", lerr.Code)
		(*admission).SetHeaders(h.rw.Header())
		h.reply(lerr)
		return
	}
	(*admission).SetHeaders(h.rw.Header())
	if h.run != nil {
		if e := h.run.Request(r.Context(), post, payload.PostRouting); e != nil {
			h.reply(e)
			return
		}
		if len(h.run.Findings) > 0 {
			h.rw.Header().Set("X-Sluice-Flags", payload.FlagsHeader(h.run.Findings))
		}
	}
	switch h.msg.Method {
	case "initialize":
		h.initialize()
	case "ping":
		h.writeJSON(mcp.Result(h.msg.ID, json.RawMessage("{}")))
	case "tools/list":
		h.list("tools", mcp.CapTools, true)
	case "prompts/list":
		h.list("prompts", mcp.CapPrompts, true)
	case "resources/list":
		h.list("resources", mcp.CapResources, false)
	case "resources/templates/list":
		h.list("resourceTemplates", mcp.CapResources, false)
	case "tools/call":
		h.call(ex.MCP.Tool, mcp.CapTools, apierr.CodeToolNotFound, "name")
	case "prompts/get":
		h.call(ex.MCP.Prompt, mcp.CapPrompts, apierr.CodePromptNotFound, "name")
	case "completion/complete":
		h.complete()
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		h.firstSuccess(mcp.CapResources)
	case "logging/setLevel":
		h.broadcast(mcp.CapLogging)
	}
}

// mcpMethods are the requests the gateway serves.
var mcpMethods = map[string]bool{
	"initialize": true, "ping": true, "tools/list": true, "prompts/list": true, "resources/list": true,
	"resources/templates/list": true, "tools/call": true, "prompts/get": true, "completion/complete": true,
	"resources/read": true, "resources/subscribe": true, "resources/unsubscribe": true, "logging/setLevel": true,
}

// redecode reads the message again after a processor changed it. The method and id must
// stay: they decided the rules that applied and match the server's answer.
func (h *mcpHandler) redecode(ex *exchange.Exchange) *apierr.Error {
	m, err := mcp.Parse(ex.Body)
	if err != nil || m.Method != h.msg.Method || !bytes.Equal(m.ID, h.msg.ID) {
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "A payload processor left the message unreadable or changed its method or id."}
	}
	args, err := mcp.Param(m.Params, "arguments")
	if err != nil {
		return &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "A payload processor left the arguments ambiguous."}
	}
	h.msg, ex.MCP.Arguments = m, args
	return nil
}

// initResult is one server's answer to initialize.
type initResult struct {
	res *mcp.InitResult
	ss  mcp.ServerSession
	err error
}

// initialize starts a session with every server of the route, in parallel, and answers
// with the merged capabilities and a sealed session id. A server that fails is left out
// of the session (and logged): the others still serve.
func (h *mcpHandler) initialize() {
	var p struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	json.Unmarshal(h.msg.Params, &p)
	results := make([]initResult, len(h.rt.Servers))
	ctx := h.r.Context()
	var wg sync.WaitGroup
	for i, s := range h.rt.Servers {
		wg.Go(func() {
			m, resp, err := s.Call(ctx, nil, h.msg.ID, "initialize", h.msg.Params, h.ex.ID)
			if err == nil && m.Error != nil {
				err = errors.New("initialize refused: " + string(m.Error))
			}
			var ir mcp.InitResult
			if err == nil {
				err = json.Unmarshal(m.Result, &ir)
			}
			if err != nil {
				results[i].err = err
				return
			}
			results[i] = initResult{res: &ir, ss: mcp.ServerSession{Backend: s.Ref, ID: resp.Header.Get(mcp.HeaderSession), Protocol: ir.ProtocolVersion, Caps: ir.Caps()}}
		})
	}
	wg.Wait()
	sess := &mcp.Session{Route: h.rt.Ref, Caller: caller(h.ex.Principal), Protocol: mcp.Negotiate(p.ProtocolVersion), Expires: time.Now().Add(h.rt.TTL).Unix()}
	var servers []*mcp.Server
	var inits []*mcp.InitResult
	for i, res := range results {
		if res.err != nil {
			h.g.log.Warn("MCP server failed to initialize; left out of the session", "request_id", h.ex.ID, "route", h.rt.Ref, "backend", h.rt.Servers[i].Ref, "error", res.err)
			continue
		}
		sess.Servers = append(sess.Servers, res.ss)
		servers = append(servers, h.rt.Servers[i])
		inits = append(inits, res.res)
	}
	if len(sess.Servers) == 0 {
		h.reply(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamUnavailable, Message: "No MCP server of this route could be initialized."})
		return
	}
	h.rw.Header().Set(mcp.HeaderSession, h.rt.Sealer.Seal(sess))
	h.writeJSON(mcp.Result(h.msg.ID, mcp.MergedInit(sess.Protocol, h.g.opts.Version, servers, inits)))
}

// sessionServers are the route's servers in the session that offer cap, with their
// side of the session.
func (h *mcpHandler) sessionServers(cap mcp.Caps) ([]*mcp.Server, []*mcp.ServerSession) {
	var ss []*mcp.Server
	var sides []*mcp.ServerSession
	for i := range h.sess.Servers {
		side := &h.sess.Servers[i]
		if cap != 0 && side.Caps&cap == 0 {
			continue
		}
		if s := h.rt.Server(side.Backend); s != nil {
			ss = append(ss, s)
			sides = append(sides, side)
		}
	}
	return ss, sides
}

// maxListPages bounds how many pages the gateway reads of one server's list.
const maxListPages = 32

// list fans a list request out to the session's servers offering cap and answers with
// one merged page; named items (tools, prompts) get their server's prefix, and tools the
// route or the caller's rules do not allow are left out. A server that fails is left out
// of the answer, logged.
func (h *mcpHandler) list(key string, cap mcp.Caps, named bool) {
	servers, sides := h.sessionServers(cap)
	pages := make([][]json.RawMessage, len(servers))
	errs := make([]error, len(servers))
	ctx := h.r.Context()
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			cursor := ""
			for range maxListPages {
				var params json.RawMessage
				if cursor != "" {
					params, _ = json.Marshal(map[string]string{"cursor": cursor})
				}
				m, _, err := s.Call(ctx, sides[i], h.msg.ID, h.msg.Method, params, h.ex.ID)
				if err == nil && m.Error != nil {
					err = errors.New(string(m.Error))
				}
				if err != nil {
					errs[i] = err
					return
				}
				page, err := mcp.ReadPage(m.Result, key)
				if err != nil {
					errs[i] = err
					return
				}
				pages[i] = append(pages[i], page.Items...)
				if cursor = page.NextCursor; cursor == "" {
					return
				}
			}
		})
	}
	wg.Wait()
	var items []json.RawMessage
	pol := h.snap.Policy
	failed := 0
	for i, s := range servers {
		if errs[i] != nil {
			failed++
			if errs[i] == mcp.ErrSessionGone {
				h.fail(sessionUnknown)
				return
			}
			h.g.log.Warn("MCP server failed to list; left out of the answer", "request_id", h.ex.ID, "route", h.rt.Ref, "backend", s.Ref, "method", h.msg.Method, "error", errs[i])
			continue
		}
		for _, it := range pages[i] {
			if !named {
				items = append(items, it)
				continue
			}
			it, ok := mcp.Rename(it, func(name string) (string, bool) {
				full := s.Prefix + name
				if key == "tools" && (!s.Exposes(name) || (pol != nil && !pol.VisibleTool(h.ex.Principal, full))) {
					return "", false
				}
				return full, true
			})
			if ok && key == "tools" && !h.descriptionPasses(s, it) {
				continue
			}
			if ok {
				items = append(items, it)
			}
		}
	}
	if failed > 0 && failed == len(servers) {
		h.reply(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamUnavailable, Message: "No MCP server of this session could answer " + h.msg.Method + "."})
		return
	}
	h.writeJSON(mcp.Result(h.msg.ID, mcp.ListResult(key, items)))
}

// descriptionPasses runs the answer stage over a tool's title and description: text a
// model reads as instructions, where a poisoned server hides them. A tool the processors
// block is left out of the list (and logged); redaction does not apply to descriptions.
func (h *mcpHandler) descriptionPasses(s *mcp.Server, tool json.RawMessage) bool {
	if !h.run.Responding() {
		return true
	}
	var d struct {
		Name        string `json:"name"`
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if json.Unmarshal(tool, &d) != nil || d.Title == "" && d.Description == "" {
		return true
	}
	content, _ := json.Marshal([]map[string]string{{"type": "text", "text": d.Title}, {"type": "text", "text": d.Description}})
	probe := mcp.Result(json.RawMessage("0"), append(append([]byte(`{"content":`), content...), '}'))
	if _, e := h.run.Answer(h.r.Context(), http.StatusOK, http.Header{}, probe); e != nil {
		h.g.log.Warn("MCP tool left out: a payload processor blocked its description", "request_id", h.ex.ID, "route", h.rt.Ref, "backend", s.Ref, "tool", d.Name, "code", e.Code)
		return false
	}
	return true
}

// call sends a tools/call or prompts/get to the server its prefix names, with the name
// the server knows, and relays the answer.
func (h *mcpHandler) call(name string, cap mcp.Caps, notFound string, namePath ...string) {
	s, bare := h.rt.ToolServer(name)
	var side *mcp.ServerSession
	if s != nil {
		side = h.sess.Server(s.Ref)
	}
	if s == nil || side == nil || side.Caps&cap == 0 || (cap == mcp.CapTools && !s.Exposes(bare)) {
		h.reply(&apierr.Error{Status: http.StatusNotFound, Code: notFound, Param: "name", Message: "Unknown " + strings.TrimSuffix(strings.SplitN(h.msg.Method, "/", 2)[0], "s") + " " + strconv.Quote(name) + "."})
		return
	}
	// The message sent is built again from what was judged (after the processors): the
	// server reads exactly the name and arguments the rules and processors saw.
	params, err := mcp.SetParam(h.msg.Params, jsonscan.AppendQuoted(nil, bare), namePath...)
	if err != nil {
		h.reply(&apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The message could not be rewritten for its server: " + err.Error() + "."})
		return
	}
	body := mcp.Request(h.msg.ID, h.msg.Method, params)
	h.forward(s, side, body)
}

// complete routes completion/complete: a prompt reference by its prefix, a resource
// template reference to the first server that answers.
func (h *mcpHandler) complete() {
	if p := h.ex.MCP.Prompt; p != "" {
		h.call(p, mcp.CapPrompts, apierr.CodePromptNotFound, "ref", "name")
		return
	}
	h.firstSuccess(mcp.CapCompletions)
}

// firstSuccess sends the request to each server offering cap in route order and relays
// the first answer that is not an error (resources are not prefixed: a URI is the
// server's own, and the first server that knows it answers).
func (h *mcpHandler) firstSuccess(cap mcp.Caps) {
	servers, sides := h.sessionServers(cap)
	var last *mcp.Message
	for i, s := range servers {
		m, _, err := s.Call(h.r.Context(), sides[i], h.msg.ID, h.msg.Method, h.msg.Params, h.ex.ID)
		if err != nil {
			if err == mcp.ErrSessionGone {
				h.fail(sessionUnknown)
				return
			}
			h.g.log.Warn("MCP server failed", "request_id", h.ex.ID, "backend", s.Ref, "method", h.msg.Method, "error", err)
			continue
		}
		if m.Error != nil {
			last = m
			continue
		}
		h.ex.Backend, h.ex.MCP.Server = s.Ref, s.Ref
		h.answer(s, m, mcp.Result(h.msg.ID, m.Result))
		return
	}
	if last != nil {
		h.ex.Code = apierr.CodeUpstreamError
		h.writeJSON(mcp.Response(h.msg.ID, nil, last.Error))
		return
	}
	h.reply(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamUnavailable, Message: "No MCP server of this session could answer " + h.msg.Method + "."})
}

// broadcast sends the request to every server offering cap and answers {} when all
// accepted it.
func (h *mcpHandler) broadcast(cap mcp.Caps) {
	servers, sides := h.sessionServers(cap)
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			m, _, err := s.Call(h.r.Context(), sides[i], h.msg.ID, h.msg.Method, h.msg.Params, h.ex.ID)
			if err == nil && m.Error != nil {
				err = errors.New(string(m.Error))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			h.g.log.Warn("MCP server failed", "request_id", h.ex.ID, "backend", servers[i].Ref, "method", h.msg.Method, "error", err)
			h.reply(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "An MCP server refused " + h.msg.Method + "."})
			return
		}
	}
	h.writeJSON(mcp.Result(h.msg.ID, json.RawMessage("{}")))
}

// upstreamFailure is the error a client gets when a server could not be reached or
// refused the transport.
func (h *mcpHandler) upstreamFailure(s *mcp.Server, err error) {
	if err == mcp.ErrSessionGone {
		h.fail(sessionUnknown)
		return
	}
	if ctxErr := h.r.Context().Err(); ctxErr != nil {
		h.ex.Status, h.ex.Code = 499, apierr.CodeClientClosed
		return
	}
	h.g.log.Warn("MCP server failed", "request_id", h.ex.ID, "backend", s.Ref, "method", h.msg.Method, "error", err)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		h.reply(&apierr.Error{Status: http.StatusGatewayTimeout, Code: apierr.CodeUpstreamTimeout, Message: "The MCP server did not answer within its firstByte timeout."})
		return
	}
	var se *mcp.StatusError
	if errors.As(err, &se) {
		h.reply(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The MCP server answered HTTP " + strconv.Itoa(se.Status) + "."})
		return
	}
	h.reply(&apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamUnavailable, Message: "The MCP server could not be reached."})
}

// forward sends the client's (rewritten) request to one server and relays its answer:
// a JSON answer as JSON, a stream as a stream, where the server's own requests (sampling,
// elicitation) get ids that name the server, so the client's replies find their way
// back, and the response to the client's request goes through the answer stage.
func (h *mcpHandler) forward(s *mcp.Server, side *mcp.ServerSession, body []byte) {
	h.ex.Backend, h.ex.MCP.Server = s.Ref, s.Ref
	h.ex.Attempts = 1
	if !s.Upstream.Acquire(h.r.Context()) {
		h.reply(&apierr.Error{Status: http.StatusServiceUnavailable, Code: apierr.CodeUpstreamUnavailable, Message: "The MCP server is at its concurrency limit."})
		return
	}
	defer s.Upstream.Release()
	ctx, cancel := context.WithCancelCause(h.r.Context())
	defer cancel(nil)
	resp, err := s.Do(ctx, http.MethodPost, side, body, h.ex.ID)
	if err != nil {
		h.upstreamFailure(s, err)
		return
	}
	h.ex.FirstByte = time.Since(h.ex.Started)
	// The Backend's idle timeout bounds the silence between a stream's messages (a tool
	// that works long should send progress notifications, or its Backend a longer idle).
	var idle *time.Timer
	if d := s.Upstream.Timeouts.Idle; d > 0 {
		idle = time.AfterFunc(d, func() { cancel(errIdleTimeout) })
		defer idle.Stop()
	}
	rd := mcp.NewReader(resp)
	defer rd.Close()
	index := h.serverIndex(s)
	var out []byte
	for {
		raw, err := rd.Next()
		if err != nil {
			var e *apierr.Error
			switch {
			case context.Cause(ctx) == errIdleTimeout:
				h.g.log.Warn("MCP server silent longer than the idle timeout", "request_id", h.ex.ID, "backend", s.Ref, "method", h.msg.Method)
				e = &apierr.Error{Status: http.StatusGatewayTimeout, Code: apierr.CodeIdleTimeout, Message: "The MCP server was silent longer than its idle timeout."}
			case !h.rw.wrote:
				h.upstreamFailure(s, errors.New("the answer ended without a response: "+errString(err)))
				return
			case h.r.Context().Err() != nil:
				h.ex.Code = apierr.CodeClientClosed
				return
			default:
				h.g.log.Warn("MCP server ended its stream without a response", "request_id", h.ex.ID, "backend", s.Ref, "method", h.msg.Method, "error", errString(err))
				e = &apierr.Error{Status: http.StatusBadGateway, Code: apierr.CodeUpstreamError, Message: "The MCP server ended its answer without a response."}
			}
			if !h.rw.wrote {
				h.reply(e)
				return
			}
			// The stream has begun: the request still gets its response, an error.
			h.ex.Code = e.Code
			h.writeEvent(e.RPC(h.msg.ID))
			return
		}
		if idle != nil {
			idle.Reset(s.Upstream.Timeouts.Idle)
		}
		m, perr := mcp.Parse(raw)
		if perr != nil {
			continue // not ours to judge; a broken message is not relayed
		}
		if m.IsResponse() && bytes.Equal(m.ID, h.msg.ID) {
			if !rd.Streaming() {
				h.answer(s, m, raw)
				return
			}
			h.startStream()
			out = h.processAnswer(s, m, raw)
			h.writeEvent(out)
			return
		}
		if !rd.Streaming() {
			continue
		}
		h.startStream()
		if m.IsRequest() {
			raw = m.WithID(mcp.WrapID(index, m.ID))
		}
		h.writeEvent(raw)
	}
}

func errString(err error) string {
	if err == io.EOF {
		return "end of stream"
	}
	return err.Error()
}

func (h *mcpHandler) serverIndex(s *mcp.Server) int {
	for i, x := range h.rt.Servers {
		if x == s {
			return i
		}
	}
	return -1
}

// answer writes a whole JSON response after the answer stage.
func (h *mcpHandler) answer(s *mcp.Server, m *mcp.Message, raw []byte) {
	h.writeJSON(h.processAnswer(s, m, raw))
}

// processAnswer runs the answer stage on the response to the client's request: usage
// (the arguments' and the result's text, counted), the processors that read answers or
// tool text (a tool result is where indirect prompt injection arrives); a block turns
// it into a JSON-RPC error.
func (h *mcpHandler) processAnswer(s *mcp.Server, m *mcp.Message, raw []byte) []byte {
	ex := h.ex
	if m.Error != nil {
		ex.Code = apierr.CodeUpstreamError
		return raw
	}
	if isErr, ok := jsonscan.Get(m.Result, "isError"); ok && string(isErr) == "true" {
		ex.MCP.IsError = true
	}
	ex.Usage = exchange.Usage{InputTokens: textTokens(content.Request, ex.Body), OutputTokens: textTokens(content.Response, raw), Estimated: true}
	ex.Usage.TotalTokens = ex.Usage.InputTokens + ex.Usage.OutputTokens
	if h.run.Responding() {
		out, e := h.run.Answer(h.r.Context(), http.StatusOK, h.rw.Header(), raw)
		if e != nil {
			ex.Code = e.Code
			return e.RPC(h.msg.ID)
		}
		raw = out
	}
	return raw
}

// textTokens counts the text segments of an MCP message.
func textTokens(find func(exchange.Endpoint, []byte, []content.Segment) ([]content.Segment, error), body []byte) int64 {
	var buf [16]content.Segment
	segs, err := find(exchange.EndpointMCP, body, buf[:0])
	if err != nil {
		return 0
	}
	var n int64
	var text []byte
	for _, s := range segs {
		text = content.Text(text[:0], body, s)
		n += int64(tokens.Count("", text))
	}
	return n
}

var eventStreamHeader = []string{"text/event-stream"}

// startStream sends the headers of an event-stream answer, once.
func (h *mcpHandler) startStream() {
	if h.rw.wrote {
		return
	}
	hd := h.rw.Header()
	hd["Content-Type"] = eventStreamHeader
	hd["Cache-Control"] = []string{"no-cache"}
	h.ex.Status = http.StatusOK
	h.ex.Stream = true
	h.rw.WriteHeader(http.StatusOK)
}

func (h *mcpHandler) writeEvent(msg []byte) {
	h.events = sse.AppendData(append(h.events[:0], "event: message\n"...), msg)
	h.rw.Write(h.events)
	h.rw.Flush()
}

// relayResponse sends the client's reply to a server's request back to that server.
func (h *mcpHandler) relayResponse() {
	idx, orig, ok := mcp.UnwrapID(h.msg.ID)
	if !ok || idx < 0 || idx >= len(h.rt.Servers) {
		h.fail(&apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "This response answers no request the gateway relayed."})
		return
	}
	s := h.rt.Servers[idx]
	side := h.sess.Server(s.Ref)
	if side == nil {
		h.fail(sessionUnknown)
		return
	}
	h.ex.Backend, h.ex.MCP.Server = s.Ref, s.Ref
	if err := s.Notify(h.r.Context(), side, h.msg.WithID(orig), h.ex.ID); err != nil {
		h.upstreamFailure(s, err)
		return
	}
	h.accepted()
}

// notify sends a client's notification to every server of the session.
func (h *mcpHandler) notify() {
	servers, sides := h.sessionServers(0)
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.Notify(h.r.Context(), sides[i], h.ex.Body, h.ex.ID) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == mcp.ErrSessionGone {
			h.fail(sessionUnknown)
			return
		}
		if err != nil {
			h.g.log.Warn("MCP server refused a notification", "request_id", h.ex.ID, "backend", servers[i].Ref, "method", h.msg.Method, "error", err)
		}
	}
	h.accepted()
}

// deleteSession ends the session at every server.
func (h *mcpHandler) deleteSession() {
	servers, sides := h.sessionServers(0)
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			resp, err := s.Do(h.r.Context(), http.MethodDelete, sides[i], nil, h.ex.ID)
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	h.ex.Status = http.StatusOK
	h.rw.WriteHeader(http.StatusOK)
}

// stream is the client's GET: the servers' own event streams merged into one. Servers
// that offer none (405) are skipped; when none offers one, the answer is 405.
func (h *mcpHandler) stream() {
	servers, sides := h.sessionServers(0)
	ctx, cancel := context.WithCancel(h.r.Context())
	defer cancel()
	type opened struct {
		i  int
		rd *mcp.Reader
	}
	var streams []opened
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			resp, err := s.Do(ctx, http.MethodGet, sides[i], nil, h.ex.ID)
			if err != nil {
				if err == mcp.ErrSessionGone {
					return
				}
				var se *mcp.StatusError
				if !errors.As(err, &se) || se.Status != http.StatusMethodNotAllowed {
					h.g.log.Warn("MCP server stream failed", "request_id", h.ex.ID, "backend", s.Ref, "error", err)
				}
				return
			}
			mu.Lock()
			streams = append(streams, opened{h.serverIndex(s), mcp.NewReader(resp)})
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(streams) == 0 {
		h.rw.Header().Set("Allow", "POST, DELETE")
		h.fail(&apierr.Error{Status: http.StatusMethodNotAllowed, Code: apierr.CodeMethodNotAllowed, Message: "No MCP server of this session offers a stream."})
		return
	}
	h.startStream()
	h.rw.Flush()
	events := make(chan []byte)
	var readers sync.WaitGroup
	for _, st := range streams {
		readers.Go(func() {
			defer st.rd.Close()
			for {
				raw, err := st.rd.Next()
				if err != nil {
					return
				}
				m, err := mcp.Parse(raw)
				if err != nil {
					continue
				}
				var out []byte
				if m.IsRequest() {
					out = m.WithID(mcp.WrapID(st.i, m.ID))
				} else {
					out = bytes.Clone(raw)
				}
				select {
				case events <- out:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { readers.Wait(); close(events) }()
	for {
		select {
		case msg, ok := <-events:
			if !ok {
				return
			}
			h.writeEvent(msg)
		case <-ctx.Done():
			cancel()
			for range events {
			}
			return
		}
	}
}
