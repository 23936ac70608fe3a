package crdtest_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// repoRoot is the module root, found from this file's location.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from %s: %v", file, err)
	}
	return root
}

// crdDir is where `go generate ./api/...` writes the CRDs.
func crdDir(t *testing.T) string {
	return filepath.Join(repoRoot(t), "deploy", "helm", "sluice", "crds")
}

// TestGeneratedUpToDate runs controller-gen as //go:generate in api/v1alpha1/doc.go does,
// into a temporary directory, and compares its output with the committed files.
func TestGeneratedUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen (builds it on first use)")
	}
	root := repoRoot(t)
	api := filepath.Join(root, "api", "v1alpha1")
	tmp := t.TempDir()
	crds := filepath.Join(tmp, "crds")
	obj := filepath.Join(tmp, "object")

	want := goGenerateArgs(t, filepath.Join(api, "doc.go"))
	// The same generators and options, written elsewhere.
	var args []string
	for _, a := range want {
		if strings.HasPrefix(a, "output:") {
			continue
		}
		args = append(args, a)
	}
	args = append(args, "output:crd:artifacts:config="+crds, "output:object:dir="+obj)
	cmd := exec.Command("go", append([]string{"tool", "controller-gen"}, args...)...)
	cmd.Dir = api
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	stale := compareDir(t, crds, crdDir(t), "*.yaml")
	stale = append(stale, compareFile(t, filepath.Join(obj, "zz_generated.deepcopy.go"), filepath.Join(api, "zz_generated.deepcopy.go"))...)
	if len(stale) > 0 {
		t.Errorf("generated files are stale; run go generate ./api/...\n%s", strings.Join(stale, "\n"))
	}
}

// goGenerateArgs returns the controller-gen arguments of the //go:generate line in file,
// so that the test cannot drift from it.
func goGenerateArgs(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "//go:generate go tool controller-gen "
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			args := strings.Fields(rest)
			var hasCRD, hasObject, hasOutput bool
			for _, a := range args {
				hasCRD = hasCRD || a == "crd" || strings.HasPrefix(a, "crd:")
				hasObject = hasObject || a == "object" || strings.HasPrefix(a, "object:")
				hasOutput = hasOutput || a == "output:crd:artifacts:config=../../deploy/helm/sluice/crds"
			}
			if !hasCRD || !hasObject || !hasOutput {
				t.Fatalf("%s: %q should run the object and crd generators into ../../deploy/helm/sluice/crds", file, line)
			}
			return args
		}
	}
	t.Fatalf("%s: no %q line", file, prefix)
	return nil
}

// compareDir reports files that differ, are missing or are extra in have (the
// committed directory) against want (freshly generated).
func compareDir(t *testing.T, want, have, pattern string) []string {
	t.Helper()
	names := func(dir string) map[string]bool {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, f := range m {
			out[filepath.Base(f)] = true
		}
		return out
	}
	w, h := names(want), names(have)
	if len(w) == 0 {
		t.Fatalf("controller-gen wrote no %s into %s", pattern, want)
	}
	var all []string
	for n := range w {
		all = append(all, n)
	}
	for n := range h {
		if !w[n] {
			all = append(all, n)
		}
	}
	sort.Strings(all)
	var stale []string
	for _, n := range all {
		switch {
		case !h[n]:
			stale = append(stale, "missing: "+filepath.Join(have, n))
		case !w[n]:
			stale = append(stale, "not generated (remove it): "+filepath.Join(have, n))
		default:
			stale = append(stale, compareFile(t, filepath.Join(want, n), filepath.Join(have, n))...)
		}
	}
	return stale
}

func compareFile(t *testing.T, want, have string) []string {
	t.Helper()
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	h, err := os.ReadFile(have)
	if err != nil {
		return []string{"missing: " + have}
	}
	if !bytes.Equal(w, h) {
		return []string{"differs: " + have + firstDiff(w, h)}
	}
	return nil
}

// firstDiff shows the first line that differs.
func firstDiff(want, have []byte) string {
	wl, hl := strings.Split(string(want), "\n"), strings.Split(string(have), "\n")
	for i := 0; i < len(wl) || i < len(hl); i++ {
		var a, b string
		if i < len(wl) {
			a = wl[i]
		}
		if i < len(hl) {
			b = hl[i]
		}
		if a != b {
			return fmt.Sprintf("\n\tline %d: generated %q\n\t         committed %q", i+1, clip(a), clip(b))
		}
	}
	return ""
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
