//go:build fault

package fault_test

// Adapted from test/e2e/harness_test.go: build the binary once, start processes
// in their own process group, stop them when the test ends.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	nginxBin       = "/usr/sbin/nginx"
	startupTimeout = 15 * time.Second
)

var (
	repoRoot   string
	jwtgateBin string
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "jwtgate-fault-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	jwtgateBin = filepath.Join(dir, "jwtgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", jwtgateBin, "./cmd/jwtgate")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build ./cmd/jwtgate: %v\n%s", err, out)
	}
	return m.Run(), nil
}

func requireNginx(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Fatalf("nginx is missing: run hack/install-deps.sh as root (make fault does), or: sudo apt-get update && sudo apt-get install -y --no-install-recommends nginx")
	}
}

// ---- keys and tokens ----

type signer struct{ key *ecdsa.PrivateKey }

func newSigner(t *testing.T) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{key: k}
}

func (s signer) publicPEM(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

var tokenSeq atomic.Int64

func (s signer) token(t *testing.T) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"sub": "alice", "iat": now.Unix(), "exp": now.Add(30 * time.Minute).Unix(),
		"jti": strconv.FormatInt(tokenSeq.Add(1), 10), "roles": []string{"user"},
	}).SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const policyYAML = `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: shop, namespace: default}
spec:
  hosts: ["app.test"]
  jwt:
    algorithms: [ES256]
    keys:
      - secretRef: {name: shop-keys, key: keys.pem}
  rules:
    - path: /public/
      public: true
    - path: /admin/
      roles: [admin]
`

// keysSecret is the Secret YAML holding the public keys of signers.
func keysSecret(t *testing.T, signers ...signer) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Secret\nmetadata: {name: shop-keys, namespace: default}\nstringData:\n  keys.pem: |\n")
	for _, s := range signers {
		for _, line := range strings.Split(strings.TrimSpace(s.publicPEM(t)), "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	return []byte(b.String())
}

// ---- processes ----

type process struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startProcess starts a program in its own process group, its output in
// logFile, and stops it (SIGTERM, then SIGKILL to the group after 5 s) when the
// test ends.
func startProcess(t *testing.T, logFile, bin string, args ...string) *process {
	t.Helper()
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		t.Fatalf("starting %s: %v", bin, err)
	}
	p := &process{name: filepath.Base(bin), cmd: cmd, done: make(chan error, 1), log: logFile}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		defer out.Close()
		pid := cmd.Process.Pid
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case err := <-p.done:
			p.done <- err
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not stop within 10 s of SIGTERM; killing it", p.name, pid)
			syscall.Kill(-pid, syscall.SIGKILL)
		}
		syscall.Kill(-pid, syscall.SIGKILL)
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

// waitFor polls ready every 50 ms until it holds, the process exits, or
// startupTimeout passes.
func waitFor(t *testing.T, p *process, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(startupTimeout)
	for !ready() {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("waiting for %s: %s exited: %v", what, p.name, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not ready after %s", what, startupTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// jwtgate is one `jwtgate serve` process.
type jwtgate struct {
	*process
	addr, probes string
}

// startJwtgate runs `jwtgate serve -f paths...` and waits until /readyz passes
// and the policy answers.
func startJwtgate(t *testing.T, dir, name string, extra []string, paths ...string) *jwtgate {
	t.Helper()
	j := &jwtgate{addr: freeAddr(t), probes: freeAddr(t)}
	args := []string{"serve", "--listen", j.addr, "--metrics-bind-address", "0",
		"--health-probe-bind-address", j.probes, "--state-dir", filepath.Join(dir, "state-"+name),
		"--log-format", "text"}
	args = append(args, extra...)
	for _, p := range paths {
		args = append(args, "-f", p)
	}
	j.process = startProcess(t, filepath.Join(dir, name+".log"), jwtgateBin, args...)
	waitFor(t, j.process, name+" to serve the policy", func() bool {
		return j.decide(nil, "/public/x", "") == http.StatusOK
	})
	return j
}

var directClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
}

// decide asks jwtgate directly, as nginx's auth subrequest would; 0 when the
// request failed.
func (j *jwtgate) decide(c *http.Client, path, token string) int {
	if c == nil {
		c = directClient
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+j.addr+"/jwtgate/auth/default/shop", nil)
	req.Header.Set("X-Original-URL", "http://app.test"+path)
	req.Header.Set("X-Original-Method", http.MethodGet)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
