package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-gateway/sluice/internal/gatewaytest/fakevllm"
)

// TestSemanticCache: a reworded question is answered from the cache; a different
// question, another system prompt or another team is not; a streaming client gets the
// replay; when the embedder is down requests are still served.
func TestSemanticCache(t *testing.T) {
	emb := fakevllm.Start(t, "embed-small")
	keys := apiKeyYAML("a", "sk-team-a", "alice", "team-a", []string{"dev"}, "") + apiKeyYAML("b", "sk-team-b", "bob", "team-b", []string{"dev"}, "") + allowAllKeys + `
apiVersion: v1
kind: Secret
metadata: {name: embed}
stringData: {apiKey: embed-key}
---
` + backendYAML("embedder", emb.URL+"/v1", "  credentials: {apiKey: {secretRef: {name: embed, key: apiKey}}}")
	gw, up := cachedGateway(t, keys, "  mode: Semantic\n  semantic: {backendRef: {name: embedder}, model: embed-small, threshold: 0.95, timeout: 30s}")
	ask := func(key, system, question string, header map[string]string) (*http.Response, string) {
		t.Helper()
		msgs := []map[string]any{}
		if system != "" {
			msgs = append(msgs, map[string]any{"role": "system", "content": system})
		}
		msgs = append(msgs, map[string]any{"role": "user", "content": question})
		b, _ := json.Marshal(map[string]any{"model": "m", "messages": msgs})
		h := map[string]string{"Authorization": "Bearer " + key}
		for k, v := range header {
			h[k] = v
		}
		r, body := postJSON(t, gw.URL(), "/chat/completions", string(b), h)
		if r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, body)
		}
		return r, body
	}
	r1, body1 := ask("sk-team-a", "Be brief.", "What is the capital of France?", nil)
	if r1.Header.Get("X-Sluice-Cache") != "miss" {
		t.Fatalf("first: %q", r1.Header.Get("X-Sluice-Cache"))
	}
	r2, body2 := ask("sk-team-a", "Be brief.", "what is the capital of france", nil)
	if r2.Header.Get("X-Sluice-Cache") != "hit" || r2.Header.Get("X-Sluice-Cache-Similarity") != "1.000" || body2 != body1 {
		t.Fatalf("reworded: %q %q\n%s\n%s", r2.Header.Get("X-Sluice-Cache"), r2.Header.Get("X-Sluice-Cache-Similarity"), body1, body2)
	}
	if n := len(up.bodies); n != 1 {
		t.Fatalf("upstream saw %d requests", n)
	}
	for name, c := range map[string][3]string{
		"another question":      {"sk-team-a", "Be brief.", "What is the capital of Germany?"},
		"another system prompt": {"sk-team-a", "Answer in French.", "What is the capital of France?"},
		"another team":          {"sk-team-b", "Be brief.", "What is the capital of France?"},
	} {
		if r, _ := ask(c[0], c[1], c[2], nil); r.Header.Get("X-Sluice-Cache") != "miss" {
			t.Errorf("%s: %q (similarity %s)", name, r.Header.Get("X-Sluice-Cache"), r.Header.Get("X-Sluice-Cache-Similarity"))
		}
	}
	gw.Log.Wait(t, "request", 5, 5e9)
	for _, rec := range gw.Log.Records("request") {
		if rec["cache_embedding_tokens"].(float64) == 0 {
			t.Errorf("the embedding cost is not in the access log: %v", rec)
		}
	}
	if recs := gw.Log.Records("request"); recs[1]["cache"] != "semantic_hit" || recs[1]["input_tokens"].(float64) != 0 {
		t.Errorf("access log of a semantic hit: %v", recs[1])
	}

	// A streaming client gets the cached answer replayed, read by the SDK.
	client := openai.NewClient(option.WithBaseURL(gw.URL()+"/"), option.WithAPIKey("sk-team-a"), option.WithMaxRetries(0))
	var raw *http.Response
	stream := client.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model:    "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("What's the capital of France?!")},
	}, option.WithResponseInto(&raw))
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	// "What's" splits into "what" and "s": one extra word, similarity 6/sqrt(6*7) = 0.926.
	if raw.Header.Get("X-Sluice-Cache") != "miss" {
		t.Errorf("an extra word should fall under the threshold: %q %s", raw.Header.Get("X-Sluice-Cache"), raw.Header.Get("X-Sluice-Cache-Similarity"))
	}
	// That streamed miss was stored (before its access-log line, which is written last);
	// the same words again hit it, replayed as a stream.
	gw.Log.Wait(t, "request", 6, 5e9)
	missed := acc.Choices[0].Message.Content
	stream = client.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model:    "m",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("what's THE capital of france")},
	}, option.WithResponseInto(&raw))
	acc = openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if raw.Header.Get("X-Sluice-Cache") != "hit" || len(acc.Choices) != 1 || acc.Choices[0].Message.Content != missed {
		t.Fatalf("streamed semantic hit: %q, %+v\n%s", raw.Header.Get("X-Sluice-Cache"), acc.Choices, gw.Log.String())
	}
	for _, a := range emb.Authorizations() {
		if a != "Bearer embed-key" {
			t.Fatalf("the embedder got Authorization %q, want the Backend's own key", a)
		}
	}

	// The embedder down: served uncached, never failed.
	emb.Fail(http.StatusServiceUnavailable)
	before := len(up.bodies)
	if r, _ := ask("sk-team-a", "Be brief.", "What is the capital of Italy?", nil); r.Header.Get("X-Sluice-Cache") != "miss" || len(up.bodies) != before+1 {
		t.Errorf("embedder down: %q", r.Header.Get("X-Sluice-Cache"))
	}
	gw.Log.Wait(t, "semantic cache: no embedding; exact match only", 1, 5e9)
	// An exact repeat is still a hit without the embedder.
	if r, _ := ask("sk-team-a", "Be brief.", "What is the capital of France?", nil); r.Header.Get("X-Sluice-Cache") != "hit" {
		t.Errorf("exact repeat with the embedder down: %q", r.Header.Get("X-Sluice-Cache"))
	}
}
