//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/jwtgate/jwtgate/internal/testproc"
	"golang.org/x/crypto/bcrypt"
)

const (
	appHost       = "app.test"
	alicePassword = "alice: correct horse"
	rootPassword  = "root: battery staple"

	nginxBin       = "/usr/sbin/nginx"
	chromiumBin    = "/usr/bin/chromium"
	setMiscModule  = "/usr/lib/nginx/modules/ngx_http_set_misc_module.so"
	startupTimeout = testproc.StartupTimeout
)

// Made once by TestMain.
var (
	repoRoot   string
	jwtgateBin string
	certFile   string // server certificate for app.test, signed by the test CA
	keyFile    string
	caPool     *x509.CertPool
	serverSPKI string // base64 SHA-256 of the server key, for Chromium
	usersFile  string // users Secret lines (bcrypt cost 4)
)

func TestMain(m *testing.M) { testproc.Main(m, "e2e", setup) }

func setup(root, bin, dir string) error {
	repoRoot, jwtgateBin = root, bin
	if err := makeCerts(dir); err != nil {
		return fmt.Errorf("making the test CA: %w", err)
	}

	// bcrypt at cost 4: these tests check the flow, not the hash's strength.
	var users strings.Builder
	for _, u := range []struct{ name, pw, roles string }{
		{"alice", alicePassword, "user"},
		{"root", rootPassword, "admin,user"},
	} {
		h, err := bcrypt.GenerateFromPassword([]byte(u.pw), 4)
		if err != nil {
			return err
		}
		fmt.Fprintf(&users, "%s:%s:%s\n", u.name, h, u.roles)
	}
	usersFile = users.String()
	return nil
}

// makeCerts makes a CA and a server certificate for app.test (and 127.0.0.1)
// that it signs, as openssl would; clients trust the CA.
func makeCerts(dir string) error {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "jwtgate e2e test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: appHost},
		DNSNames:     []string{appHost},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(spki)
	serverSPKI = base64.StdEncoding.EncodeToString(sum[:])

	// nginx wants the chain: the server certificate, then the CA.
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	certFile = filepath.Join(dir, "app.test.crt")
	keyFile = filepath.Join(dir, "app.test.key")
	if err := os.WriteFile(certFile, chain, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	caPool = x509.NewCertPool()
	caPool.AddCert(ca)
	return nil
}

// requirePackages fails the test, with the command that fixes it, when a
// Debian package the test starts is missing. It never skips.
func requirePackages(t *testing.T, browser, setMisc bool) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(nginxBin); err != nil {
		missing = append(missing, "nginx")
	}
	if _, err := os.Stat(setMiscModule); setMisc && err != nil {
		missing = append(missing, "libnginx-mod-http-set-misc")
	}
	if _, err := os.Stat(chromiumBin); browser && err != nil {
		missing = append(missing, "chromium")
	}
	if len(missing) > 0 {
		t.Fatalf("missing Debian packages %s: run hack/install-deps.sh as root (make e2e does), or: sudo apt-get update && sudo apt-get install -y --no-install-recommends %s",
			strings.Join(missing, ", "), strings.Join(missing, " "))
	}
}

// ---- the stack: jwtgate serve, the echoing upstream, nginx ----

type nginxConfig int

const (
	ingressStyle          nginxConfig = iota // as ingress-nginx renders auth-url + auth-signin
	ingressStyleKeepalive                    // the same with auth-keepalive
	readmePlainNginx                         // README.md's "Plain nginx" block, verbatim
	caddyGuide                               // Caddy with docs/proxies/caddy.md's Caddyfile instead of nginx
	traefikIngressNGINX                      // Traefik's ingress-nginx provider reading docs/proxies/traefik.md's Ingresses
	traefikMiddleware                        // Traefik's CRD provider reading the page's Middleware and IngressRoute
	haproxyGuide                             // HAProxy with docs/proxies/haproxy.md's Lua action and config
)

// forwardAuthDoor: the proxy asks /jwtgate/forward-auth, which answers API
// calls 401 and page loads 302 (nginx turns every 401 into the redirect).
func (c nginxConfig) forwardAuthDoor() bool {
	return c == caddyGuide || c == traefikIngressNGINX || c == traefikMiddleware || c == haproxyGuide
}

func (c nginxConfig) String() string {
	return [...]string{"ingress-nginx style", "ingress-nginx style with keepalive", "README plain nginx", "Caddy guide", "Traefik ingress-nginx provider", "Traefik Middleware", "HAProxy guide"}[c]
}

type stack struct {
	t      *testing.T
	dir    string
	config nginxConfig
	port   int    // nginx's TLS port on 127.0.0.1
	origin string // https://app.test:port

	// oidcLogin is YAML put under the policy's login (indented four spaces),
	// oidcDocs more YAML documents for the policy file (a client's Secret).
	oidcLogin, oidcDocs string

	jwtgate   string        // jwtgate's listener
	jwtgateP  *process      // jwtgate serve
	authAddr  string        // the counting proxy in front of jwtgate that the proxy's auth requests go through
	authConns *atomic.Int64 // connections nginx opened to jwtgate through the counting proxy
	app       *echoApp
}

// newStack starts jwtgate serve (policy default/shop for app.test, users alice
// and root, signing key created in --state-dir), the echoing upstream and
// nginx with the given config, and stops them all when the test ends.
func newStack(t *testing.T, config nginxConfig) *stack {
	t.Helper()
	return newStackWith(t, config, nil)
}

// newStackWith is newStack with prepare called, once the site's origin is
// known, before jwtgate starts (to add to the policy).
func newStackWith(t *testing.T, config nginxConfig, prepare func(*stack)) *stack {
	t.Helper()
	if !config.forwardAuthDoor() {
		requirePackages(t, false, config != readmePlainNginx)
	}
	s := &stack{t: t, dir: t.TempDir(), config: config}
	t.Cleanup(s.dumpLogsOnFailure)
	s.port = freePort(t)
	s.origin = "https://" + appHost + ":" + strconv.Itoa(s.port)
	if prepare != nil {
		prepare(s)
	}
	s.startJwtgate()
	proxy, conns := countingProxy(t, s.jwtgate)
	s.authConns, s.authAddr = conns, proxy
	s.app = newEchoApp(t)
	switch config {
	case caddyGuide:
		s.startCaddy(proxy)
	case traefikIngressNGINX, traefikMiddleware:
		s.startTraefik(proxy)
	case haproxyGuide:
		s.startHAProxy(proxy)
	default:
		s.startNginx(proxy)
	}
	return s
}

const policyYAML = `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: shop, namespace: default}
spec:
  hosts: ["app.test"]
  rolesClaim: roles
  rules:
    - path: /admin/
      roles: [admin]
  forwardClaims:
    - {claim: sub, header: X-Auth-User}
    - {claim: roles, header: X-Auth-Roles}
  login:
    usersSecretRef: {name: shop-users, key: users}
    signingKeySecretRef: {name: shop-signing}   # created by jwtgate serve in --state-dir
    accessTokenTTL: 5m
    refreshTokenTTL: 1h
---
apiVersion: v1
kind: Secret
metadata: {name: shop-users, namespace: default}
stringData:
  users: |
`

func (s *stack) startJwtgate() {
	t := s.t
	var cfg strings.Builder
	cfg.WriteString(strings.Replace(policyYAML, "    refreshTokenTTL: 1h\n", "    refreshTokenTTL: 1h\n"+s.oidcLogin, 1))
	for _, line := range strings.Split(strings.TrimSpace(usersFile), "\n") {
		cfg.WriteString("    " + line + "\n")
	}
	cfg.WriteString(s.oidcDocs)
	policyFile := filepath.Join(s.dir, "shop.yaml")
	if err := os.WriteFile(policyFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	s.jwtgate = "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := startProcess(t, filepath.Join(s.dir, "jwtgate.log"), jwtgateBin, "serve",
		"-f", policyFile,
		"--listen", s.jwtgate,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "0",
		"--state-dir", filepath.Join(s.dir, "state"),
		"--trusted-proxies", "127.0.0.1/32",
		"--log-format", "text",
		"--shutdown-timeout", "2s")
	// Ready when the policy has loaded with its signing key: its jwks.json answers.
	waitFor(t, p, "jwtgate serve to load the policy", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.jwtgate+"/jwtgate/jwks.json", nil)
		req.Host = appHost
		resp, err := (&http.Client{Timeout: time.Second}).Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	s.jwtgateP = p
}

// nginxParams fill the templates in testdata and the README substitutions.
type nginxParams struct {
	Dir       string
	User      string
	Port      int
	Cert, Key string
	AppAddr   string
	AuthAddr  string // the auth subrequests' upstream (the counting proxy)
	AuthHost  string
	PagesAddr string
	Keepalive bool
}

func (s *stack) startNginx(authAddr string) {
	t := s.t
	p := nginxParams{
		Dir:       s.dir,
		Port:      s.port,
		Cert:      certFile,
		Key:       keyFile,
		AppAddr:   s.app.addr,
		AuthAddr:  authAddr,
		AuthHost:  "jwtgate.jwtgate.svc.cluster.local",
		PagesAddr: s.jwtgate,
		Keepalive: s.config == ingressStyleKeepalive,
	}
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody, who cannot enter the test's
		// private temporary folder.
		p.User = "user root;"
	}
	var conf string
	switch s.config {
	case ingressStyle, ingressStyleKeepalive:
		conf = render(t, "testdata/ingress-nginx.conf.tmpl", p)
	case readmePlainNginx:
		conf = render(t, "testdata/main.conf.tmpl", p)
		site := readmeNginxConfig(t, p)
		if err := os.WriteFile(filepath.Join(s.dir, "readme-plain-nginx.conf"), []byte(site), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	confFile := filepath.Join(s.dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", s.dir + "/", "-c", confFile, "-e", filepath.Join(s.dir, "error.log")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, nginxBin, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\nconfig:\n%s", err, out, conf)
	}
	proc := startProcess(t, filepath.Join(s.dir, "nginx.out"), nginxBin, append(args, "-g", "daemon off;")...)
	waitFor(t, proc, "nginx to listen", func() bool {
		c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port), &tls.Config{ServerName: appHost, RootCAs: caPool})
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

func render(t *testing.T, file string, p nginxParams) string {
	t.Helper()
	tmpl, err := template.ParseFiles(file)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// readmeNginxConfig returns the nginx block of README.md's "Plain nginx"
// section, between its e2e marker comments, with only addresses, ports, file
// paths and the host name replaced. Each replaced string must be there, so a
// README edit that the test would not follow fails here.
func readmeNginxConfig(t *testing.T, p nginxParams) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- e2e: plain-nginx begin -->", "<!-- e2e: plain-nginx end -->"
	_, rest, ok1 := strings.Cut(string(readme), begin)
	block, _, ok2 := strings.Cut(rest, end)
	block = strings.TrimSpace(block)
	body, ok3 := strings.CutPrefix(block, "```nginx\n")
	body, ok4 := strings.CutSuffix(body, "```")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		t.Fatalf("README.md: no ```nginx block between %q and %q", begin, end)
	}
	for _, r := range []struct{ old, new string }{
		{"server 127.0.0.1:8000;", "server " + p.AuthAddr + ";"},
		{"server 127.0.0.1:3000;", "server " + p.AppAddr + ";"},
		{"listen 443 ssl;", "listen 127.0.0.1:" + strconv.Itoa(p.Port) + " ssl;"},
		{"/etc/nginx/tls/shop.example.com.crt", p.Cert},
		{"/etc/nginx/tls/shop.example.com.key", p.Key},
		{"server_name shop.example.com;", "server_name " + appHost + ";"},
	} {
		if strings.Count(body, r.old) != 1 {
			t.Fatalf("README.md's plain nginx config must hold %q exactly once (the e2e test replaces it)", r.old)
		}
		body = strings.Replace(body, r.old, r.new, 1)
	}
	return body
}

// client is a browser-like client: cookie jar, the test CA, app.test mapped to
// 127.0.0.1, redirects not followed (each step is checked).
func (s *stack) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				if host != appHost {
					return nil, fmt.Errorf("this client reaches only %s, not %s", appHost, host)
				}
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
			TLSClientConfig: &tls.Config{RootCAs: caPool},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (s *stack) dumpLogsOnFailure() {
	if !s.t.Failed() {
		return
	}
	for _, f := range []string{"jwtgate.log", "error.log", "access.log", "nginx.out", "traefik.log", "haproxy.log"} {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		s.t.Logf("---- %s (%s) ----\n%s", f, s.config, b)
	}
}

// ---- the upstream: echoes what it got ----

type echoApp struct {
	addr string
	hits atomic.Int64
}

// newEchoApp starts the app behind nginx. It answers each request with the
// request line and the headers it received, one "Name: value" line per value
// (Cookie left out), as text.
func newEchoApp(t *testing.T) *echoApp {
	a := &echoApp{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		var b strings.Builder
		fmt.Fprintf(&b, "upstream saw %s %s\n", r.Method, r.RequestURI)
		fmt.Fprintf(&b, "Host: %s\n", r.Host)
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			if k != "Cookie" {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			for _, v := range r.Header[k] {
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, b.String())
	}))
	t.Cleanup(srv.Close)
	a.addr = srv.Listener.Addr().String()
	return a
}

// ---- small helpers ----

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(testproc.FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// countingProxy forwards TCP connections to target and counts them, so a test
// can tell whether nginx keeps its connections to jwtgate alive.
func countingProxy(t *testing.T, target string) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		n     atomic.Int64
		mu    sync.Mutex
		open  = map[net.Conn]bool{}
		wg    sync.WaitGroup
		track = func(c net.Conn, add bool) {
			mu.Lock()
			defer mu.Unlock()
			if add {
				open[c] = true
			} else {
				delete(open, c)
			}
		}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, err := net.DialTimeout("tcp", target, 5*time.Second)
				if err != nil {
					_ = c.Close()
					return
				}
				track(c, true)
				track(u, true)
				done := make(chan struct{})
				go func() {
					_, _ = io.Copy(u, c)
					_ = u.(*net.TCPConn).CloseWrite()
					close(done)
				}()
				_, _ = io.Copy(c, u)
				_ = c.Close()
				<-done
				_ = u.Close()
				track(c, false)
				track(u, false)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String(), &n
}

type process = testproc.Process

func startProcess(t *testing.T, logFile, bin string, args ...string) *process {
	t.Helper()
	return testproc.Start(t, logFile, bin, args...)
}

func waitFor(t *testing.T, p *process, what string, ready func() bool) {
	t.Helper()
	testproc.WaitFor(t, p, what, ready)
}
