package translate_test

import (
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/payload"
)

func TestPayloadErrors(t *testing.T) {
	_, err := build(t, mock+`---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [m], backendRefs: [{name: mock}]}
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: p}
spec:
  phase: Later
  targetRefs: [{kind: ModelRoute, name: nope}]
  processors:
  - name: a
    inProcess: {contentFilter: {deny: [{regex: "("}]}}
  - name: a
    inProcess: {pii: {entities: [Email, Passport]}, setHeaders: [{name: x, value: "1"}]}
  - name: both
    inProcess: {pii: {}}
    extProcess: {protocol: HTTP, backendRef: {name: mock}}
  - name: bad threshold
    inProcess: {promptInjection: {threshold: 2, action: Redact}}
  - name: empty
    inProcess: {}
`, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`spec.phase: Unsupported value: "Later"`,
		`spec.processors[1].name: Duplicate value: "a"`,
		`spec.processors[1].inProcess.pii.entities[1]: Unsupported value: "Passport"`,
		`spec.processors[1].inProcess: Invalid value: "": a detector and mutations cannot share a processor`,
		`spec.processors[2].type: Required value`,
		`spec.processors[3].name: Invalid value: "bad threshold"`,
		`spec.processors[3].inProcess.promptInjection.action: Unsupported value: "Redact"`,
		`spec.processors[3].inProcess.promptInjection.threshold: Invalid value: 2`,
		`spec.processors[4].inProcess: Required value`,
		`spec.targetRefs[0].name: Not found: "default/nope"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	_, err = build(t, mock+`---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: p}
spec:
  processors:
  - name: re
    inProcess: {contentFilter: {deny: [{regex: "("}]}}
  - name: cel
    inProcess: {setHeaders: [{name: x-a, value: "principal."}, {name: Authorization, value: '"x"'}], setBodyFields: [{name: model, value: '"m"'}]}
  - name: ext
    extProcess: {protocol: ExtProc, backendRef: {name: missing}}
  - name: ext-mock
    extProcess: {protocol: HTTP, backendRef: {name: mock}}
`, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`spec.processors[0].inProcess.contentFilter: Invalid value: "": pattern 0: error parsing regexp: missing closing )`,
		`spec.processors[1].inProcess.setBodyFields[0].name: Forbidden`,
		`spec.processors[2].extProcess.backendRef: Invalid value: "default/missing": Backend not found`,
		`spec.processors[3].extProcess.backendRef: Invalid value: "default/mock": an external processor needs a Backend with a url`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// the CEL and header checks run once the resource validates
	_, err = build(t, mock+`---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: p}
spec:
  processors:
  - name: cel
    inProcess: {setHeaders: [{name: x-a, value: "principal."}, {name: Authorization, value: '"x"'}]}
`, nil)
	for _, want := range []string{
		`spec.processors[0].inProcess.setHeaders[0].value: Invalid value: "principal."`,
		`spec.processors[0].inProcess.setHeaders[1].name: Forbidden: credential and framing headers cannot be set`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestPayloadReloadKeepsState: anomaly baselines and external clients survive a reload
// that does not change them; the chains follow the new configuration.
func TestPayloadReloadKeepsState(t *testing.T) {
	yaml := mock + `---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [m], backendRefs: [{name: mock}]}
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: b}
spec:
  processors: [{name: sig, inProcess: {signatures: {}}}]
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: a}
spec:
  phase: PostRouting
  targetRefs: [{kind: ModelRoute, name: chat}]
  processors: [{name: pii, inProcess: {pii: {}}}]
`
	s1, err := build(t, yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := build(t, yaml, s1)
	if err != nil {
		t.Fatal(err)
	}
	pre := s2.Payload.Chain(payload.PreRouting, "ModelRoute/default/chat")
	post := s2.Payload.Chain(payload.PostRouting, "ModelRoute/default/chat")
	if len(pre.Steps) != 1 || pre.Steps[0].Name != "sig" || len(post.Steps) != 1 || post.Steps[0].Name != "pii" {
		t.Fatalf("chains: %+v %+v", pre.Steps, post.Steps)
	}
	if other := s2.Payload.Chain(payload.PostRouting, "ModelRoute/default/other"); !other.Empty() {
		t.Fatal("a targeted resource applied to another route")
	}
	if s2.Summary.PayloadProcessors != 2 {
		t.Fatalf("summary %+v", s2.Summary)
	}
}

// TestPayloadRemoveHeaders: credential headers may be removed (in any case); framing
// headers may not.
func TestPayloadRemoveHeaders(t *testing.T) {
	_, err := build(t, mock+`---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: p}
spec:
  processors:
  - {name: rm, inProcess: {removeHeaders: [authorization, X-Api-Key, host]}}
`, nil)
	if err == nil || !strings.Contains(err.Error(), "removeHeaders[2]: Forbidden") || strings.Contains(err.Error(), "removeHeaders[0]") || strings.Contains(err.Error(), "removeHeaders[1]") {
		t.Fatalf("%v", err)
	}
}
