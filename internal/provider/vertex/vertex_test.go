package vertex

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

func TestMain(m *testing.M) {
	now = func() time.Time { return time.Unix(1700000000, 0) }
	randomID = func() string { return "fixedrandomid" }
	os.Exit(m.Run())
}

var testAdapter = New(Options{Project: "proj-1", Location: "us-central1"})

func target(t *testing.T, base, model string) provider.Target {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return provider.Target{BaseURL: u, Model: model}
}

func chatEx(body []byte, stream bool) *exchange.Exchange {
	return &exchange.Exchange{Endpoint: exchange.EndpointChat, Body: body, Stream: stream, UpstreamModel: "gemini-2.5-flash", Header: http.Header{}}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// jsonEqual compares two JSON documents by value; arrays keep their order.
func jsonEqual(t *testing.T, got, want []byte) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	return reflect.DeepEqual(g, w)
}

func TestRequestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/request/*.openai.json")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".openai.json")
		t.Run(name, func(t *testing.T) {
			in := readFile(t, "request/"+name+".openai.json")
			want := readFile(t, "request/"+name+".vertex.json")
			var model struct{ Model string }
			json.Unmarshal(in, &model)
			got, err := chatBody(in, model.Model)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, want) {
				t.Errorf("got  %s\nwant %s", got, compact(want))
			}
		})
	}
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	json.Compact(&buf, b)
	return buf.Bytes()
}

func TestResponseGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/response/*.vertex.json")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".vertex.json")
		t.Run(name, func(t *testing.T) {
			ex := chatEx([]byte(`{}`), false)
			ans, err := testAdapter.Complete(ex, 200, http.Header{}, readFile(t, "response/"+name+".vertex.json"))
			if err != nil {
				t.Fatal(err)
			}
			if ans.Status != 200 {
				t.Fatalf("status %d", ans.Status)
			}
			if want := readFile(t, "response/"+name+".openai.json"); !jsonEqual(t, ans.Body, want) {
				t.Errorf("got  %s\nwant %s", ans.Body, compact(want))
			}
			// The recorded usage matches the answer's, and Output is the answer's text.
			var resp struct {
				Choices []struct {
					Message struct{ Content *string }
				}
				Usage *struct {
					PromptTokens     int64 `json:"prompt_tokens"`
					CompletionTokens int64 `json:"completion_tokens"`
					TotalTokens      int64 `json:"total_tokens"`
				}
			}
			json.Unmarshal(ans.Body, &resp)
			if u := resp.Usage; u != nil {
				if !ex.Usage.Reported || ex.Usage.InputTokens != u.PromptTokens || ex.Usage.OutputTokens != u.CompletionTokens || ex.Usage.TotalTokens != u.TotalTokens {
					t.Errorf("recorded usage %+v, answer %+v", ex.Usage, *u)
				}
			} else if ex.Usage.Reported {
				t.Errorf("usage recorded without upstream usage: %+v", ex.Usage)
			}
			var text string
			if c := resp.Choices[0].Message.Content; c != nil {
				text = *c
			}
			var out string
			if err := json.Unmarshal([]byte(`"`+string(ex.Output)+`"`), &out); err != nil || out != text {
				t.Errorf("Output %q (%v), want %q", ex.Output, err, text)
			}
		})
	}
}

func TestUsageDetails(t *testing.T) {
	ex := chatEx([]byte(`{}`), false)
	if _, err := testAdapter.Complete(ex, 200, nil, readFile(t, "response/text.vertex.json")); err != nil {
		t.Fatal(err)
	}
	want := exchange.Usage{InputTokens: 120, OutputTokens: 62, TotalTokens: 182, CachedInputTokens: 100, ReasoningTokens: 50, Reported: true}
	if ex.Usage != want {
		t.Errorf("usage %+v, want %+v", ex.Usage, want)
	}
}

func TestFinishReasons(t *testing.T) {
	for reason, want := range map[string]string{
		"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
		"BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
		"OTHER": "stop", "MALFORMED_FUNCTION_CALL": "stop", "": "stop",
	} {
		body := `{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"` + reason + `"}]}`
		ans, err := testAdapter.Complete(chatEx(nil, false), 200, nil, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			}
		}
		json.Unmarshal(ans.Body, &r)
		if got := r.Choices[0].FinishReason; got != want {
			t.Errorf("%s: finish_reason %q, want %q", reason, got, want)
		}
	}
}

// TestCompleteArray reads the JSON array streamGenerateContent sends without alt=sse.
func TestCompleteArray(t *testing.T) {
	body := `[{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"responseId":"x"},
	{"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2}}]`
	ans, err := testAdapter.Complete(chatEx(nil, true), 200, nil, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"chatcmpl-x","object":"chat.completion","created":1700000000,"model":"gemini-2.5-flash","choices":[{"index":0,"message":{"role":"assistant","content":"ab"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`
	if string(ans.Body) != want {
		t.Errorf("got  %s\nwant %s", ans.Body, want)
	}
}

func TestCompleteMalformed(t *testing.T) {
	if _, err := testAdapter.Complete(chatEx(nil, false), 200, nil, []byte(`{"candidates":`)); err == nil {
		t.Error("malformed answer accepted")
	}
}

type upstreamCall struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// roundTrip sends the adapter's request to an httptest upstream that records it and
// answers with status, content type and body.
func roundTrip(t *testing.T, ex *exchange.Exchange, model string, status int, ctype, answer string) (upstreamCall, *http.Response) {
	t.Helper()
	calls := make(chan upstreamCall, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- upstreamCall{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), b}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	req, err := testAdapter.NewRequest(t.Context(), ex, target(t, srv.URL+"/base/", model))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return <-calls, resp
}

func TestWireNonStreamed(t *testing.T) {
	in := readFile(t, "request/tools.openai.json")
	ex := chatEx(in, false)
	ex.ID = "req-1"
	ex.Header = http.Header{"Authorization": {"Bearer client-key"}, "X-Goog-Api-Key": {"k"}, "User-Agent": {"sdk/1"}, "Cookie": {"c=1"}}
	call, resp := roundTrip(t, ex, "gemini-3-pro-preview", 200, "application/json", string(readFile(t, "response/tool_calls.vertex.json")))
	if call.method != http.MethodPost || call.path != "/base/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-3-pro-preview:generateContent" || call.query != "" {
		t.Errorf("sent %s %s?%s", call.method, call.path, call.query)
	}
	if !jsonEqual(t, call.body, readFile(t, "request/tools.vertex.json")) {
		t.Errorf("body %s", call.body)
	}
	h := call.header
	if h.Get("Authorization") != "" || h.Get("X-Goog-Api-Key") != "" || h.Get("Cookie") != "" {
		t.Errorf("client credentials forwarded: %v", h)
	}
	if h.Get("Content-Type") != "application/json" || h.Get("X-Request-Id") != "req-1" || h.Get("User-Agent") != "sdk/1" {
		t.Errorf("headers %v", h)
	}
	body, _ := io.ReadAll(resp.Body)
	ans, err := testAdapter.Complete(ex, resp.StatusCode, resp.Header, body)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, ans.Body, readFile(t, "response/tool_calls.openai.json")) {
		t.Errorf("answer %s", ans.Body)
	}
}

func TestWireStreamed(t *testing.T) {
	in := readFile(t, "request/basic.openai.json")
	ex := chatEx(in, true)
	ex.IncludeUsage = true
	call, resp := roundTrip(t, ex, "gemini-2.5-flash", 200, "text/event-stream", string(readFile(t, "stream/text.sse")))
	if call.path != "/base/v1/projects/proj-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent" || call.query != "alt=sse" {
		t.Errorf("sent %s?%s", call.path, call.query)
	}
	if call.header.Get("Accept") != "text/event-stream" {
		t.Errorf("Accept %q", call.header.Get("Accept"))
	}
	if !jsonEqual(t, call.body, readFile(t, "request/basic.vertex.json")) {
		t.Errorf("body %s", call.body)
	}
	got, err := drain(testAdapter.Stream(ex, resp.Header, resp.Body))
	if err != nil {
		t.Fatal(err)
	}
	if want := readFile(t, "stream/text.golden"); got != string(want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestWireEmbeddings(t *testing.T) {
	ex := &exchange.Exchange{Endpoint: exchange.EndpointEmbeddings, UpstreamModel: "text-embedding-005",
		Body: []byte(`{"model":"emb","input":["hello","world"],"dimensions":2,"encoding_format":"float","user":"u"}`)}
	answer := `{"predictions":[{"embeddings":{"statistics":{"truncated":false,"token_count":2},"values":[0.25,-0.5]}},
	{"embeddings":{"statistics":{"truncated":false,"token_count":3.0},"values":[1e-3,0.1]}}],"metadata":{"billableCharacterCount":10}}`
	call, resp := roundTrip(t, ex, "text-embedding-005", 200, "application/json", answer)
	if call.path != "/base/v1/projects/proj-1/locations/us-central1/publishers/google/models/text-embedding-005:predict" || call.query != "" {
		t.Errorf("sent %s?%s", call.path, call.query)
	}
	if want := `{"instances":[{"content":"hello"},{"content":"world"}],"parameters":{"outputDimensionality":2}}`; string(call.body) != want {
		t.Errorf("body %s, want %s", call.body, want)
	}
	body, _ := io.ReadAll(resp.Body)
	ans, err := testAdapter.Complete(ex, resp.StatusCode, resp.Header, body)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]},{"object":"embedding","index":1,"embedding":[0.001,0.1]}],"model":"text-embedding-005","usage":{"prompt_tokens":5,"total_tokens":5}}`
	if string(ans.Body) != want {
		t.Errorf("got  %s\nwant %s", ans.Body, want)
	}
	if u := ex.Usage; !u.Reported || u.InputTokens != 5 || u.TotalTokens != 5 || u.OutputTokens != 0 {
		t.Errorf("usage %+v", u)
	}
}

func TestEmbeddingsBase64(t *testing.T) {
	ex := &exchange.Exchange{Endpoint: exchange.EndpointEmbeddings, UpstreamModel: "text-embedding-005",
		Body: []byte(`{"model":"emb","input":"hello","encoding_format":"base64"}`)}
	body, err := embeddingsBody(ex.Body)
	if err != nil || string(body) != `{"instances":[{"content":"hello"}]}` {
		t.Fatalf("body %s, %v", body, err)
	}
	ans, err := testAdapter.Complete(ex, 200, nil, []byte(`{"predictions":[{"embeddings":{"statistics":{"token_count":1},"values":[0.25,-1.5,3]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct{ Embedding string }
	}
	if err := json.Unmarshal(ans.Body, &list); err != nil || len(list.Data) != 1 {
		t.Fatalf("answer %s: %v", ans.Body, err)
	}
	raw, err := base64.StdEncoding.DecodeString(list.Data[0].Embedding)
	if err != nil || len(raw) != 12 {
		t.Fatalf("embedding %q: %v", list.Data[0].Embedding, err)
	}
	for i, want := range []float32{0.25, -1.5, 3} {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != want {
			t.Errorf("value %d: %v, want %v", i, got, want)
		}
	}
}

func TestEmbeddingsRejected(t *testing.T) {
	for _, body := range []string{
		`{"model":"m","input":[1,2,3]}`,
		`{"model":"m","input":[[1,2],[3]]}`,
		`{"model":"m","input":[]}`,
		`{"model":"m"}`,
		`{"model":"m","input":"x","encoding_format":"int8"}`,
		`not json`,
	} {
		ex := &exchange.Exchange{Endpoint: exchange.EndpointEmbeddings, Body: []byte(body)}
		_, err := testAdapter.NewRequest(t.Context(), ex, target(t, "https://vertex.example", "text-embedding-005"))
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != 400 {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestEndpointsRejected(t *testing.T) {
	for _, ep := range []exchange.Endpoint{exchange.EndpointCompletions, exchange.EndpointMessages, exchange.EndpointModels} {
		ex := &exchange.Exchange{Endpoint: ep, Body: []byte(`{"model":"m","prompt":"x"}`)}
		_, err := testAdapter.NewRequest(t.Context(), ex, target(t, "https://vertex.example", "gemini-2.5-flash"))
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != apierr.CodeInvalidRequest {
			t.Errorf("%v: %v", ep, err)
		}
	}
}

func TestModelNamesRejected(t *testing.T) {
	for _, m := range []string{
		"", "../gemini", "gemini/../../x", "a/b", "gemini?alt=json", "gemini#x", "gemini%2F..", "gem ini", "gemini\t",
		"gemini\x00", "gemini\n", "..", "gemini..pro", "gemini:countTokens", "gemini\u00a0", "géminі", strings.Repeat("a", 300),
	} {
		ex := chatEx([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`), false)
		_, err := testAdapter.NewRequest(t.Context(), ex, target(t, "https://vertex.example", m))
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != 400 || ae.Param != "model" {
			t.Errorf("%q: %v", m, err)
		}
	}
	for _, m := range []string{"gemini-2.5-flash", "gemini-2.0-flash-001", "text-embedding-005", "gemini-1.5-pro@002", "Gemini_3.Pro"} {
		ex := chatEx([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`), false)
		if _, err := testAdapter.NewRequest(t.Context(), ex, target(t, "https://vertex.example", m)); err != nil {
			t.Errorf("%q refused: %v", m, err)
		}
	}
}

func TestIsAnthropicModel(t *testing.T) {
	for m, want := range map[string]bool{
		"claude-sonnet-4@20250514": true, "claude-3-5-haiku": true, "Claude-opus-4": true, "claude": true,
		"gemini-2.5-pro": false, "claud": false, "": false, "my-claude": false,
	} {
		if got := IsAnthropicModel(m); got != want {
			t.Errorf("%q: %v", m, got)
		}
	}
}

func TestSpeaks(t *testing.T) {
	if !testAdapter.Speaks(apierr.OpenAI) || testAdapter.Speaks(apierr.Anthropic) {
		t.Error("Vertex speaks only the OpenAI wire")
	}
}

func TestRequestRejected(t *testing.T) {
	for name, body := range map[string]string{
		"no messages":        `{"model":"m","messages":[]}`,
		"only system":        `{"model":"m","messages":[{"role":"system","content":"x"}]}`,
		"bad role":           `{"model":"m","messages":[{"role":"robot","content":"x"}]}`,
		"orphan tool":        `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"r"}]}`,
		"bad arguments":      `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`,
		"bad image":          `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`,
		"bad data url":       `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`,
		"audio":              `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`,
		"non-function tool":  `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}`,
		"bad tool_choice":    `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`,
		"bad schema":         `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":[]}}}]}`,
		"bad format":         `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}`,
		"n":                  `{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}`,
		"not json":           `{"model":`,
		"image in system":    `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"x"}]}`,
		"schema not object":  `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":[1]}}}`,
		"anyOf not an array": `{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"anyOf":{}}}}}`,
	} {
		_, err := chatBody([]byte(body), "gemini-2.5-flash")
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != 400 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestThoughtSignatureOnlyForGemini3(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"ok"}]}`)
	for model, want := range map[string]bool{"gemini-2.5-pro": false, "gemini-1.5-flash": false, "gemini-3-pro-preview": true, "gemini-3.1-flash": true} {
		got, err := chatBody(body, model)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(got, []byte(skipSignature)) != want {
			t.Errorf("%s: %s", model, got)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantCode   string
		retry      bool
	}{
		{"permission", 403, `{"error":{"code":403,"message":"Permission 'aiplatform.endpoints.predict' denied on resource","status":"PERMISSION_DENIED"}}`, 502, apierr.CodeUpstreamAuthFailed, false},
		{"unauthenticated", 401, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`, 502, apierr.CodeUpstreamAuthFailed, false},
		{"quota", 429, `{"error":{"code":429,"message":"Resource exhausted. Please try again later.","status":"RESOURCE_EXHAUSTED"}}`, 429, apierr.CodeRateLimitExceeded, true},
		{"quota as 400", 400, `{"error":{"code":400,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`, 429, apierr.CodeRateLimitExceeded, true},
		{"too many tokens", 400, `{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`, 400, apierr.CodeContextLengthExceeded, false},
		{"invalid", 400, `{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT"}}`, 400, apierr.CodeInvalidRequest, false},
		{"not found", 404, `{"error":{"code":404,"message":"Publisher Model was not found","status":"NOT_FOUND"}}`, 404, apierr.CodeModelNotFound, false},
		{"array", 429, `[{"error":{"code":429,"message":"Resource exhausted.","status":"RESOURCE_EXHAUSTED"}}]`, 429, apierr.CodeRateLimitExceeded, true},
		{"not json", 400, `<html>bad</html>`, 400, apierr.CodeInvalidRequest, false},
	} {
		ans, err := testAdapter.Complete(chatEx(nil, false), c.status, http.Header{"Retry-After": {"7"}}, []byte(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Message, Type, Code string }
		}
		if err := json.Unmarshal(ans.Body, &e); err != nil {
			t.Fatalf("%s: %s", c.name, ans.Body)
		}
		if ans.Status != c.wantStatus || e.Error.Code != c.wantCode || e.Error.Message == "" {
			t.Errorf("%s: %d %s", c.name, ans.Status, ans.Body)
		}
		if got := ans.Header.Get("Retry-After") == "7"; got != c.retry {
			t.Errorf("%s: Retry-After %q", c.name, ans.Header.Get("Retry-After"))
		}
	}
}

func TestSchemaConversion(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"type":"object","properties":{}}`, ``}, // parameters: omitted
		{`{"type":"object"}`, ``},
		{`{"type":"object","properties":{"a":{"type":"string","format":"uri"}}}`, `{"type":"OBJECT","properties":{"a":{"type":"STRING"}}}`},
		{`{"type":"object","properties":{"b":{"type":"integer","format":"int64"},"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"type":"string","additionalProperties":true}}}`,
			`{"type":"OBJECT","properties":{"b":{"type":"INTEGER","format":"int64"},"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"type":"STRING"}},"propertyOrdering":["b","a"]}`},
		{`{"type":"object","properties":{"x":{"enum":["a","b"]}}}`, `{"type":"OBJECT","properties":{"x":{"enum":["a","b"],"type":"STRING"}}}`},
		{`{"type":"object","properties":{"x":{"type":"str\"ing"}}}`, `{"type":"OBJECT","properties":{"x":{}}}`},
	} {
		got, err := convertSchema([]byte(c.in), true)
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if string(got) != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.in, got, c.want)
		}
	}
	deep := strings.Repeat(`{"items":`, 100) + `{}` + strings.Repeat(`}`, 100)
	if _, err := convertSchema([]byte(deep), false); err == nil {
		t.Error("deep schema accepted")
	}
}
