package gateway_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/golang-jwt/jwt/v5"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/gatewaytest/fakeanthropic"
)

// The credentials of the clients; neither may ever reach an upstream.
const (
	anthropicClientKey = "client-key"
	openAIClientKey    = "sk-openai-client-credential"
)

const anthropicE2EYAML = `
apiVersion: v1
kind: Secret
metadata: {name: anthropic-key}
stringData: {apiKey: sk-ant-gateway}
---
apiVersion: v1
kind: Secret
metadata: {name: anthropic-revoked-key}
stringData: {apiKey: sk-ant-revoked}
---
apiVersion: v1
kind: Secret
metadata: {name: openai-key}
stringData: {apiKey: sk-openai-gateway}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: anthropic}
spec:
  schema: Anthropic
  url: ${ANTHROPIC}
  credentials: {apiKey: {secretRef: {name: anthropic-key}}}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: anthropic-revoked}
spec:
  schema: Anthropic
  url: ${ANTHROPIC}
  credentials: {apiKey: {secretRef: {name: anthropic-revoked-key}}}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: openai}
spec:
  schema: OpenAI
  url: ${OPENAI}/v1
  credentials: {apiKey: {secretRef: {name: openai-key}}}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: claude}
spec: {models: [claude-sonnet-4-5], backendRefs: [{name: anthropic}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: house-claude}
spec: {models: [house-claude], backendRefs: [{name: anthropic, model: claude-sonnet-4-5-20250929}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: claude-revoked}
spec: {models: [claude-revoked], backendRefs: [{name: anthropic-revoked, model: claude-sonnet-4-5}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: gpt}
spec: {models: [gpt-4o-mini], backendRefs: [{name: openai}]}
`

type anthropicE2E struct {
	fake *fakeanthropic.Fake
	up   *recordingUpstream // an OpenAI-compatible upstream
	gw   *gatewaytest.Gateway
}

func startAnthropicE2E(t *testing.T) *anthropicE2E {
	fake := fakeanthropic.Start(t, fakeanthropic.Options{
		APIKey: "sk-ant-gateway",
		Models: []string{"claude-sonnet-4-5", "claude-sonnet-4-5-20250929"},
	})
	up := newRecordingUpstream(t, "gpt-4o-mini")
	gw := gatewaytest.Start(t, anthropicE2EYAML, map[string]string{"ANTHROPIC": fake.URL, "OPENAI": up.URL}, gateway.Options{})
	t.Cleanup(func() {
		noClientCredentialUpstream(t, fake.Requests())
		up.mu.Lock()
		defer up.mu.Unlock()
		for i, h := range up.headers {
			assertNoClientCredential(t, "OpenAI upstream", h, up.bodies[i])
			// (the gateway's requests carry its X-Request-Id; a test's direct calls do not)
			if h.Get("X-Request-Id") != "" && h.Get("Authorization") != "Bearer sk-openai-gateway" {
				t.Errorf("OpenAI upstream saw Authorization %q", h.Get("Authorization"))
			}
		}
	})
	return &anthropicE2E{fake: fake, up: up, gw: gw}
}

// noClientCredentialUpstream checks every request the fake received.
func noClientCredentialUpstream(t *testing.T, reqs []fakeanthropic.Request) {
	t.Helper()
	if len(reqs) == 0 {
		t.Error("the fake received no request")
	}
	for _, r := range reqs {
		assertNoClientCredential(t, r.Path, r.Header, r.Body)
	}
}

func assertNoClientCredential(t *testing.T, where string, h http.Header, body []byte) {
	t.Helper()
	for k, vv := range h {
		for _, v := range vv {
			if strings.Contains(v, anthropicClientKey) || strings.Contains(v, openAIClientKey) {
				t.Errorf("%s: the client's credential reached the upstream in %s: %q", where, k, v)
			}
		}
	}
	if bytes.Contains(body, []byte(anthropicClientKey)) || bytes.Contains(body, []byte(openAIClientKey)) {
		t.Errorf("%s: the client's credential reached the upstream in the body", where)
	}
}

func (e *anthropicE2E) openAI() openai.Client {
	return openai.NewClient(option.WithBaseURL(e.gw.URL()+"/"), option.WithAPIKey(openAIClientKey), option.WithMaxRetries(0))
}

// sentRecorder is an http.RoundTripper that keeps what a client sent, by X-Request-Id.
type sentRecorder struct {
	mu     sync.Mutex
	bodies map[string][]byte
	header map[string]http.Header
}

func (s *sentRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	var b []byte
	if r.Body != nil {
		var err error
		if b, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	id := r.Header.Get("X-Request-Id")
	s.mu.Lock()
	if s.bodies == nil {
		s.bodies, s.header = map[string][]byte{}, map[string]http.Header{}
	}
	s.bodies[id], s.header[id] = b, r.Header.Clone()
	s.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r2)
}

func (s *sentRecorder) sent(t *testing.T, id string) ([]byte, http.Header) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.bodies[id]
	if !ok {
		t.Fatalf("the client sent no request %q", id)
	}
	return b, s.header[id]
}

func (e *anthropicE2E) anthropic(rec *sentRecorder) anthropic.Client {
	opts := []aoption.RequestOption{
		aoption.WithoutEnvironmentDefaults(),
		aoption.WithBaseURL(e.gw.Server.URL),
		aoption.WithAPIKey(anthropicClientKey),
		aoption.WithMaxRetries(0),
	}
	if rec != nil {
		opts = append(opts, aoption.WithHTTPClient(&http.Client{Transport: rec}))
	}
	return anthropic.NewClient(opts...)
}

// id names one request: the gateway keeps a sane client X-Request-Id, logs it and sends it
// upstream, which ties a client call to its access-log line and the upstream's record.
func oid(id string) option.RequestOption  { return option.WithHeader("X-Request-Id", id) }
func aid(id string) aoption.RequestOption { return aoption.WithHeader("X-Request-Id", id) }

// fakeRequest returns the one request the fake received for id.
func fakeRequest(t *testing.T, f *fakeanthropic.Fake, id string) fakeanthropic.Request {
	t.Helper()
	var found []fakeanthropic.Request
	for _, r := range f.Requests() {
		if r.Header.Get("X-Request-Id") == id {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the fake received %d requests %q", len(found), id)
	}
	return found[0]
}

// accessRecord waits for the access-log line of request id: the gateway writes it after
// the answer has gone, so the client may be first.
func accessRecord(t *testing.T, gw *gatewaytest.Gateway, id string) map[string]any {
	t.Helper()
	for n := 1; ; n++ {
		gw.Log.Wait(t, "request", n, 10*time.Second)
		for _, r := range gw.Log.Records("request") {
			if r["request_id"] == id {
				return r
			}
		}
	}
}

// assertLoggedUsage checks the access log recorded the upstream's own usage numbers.
func assertLoggedUsage(t *testing.T, gw *gatewaytest.Gateway, id string, in, out int64) {
	t.Helper()
	rec := accessRecord(t, gw, id)
	if rec["input_tokens"] != float64(in) || rec["output_tokens"] != float64(out) || rec["usage_estimated"] != false {
		t.Errorf("access log of %s: input %v output %v estimated %v, want %d %d false", id, rec["input_tokens"], rec["output_tokens"], rec["usage_estimated"], in, out)
	}
}

// sentBody decodes the JSON body the fake received.
func sentBody(t *testing.T, r fakeanthropic.Request) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	return m
}

func sameJSONText(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

var weatherParams = shared.FunctionParameters{
	"type": "object",
	"properties": map[string]any{
		"location": map[string]any{"type": "string", "description": "City name"},
		"unit":     map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
	},
	"required": []string{"location"},
}

var openAIWeatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Current weather for a location"),
	Parameters:  weatherParams,
})

var anthropicWeatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name:        "get_weather",
	Description: anthropic.String("Current weather for a location"),
	InputSchema: anthropic.ToolInputSchemaParam{
		Properties: weatherParams["properties"],
		Required:   []string{"location"},
	},
}}

// checkAnthropicWire checks what reached Anthropic for a translated OpenAI request.
func checkAnthropicWire(t *testing.T, r fakeanthropic.Request, stream bool) map[string]any {
	t.Helper()
	if r.Path != "/v1/messages" || r.Status != 200 {
		t.Fatalf("fake: %s answered %d: %s", r.Path, r.Status, r.Response)
	}
	if r.Header.Get("X-Api-Key") != "sk-ant-gateway" || r.Header.Get("Anthropic-Version") != "2023-06-01" || r.Header.Get("Authorization") != "" {
		t.Errorf("fake saw x-api-key %q, anthropic-version %q, authorization %q", r.Header.Get("X-Api-Key"), r.Header.Get("Anthropic-Version"), r.Header.Get("Authorization"))
	}
	body := sentBody(t, r)
	if (body["stream"] == true) != stream || body["model"] != "claude-sonnet-4-5" {
		t.Errorf("fake body: %s", r.Body)
	}
	return body
}

// TestE2EAnthropicOpenAISDK: OpenAI's Go SDK on /v1/chat/completions, answered by Claude.
func TestE2EAnthropicOpenAISDK(t *testing.T) {
	e := startAnthropicE2E(t)
	oc := e.openAI()
	ctx := t.Context()
	const prompt = "Hello there, how are you today?"
	chat := openai.ChatCompletionNewParams{
		Model:    "claude-sonnet-4-5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You are terse."), openai.UserMessage(prompt)},
	}

	t.Run("chat", func(t *testing.T) {
		resp, err := oc.Chat.Completions.New(ctx, chat, oid("oa-chat"))
		if err != nil {
			t.Fatal(err)
		}
		r := fakeRequest(t, e.fake, "oa-chat")
		body := checkAnthropicWire(t, r, false)
		// The system message is Anthropic's top-level system; the default max_tokens applies.
		if body["system"] != "You are terse." || body["max_tokens"] != float64(4096) {
			t.Errorf("system %v, max_tokens %v", body["system"], body["max_tokens"])
		}
		msgs, _ := body["messages"].([]any)
		if len(msgs) != 1 || msgs[0].(map[string]any)["role"] != "user" {
			t.Errorf("messages %v", body["messages"])
		}
		a := r.Answer
		if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != fakeanthropic.AnswerText(prompt) || resp.Choices[0].FinishReason != "stop" {
			t.Fatalf("answer %s", resp.RawJSON())
		}
		if resp.Usage.PromptTokens != a.InputTokens || resp.Usage.CompletionTokens != a.OutputTokens || resp.Usage.TotalTokens != a.InputTokens+a.OutputTokens {
			t.Errorf("usage %+v, fake said %d/%d", resp.Usage, a.InputTokens, a.OutputTokens)
		}
		assertLoggedUsage(t, e.gw, "oa-chat", a.InputTokens, a.OutputTokens)
	})

	t.Run("max_tokens", func(t *testing.T) {
		p := chat
		p.MaxTokens = openai.Int(3)
		resp, err := oc.Chat.Completions.New(ctx, p, oid("oa-max-tokens"))
		if err != nil {
			t.Fatal(err)
		}
		r := fakeRequest(t, e.fake, "oa-max-tokens")
		if body := checkAnthropicWire(t, r, false); body["max_tokens"] != float64(3) {
			t.Errorf("max_tokens %v", body["max_tokens"])
		}
		if resp.Choices[0].FinishReason != "length" || resp.Choices[0].Message.Content != r.Answer.Text || resp.Usage.CompletionTokens != 3 {
			t.Errorf("answer %s", resp.RawJSON())
		}
	})

	t.Run("translation", func(t *testing.T) {
		// System and developer messages join in system; consecutive user messages merge
		// (Anthropic wants turns to alternate); temperature is clamped to 1; user is
		// metadata.user_id; stop is stop_sequences, and the fake stops on it.
		p := openai.ChatCompletionNewParams{
			Model: "claude-sonnet-4-5",
			Messages: []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage("Rule one."), openai.DeveloperMessage("Rule two."),
				openai.UserMessage("First part."), openai.UserMessage("Second part."),
			},
			Temperature: openai.Float(1.5),
			User:        openai.String("user-42"),
			Stop:        openai.ChatCompletionNewParamsStopUnion{OfStringArray: []string{"Claude"}},
		}
		resp, err := oc.Chat.Completions.New(ctx, p, oid("oa-translation"))
		if err != nil {
			t.Fatal(err)
		}
		r := fakeRequest(t, e.fake, "oa-translation")
		body := checkAnthropicWire(t, r, false)
		msgs, _ := body["messages"].([]any)
		want := map[string]any{"system": "Rule one.\n\nRule two.", "temperature": float64(1), "metadata": map[string]any{"user_id": "user-42"}, "stop_sequences": []any{"Claude"}}
		for k, v := range want {
			if !reflect.DeepEqual(body[k], v) {
				t.Errorf("%s: %v, want %v", k, body[k], v)
			}
		}
		if len(msgs) != 1 || len(msgs[0].(map[string]any)["content"].([]any)) != 2 {
			t.Errorf("messages %v", body["messages"])
		}
		if resp.Choices[0].Message.Content != "Hello from the fake " || resp.Choices[0].FinishReason != "stop" || r.Answer.StopReason != "stop_sequence" {
			t.Errorf("answer %s", resp.RawJSON())
		}

		// tool_choice required is any; parallel_tool_calls false is disable_parallel_tool_use.
		p = openai.ChatCompletionNewParams{
			Model:             "claude-sonnet-4-5",
			Messages:          []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Use a tool, please.")},
			Tools:             []openai.ChatCompletionToolUnionParam{openAIWeatherTool},
			ToolChoice:        openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")},
			ParallelToolCalls: openai.Bool(false),
		}
		resp, err = oc.Chat.Completions.New(ctx, p, oid("oa-tool-choice"))
		if err != nil {
			t.Fatal(err)
		}
		r = fakeRequest(t, e.fake, "oa-tool-choice")
		body = checkAnthropicWire(t, r, false)
		if !reflect.DeepEqual(body["tool_choice"], map[string]any{"type": "any", "disable_parallel_tool_use": true}) {
			t.Errorf("tool_choice %v", body["tool_choice"])
		}
		if resp.Choices[0].FinishReason != "tool_calls" || len(resp.Choices[0].Message.ToolCalls) != 1 ||
			!sameJSONText(resp.Choices[0].Message.ToolCalls[0].Function.Arguments, `{"location":"San Francisco","unit":"celsius"}`) {
			t.Errorf("answer %s", resp.RawJSON())
		}
	})

	t.Run("errors", func(t *testing.T) {
		e.fake.FailNext(fakeanthropic.Failure{Status: 429, Type: "rate_limit_error", Message: "slow down", Header: http.Header{"Retry-After": {"9"}}})
		var resp *http.Response
		_, err := oc.Chat.Completions.New(ctx, chat, option.WithResponseInto(&resp))
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.StatusCode != 429 || oe.Code != "rate_limit_exceeded" || resp == nil || resp.Header.Get("Retry-After") != "9" {
			t.Errorf("throttled: %v", err)
		}
		p := chat
		p.Model = "claude-revoked"
		_, err = oc.Chat.Completions.New(ctx, p)
		if !errors.As(err, &oe) || oe.StatusCode != 502 || oe.Code != "upstream_auth_failed" {
			t.Errorf("revoked key: %v", err)
		}
	})

	stream := func(t *testing.T, p openai.ChatCompletionNewParams, id string) (openai.ChatCompletionAccumulator, []openai.ChatCompletionChunk) {
		t.Helper()
		s := oc.Chat.Completions.NewStreaming(ctx, p, oid(id))
		var acc openai.ChatCompletionAccumulator
		var chunks []openai.ChatCompletionChunk
		for s.Next() {
			c := s.Current()
			chunks = append(chunks, c)
			if !acc.AddChunk(c) {
				t.Fatalf("the accumulator refused chunk %s", c.RawJSON())
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if len(chunks) < 3 {
			t.Fatalf("%d chunks", len(chunks))
		}
		return acc, chunks
	}

	t.Run("stream", func(t *testing.T) {
		acc, chunks := stream(t, chat, "oa-stream")
		for _, c := range chunks {
			if strings.Contains(c.RawJSON(), `"usage"`) {
				t.Fatalf("a client that did not ask for usage got it: %s", c.RawJSON())
			}
		}
		r := fakeRequest(t, e.fake, "oa-stream")
		checkAnthropicWire(t, r, true)
		if acc.Choices[0].Message.Content != fakeanthropic.AnswerText(prompt) || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("accumulated %+v", acc.Choices[0])
		}
		assertLoggedUsage(t, e.gw, "oa-stream", r.Answer.InputTokens, r.Answer.OutputTokens)
	})

	t.Run("stream-include-usage", func(t *testing.T) {
		p := chat
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		acc, chunks := stream(t, p, "oa-stream-usage")
		r := fakeRequest(t, e.fake, "oa-stream-usage")
		body := checkAnthropicWire(t, r, true)
		if _, ok := body["stream_options"]; ok {
			t.Error("stream_options went to Anthropic")
		}
		last := chunks[len(chunks)-1]
		if len(last.Choices) != 0 || last.Usage.PromptTokens != r.Answer.InputTokens || last.Usage.CompletionTokens != r.Answer.OutputTokens {
			t.Errorf("last chunk %s; fake said %d/%d", last.RawJSON(), r.Answer.InputTokens, r.Answer.OutputTokens)
		}
		for _, c := range chunks[:len(chunks)-1] {
			if c.JSON.Usage.Valid() && c.Usage.TotalTokens != 0 {
				t.Errorf("usage before the last chunk: %s", c.RawJSON())
			}
		}
		if acc.Choices[0].Message.Content != fakeanthropic.AnswerText(prompt) || acc.Usage.PromptTokens != r.Answer.InputTokens {
			t.Errorf("accumulated %+v %+v", acc.Choices[0], acc.Usage)
		}
		assertLoggedUsage(t, e.gw, "oa-stream-usage", r.Answer.InputTokens, r.Answer.OutputTokens)
	})

	const weatherPrompt = "What's the weather in Paris?"
	tools := openai.ChatCompletionNewParams{
		Model:    "claude-sonnet-4-5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(weatherPrompt)},
		Tools:    []openai.ChatCompletionToolUnionParam{openAIWeatherTool},
	}
	checkTools := func(t *testing.T, r fakeanthropic.Request) {
		t.Helper()
		body := sentBody(t, r)
		ts, _ := body["tools"].([]any)
		if len(ts) != 1 {
			t.Fatalf("tools %v", body["tools"])
		}
		tool := ts[0].(map[string]any)
		schema, _ := json.Marshal(tool["input_schema"])
		want, _ := json.Marshal(weatherParams)
		if tool["name"] != "get_weather" || tool["description"] != "Current weather for a location" || !sameJSONText(string(schema), string(want)) {
			t.Errorf("tool %v", tool)
		}
		if r.Answer == nil || r.Answer.ToolUseID == "" {
			t.Fatalf("the fake did not call the tool: %s", r.Response)
		}
	}

	t.Run("tools", func(t *testing.T) {
		resp, err := oc.Chat.Completions.New(ctx, tools, oid("oa-tools"))
		if err != nil {
			t.Fatal(err)
		}
		r := fakeRequest(t, e.fake, "oa-tools")
		checkTools(t, r)
		a := r.Answer
		c := resp.Choices[0]
		if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.Content != fakeanthropic.ToolIntroText("get_weather") {
			t.Fatalf("answer %s", resp.RawJSON())
		}
		tc := c.Message.ToolCalls[0]
		if tc.ID != a.ToolUseID || tc.Type != "function" || tc.Function.Name != "get_weather" || !sameJSONText(tc.Function.Arguments, string(a.ToolInput)) {
			t.Errorf("tool call %+v, fake said %s %s", tc, a.ToolUseID, a.ToolInput)
		}
		assertLoggedUsage(t, e.gw, "oa-tools", a.InputTokens, a.OutputTokens)

		// The result goes back; the fake checks it answers the tool_use it made.
		p := tools
		p.Messages = append(append([]openai.ChatCompletionMessageParamUnion{}, tools.Messages...), c.Message.ToParam(), openai.ToolMessage("18 degrees and sunny", tc.ID))
		resp, err = oc.Chat.Completions.New(ctx, p, oid("oa-tool-result"))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != fakeanthropic.ToolResultText("18 degrees and sunny") || resp.Choices[0].FinishReason != "stop" {
			t.Errorf("after the tool result: %s", resp.RawJSON())
		}
		r = fakeRequest(t, e.fake, "oa-tool-result")
		msgs := sentBody(t, r)["messages"].([]any)
		if len(msgs) != 3 || msgs[1].(map[string]any)["role"] != "assistant" || msgs[2].(map[string]any)["role"] != "user" {
			t.Errorf("messages %s", r.Body)
		}
	})

	t.Run("tools-stream", func(t *testing.T) {
		var finished []openai.FinishedChatCompletionToolCall
		s := oc.Chat.Completions.NewStreaming(ctx, tools, oid("oa-tools-stream"))
		var acc openai.ChatCompletionAccumulator
		for s.Next() {
			if !acc.AddChunk(s.Current()) {
				t.Fatalf("the accumulator refused chunk %s", s.Current().RawJSON())
			}
			if tc, ok := acc.JustFinishedToolCall(); ok {
				finished = append(finished, tc)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		r := fakeRequest(t, e.fake, "oa-tools-stream")
		checkTools(t, r)
		a := r.Answer
		c := acc.Choices[0]
		if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.Content != fakeanthropic.ToolIntroText("get_weather") {
			t.Fatalf("accumulated %s", acc.RawJSON())
		}
		tc := c.Message.ToolCalls[0]
		if tc.ID != a.ToolUseID || tc.Function.Name != "get_weather" || !sameJSONText(tc.Function.Arguments, string(a.ToolInput)) {
			t.Errorf("tool call %+v, fake said %s %s", tc, a.ToolUseID, a.ToolInput)
		}
		if len(finished) != 1 || finished[0].ID != a.ToolUseID || finished[0].Name != "get_weather" || !sameJSONText(finished[0].Arguments, string(a.ToolInput)) {
			t.Errorf("finished tool calls %+v", finished)
		}
		assertLoggedUsage(t, e.gw, "oa-tools-stream", a.InputTokens, a.OutputTokens)
	})
}

// TestE2EAnthropicSDKPassThrough: Anthropic's Go SDK on /v1/messages, to an Anthropic
// backend: the body reaches Anthropic as the SDK sent it, but for the model a route renames.
func TestE2EAnthropicSDKPassThrough(t *testing.T) {
	e := startAnthropicE2E(t)
	rec := &sentRecorder{}
	ac := e.anthropic(rec)
	ctx := t.Context()
	const prompt = "Tell me about gateways, briefly."

	// passedThrough checks the fake got exactly the SDK's bytes, the model renamed to to.
	passedThrough := func(t *testing.T, id, from, to string) fakeanthropic.Request {
		t.Helper()
		sent, sentHeader := rec.sent(t, id)
		r := fakeRequest(t, e.fake, id)
		want := sent
		if from != to {
			old := []byte(`"model":"` + from + `"`)
			if bytes.Count(sent, old) != 1 {
				t.Fatalf("the SDK sent %s", sent)
			}
			want = bytes.Replace(sent, old, []byte(`"model":"`+to+`"`), 1)
		}
		if !bytes.Equal(r.Body, want) {
			t.Errorf("the fake received\n%s\nthe SDK sent\n%s", r.Body, sent)
		}
		if r.Header.Get("X-Api-Key") != "sk-ant-gateway" || r.Header.Get("Anthropic-Version") != sentHeader.Get("Anthropic-Version") || r.Header.Get("Anthropic-Version") == "" {
			t.Errorf("fake saw x-api-key %q, anthropic-version %q (the SDK sent %q)", r.Header.Get("X-Api-Key"), r.Header.Get("Anthropic-Version"), sentHeader.Get("Anthropic-Version"))
		}
		return r
	}
	params := func(model string) anthropic.MessageNewParams {
		return anthropic.MessageNewParams{
			Model:       anthropic.Model(model),
			MaxTokens:   256,
			System:      []anthropic.TextBlockParam{{Text: "You are terse."}},
			Messages:    []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
			Temperature: anthropic.Float(0.5),
		}
	}
	accumulate := func(t *testing.T, p anthropic.MessageNewParams, opts ...aoption.RequestOption) anthropic.Message {
		t.Helper()
		s := ac.Messages.NewStreaming(ctx, p, opts...)
		var m anthropic.Message
		events := 0
		for s.Next() {
			events++
			if err := m.Accumulate(s.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if events < 5 {
			t.Fatalf("%d events", events)
		}
		return m
	}

	for _, c := range []struct{ name, model, upstream string }{
		{"same-model", "claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"renamed", "house-claude", "claude-sonnet-4-5-20250929"},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "an-" + c.name
			msg, err := ac.Messages.New(ctx, params(c.model), aid(id))
			if err != nil {
				t.Fatal(err)
			}
			r := passedThrough(t, id, c.model, c.upstream)
			a := r.Answer
			if string(msg.RawJSON()) != string(r.Response) {
				t.Errorf("the client got\n%s\nthe fake answered\n%s", msg.RawJSON(), r.Response)
			}
			if msg.Content[0].Text != fakeanthropic.AnswerText(prompt) || msg.StopReason != "end_turn" || msg.Usage.InputTokens != a.InputTokens || msg.Usage.OutputTokens != a.OutputTokens {
				t.Errorf("message %s", msg.RawJSON())
			}
			assertLoggedUsage(t, e.gw, id, a.InputTokens, a.OutputTokens)

			id += "-stream"
			m := accumulate(t, params(c.model), aid(id))
			r = passedThrough(t, id, c.model, c.upstream)
			a = r.Answer
			if !a.Stream || len(m.Content) != 1 || m.Content[0].Text != fakeanthropic.AnswerText(prompt) || m.StopReason != "end_turn" ||
				m.Usage.InputTokens != a.InputTokens || m.Usage.OutputTokens != a.OutputTokens || m.Model != anthropic.Model(c.upstream) {
				t.Errorf("accumulated %s", m.RawJSON())
			}
			assertLoggedUsage(t, e.gw, id, a.InputTokens, a.OutputTokens)
		})
	}

	t.Run("tools", func(t *testing.T) {
		p := anthropic.MessageNewParams{
			Model:     "claude-sonnet-4-5",
			MaxTokens: 512,
			Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What's the weather in Paris?"))},
			Tools:     []anthropic.ToolUnionParam{anthropicWeatherTool},
		}
		msg, err := ac.Messages.New(ctx, p, aid("an-tools"))
		if err != nil {
			t.Fatal(err)
		}
		a := passedThrough(t, "an-tools", "claude-sonnet-4-5", "claude-sonnet-4-5").Answer
		if msg.StopReason != "tool_use" || len(msg.Content) != 2 {
			t.Fatalf("message %s", msg.RawJSON())
		}
		tu := msg.Content[1].AsToolUse()
		if tu.ID != a.ToolUseID || tu.Name != "get_weather" || string(tu.Input) != string(a.ToolInput) {
			t.Errorf("tool_use %s", msg.Content[1].RawJSON())
		}

		m := accumulate(t, p, aid("an-tools-stream"))
		a = passedThrough(t, "an-tools-stream", "claude-sonnet-4-5", "claude-sonnet-4-5").Answer
		if m.StopReason != "tool_use" || len(m.Content) != 2 || m.Content[1].ID != a.ToolUseID || !sameJSONText(string(m.Content[1].Input), string(a.ToolInput)) {
			t.Errorf("accumulated %s", m.RawJSON())
		}
		assertLoggedUsage(t, e.gw, "an-tools-stream", a.InputTokens, a.OutputTokens)

		p.Messages = append(p.Messages, msg.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(tu.ID, "18 degrees and sunny", false)))
		msg, err = ac.Messages.New(ctx, p, aid("an-tool-result"))
		if err != nil {
			t.Fatal(err)
		}
		passedThrough(t, "an-tool-result", "claude-sonnet-4-5", "claude-sonnet-4-5")
		if msg.Content[0].Text != fakeanthropic.ToolResultText("18 degrees and sunny") || msg.StopReason != "end_turn" {
			t.Errorf("after the tool result: %s", msg.RawJSON())
		}
	})

	t.Run("count_tokens", func(t *testing.T) {
		p := params("house-claude")
		n, err := ac.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
			Model:    p.Model,
			System:   anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: p.System},
			Messages: p.Messages,
		}, aid("an-count"), aoption.WithHeader("anthropic-beta", "token-counting-2024-11-01"))
		if err != nil {
			t.Fatal(err)
		}
		r := passedThrough(t, "an-count", "house-claude", "claude-sonnet-4-5-20250929")
		var counted struct {
			InputTokens int64 `json:"input_tokens"`
		}
		json.Unmarshal(r.Response, &counted)
		if r.Path != "/v1/messages/count_tokens" || counted.InputTokens == 0 || n.InputTokens != counted.InputTokens {
			t.Errorf("%s: counted %d, the fake said %s", r.Path, n.InputTokens, r.Response)
		}
		if got := r.Header.Get("Anthropic-Beta"); got != "token-counting-2024-11-01" {
			t.Errorf("anthropic-beta %q", got)
		}
		// Counting is free: the access log records no usage, and none estimated.
		assertLoggedUsage(t, e.gw, "an-count", 0, 0)
	})

	t.Run("anthropic-beta", func(t *testing.T) {
		_, err := ac.Messages.New(ctx, params("claude-sonnet-4-5"), aid("an-beta"), aoption.WithHeader("anthropic-beta", "prompt-caching-2024-07-31,output-128k-2025-02-19"))
		if err != nil {
			t.Fatal(err)
		}
		r := passedThrough(t, "an-beta", "claude-sonnet-4-5", "claude-sonnet-4-5")
		if got := r.Header.Get("Anthropic-Beta"); got != "prompt-caching-2024-07-31,output-128k-2025-02-19" {
			t.Errorf("anthropic-beta %q", got)
		}
	})
}

// TestE2EAnthropicSDKToOpenAIBackend: Anthropic's Go SDK on /v1/messages for a model
// served by an OpenAI-compatible backend: translated there and back.
func TestE2EAnthropicSDKToOpenAIBackend(t *testing.T) {
	e := startAnthropicE2E(t)
	ac := e.anthropic(nil)
	ctx := t.Context()
	p := anthropic.MessageNewParams{
		Model:     "gpt-4o-mini",
		MaxTokens: 200,
		System:    []anthropic.TextBlockParam{{Text: "You are terse."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What does a gateway do?"))},
	}
	// upstreamAnswer asks the upstream directly what it answers to the body it was sent.
	upstreamAnswer := func(t *testing.T, body []byte) string {
		t.Helper()
		var req map[string]any
		json.Unmarshal(body, &req)
		delete(req, "stream")
		delete(req, "stream_options")
		b, _ := json.Marshal(req)
		resp, err := http.Post(e.up.URL+"/v1/chat/completions", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var c openai.ChatCompletion
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || len(c.Choices) == 0 {
			t.Fatalf("direct answer: %v", err)
		}
		return c.Choices[0].Message.Content
	}

	var text string
	t.Run("message", func(t *testing.T) {
		msg, err := ac.Messages.New(ctx, p, aid("ao-new"))
		if err != nil {
			t.Fatal(err)
		}
		body, h := e.up.last()
		var sent struct {
			Model               string `json:"model"`
			MaxCompletionTokens int64  `json:"max_completion_tokens"`
			Messages            []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		json.Unmarshal(body, &sent)
		if h.Get("X-Request-Id") != "ao-new" || sent.Model != "gpt-4o-mini" || sent.MaxCompletionTokens != 200 || len(sent.Messages) != 2 ||
			sent.Messages[0].Role != "system" || sent.Messages[0].Content != "You are terse." || sent.Messages[1].Content != "What does a gateway do?" {
			t.Errorf("upstream got %s", body)
		}
		if msg.Type != "message" || msg.Role != "assistant" || msg.Model != "gpt-4o-mini" || msg.StopReason != "end_turn" || len(msg.Content) != 1 {
			t.Fatalf("message %s", msg.RawJSON())
		}
		text = msg.Content[0].Text
		if want := upstreamAnswer(t, body); text != want {
			t.Errorf("text %q, upstream answers %q", text, want)
		}
		if msg.Usage.InputTokens <= 0 || msg.Usage.OutputTokens <= 0 {
			t.Errorf("usage %s", msg.Usage.RawJSON())
		}
		assertLoggedUsage(t, e.gw, "ao-new", msg.Usage.InputTokens, msg.Usage.OutputTokens)
	})

	t.Run("stream", func(t *testing.T) {
		s := ac.Messages.NewStreaming(ctx, p, aid("ao-stream"))
		var m anthropic.Message
		var types []string
		for s.Next() {
			ev := s.Current()
			types = append(types, ev.Type)
			if err := m.Accumulate(ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		body, _ := e.up.last()
		var sent struct {
			Stream        bool `json:"stream"`
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		json.Unmarshal(body, &sent)
		if !sent.Stream || !sent.StreamOptions.IncludeUsage {
			t.Errorf("upstream got %s", body)
		}
		if len(types) < 6 || types[0] != "message_start" || types[len(types)-1] != "message_stop" || types[len(types)-2] != "message_delta" {
			t.Errorf("events %v", types)
		}
		if m.StopReason != "end_turn" || len(m.Content) != 1 || m.Content[0].Text != upstreamAnswer(t, body) || m.Usage.OutputTokens <= 0 {
			t.Errorf("accumulated %s", m.RawJSON())
		}
		if text != "" && m.Content[0].Text != text {
			t.Errorf("streamed %q, whole %q", m.Content[0].Text, text)
		}
		rec := accessRecord(t, e.gw, "ao-stream")
		if rec["output_tokens"] != float64(m.Usage.OutputTokens) || rec["input_tokens"].(float64) <= 0 || rec["usage_estimated"] != false {
			t.Errorf("access log %v", rec)
		}
	})

	t.Run("count_tokens", func(t *testing.T) {
		e.up.mu.Lock()
		before := len(e.up.bodies)
		e.up.mu.Unlock()
		n, err := ac.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
			Model:    p.Model,
			System:   anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: p.System},
			Messages: p.Messages,
		}, aid("ao-count"))
		if err != nil {
			t.Fatal(err)
		}
		if n.InputTokens <= 0 {
			t.Errorf("input_tokens %d", n.InputTokens)
		}
		e.up.mu.Lock()
		after := len(e.up.bodies)
		e.up.mu.Unlock()
		if after != before {
			t.Error("count_tokens went upstream")
		}
	})
	// This test sends nothing to the fake Anthropic; give the cleanup check a request.
	oc := e.openAI()
	if _, err := oc.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "claude-sonnet-4-5", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
		t.Fatal(err)
	}
}

type anthropicErrorBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Code    string `json:"code"`
	} `json:"error"`
}

func postMessages(t *testing.T, url, body string) (*http.Response, anthropicErrorBody) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", anthropicClientKey)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e anthropicErrorBody
	if err := json.Unmarshal(raw, &e); err != nil || e.Type != "error" || e.Error.Type == "" || e.Error.Message == "" {
		t.Fatalf("status %d with a body that is not Anthropic error JSON: %s", resp.StatusCode, raw)
	}
	return resp, e
}

// TestE2EAnthropicErrors: errors on /v1/messages are Anthropic's error JSON.
func TestE2EAnthropicErrors(t *testing.T) {
	e := startAnthropicE2E(t)
	ac := e.anthropic(nil)
	ctx := t.Context()
	msg := func(model string) anthropic.MessageNewParams {
		return anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 64, Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}
	}
	var ae *anthropic.Error

	t.Run("unknown-model", func(t *testing.T) {
		resp, body := postMessages(t, e.gw.Server.URL, `{"model":"claude-nope","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 404 || body.Error.Type != "not_found_error" {
			t.Errorf("%d %+v", resp.StatusCode, body)
		}
		_, err := ac.Messages.New(ctx, msg("claude-nope"))
		if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Type() != "not_found_error" {
			t.Errorf("SDK: %v", err)
		}
	})

	t.Run("malformed", func(t *testing.T) {
		resp, body := postMessages(t, e.gw.Server.URL, `{"model":"claude-sonnet-4-5","max_tokens":`)
		if resp.StatusCode != 400 || body.Error.Type != "invalid_request_error" {
			t.Errorf("%d %+v", resp.StatusCode, body)
		}
	})

	t.Run("upstream-401", func(t *testing.T) {
		_, err := ac.Messages.New(ctx, msg("claude-revoked"), aid("err-401"))
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadGateway {
			t.Fatalf("SDK: %v", err)
		}
		var body anthropicErrorBody
		json.Unmarshal([]byte(ae.RawJSON()), &body)
		if body.Type != "error" || body.Error.Type == "authentication_error" || body.Error.Code != "upstream_auth_failed" {
			t.Errorf("error body %s", ae.RawJSON())
		}
		r := fakeRequest(t, e.fake, "err-401")
		if r.Status != 401 || r.Header.Get("X-Api-Key") != "sk-ant-revoked" {
			t.Errorf("fake answered %d to x-api-key %q", r.Status, r.Header.Get("X-Api-Key"))
		}
		// and streamed
		s := ac.Messages.NewStreaming(ctx, msg("claude-revoked"))
		for s.Next() {
		}
		if !errors.As(s.Err(), &ae) || ae.StatusCode != http.StatusBadGateway {
			t.Errorf("SDK stream: %v", s.Err())
		}
	})

	t.Run("upstream-429", func(t *testing.T) {
		throttled := fakeanthropic.Failure{Status: 429, Type: "rate_limit_error", Message: "Number of request tokens has exceeded your per-minute rate limit", Header: http.Header{"Retry-After": {"7"}}}
		e.fake.FailNext(throttled)
		resp, body := postMessages(t, e.gw.Server.URL, `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
		if resp.StatusCode != 429 || body.Error.Type != "rate_limit_error" || resp.Header.Get("Retry-After") != "7" {
			t.Errorf("%d %+v Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
		e.fake.FailNext(throttled)
		_, err := ac.Messages.New(ctx, msg("claude-sonnet-4-5"))
		if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Type() != "rate_limit_error" || ae.Response.Header.Get("Retry-After") != "7" {
			t.Errorf("SDK: %v", err)
		}
		e.fake.FailNext(throttled)
		s := ac.Messages.NewStreaming(ctx, msg("claude-sonnet-4-5"))
		for s.Next() {
		}
		if !errors.As(s.Err(), &ae) || ae.StatusCode != 429 || ae.Type() != "rate_limit_error" {
			t.Errorf("SDK stream: %v", s.Err())
		}
	})
}

// TestE2EAnthropicVertex: Claude on Vertex AI, with OAuth2 tokens minted from a
// service-account key at the key's token_uri.
func TestE2EAnthropicVertex(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	const email = "sluice@proj-1.iam.gserviceaccount.com"

	var minted atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		tok, err := jwt.Parse(r.PostForm.Get("assertion"), func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"RS256"}))
		if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || err != nil {
			t.Errorf("token request: grant_type %q, assertion: %v", r.PostForm.Get("grant_type"), err)
			w.WriteHeader(400)
			return
		}
		if iss, _ := tok.Claims.GetIssuer(); iss != email {
			t.Errorf("assertion issuer %q", iss)
		}
		minted.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"ya29.test","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(tokens.Close)
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj-1", "private_key_id": "k1", "private_key": string(keyPEM),
		"client_email": email, "client_id": "1", "token_uri": tokens.URL + "/token",
	})

	fake := fakeanthropic.Start(t, fakeanthropic.Options{VertexToken: "ya29.test", Project: "proj-1", Location: "us-east5", Models: []string{"claude-sonnet-4@20250514"}})
	yaml := `
apiVersion: v1
kind: Secret
metadata: {name: gcp-sa}
data:
  credentials.json: ${SA}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: vertex}
spec:
  schema: GCPVertexAI
  url: ${VERTEX}
  credentials:
    gcpServiceAccount:
      secretRef: {name: gcp-sa}
      project: proj-1
      location: us-east5
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: claude-vertex}
spec: {models: ["claude-sonnet-4@20250514"], backendRefs: [{name: vertex}]}
`
	gw := gatewaytest.Start(t, yaml, map[string]string{"SA": base64.StdEncoding.EncodeToString(sa), "VERTEX": fake.URL}, gateway.Options{})
	t.Cleanup(func() { noClientCredentialUpstream(t, fake.Requests()) })
	e := &anthropicE2E{fake: fake, gw: gw}
	oc := e.openAI()
	ctx := t.Context()
	const model = "claude-sonnet-4@20250514"
	const prompt = "Hello from Vertex, Claude."
	base := "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/" + model
	chat := openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("You are terse."), openai.UserMessage(prompt)},
	}
	checkVertex := func(t *testing.T, r fakeanthropic.Request, method string) {
		t.Helper()
		if r.Path != base+method || r.Status != 200 {
			t.Fatalf("fake: %s answered %d: %s", r.Path, r.Status, r.Response)
		}
		if r.Header.Get("Authorization") != "Bearer ya29.test" || r.Header.Get("Anthropic-Version") != "" || r.Header.Get("X-Api-Key") != "" {
			t.Errorf("headers %v", r.Header)
		}
		body := sentBody(t, r)
		if _, ok := body["model"]; ok || body["anthropic_version"] != "vertex-2023-10-16" || body["system"] != "You are terse." {
			t.Errorf("body %s", r.Body)
		}
	}

	t.Run("chat", func(t *testing.T) {
		resp, err := oc.Chat.Completions.New(ctx, chat, oid("vx-chat"))
		if err != nil {
			t.Fatal(err)
		}
		r := fakeRequest(t, fake, "vx-chat")
		checkVertex(t, r, ":rawPredict")
		if resp.Choices[0].Message.Content != fakeanthropic.AnswerText(prompt) || resp.Usage.PromptTokens != r.Answer.InputTokens || resp.Usage.CompletionTokens != r.Answer.OutputTokens {
			t.Errorf("answer %s", resp.RawJSON())
		}
		assertLoggedUsage(t, gw, "vx-chat", r.Answer.InputTokens, r.Answer.OutputTokens)
	})

	t.Run("stream", func(t *testing.T) {
		p := chat
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		s := oc.Chat.Completions.NewStreaming(ctx, p, oid("vx-stream"))
		var acc openai.ChatCompletionAccumulator
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		r := fakeRequest(t, fake, "vx-stream")
		checkVertex(t, r, ":streamRawPredict")
		if acc.Choices[0].Message.Content != fakeanthropic.AnswerText(prompt) || acc.Choices[0].FinishReason != "stop" ||
			acc.Usage.PromptTokens != r.Answer.InputTokens || acc.Usage.CompletionTokens != r.Answer.OutputTokens {
			t.Errorf("accumulated %s", acc.RawJSON())
		}
		assertLoggedUsage(t, gw, "vx-stream", r.Answer.InputTokens, r.Answer.OutputTokens)
	})

	// An Anthropic client of Claude on Vertex: translated to chat and back again.
	t.Run("anthropic-sdk", func(t *testing.T) {
		ac := e.anthropic(nil)
		p := anthropic.MessageNewParams{
			Model:     model,
			MaxTokens: 300,
			System:    []anthropic.TextBlockParam{{Text: "You are terse."}},
			Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
		}
		msg, err := ac.Messages.New(ctx, p, aid("vx-an"))
		if err != nil {
			t.Fatal(err)
		}
		r := fakeRequest(t, fake, "vx-an")
		checkVertex(t, r, ":rawPredict")
		if sentBody(t, r)["max_tokens"] != float64(300) {
			t.Errorf("body %s", r.Body)
		}
		if msg.Content[0].Text != fakeanthropic.AnswerText(prompt) || msg.StopReason != "end_turn" || msg.Usage.InputTokens != r.Answer.InputTokens || msg.Usage.OutputTokens != r.Answer.OutputTokens {
			t.Errorf("message %s", msg.RawJSON())
		}
		s := ac.Messages.NewStreaming(ctx, p, aid("vx-an-stream"))
		var m anthropic.Message
		for s.Next() {
			if err := m.Accumulate(s.Current()); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		r = fakeRequest(t, fake, "vx-an-stream")
		checkVertex(t, r, ":streamRawPredict")
		if m.Content[0].Text != fakeanthropic.AnswerText(prompt) || m.StopReason != "end_turn" || m.Usage.OutputTokens != r.Answer.OutputTokens {
			t.Errorf("accumulated %s", m.RawJSON())
		}
	})

	if n := minted.Load(); n != 1 {
		t.Errorf("%d tokens minted, want 1 (cached)", n)
	}
}
