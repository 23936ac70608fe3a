package fakecloud

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/provider/mock"
)

// EntraScope is the scope Azure OpenAI tokens are asked for.
const EntraScope = "https://cognitiveservices.azure.com/.default"

// Entra is Microsoft Entra ID's token endpoint, POST /{tenant}/oauth2/v2.0/token, for one
// application: the client-credentials grant with the client id and secret in the form,
// for EntraScope.
type Entra struct {
	*httptest.Server
	Tenant, ClientID, ClientSecret string

	ledger
}

// NewEntra starts a token endpoint for one application of one tenant.
func NewEntra(t testing.TB, tenant, clientID, secret string) *Entra {
	e := &Entra{Tenant: tenant, ClientID: clientID, ClientSecret: secret}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.Close)
	return e
}

func (e *Entra) refuse(w http.ResponseWriter, status int, code, desc string) {
	e.refused(code + ": " + desc)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(mustJSON(map[string]any{"error": code, "error_description": desc, "timestamp": time.Now().UTC().Format("2006-01-02 15:04:05Z"), "trace_id": uuid(), "correlation_id": uuid()}))
}

func (e *Entra) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/"+e.Tenant+"/oauth2/v2.0/token" {
		e.refuse(w, http.StatusBadRequest, "invalid_tenant", "AADSTS90002: Tenant '"+strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]+"' not found.")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		e.refuse(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if err := r.ParseForm(); err != nil || len(r.URL.Query()) > 0 {
		e.refuse(w, http.StatusBadRequest, "invalid_request", "AADSTS90014: The request must be form-encoded in the body.")
		return
	}
	f := r.PostForm
	switch {
	case f.Get("grant_type") != "client_credentials":
		e.refuse(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type '"+f.Get("grant_type")+"'.")
	case f.Get("client_id") != e.ClientID:
		e.refuse(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier '"+f.Get("client_id")+"' was not found in the directory.")
	case f.Get("client_secret") != e.ClientSecret:
		e.refuse(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	case f.Get("scope") != EntraScope:
		e.refuse(w, http.StatusBadRequest, "invalid_scope", "AADSTS1002012: The provided value for scope "+f.Get("scope")+" is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
	default:
		tok := "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-" + randomHex(16)
		e.minted(tok)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(mustJSON(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": tok}))
	}
}

// Azure is Azure OpenAI: POST /openai/deployments/{deployment}/chat/completions (and
// /completions, /embeddings) with ?api-version=, authenticated with the api-key header or
// an Entra ID bearer token. Answers are the Mock backend's, except tool calls, which it
// makes itself when tools are declared and the user asks about the weather; streams start
// with Azure's prompt_filter_results chunk.
type Azure struct {
	*httptest.Server
	recorder
	APIKey string
	// Entra, when set, mints the bearer tokens accepted.
	Entra *Entra
	// Deployments maps deployment names to the models they run.
	Deployments map[string]string
	// Faults are answered for the deployments named, after the credential is checked.
	Faults map[string]Fault
	mock   http.Handler
}

// NewAzure starts an Azure OpenAI fake. Set Faults before sending requests.
func NewAzure(t testing.TB, apiKey string, entra *Entra, deployments map[string]string) *Azure {
	a := &Azure{APIKey: apiKey, Entra: entra, Deployments: deployments, mock: mock.NewHandler(v1alpha1.MockSpec{Chunks: 4}, nil)}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

var (
	azurePath  = regexp.MustCompile(`^/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)$`)
	apiVersion = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview)?$`)
)

func azureError(code, msg string) []byte {
	return mustJSON(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func (a *Azure) serve(w http.ResponseWriter, r *http.Request) {
	q := newRequest(r)
	w.Header().Set("Apim-Request-Id", uuid())
	w.Header().Set("X-Ms-Region", "Sweden Central")
	fail := func(status int, body []byte, rejected string) {
		q.Status, q.Rejected = status, rejected
		a.add(q)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}
	m := azurePath.FindStringSubmatch(r.URL.Path)
	if r.URL.RawPath != "" && r.URL.RawPath != r.URL.Path {
		m = nil
	}
	if m == nil || r.Method != http.MethodPost {
		fail(http.StatusNotFound, azureError("404", "Resource not found"), "no such path "+r.Method+" "+r.URL.Path)
		return
	}
	q.Model = m[1]
	key := r.Header.Get("Api-Key")
	tok, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case key != "":
		if key != a.APIKey {
			fail(http.StatusUnauthorized, azureError("401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."), "wrong api-key")
			return
		}
	case bearer && a.Entra != nil:
		if !a.Entra.Valid(tok) {
			fail(http.StatusUnauthorized, azureError("PermissionDenied", "Principal does not have access to API/Operation."), "invalid bearer token")
			return
		}
	default:
		fail(http.StatusUnauthorized, azureError("401", "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."), "no credential")
		return
	}
	v := r.URL.Query().Get("api-version")
	if len(r.URL.Query()) != 1 || !apiVersion.MatchString(v) {
		fail(http.StatusNotFound, azureError("404", "Resource not found"), "missing or malformed api-version: "+r.URL.RawQuery)
		return
	}
	if _, ok := a.Deployments[q.Model]; !ok {
		fail(http.StatusNotFound, azureError("DeploymentNotFound", "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."), "unknown deployment "+q.Model)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fail(http.StatusBadRequest, azureError("BadRequest", "Unsupported Content-Type "+ct), "not JSON")
		return
	}
	if f, ok := a.Faults[q.Model]; ok {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		q.Status = f.Status
		a.add(q)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		w.Write(azureError(f.Type, f.Message))
		return
	}
	var req oaiRequest
	if m[2] == "chat/completions" {
		if err := json.Unmarshal(q.Body, &req); err != nil {
			fail(http.StatusBadRequest, oaiError("We could not parse the JSON body of your request.", "", ""), "malformed JSON: "+err.Error())
			return
		}
		q.Stream = req.Stream
		if msg, param := validateChat(&req); msg != "" {
			fail(http.StatusBadRequest, oaiError(msg, "invalid_request_error", param), msg)
			return
		}
		if a.toolCall(&req, q) || a.toolResult(&req, q) || a.jsonAnswer(&req, q) {
			a.write(w, &req, q)
			return
		}
	}

	// The Mock backend answers; its answer is recorded, then relayed.
	rec := httptest.NewRecorder()
	mr := r.Clone(r.Context())
	mr.URL.Path, mr.URL.RawPath = "/"+m[2], ""
	mr.Body = readCloser{bytes.NewReader(q.Body)}
	a.mock.ServeHTTP(rec, mr)
	res := rec.Result()
	out := rec.Body.Bytes()
	q.Status = res.StatusCode
	if q.Status >= 400 {
		q.Rejected = "refused by the Mock: " + string(out)
	}
	if q.Stream && q.Status == http.StatusOK {
		// Azure streams begin with the prompt's content-filter results, in a chunk with
		// no choices and no id.
		out = append([]byte("data: "+string(promptFilterChunk)+"\n\n"), out...)
		q.Answer, q.Usage = streamedText(out)
	} else if q.Status == http.StatusOK {
		var c struct {
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
			Usage json.RawMessage `json:"usage"`
		}
		json.Unmarshal(out, &c)
		if len(c.Choices) > 0 {
			q.Answer = c.Choices[0].Message.Content
		}
		q.Usage = c.Usage
	}
	a.add(q)
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	w.Write(out)
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

var promptFilterChunk = mustJSON(map[string]any{
	"choices": []any{}, "created": 0, "id": "", "model": "", "object": "",
	"prompt_filter_results": []any{map[string]any{"prompt_index": 0, "content_filter_results": map[string]any{
		"hate": map[string]any{"filtered": false, "severity": "safe"}, "self_harm": map[string]any{"filtered": false, "severity": "safe"},
		"sexual": map[string]any{"filtered": false, "severity": "safe"}, "violence": map[string]any{"filtered": false, "severity": "safe"},
	}}},
})

// streamedText reads the text and the usage out of an OpenAI SSE answer.
func streamedText(sse []byte) (string, json.RawMessage) {
	var text strings.Builder
	var usage json.RawMessage
	for _, line := range strings.Split(string(sse), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
			Usage json.RawMessage `json:"usage"`
		}
		json.Unmarshal([]byte(data), &c)
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
		}
		if len(c.Usage) > 0 && string(c.Usage) != "null" {
			usage = c.Usage
		}
	}
	return text.String(), usage
}

// oaiRequest is the part of an OpenAI chat request the fake reads.
type oaiRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Type     string `json:"type"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice     json.RawMessage `json:"tool_choice"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func oaiError(msg, typ, param string) []byte {
	e := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if param != "" {
		e["param"] = param
	}
	return mustJSON(map[string]any{"error": e})
}

// validateChat checks what OpenAI checks about roles and tool messages.
func validateChat(req *oaiRequest) (msg, param string) {
	if len(req.Messages) == 0 {
		return "[] is too short - 'messages'", "messages"
	}
	open := map[string]bool{}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant":
		case "tool":
			if !open[m.ToolCallID] {
				return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", fmt.Sprintf("messages.[%d].role", i)
			}
			delete(open, m.ToolCallID)
			continue
		default:
			return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'tool', 'function', and 'developer'.", m.Role), fmt.Sprintf("messages[%d].role", i)
		}
		if len(open) > 0 {
			return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.", "messages"
		}
		for _, c := range m.ToolCalls {
			open[c.ID] = true
		}
	}
	if req.StreamOptions != nil && !req.Stream {
		return "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
	}
	return "", ""
}

// toolCall decides whether to answer with tool calls, and fills q.Calls if so.
func (a *Azure) toolCall(req *oaiRequest, q *Request) bool {
	if len(req.Tools) == 0 || string(req.ToolChoice) == `"none"` {
		return false
	}
	last := req.Messages[len(req.Messages)-1]
	if last.Role != "user" {
		return false
	}
	var text string
	json.Unmarshal(last.Content, &text)
	names := make([]string, len(req.Tools))
	for i, t := range req.Tools {
		names[i] = t.Function.Name
	}
	var forced struct {
		Function struct{ Name string }
	}
	json.Unmarshal(req.ToolChoice, &forced)
	for _, i := range chooseTools(names, text, forced.Function.Name, string(req.ToolChoice) == `"required"`) {
		q.Calls = append(q.Calls, Call{ID: "call_" + randomHex(12), Name: names[i], Args: argsFor(req.Tools[i].Function.Parameters)})
	}
	return len(q.Calls) > 0
}

// toolResult answers a conversation that ends with tools' results: it fills q.Answer.
func (a *Azure) toolResult(req *oaiRequest, q *Request) bool {
	var out []string
	for k := len(req.Messages) - 1; k >= 0 && req.Messages[k].Role == "tool"; k-- {
		m := req.Messages[k]
		var text string
		if json.Unmarshal(m.Content, &text) != nil {
			text = string(m.Content)
		}
		name := "the tool"
		for _, prev := range req.Messages {
			for _, c := range prev.ToolCalls {
				if c.ID == m.ToolCallID {
					name = c.Function.Name
				}
			}
		}
		out = append([]string{"According to " + name + ": " + string(compactJSON(json.RawMessage(text)))}, out...)
	}
	q.Answer = strings.Join(out, "; ")
	return len(out) > 0
}

// jsonAnswer answers a request for a JSON schema with an object of the schema.
func (a *Azure) jsonAnswer(req *oaiRequest, q *Request) bool {
	if req.ResponseFormat == nil || req.ResponseFormat.Type != "json_schema" {
		return false
	}
	q.Answer = string(argsFor(req.ResponseFormat.JSONSchema.Schema))
	return true
}

// write answers with q.Calls or q.Answer, as OpenAI does.
func (a *Azure) write(w http.ResponseWriter, req *oaiRequest, q *Request) {
	var text strings.Builder
	for _, m := range req.Messages {
		text.Write(m.Content)
		text.WriteString(" ")
		for _, c := range m.ToolCalls {
			text.WriteString(c.Function.Name + " " + c.Function.Arguments + " ")
		}
	}
	for _, t := range req.Tools {
		text.WriteString(t.Function.Name + " " + t.Function.Description + " ")
	}
	prompt := max(words(text.String()), 1)
	completion := words(q.Answer)
	finish := "stop"
	var calls []any
	for _, c := range q.Calls {
		completion += words(c.Name + " " + string(c.Args))
		finish = "tool_calls"
		calls = append(calls, map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": string(c.Args)}})
	}
	usage := mustJSON(map[string]any{
		"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
		"prompt_tokens_details":     map[string]any{"cached_tokens": 0, "audio_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
	})
	id, model, created := "chatcmpl-"+randomHex(12), a.Deployments[q.Model], time.Now().Unix()
	q.Status = http.StatusOK
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	if !req.Stream || includeUsage {
		q.Usage = usage
	}
	a.add(q)
	filters := map[string]any{}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil}
		if q.Answer != "" {
			msg["content"] = q.Answer
		}
		if len(calls) > 0 {
			msg["tool_calls"] = calls
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(mustJSON(map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": model, "system_fingerprint": "fp_fake",
			"choices":               []any{map[string]any{"index": 0, "finish_reason": finish, "logprobs": nil, "content_filter_results": filters, "message": msg}},
			"usage":                 json.RawMessage(usage),
			"prompt_filter_results": json.RawMessage(`[{"prompt_index":0,"content_filter_results":{}}]`),
		}))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	send := func(v any) {
		w.Write([]byte("data: "))
		w.Write(mustJSON(v))
		w.Write([]byte("\n\n"))
		w.(http.Flusher).Flush()
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		ch := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "system_fingerprint": "fp_fake",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish, "content_filter_results": filters}},
		}
		if includeUsage {
			ch["usage"] = nil
		}
		return ch
	}
	w.Write([]byte("data: " + string(promptFilterChunk) + "\n\n"))
	send(chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil))
	if q.Answer != "" {
		for _, p := range splitWords(q.Answer, 3) {
			send(chunk(map[string]any{"content": p}, nil))
		}
	}
	for i, c := range q.Calls {
		send(chunk(map[string]any{"tool_calls": []any{
			map[string]any{"index": i, "id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": ""}},
		}}, nil))
		for _, p := range splitBytes(string(c.Args), 6) {
			send(chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": p}}}}, nil))
		}
	}
	send(chunk(map[string]any{}, finish))
	if includeUsage {
		send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "system_fingerprint": "fp_fake", "choices": []any{}, "usage": json.RawMessage(usage)})
	}
	w.Write([]byte("data: [DONE]\n\n"))
}
