package translate_test

import (
	"strings"
	"testing"
)

func TestCacheErrors(t *testing.T) {
	_, err := build(t, mock+`---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [m], backendRefs: [{name: mock}]}
---
apiVersion: sluice.dev/v1alpha1
kind: CachePolicy
metadata: {name: a}
spec: {targetRefs: [{kind: ModelRoute, name: chat}]}
---
apiVersion: sluice.dev/v1alpha1
kind: CachePolicy
metadata: {name: b}
spec: {targetRefs: [{kind: ModelRoute, name: chat}, {kind: ModelRoute, name: nope}], mode: Semantic, scope: Everyone, ttl: 0s, storage: {type: Redis}}
`, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`CachePolicy/default/b: spec.semantic: Required value: mode Semantic needs backendRef and model`,
		`CachePolicy/default/b: spec.scope: Unsupported value: "Everyone"`,
		`CachePolicy/default/b: spec.storage.redis.url: Required value`,
		`CachePolicy/default/b: spec.targetRefs[0].name: Duplicate value: "default/chat (already cached by CachePolicy/default/a)"`,
		`CachePolicy/default/b: spec.targetRefs[1].name: Not found: "default/nope"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

func TestSemanticCacheErrors(t *testing.T) {
	_, err := build(t, mock+`---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: bedrock}
spec: {schema: Anthropic, url: "https://api.anthropic.com/v1"}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [m], backendRefs: [{name: mock}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat2}
spec: {models: [m2], backendRefs: [{name: mock}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat3}
spec: {models: [m3], backendRefs: [{name: mock}]}
---
apiVersion: sluice.dev/v1alpha1
kind: CachePolicy
metadata: {name: a}
spec: {targetRefs: [{kind: ModelRoute, name: chat}], mode: Semantic, semantic: {backendRef: {name: nope}, model: e, threshold: 1.5}}
---
apiVersion: sluice.dev/v1alpha1
kind: CachePolicy
metadata: {name: b}
spec: {targetRefs: [{kind: ModelRoute, name: chat2}], mode: Semantic, semantic: {backendRef: {name: bedrock}, model: e}}
---
apiVersion: sluice.dev/v1alpha1
kind: CachePolicy
metadata: {name: c}
spec: {targetRefs: [{kind: ModelRoute, name: chat3}], semantic: {backendRef: {name: mock}, model: e}}
`, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`CachePolicy/default/a: spec.semantic.threshold: Invalid value: 1.5: must be in (0, 1]`,
		`CachePolicy/default/a: spec.semantic.backendRef: Invalid value: "default/nope": Backend not found`,
		`CachePolicy/default/b: spec.semantic.backendRef: Invalid value: "default/bedrock": schema Anthropic has no embeddings API here`,
		`CachePolicy/default/c: spec.semantic: Forbidden: only for mode Semantic`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
