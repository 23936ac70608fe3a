package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/sluice-gateway/sluice/internal/gatewaytest/chromium"
	"github.com/sluice-gateway/sluice/internal/server"
)

func attr(n *html.Node, key string) string {
	v, _ := chromium.Attr(n, key)
	return v
}

// TestDashboardShowsTraffic drives the admin dashboard in headless Chromium against a
// running gateway while two teams send requests, and checks that the charts show that
// traffic: requests per second, tokens by team and model, latency, and the backend up.
func TestDashboardShowsTraffic(t *testing.T) {
	chromium.SkipWithout(t)
	key := func(name, secret, team string) string {
		sum := sha256.Sum256([]byte(secret))
		return fmt.Sprintf("apiVersion: sluice.dev/v1alpha1\nkind: APIKey\nmetadata: {name: %s}\nspec: {hash: \"sha256:%s\", subject: %s, team: %s}\n---\n",
			name, hex.EncodeToString(sum[:]), name, team)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "sluice.yaml"), mockBackend+routeFor("m1", "demo")+key("alice", "sk-alice", "research")+key("bob", "sk-bob", "support")+`
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: p}
spec:
  authentication: {apiKeys: {}}
  rules: [{name: all, allow: {models: ["*"]}}]
---
`)
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, server.Config{Paths: []string{dir}, AdminListener: adminLn})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, k := range []string{"sk-alice", "sk-alice", "sk-bob"} { // research sends twice as much
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", r.addr+"/v1/chat/completions",
					strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"question `+strconv.Itoa(i)+`"}]}`))
				req.Header.Set("Authorization", "Bearer "+k)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(5 * time.Millisecond) // pacing the load, not synchronisation
			}
		})
	}
	dom := chromium.DumpDOM(t, "http://"+adminLn.Addr().String()+"/?interval=500", 6*time.Second)
	close(stop)
	wg.Wait()

	doc := chromium.ParseDOM(t, dom)
	num := func(id string) float64 {
		t.Helper()
		n := chromium.ByID(doc, id)
		if n == nil {
			t.Fatalf("no #%s in the page", id)
		}
		v, err := strconv.ParseFloat(attr(n, "data-latest"), 64)
		if err != nil {
			t.Fatalf("#%s data-latest %q", id, attr(n, "data-latest"))
		}
		return v
	}
	if v := num("requests"); v <= 0 {
		t.Errorf("requests/s %v", v)
	}
	if v := num("latency"); v <= 0 {
		t.Errorf("p99 latency %v", v)
	}
	series := map[string]float64{}
	for _, n := range chromium.All(chromium.ByID(doc, "tokens-by-team"), chromium.HasAttr("data-series")) {
		v, _ := strconv.ParseFloat(attr(n, "data-latest"), 64)
		series[attr(n, "data-series")] = v
	}
	if series["research"] <= 0 || series["support"] <= 0 {
		t.Errorf("tokens by team: %v", series)
	}
	models := chromium.All(chromium.ByID(doc, "tokens-by-model"), chromium.HasAttr("data-series"))
	if len(models) != 1 || attr(models[0], "data-series") != "demo" {
		t.Errorf("tokens by model: %d series", len(models))
	}
	backends := chromium.All(chromium.ByID(doc, "backends"), chromium.HasAttr("data-series"))
	if len(backends) != 1 || attr(backends[0], "data-series") != "Backend/default/mock" || attr(backends[0], "data-latest") != "up" {
		t.Errorf("backends: %v", dom[:min(len(dom), 200)])
	}
	if n := chromium.ByID(doc, "error"); n == nil || !chromium.HasAttr("hidden")(n) {
		t.Error("the page shows a polling error")
	}
}
