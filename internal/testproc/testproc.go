// Package testproc starts the real programs the process-level tests drive
// (jwtgate, nginx, redis-server) and stops them when a test ends. It is shared
// by the process-level tests (test/e2e, test/fault) and, for its small helpers,
// by other packages' tests.
package testproc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartupTimeout bounds how long WaitFor waits for a program to be ready.
const StartupTimeout = 15 * time.Second

// RepoRoot finds the repository root (the folder holding go.mod) from the
// working directory of a test.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// BuildJwtgate builds cmd/jwtgate into dir, as `make build` does, and returns
// the binary's path.
func BuildJwtgate(repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "jwtgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/jwtgate")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/jwtgate: %v\n%s", err, out)
	}
	return bin, nil
}

// Process is a program started by Start.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	Log  string     // the file holding its output
	Done chan error // receives its exit; put the value back after reading it
}

// Start starts a program in its own process group with its output in logFile,
// and stops it when the test ends (SIGTERM, then SIGKILL to the group after
// 10 s). When the test failed, the end of the log is printed.
func Start(t *testing.T, logFile, bin string, args ...string) *Process {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	p := &Process{Name: filepath.Base(bin), Cmd: cmd, Log: logFile, Done: make(chan error, 1)}
	go func() { p.Done <- cmd.Wait() }()
	t.Cleanup(func() {
		defer func() { _ = out.Close() }()
		pid := cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case err := <-p.Done:
			p.Done <- err
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not stop within 10 s of SIGTERM; killing it", p.Name, pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		// Leftovers of the group (nginx workers) if the master died first.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		if t.Failed() {
			if b, err := os.ReadFile(logFile); err == nil {
				if len(b) > 6000 {
					b = b[len(b)-6000:]
				}
				t.Logf("---- %s ----\n%s", filepath.Base(logFile), b)
			}
		}
	})
	return p
}

// WaitFor polls ready every 50 ms until it holds, the process exits, or
// StartupTimeout passes.
func WaitFor(t *testing.T, p *Process, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(StartupTimeout)
	for !ready() {
		select {
		case err := <-p.Done:
			p.Done <- err
			t.Fatalf("waiting for %s: %s exited: %v", what, p.Name, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not ready after %s", what, StartupTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreeAddr returns a loopback address with a port nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// Main is a test package's TestMain: it builds jwtgate into a temporary folder,
// calls setup with the repository root, the binary and that folder, runs the
// tests and exits. A setup error stops the package before any test runs.
func Main(m *testing.M, name string, setup func(repoRoot, jwtgateBin, dir string) error) {
	code, err := run(m, name, setup)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s setup: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M, name string, setup func(repoRoot, jwtgateBin, dir string) error) (int, error) {
	dir, err := os.MkdirTemp("", "jwtgate-"+name+"-")
	if err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	root, err := RepoRoot()
	if err != nil {
		return 0, err
	}
	bin, err := BuildJwtgate(root, dir)
	if err != nil {
		return 0, err
	}
	if err := setup(root, bin, dir); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// SyncBuffer is a bytes.Buffer that a program's output and a test may use at
// once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
