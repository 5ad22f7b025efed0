package redisstore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server this test package starts on a free loopback
// port and stops at the end.
type redisServer struct {
	port int
	dir  string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

const installHint = "redis-server is needed by these tests and was not found: install it with\n\tsudo apt-get install -y redis-server\n(Debian/Ubuntu; the tests start their own server on a free loopback port and need no running service)"

var (
	shared     *redisServer
	sharedOnce sync.Once
	sharedErr  error
	servers    sync.Map // *redisServer -> struct{}, stopped by TestMain
	prefixSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // dial failures are expected in the outage tests
	code := m.Run()
	servers.Range(func(k, _ any) bool {
		s := k.(*redisServer)
		s.stop()
		_ = os.RemoveAll(s.dir)
		return true
	})
	os.Exit(code)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// sharedRedis returns the package's server, started on first use. A missing
// redis-server fails the test.
func sharedRedis(t *testing.T) *redisServer {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = startRedis() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// startRedis starts a server; extra arguments follow the defaults (later ones
// win in redis-server).
func startRedis(extra ...string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%s: %v", installHint, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "jwtgate-redis-")
	if err != nil {
		return nil, err
	}
	s := &redisServer{port: port, dir: dir}
	s.args = append([]string{"--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
		"--dir", dir, "--logfile", "", "--loglevel", "warning"}, extra...)
	s.args = append([]string{bin}, s.args...)
	servers.Store(s, struct{}{})
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

func (s *redisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting redis-server: %w", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s.pingLocked() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	s.cmd = nil
	return fmt.Errorf("redis-server on port %d did not answer within 10 s", s.port)
}

func (s *redisServer) pingLocked() error {
	reply, err := s.do("PING")
	if err != nil {
		return err
	}
	if reply != "+PONG" && !strings.HasPrefix(reply, "-NOAUTH") { // with --requirepass
		return fmt.Errorf("PING: %s", reply)
	}
	return nil
}

// do sends one inline command and returns the first line of the reply.
func (s *redisServer) do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// stop ends the server (SIGTERM; with --appendonly yes it keeps its data).
func (s *redisServer) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// newTestStore opens a store on srv with a key prefix of its own, closed at
// the end of the test.
func newTestStore(t *testing.T, srv *redisServer, prefix string, o Options) *Store {
	t.Helper()
	o.URL = srv.url()
	o.KeyPrefix = prefix
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func uniquePrefix(t *testing.T) string {
	return fmt.Sprintf("jwtgate-test-%d-%s:", prefixSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "."))
}
