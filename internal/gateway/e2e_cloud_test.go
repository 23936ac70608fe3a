package gateway_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/gatewaytest/fakecloud"
)

// The end-to-end cloud tests drive a real gateway, configured from YAML, with OpenAI's Go
// SDK, against fakes of Vertex AI, Bedrock and Azure OpenAI that check the wire as the
// real APIs do (internal/gatewaytest/fakecloud). Every request a fake receives is checked
// for the client's own credential, which must never leave the gateway.

// clientKey is the client's credential, sent in every header a credential can hide in.
const clientKey = "sk-client-credential"

const (
	bedrockModelID = "anthropic.claude-3-haiku-20240307-v1:0"
	awsKeyID       = "AKIAE2EFAKE000000001"
	awsSecret      = "e2e/Fake+Secret/Access/Key0000000000000"
	awsSession     = "FwoGZXIvYXdzEE2E//session+token=="
	azureKey       = "azure-e2e-api-key-0123456789"
	entraSecret    = "entra~e2e~client.secret"
)

const cloudYAML = `
apiVersion: v1
kind: Secret
metadata: {name: gcp-sa}
data:
  credentials.json: ${GCP_KEY_B64}
---
apiVersion: v1
kind: Secret
metadata: {name: aws}
stringData:
  accessKeyId: "${AWS_KEY_ID}"
  secretAccessKey: "${AWS_SECRET}"
  sessionToken: "${AWS_SESSION}"
---
apiVersion: v1
kind: Secret
metadata: {name: aws-wrong}
stringData:
  accessKeyId: "${AWS_KEY_ID}"
  secretAccessKey: "not-the-secret-access-key"
  sessionToken: "${AWS_SESSION}"
---
apiVersion: v1
kind: Secret
metadata: {name: azure}
stringData:
  apiKey: "${AZURE_KEY}"
  clientSecret: "${ENTRA_SECRET}"
---
apiVersion: v1
kind: Secret
metadata: {name: openai}
stringData: {apiKey: sk-openai-upstream}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: vertex}
spec:
  schema: GCPVertexAI
  url: ${VERTEX}
  credentials:
    gcpServiceAccount: {secretRef: {name: gcp-sa}, project: proj-e2e, location: europe-west4}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: bedrock}
spec:
  schema: AWSBedrock
  url: ${BEDROCK}
  credentials:
    awsSigV4: {secretRef: {name: aws}, region: eu-central-1}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: bedrock-wrong-key}
spec:
  schema: AWSBedrock
  url: ${BEDROCK}
  credentials:
    awsSigV4: {secretRef: {name: aws-wrong}, region: eu-central-1}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: azure-key}
spec:
  schema: AzureOpenAI
  url: ${AZURE}
  azure: {apiVersion: "2024-10-21"}
  credentials:
    azure: {apiKey: {secretRef: {name: azure}}}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: azure-entra}
spec:
  schema: AzureOpenAI
  url: ${AZURE}
  credentials:
    azure:
      clientCredentials: {tenantID: tenant-e2e, clientID: app-e2e, secretRef: {name: azure}, authorityHost: "${ENTRA}"}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: openai-broken}
spec:
  schema: OpenAI
  url: ${BROKEN}/v1
  credentials: {apiKey: {secretRef: {name: openai}}}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: gemini}
spec:
  models: ["gemini-*"]
  backendRefs: [{name: vertex}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: claude}
spec:
  models: [claude-3-haiku]
  backendRefs: [{name: bedrock, model: "anthropic.claude-3-haiku-20240307-v1:0"}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: claude-profile}
spec:
  models: [claude-profile]
  backendRefs: [{name: bedrock, model: "arn:aws:bedrock:eu-central-1:123456789012:application-inference-profile/a1b2c3d4"}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: bedrock-ids}
spec:
  models: ["anthropic.*"]
  backendRefs: [{name: bedrock}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: claude-throttled}
spec:
  models: [claude-throttled]
  backendRefs: [{name: bedrock, model: "anthropic.claude-throttled-v1:0"}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: claude-midstream}
spec:
  models: [claude-midstream]
  backendRefs: [{name: bedrock, model: "anthropic.claude-midstream-v1:0"}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: claude-wrong-key}
spec:
  models: [claude-wrong-key]
  backendRefs: [{name: bedrock-wrong-key, model: "anthropic.claude-3-haiku-20240307-v1:0"}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: azure-key}
spec:
  models: [azure-gpt-4o-mini]
  backendRefs: [{name: azure-key, model: gpt-4o-mini-prod}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: azure-entra}
spec:
  models: [entra-gpt-4o-mini]
  backendRefs: [{name: azure-entra, model: gpt-4o-mini-prod}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: azure-deployments}
spec:
  models: ["deploy-*"]
  backendRefs: [{name: azure-key}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: resilient}
spec:
  models: [resilient-chat]
  backendRefs:
  - {name: openai-broken}
  - {name: bedrock, priority: 1, model: "anthropic.claude-3-haiku-20240307-v1:0"}
`

// brokenOpenAI is an OpenAI backend that fails every request with a 500.
type brokenOpenAI struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
	bodies  [][]byte
}

func newBrokenOpenAI(t *testing.T) *brokenOpenAI {
	b := &brokenOpenAI{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.headers = append(b.headers, r.Header.Clone())
		b.bodies = append(b.bodies, body)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`))
	}))
	t.Cleanup(b.Close)
	return b
}

// cloud is a gateway in front of every fake.
type cloud struct {
	gw      *gatewaytest.Gateway
	google  *fakecloud.GoogleOAuth
	vertex  *fakecloud.Vertex
	bedrock *fakecloud.Bedrock
	azure   *fakecloud.Azure
	entra   *fakecloud.Entra
	broken  *brokenOpenAI
	client  openai.Client
	ids     atomic.Int64
}

// vertexThoughts is the thinking the Vertex fake reports with every answer.
const vertexThoughts = 7

func startCloud(t *testing.T) *cloud {
	c := &cloud{}
	c.google = fakecloud.NewGoogleOAuth(t)
	c.vertex = fakecloud.NewVertex(t, "proj-e2e", "europe-west4", c.google.Valid)
	c.vertex.ThoughtsTokens = vertexThoughts
	c.vertex.Faults = map[string]fakecloud.Fault{
		"gemini-denied":    {Status: 403, Type: "PERMISSION_DENIED", Message: "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/proj-e2e/locations/europe-west4/publishers/google/models/gemini-denied' (or it may not exist)."},
		"gemini-midstream": {Status: 429, Type: "RESOURCE_EXHAUSTED", Message: "Resource exhausted. Please try again later.", InStream: true},
		"gemini-exhausted": {Status: 429, Type: "RESOURCE_EXHAUSTED", Message: "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details."},
	}
	c.bedrock = fakecloud.NewBedrock(t, "eu-central-1", aws.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, SessionToken: awsSession})
	c.bedrock.MaxInputTokens = 2000
	c.bedrock.Faults = map[string]fakecloud.Fault{
		"anthropic.claude-throttled-v1:0": {Status: 429, Type: "ThrottlingException", Message: "Too many requests, please wait before trying again."},
		"anthropic.claude-midstream-v1:0": {Status: 429, Type: "ThrottlingException", Message: "Too many tokens, please wait before trying again.", InStream: true},
	}
	c.entra = fakecloud.NewEntra(t, "tenant-e2e", "app-e2e", entraSecret)
	c.azure = fakecloud.NewAzure(t, azureKey, c.entra, map[string]string{"gpt-4o-mini-prod": "gpt-4o-mini-2024-07-18", "deploy-main": "gpt-4o-mini-2024-07-18", "deploy-throttled": "gpt-4o-mini-2024-07-18"})
	c.azure.Faults = map[string]fakecloud.Fault{
		"deploy-throttled": {Status: 429, Type: "429", RetryAfter: "6", Message: "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."},
	}
	c.broken = newBrokenOpenAI(t)
	c.gw = gatewaytest.Start(t, cloudYAML, map[string]string{
		"GCP_KEY_B64": base64.StdEncoding.EncodeToString(c.google.KeyJSON()),
		"AWS_KEY_ID":  awsKeyID, "AWS_SECRET": awsSecret, "AWS_SESSION": awsSession,
		"AZURE_KEY": azureKey, "ENTRA_SECRET": entraSecret,
		"VERTEX": c.vertex.URL, "BEDROCK": c.bedrock.URL, "AZURE": c.azure.URL, "ENTRA": c.entra.URL, "BROKEN": c.broken.URL,
	}, gateway.Options{})
	c.client = openai.NewClient(option.WithBaseURL(c.gw.URL()+"/"), option.WithAPIKey(clientKey), option.WithMaxRetries(0))
	// Registered last, so it runs first, before the fakes stop.
	t.Cleanup(func() { c.assertNoClientCredential(t) })
	return c
}

// assertNoClientCredential checks every request every fake received: the client's
// credential is in none of its headers.
func (c *cloud) assertNoClientCredential(t *testing.T) {
	t.Helper()
	check := func(where string, h http.Header) {
		for k, vv := range h {
			for _, v := range vv {
				if strings.Contains(v, clientKey) {
					t.Errorf("%s received the client's credential in %s: %q", where, k, v)
				}
			}
		}
	}
	for _, f := range []struct {
		name string
		reqs []fakecloud.Request
	}{{"Vertex", c.vertex.Requests()}, {"Bedrock", c.bedrock.Requests()}, {"Azure", c.azure.Requests()}} {
		for _, r := range f.reqs {
			check(f.name+" "+r.RequestURI, r.Header)
		}
	}
	c.broken.mu.Lock()
	defer c.broken.mu.Unlock()
	for _, h := range c.broken.headers {
		check("the OpenAI backend", h)
	}
	if p := c.google.Problems(); len(p) > 0 {
		t.Errorf("the Google token endpoint refused requests: %v", p)
	}
	if p := c.entra.Problems(); len(p) > 0 {
		t.Errorf("the Entra ID token endpoint refused requests: %v", p)
	}
}

// opts are the options of one request: its id, and the client's credential in every
// credential header besides the SDK's Authorization.
func (c *cloud) opts(id string, extra ...option.RequestOption) []option.RequestOption {
	return append([]option.RequestOption{
		option.WithHeader("X-Request-Id", id),
		option.WithHeader("Api-Key", clientKey),
		option.WithHeader("X-Api-Key", clientKey),
		option.WithHeader("X-Goog-Api-Key", clientKey),
		option.WithHeader("Cookie", "session="+clientKey),
	}, extra...)
}

func (c *cloud) newID(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, t.Name())
	return fmt.Sprintf("e2e-%d-%s", c.ids.Add(1), name[max(0, len(name)-80):])
}

// logRecord waits for the access-log record of request id.
func (c *cloud) logRecord(t *testing.T, id string) map[string]any {
	t.Helper()
	for n := 1; ; n++ {
		c.gw.Log.Wait(t, "request", n, 10*time.Second)
		for _, r := range c.gw.Log.Records("request") {
			if r["request_id"] == id {
				return r
			}
		}
	}
}

// assertLogged checks the access-log record of request id: status, backend, and the usage
// the upstream reported.
func (c *cloud) assertLogged(t *testing.T, id string, status int, backend string, in, out int64) map[string]any {
	t.Helper()
	rec := c.logRecord(t, id)
	if rec["status"] != float64(status) || rec["backend"] != backend {
		t.Errorf("access log: status %v backend %v, want %d %s: %v", rec["status"], rec["backend"], status, backend, rec)
	}
	if rec["input_tokens"] != float64(in) || rec["output_tokens"] != float64(out) || rec["usage_estimated"] != false {
		t.Errorf("access log usage %v in, %v out (estimated %v), want %d in, %d out as reported: %v", rec["input_tokens"], rec["output_tokens"], rec["usage_estimated"], in, out, rec)
	}
	return rec
}

// cloudProvider is one provider under test, behind one model name.
type cloudProvider struct {
	model   string
	backend string // as the access log names it
	fake    interface {
		ByRequestID(string) []fakecloud.Request
	}
	// usage converts the usage object the fake reported into input and output tokens,
	// as docs/providers.md documents.
	usage func(t *testing.T, raw json.RawMessage) (in, out int64)
	// wire checks what only this provider's requests have (the credential's form).
	wire  func(t *testing.T, r fakecloud.Request)
	extra []option.RequestOption
}

func vertexUsage(t *testing.T, raw json.RawMessage) (int64, int64) {
	var u struct {
		PromptTokenCount, CandidatesTokenCount, ThoughtsTokenCount, ToolUsePromptTokenCount int64
	}
	if err := json.Unmarshal(raw, &u); err != nil || u.PromptTokenCount == 0 {
		t.Fatalf("Vertex reported no usage: %s", raw)
	}
	return u.PromptTokenCount + u.ToolUsePromptTokenCount, u.CandidatesTokenCount + u.ThoughtsTokenCount
}

func bedrockUsage(t *testing.T, raw json.RawMessage) (int64, int64) {
	var u struct {
		InputTokens, OutputTokens, CacheReadInputTokens, CacheWriteInputTokens int64
	}
	if err := json.Unmarshal(raw, &u); err != nil || u.InputTokens == 0 {
		t.Fatalf("Bedrock reported no usage: %s", raw)
	}
	return u.InputTokens + u.CacheReadInputTokens + u.CacheWriteInputTokens, u.OutputTokens
}

func openAIUsage(t *testing.T, raw json.RawMessage) (int64, int64) {
	var u struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	}
	if err := json.Unmarshal(raw, &u); err != nil || u.PromptTokens == 0 {
		t.Fatalf("Azure reported no usage: %s", raw)
	}
	return u.PromptTokens, u.CompletionTokens
}

// upstream returns the one request the provider received for client request id, checked:
// served (not refused), and carrying the provider's credential in its form.
func (p *cloudProvider) upstream(t *testing.T, id string) fakecloud.Request {
	t.Helper()
	reqs := p.fake.ByRequestID(id)
	if len(reqs) != 1 {
		t.Fatalf("the upstream received %d requests for %s, want 1", len(reqs), id)
	}
	r := reqs[0]
	if r.Rejected != "" || r.Status != 200 {
		t.Fatalf("the upstream refused %s %s (%d): %s\nbody: %s", r.Method, r.RequestURI, r.Status, r.Rejected, r.Body)
	}
	p.wire(t, r)
	return r
}

var weatherTool = openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Get the current weather in a city."),
	Parameters: openai.FunctionParameters{
		"type": "object",
		"properties": map[string]any{
			"location": map[string]any{"type": "string", "description": "The city, e.g. Paris"},
			"unit":     map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
		},
		"required":             []string{"location"},
		"additionalProperties": false,
	},
})

var timeTool = openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{
	Name:        "get_time",
	Description: openai.String("Get the current time in a time zone."),
	Parameters: openai.FunctionParameters{
		"type":       "object",
		"properties": map[string]any{"zone": map[string]any{"type": "string"}},
	},
})

func chatParams(model string, msgs ...openai.ChatCompletionMessageParamUnion) openai.ChatCompletionNewParams {
	if len(msgs) == 0 {
		msgs = []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("What does a gateway do?")}
	}
	return openai.ChatCompletionNewParams{Model: model, Messages: msgs}
}

func toolParams(model, question string) openai.ChatCompletionNewParams {
	p := chatParams(model, openai.SystemMessage("You answer questions about the weather."), openai.UserMessage(question))
	p.Tools = []openai.ChatCompletionToolUnionParam{timeTool, weatherTool}
	return p
}

func jsonEqual(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && fmt.Sprint(x) == fmt.Sprint(y)
}

// streamResult is a streamed answer as the SDK saw it.
type streamResult struct {
	acc     openai.ChatCompletionAccumulator
	chunks  []openai.ChatCompletionChunk
	content string
	usage   *openai.CompletionUsage // from the chunk that carried it
	tools   []openai.FinishedChatCompletionToolCall
}

func (c *cloud) stream(t *testing.T, p openai.ChatCompletionNewParams, opts []option.RequestOption) *streamResult {
	t.Helper()
	s := c.client.Chat.Completions.NewStreaming(t.Context(), p, opts...)
	res := &streamResult{}
	for s.Next() {
		ch := s.Current()
		res.chunks = append(res.chunks, ch)
		if !res.acc.AddChunk(ch) {
			t.Fatalf("the SDK's accumulator refused chunk %d: %s", len(res.chunks), ch.RawJSON())
		}
		for _, choice := range ch.Choices {
			res.content += choice.Delta.Content
		}
		if ch.JSON.Usage.Valid() && ch.Usage.TotalTokens > 0 {
			if res.usage != nil {
				t.Errorf("usage reported twice")
			}
			u := ch.Usage
			res.usage = &u
		}
		if tc, ok := res.acc.JustFinishedToolCall(); ok {
			res.tools = append(res.tools, tc)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if len(res.acc.Choices) != 1 {
		t.Fatalf("accumulated %d choices", len(res.acc.Choices))
	}
	return res
}

// runCloudSuite drives one provider with the SDK: chat, streams with and without usage,
// tool calls whole and streamed, and a tool result sent back.
func runCloudSuite(t *testing.T, c *cloud, p *cloudProvider) {
	ctx := t.Context()
	t.Run("chat", func(t *testing.T) {
		id := c.newID(t)
		resp, err := c.client.Chat.Completions.New(ctx, chatParams(p.model), c.opts(id, p.extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		up := p.upstream(t, id)
		in, out := p.usage(t, up.Usage)
		if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != up.Answer || resp.Choices[0].FinishReason != "stop" {
			t.Errorf("answer %s\nwant content %q", resp.RawJSON(), up.Answer)
		}
		if resp.Usage.PromptTokens != in || resp.Usage.CompletionTokens != out || resp.Usage.TotalTokens != in+out {
			t.Errorf("usage %+v, want %d + %d", resp.Usage, in, out)
		}
		c.assertLogged(t, id, 200, p.backend, in, out)
	})
	t.Run("stream", func(t *testing.T) {
		id := c.newID(t)
		res := c.stream(t, chatParams(p.model), c.opts(id, p.extra...))
		up := p.upstream(t, id)
		in, out := p.usage(t, up.Usage)
		if res.content != up.Answer || res.acc.Choices[0].FinishReason != "stop" {
			t.Errorf("streamed %q (finish %q), want %q", res.content, res.acc.Choices[0].FinishReason, up.Answer)
		}
		for _, ch := range res.chunks {
			if strings.Contains(ch.RawJSON(), `"usage":{`) {
				t.Errorf("a client that did not ask for usage got it: %s", ch.RawJSON())
			}
		}
		c.assertLogged(t, id, 200, p.backend, in, out)
	})
	t.Run("stream-include-usage", func(t *testing.T) {
		id := c.newID(t)
		params := chatParams(p.model)
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		res := c.stream(t, params, c.opts(id, p.extra...))
		up := p.upstream(t, id)
		in, out := p.usage(t, up.Usage)
		if res.content != up.Answer {
			t.Errorf("streamed %q, want %q", res.content, up.Answer)
		}
		last := res.chunks[len(res.chunks)-1]
		if res.usage == nil || last.Usage.PromptTokens != in || last.Usage.CompletionTokens != out || last.Usage.TotalTokens != in+out || len(last.Choices) != 0 {
			t.Errorf("last chunk %s, want usage %d + %d", last.RawJSON(), in, out)
		}
		c.assertLogged(t, id, 200, p.backend, in, out)
	})
	for _, tc := range []struct {
		name, question       string
		stream, includeUsage bool
	}{
		{"tools", weatherQuestion, false, false},
		{"tools-stream", weatherQuestion, true, false},
		{"tools-stream-include-usage", weatherQuestion, true, true},
		{"parallel-tools", bothQuestion, false, false},
		{"parallel-tools-stream", bothQuestion, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toolTurns(t, c, p, p.model, tc.question, tc.stream, tc.includeUsage)
		})
	}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("json-schema-stream-%v", stream), func(t *testing.T) {
			id := c.newID(t)
			params := chatParams(p.model, openai.UserMessage("Report the weather in Paris as JSON."))
			params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &openai.ResponseFormatJSONSchemaParam{
				JSONSchema: openai.ResponseFormatJSONSchemaJSONSchemaParam{Name: "weather_report", Strict: openai.Bool(true), Schema: map[string]any{
					"type": "object",
					"properties": map[string]any{
						"city":          map[string]any{"type": "string"},
						"temperature_c": map[string]any{"type": "number"},
						"unit":          map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
					},
					"required":             []string{"city", "temperature_c", "unit"},
					"additionalProperties": false,
				}},
			}}
			msg, finish, _ := c.complete(t, params, stream, c.opts(id, p.extra...))
			up := p.upstream(t, id)
			want := up.Answer
			if want == "" && len(up.Calls) == 1 {
				want = string(up.Calls[0].Args) // Bedrock answers through the forced tool
			}
			if msg.Content != want || !jsonEqual(want, `{"city":"Paris","temperature_c":21,"unit":"celsius"}`) || finish != "stop" || len(msg.ToolCalls) != 0 {
				t.Errorf("answer %+v (finish %q), want content %s", msg, finish, want)
			}
			in, out := p.usage(t, up.Usage)
			c.assertLogged(t, id, 200, p.backend, in, out)
		})
	}
	t.Run("image", func(t *testing.T) {
		id := c.newID(t)
		params := chatParams(p.model, openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
			openai.TextContentPart("What is in this image?"),
			openai.ImageContentPart(openai.ChatCompletionContentPartImageImageURLParam{URL: "data:image/png;base64," + onePixelPNG}),
		}))
		msg, _, _ := c.complete(t, params, false, c.opts(id, p.extra...))
		up := p.upstream(t, id)
		if msg.Content != up.Answer || !bytes.Contains(up.Body, []byte(onePixelPNG)) {
			t.Errorf("answer %q, want %q; upstream body %s", msg.Content, up.Answer, up.Body)
		}
		in, out := p.usage(t, up.Usage)
		c.assertLogged(t, id, 200, p.backend, in, out)
	})
}

const (
	weatherQuestion = "What's the weather in Paris today?"
	bothQuestion    = "What's the weather in Paris, and what time is it there?"
	onePixelPNG     = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

// toolResults are what the tools return.
var toolResults = map[string]string{
	"get_weather": `{"condition":"sunny","temperature_c":21}`,
	"get_time":    `{"time":"14:05","zone":"Europe/Paris"}`,
}

// complete sends params, whole or streamed, and returns the (accumulated) message, its
// finish reason and the usage the client got (nil if none).
func (c *cloud) complete(t *testing.T, params openai.ChatCompletionNewParams, stream bool, opts []option.RequestOption) (openai.ChatCompletionMessage, string, *openai.CompletionUsage) {
	t.Helper()
	if stream {
		res := c.stream(t, params, opts)
		msg := res.acc.Choices[0].Message
		if len(res.tools) != len(msg.ToolCalls) {
			t.Errorf("%d tool calls finished, %d accumulated", len(res.tools), len(msg.ToolCalls))
		}
		for i, tc := range res.tools {
			if i < len(msg.ToolCalls) && (tc.ID != msg.ToolCalls[i].ID || tc.Name != msg.ToolCalls[i].Function.Name || tc.Arguments != msg.ToolCalls[i].Function.Arguments) {
				t.Errorf("finished tool call %+v, accumulated %+v", tc, msg.ToolCalls[i])
			}
		}
		if res.content != msg.Content {
			t.Errorf("content deltas %q, accumulated %q", res.content, msg.Content)
		}
		return msg, string(res.acc.Choices[0].FinishReason), res.usage
	}
	resp, err := c.client.Chat.Completions.New(t.Context(), params, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 {
		t.Fatalf("answer with %d choices: %s", len(resp.Choices), resp.RawJSON())
	}
	var u *openai.CompletionUsage
	if resp.JSON.Usage.Valid() {
		u = &resp.Usage
	}
	return resp.Choices[0].Message, string(resp.Choices[0].FinishReason), u
}

// toolTurns asks a question the tools answer, checks the tool calls, sends the tools'
// results back and checks the answer that uses them.
func toolTurns(t *testing.T, c *cloud, p *cloudProvider, model, question string, stream, includeUsage bool) {
	id := c.newID(t)
	params := toolParams(model, question)
	if includeUsage {
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	}
	msg, finish, usage := c.complete(t, params, stream, c.opts(id, p.extra...))
	up := p.upstream(t, id)
	in, out := p.usage(t, up.Usage)
	if len(up.Calls) == 0 {
		t.Fatalf("the upstream answered no tool call: %+v", up)
	}
	if finish != "tool_calls" || msg.Content != up.Answer || len(msg.ToolCalls) != len(up.Calls) {
		t.Fatalf("answer %+v (finish %q), want content %q and %d calls", msg, finish, up.Answer, len(up.Calls))
	}
	ids := map[string]bool{}
	for i, tc := range msg.ToolCalls {
		if tc.Function.Name != up.Calls[i].Name || !jsonEqual(tc.Function.Arguments, string(up.Calls[i].Args)) || tc.ID == "" || ids[tc.ID] || tc.Type != "function" {
			t.Errorf("tool call %d: %+v, want %s(%s) with a unique id", i, tc, up.Calls[i].Name, up.Calls[i].Args)
		}
		ids[tc.ID] = true
	}
	if want := !stream || includeUsage; (usage != nil) != want || want && (usage.PromptTokens != in || usage.CompletionTokens != out || usage.TotalTokens != in+out) {
		t.Errorf("usage %+v, want %d + %d (reported: %v)", usage, in, out, want)
	}
	c.assertLogged(t, id, 200, p.backend, in, out)

	// The answer goes back with every tool's result.
	id = c.newID(t)
	params.Messages = append(params.Messages, msg.ToParam())
	for _, tc := range msg.ToolCalls {
		params.Messages = append(params.Messages, openai.ToolMessage(toolResults[tc.Function.Name], tc.ID))
	}
	msg, finish, _ = c.complete(t, params, stream, c.opts(id, p.extra...))
	up = p.upstream(t, id)
	if msg.Content != up.Answer || finish != "stop" || len(msg.ToolCalls) != 0 {
		t.Errorf("after the tools' results: %+v (finish %q), upstream answered %q", msg, finish, up.Answer)
	}
	for _, tc := range up.Calls {
		t.Errorf("called %s again", tc.Name)
	}
	for name, result := range toolResults {
		if strings.Contains(question, strings.TrimPrefix(name, "get_")) && (!strings.Contains(up.Answer, "According to "+name+": ") || !strings.Contains(up.Answer, result)) {
			t.Errorf("the upstream did not get %s's result: %q", name, up.Answer)
		}
	}
	in, out = p.usage(t, up.Usage)
	c.assertLogged(t, id, 200, p.backend, in, out)
}

func TestE2ECloudVertexGemini(t *testing.T) {
	c := startCloud(t)
	p := &cloudProvider{
		model: "gemini-2.5-flash", backend: "Backend/default/vertex", fake: c.vertex, usage: vertexUsage,
		wire: func(t *testing.T, r fakecloud.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !c.google.Valid(tok) {
				t.Errorf("Vertex got Authorization %q", r.Header.Get("Authorization"))
			}
			want := "/v1/projects/proj-e2e/locations/europe-west4/publishers/google/models/" + r.Model + ":generateContent"
			if r.Stream {
				want = strings.Replace(want, ":generateContent", ":streamGenerateContent?alt=sse", 1)
			}
			if r.RequestURI != want {
				t.Errorf("Vertex got %s, want %s", r.RequestURI, want)
			}
		},
	}
	runCloudSuite(t, c, p)
	t.Run("tools-gemini-3", func(t *testing.T) {
		// Gemini 3 refuses replayed function calls without a thought signature.
		toolTurns(t, c, p, "gemini-3-pro-preview", bothQuestion, false, false)
		toolTurns(t, c, p, "gemini-3-pro-preview", bothQuestion, true, true)
	})
	// One token minted, then cached.
	if n := c.google.Mints(); n != 1 {
		t.Errorf("%d Google tokens minted, want 1", n)
	}
}

func TestE2ECloudBedrock(t *testing.T) {
	c := startCloud(t)
	p := &cloudProvider{
		model: "claude-3-haiku", backend: "Backend/default/bedrock", fake: c.bedrock, usage: bedrockUsage,
		wire: func(t *testing.T, r fakecloud.Request) {
			// The fake verified the signature; the client's X-Amz-* headers were not signed
			// as the gateway's.
			if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+awsKeyID+"/") || r.Header.Get("X-Amz-Security-Token") != awsSession {
				t.Errorf("Bedrock got Authorization %q, token %q", r.Header.Get("Authorization"), r.Header.Get("X-Amz-Security-Token"))
			}
			if r.Model != bedrockModelID {
				t.Errorf("Bedrock got model %q", r.Model)
			}
		},
		// A client's own SigV4 headers must not be signed as if they were the gateway's.
		extra: []option.RequestOption{option.WithHeader("X-Amz-Security-Token", "client-token"), option.WithHeader("X-Amz-Date", "20000101T000000Z")},
	}
	runCloudSuite(t, c, p)
	t.Run("inference-profile-arn", func(t *testing.T) {
		// An ARN's '/' is escaped into one path segment, and the escaped path is signed.
		arn := *p
		arn.model = "claude-profile"
		arn.wire = func(t *testing.T, r fakecloud.Request) {
			want := "/model/arn:aws:bedrock:eu-central-1:123456789012:application-inference-profile%2Fa1b2c3d4/converse"
			if r.Stream {
				want += "-stream"
			}
			if r.RequestURI != want || r.Model != "arn:aws:bedrock:eu-central-1:123456789012:application-inference-profile/a1b2c3d4" {
				t.Errorf("Bedrock got %s (model %q), want %s", r.RequestURI, r.Model, want)
			}
		}
		id := c.newID(t)
		resp, err := c.client.Chat.Completions.New(t.Context(), chatParams(arn.model), c.opts(id)...)
		if err != nil {
			t.Fatal(err)
		}
		if up := arn.upstream(t, id); resp.Choices[0].Message.Content != up.Answer {
			t.Errorf("answer %q, want %q", resp.Choices[0].Message.Content, up.Answer)
		}
		id = c.newID(t)
		res := c.stream(t, chatParams(arn.model), c.opts(id))
		if up := arn.upstream(t, id); res.content != up.Answer {
			t.Errorf("streamed %q, want %q", res.content, up.Answer)
		}
	})
}

func TestE2ECloudAzureAPIKey(t *testing.T) {
	c := startCloud(t)
	p := &cloudProvider{
		model: "azure-gpt-4o-mini", backend: "Backend/default/azure-key", fake: c.azure, usage: openAIUsage,
		wire: func(t *testing.T, r fakecloud.Request) {
			if r.Header.Get("Api-Key") != azureKey || r.Header.Get("Authorization") != "" {
				t.Errorf("Azure got api-key %q, Authorization %q", r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
			}
			if r.Path != "/openai/deployments/gpt-4o-mini-prod/chat/completions" || r.Query.Get("api-version") != "2024-10-21" {
				t.Errorf("Azure got %s", r.RequestURI)
			}
		},
	}
	runCloudSuite(t, c, p)
}

func TestE2ECloudAzureEntra(t *testing.T) {
	c := startCloud(t)
	p := &cloudProvider{
		model: "entra-gpt-4o-mini", backend: "Backend/default/azure-entra", fake: c.azure, usage: openAIUsage,
		wire: func(t *testing.T, r fakecloud.Request) {
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || !c.entra.Valid(tok) || r.Header.Get("Api-Key") != "" {
				t.Errorf("Azure got Authorization %q, api-key %q", r.Header.Get("Authorization"), r.Header.Get("Api-Key"))
			}
			if r.Path != "/openai/deployments/gpt-4o-mini-prod/chat/completions" || r.Query.Get("api-version") == "" {
				t.Errorf("Azure got %s", r.RequestURI)
			}
		},
	}
	runCloudSuite(t, c, p)
	if n := c.entra.Mints(); n != 1 {
		t.Errorf("%d Entra tokens minted, want 1", n)
	}
}

// TestE2ECloudFallback: the OpenAI backend fails with a 500, and Bedrock, the next
// priority, answers: its request is translated from the client's, not from what went to
// OpenAI, and signed for Bedrock.
func TestE2ECloudFallback(t *testing.T) {
	c := startCloud(t)
	bedrock := &cloudProvider{fake: c.bedrock, usage: bedrockUsage, wire: func(t *testing.T, r fakecloud.Request) {
		if r.Model != bedrockModelID {
			t.Errorf("Bedrock got model %q", r.Model)
		}
	}}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream-%v", stream), func(t *testing.T) {
			id := c.newID(t)
			params := chatParams("resilient-chat")
			var content string
			if stream {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
				content = c.stream(t, params, c.opts(id)).content
			} else {
				resp, err := c.client.Chat.Completions.New(t.Context(), params, c.opts(id)...)
				if err != nil {
					t.Fatal(err)
				}
				content = resp.Choices[0].Message.Content
			}
			// OpenAI got the request first, with its own key.
			c.broken.mu.Lock()
			var tried int
			for i, h := range c.broken.headers {
				if h.Get("X-Request-Id") == id {
					tried++
					if h.Get("Authorization") != "Bearer sk-openai-upstream" || !bytes.Contains(c.broken.bodies[i], []byte(`"model":"resilient-chat"`)) {
						t.Errorf("OpenAI got Authorization %q, body %s", h.Get("Authorization"), c.broken.bodies[i])
					}
				}
			}
			c.broken.mu.Unlock()
			if tried != 1 {
				t.Fatalf("OpenAI tried %d times", tried)
			}
			// Bedrock answered a Converse request the fake decoded strictly and whose
			// signature it recomputed.
			up := bedrock.upstream(t, id)
			if up.Stream != stream || bytes.Contains(up.Body, []byte("resilient-chat")) || bytes.Contains(up.Body, []byte("stream_options")) {
				t.Errorf("Bedrock got %s (stream %v): %s", up.RequestURI, up.Stream, up.Body)
			}
			if content != up.Answer {
				t.Errorf("answer %q, want Bedrock's %q", content, up.Answer)
			}
			in, out := bedrockUsage(t, up.Usage)
			rec := c.assertLogged(t, id, 200, "Backend/default/bedrock", in, out)
			if rec["attempts"] != float64(2) || rec["upstream_model"] != bedrockModelID {
				t.Errorf("access log: %v", rec)
			}
		})
	}
}

// cloudPost sends a chat request the way any HTTP client would, with the client's
// credential in every credential header, and returns the status and the error (if any).
func (c *cloud) cloudPost(t *testing.T, id, model, content string, stream bool) (*http.Response, apiError, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"model": model, "stream": stream,
		"messages": []any{map[string]any{"role": "user", "content": content}},
	})
	req, _ := http.NewRequestWithContext(t.Context(), "POST", c.gw.URL()+"/chat/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("Api-Key", clientKey)
	req.Header.Set("X-Api-Key", clientKey)
	req.Header.Set("X-Goog-Api-Key", clientKey)
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e apiError
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("status %d with a body that is not error JSON: %q", resp.StatusCode, raw)
		}
	}
	return resp, e, raw
}

// TestE2ECloudErrors: the providers' own errors reach the client with the gateway's
// stable codes.
func TestE2ECloudErrors(t *testing.T) {
	c := startCloud(t)
	long := strings.Repeat("word ", 2500)
	cases := []struct {
		name, model, content string
		fake                 interface {
			ByRequestID(string) []fakecloud.Request
		}
		status   int
		code     string
		rejected bool // the fake refuses the request itself (a bad signature)
	}{
		{"bedrock-throttled", "claude-throttled", "hi", c.bedrock, 429, "rate_limit_exceeded", false},
		{"vertex-permission-denied", "gemini-denied", "hi", c.vertex, 502, "upstream_auth_failed", false},
		{"bedrock-input-too-long", "claude-3-haiku", long, c.bedrock, 400, "context_length_exceeded", false},
		{"bedrock-wrong-secret-key", "claude-wrong-key", "hi", c.bedrock, 502, "upstream_auth_failed", true},
		{"vertex-resource-exhausted", "gemini-exhausted", "hi", c.vertex, 429, "rate_limit_exceeded", false},
		{"azure-throttled", "deploy-throttled", "hi", c.azure, 429, "rate_limit_exceeded", false},
		{"azure-deployment-not-found", "deploy-missing", "hi", c.azure, 404, "model_not_found", true},
	}
	for _, tc := range cases {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-stream-%v", tc.name, stream), func(t *testing.T) {
				id := c.newID(t)
				resp, e, _ := c.cloudPost(t, id, tc.model, tc.content, stream)
				if resp.StatusCode != tc.status || e.Error.Code != tc.code {
					t.Errorf("got %d %q (%s), want %d %q", resp.StatusCode, e.Error.Code, e.Error.Message, tc.status, tc.code)
				}
				if strings.Contains(e.Error.Message, awsSecret) || strings.Contains(e.Error.Message, "Signature") {
					t.Errorf("the error tells the client about the gateway's credentials: %s", e.Error.Message)
				}
				reqs := tc.fake.ByRequestID(id)
				if len(reqs) != 1 || (reqs[0].Rejected != "") != tc.rejected || reqs[0].Status == 200 {
					t.Fatalf("the upstream got %+v", reqs)
				}
				if tc.status == 429 && tc.fake == c.azure && resp.Header.Get("Retry-After") != "6" {
					t.Errorf("Retry-After %q, want Azure's 6", resp.Header.Get("Retry-After"))
				}
				if tc.rejected && tc.status == 502 && !strings.Contains(reqs[0].Rejected, "signature") {
					t.Errorf("the fake refused it for %q", reqs[0].Rejected)
				}
				if rec := c.logRecord(t, id); rec["status"] != float64(tc.status) {
					t.Errorf("access log %v", rec)
				}
			})
		}
	}
	// Errors inside a stream that already started end it with an error event.
	for _, tc := range []struct{ model, backend string }{{"claude-midstream", "bedrock"}, {"gemini-midstream", "vertex"}} {
		t.Run(tc.model, func(t *testing.T) {
			id := c.newID(t)
			s := c.client.Chat.Completions.NewStreaming(t.Context(), chatParams(tc.model), c.opts(id)...)
			var content string
			for s.Next() {
				for _, ch := range s.Current().Choices {
					content += ch.Delta.Content
				}
			}
			if err := s.Err(); err == nil || !strings.Contains(err.Error(), "rate_limit_exceeded") {
				t.Errorf("stream error %v, want rate_limit_exceeded", err)
			}
			if content == "" {
				t.Error("nothing streamed before the error")
			}
			rec := c.logRecord(t, id)
			// A broken stream's delivered text is counted (Vertex reports usage so far with
			// every event, Bedrock only at the end; the larger count is kept).
			if rec["code"] != "rate_limit_exceeded" || rec["backend"] != "Backend/default/"+tc.backend || rec["usage_estimated"] != true || rec["output_tokens"].(float64) <= 0 {
				t.Errorf("access log %v", rec)
			}
		})
	}
}

// TestE2ECloudUnsafeModelNames: a model name routed through a glob goes into the upstream
// URL; names that would change the path or the query are refused with a 400, and no
// upstream hears of them.
func TestE2ECloudUnsafeModelNames(t *testing.T) {
	c := startCloud(t)
	for _, model := range []string{
		"gemini-../../../../v1/projects/other/locations/x/publishers/google/models/y",
		"gemini-2.5-flash?alt=json",
		"gemini-2.5-flash:streamGenerateContent?x=",
		"gemini-%2e%2e%2fsecret",
		"gemini-..",
		"anthropic.claude/../../model/other",
		"anthropic.claude-3?x=1",
		"anthropic.claude-3#fragment",
		"anthropic...",
		"deploy-../../other/chat/completions",
		"deploy-main?api-version=2020-01-01",
		"deploy-main/../other",
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-stream-%v", model, stream), func(t *testing.T) {
				id := c.newID(t)
				resp, e, _ := c.cloudPost(t, id, model, "hi", stream)
				if resp.StatusCode != 400 || e.Error.Code != "invalid_request_error" || e.Error.Param == nil || *e.Error.Param != "model" {
					t.Errorf("got %d %q %v (%s), want 400 invalid_request_error on model", resp.StatusCode, e.Error.Code, e.Error.Param, e.Error.Message)
				}
			})
		}
	}
	for name, n := range map[string]int{"Vertex": len(c.vertex.Requests()), "Bedrock": len(c.bedrock.Requests()), "Azure": len(c.azure.Requests())} {
		if n != 0 {
			t.Errorf("%s received %d requests", name, n)
		}
	}
	// The globs do route to the providers: safe names get through.
	for _, model := range []string{"deploy-main", bedrockModelID, "gemini-2.0-flash-001"} {
		resp, e, _ := c.cloudPost(t, c.newID(t), model, "hi", false)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", model, resp.StatusCode, e.Error.Message)
		}
	}
}
