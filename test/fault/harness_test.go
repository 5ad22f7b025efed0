//go:build fault

package fault_test

// Adapted from test/e2e/harness_test.go: build the binary once, start processes
// in their own process group, stop them when the test ends.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

const (
	nginxBin       = "/usr/sbin/nginx"
	startupTimeout = testproc.StartupTimeout
)

var (
	repoRoot   string
	jwtgateBin string
)

func TestMain(m *testing.M) {
	testproc.Main(m, "fault", func(root, bin, _ string) error {
		repoRoot, jwtgateBin = root, bin
		return nil
	})
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

type process = testproc.Process

func startProcess(t *testing.T, logFile, bin string, args ...string) *process {
	t.Helper()
	return testproc.Start(t, logFile, bin, args...)
}

func waitFor(t *testing.T, p *process, what string, ready func() bool) {
	t.Helper()
	testproc.WaitFor(t, p, what, ready)
}

func freeAddr(t *testing.T) string { return testproc.FreeAddr(t) }

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
	_ = resp.Body.Close()
	return resp.StatusCode
}
