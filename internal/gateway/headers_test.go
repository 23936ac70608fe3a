package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

// TestRequestHeaders: provider headers reach the provider, credentials and cookies never
// do, and a Backend's header policy adds, drops and allow-lists.
func TestRequestHeaders(t *testing.T) {
	open := newRecordingUpstream(t, "m")
	strict := newRecordingUpstream(t, "m")
	yaml := backendYAML("open", open.URL+"/v1", `  requestHeaders:
    remove: [x-internal]
    set: [{name: x-team, value: research}]`) +
		backendYAML("strict", strict.URL+"/v1", `  requestHeaders:
    allow: [openai-beta]`) + routeYAML2("open") + routeYAML2("strict")
	gw := gatewaytest.Start(t, yaml, nil, gateway.Options{})
	send := func(model string) {
		req, _ := http.NewRequest("POST", gw.URL()+"/chat/completions", strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
		for k, v := range map[string]string{
			"Authorization": "Bearer client", "X-Api-Key": "client", "Api-Key": "client", "X-Goog-Api-Key": "client",
			"Cookie": "session=client", "OpenAI-Beta": "assistants=v2", "Anthropic-Beta": "prompt-caching-2024-07-31",
			"X-Internal": "secret-route", "X-Trace": "t1", "Content-Type": "application/json",
		} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", model, resp.StatusCode)
		}
	}
	send("open")
	send("strict")
	_, h := open.last()
	for _, k := range []string{"Authorization", "X-Api-Key", "Api-Key", "X-Goog-Api-Key", "Cookie", "X-Internal"} {
		if h.Get(k) != "" {
			t.Errorf("open: %s forwarded: %q", k, h.Get(k))
		}
	}
	if h.Get("Openai-Beta") != "assistants=v2" || h.Get("Anthropic-Beta") != "prompt-caching-2024-07-31" || h.Get("X-Trace") != "t1" || h.Get("X-Team") != "research" {
		t.Errorf("open: headers %v", h)
	}
	_, h = strict.last()
	if h.Get("Openai-Beta") != "assistants=v2" || h.Get("X-Trace") != "" || h.Get("Anthropic-Beta") != "" || h.Get("Content-Type") != "application/json" || h.Get("Cookie") != "" {
		t.Errorf("strict: headers %v", h)
	}
}
