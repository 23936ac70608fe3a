// Package chromium runs Debian's headless Chromium for tests: it loads a page, lets its
// scripts run for a budget of virtual time and returns the DOM as the page left it.
// Test code only; the binary never imports it.
package chromium

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// candidates are the names Debian and its derivatives install Chromium under.
var candidates = []string{"chromium", "chromium-browser", "/usr/bin/chromium"}

// Find returns the path of the Chromium binary, or false if there is none.
func Find() (string, bool) {
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, true
		}
	}
	return "", false
}

// SkipWithout skips the test when Chromium is not installed.
func SkipWithout(t testing.TB) {
	t.Helper()
	if _, ok := Find(); !ok {
		t.Skip("chromium not found: this test needs Debian's chromium package, " +
			"which the README's test command installs (apt-get install -y chromium)")
	}
}

// slack is how much wall time a run may take on top of its virtual-time budget: the
// browser's start, page loads and fetches that pause virtual time.
const slack = 20 * time.Second

// DumpDOM loads url in headless Chromium, lets the page run for budget of virtual time
// (timers fire in virtual time, which waits for pending network fetches) and returns
// the serialized DOM as the page left it. It skips the test when Chromium is missing
// and fails it when Chromium fails or takes longer than budget plus a slack in wall
// time.
func DumpDOM(t testing.TB, url string, budget time.Duration) string {
	t.Helper()
	SkipWithout(t)
	bin, _ := Find()
	dir, err := os.MkdirTemp("", "chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(t, dir) })

	ctx, cancel := context.WithTimeout(context.Background(), budget+slack)
	defer cancel()
	start := time.Now()
	dom, stderr, err := run(ctx, bin, dir, url, budget)
	if err != nil {
		t.Fatalf("chromium %s: %v after %v\nstderr:\n%s", url, err, time.Since(start).Round(time.Millisecond), tail(stderr, 4000))
	}
	if !strings.Contains(dom, "<html") {
		t.Fatalf("chromium %s: no DOM on stdout\nstderr:\n%s", url, tail(stderr, 4000))
	}
	t.Logf("chromium ran %s for %v virtual time in %v", url, budget, time.Since(start).Round(time.Millisecond))
	if c := console(stderr); c != "" {
		t.Logf("chromium console:\n%s", c)
	}
	return dom
}

func args(dir, url string, budget time.Duration) []string {
	a := []string{
		"--headless",
		"--disable-gpu",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
		"--crash-dumps-dir=" + filepath.Join(dir, "crash"),
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-extensions",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-dev-shm-usage",
		"--password-store=basic",
		"--use-mock-keychain",
		"--mute-audio",
		"--hide-scrollbars",
		"--window-size=1280,1024",
		"--virtual-time-budget=" + strconv.FormatInt(budget.Milliseconds(), 10),
		"--enable-logging=stderr", // console messages, for the test log
		"--dump-dom",
	}
	if os.Geteuid() == 0 {
		a = append(a, "--no-sandbox")
	}
	return append(a, url)
}

func run(ctx context.Context, bin, dir, url string, budget time.Duration) (dom, stderr string, err error) {
	cmd := exec.CommandContext(ctx, bin, args(dir, url, budget)...)
	cmd.Env = append(os.Environ(),
		"HOME="+dir,
		"XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
	)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	setGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	killGroup(cmd) // helpers (zygote, renderer) that outlived the browser
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out.String(), errb.String(), err
}

// removeAll removes the profile directory; a helper process still exiting may be
// writing into it, so it tries a few times and only logs a failure.
func removeAll(t testing.TB, dir string) {
	var err error
	for i := 0; i < 10; i++ {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("chromium: removing %s: %v", dir, err)
}

// console picks the page's console messages out of Chromium's log, at most 20 lines.
func console(log string) string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, ":CONSOLE") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 20 {
		lines = append(lines[:20], "…")
	}
	return strings.Join(lines, "\n")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
