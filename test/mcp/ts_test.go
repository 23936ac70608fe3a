//go:build unix

// Package mcp_test runs the official TypeScript MCP client (@modelcontextprotocol/sdk,
// driven by client.mjs) against two gateways fronting @modelcontextprotocol/server-everything.
// It needs Node.js and npm, and the npm registry the first time (npm ci); it skips
// without node or npm.
package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

// The keys client.mjs uses: team platform may call every tool, team interns ev_echo and
// ev_get-resource*, two tools/call per tool a minute.
const (
	keyFull    = "sk-mcp-e2e-full"
	keyLimited = "sk-mcp-e2e-limited"
)

// config is what both gateways serve. server-everything's tools (2026.8.31): echo,
// get-annotated-message, get-env, get-resource-links, get-resource-reference,
// get-structured-content, get-sum, get-tiny-image, gzip-file-as-resource,
// toggle-simulated-logging, toggle-subscriber-updates, trigger-long-running-operation,
// and after initialize simulate-research-query (and, for clients with the capabilities,
// get-roots-list and the trigger-*-request tools). get-env prints the server's
// environment: the route leaves it out.
const config = `
apiVersion: v1
kind: Secret
metadata: {name: mcp-session}
stringData: {sessionKey: "0123456789abcdef0123456789abcdef-test-key"}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: everything}
spec: {protocol: MCP, url: "${EVERYTHING_URL}"}
---
apiVersion: sluice.dev/v1alpha1
kind: MCPRoute
metadata: {name: tools}
spec:
  path: /mcp
  sessionKeyRef: {name: mcp-session}
  backendRefs:
  - name: everything
    toolPrefix: ev_
    tools: {exclude: ["get-env"]}
---
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: full}
spec: {hash: "${KEY_FULL_HASH}", subject: alice, team: platform}
---
apiVersion: sluice.dev/v1alpha1
kind: APIKey
metadata: {name: limited}
spec: {hash: "${KEY_LIMITED_HASH}", subject: bob, team: interns}
---
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: access}
spec:
  authentication: {apiKeys: {}}
  rules:
  - name: interns
    from: {teams: [interns]}
    allow: {endpoints: [mcp], tools: ["ev_echo", "ev_get-resource*"]}
  - name: platform
    from: {teams: [platform]}
---
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: tool-calls}
spec:
  targetRefs: [{kind: MCPRoute, name: tools}]
  rules:
  - name: echo-per-team
    key: 'principal.team + "/" + mcp.tool'
    trafficMatcher: {celMatcher: 'mcp.method == "tools/call" && principal.team == "interns"'}
    limit: {volumeUnits: Requests, volume: 2, timeUnit: Minute}
`

func TestTypeScriptClient(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH: the TypeScript MCP client test needs Node.js and npm", tool)
		}
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)

	everything := startEverything(t, dir)

	// Straight at server-everything, without the gateway's expectations: when this
	// fails, the harness or the npm packages are at fault, not the gateway.
	t.Run("direct", func(t *testing.T) {
		runClient(t, dir, map[string]string{"DIRECT": "1", "GATEWAY_URL": everything + "/mcp"})
	})

	t.Run("gateway", func(t *testing.T) {
		vars := map[string]string{
			"EVERYTHING_URL":   everything + "/mcp",
			"KEY_FULL_HASH":    gatewaytest.KeyHash(keyFull),
			"KEY_LIMITED_HASH": gatewaytest.KeyHash(keyLimited),
		}
		gw1 := gatewaytest.Start(t, config, vars, gateway.Options{})
		gw2 := gatewaytest.Start(t, config, vars, gateway.Options{})
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("gateway 1 log:\n%s", gw1.Log.String())
				t.Logf("gateway 2 log:\n%s", gw2.Log.String())
			}
		})
		runClient(t, dir, map[string]string{
			"GATEWAY_URL":   gw1.Server.URL + "/mcp",
			"GATEWAY_URL_2": gw2.Server.URL + "/mcp",
			"KEY_FULL":      keyFull,
			"KEY_LIMITED":   keyLimited,
		})
	})
}

// npmCI installs package-lock.json's packages into dir/node_modules unless the lockfile
// they were installed from is the same, under a file lock so that test processes running
// at once do not install over one another.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)

	lockfile, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lockfile)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".sluice-package-lock.sha256")
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if unreachable(out) {
			// The packages cannot be fetched here (no registry): the same as no npm.
			t.Skipf("npm ci in %s could not reach the npm registry:\n%s", dir, out)
		}
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Logf("npm ci (%v): %s", time.Since(start).Round(time.Millisecond), bytes.TrimSpace(out))
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startEverything starts server-everything's Streamable HTTP server on a free port and
// returns its base URL once it accepts connections.
func startEverything(t *testing.T, dir string) string {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command("node", filepath.Join("node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js"), "streamableHttp")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	var out gatewaytest.Log
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server-everything: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("server-everything output:\n%s", out.String())
		}
	})

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		select {
		case <-exited:
			t.Fatalf("server-everything exited (%v) before listening on %s:\n%s", cmd.ProcessState, addr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server-everything did not listen on %s within 30s: %v\n%s", addr, err, out.String())
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runClient runs client.mjs, logs each of its lines and fails the test with the checks
// that failed.
func runClient(t *testing.T, dir string, env map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.mjs")
	cmd.Dir = dir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr gatewaytest.Log
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node client.mjs: %v", err)
	}

	var failed []string
	checks := 0
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		var c struct {
			Check  string          `json:"check"`
			OK     bool            `json:"ok"`
			Detail json.RawMessage `json:"detail"`
		}
		if json.Unmarshal([]byte(line), &c) != nil || c.Check == "" {
			continue
		}
		checks++
		if !c.OK {
			failed = append(failed, fmt.Sprintf("%s: %s", c.Check, c.Detail))
		}
	}
	io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("client.mjs stderr:\n%s", s)
	}
	var exit *exec.ExitError
	switch {
	case err == nil && len(failed) == 0 && checks > 0:
		return
	case err == nil && checks == 0:
		t.Fatal("client.mjs ran no check")
	case err != nil && !errors.As(err, &exit):
		t.Fatalf("node client.mjs: %v", err)
	}
	t.Fatalf("client.mjs: %v; %d of %d checks failed:\n%s", err, len(failed), checks, strings.Join(failed, "\n"))
}

// unreachable reports whether npm's output says the registry could not be reached.
func unreachable(out []byte) bool {
	for _, code := range []string{"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "ENETUNREACH"} {
		if bytes.Contains(out, []byte(code)) {
			return true
		}
	}
	return false
}
