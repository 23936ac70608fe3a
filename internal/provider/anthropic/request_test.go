package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/golden"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
)

// upstreamBody builds the upstream request for ex and returns its body.
func upstreamBody(t *testing.T, a *Adapter, ex *exchange.Exchange) []byte {
	t.Helper()
	req, err := a.NewRequest(context.Background(), ex, base(t, "https://api.anthropic.com"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTranslateRequestGolden(t *testing.T) {
	for _, c := range []struct {
		in, out string
		opts    Options
	}{
		{"chat_multiturn.json", "chat_multiturn.messages.golden.json", Options{}},
		{"chat_tools.json", "chat_tools.messages.golden.json", Options{}},
		{"chat_images.json", "chat_images.messages.golden.json", Options{DefaultMaxTokens: 1}},
		{"chat_json_schema.json", "chat_json_schema.messages.golden.json", Options{DefaultMaxTokens: 2048}},
		{"chat_multiturn.json", "chat_multiturn.vertex.golden.json", Options{Vertex: &VertexOptions{Project: "p", Location: "us-east5"}}},
	} {
		t.Run(c.out, func(t *testing.T) {
			got := upstreamBody(t, New(c.opts), chatEx(fixture(t, c.in)))
			golden.Compare(t, c.out, golden.JSON(t, got))
		})
	}
}

// translated returns the translated request as a generic value.
func translated(t *testing.T, a *Adapter, body string) map[string]any {
	t.Helper()
	b, err := a.translateRequest(chatEx([]byte(body)), "m")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTranslateRequestFields(t *testing.T) {
	a := New(Options{})
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	for _, c := range []struct {
		name, body, field, want string
	}{
		{"default max_tokens", `{` + msgs + `}`, "max_tokens", `4096`},
		{"max_tokens", `{` + msgs + `,"max_tokens":10}`, "max_tokens", `10`},
		{"max_completion_tokens wins", `{` + msgs + `,"max_tokens":10,"max_completion_tokens":20}`, "max_tokens", `20`},
		{"stop string", `{` + msgs + `,"stop":"END"}`, "stop_sequences", `["END"]`},
		{"temperature kept", `{` + msgs + `,"temperature":0.3}`, "temperature", `0.3`},
		{"temperature clamped", `{` + msgs + `,"temperature":2}`, "temperature", `1`},
		{"tool_choice auto", `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto"}`, "tool_choice", `{"type":"auto"}`},
		{"tool_choice none", `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}`, "tool_choice", `{"type":"none"}`},
		{"tool_choice function", `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}}}`, "tool_choice", `{"name":"f","type":"tool"}`},
		{"parallel off alone", `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false}`, "tool_choice", `{"disable_parallel_tool_use":true,"type":"auto"}`},
		{"json_object", `{` + msgs + `,"response_format":{"type":"json_object"}}`, "system", jsonOf(jsonInstruction)},
		{"json_schema not strict", `{` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}`, "system", jsonOf(schemaInstruction + `{"type":"object"}`)},
		{"text format", `{` + msgs + `,"response_format":{"type":"text"}}`, "system", `null`},
		{"stream", `{` + msgs + `,"stream":true}`, "stream", `true`},
		{"no stream", `{` + msgs + `}`, "stream", `null`},
		{"empty user dropped", `{"messages":[{"role":"user","content":""},{"role":"user","content":"x"}]}`, "messages", `[{"content":[{"text":"x","type":"text"}],"role":"user"}]`},
		{"model", `{` + msgs + `}`, "model", `"m"`},
		{"tool_choice without tools", `{` + msgs + `,"tool_choice":"required"}`, "tool_choice", `null`},
	} {
		got := jsonOf(translated(t, a, c.body)[c.field])
		if got != c.want {
			t.Errorf("%s: %s = %s, want %s", c.name, c.field, got, c.want)
		}
	}
}

func TestTranslateRequestErrors(t *testing.T) {
	a := New(Options{})
	for _, c := range []struct{ name, body string }{
		{"malformed", `{"messages":`},
		{"n>1", `{"n":2,"messages":[]}`},
		{"role", `{"messages":[{"role":"function","content":"x"}]}`},
		{"image scheme", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}`},
		{"image data not base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`},
		{"image without url", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`},
		{"audio", `{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`},
		{"tool args", `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`},
		{"tool args invalid", `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{"}}]}]}`},
		{"custom tool", `{"messages":[],"tools":[{"type":"custom","function":{"name":"f"}}]}`},
	} {
		_, err := a.translateRequest(chatEx([]byte(c.body)), "m")
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != apierr.CodeInvalidRequest {
			t.Errorf("%s: got %v, want a 400 invalid_request_error", c.name, err)
		}
	}
}

func TestNativeBody(t *testing.T) {
	for _, c := range []struct {
		name, in, model string
		vertex          bool
		want            string
	}{
		{"same model", ` {"model" : "claude-sonnet-4-20250514", "max_tokens":1} `, "claude-sonnet-4-20250514", false, ` {"model" : "claude-sonnet-4-20250514", "max_tokens":1} `},
		{"rename", "{\n  \"max_tokens\": 1,\n  \"model\" : \"alias\",\n  \"x\":[1, 2]\n}", "claude-x", false, "{\n  \"max_tokens\": 1,\n  \"model\" : \"claude-x\",\n  \"x\":[1, 2]\n}"},
		{"escaped key", `{"mod\u0065l":"alias","a":1}`, `c"q`, false, `{"mod\u0065l":"c\"q","a":1}`},
		{"no model", `{"a":1}`, "c", false, `{"model":"c","a":1}`},
		{"vertex first", `{"model":"alias", "max_tokens":1}`, "c", true, `{"anthropic_version":"vertex-2023-10-16","max_tokens":1}`},
		{"vertex middle", `{"a":1, "model":"alias", "b":2}`, "c", true, `{"anthropic_version":"vertex-2023-10-16","a":1, "b":2}`},
		{"vertex last", `{"a":1, "model":"alias" }`, "c", true, `{"anthropic_version":"vertex-2023-10-16","a":1 }`},
		{"vertex only", `{ "model":"alias" }`, "c", true, `{"anthropic_version":"vertex-2023-10-16"  }`},
		{"vertex version present", `{"anthropic_version":"x","model":"alias"}`, "c", true, `{"anthropic_version":"vertex-2023-10-16"}`},
		{"vertex version after", `{"model":"alias","anthropic_version":"x"}`, "c", true, `{"anthropic_version":"vertex-2023-10-16"}`},
	} {
		a := New(Options{})
		if c.vertex {
			a = New(Options{Vertex: &VertexOptions{Project: "p", Location: "l"}})
		}
		ex := messagesEx(c.in)
		got, err := a.nativeBody(ex, c.model)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: got %s (%v), want %s", c.name, got, err, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("%s: invalid JSON %s", c.name, got)
		}
	}
}

func TestNativeBodyUsesIngressSpans(t *testing.T) {
	body := `{"model":"alias","max_tokens":1}`
	ex := messagesEx(body)
	ex.BodyMutated, ex.Model = false, "alias"
	ex.Spans.Model = exchange.Span{Start: 9, End: 16}
	got, err := New(Options{}).nativeBody(ex, "claude-x")
	if err != nil || string(got) != `{"model":"claude-x","max_tokens":1}` {
		t.Fatalf("got %s (%v)", got, err)
	}
	if got, _ := New(Options{}).nativeBody(ex, "alias"); &got[0] != &ex.Body[0] {
		t.Error("an unchanged model must send the client's bytes themselves")
	}
}

func TestNewRequest(t *testing.T) {
	ctx := context.Background()
	vertex := New(Options{Vertex: &VertexOptions{Project: "my-proj", Location: "us-east5"}})
	plain := New(Options{Version: "2024-01-01"})
	hdr := http.Header{
		"Authorization": {"Bearer client"}, "X-Api-Key": {"client"}, "Anthropic-Beta": {"prompt-caching-2024-07-31"},
		"Cookie": {"a=b"}, "Anthropic-Version": {"2023-06-01"},
	}
	for _, c := range []struct {
		name     string
		a        *Adapter
		ex       *exchange.Exchange
		base     string
		url      string
		version  string
		accept   string
		wantBody string // a substring
	}{
		{"messages", plain, messagesEx(`{"model":"claude-sonnet-4-20250514"}`), "https://api.anthropic.com", "https://api.anthropic.com/v1/messages", "2023-06-01", "", `{"model":"claude-sonnet-4-20250514"}`},
		{"count tokens", plain, &exchange.Exchange{Ingress: apierr.Anthropic, Endpoint: exchange.EndpointCountTokens, Body: []byte(`{"model":"x"}`), BodyMutated: true}, "https://gw.example/anthropic/", "https://gw.example/anthropic/v1/messages/count_tokens", "2024-01-01", "", `{"model":"claude-sonnet-4-20250514"}`},
		{"chat", plain, chatEx([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":true}`)), "https://api.anthropic.com", "https://api.anthropic.com/v1/messages", "2024-01-01", "text/event-stream", `"stream":true`},
		{"vertex", vertex, messagesEx(`{"model":"x","max_tokens":5}`), "https://us-east5-aiplatform.googleapis.com", "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-20250514:rawPredict", "", "", `{"anthropic_version":"vertex-2023-10-16","max_tokens":5}`},
		{"vertex chat stream", vertex, chatEx([]byte(`{"model":"gpt-4o","messages":[],"stream":true}`)), "https://aiplatform.googleapis.com", "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-20250514:streamRawPredict", "", "text/event-stream", `"anthropic_version":"vertex-2023-10-16"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.ex.Header == nil {
				c.ex.Header = http.Header{}
			}
			for k, v := range hdr {
				if k != "Anthropic-Version" || c.ex.Ingress == apierr.Anthropic && c.ex.Endpoint == exchange.EndpointMessages {
					c.ex.Header[k] = v
				}
			}
			c.ex.Stream = strings.Contains(string(c.ex.Body), `"stream":true`)
			req, err := c.a.NewRequest(ctx, c.ex, base(t, c.base))
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodPost || req.URL.String() != c.url {
				t.Errorf("%s %s, want POST %s", req.Method, req.URL, c.url)
			}
			if got := req.Header.Get("Anthropic-Version"); got != c.version {
				t.Errorf("anthropic-version %q, want %q", got, c.version)
			}
			if got := req.Header.Get("Accept"); got != c.accept {
				t.Errorf("accept %q, want %q", got, c.accept)
			}
			if req.Header.Get("Content-Type") != "application/json" {
				t.Error("no JSON content type")
			}
			for _, h := range []string{"Authorization", "X-Api-Key", "Cookie"} {
				if req.Header.Get(h) != "" {
					t.Errorf("%s forwarded", h)
				}
			}
			if req.Header.Get("Anthropic-Beta") != "prompt-caching-2024-07-31" {
				t.Error("anthropic-beta not forwarded")
			}
			b, _ := io.ReadAll(req.Body)
			if !strings.Contains(string(b), c.wantBody) {
				t.Errorf("body %s lacks %s", b, c.wantBody)
			}
			if c.a.vertex && strings.Contains(string(b), `"model"`) {
				t.Errorf("vertex body has a model: %s", b)
			}
		})
	}
}

func TestNewRequestRejects(t *testing.T) {
	ctx := context.Background()
	vertex := New(Options{Vertex: &VertexOptions{Project: "p", Location: "l"}})
	check := func(name string, err error) {
		t.Helper()
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			t.Errorf("%s: got %v, want a 400 *apierr.Error", name, err)
		}
	}
	for _, ep := range []exchange.Endpoint{exchange.EndpointCompletions, exchange.EndpointEmbeddings, exchange.EndpointModels} {
		ex := chatEx([]byte(`{"model":"m","prompt":"x"}`))
		ex.Endpoint = ep
		_, err := New(Options{}).NewRequest(ctx, ex, base(t, "https://api.anthropic.com"))
		check(ep.String(), err)
	}
	ex := messagesEx(`{"model":"m"}`)
	ex.Endpoint = exchange.EndpointCountTokens
	_, err := vertex.NewRequest(ctx, ex, base(t, "https://aiplatform.googleapis.com"))
	check("vertex count_tokens", err)

	for _, m := range []string{"", "a/b", "../x", "a..b", "x?alt=1", "x#f", "x%2F", "x y", "x\ty", "x\n", "x\x00", "x\x7f", "x:rawPredict", `x\y`, "é", "."} {
		tg := base(t, "https://aiplatform.googleapis.com")
		tg.Model = m
		_, err := vertex.NewRequest(ctx, messagesEx(`{"model":"a"}`), tg)
		check("model "+m, err)
		_, err = vertex.NewRequest(ctx, chatEx([]byte(`{"model":"a","messages":[]}`)), tg)
		check("chat model "+m, err)
	}
	for _, m := range []string{"claude-sonnet-4@20250514", "claude-3-5-haiku@20241022", "claude-opus-4-1", "a.b_c"} {
		tg := base(t, "https://aiplatform.googleapis.com")
		tg.Model = m
		if _, err := vertex.NewRequest(ctx, messagesEx(`{"model":"a"}`), tg); err != nil {
			t.Errorf("model %s rejected: %v", m, err)
		}
	}
}
