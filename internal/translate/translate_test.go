package translate_test

import (
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/translate"
)

func build(t *testing.T, yaml string, prev *translate.Snapshot) (*translate.Snapshot, error) {
	t.Helper()
	set, err := resource.LoadBytes("in.yaml", []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return translate.Build(set, prev)
}

const mock = `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock}
spec: {schema: Mock}
`

// TestErrors: each input yields exactly the listed errors, in file order.
func TestErrors(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"missing backend and negative weight", mock + `---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r}
spec:
  models: [a]
  backendRefs: [{name: nope}, {name: mock, weight: -2, priority: -1}]
`, []string{
			`in.yaml#2: ModelRoute/default/r: spec.backendRefs[1].weight: Invalid value: -2: must be >= 0`,
			`in.yaml#2: ModelRoute/default/r: spec.backendRefs[1].priority: Invalid value: -1: must be >= 0`,
			`in.yaml#2: ModelRoute/default/r: spec.backendRefs[0].name: Not found: "default/nope"`,
		}},
		{"two routes claim a model", mock + `---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: a}
spec: {models: [m, "g*"], backendRefs: [{name: mock}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: b}
spec: {models: [m, "g*", other], backendRefs: [{name: mock}]}
`, []string{
			`in.yaml#3: ModelRoute/default/b: spec.models[0]: Duplicate value: "m (already claimed by ModelRoute/default/a)"`,
			`in.yaml#3: ModelRoute/default/b: spec.models[1]: Duplicate value: "g* (already claimed by ModelRoute/default/a)"`,
		}},
		{"bad glob and empty model", mock + `---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r}
spec: {models: ["gpt-[4]", ""], backendRefs: [{name: mock}]}
`, []string{
			`in.yaml#2: ModelRoute/default/r: spec.models[0]: Invalid value: "gpt-[4]": only * and ? are glob characters; [, ] and \ are not allowed`,
			`in.yaml#2: ModelRoute/default/r: spec.models[1]: Required value: empty model name`,
		}},
		{"backend errors", `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: b1}
spec: {schema: OpenAI}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: b2}
spec: {schema: OpenAI, url: "ftp://x", timeouts: {idle: 0s}}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: b3}
spec: {schema: Gemini}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: b4}
spec: {schema: OpenAI, url: "https://api.openai.com/v1", credentials: {apiKey: {secretRef: {name: missing}}}}
`, []string{
			`in.yaml#1: Backend/default/b1: spec.url: Required value: url or destination is required`,
			`in.yaml#2: Backend/default/b2: spec.url: Invalid value: "ftp://x": scheme must be http or https`,
			`in.yaml#2: Backend/default/b2: spec.timeouts.idle: Invalid value: "0s": must be > 0`,
			`in.yaml#3: Backend/default/b3: spec.schema: Unsupported value: "Gemini": supported values: "OpenAI", "AzureOpenAI", "Anthropic", "GCPVertexAI", "AWSBedrock", "Mock"`,
			`in.yaml#4: Backend/default/b4: spec.credentials.apiKey.secretRef: Invalid value: "default/missing[apiKey]": Secret not found`,
		}},
		{"route to an invalid backend", `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: b}
spec: {schema: OpenAI}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r}
spec: {models: [m], backendRefs: [{name: b}]}
`, []string{
			`in.yaml#1: Backend/default/b: spec.url: Required value: url or destination is required`,
			`in.yaml#2: ModelRoute/default/r: spec.backendRefs[0].name: Invalid value: "b": Backend default/b is invalid`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := build(t, c.yaml, nil)
			errs, ok := err.(translate.Errors)
			if !ok {
				t.Fatalf("want translate.Errors, got %v", err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestSnapshot: a valid set compiles into the routing table and base URLs it describes.
func TestSnapshot(t *testing.T) {
	snap, err := build(t, openAIWithKey("sk-abc")+`---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: vllm, namespace: ai}
spec:
  schema: OpenAI
  destination: {type: KubernetesService, kubernetesService: {name: vllm}, pathPrefix: /v1}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: ip, namespace: ai}
spec:
  schema: OpenAI
  destination: {type: Ip, ip: {address: "10.0.0.7"}, ports: [{number: 8000}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r, namespace: ai}
spec:
  models: [gpt-4o-mini, "gpt-4o*", "*"]
  backendRefs:
  - {name: openai, weight: 3}
  - {name: vllm, weight: 1, model: llama}
  - {name: ip, priority: 2}
  timeouts: {request: 90s}
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	urls := map[string]string{}
	for ref, b := range snap.Backends {
		urls[ref] = b.Upstream.BaseURL.String()
	}
	for ref, want := range map[string]string{
		"Backend/ai/openai": "https://api.openai.com/v1",
		"Backend/ai/vllm":   "http://vllm.ai.svc/v1",
		"Backend/ai/ip":     "http://10.0.0.7:8000",
	} {
		if urls[ref] != want {
			t.Errorf("%s: base URL %q, want %q", ref, urls[ref], want)
		}
	}
	rt := snap.Routes.Lookup("gpt-4o-2024")
	if rt == nil || rt.Ref != "ModelRoute/ai/r" || len(rt.Tiers) != 2 || len(rt.Tiers[0].Refs) != 2 || rt.Tiers[1].Priority != 2 || rt.RequestTimeout.Seconds() != 90 {
		t.Fatalf("route: %+v", rt)
	}
	if rt.Tiers[0].Refs[1].Model != "llama" || rt.Tiers[0].Refs[0].Weight != 3 {
		t.Fatalf("refs: %+v", rt.Tiers[0].Refs)
	}
	if strings.Join(snap.Models, ",") != "gpt-4o-mini" {
		t.Fatalf("models %v", snap.Models)
	}

	// An unchanged Backend keeps its Upstream (and connection pool) across a rebuild; a
	// changed Secret does not.
	again, err := build(t, openAIWithKey("sk-abc"), snap)
	if err != nil {
		t.Fatal(err)
	}
	if again.Backends["Backend/ai/openai"].Upstream != snap.Backends["Backend/ai/openai"].Upstream {
		t.Fatal("unchanged Backend got a new Upstream")
	}
	if n := len(translate.Retired(snap, again)); n != 2 {
		t.Fatalf("%d retired upstreams, want 2 (vllm, ip)", n)
	}
	rotated, err := build(t, openAIWithKey("sk-rotated"), again)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Backends["Backend/ai/openai"].Upstream == again.Backends["Backend/ai/openai"].Upstream {
		t.Fatal("a rotated Secret kept the old Upstream")
	}
}

// TestSecretsNotInErrors: no error message repeats a secret value.
func TestSecretsNotInErrors(t *testing.T) {
	_, err := build(t, `
apiVersion: v1
kind: Secret
metadata: {name: key}
stringData: {token: "sk-very-secret-value"}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: b}
spec:
  schema: OpenAI
  url: https://example.com
  credentials: {apiKey: {secretRef: {name: key}}}
`, nil)
	if err == nil || strings.Contains(err.Error(), "sk-very-secret") || !strings.Contains(err.Error(), `no key "apiKey"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestAccessErrors(t *testing.T) {
	_, err := build(t, mock+`---
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: p}
spec:
  authentication: {apiKeys: {}}
  rules:
  - name: r1
    allow: {endpoints: [chat, images]}
    when: 'request.max_tokens <= '
  - name: r1
---
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: k}
spec: {hash: "sha256:abc", subject: ""}
`, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`AccessPolicy/default/p: spec.rules[0].allow.endpoints[1]: Unsupported value: "images"`,
		`AccessPolicy/default/p: spec.rules[1].name: Duplicate value: "r1"`,
		`AccessPolicy/default/p: spec.rules[0].when: Invalid value: "request.max_tokens <= ": CEL:`,
		`APIKey/default/k: spec.hash: Invalid value: "(hidden)"`,
		`APIKey/default/k: spec.subject: Required value`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = build(t, mock+`---
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: k}
spec: {hash: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", subject: s}
`, nil)
	if err == nil || !strings.Contains(err.Error(), "API keys need an AccessPolicy") {
		t.Fatalf("a key without a policy: %v", err)
	}
}

// openAIWithKey is an OpenAI Backend in namespace ai and the Secret holding its key.
func openAIWithKey(key string) string {
	return `
apiVersion: v1
kind: Secret
metadata: {name: key, namespace: ai}
stringData: {apiKey: "` + key + `"}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: openai, namespace: ai}
spec:
  schema: OpenAI
  url: https://api.openai.com/v1/
  credentials: {apiKey: {secretRef: {name: key}}}
`
}
