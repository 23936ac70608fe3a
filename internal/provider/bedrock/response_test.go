package bedrock

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/golden"
	"github.com/sluice-gateway/sluice/internal/jsonscan"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
)

var createdRE = regexp.MustCompile(`"created":\d+`)

// normalize replaces the creation time, the only varying part of an answer.
func normalize(b []byte) []byte { return createdRE.ReplaceAll(b, []byte(`"created":0`)) }

const plainRequest = `{"model":"claude","messages":[{"role":"user","content":"hi"}]}`

func TestCompleteGolden(t *testing.T) {
	jsonSchemaRequest, err := os.ReadFile("testdata/request/json_schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, request string
		finish        string
		output        string
		usage         exchange.Usage
	}{
		{"text", plainRequest, "stop", `Hello \"world\" <b>&\nSecond block. ☃`, exchange.Usage{InputTokens: 12, OutputTokens: 5, TotalTokens: 17, Reported: true}},
		{"tool_use", plainRequest, "tool_calls", "Checking the weather.", exchange.Usage{InputTokens: 125, OutputTokens: 30, TotalTokens: 155, CachedInputTokens: 100, CacheCreationTokens: 20, Reported: true}},
		{"tool_only", plainRequest, "tool_calls", "", exchange.Usage{InputTokens: 40, OutputTokens: 9, TotalTokens: 49, Reported: true}},
		{"max_tokens", plainRequest, "length", "One, two", exchange.Usage{InputTokens: 8, OutputTokens: 2, TotalTokens: 10, Reported: true}},
		{"guardrail", plainRequest, "content_filter", "Sorry, the model cannot answer this question.", exchange.Usage{InputTokens: 8, TotalTokens: 8, Reported: true}},
		{"content_filtered", plainRequest, "content_filter", "", exchange.Usage{InputTokens: 8, TotalTokens: 8, Reported: true}},
		{"reasoning", plainRequest, "stop", "42", exchange.Usage{InputTokens: 3, OutputTokens: 4, TotalTokens: 7, Reported: true}},
		{"forced_json", string(jsonSchemaRequest), "stop", `{\"city\":\"Oslo\",\"celsius\":-3}`, exchange.Usage{InputTokens: 50, OutputTokens: 20, TotalTokens: 70, Reported: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, err := os.ReadFile("testdata/response/" + c.name + ".json")
			if err != nil {
				t.Fatal(err)
			}
			ex := chatExchange(c.request, false)
			h := http.Header{"X-Amzn-Requestid": {"3b3b1e2a-5f7c-4d4e-9a7e-1c2d3e4f5a6b"}, "Content-Type": {"application/json"}}
			ans, err := New().Complete(ex, 200, h, body)
			if err != nil {
				t.Fatal(err)
			}
			if ans.Status != 200 {
				t.Errorf("status %d", ans.Status)
			}
			var resp struct {
				Choices []struct {
					FinishReason string `json:"finish_reason"`
				} `json:"choices"`
			}
			if err := json.Unmarshal(ans.Body, &resp); err != nil || len(resp.Choices) != 1 {
				t.Fatalf("answer %s: %v", ans.Body, err)
			}
			if resp.Choices[0].FinishReason != c.finish {
				t.Errorf("finish_reason %q, want %q", resp.Choices[0].FinishReason, c.finish)
			}
			if string(ex.Output) != c.output {
				t.Errorf("output %q, want %q", ex.Output, c.output)
			}
			if ex.Usage != c.usage {
				t.Errorf("usage %+v, want %+v", ex.Usage, c.usage)
			}
			golden.Compare(t, "response/"+c.name+".golden.json", golden.JSON(t, normalize(ans.Body)))
		})
	}
}

func TestCompleteID(t *testing.T) {
	ex := chatExchange(plainRequest, false)
	body := []byte(`{"output":{"message":{"role":"assistant","content":[{"text":"x"}]}},"stopReason":"end_turn"}`)
	a1, _ := New().Complete(ex, 200, http.Header{}, body)
	a2, _ := New().Complete(ex, 200, http.Header{}, body)
	var r1, r2 struct {
		ID    string          `json:"id"`
		Model string          `json:"model"`
		Usage json.RawMessage `json:"usage"`
	}
	json.Unmarshal(a1.Body, &r1)
	json.Unmarshal(a2.Body, &r2)
	if !strings.HasPrefix(r1.ID, "chatcmpl-") || len(r1.ID) < 20 || r1.ID == r2.ID {
		t.Errorf("ids %q %q", r1.ID, r2.ID)
	}
	if r1.Model != ex.UpstreamModel || r1.Usage != nil {
		t.Errorf("model %q usage %s", r1.Model, r1.Usage)
	}
	if ex.Usage.Reported {
		t.Errorf("usage reported without upstream usage: %+v", ex.Usage)
	}
}

func TestCompleteMalformed(t *testing.T) {
	for _, body := range []string{``, `{`, `[]`, `{"output":{"message":{"content":"x"}}}`} {
		if _, err := New().Complete(chatExchange(plainRequest, false), 200, http.Header{}, []byte(body)); err == nil {
			t.Errorf("%q: no error", body)
		}
	}
}

func TestFinishReason(t *testing.T) {
	for stop, want := range map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "model_context_window_exceeded": "length",
		"tool_use": "tool_calls", "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
		"malformed_model_output": "stop", "": "stop",
	} {
		if got := finishReason(stop, false); got != want {
			t.Errorf("%q: %q, want %q", stop, got, want)
		}
	}
	if got := finishReason("tool_use", true); got != "stop" {
		t.Errorf("forced JSON tool_use: %q", got)
	}
}

func TestCompleteErrors(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantStatus int
		code, typ  string
		msg        string
	}{
		{"access denied", 403, http.Header{"X-Amzn-Errortype": {"AccessDeniedException:http://internal.amazon.com/coral/com.amazon.bedrock/"}},
			`{"message":"You don't have access to the model with the specified model ID."}`, 502, apierr.CodeUpstreamAuthFailed, "api_error", "credentials were refused"},
		{"bad signature", 403, nil, `{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"The request signature we calculated does not match"}`,
			502, apierr.CodeUpstreamAuthFailed, "api_error", "credentials were refused"},
		{"expired token as 400", 400, http.Header{"X-Amzn-Errortype": {"ExpiredTokenException"}}, `{"message":"The security token included in the request is expired"}`,
			502, apierr.CodeUpstreamAuthFailed, "api_error", "credentials were refused"},
		{"throttling", 429, http.Header{"X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}, "Retry-After": {"7"}},
			`{"message":"Too many requests, please wait before trying again."}`, 429, apierr.CodeRateLimitExceeded, "rate_limit_error", "Too many requests"},
		{"throttling as 400", 400, http.Header{"X-Amzn-Errortype": {"ThrottlingException"}}, `{"message":"Too many tokens, please wait before trying again."}`,
			429, apierr.CodeRateLimitExceeded, "rate_limit_error", "Too many tokens"},
		{"quota", 400, nil, `{"__type":"ServiceQuotaExceededException","Message":"Your request exceeds the service quota for your account."}`,
			429, apierr.CodeRateLimitExceeded, "rate_limit_error", "service quota"},
		{"input too long", 400, http.Header{"X-Amzn-Errortype": {"ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"}},
			`{"message":"Input is too long for requested model."}`, 400, apierr.CodeContextLengthExceeded, "invalid_request_error", "Input is too long"},
		{"prompt too long", 400, http.Header{"X-Amzn-Errortype": {"ValidationException"}},
			`{"message":"The model returned the following errors: prompt is too long: 212345 tokens > 200000 maximum"}`, 400, apierr.CodeContextLengthExceeded, "invalid_request_error", "prompt is too long"},
		{"too many input tokens", 400, http.Header{"X-Amzn-Errortype": {"ValidationException"}},
			`{"message":"Too many input tokens. Max input tokens: 8192, request input token count: 9000"}`, 400, apierr.CodeContextLengthExceeded, "invalid_request_error", "Too many input tokens"},
		{"validation", 400, http.Header{"X-Amzn-Errortype": {"ValidationException"}},
			`{"message":"A conversation must alternate between user and assistant roles."}`, 400, apierr.CodeInvalidRequest, "invalid_request_error", "alternate"},
		{"not found", 404, http.Header{"X-Amzn-Errortype": {"ResourceNotFoundException"}}, `{"message":"Model not found."}`,
			404, apierr.CodeModelNotFound, "invalid_request_error", "Model not found."},
		{"model timeout", 408, http.Header{"X-Amzn-Errortype": {"ModelTimeoutException"}}, `{"message":"Model has timed out in processing the request."}`,
			504, apierr.CodeUpstreamTimeout, "api_error", "timed out"},
		{"model error", 424, http.Header{"X-Amzn-Errortype": {"ModelErrorException"}}, `{"message":"The model failed."}`,
			502, apierr.CodeUpstreamError, "api_error", "The model failed."},
		{"model not ready", 429, http.Header{"X-Amzn-Errortype": {"ModelNotReadyException"}}, `{"message":"Model is not ready."}`,
			429, apierr.CodeRateLimitExceeded, "rate_limit_error", "not ready"},
		{"unavailable", 503, http.Header{"X-Amzn-Errortype": {"ServiceUnavailableException"}}, `{"message":"Service unavailable."}`,
			503, apierr.CodeUpstreamError, "api_error", "Service unavailable."},
		{"internal", 500, nil, `{"Message":"Internal error"}`, 500, apierr.CodeUpstreamError, "api_error", "Internal error"},
		{"html", 502, nil, `<html>bad gateway</html>`, 502, apierr.CodeUpstreamError, "api_error", "Bad Gateway"},
		{"redirect", 302, nil, ``, 502, apierr.CodeUpstreamError, "api_error", "Bad Gateway"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := c.header
			if h == nil {
				h = http.Header{}
			}
			ex := chatExchange(plainRequest, false)
			ans, err := New().Complete(ex, c.status, h, []byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Code    string  `json:"code"`
					Param   *string `json:"param"`
				} `json:"error"`
			}
			if err := json.Unmarshal(ans.Body, &e); err != nil {
				t.Fatalf("body %s: %v", ans.Body, err)
			}
			if ans.Status != c.wantStatus || e.Error.Code != c.code || e.Error.Type != c.typ || !strings.Contains(e.Error.Message, c.msg) {
				t.Errorf("got %d %s %+v", ans.Status, ans.Body, e.Error)
			}
			if c.name == "throttling" && ans.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After lost: %v", ans.Header)
			}
			if len(ex.Output) != 0 || ex.Usage.Reported {
				t.Errorf("error recorded output %q usage %+v", ex.Output, ex.Usage)
			}
		})
	}
}

func TestAppendEscaped(t *testing.T) {
	for _, s := range []string{"", "plain", "quote \" back \\ nl \n tab \t cr \r", "ctl \x00\x01\x1f\x7f", "utf8 ☃ é 𝄞", "bad \xff\xfe utf8", "sep \u2028\u2029", "<html>&"} {
		got := `"` + string(jsonscan.AppendEscaped(nil, []byte(s))) + `"`
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("%q: %s is not JSON: %v", s, got, err)
			continue
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: round trip %q, want %q", s, back, wantBack)
		}
	}
}
