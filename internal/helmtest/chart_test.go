package helmtest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite deploy/manifests from the chart")

// scenario is one set of values the chart must render cleanly with.
type scenario struct {
	name   string
	values string // YAML over the chart's defaults
}

var scenarios = []scenario{
	{"defaults", ``},
	{"single replica", `replicas: 1`},
	{"autoscaling", `autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 8}`},
	{"service monitor", `serviceMonitor: {enabled: true, labels: {release: prom}}`},
	{"admin service", `{adminService: {enabled: true}, serviceMonitor: {enabled: true}}`},
	{"files mode", `
mode: files
files:
  resources:
    gateway.yaml: |
      apiVersion: sluice.dev/v1alpha1
      kind: Backend
      metadata: {name: mock}
      spec: {schema: Mock}
    route.yaml:
      apiVersion: sluice.dev/v1alpha1
      kind: ModelRoute
      metadata: {name: demo}
      spec: {rules: [{backendRefs: [{name: mock}]}]}
`},
	{"extproc", `{extproc: {enabled: true}, files: {existingConfigMap: pipeline}}`},
	{"watch namespace", `watchNamespace: team-a`},
	{"everything", `
adminToken: {existingSecret: sluice-admin, key: tok}
redis: {existingSecret: sluice-redis, key: url}
otel: {endpoint: "http://otel-collector.observability:4318", sampleRatio: 0.25}
usage: {postgres: {existingSecret: sluice-usage-db}}
autoscaling: {enabled: true}
serviceMonitor: {enabled: true}
adminService: {enabled: true}
extproc: {enabled: true}
files: {resources: {a.yaml: "apiVersion: sluice.dev/v1alpha1\nkind: Backend\nmetadata: {name: m}\nspec: {schema: Mock}\n"}}
watchNamespace: team-a
preStopSleepSeconds: 5
extraArgs: ["--otlp-endpoint=http://x:4318"]
`},
}

func values(t *testing.T, s string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValues([]byte(s))
	if err != nil {
		t.Fatalf("values %q: %v", s, err)
	}
	return v.AsMap()
}

func render(t *testing.T, vals string) *Rendered {
	t.Helper()
	r, err := Render(values(t, vals), "gateway")
	if err != nil {
		t.Fatalf("render with %q: %v", vals, err)
	}
	return r
}

// find returns the rendered objects of a kind (and, when name is not empty, that name).
func find(r *Rendered, kind, name string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range r.Objects {
		if o.GetKind() == kind && (name == "" || o.GetName() == name) {
			out = append(out, o)
		}
	}
	return out
}

func one(t *testing.T, r *Rendered, kind, name string) *unstructured.Unstructured {
	t.Helper()
	objs := find(r, kind, name)
	if len(objs) != 1 {
		t.Fatalf("want one %s %q, got %d", kind, name, len(objs))
	}
	return objs[0]
}

func get(t *testing.T, o *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, ok, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s %s: no %s (%v)", o.GetKind(), o.GetName(), strings.Join(path, "."), err)
	}
	return v
}

func has(o *unstructured.Unstructured, path ...string) bool {
	_, ok, _ := unstructured.NestedFieldNoCopy(o.Object, path...)
	return ok
}

// container returns the first container of a Deployment.
func container(t *testing.T, d *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs := get(t, d, "spec", "template", "spec", "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers, want 1", d.GetName(), len(cs))
	}
	return cs[0].(map[string]any)
}

func args(t *testing.T, d *unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	for _, a := range container(t, d)["args"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

func envVars(t *testing.T, d *unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	env, _ := container(t, d)["env"].([]any)
	for _, e := range env {
		m := e.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func TestChartMetadata(t *testing.T) {
	chrt, err := LoadChart()
	if err != nil {
		t.Fatal(err)
	}
	md := chrt.Metadata
	if md.APIVersion != "v2" || md.Name != "sluice" || md.Version != "0.1.0" || md.AppVersion != "0.1.0" {
		t.Errorf("Chart.yaml: apiVersion %q name %q version %q appVersion %q", md.APIVersion, md.Name, md.Version, md.AppVersion)
	}
	for _, tpl := range chrt.Templates {
		if strings.Contains(string(tpl.Data), "CustomResourceDefinition") {
			t.Errorf("%s: CRDs belong in crds/, not in templates", tpl.Name)
		}
	}
}

// TestLint runs Helm's own lint rules (chart file, values, templates, deprecated APIs)
// for every scenario; any warning or error fails.
func TestLint(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			l := lint.AllWithKubeVersion(ChartDir(), values(t, s.values), "gateway", kv)
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Error(m.Error())
				} else {
					t.Log(m.Error())
				}
			}
		})
	}
}

// TestEveryScenario checks what must hold whatever the values: labels, namespaces,
// security contexts, probes, least-privilege RBAC, no inline secrets, selectors that match.
func TestEveryScenario(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			r := render(t, s.values)
			if len(r.Objects) == 0 {
				t.Fatal("nothing rendered")
			}
			checkLabels(t, r)
			checkPods(t, r)
			checkRBAC(t, r)
			checkNoInlineSecrets(t, r)
			checkSelectors(t, r)
			if strings.TrimSpace(r.Notes) == "" {
				t.Error("NOTES.txt rendered empty")
			}
		})
	}
}

var clusterScoped = map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "Namespace": true, "CustomResourceDefinition": true}

func checkLabels(t *testing.T, r *Rendered) {
	t.Helper()
	want := map[string]string{
		"app.kubernetes.io/name":       "sluice",
		"app.kubernetes.io/instance":   ReleaseName,
		"app.kubernetes.io/version":    "0.1.0",
		"app.kubernetes.io/part-of":    "sluice",
		"app.kubernetes.io/managed-by": "Helm",
		"helm.sh/chart":                "sluice-0.1.0",
	}
	for _, o := range r.Objects {
		if o.GetKind() == "CustomResourceDefinition" {
			t.Errorf("CRD %s rendered from templates: it belongs in crds/ only", o.GetName())
		}
		labels := o.GetLabels()
		for k, v := range want {
			if labels[k] != v {
				t.Errorf("%s %s: label %s = %q, want %q", o.GetKind(), o.GetName(), k, labels[k], v)
			}
		}
		if ns := o.GetNamespace(); clusterScoped[o.GetKind()] != (ns == "") {
			t.Errorf("%s %s: namespace %q", o.GetKind(), o.GetName(), ns)
		}
		if o.GetAPIVersion() == "" || o.GetName() == "" {
			t.Errorf("object without apiVersion or name: %v", o.Object)
		}
	}
}

func checkPods(t *testing.T, r *Rendered) {
	t.Helper()
	for _, d := range find(r, "Deployment", "") {
		labels := get(t, d, "spec", "template", "metadata", "labels").(map[string]any)
		for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"} {
			if labels[k] == nil {
				t.Errorf("%s: pod label %s missing", d.GetName(), k)
			}
		}
		pod := get(t, d, "spec", "template", "spec").(map[string]any)
		psc := pod["securityContext"].(map[string]any)
		if psc["runAsNonRoot"] != true || psc["runAsUser"] != float64(65532) {
			t.Errorf("%s: pod securityContext %v", d.GetName(), psc)
		}
		if get(t, d, "spec", "template", "spec", "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
			t.Errorf("%s: pod seccompProfile not RuntimeDefault", d.GetName())
		}
		c := container(t, d)
		sc := c["securityContext"].(map[string]any)
		for k, v := range map[string]any{
			"runAsNonRoot": true, "runAsUser": float64(65532), "readOnlyRootFilesystem": true,
			"allowPrivilegeEscalation": false,
		} {
			if sc[k] != v {
				t.Errorf("%s: securityContext.%s = %v, want %v", d.GetName(), k, sc[k], v)
			}
		}
		if drop, _ := sc["capabilities"].(map[string]any)["drop"].([]any); len(drop) != 1 || drop[0] != "ALL" {
			t.Errorf("%s: capabilities.drop = %v, want [ALL]", d.GetName(), drop)
		}
		if add := sc["capabilities"].(map[string]any)["add"]; add != nil {
			t.Errorf("%s: capabilities.add = %v", d.GetName(), add)
		}
		if sc["seccompProfile"].(map[string]any)["type"] != "RuntimeDefault" {
			t.Errorf("%s: container seccompProfile not RuntimeDefault", d.GetName())
		}
		if pod["hostNetwork"] != nil || pod["hostPID"] != nil || sc["privileged"] != nil {
			t.Errorf("%s: host namespaces or privileged set", d.GetName())
		}
		res := c["resources"].(map[string]any)
		for _, k := range []string{"requests", "limits"} {
			m, _ := res[k].(map[string]any)
			if m["cpu"] == nil || m["memory"] == nil {
				t.Errorf("%s: resources.%s = %v, want cpu and memory", d.GetName(), k, m)
			}
		}
		if c["livenessProbe"] == nil || c["readinessProbe"] == nil {
			t.Errorf("%s: probes missing", d.GetName())
		}
		if !strings.HasPrefix(c["image"].(string), "ghcr.io/sluice-gateway/sluice:") {
			t.Errorf("%s: image %v", d.GetName(), c["image"])
		}
		// Every mount names a volume of the pod.
		vols := map[string]bool{}
		for _, v := range pod["volumes"].([]any) {
			vols[v.(map[string]any)["name"].(string)] = true
		}
		for _, m := range c["volumeMounts"].([]any) {
			if n := m.(map[string]any)["name"].(string); !vols[n] {
				t.Errorf("%s: mount of unknown volume %q", d.GetName(), n)
			}
		}
		// The drain must finish before Kubernetes kills the pod.
		grace := get(t, d, "spec", "template", "spec", "terminationGracePeriodSeconds").(float64)
		if grace <= 30 {
			t.Errorf("%s: terminationGracePeriodSeconds %v, want more than the 30s drain", d.GetName(), grace)
		}
	}
	gw := gateway(t, r)
	c := container(t, gw)
	if p := c["livenessProbe"].(map[string]any)["httpGet"].(map[string]any); p["path"] != "/healthz" || p["port"] != "http" {
		t.Errorf("liveness probe %v, want /healthz on http", p)
	}
	if p := c["readinessProbe"].(map[string]any)["httpGet"].(map[string]any); p["path"] != "/readyz" || p["port"] != "http" {
		t.Errorf("readiness probe %v, want /readyz on http", p)
	}
	ports := map[string]float64{}
	for _, p := range c["ports"].([]any) {
		m := p.(map[string]any)
		ports[m["name"].(string)] = m["containerPort"].(float64)
	}
	if ports["http"] != 8080 || ports["admin"] != 9090 {
		t.Errorf("container ports %v, want http 8080 and admin 9090", ports)
	}
	a := args(t, gw)
	for _, want := range []string{"--listen=0.0.0.0:8080", "--admin-listen=0.0.0.0:9090", "--drain-timeout=30s"} {
		if !slices.Contains(a, want) {
			t.Errorf("args %v lack %s", a, want)
		}
	}
}

func gateway(t *testing.T, r *Rendered) *unstructured.Unstructured {
	t.Helper()
	return one(t, r, "Deployment", "sluice")
}

// The least privilege the controller gets: (apiGroup, resource) -> verbs, exactly.
var allowedRBAC = map[string][]string{
	"sluice.dev/accesspolicies":           {"get", "list", "watch"},
	"sluice.dev/apikeys":                  {"get", "list", "watch"},
	"sluice.dev/backends":                 {"get", "list", "watch"},
	"sluice.dev/cachepolicies":            {"get", "list", "watch"},
	"sluice.dev/mcproutes":                {"get", "list", "watch"},
	"sluice.dev/modelroutes":              {"get", "list", "watch"},
	"sluice.dev/payloadprocessors":        {"get", "list", "watch"},
	"sluice.dev/ratelimitpolicies":        {"get", "list", "watch"},
	"sluice.dev/accesspolicies/status":    {"patch", "update"},
	"sluice.dev/apikeys/status":           {"patch", "update"},
	"sluice.dev/backends/status":          {"patch", "update"},
	"sluice.dev/cachepolicies/status":     {"patch", "update"},
	"sluice.dev/mcproutes/status":         {"patch", "update"},
	"sluice.dev/modelroutes/status":       {"patch", "update"},
	"sluice.dev/payloadprocessors/status": {"patch", "update"},
	"sluice.dev/ratelimitpolicies/status": {"patch", "update"},
	"/secrets":                            {"get", "list", "watch"},
	"/events":                             {"create", "patch"},
	"events.k8s.io/events":                {"create", "patch"},
	"coordination.k8s.io/leases":          {"create", "get", "update"},
	// only with gatewayAPI.enabled
	"gateway.networking.k8s.io/gatewayclasses":        {"get", "list", "watch"},
	"gateway.networking.k8s.io/gateways":              {"get", "list", "watch"},
	"gateway.networking.k8s.io/httproutes":            {"get", "list", "watch"},
	"gateway.networking.k8s.io/gatewayclasses/status": {"patch", "update"},
	"gateway.networking.k8s.io/gateways/status":       {"patch", "update"},
	"gateway.networking.k8s.io/httproutes/status":     {"patch", "update"},
}

// grants flattens a role's rules to "group/resource" -> sorted verbs.
func grants(t *testing.T, role *unstructured.Unstructured) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	rules, _ := role.Object["rules"].([]any)
	for _, rule := range rules {
		m := rule.(map[string]any)
		if m["resourceNames"] != nil || m["nonResourceURLs"] != nil {
			t.Errorf("%s: unexpected rule %v", role.GetName(), m)
		}
		for _, g := range m["apiGroups"].([]any) {
			for _, res := range m["resources"].([]any) {
				key := g.(string) + "/" + res.(string)
				for _, v := range m["verbs"].([]any) {
					if !slices.Contains(out[key], v.(string)) {
						out[key] = append(out[key], v.(string))
					}
				}
				sort.Strings(out[key])
			}
		}
	}
	return out
}

func checkRBAC(t *testing.T, r *Rendered) {
	t.Helper()
	roles := map[string]*unstructured.Unstructured{}
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, role := range find(r, kind, "") {
			roles[kind+"/"+role.GetNamespace()+"/"+role.GetName()] = role
			for key, verbs := range grants(t, role) {
				if strings.Contains(key, "*") || slices.Contains(verbs, "*") {
					t.Errorf("%s %s: wildcard in %s %v", kind, role.GetName(), key, verbs)
				}
				want, ok := allowedRBAC[key]
				if !ok {
					t.Errorf("%s %s: grants %s %v, which the controller does not need", kind, role.GetName(), key, verbs)
				} else if !slices.Equal(verbs, want) {
					t.Errorf("%s %s: %s verbs %v, want exactly %v", kind, role.GetName(), key, verbs, want)
				}
			}
		}
	}
	sa := gateway(t, r).Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["serviceAccountName"]
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, b := range find(r, kind, "") {
			ref := b.Object["roleRef"].(map[string]any)
			ns := ""
			if ref["kind"] == "Role" {
				ns = b.GetNamespace()
			}
			if roles[ref["kind"].(string)+"/"+ns+"/"+ref["name"].(string)] == nil {
				t.Errorf("%s %s: roleRef %v names no rendered role", kind, b.GetName(), ref)
			}
			for _, s := range b.Object["subjects"].([]any) {
				m := s.(map[string]any)
				if m["kind"] != "ServiceAccount" || m["name"] != sa || m["namespace"] != "gateway" {
					t.Errorf("%s %s: subject %v, want the gateway's ServiceAccount", kind, b.GetName(), m)
				}
			}
		}
	}
}

// checkNoInlineSecrets: the chart creates no Secret and puts no credential in a plain env value.
func checkNoInlineSecrets(t *testing.T, r *Rendered) {
	t.Helper()
	if s := find(r, "Secret", ""); len(s) > 0 {
		t.Errorf("the chart rendered %d Secrets; it must only reference existing ones", len(s))
	}
	for _, d := range find(r, "Deployment", "") {
		for name, e := range envVars(t, d) {
			if _, inline := e["value"]; inline && (strings.Contains(name, "TOKEN") || strings.Contains(name, "POSTGRES") || strings.Contains(name, "PASSWORD")) {
				t.Errorf("%s: env %s has an inline value", d.GetName(), name)
			}
		}
		for _, a := range args(t, d) {
			if strings.HasPrefix(a, "--admin-token=") || strings.HasPrefix(a, "--usage-postgres=") {
				t.Errorf("%s: credential on the command line: %s", d.GetName(), a)
			}
		}
	}
}

func matches(selector, labels map[string]any) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// checkSelectors: every Service and PDB selects pods of exactly one Deployment, every
// ServiceMonitor selects a Service with an admin port.
func checkSelectors(t *testing.T, r *Rendered) {
	t.Helper()
	podLabels := map[string]map[string]any{}
	for _, d := range find(r, "Deployment", "") {
		pl := get(t, d, "spec", "template", "metadata", "labels").(map[string]any)
		sel := get(t, d, "spec", "selector", "matchLabels").(map[string]any)
		if !matches(sel, pl) {
			t.Errorf("Deployment %s: selector %v does not match its pods %v", d.GetName(), sel, pl)
		}
		podLabels[d.GetName()] = pl
	}
	selects := func(kind, name string, sel map[string]any) {
		n := 0
		for _, pl := range podLabels {
			if matches(sel, pl) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s %s: selector %v matches %d Deployments' pods, want 1", kind, name, sel, n)
		}
	}
	for _, s := range find(r, "Service", "") {
		selects("Service", s.GetName(), get(t, s, "spec", "selector").(map[string]any))
	}
	for _, p := range find(r, "PodDisruptionBudget", "") {
		selects("PodDisruptionBudget", p.GetName(), get(t, p, "spec", "selector", "matchLabels").(map[string]any))
	}
	for _, sm := range find(r, "ServiceMonitor", "") {
		sel := get(t, sm, "spec", "selector", "matchLabels").(map[string]any)
		admin := 0
		for _, s := range find(r, "Service", "") {
			if !matches(sel, toAny(s.GetLabels())) {
				continue
			}
			for _, p := range get(t, s, "spec", "ports").([]any) {
				if p.(map[string]any)["name"] == "admin" {
					admin++
				}
			}
		}
		if admin != 1 {
			t.Errorf("ServiceMonitor %s selects %d Services with an admin port, want 1", sm.GetName(), admin)
		}
	}
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func kinds(r *Rendered) []string {
	var out []string
	for _, o := range r.Objects {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

func TestDefaults(t *testing.T) {
	r := render(t, "")
	want := []string{
		"ClusterRole/sluice", "ClusterRoleBinding/sluice", "Deployment/sluice",
		"PodDisruptionBudget/sluice", "Role/sluice-leader-election", "RoleBinding/sluice-leader-election",
		"Service/sluice", "ServiceAccount/sluice",
	}
	if got := kinds(r); !slices.Equal(got, want) {
		t.Errorf("objects\n got %v\nwant %v", got, want)
	}
	d := gateway(t, r)
	if get(t, d, "spec", "replicas") != float64(2) {
		t.Errorf("replicas %v, want 2", get(t, d, "spec", "replicas"))
	}
	if get(t, d, "spec", "template", "spec", "terminationGracePeriodSeconds") != float64(45) {
		t.Errorf("terminationGracePeriodSeconds %v, want 45", get(t, d, "spec", "template", "spec", "terminationGracePeriodSeconds"))
	}
	if get(t, d, "spec", "template", "spec", "automountServiceAccountToken") != true {
		t.Error("controller mode needs the service account token")
	}
	a := args(t, d)
	if a[0] != "controller" {
		t.Errorf("args %v, want controller first", a)
	}
	for _, want := range []string{"--leader-elect", "--usage-file=/var/lib/sluice/usage.jsonl"} {
		if !slices.Contains(a, want) {
			t.Errorf("args %v lack %s", a, want)
		}
	}
	for _, a := range a {
		if strings.HasPrefix(a, "--namespace") || strings.HasPrefix(a, "--admin-token-file") {
			t.Errorf("unexpected arg %s", a)
		}
	}
	// The usage file lives on an emptyDir: the root filesystem is read-only.
	pod := get(t, d, "spec", "template", "spec").(map[string]any)
	found := false
	for _, v := range pod["volumes"].([]any) {
		m := v.(map[string]any)
		if m["name"] == "usage" && m["emptyDir"] != nil {
			found = true
		}
	}
	if !found {
		t.Error("no emptyDir volume for usage records")
	}
	if p := one(t, r, "PodDisruptionBudget", "sluice"); get(t, p, "spec", "minAvailable") != float64(1) {
		t.Errorf("PDB minAvailable %v, want 1", get(t, p, "spec", "minAvailable"))
	}
	svc := one(t, r, "Service", "sluice")
	ports := map[string]float64{}
	for _, p := range get(t, svc, "spec", "ports").([]any) {
		m := p.(map[string]any)
		ports[m["name"].(string)] = m["port"].(float64)
	}
	if len(ports) != 2 || ports["http"] != 8080 || ports["admin"] != 9090 {
		t.Errorf("Service ports %v, want http 8080, admin 9090", ports)
	}
	// The reconciler records events.k8s.io events about the resources; leader election
	// records core/v1 events beside its Lease, in the release namespace.
	main, le := grants(t, one(t, r, "ClusterRole", "sluice")), grants(t, one(t, r, "Role", "sluice-leader-election"))
	if main["events.k8s.io/events"] == nil || main["/events"] != nil {
		t.Errorf("ClusterRole events grants: %v", main)
	}
	if len(le) != 2 || le["coordination.k8s.io/leases"] == nil || le["/events"] == nil {
		t.Errorf("leader-election Role grants %v, want leases and core events only", le)
	}
	if ns := one(t, r, "Role", "sluice-leader-election").GetNamespace(); ns != "gateway" {
		t.Errorf("leader-election Role in %q, want the release namespace", ns)
	}
	if sa := one(t, r, "ServiceAccount", "sluice"); sa.Object["automountServiceAccountToken"] != false {
		t.Error("ServiceAccount should not automount its token (the controller pod opts in)")
	}
}

func TestSingleReplica(t *testing.T) {
	r := render(t, `replicas: 1`)
	if p := find(r, "PodDisruptionBudget", ""); len(p) != 0 {
		t.Error("a PodDisruptionBudget with one replica blocks node drains")
	}
	if slices.Contains(args(t, gateway(t, r)), "--leader-elect") {
		t.Error("--leader-elect with one replica")
	}
	if len(find(r, "Role", "")) != 0 {
		t.Error("leader-election Role rendered with one replica")
	}
	if get(t, gateway(t, r), "spec", "replicas") != float64(1) {
		t.Error("replicas not 1")
	}
}

func TestAutoscaling(t *testing.T) {
	r := render(t, `autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 8, targetCPUUtilizationPercentage: 60}`)
	h := one(t, r, "HorizontalPodAutoscaler", "sluice")
	if h.GetAPIVersion() != "autoscaling/v2" {
		t.Errorf("HPA apiVersion %s", h.GetAPIVersion())
	}
	if get(t, h, "spec", "minReplicas") != float64(3) || get(t, h, "spec", "maxReplicas") != float64(8) {
		t.Errorf("HPA replicas %v..%v", get(t, h, "spec", "minReplicas"), get(t, h, "spec", "maxReplicas"))
	}
	if ref := get(t, h, "spec", "scaleTargetRef").(map[string]any); ref["kind"] != "Deployment" || ref["name"] != "sluice" {
		t.Errorf("scaleTargetRef %v", ref)
	}
	m := get(t, h, "spec", "metrics").([]any)[0].(map[string]any)["resource"].(map[string]any)
	if m["name"] != "cpu" || m["target"].(map[string]any)["averageUtilization"] != float64(60) {
		t.Errorf("HPA metric %v", m)
	}
	d := gateway(t, r)
	if has(d, "spec", "replicas") {
		t.Error("Deployment sets replicas while the HPA owns them")
	}
	if !slices.Contains(args(t, d), "--leader-elect") {
		t.Error("no --leader-elect under autoscaling")
	}
	one(t, r, "PodDisruptionBudget", "sluice")
}

// TestGatewayAPI: off by default; on, the controller gets --gateway-class and read access
// to the Gateway API kinds with write access to their status, nothing more.
func TestGatewayAPI(t *testing.T) {
	if slices.Contains(args(t, gateway(t, render(t, ""))), "--gateway-class") {
		t.Error("--gateway-class by default")
	}
	r := render(t, `gatewayAPI: {enabled: true}`)
	if !slices.Contains(args(t, gateway(t, r)), "--gateway-class") {
		t.Error("no --gateway-class with gatewayAPI.enabled")
	}
	role := one(t, r, "ClusterRole", "sluice")
	g := grants(t, role)
	for _, res := range []string{"gatewayclasses", "gateways", "httproutes"} {
		if !slices.Equal(g["gateway.networking.k8s.io/"+res], []string{"get", "list", "watch"}) ||
			!slices.Equal(g["gateway.networking.k8s.io/"+res+"/status"], []string{"patch", "update"}) {
			t.Errorf("%s: %v / %v", res, g["gateway.networking.k8s.io/"+res], g["gateway.networking.k8s.io/"+res+"/status"])
		}
	}
	checkRBAC(t, r)
}

func TestServiceMonitor(t *testing.T) {
	if sm := find(render(t, ""), "ServiceMonitor", ""); len(sm) != 0 {
		t.Error("ServiceMonitor rendered by default")
	}
	r := render(t, `serviceMonitor: {enabled: true, interval: 15s, labels: {release: prom}}`)
	sm := one(t, r, "ServiceMonitor", "sluice")
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion %s", sm.GetAPIVersion())
	}
	if sm.GetLabels()["release"] != "prom" {
		t.Error("serviceMonitor.labels not applied")
	}
	ep := get(t, sm, "spec", "endpoints").([]any)[0].(map[string]any)
	if ep["port"] != "admin" || ep["path"] != "/metrics" || ep["interval"] != "15s" {
		t.Errorf("endpoint %v", ep)
	}
}

func TestAdminService(t *testing.T) {
	r := render(t, `adminService: {enabled: true}`)
	for _, p := range get(t, one(t, r, "Service", "sluice"), "spec", "ports").([]any) {
		if p.(map[string]any)["name"] == "admin" {
			t.Error("main Service still has the admin port")
		}
	}
	s := one(t, r, "Service", "sluice-admin")
	ports := get(t, s, "spec", "ports").([]any)
	if len(ports) != 1 || ports[0].(map[string]any)["name"] != "admin" || get(t, s, "spec", "type") != "ClusterIP" {
		t.Errorf("admin Service %v", s.Object["spec"])
	}
}

func TestFilesMode(t *testing.T) {
	r := render(t, scenarios[5].values)
	cm := one(t, r, "ConfigMap", "sluice-files")
	data := cm.Object["data"].(map[string]any)
	if len(data) != 2 {
		t.Fatalf("ConfigMap data keys %v", data)
	}
	for name, content := range data {
		objs, err := Decode(content.(string))
		if err != nil || len(objs) != 1 || objs[0].GetAPIVersion() != "sluice.dev/v1alpha1" {
			t.Errorf("%s: %v %v\n%s", name, err, objs, content)
		}
	}
	d := gateway(t, r)
	a := args(t, d)
	if a[0] != "serve" || !slices.Contains(a, "--filename=/etc/sluice") || slices.Contains(a, "--leader-elect") {
		t.Errorf("args %v", a)
	}
	if get(t, d, "spec", "template", "spec", "automountServiceAccountToken") != false {
		t.Error("files mode mounts a service account token")
	}
	for _, kind := range []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} {
		if n := len(find(r, kind, "")); n != 0 {
			t.Errorf("files mode renders %d %s", n, kind)
		}
	}
	mounted := false
	for _, m := range container(t, d)["volumeMounts"].([]any) {
		mm := m.(map[string]any)
		if mm["mountPath"] == "/etc/sluice" && mm["readOnly"] == true {
			mounted = true
		}
	}
	if !mounted {
		t.Error("resources not mounted read-only at /etc/sluice")
	}
	one(t, r, "PodDisruptionBudget", "sluice")

	// An existing ConfigMap instead.
	r = render(t, `{mode: files, files: {existingConfigMap: my-resources}}`)
	if len(find(r, "ConfigMap", "")) != 0 {
		t.Error("ConfigMap rendered with files.existingConfigMap")
	}
	found := false
	for _, v := range get(t, gateway(t, r), "spec", "template", "spec", "volumes").([]any) {
		if cm, _ := v.(map[string]any)["configMap"].(map[string]any); cm["name"] == "my-resources" {
			found = true
		}
	}
	if !found {
		t.Error("files.existingConfigMap not mounted")
	}
}

func TestExtproc(t *testing.T) {
	if n := len(find(render(t, ""), "Deployment", "")); n != 1 {
		t.Errorf("%d Deployments by default, want 1", n)
	}
	r := render(t, `{extproc: {enabled: true, port: 9100}, files: {resources: {"p.yaml": "kind: Backend"}}}`)
	d := one(t, r, "Deployment", "sluice-extproc")
	a := args(t, d)
	if a[0] != "extproc" || !slices.Contains(a, "--listen=0.0.0.0:9100") || !slices.Contains(a, "--filename=/etc/sluice") {
		t.Errorf("extproc args %v", a)
	}
	// It reads files, never the API; its resources come from the chart's ConfigMap.
	if get(t, d, "spec", "template", "spec", "automountServiceAccountToken") != false {
		t.Error("extproc mounts a service account token")
	}
	one(t, r, "ConfigMap", "sluice-files")
	if p := container(t, d)["readinessProbe"].(map[string]any)["grpc"].(map[string]any); p["port"] != float64(9100) {
		t.Errorf("extproc readiness probe %v, want gRPC health on 9100", p)
	}
	// The gateway stays in controller mode, without the files.
	if ga := args(t, gateway(t, r)); ga[0] != "controller" || slices.Contains(ga, "--filename=/etc/sluice") {
		t.Errorf("gateway args %v", ga)
	}
	s := one(t, r, "Service", "sluice-extproc")
	p := get(t, s, "spec", "ports").([]any)[0].(map[string]any)
	if p["name"] != "grpc" || p["port"] != float64(9100) || p["appProtocol"] != "kubernetes.io/h2c" {
		t.Errorf("extproc Service port %v", p)
	}
	one(t, r, "PodDisruptionBudget", "sluice-extproc")
}

func TestWatchNamespace(t *testing.T) {
	r := render(t, `watchNamespace: team-a`)
	if n := len(find(r, "ClusterRole", "")) + len(find(r, "ClusterRoleBinding", "")); n != 0 {
		t.Errorf("%d cluster-scoped RBAC objects with watchNamespace", n)
	}
	role := one(t, r, "Role", "sluice")
	if role.GetNamespace() != "team-a" {
		t.Errorf("Role in %q, want team-a", role.GetNamespace())
	}
	if g := grants(t, role); g["/secrets"] == nil || g["sluice.dev/backends"] == nil {
		t.Errorf("Role grants %v", g)
	}
	if b := one(t, r, "RoleBinding", "sluice"); b.GetNamespace() != "team-a" {
		t.Errorf("RoleBinding in %q", b.GetNamespace())
	}
	// The controller keeps its Lease in the watched namespace.
	if le := one(t, r, "Role", "sluice-leader-election"); le.GetNamespace() != "team-a" {
		t.Errorf("leader-election Role in %q, want team-a", le.GetNamespace())
	}
	if b := one(t, r, "RoleBinding", "sluice-leader-election"); b.GetNamespace() != "team-a" {
		t.Errorf("leader-election RoleBinding in %q, want team-a", b.GetNamespace())
	}
	if !slices.Contains(args(t, gateway(t, r)), "--namespace=team-a") {
		t.Error("no --namespace=team-a")
	}
}

func TestAdminTokenFromSecret(t *testing.T) {
	r := render(t, `adminToken: {existingSecret: sluice-admin, key: tok}`)
	d := gateway(t, r)
	if !slices.Contains(args(t, d), "--admin-token-file=/var/run/sluice/admin-token/tok") {
		t.Errorf("args %v", args(t, d))
	}
	var vol map[string]any
	for _, v := range get(t, d, "spec", "template", "spec", "volumes").([]any) {
		if m := v.(map[string]any); m["name"] == "admin-token" {
			vol = m
		}
	}
	if vol == nil {
		t.Fatal("no admin-token volume")
	}
	sec := vol["secret"].(map[string]any)
	if sec["secretName"] != "sluice-admin" {
		t.Errorf("admin-token volume %v", vol)
	}
	mounted := false
	for _, m := range container(t, d)["volumeMounts"].([]any) {
		mm := m.(map[string]any)
		if mm["name"] == "admin-token" && mm["mountPath"] == "/var/run/sluice/admin-token" && mm["readOnly"] == true {
			mounted = true
		}
	}
	if !mounted {
		t.Error("admin token not mounted read-only")
	}
	if _, ok := envVars(t, d)["SLUICE_ADMIN_TOKEN"]; ok {
		t.Error("admin token passed in the environment")
	}
}

func TestEnvironment(t *testing.T) {
	r := render(t, `
redis: {url: "redis://redis:6379/0"}
otel: {endpoint: "http://collector:4318", sampleRatio: 0.5}
usage: {file: {enabled: false}, postgres: {existingSecret: usage-db, key: dsn}}
extraEnv: [{name: FOO, value: bar}]
`)
	d := gateway(t, r)
	env := envVars(t, d)
	if env["SLUICE_REDIS_URL"]["value"] != "redis://redis:6379/0" {
		t.Errorf("SLUICE_REDIS_URL %v", env["SLUICE_REDIS_URL"])
	}
	if env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] != "http://collector:4318" {
		t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %v", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
	}
	ref := env["SLUICE_USAGE_POSTGRES"]["valueFrom"].(map[string]any)["secretKeyRef"].(map[string]any)
	if ref["name"] != "usage-db" || ref["key"] != "dsn" {
		t.Errorf("SLUICE_USAGE_POSTGRES %v", env["SLUICE_USAGE_POSTGRES"])
	}
	if env["FOO"]["value"] != "bar" {
		t.Error("extraEnv not applied")
	}
	a := args(t, d)
	if !slices.Contains(a, "--usage-file=") || !slices.Contains(a, "--trace-sample-ratio=0.5") {
		t.Errorf("args %v", a)
	}
	for _, v := range get(t, d, "spec", "template", "spec", "volumes").([]any) {
		if v.(map[string]any)["name"] == "usage" {
			t.Error("usage volume with usage.file.enabled false")
		}
	}

	r = render(t, `redis: {url: "redis://ignored", existingSecret: redis-creds}`)
	ref = envVars(t, gateway(t, r))["SLUICE_REDIS_URL"]["valueFrom"].(map[string]any)["secretKeyRef"].(map[string]any)
	if ref["name"] != "redis-creds" || ref["key"] != "url" {
		t.Errorf("SLUICE_REDIS_URL from Secret %v", ref)
	}
	// Nothing of the kind by default.
	env = envVars(t, gateway(t, render(t, "")))
	for _, k := range []string{"SLUICE_REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "SLUICE_USAGE_POSTGRES"} {
		if env[k] != nil {
			t.Errorf("%s set by default", k)
		}
	}
}

func TestGracePeriod(t *testing.T) {
	d := gateway(t, render(t, `{drainTimeoutSeconds: 60, preStopSleepSeconds: 5}`))
	if g := get(t, d, "spec", "template", "spec", "terminationGracePeriodSeconds"); g != float64(80) {
		t.Errorf("terminationGracePeriodSeconds %v, want 80", g)
	}
	if s := get(t, d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)["lifecycle"]; s == nil {
		t.Error("no preStop sleep")
	}
	if !slices.Contains(args(t, d), "--drain-timeout=60s") {
		t.Error("drain timeout not passed")
	}
	d = gateway(t, render(t, `terminationGracePeriodSeconds: 100`))
	if g := get(t, d, "spec", "template", "spec", "terminationGracePeriodSeconds"); g != float64(100) {
		t.Errorf("terminationGracePeriodSeconds %v, want 100", g)
	}
}

func TestInvalidValues(t *testing.T) {
	for _, bad := range []string{
		`mode: sidecar`,
		`mode: files`, // no resources
		`terminationGracePeriodSeconds: 20`,
		`{mode: files, watchNamespace: x, files: {existingConfigMap: y}}`,
		`autoscaling: {enabled: true, minReplicas: 5, maxReplicas: 2}`,
		`extproc: {enabled: true}`,                         // no resource files for it
		`{watchNamespace: x, gatewayAPI: {enabled: true}}`, // GatewayClasses are cluster-scoped
	} {
		if _, err := Render(values(t, bad), "gateway"); err == nil {
			t.Errorf("values %q rendered; want an error", bad)
		}
	}
}

// TestCRDs: whatever crds/ holds, each file is a CustomResourceDefinition of group
// sluice.dev (Helm installs them before the templates), and the controller's ClusterRole
// covers every kind they define.
func TestCRDs(t *testing.T) {
	r := render(t, "")
	if len(r.CRDs) == 0 {
		t.Log("crds/ is empty: nothing to check")
	}
	role := grants(t, one(t, r, "ClusterRole", "sluice"))
	for name, data := range r.CRDs {
		var crd map[string]any
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		o := &unstructured.Unstructured{Object: crd}
		if o.GetKind() != "CustomResourceDefinition" || o.GetAPIVersion() != "apiextensions.k8s.io/v1" {
			t.Errorf("%s: %s %s, want apiextensions.k8s.io/v1 CustomResourceDefinition", name, o.GetAPIVersion(), o.GetKind())
			continue
		}
		group, _, _ := unstructured.NestedString(crd, "spec", "group")
		plural, _, _ := unstructured.NestedString(crd, "spec", "names", "plural")
		if group != "sluice.dev" {
			t.Errorf("%s: group %q, want sluice.dev", name, group)
			continue
		}
		if !slices.Equal(role["sluice.dev/"+plural], []string{"get", "list", "watch"}) {
			t.Errorf("%s: the ClusterRole does not let the controller read %s", name, plural)
		}
		if !slices.Equal(role["sluice.dev/"+plural+"/status"], []string{"patch", "update"}) {
			t.Errorf("%s: the ClusterRole does not let the controller write %s/status", name, plural)
		}
	}
}

// TestManifestsUpToDate: deploy/manifests is the chart rendered with default values.
func TestManifestsUpToDate(t *testing.T) {
	const regen = "go test ./internal/helmtest -run TestManifestsUpToDate -update"
	if *update {
		if err := WriteManifests(); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", ManifestsDir())
	}
	sluiceYAML, crds, err := PlainManifests()
	if err != nil {
		t.Fatal(err)
	}
	// The plain manifests decode, carry a Namespace, and nothing in them lives elsewhere.
	objs, err := Decode(string(sluiceYAML))
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].GetKind() != "Namespace" || objs[0].GetName() != Namespace {
		t.Errorf("sluice.yaml starts with %s %s, want Namespace %s", objs[0].GetKind(), objs[0].GetName(), Namespace)
	}
	for _, o := range objs[1:] {
		if ns := o.GetNamespace(); ns != "" && ns != Namespace {
			t.Errorf("%s %s in namespace %q", o.GetKind(), o.GetName(), ns)
		}
	}
	got, err := os.ReadFile(filepath.Join(ManifestsDir(), "sluice.yaml"))
	if err != nil {
		t.Fatalf("%v; regenerate with: %s", err, regen)
	}
	if !bytes.Equal(got, sluiceYAML) {
		t.Errorf("deploy/manifests/sluice.yaml is out of date with the chart; regenerate with: %s\n%s", regen, firstDiff(string(got), string(sluiceYAML)))
	}
	onDisk := map[string]bool{}
	entries, _ := os.ReadDir(filepath.Join(ManifestsDir(), "crds"))
	for _, e := range entries {
		onDisk[e.Name()] = true
		if _, ok := crds[e.Name()]; !ok {
			t.Errorf("deploy/manifests/crds/%s is not in the chart's crds/; regenerate with: %s", e.Name(), regen)
		}
	}
	for name, data := range crds {
		disk, err := os.ReadFile(filepath.Join(ManifestsDir(), "crds", name))
		if err != nil || !bytes.Equal(disk, data) {
			t.Errorf("deploy/manifests/crds/%s differs from the chart's crds/%s; regenerate with: %s", name, name, regen)
		}
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "first difference at line " + strconv.Itoa(i+1) + ":\n  file:  " + x + "\n  chart: " + y
		}
	}
	return ""
}
