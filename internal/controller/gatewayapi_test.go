package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
)

const gatewayObjs = `
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: sluice}
spec: {controllerName: sluice.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/other}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: sluice
  listeners:
  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: Same}}}
  - {name: tcp, protocol: TCP, port: 9000}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: foreign}
spec:
  gatewayClassName: other
  listeners:
  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}}}
`

func newGatewayEnv(t *testing.T) *env {
	e := newEnv(t)
	e.r.GatewayAPI = true
	return e
}

func (e *env) modelRoute(ns, name string) *v1alpha1.ModelRoute {
	e.t.Helper()
	var mr v1alpha1.ModelRoute
	if err := e.c.Get(e.t.Context(), client.ObjectKey{Namespace: ns, Name: name}, &mr); err != nil {
		e.t.Fatal(err)
	}
	return &mr
}

func (e *env) gateway(name string) *gatewayv1.Gateway {
	e.t.Helper()
	var g gatewayv1.Gateway
	if err := e.c.Get(e.t.Context(), client.ObjectKey{Namespace: "default", Name: name}, &g); err != nil {
		e.t.Fatal(err)
	}
	return &g
}

func (e *env) httpRoute(name string) *gatewayv1.HTTPRoute {
	e.t.Helper()
	var r gatewayv1.HTTPRoute
	if err := e.c.Get(e.t.Context(), client.ObjectKey{Namespace: "default", Name: name}, &r); err != nil {
		e.t.Fatal(err)
	}
	return &r
}

// parentCond returns condition typ of the only parent status of parents.
func parentCond(t *testing.T, what string, parents []gatewayv1.RouteParentStatus, typ string) metav1.Condition {
	t.Helper()
	if len(parents) != 1 {
		t.Fatalf("%s: %d parent statuses: %+v", what, len(parents), parents)
	}
	if parents[0].ControllerName != GatewayControllerName {
		t.Errorf("%s: controllerName %q", what, parents[0].ControllerName)
	}
	c := meta.FindStatusCondition(parents[0].Conditions, typ)
	if c == nil {
		t.Fatalf("%s: no %s condition: %+v", what, typ, parents[0].Conditions)
	}
	return *c
}

func TestGatewayAPIModelRoutes(t *testing.T) {
	up := newUpstream(t)
	e := newGatewayEnv(t)
	e.apply(gatewayObjs + "---" + base(up, "sk-one") + `  parentRefs: [{name: gw}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: elsewhere, namespace: team-b}
spec:
  models: [gpt-b]
  backendRefs: [{name: openai, namespace: default}]
  parentRefs: [{name: gw, namespace: default}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: lost}
spec:
  models: [gpt-c]
  backendRefs: [{name: openai}]
  parentRefs: [{name: missing}]
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: plain}
spec:
  models: [gpt-d]
  backendRefs: [{name: openai}]
`)
	e.reconcile()

	// Attached in the same namespace: served, Accepted by its parent.
	if code, body := e.chat("gpt-a"); code != 200 {
		t.Fatalf("chat gpt-a: %d %s", code, body)
	}
	e.healthy("ModelRoute", "chat")
	mr := e.modelRoute("default", "chat")
	if c := parentCond(t, "chat", mr.Status.Parents, "Accepted"); c.Status != metav1.ConditionTrue || c.Reason != "Accepted" || c.ObservedGeneration != 1 {
		t.Errorf("chat Accepted: %+v", c)
	}
	if c := parentCond(t, "chat", mr.Status.Parents, "ResolvedRefs"); c.Status != metav1.ConditionTrue {
		t.Errorf("chat ResolvedRefs: %+v", c)
	}
	// Without parentRefs: as before, no parent status.
	e.healthy("ModelRoute", "plain")
	if p := e.modelRoute("default", "plain").Status.Parents; len(p) != 0 {
		t.Errorf("plain: parents %+v", p)
	}
	if code, _ := e.chat("gpt-d"); code != 200 {
		t.Errorf("chat gpt-d: %d", code)
	}

	// Another namespace: the listener allows Same only.
	mr = e.modelRoute("team-b", "elsewhere")
	if c := parentCond(t, "elsewhere", mr.Status.Parents, "Accepted"); c.Status != metav1.ConditionFalse || c.Reason != "NotAllowedByListeners" {
		t.Errorf("elsewhere Accepted: %+v", c)
	}
	if c := meta.FindStatusCondition(mr.Status.Conditions, v1alpha1.ConditionProgrammed); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "NotAllowedByListeners" {
		t.Errorf("elsewhere Programmed: %+v", c)
	}
	if c := meta.FindStatusCondition(mr.Status.Conditions, v1alpha1.ConditionResolvedRefs); c == nil || c.Status != metav1.ConditionFalse {
		t.Errorf("elsewhere ResolvedRefs: %+v", c)
	}
	if c := meta.FindStatusCondition(mr.Status.Conditions, v1alpha1.ConditionAccepted); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("elsewhere Accepted: %+v", c)
	}
	if code, _ := e.chat("gpt-b"); code == 200 {
		t.Errorf("gpt-b served")
	}

	// A missing Gateway.
	mr = e.modelRoute("default", "lost")
	if c := parentCond(t, "lost", mr.Status.Parents, "Accepted"); c.Status != metav1.ConditionFalse || c.Reason != "NoMatchingParent" || !strings.Contains(c.Message, "default/missing not found") {
		t.Errorf("lost Accepted: %+v", c)
	}
	if c := meta.FindStatusCondition(mr.Status.Conditions, v1alpha1.ConditionProgrammed); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "NoMatchingParent" {
		t.Errorf("lost Programmed: %+v", c)
	}
	models := e.r.Snapshot().Models
	if slices.Contains(models, "gpt-b") || slices.Contains(models, "gpt-c") || !slices.Contains(models, "gpt-a") {
		t.Errorf("models %q", models)
	}
	ev := strings.Join(e.events(), "\n")
	for _, want := range []string{"Warning ParentRejected parentRef gw: NotAllowedByListeners", "Warning ParentRejected parentRef missing: NoMatchingParent"} {
		if !strings.Contains(ev, want) {
			t.Errorf("no event %q in\n%s", want, ev)
		}
	}

	// Our Gateway's status.
	g := e.gateway("gw")
	for _, typ := range []string{"Accepted", "Programmed"} {
		if c := meta.FindStatusCondition(g.Status.Conditions, typ); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("gateway %s: %+v", typ, c)
		}
	}
	if c := meta.FindStatusCondition(g.Status.Conditions, "Programmed"); c == nil || c.Reason != "Programmed" {
		t.Errorf("gateway Programmed: %+v", c)
	}
	if len(g.Status.Listeners) != 2 {
		t.Fatalf("listeners %+v", g.Status.Listeners)
	}
	http, tcp := g.Status.Listeners[0], g.Status.Listeners[1]
	if http.Name != "http" || http.AttachedRoutes != 1 || len(http.SupportedKinds) != 2 ||
		http.SupportedKinds[0].Kind != "ModelRoute" || string(*http.SupportedKinds[0].Group) != "sluice.dev" || http.SupportedKinds[1].Kind != "HTTPRoute" {
		t.Errorf("http listener: %+v", http)
	}
	if c := meta.FindStatusCondition(http.Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("http listener Accepted: %+v", c)
	}
	if c := meta.FindStatusCondition(tcp.Conditions, "Accepted"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "UnsupportedProtocol" || tcp.AttachedRoutes != 0 {
		t.Errorf("tcp listener: %+v", tcp)
	}
	// Another class's Gateway is left alone.
	if f := e.gateway("foreign"); len(f.Status.Conditions) != 0 || len(f.Status.Listeners) != 0 {
		t.Errorf("foreign gateway got status: %+v", f.Status)
	}

	// Idle: nothing is rewritten, no new events.
	grv, rrv := g.ResourceVersion, e.modelRoute("team-b", "elsewhere").ResourceVersion
	e.reconcile()
	if g := e.gateway("gw"); g.ResourceVersion != grv {
		t.Errorf("gateway rewritten")
	}
	if mr := e.modelRoute("team-b", "elsewhere"); mr.ResourceVersion != rrv {
		t.Errorf("route rewritten")
	}
	if ev := e.events(); len(ev) > 0 {
		t.Errorf("events on idle reconcile: %q", ev)
	}
	if e.snaps != 1 {
		t.Errorf("%d snapshots", e.snaps)
	}

	// Allow All: the other namespace attaches and is served.
	e.apply(`
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: sluice
  listeners:
  - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}}}
`)
	e.reconcile()
	if code, body := e.chat("gpt-b"); code != 200 {
		t.Errorf("gpt-b after from All: %d %s", code, body)
	}
	mr = e.modelRoute("team-b", "elsewhere")
	if c := parentCond(t, "elsewhere", mr.Status.Parents, "Accepted"); c.Status != metav1.ConditionTrue {
		t.Errorf("elsewhere after from All: %+v", c)
	}
	if g := e.gateway("gw"); len(g.Status.Listeners) != 1 || g.Status.Listeners[0].AttachedRoutes != 2 {
		t.Errorf("listeners after from All: %+v", g.Status.Listeners)
	}

	// Dropping the parentRefs: served as a plain route, parent status cleared.
	e.apply(`
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: lost}
spec:
  models: [gpt-c]
  backendRefs: [{name: openai}]
`)
	e.reconcile()
	if code, body := e.chat("gpt-c"); code != 200 {
		t.Errorf("gpt-c without parentRefs: %d %s", code, body)
	}
	e.healthy("ModelRoute", "lost")
	if p := e.modelRoute("default", "lost").Status.Parents; len(p) != 0 {
		t.Errorf("lost parents not cleared: %+v", p)
	}
}

func TestGatewayAPIHTTPRoutes(t *testing.T) {
	e := newGatewayEnv(t)
	e.apply(gatewayObjs + `
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock}
spec: {schema: Mock}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: m}
spec: {models: [m], backendRefs: [{name: mock}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: sluice.dev, kind: Backend, name: nope}, {group: sluice.dev, kind: Backend, name: mock}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: good}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: sluice.dev, kind: Backend, name: mock}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: theirs}
spec:
  parentRefs: [{name: foreign}]
  rules:
  - backendRefs: [{group: sluice.dev, kind: Backend, name: nope}]
`)
	e.reconcile()
	broken := e.httpRoute("broken")
	if c := parentCond(t, "broken", broken.Status.Parents, "Accepted"); c.Status != metav1.ConditionTrue {
		t.Errorf("broken Accepted: %+v", c)
	}
	if c := parentCond(t, "broken", broken.Status.Parents, "ResolvedRefs"); c.Status != metav1.ConditionFalse || c.Reason != "BackendNotFound" || !strings.Contains(c.Message, "Backend/default/nope") {
		t.Errorf("broken ResolvedRefs: %+v", c)
	}
	if c := parentCond(t, "good", e.httpRoute("good").Status.Parents, "ResolvedRefs"); c.Status != metav1.ConditionTrue {
		t.Errorf("good ResolvedRefs: %+v", c)
	}
	if p := e.httpRoute("theirs").Status.Parents; len(p) != 0 {
		t.Errorf("theirs: %+v", p)
	}
	if g := e.gateway("gw"); len(g.Status.Listeners) != 2 || g.Status.Listeners[0].AttachedRoutes != 2 {
		t.Errorf("listeners %+v", g.Status.Listeners)
	}
	// The ModelRoute without parentRefs is served as before.
	e.healthy("ModelRoute", "m")

	// Another controller's parent status is kept; creating the Backend resolves the ref.
	broken.Status.Parents = append(broken.Status.Parents, gatewayv1.RouteParentStatus{
		ParentRef: gatewayv1.ParentReference{Name: "foreign"}, ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now()}},
	})
	if err := e.c.Status().Update(t.Context(), broken); err != nil {
		t.Fatal(err)
	}
	e.apply(`
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: nope}
spec: {schema: Mock}
`)
	e.reconcile()
	broken = e.httpRoute("broken")
	if len(broken.Status.Parents) != 2 || broken.Status.Parents[0].ControllerName != "example.com/other" {
		t.Fatalf("parents %+v", broken.Status.Parents)
	}
	if c := meta.FindStatusCondition(broken.Status.Parents[1].Conditions, "ResolvedRefs"); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("broken ResolvedRefs after the Backend: %+v", c)
	}
}

func TestGatewayAPIDisabled(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	e.apply(base(up, "sk") + `  parentRefs: [{name: missing}]
`)
	e.reconcile()
	if code, _ := e.chat("gpt-a"); code != 200 {
		t.Errorf("not served without the Gateway API: %d", code)
	}
	if p := e.modelRoute("default", "chat").Status.Parents; len(p) != 0 {
		t.Errorf("parents %+v", p)
	}
}
