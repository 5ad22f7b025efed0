// Package oidctest runs a real OpenID provider for tests: Ory Hydra v2.3.0
// (built and cached by hack/oidc-provider.sh), on loopback, in memory. The
// test plays Hydra's login and consent app through its admin API, so a
// browser walk needs no page of its own: Walk follows the redirects and
// accepts the login and the consent with the subject and ID token claims it
// is given. For a real browser, StartApp runs a login and consent app that
// does the same on the browser's way through.
//
// It imports only the standard library and internal/testproc, so that the
// sign-in pages' tests, the controller's envtest and the process-level tests
// share it.
package oidctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/internal/testproc"
)

// CallbackPath is jwtgate's callback (login.OIDCCallbackPath), where Walk stops.
const CallbackPath = "/jwtgate/oidc/callback"

// The login and consent app's pages: Hydra redirects the browser there, and
// Walk answers in their place through the admin API. The host is never
// dialed (.invalid).
const (
	appURL      = "http://idp-app.invalid"
	loginPath   = "/idp-login"
	consentPath = "/idp-consent"
)

// Hydra is a running Ory Hydra.
type Hydra struct {
	t *testing.T
	// Public is the public base URL (http://localhost:PORT): the issuer is
	// Public + "/". Admin is the admin API's base URL.
	Public, Admin string

	stop func()
}

// Stop ends Hydra now (the provider goes down); it is also stopped when the
// test ends.
func (h *Hydra) Stop() { h.stop() }

// Issuer is the issuer URL Hydra puts in its discovery document and ID
// tokens, as a policy's issuerURL must spell it.
func (h *Hydra) Issuer() string { return h.Public + "/" }

// Binary is $JWTGATE_HYDRA (make test sets it), or the cached build of
// hack/oidc-provider.sh, built now when it is missing. Never a skip.
func Binary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("JWTGATE_HYDRA"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "hack", "oidc-provider.sh")
	out, err := exec.Command(script).Output()
	if err != nil {
		t.Fatalf("the OpenID provider is missing and %s could not build it: %v (run make oidc-provider)", script, err)
	}
	return strings.TrimSpace(string(out))
}

// Start runs `hydra serve all --dev` with an in-memory store on two free
// loopback ports, waits until it is ready and stops it when the test ends
// (printing its log if the test failed).
func Start(t *testing.T) *Hydra {
	t.Helper()
	return start(t, appURL)
}

// StartApp is Start with a login and consent app that a real browser can
// reach: an HTTP server on loopback that signs u in and grants every scope
// at once, through the admin API, and sends the browser back to Hydra. For
// a walk by headless Chromium, which cannot be steered as Walk steers a
// client.
func StartApp(t *testing.T, u User) *Hydra {
	t.Helper()
	var h *Hydra
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		var err error
		switch r.URL.Path {
		case loginPath:
			err = h.api("PUT", "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(q.Get("login_challenge")),
				map[string]any{"subject": u.Subject}, &out)
		case consentPath:
			err = h.api("PUT", "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(q.Get("consent_challenge")),
				map[string]any{"grant_scope": []string{"openid", "email", "profile"}, "session": map[string]any{"id_token": u.Claims}}, &out)
		default:
			http.NotFound(w, r)
			return
		}
		if err != nil {
			// Not t.Fatal: this is the server's goroutine, not the test's.
			t.Errorf("the login and consent app: %v", err)
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, out.RedirectTo, http.StatusFound)
	}))
	t.Cleanup(app.Close)
	h = start(t, app.URL)
	return h
}

func start(t *testing.T, appURL string) *Hydra {
	t.Helper()
	pub, adm := testproc.FreeAddr(t), testproc.FreeAddr(t)
	_, pubPort, _ := strings.Cut(pub, ":")
	_, admPort, _ := strings.Cut(adm, ":")
	h := &Hydra{t: t, Public: "http://localhost:" + pubPort, Admin: "http://127.0.0.1:" + admPort}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, Binary(t), "serve", "all", "--dev")
	cmd.Env = append(os.Environ(),
		"DSN=memory",
		"SERVE_PUBLIC_HOST=127.0.0.1", "SERVE_PUBLIC_PORT="+pubPort,
		"SERVE_ADMIN_HOST=127.0.0.1", "SERVE_ADMIN_PORT="+admPort,
		"URLS_SELF_ISSUER="+h.Issuer(),
		"URLS_LOGIN="+appURL+loginPath,
		"URLS_CONSENT="+appURL+consentPath,
		"URLS_LOGOUT="+appURL+"/idp-logout",
		"SECRETS_SYSTEM=jwtgate-test-system-secret-0123456789",
		"LOG_LEVEL=warn",
	)
	logs := &testproc.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("hydra's log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(testproc.StartupTimeout)
	for {
		resp, err := http.Get(h.Admin + "/health/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 && h.keysReady() {
				return h
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra did not become ready: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keysReady asks for Hydra's JWKS once it is up: Hydra makes its signing
// keys on first use, which takes seconds on a loaded machine, longer than a
// relying party's first fetch may wait (keys.Remote's 5 s timeout, then a
// retry 10 s later). A test starts signing in only once they exist.
func (h *Hydra) keysReady() bool {
	resp, err := (&http.Client{Timeout: time.Minute}).Get(h.Public + "/.well-known/jwks.json")
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&set) == nil && len(set.Keys) > 0
}

// API calls Hydra's admin API and decodes its JSON answer into out (when
// not nil). A status of 300 or more fails the test.
func (h *Hydra) API(method, path string, in, out any) {
	h.t.Helper()
	if err := h.api(method, path, in, out); err != nil {
		h.t.Fatal(err)
	}
}

func (h *Hydra) api(method, path string, in, out any) error {
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, h.Admin+path, bytes.NewReader(b)) //nolint:gosec // G704: the admin API of the Hydra this package started on loopback
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req) //nolint:gosec // G704: the same request
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("hydra %s %s: %d %s", method, path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("hydra %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Client registers a confidential client (client_secret_basic, code flow,
// scopes openid email profile) that may come back to base's callback and
// end its session back at base + "/", and returns its ID and secret.
func (h *Hydra) Client(base string) (id, secret string) {
	h.t.Helper()
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	h.API("POST", "/admin/clients", map[string]any{
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "openid email profile",
		"redirect_uris":              []string{base + CallbackPath},
		"post_logout_redirect_uris":  []string{base + "/"},
		"token_endpoint_auth_method": "client_secret_basic",
	}, &c)
	return c.ID, c.Secret
}

// User is who signs in at Hydra during a Walk: the subject and the claims
// the consent app puts into the ID token.
type User struct {
	Subject string
	Claims  map[string]any
}

// Walk follows a browser (c must keep cookies and not follow redirects) from
// start, an absolute URL that redirects towards Hydra (jwtgate's
// /jwtgate/oidc/start, or /jwtgate/login with only oidc), through Hydra,
// accepting the login and the consent for u, until Hydra redirects to
// jwtgate's callback. It returns that callback URL without following it.
func (h *Hydra) Walk(c *http.Client, start string, u User) *url.URL {
	h.t.Helper()
	next := start
	for range 20 {
		resp, err := c.Get(next)
		if err != nil {
			h.t.Fatalf("GET %s: %v", next, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode < 300 || resp.StatusCode > 399 {
			h.t.Fatalf("GET %s: %d, want a redirect", next, resp.StatusCode)
		}
		q := loc.Query()
		var out struct {
			RedirectTo string `json:"redirect_to"`
		}
		switch {
		case loc.Host == "idp-app.invalid" && loc.Path == loginPath:
			h.API("PUT", "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(q.Get("login_challenge")),
				map[string]any{"subject": u.Subject}, &out)
			next = out.RedirectTo
		case loc.Host == "idp-app.invalid" && loc.Path == consentPath:
			h.API("PUT", "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(q.Get("consent_challenge")),
				map[string]any{"grant_scope": []string{"openid", "email", "profile"}, "session": map[string]any{"id_token": u.Claims}}, &out)
			next = out.RedirectTo
		case loc.Path == CallbackPath:
			return loc
		default:
			next = loc.String()
		}
	}
	h.t.Fatal("no redirect to jwtgate's callback after 20 redirects")
	return nil
}

// Browser is a client with a cookie jar that does not follow redirects: a
// walk checks each step, and Walk follows the provider's redirects itself.
func Browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Get fetches u with c (a Browser: redirects are not followed) and returns the
// response, its body read and closed.
func Get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// SetCookie is the cookie named name that resp sets, or nil.
func SetCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// RenewSignOutAndRenewAgain is the end of every OIDC walk, against jwtgate at
// base with browser c signed in: a silent renewal (204), the sign-out page
// (offering the provider's sign-out by its display name), and the ended
// session's refresh token renewing nothing (401, no access token), sent by
// plain, a client without the browser's jar.
func RenewSignOutAndRenewAgain(t *testing.T, c, plain *http.Client, base, displayName string) {
	t.Helper()
	resp, err := c.Post(base+"/jwtgate/refresh", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("refresh: %d, want 204", resp.StatusCode)
	}
	var refresh string
	jwtgateURL, _ := url.Parse(base + "/jwtgate/")
	for _, ck := range c.Jar.Cookies(jwtgateURL) {
		if ck.Name == "jwtgate_refresh" {
			refresh = ck.Value
		}
	}
	resp, err = c.PostForm(base+"/jwtgate/logout", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Also sign out of "+displayName) {
		t.Fatalf("sign-out: %d\n%s", resp.StatusCode, page)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/jwtgate/refresh", nil)
	req.AddCookie(&http.Cookie{Name: "jwtgate_refresh", Value: refresh})
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if ck := SetCookie(resp, "jwtgate_access"); resp.StatusCode != http.StatusUnauthorized || ck != nil && ck.MaxAge >= 0 {
		t.Fatalf("refresh after sign-out: %d, want 401 and no access token", resp.StatusCode)
	}
}
