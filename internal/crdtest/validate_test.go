package crdtest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/crdtest"
	"github.com/sluice-gateway/sluice/internal/resource"
)

// kinds are every kind of api/v1alpha1; each needs a CRD.
var kinds = []string{"APIKey", "AccessPolicy", "Backend", "CachePolicy", "MCPRoute", "ModelRoute", "PayloadProcessor", "RateLimitPolicy"}

var (
	loadOnce sync.Once
	loaded   map[string]*crdtest.CRD
	loadErr  error
)

func crds(t *testing.T) map[string]*crdtest.CRD {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = crdtest.LoadDir(crdDir(t)) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

func TestCRDs(t *testing.T) {
	all := crds(t)
	var have []string
	for k := range all {
		have = append(have, k)
	}
	slices.Sort(have)
	if !slices.Equal(have, kinds) {
		t.Fatalf("CRDs for %v, want %v", have, kinds)
	}
	for _, kind := range kinds {
		c := all[kind]
		t.Run(kind, func(t *testing.T) {
			if errs := c.ValidateDefinition(context.Background()); len(errs) > 0 {
				t.Errorf("%s: the API server would reject the CRD:\n%s", c.File, crdtest.ErrString(errs))
			}
			s := c.V1.Spec
			if s.Group != v1alpha1.Group {
				t.Errorf("group %q, want %q", s.Group, v1alpha1.Group)
			}
			if s.Scope != "Namespaced" {
				t.Errorf("scope %q, want Namespaced", s.Scope)
			}
			if !slices.Contains(s.Names.Categories, "sluice") {
				t.Errorf("categories %v lack sluice", s.Names.Categories)
			}
			if len(s.Versions) != 1 {
				t.Fatalf("%d versions, want 1", len(s.Versions))
			}
			v := s.Versions[0]
			if v.Name != v1alpha1.Version || !v.Served || !v.Storage {
				t.Errorf("version %s served=%v storage=%v, want %s served and storage", v.Name, v.Served, v.Storage, v1alpha1.Version)
			}
			if v.Subresources == nil || v.Subresources.Status == nil {
				t.Error("no status subresource")
			}
			var cols []string
			for _, col := range v.AdditionalPrinterColumns {
				cols = append(cols, col.Name)
			}
			for _, want := range []string{"Accepted", "Age"} {
				if !slices.Contains(cols, want) {
					t.Errorf("printer columns %v lack %s", cols, want)
				}
			}
		})
	}
}

// envRef finds what the loader would need from the environment: ${NAME} without a
// default ("$${" is an escape, matched first so that the name after it is not taken).
var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// exampleEnv gives every ${NAME} without a default a dummy value and leaves the rest
// unset, so that ${NAME:-default} takes its default, as in a fresh shell.
func exampleEnv(data []byte) func(string) (string, bool) {
	need := map[string]bool{}
	for _, m := range envRef.FindAllSubmatch(data, -1) {
		if len(m[1]) > 0 {
			need[string(m[1])] = true
		}
	}
	return func(name string) (string, bool) {
		if need[name] {
			return "ZHVtbXk=", true // base64, for Secrets' data
		}
		return "", false
	}
}

func exampleFiles(t *testing.T) []string {
	t.Helper()
	root := filepath.Join(repoRoot(t), "examples")
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return fs.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 || !slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, "providers") }) {
		t.Fatalf("found only %v", files)
	}
	return files
}

// TestExamples validates every Sluice document of every example against its CRD twice:
// as written (after ${VAR} expansion: what kubectl apply would send), and as the Go
// types read and write it (loaded with internal/resource, marshalled back to JSON),
// before and after Default. The second proves that the schema knows every field the
// Go types write. Every document must also pass the Go Validate.
func TestExamples(t *testing.T) {
	all := crds(t)
	ctx := context.Background()
	for _, file := range exampleFiles(t) {
		rel, _ := filepath.Rel(repoRoot(t), file)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			env := exampleEnv(data)

			// As written.
			raw := 0
			for i, doc := range splitDocs(t, data) {
				obj := decode(t, expandEnv(t, doc, env))
				if obj == nil {
					continue
				}
				kind, _ := obj["kind"].(string)
				if obj["apiVersion"] == "v1" && kind == "Secret" {
					continue
				}
				c := all[kind]
				if c == nil || obj["apiVersion"] != v1alpha1.APIVersion {
					t.Errorf("document %d: %v %s is not a Sluice kind", i+1, obj["apiVersion"], kind)
					continue
				}
				raw++
				if errs := c.Validate(ctx, obj); len(errs) > 0 {
					t.Errorf("document %d (%s %v) as written is rejected:\n%s", i+1, kind, name(obj), crdtest.ErrString(errs))
				}
			}

			// As the Go types read it.
			set, err := resource.Load([]string{file}, env)
			if err != nil {
				t.Fatal(err)
			}
			typed := 0
			for _, o := range objects(set) {
				typed++
				checkTyped(t, all, o)
			}
			if raw != typed {
				t.Errorf("%d Sluice documents as written, %d loaded", raw, typed)
			}
		})
	}
}

// object is what every kind of api/v1alpha1 has.
type object interface {
	GetName() string
	Default()
	Validate() field.ErrorList
}

func objects(s *resource.Set) []object {
	var out []object
	for _, o := range s.Backends {
		out = append(out, o)
	}
	for _, o := range s.ModelRoutes {
		out = append(out, o)
	}
	for _, o := range s.APIKeys {
		out = append(out, o)
	}
	for _, o := range s.AccessPolicies {
		out = append(out, o)
	}
	for _, o := range s.RateLimitPolicies {
		out = append(out, o)
	}
	for _, o := range s.PayloadProcessors {
		out = append(out, o)
	}
	for _, o := range s.CachePolicies {
		out = append(out, o)
	}
	for _, o := range s.MCPRoutes {
		out = append(out, o)
	}
	return out
}

// checkTyped validates o as marshalled, then defaulted, and runs the Go validation.
func checkTyped(t *testing.T, all map[string]*crdtest.CRD, o object) {
	t.Helper()
	ctx := context.Background()
	for _, stage := range []string{"loaded", "defaulted"} {
		if stage == "defaulted" {
			o.Default()
			if errs := o.Validate(); len(errs) > 0 {
				t.Errorf("%T %s: Validate: %v", o, o.GetName(), errs.ToAggregate())
			}
		}
		js, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		obj := decode(t, js)
		kind, _ := obj["kind"].(string)
		c := all[kind]
		if c == nil {
			t.Errorf("%T %s: marshalled kind %q has no CRD", o, o.GetName(), kind)
			continue
		}
		if errs := c.Validate(ctx, obj); len(errs) > 0 {
			t.Errorf("%s %s (%s by the Go types) is rejected:\n%s\n%s", kind, o.GetName(), stage, crdtest.ErrString(errs), js)
		}
	}
}

func name(obj map[string]any) any {
	if m, ok := obj["metadata"].(map[string]any); ok {
		return m["name"]
	}
	return nil
}

// splitDocs splits a multi-document YAML stream as kubectl does.
func splitDocs(t *testing.T, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
}

// decode turns YAML or JSON into what the API server validates: a map with int64 and
// float64 numbers. An empty document is nil.
func decode(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	return obj
}

// varRef is ${NAME} or ${NAME:-default}; "$${" writes "${".
var varRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv does what internal/resource does to a document before parsing it (see its
// package documentation): ${NAME} is the variable, ${NAME:-default} the default when the
// variable is unset or empty, $${ a literal ${.
func expandEnv(t *testing.T, doc []byte, env func(string) (string, bool)) []byte {
	t.Helper()
	return varRef.ReplaceAllFunc(doc, func(m []byte) []byte {
		if string(m) == "$${" {
			return []byte("${")
		}
		sm := varRef.FindSubmatch(m)
		v, ok := env(string(sm[1]))
		if (!ok || v == "") && sm[2] != nil {
			return sm[3]
		}
		if !ok {
			t.Fatalf("${%s} is unset and has no default", sm[1])
		}
		return []byte(v)
	})
}
