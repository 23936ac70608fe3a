package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/redis/go-redis/v9"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/redistest"
)

const cachePolicyYAML = `
apiVersion: sluice.dev/v1alpha1
kind: CachePolicy
metadata: {name: answers}
spec:
  targetRefs: [{kind: ModelRoute, name: chat}]
  ttl: 10m
%s
---
`

// cachedGateway is a recording upstream behind route chat (model m) with a CachePolicy.
func cachedGateway(t *testing.T, extra, policy string) (*gatewaytest.Gateway, *recordingUpstream) {
	t.Helper()
	gw, up := guardGateway(t, extra+strings.Replace(cachePolicyYAML, "%s", policy, 1))
	return gw, up
}

// TestCacheHitAndMiss: the same request (in any key order or spacing) is answered from the
// cache the second time, without the upstream, and with zero upstream usage.
func TestCacheHitAndMiss(t *testing.T) {
	gw, up := cachedGateway(t, "", "")
	first, body1 := postJSON(t, gw.URL(), "/chat/completions", `{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}],"temperature":0}`, nil)
	second, body2 := postJSON(t, gw.URL(), "/chat/completions", `{ "temperature": 0.0, "messages": [ {"content": "What is 2+2?", "role": "user"} ], "model": "m" }`, nil)
	if first.Header.Get("X-Sluice-Cache") != "miss" || second.Header.Get("X-Sluice-Cache") != "hit" || body1 != body2 {
		t.Fatalf("miss/hit: %q %q\n%s\n%s", first.Header.Get("X-Sluice-Cache"), second.Header.Get("X-Sluice-Cache"), body1, body2)
	}
	if len(up.bodies) != 1 {
		t.Fatalf("upstream saw %d requests", len(up.bodies))
	}
	gw.Log.Wait(t, "request", 2, 5e9)
	recs := gw.Log.Records("request")
	if last := recs[len(recs)-1]; last["cache"] != "hit" || last["input_tokens"].(float64) != 0 || last["backend"] != "" {
		t.Fatalf("access log of a hit: %v", last)
	}
	// another question, and another route, are misses
	if r, _ := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "What is 3+3?"), nil); r.Header.Get("X-Sluice-Cache") != "miss" {
		t.Fatal("a different request hit")
	}
	if r, _ := postJSON(t, gw.URL(), "/chat/completions", chatBody("m2", "What is 2+2?"), nil); r.Header.Get("X-Sluice-Cache") != "" {
		t.Fatal("the policy applied to an untargeted route")
	}
	// no-cache skips the lookup; no-store skips the cache
	if r, _ := postJSON(t, gw.URL(), "/chat/completions", `{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}],"temperature":0}`, map[string]string{"Cache-Control": "no-cache"}); r.Header.Get("X-Sluice-Cache") != "miss" {
		t.Fatal("no-cache was served from the cache")
	}
	if r, _ := postJSON(t, gw.URL(), "/chat/completions", `{"model":"m","messages":[{"role":"user","content":"What is 2+2?"}],"temperature":0}`, map[string]string{"Cache-Control": "no-store"}); r.Header.Get("X-Sluice-Cache") != "" {
		t.Fatal("no-store used the cache")
	}
}

// TestCacheStreamReplay: a streaming client gets a cached answer replayed as SSE, which the
// official SDK reads as the same message.
func TestCacheStreamReplay(t *testing.T) {
	gw, up := cachedGateway(t, "", "")
	resp, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "Tell me a story"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	client := openai.NewClient(option.WithBaseURL(gw.URL()+"/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	var raw *http.Response
	stream := client.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model:    "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story")},
	}, option.WithResponseInto(&raw))
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if raw.Header.Get("X-Sluice-Cache") != "hit" || len(up.bodies) != 1 {
		t.Fatalf("not a hit (%q), upstream saw %d", raw.Header.Get("X-Sluice-Cache"), len(up.bodies))
	}
	if len(acc.Choices) != 1 || !strings.Contains(body, jsonString(acc.Choices[0].Message.Content)) {
		t.Fatalf("replayed %q, cached %s", acc.Choices[0].Message.Content, body)
	}
}

func jsonString(s string) string { return strings.Trim(toJSON(s), `"`) }

// allowAllKeys is an AccessPolicy that authenticates API keys and lets them use every model.
const allowAllKeys = `
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: p}
spec:
  authentication: {apiKeys: {}}
  rules: [{name: all, allow: {models: ["*"]}}]
---
`

// TestCacheTenantIsolation: one team never receives another team's cached answer.
func TestCacheTenantIsolation(t *testing.T) {
	keys := apiKeyYAML("a", "sk-team-a", "alice", "team-a", []string{"dev"}, "") + apiKeyYAML("b", "sk-team-b", "bob", "team-b", []string{"dev"}, "") + allowAllKeys
	gw, up := cachedGateway(t, keys, "")
	ask := func(key string) string {
		r, body := postJSON(t, gw.URL(), "/chat/completions", chatBody("m", "shared question"), map[string]string{"Authorization": "Bearer " + key})
		if r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, body)
		}
		return r.Header.Get("X-Sluice-Cache")
	}
	if ask("sk-team-a") != "miss" || ask("sk-team-a") != "hit" || ask("sk-team-b") != "miss" || ask("sk-team-b") != "hit" {
		t.Fatal("teams share cache entries")
	}
	if len(up.bodies) != 2 {
		t.Fatalf("upstream saw %d", len(up.bodies))
	}
}

// TestCacheRedisShared: two gateways (replicas) share answers through Redis.
func TestCacheRedisShared(t *testing.T) {
	redistest.SkipWithout(t)
	rs := redistest.Start(t)
	policy := "  storage: {type: Redis, redis: {url: " + rs.URL() + "}}"
	up := newRecordingUpstream(t, "m")
	yaml := backendYAML("up", up.URL+"/v1", "") + `
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [m], backendRefs: [{name: up}]}
---
` + strings.Replace(cachePolicyYAML, "%s", policy, 1)
	g1 := gatewaytest.Start(t, yaml, nil, gateway.Options{})
	g2 := gatewaytest.Start(t, yaml, nil, gateway.Options{})
	r1, _ := postJSON(t, g1.URL(), "/chat/completions", chatBody("m", "replicated?"), nil)
	if r1.Header.Get("X-Sluice-Cache") != "miss" {
		t.Fatal("first request not a miss")
	}
	// The fill is written in the background: wait until Redis holds it.
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rc.Close()
	for n := 0; n == 0; {
		keys, err := rc.Keys(t.Context(), "sluice:cache:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		n = len(keys)
	}
	r2, _ := postJSON(t, g2.URL(), "/chat/completions", chatBody("m", "replicated?"), nil)
	if r2.Header.Get("X-Sluice-Cache") != "hit" || len(up.bodies) != 1 {
		t.Fatalf("second replica: %q, upstream saw %d", r2.Header.Get("X-Sluice-Cache"), len(up.bodies))
	}
}

// TestCacheFromStream: a streamed answer fills the cache too (as received by the client,
// after the response processors): a later non-streamed request gets the same text.
func TestCacheFromStream(t *testing.T) {
	gw, up := cachedGateway(t, "", "")
	client := openai.NewClient(option.WithBaseURL(gw.URL()+"/"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{
		Model:    "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Stream me a story")},
	}
	stream := client.Chat.Completions.NewStreaming(t.Context(), params)
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	gw.Log.Wait(t, "request", 1, 5e9) // the fill happens before the access log line
	var raw *http.Response
	got, err := client.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&raw))
	if err != nil {
		t.Fatal(err)
	}
	if raw.Header.Get("X-Sluice-Cache") != "hit" || len(up.bodies) != 1 {
		t.Fatalf("not a hit (%q), upstream saw %d", raw.Header.Get("X-Sluice-Cache"), len(up.bodies))
	}
	if got.Choices[0].Message.Content != acc.Choices[0].Message.Content || got.Choices[0].FinishReason != "stop" {
		t.Fatalf("cached %q (%s), streamed %q", got.Choices[0].Message.Content, got.Choices[0].FinishReason, acc.Choices[0].Message.Content)
	}
}
