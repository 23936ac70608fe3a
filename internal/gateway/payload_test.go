package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

// guardRoute is a recording upstream behind route "chat" (models m and m2), plus the
// PayloadProcessors in extra.
func guardGateway(t *testing.T, extra string) (*gatewaytest.Gateway, *recordingUpstream) {
	t.Helper()
	up := newRecordingUpstream(t, "m", "m2")
	yaml := backendYAML("up", up.URL+"/v1", "") + `
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [m], backendRefs: [{name: up}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: other}
spec: {models: [m2], backendRefs: [{name: up}]}
---
` + extra
	return gatewaytest.Start(t, yaml, nil, gateway.Options{}), up
}

func chatBody(model, user string) string {
	b, _ := json.Marshal(map[string]any{"model": model, "messages": []map[string]any{{"role": "user", "content": user}}})
	return string(b)
}

func postJSON(t *testing.T, url, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// errCode reads error.code (OpenAI) or error.type (Anthropic) and the message.
func errCode(t *testing.T, body string) (code, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Type, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an error body: %q", body)
	}
	return e.Error.Code, e.Error.Message
}

const piiProcessor = `
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: guard}
spec:
  processors:
  - name: pii
    inProcess: {pii: {action: %s}}
`

// TestPayloadActions: Redact changes what goes upstream, Flag passes it unchanged with
// x-sluice-flags, Block answers content_blocked naming the processor and not the text.
func TestPayloadActions(t *testing.T) {
	secret := "write to jane.doe@example.com now"
	t.Run("Redact", func(t *testing.T) {
		gw, up := guardGateway(t, fmt.Sprintf(piiProcessor, "Redact"))
		resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", secret), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		sent, _ := up.last()
		if strings.Contains(string(sent), "jane.doe") || !strings.Contains(string(sent), "write to [EMAIL] now") {
			t.Fatalf("upstream got %s", sent)
		}
		if !json.Valid(sent) {
			t.Fatalf("invalid JSON upstream: %s", sent)
		}
		if f := resp.Header.Get("X-Sluice-Flags"); f != `pii="redact Email"` {
			t.Fatalf("flags %q", f)
		}
		gw.Log.Wait(t, "payload processor", 1, 5*time.Second)
		if strings.Contains(gw.Log.String(), "jane.doe") {
			t.Fatal("the matched text reached the log")
		}
	})
	t.Run("Flag", func(t *testing.T) {
		gw, up := guardGateway(t, fmt.Sprintf(piiProcessor, "Flag"))
		resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", secret), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if sent, _ := up.last(); !strings.Contains(string(sent), "jane.doe@example.com") {
			t.Fatalf("Flag changed the request: %s", sent)
		}
		if f := resp.Header.Get("X-Sluice-Flags"); f != `pii="flag Email"` {
			t.Fatalf("flags %q", f)
		}
		gw.Log.Wait(t, "request", 1, 5*time.Second)
		recs := gw.Log.Records("request")
		if len(recs) == 0 || recs[len(recs)-1]["flags"] != `pii="flag Email"` {
			t.Fatalf("access log: %v", recs)
		}
	})
	t.Run("Block", func(t *testing.T) {
		gw, up := guardGateway(t, fmt.Sprintf(piiProcessor, "Block"))
		resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", secret), nil)
		code, msg := errCode(t, body)
		if resp.StatusCode != 400 || code != "content_blocked" || !strings.Contains(msg, "'pii'") || strings.Contains(body, "jane") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if len(up.bodies) != 0 {
			t.Fatal("a blocked request reached the upstream")
		}
		// Anthropic clients get Anthropic's error shape.
		resp, body = postJSON(t, gw.URL(), "/messages", `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"`+secret+`"}]}`, nil)
		var ae struct {
			Type  string
			Error struct{ Type, Message string }
		}
		json.Unmarshal([]byte(body), &ae)
		if resp.StatusCode != 400 || ae.Type != "error" || !strings.Contains(ae.Error.Message, "'pii'") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		// a clean request passes
		if resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hello there"), nil); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

// TestPayloadInspectedParts: by default user messages and tool results are read, the
// system prompt is not; inspect changes that.
func TestPayloadInspectedParts(t *testing.T) {
	gw, _ := guardGateway(t, `
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: guard}
spec:
  processors:
  - name: words
    inProcess: {contentFilter: {deny: [{word: zeus}]}}
  - name: words-system
    inspect: [System]
    inProcess: {contentFilter: {deny: [{word: hera}]}}
`)
	msgs := func(role, text string) string {
		b, _ := json.Marshal(map[string]any{"model": "m", "messages": []map[string]any{
			{"role": role, "content": text, "tool_call_id": "1"}, {"role": "user", "content": "hi"}}})
		return string(b)
	}
	cases := []struct {
		role, text string
		blocked    bool
	}{
		{"user", "tell me about Zeus", true},
		{"tool", "the page says: zeus", true},
		{"system", "you know zeus", false},
		{"assistant", "zeus", false},
		{"system", "you know hera", true},
		{"user", "hera", false},
	}
	for _, c := range cases {
		resp, body := postJSON(t, gw.URL(), "/chat/completions", msgs(c.role, c.text), nil)
		if blocked := resp.StatusCode == 400; blocked != c.blocked {
			t.Errorf("%s %q: %d %s", c.role, c.text, resp.StatusCode, body)
		}
	}
}

// TestPayloadOrderAndTargets: resources run by phase, then creation time, then name; a
// targeted resource applies to its route only.
func TestPayloadOrderAndTargets(t *testing.T) {
	gw, up := guardGateway(t, `
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: a-post}
spec:
  phase: PostRouting
  processors:
  - name: post
    inProcess: {setHeaders: [{name: x-trace, value: 'request.headers["x-trace"] + ">post"'}]}
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: b-pre}
spec:
  processors:
  - name: pre1
    inProcess: {setHeaders: [{name: x-trace, value: 'request.headers[?"x-trace"].orValue("") + ">b1"'}]}
  - name: pre2
    inProcess: {setHeaders: [{name: x-trace, value: 'request.headers["x-trace"] + ">b2"'}]}
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: c-pre}
spec:
  targetRefs: [{kind: ModelRoute, name: chat}]
  processors:
  - name: only-chat
    inProcess: {setHeaders: [{name: x-trace, value: 'request.headers["x-trace"] + ">c"'}]}
`)
	postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), map[string]string{"X-Trace": "client"})
	if _, h := up.last(); h.Get("X-Trace") != "client>b1>b2>c>post" {
		t.Fatalf("route chat: %q", h.Get("X-Trace"))
	}
	postJSON(t, gw.URL(), "/chat/completions", chatBody("m2", "hi"), map[string]string{"X-Trace": "client"})
	if _, h := up.last(); h.Get("X-Trace") != "client>b1>b2>post" {
		t.Fatalf("route other: %q", h.Get("X-Trace"))
	}
}

// TestPayloadMutations: CEL values into headers and body fields; removals.
func TestPayloadMutations(t *testing.T) {
	gw, up := guardGateway(t, `
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: m}
spec:
  processors:
  - name: route-hint
    inProcess:
      setHeaders: [{name: x-route-hint, value: 'request.body.messages.size() > 1 ? "long" : "short"'}]
      setBodyFields:
      - {name: metadata.endpoint, value: 'request.endpoint'}
      - {name: temperature, value: '0.25'}
      removeHeaders: [x-internal]
      removeBodyFields: [user]
`)
	body := `{"model":"m","user":"alice","messages":[{"role":"user","content":"hi"}]}`
	resp, out := postJSON(t, gw.URL(), "/chat/completions", body, map[string]string{"X-Internal": "1"})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	sent, h := up.last()
	var got map[string]any
	if err := json.Unmarshal(sent, &got); err != nil {
		t.Fatalf("%s: %v", sent, err)
	}
	if h.Get("X-Route-Hint") != "short" || h.Get("X-Internal") != "" {
		t.Fatalf("headers %v", h)
	}
	if _, ok := got["user"]; ok || got["temperature"] != 0.25 || got["metadata"].(map[string]any)["endpoint"] != "chat" || got["model"] != "m" {
		t.Fatalf("body %s", sent)
	}
}

// TestPayloadFailureModes: a processor that does not answer in time fails the request
// closed (processor_failed) or lets it through open, unchanged.
func TestPayloadFailureModes(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	for _, mode := range []string{"FailClosed", "FailOpen"} {
		t.Run(mode, func(t *testing.T) {
			gw, up := guardGateway(t, backendYAML("hook", hang.URL+"/check", "")+`
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: ext}
spec:
  processors:
  - name: slow-hook
    failureMode: `+mode+`
    timeout: 50ms
    extProcess: {protocol: HTTP, backendRef: {name: hook}}
`)
			resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "hi"), nil)
			if mode == "FailClosed" {
				code, msg := errCode(t, body)
				if resp.StatusCode != 503 || code != "processor_failed" || !strings.Contains(msg, "slow-hook") || !strings.Contains(msg, "timed out") {
					t.Fatalf("%d %s", resp.StatusCode, body)
				}
				if len(up.bodies) != 0 {
					t.Fatal("sent upstream")
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			gw.Log.Wait(t, "payload processor failed open", 1, 5*time.Second)
		})
	}
}

// streamText reads a client stream to its end and returns the concatenated content deltas
// and the raw events.
func streamText(t *testing.T, r io.Reader) (string, string) {
	t.Helper()
	raw, _ := io.ReadAll(r)
	var text strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct{ Content string }
			}
		}
		json.Unmarshal([]byte(data), &c)
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	return text.String(), string(raw)
}

const responseProcessor = `
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: out}
spec:
  processors:
  - name: %s
    inProcess: {%s}
`

// TestPayloadStreamRedactsAcrossChunks: a card number split over two chunks reaches the
// client redacted, and all the other text arrives.
func TestPayloadStreamRedactsAcrossChunks(t *testing.T) {
	up := newScriptedStream(t)
	gw := gatewaytest.Start(t, backendYAML("s", up.URL+"/v1", "")+routeYAML("m", "[{name: s}]")+"---\n"+
		fmt.Sprintf(responseProcessor, "pii", "pii: {action: Redact, scope: [Response]}"), nil, gateway.Options{})
	resp, r := startStream(t, t.Context(), gw.URL(), up, chunk("Your card is 4111 1111"))
	defer resp.Body.Close()
	up.events <- chunk(" 1111 1111, keep it safe.")
	up.events <- `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`
	up.events <- "[DONE]"
	close(up.events)
	text, raw := streamText(t, r)
	if text != "Your card is [CREDIT_CARD], keep it safe." || strings.Contains(raw, "4111") {
		t.Fatalf("got %q\n%s", text, raw)
	}
	if !strings.HasSuffix(raw, "data: [DONE]\n\n") {
		t.Fatalf("stream end: %q", raw)
	}
	// the finish event comes after all text
	if i, j := strings.Index(raw, "keep it safe"), strings.Index(raw, `"finish_reason":"stop"`); i < 0 || j < i {
		t.Fatalf("text after finish:\n%s", raw)
	}
	gw.Log.Wait(t, "payload processor", 1, 5*time.Second)
}

// TestPayloadStreamBlock: a Block mid-stream ends the stream with an error event in the
// client's wire; what was delivered is still accounted.
func TestPayloadStreamBlock(t *testing.T) {
	up := newScriptedStream(t)
	gw := gatewaytest.Start(t, backendYAML("s", up.URL+"/v1", "")+routeYAML("m", "[{name: s}]")+"---\n"+
		fmt.Sprintf(responseProcessor, "words", "contentFilter: {deny: [{word: zeus}], scope: [Response]}"), nil, gateway.Options{})
	resp, r := startStream(t, t.Context(), gw.URL(), up, chunk("Once upon a time there was a god called "))
	defer resp.Body.Close()
	up.events <- chunk("Ze")
	up.events <- chunk("us who ruled")
	text, raw := streamText(t, r)
	close(up.events)
	if strings.Contains(strings.ToLower(text), "zeus") || !strings.Contains(text, "Once upon a time") {
		t.Fatalf("text %q", text)
	}
	if !strings.Contains(raw, `"code":"content_blocked"`) || !strings.Contains(raw, "'words'") {
		t.Fatalf("no error event:\n%s", raw)
	}
	gw.Log.Wait(t, "request", 1, 5*time.Second)
	rec := gw.Log.Records("request")[0]
	if rec["code"] != "content_blocked" || rec["output_tokens"].(float64) <= 0 {
		t.Fatalf("access log %v", rec)
	}
}

// TestPayloadAnswerRedaction: a whole answer is inspected too (the mock echoes the prompt).
func TestPayloadAnswerRedaction(t *testing.T) {
	gw, _ := guardGateway(t, fmt.Sprintf(responseProcessor, "pii", "pii: {action: Redact, scope: [Response]}"))
	resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "mail bob@example.org please"), nil)
	if resp.StatusCode != 200 || strings.Contains(body, "bob@example.org") || !strings.Contains(body, "[EMAIL]") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Sluice-Flags") != `pii="redact response Email"` {
		t.Fatalf("flags %q", resp.Header.Get("X-Sluice-Flags"))
	}
	if resp.Header.Get("Content-Length") != fmt.Sprint(len(body)) {
		t.Fatal("Content-Length not updated")
	}
	// and streamed from the same mock
	resp2, err := http.Post(gw.URL()+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"mail bob@example.org please"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	text, _ := streamText(t, resp2.Body)
	if strings.Contains(text, "bob@") || !strings.Contains(text, "[EMAIL]") {
		t.Fatalf("stream %q", text)
	}
}
