//go:build fault

package fault_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

// TestRevocationAcrossReplicas runs two `jwtgate serve` processes, A and B,
// over one real redis-server, with a strict login policy whose signing key both
// read from the same files. It checks, as processes and over HTTP only:
//
//   - a session started on A is accepted by B, and renews on B;
//   - a sign-out on A is refused by B (refresh and, strict, the access token)
//     within a second;
//   - the admin API refuses requests without its token, and its revocation of
//     a user on A ends every session of that user on B within a second;
//   - with redis-server stopped, sign-in on A answers 503 while B keeps
//     accepting a live session it has seen, from its local cache;
//   - with redis-server back on the same port (append-only file, so its data
//     survives), sign-in works again and the live session still renews.
//
// Every wait is a polling deadline; the propagation times are logged.
func TestRevocationAcrossReplicas(t *testing.T) {
	testStart := time.Now()
	dir := t.TempDir()
	rs := startRedisServer(t, filepath.Join(dir, "redis"))

	policyFile := filepath.Join(dir, "shop.yaml")
	writeLoginPolicy(t, policyFile, "alice", "bob", "carol", "dave")
	tokenFile := filepath.Join(dir, "admin-token")
	adminToken := "fault-test-admin-token-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state") // the same for both, as the brief asks
	a := startReplica(t, dir, "jwtgate-a", rs.url(), stateDir, tokenFile, policyFile)
	b := startReplica(t, dir, "jwtgate-b", rs.url(), stateDir, tokenFile, policyFile)
	t.Logf("redis-server on port %d, A on %s (admin %s), B on %s (admin %s); started in %s",
		rs.port, a.addr, a.admin, b.addr, b.admin, time.Since(testStart).Round(time.Millisecond))

	// ---- the admin API refuses requests without its token ----
	for _, auth := range []string{"", "Bearer wrong-token-of-enough-length", "Basic " + adminToken} {
		if code, body := a.adminDo(http.MethodPost, "/admin/revoke", auth, `{"policy":"default/shop","sub":"alice"}`); code != http.StatusUnauthorized {
			t.Fatalf("POST /admin/revoke with Authorization %q: %d, want 401\n%s", auth, code, body)
		}
		if code, body := b.adminDo(http.MethodGet, "/admin/tokens?policy=default/shop&sub=alice", auth, ""); code != http.StatusUnauthorized {
			t.Fatalf("GET /admin/tokens with Authorization %q: %d, want 401\n%s", auth, code, body)
		}
	}

	// ---- sign in on A, accepted by B; refresh on B ----
	s0 := a.mustSignIn(t, "alice")
	within(t, 2*time.Second, time.Now(), "B to accept the access token A issued", func() bool {
		return b.decide(nil, "/app", s0.Access) == http.StatusOK
	})
	s0r := b.mustRefresh(t, "alice's first session", s0.Refresh)
	if s0r.Refresh == s0.Refresh || s0r.Access == s0.Access {
		t.Fatal("refresh on B did not rotate the tokens")
	}
	if sidOf(t, s0r.Access) != sidOf(t, s0.Access) {
		t.Fatal("refresh on B started another session")
	}
	for _, r := range []*replica{a, b} {
		if code := r.decide(nil, "/app", s0r.Access); code != http.StatusOK {
			t.Fatalf("%s: decision with the refreshed access token: %d, want 200", r.name, code)
		}
	}

	// ---- sign-out on A: B refuses the refresh token and (strict) the access
	// tokens of the session within a second ----
	start := time.Now()
	refused := b.watchRefusal(start, s0r.Access, s0.Access)
	if code, _, _, body := a.logout(s0r.Refresh); code != http.StatusNoContent {
		t.Fatalf("logout on A: %d, want 204\n%s", code, body)
	}
	logoutAnswered := time.Since(start)
	refusedAfter := refused(t, time.Second, "B to refuse the access tokens of the session A signed out")
	t.Logf("sign-out on A -> access token refused by B (strict): %s after the logout was sent (polled from the side; logout answered in %s)",
		refusedAfter.Round(10*time.Microsecond), logoutAnswered.Round(10*time.Microsecond))
	for _, tok := range []string{s0r.Refresh, s0.Refresh} {
		if code, _, _, body := b.refresh(tok); code != http.StatusUnauthorized {
			t.Fatalf("refresh on B with a refresh token of the signed-out session: %d, want 401\n%s", code, body)
		}
	}

	// ---- sessions for later: bob's (seen by B) outlives the outage; carol's
	// is never shown to B before it ----
	bob := a.mustSignIn(t, "bob")
	if code := b.decide(nil, "/app", bob.Access); code != http.StatusOK {
		t.Fatalf("B: bob's access token: %d, want 200", code)
	}
	carol := a.mustSignIn(t, "carol")

	// ---- the admin's kill switch: two sessions of alice, revoked on A ----
	s1, s2 := a.mustSignIn(t, "alice"), a.mustSignIn(t, "alice")
	if sidOf(t, s1.Access) == sidOf(t, s2.Access) {
		t.Fatal("two sign-ins share a session")
	}
	for _, s := range []tokens{s1, s2} {
		if code := b.decide(nil, "/app", s.Access); code != http.StatusOK {
			t.Fatalf("B: alice's new access token: %d, want 200", code)
		}
	}
	// The refused requests above ended nothing.
	if code := b.decide(nil, "/app", s1.Access); code != http.StatusOK {
		t.Fatalf("B: alice's session after the admin API refused requests without its token: %d, want 200", code)
	}
	start = time.Now()
	refused = b.watchRefusal(start, s1.Access, s2.Access)
	code, body := a.adminDo(http.MethodPost, "/admin/revoke", "Bearer "+adminToken, `{"policy":"default/shop","sub":"alice"}`)
	revokeAnswered := time.Since(start)
	if code != http.StatusOK {
		t.Fatalf("POST /admin/revoke on A: %d, want 200\n%s", code, body)
	}
	var revoked struct {
		Ended int `json:"ended"`
	}
	if err := json.Unmarshal([]byte(body), &revoked); err != nil || revoked.Ended != 2 {
		t.Fatalf("POST /admin/revoke on A answered %s (%v), want ended: 2", body, err)
	}
	refusedAfter = refused(t, time.Second, "B to refuse both sessions the admin revoked on A")
	t.Logf("admin revoke of a user on A -> both access tokens refused by B (strict): %s after the request was sent (polled from the side; revoke answered in %s)",
		refusedAfter.Round(10*time.Microsecond), revokeAnswered.Round(10*time.Microsecond))
	for i, s := range []tokens{s1, s2} {
		for _, r := range []*replica{b, a} {
			if code, _, _, body := r.refresh(s.Refresh); code != http.StatusUnauthorized {
				t.Fatalf("%s: refresh of alice's revoked session %d: %d, want 401\n%s", r.name, i+1, code, body)
			}
		}
	}
	if code := b.decide(nil, "/app", bob.Access); code != http.StatusOK {
		t.Fatalf("B: bob's access token after alice was revoked: %d, want 200", code)
	}

	// ---- redis-server stops ----
	lostBefore := strings.Count(readFile(b.Log), "lost the Redis connection")
	backBefore := strings.Count(readFile(b.Log), "Redis is back")
	stopAt := time.Now()
	rs.stop()
	t.Logf("redis-server stopped (SIGTERM) in %s", time.Since(stopAt).Round(time.Millisecond))

	// Sign-in on A fails closed: 503 with Retry-After.
	var hdr http.Header
	unavailableAfter := within(t, 5*time.Second, stopAt, "sign-in on A to answer 503 with Redis stopped", func() bool {
		var code int
		code, _, hdr, body = a.signIn("dave")
		if code == http.StatusOK {
			t.Fatal("sign-in on A succeeded with redis-server stopped")
		}
		return code == http.StatusServiceUnavailable
	})
	if hdr.Get("Retry-After") == "" || !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("sign-in on A with Redis stopped: 503 without Retry-After or its JSON error: %v\n%s", hdr, body)
	}
	t.Logf("redis-server stopped -> sign-in on A answers 503: %s", unavailableAfter.Round(10*time.Microsecond))

	// B keeps accepting bob's live session from its cache: every decision is
	// 200, before and for a second after B has noticed the loss.
	var noticed time.Time
	decisions := 0
	for deadline := time.Now().Add(startupTimeout); ; {
		if code := b.decide(nil, "/app", bob.Access); code != http.StatusOK {
			t.Fatalf("B, Redis stopped: bob's live access token refused after %d decisions: %d, want 200 from the local cache", decisions, code)
		}
		decisions++
		if noticed.IsZero() && strings.Count(readFile(b.Log), "lost the Redis connection") > lostBefore {
			noticed = time.Now()
			t.Logf("B logged the loss of Redis %s after it stopped", noticed.Sub(stopAt).Round(time.Millisecond))
		}
		if !noticed.IsZero() && time.Since(noticed) > time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B did not log the loss of Redis within %s of its stop", startupTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("Redis stopped: %d decisions on B with bob's live token, all 200", decisions)
	// What B must not do without Redis: accept a session it cannot vouch for
	// (never seen: fail closed), accept a revoked one, or renew.
	if code := b.decide(nil, "/app", carol.Access); code != http.StatusUnauthorized {
		t.Fatalf("B, Redis stopped: carol's access token, a session B never saw: %d, want 401 (fail closed)", code)
	}
	if code := b.decide(nil, "/app", s1.Access); code != http.StatusUnauthorized {
		t.Fatalf("B, Redis stopped: alice's revoked access token: %d, want 401", code)
	}
	if code, _, _, body := b.refresh(bob.Refresh); code != http.StatusServiceUnavailable {
		t.Fatalf("B, Redis stopped: refresh of bob's session: %d, want 503 (the token is kept)\n%s", code, body)
	}

	// ---- redis-server restarts on the same port, with its data ----
	restartAt := time.Now()
	rs.start()
	upAt := time.Now()
	t.Logf("redis-server restarted on port %d: answering PING %s after the start (outage %s)",
		rs.port, upAt.Sub(restartAt).Round(time.Millisecond), upAt.Sub(stopAt).Round(time.Millisecond))
	var dave tokens
	signInAfter := within(t, startupTimeout, upAt, "sign-in on A to work again after Redis returned", func() bool {
		code, tk, _, body := a.signIn("dave")
		switch code {
		case http.StatusOK:
			dave = tk
			return true
		case http.StatusServiceUnavailable:
			return false
		}
		t.Fatalf("sign-in on A after Redis returned: %d, want 200 (or 503 until A reconnects)\n%s", code, body)
		return false
	})
	backAfter := within(t, startupTimeout, upAt, "B to log that Redis is back and its cache resynchronised", func() bool {
		return strings.Count(readFile(b.Log), "Redis is back") > backBefore
	})
	t.Logf("Redis back -> sign-in on A works after %s; B resynchronised after %s",
		signInAfter.Round(time.Millisecond), backAfter.Round(time.Millisecond))

	// bob's session, started before the outage, still renews.
	var bob2 tokens
	within(t, startupTimeout, time.Now(), "bob's session to refresh on B after Redis returned", func() bool {
		code, tk, _, body := b.refresh(bob.Refresh)
		switch code {
		case http.StatusOK:
			bob2 = tk
			return true
		case http.StatusServiceUnavailable:
			return false
		}
		t.Fatalf("refresh of bob's session on B after Redis returned: %d, want 200\n%s", code, body)
		return false
	})
	if bob2.Refresh == bob.Refresh || sidOf(t, bob2.Access) != sidOf(t, bob.Access) {
		t.Fatal("bob's refresh after the outage did not rotate the token of the same session")
	}
	for _, r := range []*replica{a, b} {
		for what, tok := range map[string]string{"bob's renewed": bob2.Access, "dave's": dave.Access} {
			if code := r.decide(nil, "/app", tok); code != http.StatusOK {
				t.Fatalf("%s after Redis returned: %s access token: %d, want 200", r.name, what, code)
			}
		}
	}
	// Nothing lost either way: carol's session, which B could not vouch for
	// during the outage, is accepted again; alice's revoked ones stay ended.
	within(t, 2*time.Second, time.Now(), "B to accept carol's session again", func() bool {
		return b.decide(nil, "/app", carol.Access) == http.StatusOK
	})
	for _, s := range []tokens{s0r, s1, s2} {
		for _, r := range []*replica{a, b} {
			if code := r.decide(nil, "/app", s.Access); code != http.StatusUnauthorized {
				t.Fatalf("%s after Redis returned: an ended session of alice: %d, want 401", r.name, code)
			}
		}
		if code, _, _, body := b.refresh(s.Refresh); code != http.StatusUnauthorized {
			t.Fatalf("B after Redis returned: refresh of an ended session of alice: %d, want 401\n%s", code, body)
		}
	}
	t.Logf("test body ran in %s", time.Since(testStart).Round(time.Millisecond))
}

// ---- the policy ----

// loginPolicyYAML is a strict login policy for app.test; writeLoginPolicy
// appends the users' lines and the signing key Secret.
const loginPolicyYAML = `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: shop, namespace: default}
spec:
  hosts: ["app.test"]
  rules:
    - path: /public/
      public: true
  login:
    usersSecretRef: {name: shop-users, key: users}
    signingKeySecretRef: {name: shop-signing}
    accessTokenTTL: 5m
    refreshTokenTTL: 1h
    revocation: strict
---
apiVersion: v1
kind: Secret
metadata: {name: shop-users, namespace: default}
stringData:
  users: |
`

// writeLoginPolicy writes the policy, a users Secret (password: NAME-password,
// bcrypt cost 4) and a signing key Secret made by `jwtgate keygen`, so that
// every process reading the file signs and verifies with the same key.
func writeLoginPolicy(t *testing.T, path string, users ...string) {
	t.Helper()
	var cfg strings.Builder
	cfg.WriteString(loginPolicyYAML)
	for _, u := range users {
		hash, err := bcrypt.GenerateFromPassword([]byte(u+"-password"), 4)
		if err != nil {
			t.Fatal(err)
		}
		cfg.WriteString("    " + u + ":" + string(hash) + ":user\n")
	}
	keygen := exec.Command(jwtgateBin, "keygen", "--alg", "ES256", "--namespace", "default", "--name", "shop-signing")
	key, err := keygen.Output()
	if err != nil {
		t.Fatalf("jwtgate keygen: %v", err)
	}
	cfg.WriteString("---\n")
	cfg.Write(key)
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ---- jwtgate replicas ----

// replica is one `jwtgate serve` over the shared Redis, with its admin API.
type replica struct {
	*jwtgate
	name  string
	admin string
}

func startReplica(t *testing.T, dir, name, redisURL, stateDir, tokenFile, policyFile string) *replica {
	t.Helper()
	r := &replica{jwtgate: &jwtgate{addr: freeAddr(t)}, name: name, admin: freeAddr(t)}
	r.process = startProcess(t, filepath.Join(dir, name+".log"), jwtgateBin, "serve",
		"-f", policyFile,
		"--listen", r.addr,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "0",
		"--redis-url", redisURL,
		"--state-dir", stateDir,
		"--admin-bind-address", r.admin,
		"--admin-token-file", tokenFile,
		"--log-format", "text",
		"--shutdown-timeout", "2s")
	waitFor(t, r.process, name+" to serve the policy and its admin API", func() bool {
		if r.decide(nil, "/public/x", "") != http.StatusOK {
			return false
		}
		code, _ := r.adminDo(http.MethodGet, "/admin/tokens", "", "")
		return code == http.StatusUnauthorized
	})
	return r
}

// tokens is the JSON answer of sign-in and refresh.
type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
}

// api posts a JSON body to a sign-in page of app.test; status 0 when the
// request failed.
func (r *replica) api(path string, body any) (int, tokens, http.Header, string) {
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+path, strings.NewReader(string(b)))
	req.Host = "app.test"
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := directClient.Do(req)
	if err != nil {
		return 0, tokens{}, nil, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var tk tokens
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(rb, &tk); err != nil {
			return resp.StatusCode, tk, resp.Header, fmt.Sprintf("%s (not the tokens JSON: %v)", rb, err)
		}
	}
	return resp.StatusCode, tk, resp.Header, string(rb)
}

func (r *replica) signIn(user string) (int, tokens, http.Header, string) {
	return r.api("/jwtgate/login", map[string]string{"username": user, "password": user + "-password"})
}

func (r *replica) refresh(refreshToken string) (int, tokens, http.Header, string) {
	return r.api("/jwtgate/refresh", map[string]string{"refresh_token": refreshToken})
}

func (r *replica) logout(refreshToken string) (int, tokens, http.Header, string) {
	return r.api("/jwtgate/logout", map[string]string{"refresh_token": refreshToken})
}

func (r *replica) mustSignIn(t *testing.T, user string) tokens {
	t.Helper()
	code, tk, _, body := r.signIn(user)
	if code != http.StatusOK || tk.Access == "" || tk.Refresh == "" {
		t.Fatalf("%s: sign-in of %s: %d, want 200 with tokens\n%s", r.name, user, code, body)
	}
	return tk
}

func (r *replica) mustRefresh(t *testing.T, what, refreshToken string) tokens {
	t.Helper()
	code, tk, _, body := r.refresh(refreshToken)
	if code != http.StatusOK || tk.Access == "" || tk.Refresh == "" {
		t.Fatalf("%s: refresh of %s: %d, want 200 with tokens\n%s", r.name, what, code, body)
	}
	return tk
}

// adminDo calls the admin API with an Authorization header (none when empty).
func (r *replica) adminDo(method, path, auth, body string) (int, string) {
	req, _ := http.NewRequest(method, "http://"+r.admin+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := directClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// sidOf returns the session claim of an access token (not verified: the
// replicas do that).
func sidOf(t *testing.T, token string) string {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatalf("access token: %v", err)
	}
	sid, _ := claims["sid"].(string)
	if sid == "" {
		t.Fatal("access token without sid")
	}
	return sid
}

// watchRefusal polls r every millisecond, from now on and concurrently with
// the caller, until every token is refused (401). The function it returns
// waits for that and returns the time from start to the answer of the first
// poll that saw it (which may come before the caller's own request is
// answered); it fails the test when that is later than start+d.
func (r *replica) watchRefusal(start time.Time, tokens ...string) func(t *testing.T, d time.Duration, what string) time.Duration {
	seen := make(chan time.Duration, 1)
	stop := make(chan struct{})
	go func() {
		for {
			all := true
			for _, tok := range tokens {
				if r.decide(nil, "/app", tok) != http.StatusUnauthorized {
					all = false
					break
				}
			}
			if all {
				seen <- time.Since(start)
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func(t *testing.T, d time.Duration, what string) time.Duration {
		t.Helper()
		select {
		case el := <-seen:
			if el > d {
				t.Fatalf("%s: took %s, want at most %s", what, el, d)
			}
			return el
		case <-time.After(time.Until(start.Add(d))):
			close(stop)
			t.Fatalf("%s: not within %s", what, d)
			return 0
		}
	}
}

// within polls cond every 5 ms until it holds and returns the time since
// start; it fails the test when cond has not held by start+d.
func within(t *testing.T, d time.Duration, start time.Time, what string, cond func() bool) time.Duration {
	t.Helper()
	for {
		ok := cond()
		elapsed := time.Since(start)
		if ok && elapsed <= d {
			return elapsed
		}
		if elapsed > d {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// ---- redis-server ----

const redisInstallHint = "redis-server is needed by this test and was not found: install it with\n" +
	"\tsudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server\n" +
	"(or run hack/install-deps.sh redis-server as root; the test starts its own server on a free loopback port)"

// redisServer is a redis-server this test starts on a free loopback port, with
// an append-only file in its own folder from the start, so that a restart on
// the same port keeps its data.
type redisServer struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	log  string
	cmd  *exec.Cmd
	done chan error
}

// startRedisServer starts redis-server and stops it when the test ends (after
// the processes started later, which stop first). A missing redis-server fails
// the test.
func startRedisServer(t *testing.T, dir string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("%s\n(%v)", redisInstallHint, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	r := &redisServer{t: t, bin: bin, dir: dir, log: filepath.Join(dir, "redis.log")}
	r.port, _ = strconv.Atoi(port)
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			b := readFile(r.log)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("---- redis.log ----\n%s", b)
		}
	})
	r.start()
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start runs redis-server and waits until it answers PING (after loading its
// append-only file).
func (r *redisServer) start() {
	t := r.t
	t.Helper()
	out, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always",
		"--dir", r.dir, "--logfile", "", "--loglevel", "notice", "--daemonize", "no")
	cmd.Dir = r.dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		t.Fatalf("starting redis-server: %v", err)
	}
	r.cmd, r.done = cmd, make(chan error, 1)
	go func() { r.done <- cmd.Wait(); _ = out.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for !r.ping() {
		select {
		case err := <-r.done:
			r.cmd = nil
			t.Fatalf("redis-server on port %d exited: %v\n%s", r.port, err, readFile(r.log))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not answer PING within 10 s", r.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(r.port), time.Second)
	if err != nil {
		return false
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := io.ReadAtLeast(c, buf, 5)
	return strings.HasPrefix(string(buf[:n]), "+PONG")
}

// stop ends redis-server with SIGTERM (it syncs its append-only file) and
// waits for it; SIGKILL after 5 s.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	pid := r.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Logf("redis-server (pid %d) after SIGTERM: %v", pid, err)
		}
	case <-time.After(5 * time.Second):
		r.t.Errorf("redis-server (pid %d) did not stop within 5 s of SIGTERM; killing it", pid)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		if err := <-r.done; err != nil {
			r.t.Logf("redis-server (pid %d) killed: %v", pid, err)
		}
	}
	r.cmd = nil
}
