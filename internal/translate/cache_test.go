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
		`CachePolicy/default/b: spec.mode: Invalid value: "Semantic": semantic caching is not built yet`,
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
