package bedrock

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/golden"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

func chatExchange(body string, stream bool) *exchange.Exchange {
	return &exchange.Exchange{Endpoint: exchange.EndpointChat, Ingress: apierr.OpenAI, Body: []byte(body), Stream: stream, Model: "claude", UpstreamModel: "anthropic.claude-3-5-sonnet-20240620-v1:0"}
}

func target(t testing.TB, base, model string) provider.Target {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return provider.Target{BaseURL: u, Model: model}
}

func requestBody(t *testing.T, req *http.Request) []byte {
	t.Helper()
	b, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTranslateGolden translates each testdata/request/*.json and compares the Converse body
// with its .golden.json.
func TestTranslateGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/request/*.json")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		n++
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ex := chatExchange(string(in), false)
			req, err := New().NewRequest(context.Background(), ex, target(t, "https://bedrock-runtime.us-east-1.amazonaws.com", ex.UpstreamModel))
			if err != nil {
				t.Fatal(err)
			}
			golden.Compare(t, "request/"+name+".golden.json", golden.JSON(t, requestBody(t, req)))
		})
	}
	if n < 10 {
		t.Fatalf("only %d request fixtures", n)
	}
}

func TestTranslateErrors(t *testing.T) {
	for _, c := range []struct {
		name, body, param, msg string
	}{
		{"image link", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`, "messages[0].content[0].image_url", "not links"},
		{"bad data url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0].image_url", "base64 data: URL"},
		{"image format", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}`, "messages[0].content[0].image_url", "PNG, JPEG"},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "messages[0].content[0]", "input_audio"},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"user","content":"x"}]}`, "messages[0].content[0]", "not supported"},
		{"role", `{"messages":[{"role":"function","content":"x"}]}`, "messages[0].role", "function"},
		{"assistant first", `{"messages":[{"role":"assistant","content":"x"},{"role":"user","content":"y"}]}`, "messages", "start with a user"},
		{"no messages", `{"messages":[{"role":"system","content":"x"}]}`, "messages", "at least one"},
		{"arguments", `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"{oops"}}]}]}`, "messages[1].tool_calls[0].function.arguments", "JSON"},
		{"json with tools", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}}`, "response_format", "tools"},
		{"format type", `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}`, "response_format.type", "json_schema"},
		{"schema missing", `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema"}}`, "response_format.json_schema", "json_schema"},
		{"tool type", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"web_search"}]}`, "tools[0].type", "function"},
		{"tool choice word", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`, "tool_choice", "tool_choice"},
		{"tool choice object", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"allowed_tools"}}`, "tool_choice", "tool_choice"},
		{"n", `{"messages":[{"role":"user","content":"x"}],"n":2}`, "n", "n > 1"},
		{"schema", `{"messages":"x"}`, "", "chat completions schema"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := chatExchange(c.body, false)
			_, err := New().NewRequest(context.Background(), ex, target(t, "https://bedrock.example", "m"))
			var ae *apierr.Error
			if !errors.As(err, &ae) {
				t.Fatalf("got %v, want *apierr.Error", err)
			}
			if ae.Status != 400 || ae.Code != apierr.CodeInvalidRequest || ae.Param != c.param || !strings.Contains(ae.Message, c.msg) {
				t.Errorf("got %d %s param %q %q", ae.Status, ae.Code, ae.Param, ae.Message)
			}
		})
	}
}

func TestNewRequestEndpoints(t *testing.T) {
	for _, ep := range []exchange.Endpoint{exchange.EndpointCompletions, exchange.EndpointEmbeddings, exchange.EndpointMessages, exchange.EndpointModels} {
		ex := chatExchange(`{"messages":[{"role":"user","content":"x"}]}`, false)
		ex.Endpoint = ep
		_, err := New().NewRequest(context.Background(), ex, target(t, "https://bedrock.example", "m"))
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "not supported by Bedrock") {
			t.Errorf("%s: got %v", ep, err)
		}
	}
}

func TestModelIDs(t *testing.T) {
	for _, c := range []struct {
		model, path string // path empty: refused
	}{
		{"anthropic.claude-3-5-sonnet-20240620-v1:0", "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"},
		{"us.anthropic.claude-3-7-sonnet-20250219-v1:0", "/model/us.anthropic.claude-3-7-sonnet-20250219-v1:0/converse"},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
			"/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.anthropic.claude-3-5-sonnet-20240620-v1:0/converse"},
		{"arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:provisioned-model/abc123", "/model/arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:provisioned-model%2Fabc123/converse"},
		{"", ""},
		{"a/b", ""},
		{"../converse", ""},
		{"a..b", ""},
		{"a?b", ""},
		{"a#b", ""},
		{"a b", ""},
		{"a\tb", ""},
		{"a\x00b", ""},
		{"a\u0085b", ""},
		{"a%2Fb", ""},
		{"\xff", ""},
		{"arn:aws:bedrock:us-east-1:1:x/../../y", ""},
		{"arn:aws:s3:::bucket/key", ""},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/a b", ""},
	} {
		ex := chatExchange(`{"messages":[{"role":"user","content":"x"}]}`, false)
		ex.Model = ""
		req, err := New().NewRequest(context.Background(), ex, target(t, "https://bedrock-runtime.us-east-1.amazonaws.com", c.model))
		if c.path == "" {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status != 400 || ae.Param != "model" {
				t.Errorf("%q: got %v, want 400 on model", c.model, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.model, err)
			continue
		}
		if got := req.URL.EscapedPath(); got != c.path {
			t.Errorf("%q: path %s, want %s", c.model, got, c.path)
		}
		if got := req.URL.String(); got != "https://bedrock-runtime.us-east-1.amazonaws.com"+c.path {
			t.Errorf("%q: URL %s", c.model, got)
		}
	}
}

func TestModelFallback(t *testing.T) {
	// Without an upstream model the client's model name goes upstream.
	ex := chatExchange(`{"messages":[{"role":"user","content":"x"}]}`, false)
	ex.Model = "meta.llama3-70b-instruct-v1:0"
	req, err := New().NewRequest(context.Background(), ex, target(t, "https://bedrock.example", ""))
	if err != nil || req.URL.EscapedPath() != "/model/meta.llama3-70b-instruct-v1:0/converse" {
		t.Errorf("got %v %v", req, err)
	}
}

func TestNewRequestURLAndHeaders(t *testing.T) {
	ex := chatExchange(`{"messages":[{"role":"user","content":"x"}],"stream":true}`, true)
	ex.Header = http.Header{
		"Authorization":        {"Bearer client-key"},
		"X-Amz-Security-Token": {"client-token"},
		"X-Amz-Date":           {"20200101T000000Z"},
		"X-Custom":             {"kept"},
		"Content-Type":         {"text/plain"},
		"Accept":               {"*/*"},
	}
	req, err := New().NewRequest(context.Background(), ex, target(t, "https://proxy.example/base%20path/?q=1", "anthropic.claude-v2:1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := req.URL.String(), "https://proxy.example/base%20path/model/anthropic.claude-v2:1/converse-stream?q=1"; got != want {
		t.Errorf("URL %s, want %s", got, want)
	}
	if req.Method != http.MethodPost || req.GetBody == nil || req.ContentLength <= 0 {
		t.Errorf("method %s, GetBody %v, length %d", req.Method, req.GetBody != nil, req.ContentLength)
	}
	want := http.Header{
		"X-Custom":     {"kept"},
		"Content-Type": {"application/json"},
		"Accept":       {"application/vnd.amazon.eventstream"},
	}
	if len(req.Header) != len(want) {
		t.Errorf("headers %v, want %v", req.Header, want)
	}
	for k, v := range want {
		if req.Header.Get(k) != v[0] {
			t.Errorf("%s: %q, want %q", k, req.Header.Get(k), v[0])
		}
	}
	// The body can be read again for signing and retries.
	rc, _ := req.GetBody()
	b1, _ := io.ReadAll(rc)
	if b2 := requestBody(t, req); !bytes.Equal(b1, b2) || len(b1) == 0 {
		t.Errorf("GetBody %q, Body %q", b1, b2)
	}
}
