// Package pgtest runs a real, throw-away PostgreSQL server for tests: in a new directory,
// listening on a free loopback port with trust authentication, without fsync, stopped and
// deleted when the test ends. Test code only.
//
// Each server starts from a copy of one initialised data directory, which stays in the
// temp folder (sluice-pgtest-*, about 40 MB, one per PostgreSQL build) for the next run;
// deleting it is always safe.
package pgtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// debianBins is where Debian's postgresql package puts the server binaries (one folder per
// major version); they are not on PATH there.
const debianBins = "/usr/lib/postgresql/*/bin"

// Server is one PostgreSQL server owned by a test.
type Server struct {
	t       testing.TB
	port    int
	base    string // our own temporary folder: data/ and the socket
	cmd     *exec.Cmd
	out     *lockedBuffer
	stopped chan struct{}
}

// Start initialises and starts a server on a free 127.0.0.1 port, waits until it accepts a
// connection, and stops it and deletes its files at the end of the test. It skips the test
// when the PostgreSQL binaries are absent.
func Start(t testing.TB) *Server {
	t.Helper()
	SkipWithout(t)
	bin, _ := binDir()
	s := &Server{t: t, port: freePort(t), out: &lockedBuffer{}}

	// The folder is ours rather than t.TempDir(): a Unix socket's path must stay under
	// 108 bytes (test names make t.TempDir long), and when we are root the postgres user
	// must own it and be able to reach it.
	base, err := os.MkdirTemp(tempRoot(), "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	s.base = base
	cred, err := credential()
	if err != nil {
		t.Fatal(err)
	}
	if err := own(base, cred); err != nil {
		t.Fatal(err)
	}

	// A copy of a data directory initialised once: initdb takes seconds, a copy a fraction.
	tmpl, err := template(bin, cred)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	if out, err := exec.Command("cp", "-a", tmpl, data).CombinedOutput(); err != nil {
		t.Fatalf("copying the template data directory: %v\n%s", err, out)
	}

	// -F: no fsync; trust authentication comes from initdb and covers loopback only.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port),
		"-k", base, "-F", "-c", "listen_addresses=127.0.0.1",
		"-c", "full_page_writes=off", "-c", "synchronous_commit=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.stopped = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.stopped) }()
	t.Cleanup(s.Stop) // registered after RemoveAll, so it runs before it

	deadline := time.Now().Add(10 * time.Second)
	for !s.ready() {
		select {
		case <-s.stopped:
			t.Fatalf("postgres exited: %s", s.out.String())
		case <-time.After(10 * time.Millisecond): // polling another process's start-up
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not accept connections on %s: %s", s.Addr(), s.out.String())
		}
	}
	return s
}

// SkipWithout skips the test when the PostgreSQL server binaries are not installed.
func SkipWithout(t testing.TB) {
	t.Helper()
	if _, err := binDir(); err != nil {
		t.Skipf("%v: the PostgreSQL tests need it (apt-get install postgresql)", err)
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// DSN is a connection URL for the superuser postgres to the database postgres.
func (s *Server) DSN() string {
	return "postgres://postgres@" + s.Addr() + "/postgres?sslmode=disable"
}

// Stop shuts the server down at once (SIGQUIT, which also ends its children) and waits.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.stopped:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.stopped
	}
	s.cmd = nil
}

func (s *Server) ready() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.DSN())
	if err != nil {
		return false
	}
	_ = c.Close(ctx)
	return true
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binDir finds the folder holding initdb and postgres: initdb on PATH (symbolic links
// followed, since postgres sits beside the real file), else Debian's newest version.
func binDir() (string, error) {
	binOnce.Do(func() {
		if p, err := exec.LookPath("initdb"); err == nil {
			if real, err := filepath.EvalSymlinks(p); err == nil {
				if dir := filepath.Dir(real); exists(filepath.Join(dir, "postgres")) {
					binPath = dir
					return
				}
			}
		}
		dirs, _ := filepath.Glob(debianBins)
		// Newest major version first: numeric order, so 9 sorts before 15.
		sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
		for _, dir := range dirs {
			if exists(filepath.Join(dir, "initdb")) && exists(filepath.Join(dir, "postgres")) {
				binPath = dir
				return
			}
		}
		binErr = fmt.Errorf("initdb and postgres not found on PATH or in %s", debianBins)
	})
	return binPath, binErr
}

func version(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// credential returns nil when we are not root. PostgreSQL refuses to run as root, so as
// root initdb and postgres run as the postgres user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres user (apt-get install postgresql): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// own gives dir to the user the server runs as.
func own(dir string, cred *syscall.Credential) error {
	if cred == nil {
		return nil
	}
	return os.Chown(dir, int(cred.Uid), int(cred.Gid))
}

var (
	templateMu  sync.Mutex
	templateDir string // once known in this process
)

// template returns a data directory initialised by initdb, shared by every Start: it is
// kept in the temp folder between runs, one per PostgreSQL build and user, and made under
// another name then renamed, so concurrent test processes never see half of one.
func template(bin string, cred *syscall.Credential) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	if templateDir != "" && exists(filepath.Join(templateDir, "PG_VERSION")) {
		return templateDir, nil
	}
	ver, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("postgres --version: %w", err)
	}
	sum := sha256.Sum256([]byte(bin + "\x00" + string(ver)))
	dir := filepath.Join(tempRoot(), fmt.Sprintf("sluice-pgtest-%d-%x", os.Geteuid(), sum[:6]))
	if exists(filepath.Join(dir, "PG_VERSION")) {
		templateDir = dir
		return dir, nil
	}
	work, err := os.MkdirTemp(tempRoot(), "sluice-pgtest-init-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if err := own(work, cred); err != nil {
		return "", err
	}
	data := filepath.Join(work, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// Losing this race to another process is fine: its template is as good.
	if err := os.Rename(data, dir); err != nil && !exists(filepath.Join(dir, "PG_VERSION")) {
		return "", err
	}
	templateDir = dir
	return dir, nil
}

// tempRoot is os.TempDir(), unless we are root and another user could not reach into it
// (TMPDIR under /root, say); then /tmp.
func tempRoot() string {
	dir := os.TempDir()
	if os.Geteuid() != 0 {
		return dir
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return "/tmp"
		}
		if d == filepath.Dir(d) {
			return dir
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects the server's output: exec copies into it from its own goroutine
// while a failing test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
