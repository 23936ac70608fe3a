package resource_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/resource"
)

const backendDoc = `apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: %s}
spec:
  schema: Mock
`

func backend(name string) string { return strings.ReplaceAll(backendDoc, "%s", name) }

const routeDoc = `apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata:
  name: chat
  namespace: team-a
spec:
  models: ["gpt-4o*"]
  backendRefs:
  - name: openai
    weight: 80
`

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func noEnv(string) (string, bool) { return "", false }

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustLoad(t *testing.T, paths ...string) *resource.Set {
	t.Helper()
	set, err := resource.Load(paths, noEnv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return set
}

// loadErrors loads and returns the error lines, failing if there are none.
func loadErrors(t *testing.T, set *resource.Set, err error) []resource.Error {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got none")
	}
	if set != nil {
		t.Error("want a nil Set with an error")
	}
	var le *resource.LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %T: %v", err, err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(le.Errors) {
		t.Errorf("Error() has %d lines for %d errors:\n%s", n, len(le.Errors), err)
	}
	return le.Errors
}

func wantError(t *testing.T, errs []resource.Error, line string) {
	t.Helper()
	for _, e := range errs {
		if strings.Contains(e.Error(), line) {
			return
		}
	}
	t.Errorf("no error contains %q; got:\n%s", line, (&resource.LoadError{Errors: errs}).Error())
}

func TestMultiDocument(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "all.yaml")
	write(t, f, "---\n# leading comment\n"+backend("a")+"---   # separator with comment\n\n# only a comment\n---\n---  \n"+
		routeDoc+"...\n--- {apiVersion: v1, kind: Secret, metadata: {name: s}}\n")
	set := mustLoad(t, f)
	if len(set.Backends) != 1 || len(set.ModelRoutes) != 1 || len(set.Secrets) != 1 {
		t.Fatalf("got %d backends, %d routes, %d secrets", len(set.Backends), len(set.ModelRoutes), len(set.Secrets))
	}
	b := set.Backends[0]
	if b.Name != "a" || b.Namespace != "default" || b.Kind != "Backend" || b.Spec.Schema != "Mock" {
		t.Errorf("backend = %+v", b)
	}
	if r := set.ModelRoutes[0]; r.Namespace != "team-a" || *r.Spec.BackendRefs[0].Weight != 80 {
		t.Errorf("route = %+v", r)
	}
	want := map[string]resource.Source{
		"Backend/default/a":      {File: f, Doc: 1},
		"ModelRoute/team-a/chat": {File: f, Doc: 2},
		"Secret/default/s":       {File: f, Doc: 3},
	}
	for ref, src := range want {
		if got := set.Origins[ref]; got != src {
			t.Errorf("Origins[%s] = %v, want %v", ref, got, src)
		}
	}
	if len(set.Origins) != len(want) {
		t.Errorf("Origins = %v", set.Origins)
	}
	if s := (resource.Source{File: "a/b.yaml", Doc: 2}).String(); s != "a/b.yaml#2" {
		t.Errorf("Source.String() = %q", s)
	}
}

func TestDirectories(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.yaml"), backend("b"))
	write(t, filepath.Join(dir, "a", "deep", "c.yml"), backend("c"))
	write(t, filepath.Join(dir, "a", "a.yaml"), backend("a"))
	write(t, filepath.Join(dir, ".hidden.yaml"), "not: [valid")
	write(t, filepath.Join(dir, ".git", "x.yaml"), "not: [valid")
	write(t, filepath.Join(dir, "a", ".cache", "x.yaml"), "not: [valid")
	write(t, filepath.Join(dir, "README.md"), "not: [valid")
	write(t, filepath.Join(dir, "x.json"), "not: [valid")
	// A ConfigMap mount: visible file symlinks into hidden, swapped directories.
	write(t, filepath.Join(dir, "cm", "..2024_01", "d.yaml"), backend("d"))
	if err := os.Symlink("..2024_01", filepath.Join(dir, "cm", "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "d.yaml"), filepath.Join(dir, "cm", "d.yaml")); err != nil {
		t.Fatal(err)
	}
	set := mustLoad(t, dir)
	var names []string
	for _, b := range set.Backends {
		names = append(names, b.Name)
	}
	// Lexical order of paths: a/a.yaml, a/deep/c.yml, b.yaml, cm/d.yaml.
	if got := strings.Join(names, ","); got != "a,c,b,d" {
		t.Errorf("backends = %s, want a,c,b,d", got)
	}
	if got := set.Origins["Backend/default/c"]; got.File != filepath.Join(dir, "a", "deep", "c.yml") || got.Doc != 1 {
		t.Errorf("origin of c = %v", got)
	}
}

func TestRepeatedPaths(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "sub", "b.yaml")
	write(t, a, backend("a"))
	write(t, b, backend("b"))
	// The same file given twice, and inside a given directory, is read once.
	set := mustLoad(t, a, dir, a, filepath.Join(dir, "sub"), b)
	if len(set.Backends) != 2 {
		t.Fatalf("got %d backends", len(set.Backends))
	}
	// An explicitly named file is read whatever its extension.
	c := filepath.Join(dir, "c.txt")
	write(t, c, backend("c"))
	if set := mustLoad(t, c); len(set.Backends) != 1 {
		t.Errorf("explicit non-yaml file not read")
	}
}

func TestMissingPath(t *testing.T) {
	dir := t.TempDir()
	set, err := resource.Load([]string{filepath.Join(dir, "nope.yaml")}, noEnv)
	wantError(t, loadErrors(t, set, err), "nope.yaml: stat: no such file or directory")
}

func TestEnv(t *testing.T) {
	env := envMap(map[string]string{"NAME": "from-env", "EMPTY": "", "SCHEMA": "Mock"})
	doc := `apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata:
  name: ${NAME}
  namespace: ${NS:-prod}
  annotations:
    a: "${EMPTY:-fallback}"
    b: "$${NAME} costs $5 and $$5"
    c: "${EMPTY}"
spec:
  schema: ${SCHEMA}
`
	set, err := resource.LoadBytes("env.yaml", []byte(doc), env)
	if err != nil {
		t.Fatal(err)
	}
	b := set.Backends[0]
	if b.Name != "from-env" || b.Namespace != "prod" || b.Spec.Schema != "Mock" {
		t.Errorf("backend = %s/%s %s", b.Namespace, b.Name, b.Spec.Schema)
	}
	want := map[string]string{"a": "fallback", "b": "${NAME} costs $5 and $$5", "c": ""}
	for k, v := range want {
		if b.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, b.Annotations[k], v)
		}
	}
}

func TestEnvErrors(t *testing.T) {
	doc := "# ${IN_COMMENT_UNSET}\n" + backend("x") + "  url: ${API_URL}\n  x: ${1BAD}\n  y: ${OK-x}\n  z: ${UNCLOSED\n"
	set, err := resource.LoadBytes("env.yaml", []byte(doc), envMap(map[string]string{"OK": "v"}))
	errs := loadErrors(t, set, err)
	wantError(t, errs, "env.yaml#1: line 1: environment variable IN_COMMENT_UNSET is not set")
	wantError(t, errs, "env.yaml#1: line 7: environment variable API_URL is not set")
	wantError(t, errs, "env.yaml#1: line 8: invalid ${...}")
	wantError(t, errs, "env.yaml#1: line 9: invalid ${...}")
	wantError(t, errs, "env.yaml#1: line 10: unterminated ${")
	if len(errs) != 5 {
		t.Errorf("want 5 errors, got:\n%s", err)
	}
}

func TestEnvValueNotInErrors(t *testing.T) {
	doc := backend("x") + "  timeouts: {connect: ${TIMEOUT}}\n"
	set, err := resource.LoadBytes("env.yaml", []byte(doc), envMap(map[string]string{"TIMEOUT": "hunter2-secret"}))
	errs := loadErrors(t, set, err)
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("error shows an environment value: %s", err)
	}
	wantError(t, errs, "env.yaml#1: Backend/default/x:")
}

func TestUnknownKind(t *testing.T) {
	doc := `apiVersion: sluice.dev/v1alpha1
kind: Gateway
metadata: {name: g}
---
apiVersion: v1
kind: Backend
metadata: {name: b}
---
apiVersion: sluice.dev/v1alpha1
kind: Secret
metadata: {name: s}
---
metadata: {name: nokind}
---
- a list
`
	set, err := resource.LoadBytes("k.yaml", []byte(doc), noEnv)
	errs := loadErrors(t, set, err)
	wantError(t, errs, `k.yaml#1: Gateway/default/g: unknown kind "Gateway"`)
	wantError(t, errs, `k.yaml#2: Backend/default/b: kind Backend has apiVersion sluice.dev/v1alpha1, not "v1"`)
	wantError(t, errs, `k.yaml#3: Secret/default/s: kind Secret has apiVersion v1`)
	wantError(t, errs, `k.yaml#4: apiVersion and kind required`)
	wantError(t, errs, `k.yaml#5: a document must be a mapping`)
}

func TestStrict(t *testing.T) {
	doc := backend("x") + "  timeouts:\n    connect: 5s\n    bogus: 1\n" + `---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: r}
Spec: {}
spec:
  models: [a]
  models: [b]
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: "y"}
spec:
  schema: Mock
  maxConcurrentRequests: lots
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: yes}
spec: {schema: Mock}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: z}
spec: {schema: Mock
`
	set, err := resource.LoadBytes("s.yaml", []byte(doc), noEnv)
	errs := loadErrors(t, set, err)
	wantError(t, errs, `s.yaml#1: Backend/default/x: unknown field "spec.timeouts.bogus"`)
	wantError(t, errs, `s.yaml#2: line 16: key "models" already set in map`)
	wantError(t, errs, `s.yaml#3: Backend/default/y: spec.maxConcurrentRequests: cannot unmarshal string into int32`)
	wantError(t, errs, `s.yaml#4: metadata.name: cannot unmarshal bool into string (YAML reads unquoted y`)
	wantError(t, errs, `s.yaml#5: line 33: did not find expected ',' or '}'`) // file line numbers
	// Case matters, as it does for the API server.
	set, err = resource.LoadBytes("c.yaml", []byte("apiVersion: sluice.dev/v1alpha1\nkind: ModelRoute\nmetadata: {name: r}\nSpec: {}\n"), noEnv)
	wantError(t, loadErrors(t, set, err), `c.yaml#1: ModelRoute/default/r: unknown field "Spec"`)
}

func TestMissingName(t *testing.T) {
	doc := "apiVersion: sluice.dev/v1alpha1\nkind: Backend\nmetadata: {namespace: x}\nspec: {schema: Mock}\n"
	set, err := resource.LoadBytes("n.yaml", []byte(doc), noEnv)
	errs := loadErrors(t, set, err)
	wantError(t, errs, "n.yaml#1: Backend: metadata.name is required")
	if errs[0].Ref != "" {
		t.Errorf("Ref = %q, want empty", errs[0].Ref)
	}
}

func TestDuplicate(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.yaml"), backend("dup")+"---\n"+backend("other"))
	write(t, filepath.Join(dir, "b.yaml"), backend("unique")+"---\n"+backend("dup"))
	// Another namespace is another resource.
	write(t, filepath.Join(dir, "c.yaml"), strings.Replace(backend("dup"), "{name: dup}", "{name: dup, namespace: ns}", 1))
	set, err := resource.Load([]string{dir}, noEnv)
	errs := loadErrors(t, set, err)
	if len(errs) != 1 {
		t.Fatalf("want one error, got:\n%s", err)
	}
	want := filepath.Join(dir, "b.yaml") + "#2: Backend/default/dup: also defined at " + filepath.Join(dir, "a.yaml") + "#1"
	if errs[0].Error() != want {
		t.Errorf("got  %s\nwant %s", errs[0], want)
	}
}

func TestSecret(t *testing.T) {
	doc := `apiVersion: v1
kind: Secret
metadata: {name: openai, namespace: ai}
data:
  apiKey: c2stZGF0YQ==   # sk-data
  keep: a2VlcA==
stringData:
  apiKey: sk-string
  extra: plain
`
	set, err := resource.LoadBytes("s.yaml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := set.Secrets[0]
	want := map[string]string{"apiKey": "sk-string", "keep": "keep", "extra": "plain"}
	if len(s.Data) != len(want) {
		t.Errorf("data = %q", s.Data)
	}
	for k, v := range want {
		if string(s.Data[k]) != v {
			t.Errorf("data[%s] = %q, want %q", k, s.Data[k], v)
		}
	}
	if s.StringData != nil {
		t.Errorf("stringData not cleared: %v", s.StringData)
	}
	if _, ok := set.Origins["Secret/ai/openai"]; !ok {
		t.Errorf("origins = %v", set.Origins)
	}
}

func TestSecretValueNotInErrors(t *testing.T) {
	const value = "sk-very-secret-value"
	docs := []string{
		// Wrong types and bad base64 next to a good value.
		"apiVersion: v1\nkind: Secret\nmetadata: {name: a}\nstringData: {key: " + value + ", n: 5}\ndata: {b: '!!" + value + "'}\nbogus: 1\n",
		// The value from the environment, in a document that does not parse.
		"apiVersion: v1\nkind: Secret\nmetadata: {name: b}\nstringData:\n  key: ${SECRET}\n   bad: indent\n",
		// Unquoted values that YAML reads as aliases and map keys.
		"apiVersion: v1\nkind: Secret\nmetadata: {name: c}\nstringData: {key: *" + value + "}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: d}\nstringData:\n  ? [" + value + "]\n  : " + value + "\n",
		// A literal ${ in a value, unescaped.
		"apiVersion: v1\nkind: Secret\nmetadata: {name: e}\nstringData: {key: \"${" + value + "\"}\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: f}\nstringData: {key: \"${" + value + "}\"}\n",
	}
	env := envMap(map[string]string{"SECRET": value})
	for i, doc := range docs {
		set, err := resource.LoadBytes("s.yaml", []byte(doc), env)
		errs := loadErrors(t, set, err)
		if i == 0 {
			wantError(t, errs, `s.yaml#1: Secret/default/a: data["b"]: not valid base64`)
		}
		if strings.Contains(err.Error(), value) || strings.Contains(err.Error(), "very-secret") {
			t.Errorf("doc %d: error shows the secret:\n%s", i, err)
		}
	}
}

func TestAllErrorsReported(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "b.yaml"), "kind: Nope\nmetadata: {name: n}\n---\n"+backend("ok")+"---\n"+backend("bad")+"  bogus: 1\n")
	write(t, filepath.Join(dir, "a.yaml"), "apiVersion: v1\nkind: Secret\n---\n: : :\n")
	set, err := resource.Load([]string{filepath.Join(dir, "b.yaml"), filepath.Join(dir, "a.yaml")}, noEnv)
	errs := loadErrors(t, set, err)
	var got []string
	for _, e := range errs {
		got = append(got, e.Source.String())
	}
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	want := []string{a + "#1", a + "#2", b + "#1", b + "#3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("error sources = %v, want %v\n%s", got, want, err)
	}
}

func TestLoadBytesEmpty(t *testing.T) {
	set, err := resource.LoadBytes("empty.yaml", []byte("# nothing\n---\n---\n"), nil)
	if err != nil || set == nil || len(set.Origins) != 0 {
		t.Errorf("got %v, %v", set, err)
	}
}

func TestCRLFAndBOM(t *testing.T) {
	doc := "\ufeff" + strings.ReplaceAll(backend("a")+"---\r\n"+backend("b"), "\n", "\r\n")
	set, err := resource.LoadBytes("w.yaml", []byte(doc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Backends) != 2 {
		t.Errorf("got %d backends", len(set.Backends))
	}
}
