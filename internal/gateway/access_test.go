package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

func apiKeyYAML(name, key, subject, team string, roles []string, extra string) string {
	return fmt.Sprintf(`
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: %s}
spec:
  hash: %s
  subject: %s
  team: %s
  roles: [%s]
%s
---
`, name, gatewaytest.KeyHash(key), subject, team, strings.Join(roles, ", "), extra)
}

// accessConfig: two upstream regions, three models, keys for several kinds of caller.
func accessConfig(t *testing.T) (*gatewaytest.Gateway, *recordingUpstream, *recordingUpstream) {
	eu := newRecordingUpstream(t, "m")
	us := newRecordingUpstream(t, "m")
	yaml := backendYAML("eu", eu.URL+"/v1", "  region: eu") +
		backendYAML("us", us.URL+"/v1", "  region: us") + `
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: small}
spec: {models: [gpt-4o-mini], backendRefs: [{name: us, model: m}, {name: eu, model: m, priority: 1}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: big}
spec: {models: [gpt-4o], backendRefs: [{name: us, model: m}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: embed}
spec: {models: [text-embedding-3-small], backendRefs: [{name: us, model: m}]}
---
` + apiKeyYAML("alice", "sk-alice", "alice@example.com", "research", []string{"developer"}, "") +
		apiKeyYAML("bob", "sk-bob", "bob@example.com", "ops", []string{"admin"}, "") +
		apiKeyYAML("old", "sk-old", "old@example.com", "research", []string{"developer"}, "  expiresAt: \"2020-01-01T00:00:00Z\"") +
		apiKeyYAML("disabled-key", "sk-off", "off@example.com", "research", []string{"developer"}, "  disabled: true") +
		apiKeyYAML("embedder", "sk-embed", "indexer", "search", []string{"embedder"}, "") +
		apiKeyYAML("eu-team", "sk-eu", "carol@example.com", "eu-team", []string{"developer"}, "") + `
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: default}
spec:
  authentication:
    apiKeys: {}
  rules:
  - name: eu-team-stays-in-eu
    from: {teams: [eu-team]}
    allow: {models: ["gpt-4o*"], regions: [eu]}
  - name: read-only-embeddings
    from: {roles: [embedder]}
    allow: {models: ["text-embedding-*"], endpoints: [embeddings]}
  - name: developers-small-models
    from: {roles: [developer]}
    allow: {models: ["gpt-4o-mini"], endpoints: [chat, completions, messages]}
    when: 'request.max_tokens <= 4096 && request.headers[?"x-purpose"].orValue("") != "batch"'
  - name: admins
    from: {roles: [admin]}
    allow: {models: ["*"]}
  default: Deny
`
	return gatewaytest.Start(t, yaml, nil, gateway.Options{}), eu, us
}

func sdk(gw *gatewaytest.Gateway, key string) openai.Client {
	opts := []option.RequestOption{option.WithBaseURL(gw.URL() + "/"), option.WithMaxRetries(0)}
	if key != "" {
		opts = append(opts, option.WithAPIKey(key))
	} else {
		opts = append(opts, option.WithAPIKey(""), option.WithHeaderDel("Authorization"))
	}
	return openai.NewClient(opts...)
}

func TestAccessAPIKeys(t *testing.T) {
	gw, eu, us := accessConfig(t)
	ctx := t.Context()
	chat := func(key, model string, opts ...option.RequestOption) error {
		c := sdk(gw, key)
		_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(100),
		}, opts...)
		return err
	}
	for _, c := range []struct {
		name, key, model string
		status           int
		code             string
	}{
		{"allowed", "sk-alice", "gpt-4o-mini", 200, ""},
		{"forbidden model", "sk-alice", "gpt-4o", 403, "model_not_allowed"},
		{"admin any model", "sk-bob", "gpt-4o", 200, ""},
		{"expired key", "sk-old", "gpt-4o-mini", 401, "invalid_api_key"},
		{"disabled key", "sk-off", "gpt-4o-mini", 401, "invalid_api_key"},
		{"unknown key", "sk-nobody", "gpt-4o-mini", 401, "invalid_api_key"},
		{"missing key", "", "gpt-4o-mini", 401, "invalid_api_key"},
		{"embeddings key on chat", "sk-embed", "text-embedding-3-small", 403, "endpoint_not_allowed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := chat(c.key, c.model)
			if c.status == 200 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !isAPIError(err, c.status, c.code) {
				t.Fatalf("got %v, want %d %s", err, c.status, c.code)
			}
		})
	}
	// The same message for unknown, expired and disabled keys: nothing says which.
	msgs := map[string]bool{}
	for _, k := range []string{"sk-old", "sk-off", "sk-nobody"} {
		msgs[chat(k, "gpt-4o-mini").(*openai.Error).Message] = true
	}
	if len(msgs) != 1 {
		t.Fatalf("401 messages differ by key state: %v", msgs)
	}
	// WWW-Authenticate on 401.
	resp, _ := post(t, gw.URL()+"/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`)
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without WWW-Authenticate: %d %v", resp.StatusCode, resp.Header)
	}

	// CEL: max_tokens over the limit, or a header, makes the developers' rule not match.
	if err := chat("sk-alice", "gpt-4o-mini", option.WithJSONSet("max_tokens", 8000)); !isAPIError(err, 403, "model_not_allowed") {
		t.Fatalf("max_tokens 8000: %v", err)
	}
	if err := chat("sk-alice", "gpt-4o-mini", option.WithHeader("X-Purpose", "batch")); !isAPIError(err, 403, "model_not_allowed") {
		t.Fatalf("x-purpose batch: %v", err)
	}

	// Embeddings key on its endpoint.
	embedder := sdk(gw, "sk-embed")
	if _, err := embedder.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("x")}}); err != nil {
		t.Fatalf("embeddings: %v", err)
	}

	// Region lock: eu-team's requests go to the eu backend only, though us is priority 0.
	nUS := len(us.bodies)
	if err := chat("sk-eu", "gpt-4o-mini"); err != nil {
		t.Fatal(err)
	}
	if len(us.bodies) != nUS || len(eu.bodies) == 0 {
		t.Fatalf("eu-team request left eu: us %d→%d, eu %d", nUS, len(us.bodies), len(eu.bodies))
	}
	// gpt-4o has only a us backend: 403 region_not_allowed.
	if err := chat("sk-eu", "gpt-4o"); !isAPIError(err, 403, "region_not_allowed") {
		t.Fatalf("eu-team gpt-4o: %v", err)
	}

	// Denials are audited with subject, rule and reason, never the key.
	gw.Log.Wait(t, "access denied", 5, 5*time.Second)
	logText := gw.Log.String()
	if strings.Contains(logText, "sk-alice") || strings.Contains(logText, "sk-nobody") {
		t.Fatal("a key reached the log")
	}
	found := false
	for _, r := range gw.Log.Records("access denied") {
		if r["subject"] == "alice@example.com" && r["reason"] == "model_not_allowed" && r["rule"] == "developers-small-models" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit record of alice's denial: %v", gw.Log.Records("access denied"))
	}
}

func TestAccessModelsFiltered(t *testing.T) {
	gw, _, _ := accessConfig(t)
	ids := func(key string) []string {
		c := sdk(gw, key)
		page, err := c.Models.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range page.Data {
			out = append(out, m.ID)
		}
		slices.Sort(out)
		return out
	}
	for key, want := range map[string][]string{
		"sk-alice": {"gpt-4o-mini"},
		"sk-bob":   {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"},
		"sk-embed": {"text-embedding-3-small"},
	} {
		if got := ids(key); !slices.Equal(got, want) {
			t.Errorf("%s sees %v, want %v", key, got, want)
		}
	}
	nobody, alice := sdk(gw, "sk-nobody"), sdk(gw, "sk-alice")
	if _, err := nobody.Models.List(t.Context()); !isAPIError(err, 401, "invalid_api_key") {
		t.Errorf("unknown key lists models: %v", err)
	}
	if _, err := alice.Models.Get(t.Context(), "gpt-4o"); !isAPIError(err, 404, "model_not_found") {
		t.Errorf("alice gets gpt-4o: %v", err)
	}
}

// TestAccessAnthropicWire: denials on /v1/messages are Anthropic error JSON.
func TestAccessAnthropicWire(t *testing.T) {
	gw, _, _ := accessConfig(t)
	req, _ := http.NewRequest("POST", gw.Server.URL+"/v1/messages", strings.NewReader(`{"model":"gpt-4o","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", "sk-alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := jsonDecode(resp, &body); err != nil || resp.StatusCode != 403 || body.Type != "error" || body.Error.Type != "permission_error" || body.Error.Code != "model_not_allowed" {
		t.Fatalf("%d %+v %v", resp.StatusCode, body, err)
	}
}
