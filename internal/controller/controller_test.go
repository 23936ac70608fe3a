package controller

import (
	"encoding/json"
	"fmt"
	"k8s.io/apimachinery/pkg/api/meta"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// upstream is a fake OpenAI server that records the Authorization header it was sent.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	auth []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string `json:"model"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		u.mu.Lock()
		u.auth = append(u.auth, r.Header.Get("Authorization"))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`, req.Model)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) lastAuth() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.auth) == 0 {
		return ""
	}
	return u.auth[len(u.auth)-1]
}

// env is a fake cluster, the reconciler and a gateway fed by it.
type env struct {
	t      *testing.T
	c      client.Client
	rec    *record.FakeRecorder
	r      *Reconciler
	gw     *gateway.Gateway
	srv    *httptest.Server
	snaps  int
	status int // status writes seen by the client (patches)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	var statusObjs []client.Object
	for _, k := range kinds {
		statusObjs = append(statusObjs, k.object())
	}
	statusObjs = append(statusObjs, &gatewayv1.GatewayClass{}, &gatewayv1.Gateway{}, &gatewayv1.HTTPRoute{})
	e := &env{t: t, rec: record.NewFakeRecorder(100), gw: gateway.New(gateway.Options{})}
	e.c = fake.NewClientBuilder().WithScheme(NewScheme()).WithStatusSubresource(statusObjs...).Build()
	e.r = &Reconciler{
		Client:   e.c,
		Recorder: e.rec,
		OnSnapshot: func(s *translate.Snapshot) {
			e.snaps++
			e.gw.Swap(s)
		},
	}
	e.srv = httptest.NewServer(e.gw)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) reconcile() {
	e.t.Helper()
	if _, err := e.r.Reconcile(e.t.Context(), SnapshotKey); err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
}

// decode turns YAML documents into objects in namespace default.
func decode(t *testing.T, docs string) []client.Object {
	t.Helper()
	var out []client.Object
	for _, d := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		var h struct{ Kind string }
		if err := yaml.Unmarshal([]byte(d), &h); err != nil {
			t.Fatal(err)
		}
		var o client.Object
		switch h.Kind {
		case "Secret":
			o = &corev1.Secret{}
		case "GatewayClass":
			o = &gatewayv1.GatewayClass{}
		case "Gateway":
			o = &gatewayv1.Gateway{}
		case "HTTPRoute":
			o = &gatewayv1.HTTPRoute{}
		default:
			for _, k := range kinds {
				if k.name == h.Kind {
					o = k.object()
				}
			}
		}
		if o == nil {
			t.Fatalf("unknown kind %q", h.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(d), o); err != nil {
			t.Fatal(err)
		}
		if _, cluster := o.(*gatewayv1.GatewayClass); o.GetNamespace() == "" && !cluster {
			o.SetNamespace("default")
		}
		out = append(out, o)
	}
	return out
}

// apply creates the objects, or updates them (bumping metadata.generation as the API
// server does on a spec change).
func (e *env) apply(docs string) {
	e.t.Helper()
	for _, o := range decode(e.t, docs) {
		cur := o.DeepCopyObject().(client.Object)
		err := e.c.Get(e.t.Context(), client.ObjectKeyFromObject(o), cur)
		if err != nil {
			o.SetGeneration(1)
			if err := e.c.Create(e.t.Context(), o); err != nil {
				e.t.Fatal(err)
			}
			continue
		}
		o.SetResourceVersion(cur.GetResourceVersion())
		o.SetGeneration(cur.GetGeneration() + 1)
		if err := e.c.Update(e.t.Context(), o); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) delete(obj client.Object, name string) {
	e.t.Helper()
	obj.SetNamespace("default")
	obj.SetName(name)
	if err := e.c.Delete(e.t.Context(), obj); err != nil {
		e.t.Fatal(err)
	}
}

// chat sends a chat completion for model through the gateway.
func (e *env) chat(model string, header ...string) (int, string) {
	e.t.Helper()
	return e.chatText(model, "hello", header...)
}

func (e *env) get(kind, name string) (client.Object, *v1alpha1.ResourceStatus) {
	e.t.Helper()
	for _, k := range kinds {
		if k.name == kind {
			o := k.object()
			if err := e.c.Get(e.t.Context(), client.ObjectKey{Namespace: "default", Name: name}, o); err != nil {
				e.t.Fatal(err)
			}
			return o, k.status(o)
		}
	}
	e.t.Fatalf("unknown kind %s", kind)
	return nil, nil
}

// cond returns the condition typ of kind/name.
func (e *env) cond(kind, name, typ string) metav1.Condition {
	e.t.Helper()
	_, st := e.get(kind, name)
	c := meta.FindStatusCondition(st.Conditions, typ)
	if c == nil {
		e.t.Fatalf("%s/%s has no %s condition: %+v", kind, name, typ, st.Conditions)
	}
	return *c
}

// healthy asserts kind/name is Accepted, ResolvedRefs and Programmed at its generation.
func (e *env) healthy(kind, name string) {
	e.t.Helper()
	o, st := e.get(kind, name)
	if st.ObservedGeneration != o.GetGeneration() || o.GetGeneration() == 0 {
		e.t.Errorf("%s/%s: observedGeneration %d, generation %d", kind, name, st.ObservedGeneration, o.GetGeneration())
	}
	for _, typ := range []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionResolvedRefs, v1alpha1.ConditionProgrammed} {
		c := meta.FindStatusCondition(st.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != o.GetGeneration() {
			e.t.Errorf("%s/%s: %s = %+v", kind, name, typ, c)
		}
	}
}

func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func base(up *upstream, key string) string {
	return `
apiVersion: v1
kind: Secret
metadata: {name: openai}
stringData: {apiKey: ` + key + `}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: openai}
spec:
  schema: OpenAI
  url: ` + up.URL + `/v1
  credentials: {apiKey: {secretRef: {name: openai}}}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec:
  models: [gpt-a]
  backendRefs: [{name: openai}]
`
}

func TestServeAndStatus(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.apply(base(up, "sk-one"))
	e.reconcile()
	if e.snaps != 1 || e.r.Snapshot() == nil {
		t.Fatalf("%d snapshots published", e.snaps)
	}
	if code, body := e.chat("gpt-a"); code != 200 {
		t.Fatalf("chat: %d %s", code, body)
	}
	if got := up.lastAuth(); got != "Bearer sk-one" {
		t.Fatalf("upstream saw Authorization %q", got)
	}
	e.healthy("Backend", "openai")
	e.healthy("ModelRoute", "chat")
	if s := e.r.Snapshot().Summary; s.Secrets != 1 || s.Backends != 1 || s.ModelRoutes != 1 {
		t.Errorf("summary %+v", s)
	}

	// Nothing changed: no new snapshot, no status write, transition times kept.
	o, st := e.get("ModelRoute", "chat")
	rv, ltt := o.GetResourceVersion(), meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionProgrammed).LastTransitionTime
	e.reconcile()
	o, st = e.get("ModelRoute", "chat")
	if e.snaps != 1 || o.GetResourceVersion() != rv {
		t.Errorf("idle reconcile: %d snapshots, resourceVersion %s → %s", e.snaps, rv, o.GetResourceVersion())
	}
	if got := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionProgrammed).LastTransitionTime; !got.Equal(&ltt) {
		t.Errorf("lastTransitionTime changed: %v → %v", ltt, got)
	}
	if ev := e.events(); len(ev) > 0 {
		t.Errorf("events for valid resources: %q", ev)
	}
}

func TestUpdateAndDelete(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.apply(base(up, "sk-one"))
	e.reconcile()

	e.apply(`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec:
  models: [gpt-b]
  backendRefs: [{name: openai}]
`)
	e.reconcile()
	if e.snaps != 2 {
		t.Fatalf("%d snapshots", e.snaps)
	}
	if code, body := e.chat("gpt-b"); code != 200 {
		t.Fatalf("new model: %d %s", code, body)
	}
	if code, body := e.chat("gpt-a"); code != 404 || !strings.Contains(body, "model_not_found") {
		t.Fatalf("old model: %d %s", code, body)
	}
	e.healthy("ModelRoute", "chat")
	if o, _ := e.get("ModelRoute", "chat"); o.GetGeneration() != 2 {
		t.Fatalf("generation %d", o.GetGeneration())
	}

	e.delete(&v1alpha1.ModelRoute{}, "chat")
	e.reconcile()
	if code, body := e.chat("gpt-b"); code != 404 || !strings.Contains(body, "model_not_found") {
		t.Fatalf("deleted route: %d %s", code, body)
	}
	if s := e.r.Snapshot().Summary; s.ModelRoutes != 0 || s.Backends != 1 {
		t.Errorf("summary %+v", s)
	}
}

func TestMissingBackend(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.apply(base(up, "sk-one") + `
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: broken}
spec:
  models: [gpt-broken]
  backendRefs: [{name: nope}]
`)
	e.reconcile()
	if code, body := e.chat("gpt-a"); code != 200 {
		t.Fatalf("valid route: %d %s", code, body)
	}
	if code, _ := e.chat("gpt-broken"); code != 404 {
		t.Fatalf("broken route served: %d", code)
	}
	e.healthy("ModelRoute", "chat")
	e.healthy("Backend", "openai")
	c := e.cond("ModelRoute", "broken", v1alpha1.ConditionResolvedRefs)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonRefNotFound || !strings.Contains(c.Message, "spec.backendRefs[0].name") || !strings.Contains(c.Message, "default/nope") {
		t.Errorf("ResolvedRefs: %+v", c)
	}
	if c := e.cond("ModelRoute", "broken", v1alpha1.ConditionAccepted); c.Status != metav1.ConditionTrue {
		t.Errorf("Accepted: %+v", c)
	}
	if c := e.cond("ModelRoute", "broken", v1alpha1.ConditionProgrammed); c.Status != metav1.ConditionFalse {
		t.Errorf("Programmed: %+v", c)
	}
	ev := e.events()
	if len(ev) != 1 || !strings.HasPrefix(ev[0], "Warning ResolvedRefs BackendNotFound") {
		t.Fatalf("events: %q", ev)
	}
	// The same state again: no second event.
	e.reconcile()
	if ev := e.events(); len(ev) != 0 {
		t.Errorf("repeated events: %q", ev)
	}

	// The Backend appears: the route resolves.
	e.apply(`
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: nope}
spec: {schema: Mock}
`)
	e.reconcile()
	e.healthy("ModelRoute", "broken")
	if code, body := e.chat("gpt-broken"); code != 200 {
		t.Fatalf("fixed route: %d %s", code, body)
	}
}

func TestInvalidBackend(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.apply(base(up, "sk-one") + `
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: bad}
spec: {schema: OpenAI, url: "ftp://example.com/v1"}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: uses-bad}
spec:
  models: [gpt-bad]
  backendRefs: [{name: bad}]
`)
	e.reconcile()
	if code, body := e.chat("gpt-a"); code != 200 {
		t.Fatalf("valid route: %d %s", code, body)
	}
	e.healthy("ModelRoute", "chat")
	c := e.cond("Backend", "bad", v1alpha1.ConditionAccepted)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonInvalid || !strings.Contains(c.Message, "spec.url") {
		t.Errorf("Accepted: %+v", c)
	}
	if c := e.cond("Backend", "bad", v1alpha1.ConditionProgrammed); c.Status != metav1.ConditionFalse {
		t.Errorf("Programmed: %+v", c)
	}
	// The route that depends on it is left out too, as a broken reference.
	c = e.cond("ModelRoute", "uses-bad", v1alpha1.ConditionResolvedRefs)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonInvalidRef {
		t.Errorf("dependent ResolvedRefs: %+v", c)
	}
	if code, _ := e.chat("gpt-bad"); code != 404 {
		t.Errorf("dependent route served: %d", code)
	}
	ev := strings.Join(e.events(), "\n")
	if !strings.Contains(ev, "Warning Rejected Invalid: spec.url") || !strings.Contains(ev, "Warning ResolvedRefs InvalidReference") {
		t.Errorf("events: %s", ev)
	}
}

func TestMissingSecret(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	docs := decode(t, base(up, "sk-one"))
	for _, o := range docs[1:] { // no Secret
		o.SetGeneration(1)
		if err := e.c.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	e.reconcile()
	c := e.cond("Backend", "openai", v1alpha1.ConditionResolvedRefs)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSecretMissing {
		t.Errorf("ResolvedRefs: %+v", c)
	}
	if !e.r.WantsSecret("default", "openai") || e.r.WantsSecret("default", "other") {
		t.Error("secret interest")
	}
	e.apply(base(up, "sk-one"))
	e.reconcile()
	e.healthy("Backend", "openai")
	e.healthy("ModelRoute", "chat")
}

func TestSecretRotation(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.apply(base(up, "sk-one"))
	e.reconcile()
	if code, body := e.chat("gpt-a"); code != 200 || up.lastAuth() != "Bearer sk-one" {
		t.Fatalf("%d %s %q", code, body, up.lastAuth())
	}
	e.apply(`
apiVersion: v1
kind: Secret
metadata: {name: openai}
stringData: {apiKey: sk-two}
`)
	e.reconcile()
	if e.snaps != 2 {
		t.Fatalf("%d snapshots", e.snaps)
	}
	if code, body := e.chat("gpt-a"); code != 200 || up.lastAuth() != "Bearer sk-two" {
		t.Fatalf("%d %s %q", code, body, up.lastAuth())
	}
	// An unreferenced Secret is not part of the configuration.
	e.apply(`
apiVersion: v1
kind: Secret
metadata: {name: unrelated}
stringData: {x: y}
`)
	e.reconcile()
	if e.snaps != 2 || e.r.Snapshot().Summary.Secrets != 1 {
		t.Errorf("%d snapshots, summary %+v", e.snaps, e.r.Snapshot().Summary)
	}
}

func TestOtherKinds(t *testing.T) {
	e := newEnv(t)
	e.apply(`
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock}
spec: {schema: Mock}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: limited}
spec:
  models: [small]
  backendRefs: [{name: mock}]
---
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: alice}
spec:
  hash: sha256:246eb3faf7dfaa19af845cf628358424077ce83fbf3a3554e6e101a1b3c9398a
  subject: alice@example.com
  team: research
---
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: access}
spec:
  authentication: {apiKeys: {}}
  rules:
  - name: everyone
    allow: {models: ["*"]}
  default: Deny
---
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits}
spec:
  targetRefs: [{kind: ModelRoute, name: limited}]
  rules:
  - name: one-per-minute
    key: '"all"'
    limit: {volumeUnits: Requests, volume: 1, timeUnit: Minute}
  storage: {type: Memory}
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: tagging}
spec:
  phase: PostRouting
  processors:
  - name: tag
    inProcess:
      setHeaders: [{name: x-sluice-endpoint, value: request.endpoint}]
---
apiVersion: sluice.dev/v1alpha1
kind: CachePolicy
metadata: {name: answers}
spec:
  targetRefs: [{kind: ModelRoute, name: limited}]
  mode: Exact
  ttl: 10m
  storage: {type: Memory}
`)
	e.reconcile()
	snap := e.r.Snapshot()
	if snap == nil {
		t.Fatal("no snapshot")
	}
	s := snap.Summary
	if s.APIKeys != 1 || s.AccessPolicies != 1 || s.PayloadProcessors != 1 {
		t.Errorf("summary %+v", s)
	}
	if snap.Policy == nil || snap.Limits == nil || len(snap.Limits.Policies) != 1 || snap.Cache.For("ModelRoute/default/limited") == nil {
		t.Errorf("policy %v, limits %+v, cache %+v", snap.Policy, snap.Limits, snap.Cache)
	}
	for _, k := range kinds {
		o := k.object()
		list := k.list()
		if err := e.c.List(t.Context(), list); err != nil {
			t.Fatal(err)
		}
		for _, o = range k.items(list) {
			e.healthy(k.name, o.GetName())
		}
	}
	// Behaviour: no key is 401; alice's key passes once, then the limit answers 429.
	if code, _ := e.chat("small"); code != 401 {
		t.Errorf("no key: %d", code)
	}
	if code, body := e.chat("small", "Authorization", "Bearer sk-sluice-example-alice"); code != 200 {
		t.Errorf("alice: %d %s", code, body)
	}
	if code, _ := e.chat("small", "Authorization", "Bearer sk-sluice-example-alice"); code != 429 {
		t.Errorf("alice again: %d", code)
	}

	// A second AccessPolicy is rejected on its own; the first keeps working.
	e.apply(`
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: zz-second}
spec:
  authentication: {apiKeys: {}}
  default: Deny
`)
	e.reconcile()
	c := e.cond("AccessPolicy", "zz-second", v1alpha1.ConditionAccepted)
	if c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonInvalid || !strings.Contains(c.Message, "only one AccessPolicy") {
		t.Errorf("second AccessPolicy: %+v", c)
	}
	e.healthy("AccessPolicy", "access")
}

func TestNamespace(t *testing.T) {
	e := newEnv(t)
	e.r.Namespace = "team-a"
	objs := decode(t, `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock, namespace: team-a}
spec: {schema: Mock}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: a, namespace: team-a}
spec: {models: [a], backendRefs: [{name: mock}]}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: b, namespace: team-b}
spec: {models: [b], backendRefs: [{name: mock, namespace: team-a}]}
`)
	for _, o := range objs {
		if err := e.c.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	e.reconcile()
	if got := strings.Join(e.r.Snapshot().Models, ","); got != "a" {
		t.Errorf("models %q", got)
	}
}

func TestSecretRefs(t *testing.T) {
	objs := decode(t, `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: b, namespace: ns1}
spec:
  schema: OpenAI
  url: https://example.com/v1
  credentials: {apiKey: {secretRef: {name: key}}}
  tls:
    caBundleRefs: [{name: ca}, {name: ca2, namespace: other}]
    clientCertificateRef: {name: client}
---
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: k, namespace: ns2}
spec: {secretRef: {name: apikey, key: key}, subject: s}
`)
	got := map[string]bool{}
	for _, o := range objs {
		secretRefs(o, got)
	}
	want := []string{"ns1/key", "ns1/ca", "other/ca2", "ns1/client", "ns2/apikey"}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing %s in %v", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
}

func TestGatewayClass(t *testing.T) {
	ours := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "sluice", Generation: 1}, Spec: gatewayv1.GatewayClassSpec{ControllerName: GatewayControllerName}}
	other := &gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "other", Generation: 1}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "example.com/other"}}
	c := fake.NewClientBuilder().WithScheme(NewScheme()).WithStatusSubresource(&gatewayv1.GatewayClass{}).WithObjects(ours, other).Build()
	r := &GatewayClassReconciler{Client: c}
	for _, name := range []string{"sluice", "other", "gone"} {
		if _, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: client.ObjectKey{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	var got gatewayv1.GatewayClass
	if err := c.Get(t.Context(), client.ObjectKey{Name: "sluice"}, &got); err != nil {
		t.Fatal(err)
	}
	if cond := meta.FindStatusCondition(got.Status.Conditions, "Accepted"); cond == nil || cond.Status != metav1.ConditionTrue || cond.ObservedGeneration != 1 {
		t.Errorf("ours: %+v", got.Status.Conditions)
	}
	rv := got.ResourceVersion
	if _, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: client.ObjectKey{Name: "sluice"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(t.Context(), client.ObjectKey{Name: "sluice"}, &got); err != nil || got.ResourceVersion != rv {
		t.Errorf("rewritten: %v %s → %s", err, rv, got.ResourceVersion)
	}
	if err := c.Get(t.Context(), client.ObjectKey{Name: "other"}, &got); err != nil || len(got.Status.Conditions) != 0 {
		t.Errorf("other: %v %+v", err, got.Status.Conditions)
	}
}
