package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/server"
)

// TestAdminListener: metrics are served after traffic; the admin API needs the token,
// lists the resources without any Secret value or key hash, reports backends and a
// rate-limit bucket, and reloads on demand.
func TestAdminListener(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "sluice.yaml")
	writeFile(t, cfgFile, mockBackend+routeFor("m1", "demo")+`
apiVersion: v1
kind: Secret
metadata: {name: upstream}
stringData: {apiKey: sk-very-secret-value}
---
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits}
spec:
  rules:
  - name: per-model
    key: request.model
    limit: {volumeUnits: Requests, volume: 100, timeUnit: Minute}
---
`)
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := "http://" + adminLn.Addr().String()
	r := start(t, server.Config{Paths: []string{dir}, AdminListener: adminLn, AdminToken: "admin-s3cret"})
	if code, err := chat(r.addr, "demo"); err != nil || code != 200 {
		t.Fatalf("chat: %d %v", code, err)
	}
	get := func(path, token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", admin+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics", ""); code != 200 || !strings.Contains(body, `sluice_requests_total{backend="Backend/default/mock",code="",route="ModelRoute/default/m1",status="200",team=""} 1`) ||
		!strings.Contains(body, "go_goroutines") || !strings.Contains(body, `sluice_config_reloads_total{result="success"} 1`) {
		t.Fatalf("metrics %d:\n%s", code, body)
	}
	if code, body := get("/", ""); code != 200 || !strings.Contains(body, "<title>") {
		t.Fatalf("dashboard %d %s", code, body)
	}
	if code, _ := get("/admin/resources", ""); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _ := get("/admin/resources", "wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	code, body := get("/admin/resources", "admin-s3cret")
	if code != 200 || !strings.Contains(body, `"kind": "Backend"`) || !strings.Contains(body, `"apiKey"`) || strings.Contains(body, "sk-very-secret-value") {
		t.Fatalf("resources %d:\n%s", code, body)
	}
	if code, body := get("/admin/backends", "admin-s3cret"); code != 200 || !strings.Contains(body, `"Backend": "Backend/default/mock"`) || !strings.Contains(body, `"Up": true`) {
		t.Fatalf("backends %d %s", code, body)
	}
	code, body = get("/admin/ratelimits?policy=limits&rule=per-model&key=demo", "admin-s3cret")
	var bucket struct{ Limit, Remaining, Used int64 }
	if json.Unmarshal([]byte(body), &bucket); code != 200 || bucket.Limit != 100 || bucket.Used != 1 {
		t.Fatalf("bucket %d %s", code, body)
	}
	if code, _ := get("/admin/ratelimits?policy=limits&rule=nope&key=x", "admin-s3cret"); code != 404 {
		t.Fatalf("unknown rule: %d", code)
	}
	// Reload through the API, with a changed file.
	writeFile(t, cfgFile, mockBackend+routeFor("m1", "demo", "demo2"))
	r.waitReload(t) // the watcher's reload
	req, _ := http.NewRequest("POST", admin+"/admin/reload", nil)
	req.Header.Set("Authorization", "Bearer admin-s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"reloaded": true`) {
		t.Fatalf("reload %d %s", resp.StatusCode, b)
	}
	r.waitReload(t)
	if code, _ := chat(r.addr, "demo2"); code != 200 {
		t.Fatalf("after reload: %d", code)
	}
}
