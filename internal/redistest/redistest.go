// Package redistest runs a real redis-server for tests: on a free loopback port, without
// persistence, stopped when the test ends, and restartable on the same port to simulate an
// outage. Test code only.
package redistest

import (
	"bytes"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Binary is the server the tests run.
const Binary = "redis-server"

// Server is one redis-server process owned by a test.
type Server struct {
	t       testing.TB
	port    int
	dir     string
	args    []string
	cmd     *exec.Cmd
	stopped chan struct{}
}

// Start starts redis-server on a free port (extra are more arguments) and stops it at the
// end of the test. It skips the test when the binary is absent: the project's test script
// installs it.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	SkipWithout(t)
	return StartOn(t, FreePorts(t, 1)[0], extra...)
}

// StartOn is Start on a given port (a Cluster's nodes need theirs known in advance).
func StartOn(t testing.TB, port int, extra ...string) *Server {
	t.Helper()
	SkipWithout(t)
	s := &Server{t: t, port: port, dir: t.TempDir(), args: extra}
	s.Restart()
	t.Cleanup(s.Stop)
	return s
}

// SkipWithout skips the test when redis-server is not installed.
func SkipWithout(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(Binary); err != nil {
		t.Skipf("%s not found in PATH: the Redis tests need it (scripts/test.sh installs it)", Binary)
	}
}

// FreePorts returns n distinct free 127.0.0.1 ports.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is redis://host:port/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Restart (re)starts the server on its port and waits until it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	args := append([]string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--daemonize", "no",
	}, s.args...)
	cmd := exec.Command(Binary, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.stopped = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.stopped) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s.ping() {
			return
		}
		select {
		case <-s.stopped:
			s.t.Fatalf("redis-server exited: %s", out.String())
		case <-time.After(10 * time.Millisecond): // polling another process's start-up
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not answer on %s: %s", s.Addr(), out.String())
		}
	}
}

func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.stopped
	s.cmd = nil
}
