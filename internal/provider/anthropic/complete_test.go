package anthropic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/sluice-gateway/sluice/internal/golden"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

var createdIndented = regexp.MustCompile(`"created": \d+`)

func TestCompleteChatGolden(t *testing.T) {
	for _, c := range []struct {
		in, out string
		usage   exchange.Usage
		output  string
	}{
		{"msg_text.json", "msg_text.chat.golden.json", exchange.Usage{InputTokens: 2112, OutputTokens: 7, TotalTokens: 2119, CachedInputTokens: 2000, CacheCreationTokens: 100, Reported: true}, `Hello! \"Quoted\" caf\u00e9\nSecond block.`},
		{"msg_tool.json", "msg_tool.chat.golden.json", exchange.Usage{InputTokens: 412, OutputTokens: 93, TotalTokens: 505, Reported: true}, `I'll check the weather.`},
	} {
		t.Run(c.in, func(t *testing.T) {
			ex := chatEx(nil)
			ans, err := New(Options{}).Complete(ex, http.StatusOK, http.Header{}, fixture(t, c.in))
			if err != nil || ans.Status != http.StatusOK {
				t.Fatalf("%d %v", ans.Status, err)
			}
			var r chat.Response
			if err := json.Unmarshal(ans.Body, &r); err != nil || r.Created == 0 {
				t.Fatalf("not a chat completion (%v): %s", err, ans.Body)
			}
			golden.Compare(t, c.out, createdIndented.ReplaceAll(golden.JSON(t, ans.Body), []byte(`"created": 0`)))
			if ex.Usage != c.usage {
				t.Errorf("usage %+v, want %+v", ex.Usage, c.usage)
			}
			if string(ex.Output) != c.output {
				t.Errorf("output %q, want %q", ex.Output, c.output)
			}
		})
	}
}

func TestStopReasons(t *testing.T) {
	for stop, want := range map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
		"refusal": "content_filter", "pause_turn": "stop", "model_context_window_exceeded": "length", "": "stop",
	} {
		body := `{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":` + jsonOf(stop) + `,"usage":{"input_tokens":1,"output_tokens":0}}`
		if stop == "" {
			body = `{"id":"msg_1","content":[],"stop_reason":null}`
		}
		ans, err := New(Options{}).Complete(chatEx(nil), 200, nil, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		var r chat.Response
		json.Unmarshal(ans.Body, &r)
		if r.Choices[0].FinishReason != want {
			t.Errorf("%q: finish_reason %q, want %q", stop, r.Choices[0].FinishReason, want)
		}
		// and back, for Anthropic clients of OpenAI backends
		if back := stopReason(want); stop != "" && stop != "stop_sequence" && stop != "pause_turn" && stop != "model_context_window_exceeded" && back != stop {
			t.Errorf("%q: round trip gives %q", stop, back)
		}
	}
}

func TestCompleteNative(t *testing.T) {
	body := fixture(t, "msg_text.json")
	ex := messagesEx("{}")
	ans, err := New(Options{}).Complete(ex, http.StatusOK, http.Header{}, body)
	if err != nil || ans.Status != 200 || &ans.Body[0] != &body[0] || len(ans.Body) != len(body) {
		t.Fatalf("the answer must pass through unchanged: %d %v", ans.Status, err)
	}
	want := exchange.Usage{InputTokens: 2112, OutputTokens: 7, TotalTokens: 2119, CachedInputTokens: 2000, CacheCreationTokens: 100, Reported: true}
	if ex.Usage != want {
		t.Errorf("usage %+v, want %+v", ex.Usage, want)
	}
	if string(ex.Output) != `Hello! \"Quoted\" caf\u00e9\nSecond block.` {
		t.Errorf("output %q", ex.Output)
	}

	ex = messagesEx("{}")
	ex.Endpoint = exchange.EndpointCountTokens
	ans, _ = New(Options{}).Complete(ex, 200, nil, []byte(`{"input_tokens":2095}`))
	if string(ans.Body) != `{"input_tokens":2095}` || ex.Usage != (exchange.Usage{Reported: true}) {
		t.Errorf("count_tokens: %s %+v", ans.Body, ex.Usage)
	}
}

func TestCompleteUnreadable(t *testing.T) {
	if _, err := New(Options{}).Complete(chatEx(nil), 200, nil, []byte(`<html>`)); err == nil {
		t.Error("an unreadable 2xx answer must be an error")
	}
}

func TestCompleteErrors(t *testing.T) {
	anthropicErr := func(kind, msg string) []byte {
		return []byte(`{"type":"error","error":{"type":"` + kind + `","message":"` + msg + `"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`)
	}
	for _, c := range []struct {
		name       string
		status     int
		header     http.Header
		body       []byte
		wantStatus int
		wantCode   string
		wantType   string // Anthropic's error type, for the Anthropic wire
		retryAfter string
		message    string
	}{
		{"401", 401, nil, anthropicErr("authentication_error", "invalid x-api-key"), 502, apierr.CodeUpstreamAuthFailed, "api_error", "", "The gateway's credentials were refused by the upstream provider."},
		{"403", 403, nil, anthropicErr("permission_error", "no"), 502, apierr.CodeUpstreamAuthFailed, "api_error", "", ""},
		{"429", 429, http.Header{"Retry-After": {"17"}}, anthropicErr("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), 429, apierr.CodeRateLimitExceeded, "rate_limit_error", "17", "Number of request tokens has exceeded your per-minute rate limit"},
		{"too long", 400, nil, anthropicErr("invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"), 400, apierr.CodeContextLengthExceeded, "invalid_request_error", "", "prompt is too long: 208310 tokens > 200000 maximum"},
		{"invalid", 400, nil, anthropicErr("invalid_request_error", "max_tokens: Field required"), 400, apierr.CodeInvalidRequest, "invalid_request_error", "", "max_tokens: Field required"},
		{"404", 404, nil, anthropicErr("not_found_error", "model: claude-x"), 404, apierr.CodeModelNotFound, "not_found_error", "", "model: claude-x"},
		{"413", 413, nil, anthropicErr("request_too_large", "Request exceeds the maximum allowed number of bytes."), 413, apierr.CodeRequestTooLarge, "request_too_large", "", ""},
		{"500", 500, nil, anthropicErr("api_error", "Internal server error"), 500, apierr.CodeUpstreamError, "api_error", "", ""},
		{"529", 529, nil, anthropicErr("overloaded_error", "Overloaded"), 503, apierr.CodeUpstreamError, "overloaded_error", "", "Overloaded"},
		{"vertex 429", 429, nil, []byte(`{"error":{"code":429,"message":"Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model","status":"RESOURCE_EXHAUSTED"}}`), 429, apierr.CodeRateLimitExceeded, "rate_limit_error", "", "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base_model"},
		{"not JSON", 502, nil, []byte(`<html>bad gateway</html>`), 502, apierr.CodeUpstreamError, "api_error", "", "Bad Gateway"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, wire := range []apierr.Wire{apierr.OpenAI, apierr.Anthropic} {
				ex := chatEx(nil)
				if wire == apierr.Anthropic {
					ex = messagesEx("{}")
				}
				ans, err := New(Options{}).Complete(ex, c.status, c.header, c.body)
				if err != nil {
					t.Fatal(err)
				}
				if ans.Status != c.wantStatus {
					t.Errorf("status %d, want %d", ans.Status, c.wantStatus)
				}
				if got := ans.Header.Get("Retry-After"); got != c.retryAfter {
					t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
				}
				var oe struct {
					Type  string `json:"type"`
					Error struct {
						Type, Code, Message string
					} `json:"error"`
				}
				if err := json.Unmarshal(ans.Body, &oe); err != nil {
					t.Fatalf("%v: %s", err, ans.Body)
				}
				if oe.Error.Code != c.wantCode || c.message != "" && oe.Error.Message != c.message {
					t.Errorf("%s", ans.Body)
				}
				if wire == apierr.Anthropic && (oe.Type != "error" || oe.Error.Type != c.wantType) {
					t.Errorf("anthropic wire: %s", ans.Body)
				}
				if wire == apierr.OpenAI && (oe.Type != "" || bytes.Contains(ans.Body, []byte(`"type":"error"`))) {
					t.Errorf("openai wire: %s", ans.Body)
				}
			}
		})
	}
}
