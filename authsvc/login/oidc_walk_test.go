package login

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/oidc"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/server"
	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/internal/oidctest"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

// oidcWalk is jwtgate's sign-in pages and decisions in front of a real Hydra.
type oidcWalk struct {
	t        *testing.T
	idp      *oidctest.Hydra
	srv      *httptest.Server
	base     string // http://127.0.0.1:PORT: the policy's host
	store    *policy.Store
	sessions *session.Memory
	clientID string
	// claims the consent app puts into the next ID token
	idClaims map[string]any
	subject  string
}

func newOIDCWalk(t *testing.T, change func(*v1alpha1.OIDCSpec)) *oidcWalk {
	w := &oidcWalk{t: t, store: policy.NewStore(), sessions: session.NewMemory()}
	providers := oidc.NewProviders(t.Context(), oidc.Options{
		Remotes:  keys.NewRemotes(t.Context(), keys.RemoteOptions{Logger: slog.New(slog.DiscardHandler)}),
		Logger:   slog.New(slog.DiscardHandler),
		Interval: time.Minute, MinInterval: 200 * time.Millisecond,
	})
	h := New(Options{Store: w.store, Sessions: w.sessions, Providers: providers})
	mux := http.NewServeMux()
	mux.Handle("/", server.NewMux(server.Options{Store: w.store, Sessions: w.sessions, Pages: h}))
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	w.base = w.srv.URL
	w.idp = oidctest.Start(t)
	clientID, clientSecret := w.idp.Client(w.base)
	w.clientID = clientID

	signing, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	spec := &v1alpha1.OIDCSpec{
		IssuerURL:       w.idp.Issuer(),
		ClientID:        clientID,
		ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "oidc", Key: "client-secret"},
		UsernameClaim:   "email",
		RolesClaim:      "groups",
		DisplayName:     "Test SSO",
	}
	if change != nil {
		change(spec)
	}
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop", Generation: 1},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts: []string{"127.0.0.1"},
			ForwardClaims: []v1alpha1.ForwardClaim{
				{Claim: "sub", Header: "X-Auth-User"},
				{Claim: "roles", Header: "X-Auth-Roles"},
			},
			Rules: []v1alpha1.Rule{{Path: "/staff/", Roles: []string{"staff"}}},
			Login: &v1alpha1.LoginSpec{
				SigningKeySecretRef: v1alpha1.SecretRef{Name: "signing"},
				Cookie:              &v1alpha1.CookieSpec{Secure: new(false)},
				OIDC:                spec,
			},
		},
	}
	p, err := policy.Compile(policy.Input{Policy: ap, Secrets: map[string]*corev1.Secret{
		"signing": {Data: map[string][]byte{"private.pem": signing}},
		"oidc":    {Data: map[string][]byte{"client-secret": []byte(clientSecret)}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w.store.Replace([]*policy.Policy{p})
	// Discovery runs in the background; wait until it (and the provider's keys) loaded.
	prov := providers.Get(spec.IssuerURL)
	deadline := time.Now().Add(testproc.StartupTimeout)
	for !prov.Loaded() || prov.Failure() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("discovery did not load: %v", prov.Failure())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return w
}

// browser is a client with a cookie jar that does not follow redirects: the
// walk follows them itself, playing the provider's login and consent app.
func (w *oidcWalk) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (w *oidcWalk) get(c *http.Client, u string) (*http.Response, string) {
	w.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		w.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// toCallback walks from /jwtgate/login?rd=... through Hydra until the redirect to
// jwtgate's callback, which it returns without following.
func (w *oidcWalk) toCallback(c *http.Client, rd string) *url.URL {
	w.t.Helper()
	resp, _ := w.get(c, w.base+"/jwtgate/login?rd="+url.QueryEscape(rd))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), OIDCStartPath) {
		w.t.Fatalf("/jwtgate/login with only oidc: %d %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), OIDCStartPath)
	}
	return w.idp.Walk(c, w.base+resp.Header.Get("Location"), oidctest.User{Subject: w.subject, Claims: w.idClaims})
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (w *oidcWalk) decide(c *http.Client, path string) *http.Response {
	w.t.Helper()
	req, _ := http.NewRequest("GET", w.base+"/jwtgate/auth/shop/shop", nil)
	req.Header.Set("X-Original-URL", w.base+path)
	req.Header.Set("X-Original-Method", "GET")
	u, _ := url.Parse(w.base + "/")
	for _, ck := range c.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp
}

func TestOIDCWalkWithHydra(t *testing.T) {
	if oidctest.CallbackPath != OIDCCallbackPath {
		t.Fatalf("oidctest.CallbackPath %q is not the callback %q", oidctest.CallbackPath, OIDCCallbackPath)
	}
	w := newOIDCWalk(t, func(o *v1alpha1.OIDCSpec) {
		o.AllowedValues = []v1alpha1.ClaimRequirement{{Name: "groups", Contains: new("staff")}}
	})
	w.subject = "u-alice"
	w.idClaims = map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"staff", "ops"}}
	c := w.browser()

	// login → provider → callback → the original URL.
	cb := w.toCallback(c, "/staff/report?x=1")
	resp, body := w.get(c, cb.String())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/staff/report?x=1" {
		t.Fatalf("callback: %d %q, want 303 to the original URL\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	access := cookieNamed(resp, policy.AccessCookie)
	if access == nil || !access.HttpOnly || cookieNamed(resp, policy.RefreshCookie) == nil {
		t.Fatalf("callback set cookies %v", resp.Cookies())
	}
	// The decision: 200 with the mapped user and roles.
	d := w.decide(c, "/staff/report?x=1")
	if d.StatusCode != 200 || d.Header.Get("X-Auth-User") != "alice@example.com" || d.Header.Get("X-Auth-Roles") != "staff,ops" {
		t.Fatalf("decision %d, user %q, roles %q", d.StatusCode, d.Header.Get("X-Auth-User"), d.Header.Get("X-Auth-Roles"))
	}
	// The session records the provider's subject.
	list, _ := w.sessions.UserSessions(t.Context(), "shop/shop", "alice@example.com")
	if len(list) != 1 || list[0].Origin.Method != MethodOIDC || list[0].Origin.Subject != "u-alice" {
		t.Fatalf("sessions %+v", list)
	}
	// Replaying the callback (same state, same code) is refused, and sets no token.
	replay := w.browser()
	resp, _ = w.get(replay, cb.String())
	if resp.StatusCode != http.StatusBadRequest || cookieNamed(resp, policy.AccessCookie) != nil {
		t.Fatalf("foreign/replayed callback: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	// Refresh, as the browser's pages do.
	req, _ := http.NewRequest("POST", w.base+RefreshPath, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("refresh: %d", resp.StatusCode)
	}
	u, _ := url.Parse(w.base + "/jwtgate/")
	var refreshToken string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == policy.RefreshCookie {
			refreshToken = ck.Value
		}
	}
	// Sign out: the page offers the provider's sign-out too.
	resp, err = c.PostForm(w.base+LogoutPath, url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Also sign out of Test SSO") || !strings.Contains(string(page), "id_token_hint=") {
		t.Fatalf("sign-out: %d\n%s", resp.StatusCode, page)
	}
	// The ended session's refresh token renews nothing.
	req, _ = http.NewRequest("POST", w.base+RefreshPath, nil)
	req.AddCookie(&http.Cookie{Name: policy.RefreshCookie, Value: refreshToken})
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("refresh after sign-out: %d, want 401", resp.StatusCode)
	}

	// allowedValues refuses a user who is not staff: 403, no token.
	w.subject = "u-bob"
	w.idClaims = map[string]any{"email": "bob@example.com", "email_verified": true, "groups": []string{"ops"}}
	bob := w.browser()
	cb = w.toCallback(bob, "/")
	resp, body = w.get(bob, cb.String())
	if resp.StatusCode != http.StatusForbidden || cookieNamed(resp, policy.AccessCookie) != nil || !strings.Contains(body, "not allowed") {
		t.Fatalf("refused user: %d, cookies %v\n%s", resp.StatusCode, resp.Cookies(), body)
	}

	// An unverified email is refused the same way.
	w.subject = "u-carol"
	w.idClaims = map[string]any{"email": "carol@example.com", "email_verified": false, "groups": []string{"staff"}}
	carol := w.browser()
	cb = w.toCallback(carol, "/")
	resp, _ = w.get(carol, cb.String())
	if resp.StatusCode != http.StatusForbidden || cookieNamed(resp, policy.AccessCookie) != nil {
		t.Fatalf("unverified email: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	// The provider says no (access_denied): 403, no token.
	dan := w.browser()
	resp, _ = w.get(dan, w.base+OIDCStartPath+"?rd=/")
	auth, _ := url.Parse(resp.Header.Get("Location"))
	state := auth.Query().Get("state")
	resp, _ = w.get(dan, w.base+OIDCCallbackPath+"?error=access_denied&state="+url.QueryEscape(state))
	if resp.StatusCode != http.StatusForbidden || cookieNamed(resp, policy.AccessCookie) != nil {
		t.Fatalf("access_denied: %d", resp.StatusCode)
	}
	// A made-up code with a good state: the provider refuses it, 400.
	resp, _ = w.get(dan, w.base+OIDCStartPath+"?rd=/")
	auth, _ = url.Parse(resp.Header.Get("Location"))
	resp, _ = w.get(dan, w.base+OIDCCallbackPath+"?code=forged&state="+url.QueryEscape(auth.Query().Get("state")))
	if resp.StatusCode != http.StatusBadRequest || cookieNamed(resp, policy.AccessCookie) != nil {
		t.Fatalf("forged code: %d", resp.StatusCode)
	}
	// No state at all: 400.
	resp, _ = w.get(dan, w.base+OIDCCallbackPath+"?code=x")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no state: %d", resp.StatusCode)
	}
}

// A provider whose discovery never loaded: 503 with a page, no redirect.
func TestOIDCDiscoveryNeverLoaded(t *testing.T) {
	store := policy.NewStore()
	signing, _ := keys.Generate("ES256")
	dead := "http://127.0.0.1:" + strings.Split(testproc.FreeAddr(t), ":")[1]
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
		Spec: v1alpha1.AuthPolicySpec{Hosts: []string{"127.0.0.1"}, Login: &v1alpha1.LoginSpec{
			SigningKeySecretRef: v1alpha1.SecretRef{Name: "signing"},
			Cookie:              &v1alpha1.CookieSpec{Secure: new(false)},
			OIDC:                &v1alpha1.OIDCSpec{IssuerURL: dead, ClientID: "shop"},
		}},
	}
	p, err := policy.Compile(policy.Input{Policy: ap, Secrets: map[string]*corev1.Secret{"signing": {Data: map[string][]byte{"private.pem": signing}}}})
	if err != nil {
		t.Fatal(err)
	}
	store.Replace([]*policy.Policy{p})
	h := New(Options{Store: store, Sessions: session.NewMemory(), Providers: oidc.NewProviders(t.Context(), oidc.Options{Logger: slog.New(slog.DiscardHandler)})})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1"+OIDCStartPath+"?rd=/", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Location") != "" || !strings.Contains(rec.Body.String(), "unavailable") {
		t.Fatalf("%d %q\n%s", rec.Code, rec.Header().Get("Location"), rec.Body.String())
	}
	_ = fmt.Sprint
}
