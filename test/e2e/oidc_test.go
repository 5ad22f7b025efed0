//go:build e2e

package e2e_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/jwtgate/jwtgate/internal/oidctest"
)

const oidcPolicyYAML = `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: shop, namespace: default}
spec:
  hosts: ["127.0.0.1"]
  rolesClaim: roles
  rules:
    - {path: /staff/, roles: [staff]}
  forwardClaims:
    - {claim: sub, header: X-Auth-User}
    - {claim: roles, header: X-Auth-Roles}
  login:
    signingKeySecretRef: {name: shop-signing}   # created by jwtgate serve in --state-dir
    cookie: {secure: false}                     # plain http on loopback
    oidc:
      issuerURL: %s
      clientID: %s
      clientSecretRef: {name: shop-oidc, key: client-secret}
      usernameClaim: email
      rolesClaim: groups
      displayName: Test SSO
---
apiVersion: v1
kind: Secret
metadata: {name: shop-oidc, namespace: default}
stringData:
  client-secret: %q
`

// The browser walk through the built binary, `jwtgate serve` with the policy
// and the client's Secret in a file, against a real Ory Hydra: login ->
// provider -> callback -> the original URL -> decision 200 with the mapped
// user and roles -> refresh -> sign-out -> the ended session's refresh
// refused; a replayed callback gets 400 and no token; the metric and the
// audit line say oidc.
func TestOIDCWalkServe(t *testing.T) {
	dir := t.TempDir()
	idp := oidctest.Start(t)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	metrics := "127.0.0.1:" + strconv.Itoa(freePort(t))
	base := "http://" + addr
	id, secret := idp.Client(base)
	policyFile := filepath.Join(dir, "shop.yaml")
	if err := os.WriteFile(policyFile, fmt.Appendf(nil, oidcPolicyYAML, idp.Issuer(), id, secret), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, filepath.Join(dir, "jwtgate.log"), jwtgateBin, "serve",
		"-f", policyFile,
		"--listen", addr,
		"--metrics-bind-address", metrics,
		"--health-probe-bind-address", "0",
		"--state-dir", filepath.Join(dir, "state"),
		"--log-format", "text",
		"--shutdown-timeout", "2s")
	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// Ready when the provider's discovery has loaded: the start of a sign-in
	// redirects to it (503 before).
	waitFor(t, p, "jwtgate serve to load the policy and discover the provider", func() bool {
		resp, err := plain.Get(base + "/jwtgate/oidc/start?rd=/")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusFound
	})

	c := oidctest.Browser()
	resp, _ := oidctest.Get(t, c, base+"/jwtgate/login?rd="+url.QueryEscape("/staff/report?x=1"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/jwtgate/oidc/start") {
		t.Fatalf("/jwtgate/login with only oidc: %d %q, want 302 to /jwtgate/oidc/start", resp.StatusCode, resp.Header.Get("Location"))
	}
	cb := idp.Walk(c, base+resp.Header.Get("Location"), oidctest.User{Subject: "u-alice",
		Claims: map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"staff", "ops"}}})
	resp, body := oidctest.Get(t, c, cb.String())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/staff/report?x=1" {
		t.Fatalf("callback: %d %q, want 303 to the original URL\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if oidctest.SetCookie(resp, "jwtgate_access") == nil || oidctest.SetCookie(resp, "jwtgate_refresh") == nil {
		t.Fatalf("callback set cookies %v", resp.Cookies())
	}

	// The decision, as the proxy asks for it.
	req, _ := http.NewRequest(http.MethodGet, base+"/jwtgate/auth/default/shop", nil)
	req.Header.Set("X-Original-URL", base+"/staff/report?x=1")
	req.Header.Set("X-Original-Method", http.MethodGet)
	site, _ := url.Parse(base + "/")
	for _, ck := range c.Jar.Cookies(site) {
		req.AddCookie(ck)
	}
	d, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Body.Close()
	if d.StatusCode != http.StatusOK || d.Header.Get("X-Auth-User") != "alice@example.com" || d.Header.Get("X-Auth-Roles") != "staff,ops" {
		t.Fatalf("decision %d, user %q, roles %q", d.StatusCode, d.Header.Get("X-Auth-User"), d.Header.Get("X-Auth-Roles"))
	}

	// The same callback from another browser: 400, no token.
	resp, _ = oidctest.Get(t, oidctest.Browser(), cb.String())
	if resp.StatusCode != http.StatusBadRequest || oidctest.SetCookie(resp, "jwtgate_access") != nil {
		t.Fatalf("replayed callback: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	// Refresh, sign out, and the ended session's refresh token renews nothing.
	oidctest.RenewSignOutAndRenewAgain(t, c, plain, base, "Test SSO")

	// What an operator sees: the metric and the audit line.
	_, m := oidctest.Get(t, plain, "http://"+metrics+"/metrics")
	for _, want := range []string{
		`jwtgate_signins_total{method="oidc",policy="default/shop",result="success"} 1`,
		`jwtgate_signins_total{method="oidc",policy="default/shop",result="state_invalid"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	log, _ := os.ReadFile(p.Log)
	if !strings.Contains(string(log), "signin_method=oidc") {
		t.Errorf("no audit line with signin_method=oidc in jwtgate's log")
	}
}

// oidcScreenshotFile is the picture of the sign-in page with the provider's
// button that README.md shows (written as screenshotFile is).
const oidcScreenshotFile = "docs/signin-oidc.png"

// TestBrowserOIDC signs in with headless Chromium through nginx (ingress-nginx
// style, TLS) at a real Ory Hydra: the protected page sends the browser to
// the sign-in page, which shows the password form and the provider's button;
// the button leads to Hydra, whose login and consent app (oidctest.StartApp)
// signs alice in, and back through jwtgate's callback to the page first
// asked for, where the upstream sees the mapped user and roles.
func TestBrowserOIDC(t *testing.T) {
	requirePackages(t, true, true)
	idp := oidctest.StartApp(t, oidctest.User{Subject: "u-alice",
		Claims: map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"staff", "ops"}}})
	s := newStackWith(t, ingressStyle, func(s *stack) {
		id, secret := idp.Client(s.origin)
		s.oidcLogin = fmt.Sprintf(`    oidc:
      issuerURL: %s
      clientID: %s
      clientSecretRef: {name: shop-oidc, key: client-secret}
      usernameClaim: email
      rolesClaim: groups
      displayName: Example SSO
`, idp.Issuer(), id)
		s.oidcDocs = fmt.Sprintf("---\napiVersion: v1\nkind: Secret\nmetadata: {name: shop-oidc, namespace: default}\nstringData:\n  client-secret: %q\n", secret)
	})
	// Ready when jwtgate has discovered the provider: a sign-in there starts.
	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for deadline := time.Now().Add(startupTimeout); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+s.jwtgate+"/jwtgate/oidc/start?rd=/", nil)
		req.Host = appHost
		resp, err := plain.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusFound {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("jwtgate has not discovered the provider after %s: %v", startupTimeout, err)
		}
	}

	ctx, bounded := startChromium(t, s)
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	original := s.origin + "/staff/report?from=browser"
	step("start chromium", chromedp.Do(ctx, chromedp.Navigate("about:blank")))
	step("open "+original, bounded(
		chromedp.Navigate(original),
		chromedp.WaitVisible(chromedp.ID("provider")),
	))
	button, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("provider")))
	step("the provider's button", err)
	if strings.TrimSpace(button) != "Example SSO" {
		t.Errorf("the provider's button says %q, want %q", button, "Example SSO")
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	step("screenshot", err)
	saveScreenshot(t, s, shot, oidcScreenshotFile)

	step("click the provider's button", bounded(chromedp.Click(chromedp.ID("provider"))))
	text := waitForText(t, ctx, "upstream saw")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	step("location", err)
	if loc != original {
		t.Errorf("after signing in at the provider the browser is at %q, want %q", loc, original)
	}
	for _, want := range []string{
		"upstream saw GET /staff/report?from=browser",
		"X-Auth-User: alice@example.com",
		"X-Auth-Roles: staff,ops",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page after signing in lacks %q:\n%s", want, text)
		}
	}
}
