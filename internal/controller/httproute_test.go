package controller

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHTTPRouteRouting: an HTTPRoute attached to our Gateway sends requests for its host
// and path to its sluice.dev Backend, whatever the model; other hosts keep the ModelRoute.
// A rule the translator refuses leaves only that HTTPRoute out.
func TestHTTPRouteRouting(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	e := newGatewayEnv(t)
	e.apply(gatewayObjs + "---" + base(a, "sk-a") + `---
apiVersion: v1
kind: Secret
metadata: {name: team-b}
stringData: {apiKey: sk-b}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: team-b}
spec:
  schema: OpenAI
  url: ` + b.URL + `/v1
  credentials: {apiKey: {secretRef: {name: team-b}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: team-b}
spec:
  parentRefs: [{name: gw}]
  hostnames: [team-b.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v1/chat}}]
    backendRefs: [{group: sluice.dev, kind: Backend, name: team-b}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/v1/.*"}}]
    backendRefs: [{group: sluice.dev, kind: Backend, name: team-b}]
`)
	e.reconcile()
	ask := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-a","messages":[{"role":"user","content":"hi"}]}`))
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Logf("%s: %d %s", host, resp.StatusCode, body)
		}
		return resp.StatusCode
	}
	if code := ask("team-b.example.com"); code != 200 || len(b.auth) != 1 || b.lastAuth() != "Bearer sk-b" {
		t.Fatalf("team-b host: %d, team-b upstream saw %d", code, len(b.auth))
	}
	if code := ask("other.example.com"); code != 200 || len(a.auth) != 1 || len(b.auth) != 1 {
		t.Fatalf("other host: %d (a %d, b %d)", code, len(a.auth), len(b.auth))
	}
	// The refused HTTPRoute did not take the rest down, and its status says it is refused.
	e.healthy("ModelRoute", "chat")
	if c := parentCond(t, "broken", e.httpRoute("broken").Status.Parents, "Accepted"); c.Status != "False" || c.Reason != "UnsupportedValue" || !strings.Contains(c.Message, "RegularExpression") {
		t.Errorf("broken HTTPRoute: Accepted = %+v", c)
	}
	if c := parentCond(t, "team-b", e.httpRoute("team-b").Status.Parents, "Accepted"); c.Status != "True" {
		t.Errorf("team-b HTTPRoute: Accepted = %+v", c)
	}
}
