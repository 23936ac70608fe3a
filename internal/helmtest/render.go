// Package helmtest renders the Helm chart in deploy/helm/sluice with the Helm Go library
// (no cluster, no helm binary) and checks what it produces. Its tests also keep the plain
// manifests in deploy/manifests in step with the chart:
//
//	go test ./internal/helmtest -run TestManifestsUpToDate -update
package helmtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Release name, namespace and Kubernetes version the plain manifests are rendered for.
const (
	ReleaseName = "sluice"
	Namespace   = "sluice-system"
	KubeVersion = "v1.31.0"
)

// RepoRoot is the module root, found from this file's location.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("helmtest: no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// ChartDir is deploy/helm/sluice.
func ChartDir() string { return filepath.Join(RepoRoot(), "deploy", "helm", "sluice") }

// ManifestsDir is deploy/manifests.
func ManifestsDir() string { return filepath.Join(RepoRoot(), "deploy", "manifests") }

// Rendered is one rendering of the chart.
type Rendered struct {
	// Manifest is the templates' output as `helm template` prints it (without CRDs),
	// in Helm's install order.
	Manifest string
	// Notes is the rendered NOTES.txt.
	Notes string
	// Objects are Manifest's documents, decoded.
	Objects []*unstructured.Unstructured
	// CRDs are the chart's crds/ files, name to content.
	CRDs map[string][]byte
}

// LoadChart loads and validates the chart directory.
func LoadChart() (*chart.Chart, error) {
	chrt, err := loader.Load(ChartDir())
	if err != nil {
		return nil, err
	}
	if err := chrt.Validate(); err != nil {
		return nil, fmt.Errorf("chart %s: %w", ChartDir(), err)
	}
	return chrt, nil
}

// Render renders the chart like `helm template RELEASE deploy/helm/sluice -n NAMESPACE`
// with vals over the chart's defaults: values coalesced, the chart's kubeVersion checked,
// templates rendered in strict mode (a reference to an undefined value is an error),
// NOTES.txt apart, documents in Helm's install order with "# Source:" comments.
func Render(vals map[string]any, namespace string) (*Rendered, error) {
	chrt, err := LoadChart()
	if err != nil {
		return nil, err
	}
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return nil, err
	}
	if c := chrt.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, kv.Version) {
		return nil, fmt.Errorf("chart requires kubeVersion %s, not %s", c, kv.Version)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kv
	if vals == nil {
		vals = map[string]any{}
	}
	opts := chartutil.ReleaseOptions{Name: ReleaseName, Namespace: namespace, Revision: 1, IsInstall: true}
	top, err := chartutil.ToRenderValues(chrt, vals, opts, caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Engine{Strict: true}.Render(chrt, top)
	if err != nil {
		return nil, err
	}
	r := &Rendered{CRDs: map[string][]byte{}}
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.Notes = content
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("the chart has %d hooks; it should have none", len(hooks))
	}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	r.Manifest = b.String()
	for _, crd := range chrt.CRDObjects() {
		r.CRDs[filepath.Base(crd.Filename)] = crd.File.Data
	}
	r.Objects, err = Decode(r.Manifest)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Decode splits a multi-document YAML stream and decodes each non-empty document.
func Decode(manifest string) ([]*unstructured.Unstructured, error) {
	docs := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	// SplitManifests names documents manifest-0, manifest-1, ...: keep their order.
	sort.Slice(keys, func(i, j int) bool {
		var a, b int
		fmt.Sscanf(keys[i], "manifest-%d", &a)
		fmt.Sscanf(keys[j], "manifest-%d", &b)
		return a < b
	})
	var out []*unstructured.Unstructured
	for _, k := range keys {
		var obj map[string]any
		if err := yaml.UnmarshalStrict([]byte(docs[k]), &obj); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", k, err, docs[k])
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out, nil
}

// Header opens deploy/manifests/sluice.yaml.
const Header = `# Sluice %s: plain Kubernetes manifests rendered from the Helm chart deploy/helm/sluice
# with its default values (release %q, namespace %q). Do not edit: change the chart, then run
#   go test ./internal/helmtest -run TestManifestsUpToDate -update
# Apply the CRDs first: kubectl apply -f deploy/manifests/crds/ && kubectl apply -f deploy/manifests/sluice.yaml
`

// PlainManifests renders deploy/manifests/sluice.yaml (the Namespace, then the chart's
// objects with default values) and the CRD files to copy to deploy/manifests/crds/.
func PlainManifests() (sluiceYAML []byte, crds map[string][]byte, err error) {
	r, err := Render(nil, Namespace)
	if err != nil {
		return nil, nil, err
	}
	chrt, err := LoadChart()
	if err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, Header, chrt.Metadata.AppVersion, ReleaseName, Namespace)
	fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    app.kubernetes.io/part-of: sluice\n    pod-security.kubernetes.io/enforce: restricted\n", Namespace)
	m := strings.TrimSpace(r.Manifest)
	if !strings.HasPrefix(m, "---") {
		b.WriteString("---\n")
	}
	b.WriteString(m)
	b.WriteString("\n")
	return b.Bytes(), r.CRDs, nil
}

// WriteManifests regenerates deploy/manifests: sluice.yaml and crds/ (a copy of the chart's).
func WriteManifests() error {
	sluiceYAML, crds, err := PlainManifests()
	if err != nil {
		return err
	}
	dir := ManifestsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sluice.yaml"), sluiceYAML, 0o644); err != nil {
		return err
	}
	crdDir := filepath.Join(dir, "crds")
	if err := os.RemoveAll(crdDir); err != nil {
		return err
	}
	if len(crds) == 0 {
		return nil
	}
	if err := os.MkdirAll(crdDir, 0o755); err != nil {
		return err
	}
	for name, data := range crds {
		if err := os.WriteFile(filepath.Join(crdDir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
