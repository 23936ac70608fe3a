package fakeanthropic_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/sluice-gateway/sluice/internal/gatewaytest/fakeanthropic"
)

func client(url, key string) anthropic.Client {
	return anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(url), option.WithAPIKey(key), option.WithMaxRetries(0))
}

var weatherTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{
	Name:        "get_weather",
	Description: anthropic.String("Current weather for a location"),
	InputSchema: anthropic.ToolInputSchemaParam{
		Properties: map[string]any{
			"location": map[string]any{"type": "string"},
			"unit":     map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}},
		},
		Required: []string{"location"},
	},
}}

// TestFakeWithSDK: Anthropic's own SDK talks to the fake as to the real API.
func TestFakeWithSDK(t *testing.T) {
	f := fakeanthropic.Start(t, fakeanthropic.Options{APIKey: "sk-ant-test"})
	c := client(f.URL, "sk-ant-test")
	ctx := t.Context()
	p := anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 100,
		System:    []anthropic.TextBlockParam{{Text: "Be brief."}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello there, fake!"))},
	}
	msg, err := c.Messages.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	want := fakeanthropic.AnswerText("Hello there, fake!")
	if len(msg.Content) != 1 || msg.Content[0].Text != want || msg.StopReason != "end_turn" {
		t.Fatalf("message %s", msg.RawJSON())
	}
	// Be brief. + Hello there, fake! = 5 words
	if msg.Usage.InputTokens != 5 || msg.Usage.OutputTokens != fakeanthropic.Words(want) {
		t.Fatalf("usage %+v", msg.Usage)
	}
	n, err := c.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{
		Model:    p.Model,
		System:   anthropic.MessageCountTokensParamsSystemUnion{OfTextBlockArray: p.System},
		Messages: p.Messages,
	})
	if err != nil || n.InputTokens != 5 {
		t.Fatalf("count_tokens %v %v", n, err)
	}

	s := c.Messages.NewStreaming(ctx, p)
	var acc anthropic.Message
	for s.Next() {
		if err := acc.Accumulate(s.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if s.Err() != nil || acc.Content[0].Text != want || acc.Usage.OutputTokens != msg.Usage.OutputTokens || acc.StopReason != "end_turn" {
		t.Fatalf("stream %v: %s", s.Err(), acc.RawJSON())
	}

	// Tools: whole and streamed, then the result.
	p.Tools = []anthropic.ToolUnionParam{weatherTool}
	p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("What's the weather in Paris?"))}
	msg, err = c.Messages.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if msg.StopReason != "tool_use" || len(msg.Content) != 2 || msg.Content[1].Name != "get_weather" || string(msg.Content[1].Input) != `{"location":"Paris","unit":"celsius"}` {
		t.Fatalf("tool use %s", msg.RawJSON())
	}
	s = c.Messages.NewStreaming(ctx, p)
	acc = anthropic.Message{}
	for s.Next() {
		if err := acc.Accumulate(s.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if s.Err() != nil || len(acc.Content) != 2 || string(acc.Content[1].Input) != string(msg.Content[1].Input) || !strings.HasPrefix(acc.Content[1].ID, "toolu_") {
		t.Fatalf("streamed tool use %v: %s", s.Err(), acc.RawJSON())
	}
	p.Messages = append(p.Messages, msg.ToParam(), anthropic.NewUserMessage(anthropic.NewToolResultBlock(msg.Content[1].ID, "18 degrees and sunny", false)))
	msg, err = c.Messages.New(ctx, p)
	if err != nil || msg.Content[0].Text != fakeanthropic.ToolResultText("18 degrees and sunny") {
		t.Fatalf("after the tool result: %v %v", msg, err)
	}

	// Errors the SDK sees as the real API's.
	wrong := client(f.URL, "sk-wrong")
	_, err = wrong.Messages.New(ctx, p)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Type() != "authentication_error" {
		t.Fatalf("wrong key: %v", err)
	}
	f.FailNext(fakeanthropic.Failure{Status: 429, Type: "rate_limit_error", Message: "slow down", Header: http.Header{"Retry-After": {"3"}}})
	_, err = c.Messages.New(ctx, p)
	if !errors.As(err, &ae) || ae.StatusCode != 429 || ae.Type() != "rate_limit_error" || ae.Response.Header.Get("Retry-After") != "3" {
		t.Fatalf("throttled: %v", err)
	}
	if len(f.Requests()) != 8 {
		t.Fatalf("%d requests recorded", len(f.Requests()))
	}
}

func post(t *testing.T, url string, h map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errType(m map[string]any) string {
	if e, ok := m["error"].(map[string]any); ok && m["type"] == "error" {
		s, _ := e["type"].(string)
		return s
	}
	return ""
}

// TestFakeChecks: the fake refuses what the real API refuses.
func TestFakeChecks(t *testing.T) {
	f := fakeanthropic.Start(t, fakeanthropic.Options{APIKey: "k", VertexToken: "tok", Project: "p", Location: "l", Models: []string{"claude-x"}})
	h := map[string]string{"X-Api-Key": "k", "Anthropic-Version": "2023-06-01"}
	ok := `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	for _, c := range []struct {
		name   string
		h      map[string]string
		body   string
		status int
		typ    string
	}{
		{"ok", h, ok, 200, ""},
		{"no key", map[string]string{"Anthropic-Version": "2023-06-01"}, ok, 401, "authentication_error"},
		{"no version", map[string]string{"X-Api-Key": "k"}, ok, 400, "invalid_request_error"},
		{"no max_tokens", h, `{"model":"claude-x","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error"},
		{"unknown model", h, `{"model":"claude-y","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`, 404, "not_found_error"},
		{"extra member", h, `{"model":"claude-x","max_tokens":10,"stream_options":{},"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error"},
		{"not alternating", h, `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"},{"role":"user","content":"again"}]}`, 400, "invalid_request_error"},
		{"empty text", h, `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, 400, "invalid_request_error"},
		{"unanswered tool_use", h, `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":"and?"}]}`, 400, "invalid_request_error"},
		{"tool_result not first", h, `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":[{"type":"text","text":"x"},{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]}`, 400, "invalid_request_error"},
		{"temperature", h, `{"model":"claude-x","max_tokens":10,"temperature":1.5,"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_request_error"},
	} {
		status, out := post(t, f.URL+"/v1/messages", c.h, c.body)
		if status != c.status || (c.typ != "" && errType(out) != c.typ) {
			t.Errorf("%s: %d %v", c.name, status, out)
		}
	}
	vp := f.URL + "/v1/projects/p/locations/l/publishers/anthropic/models/claude-x:rawPredict"
	vbody := `{"anthropic_version":"vertex-2023-10-16","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	if status, out := post(t, vp, map[string]string{"Authorization": "Bearer tok"}, vbody); status != 200 || out["model"] != "claude-x" {
		t.Errorf("vertex: %d %v", status, out)
	}
	if status, out := post(t, vp, map[string]string{"Authorization": "Bearer nope"}, vbody); status != 401 || out["error"].(map[string]any)["status"] != "UNAUTHENTICATED" {
		t.Errorf("vertex bad token: %d %v", status, out)
	}
	if status, _ := post(t, vp, map[string]string{"Authorization": "Bearer tok"}, `{"model":"claude-x",`+vbody[1:]); status != 400 {
		t.Errorf("vertex with a model in the body: %d", status)
	}
	if status, _ := post(t, vp, map[string]string{"Authorization": "Bearer tok"}, `{"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`); status != 400 {
		t.Errorf("vertex without anthropic_version: %d", status)
	}
	if status, _ := post(t, strings.Replace(vp, ":rawPredict", ":streamRawPredict", 1), map[string]string{"Authorization": "Bearer tok"}, vbody); status != 400 {
		t.Errorf("streamRawPredict without stream: %d", status)
	}
}
