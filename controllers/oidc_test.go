package controllers_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/login"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/server"
	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/internal/oidctest"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

// oidcObjects are a policy that signs people in at the OpenID provider issuer
// (only there: no users Secret), its signing key Secret and the Secret with
// the client's secret. Hosts: 127.0.0.1 (the sign-in pages the walk serves)
// and shop.example.com (replica.decide).
func oidcObjects(t *testing.T, ns, name, issuer, clientID, clientSecret string, hosts ...string) (*v1alpha1.AuthPolicy, *corev1.Secret, *corev1.Secret) {
	t.Helper()
	signing, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "shop.example.com"}
	}
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts:      hosts,
			RolesClaim: "roles",
			ForwardClaims: []v1alpha1.ForwardClaim{
				{Claim: "sub", Header: "X-Auth-User"},
				{Claim: "roles", Header: "X-Auth-Roles"},
			},
			Rules: []v1alpha1.Rule{
				{Path: "/public/", Public: true},
				{Path: "/staff/", Roles: []string{"staff"}},
			},
			Login: &v1alpha1.LoginSpec{
				SigningKeySecretRef: v1alpha1.SecretRef{Name: name + "-signing"},
				Cookie:              &v1alpha1.CookieSpec{Secure: new(false)},
				OIDC: &v1alpha1.OIDCSpec{
					IssuerURL:       issuer,
					ClientID:        clientID,
					ClientSecretRef: &v1alpha1.SecretKeyRef{Name: name + "-oidc", Key: "client-secret"},
					UsernameClaim:   "email",
					RolesClaim:      "groups",
					DisplayName:     "Test SSO",
					AllowedValues:   []v1alpha1.ClaimRequirement{{Name: "groups", Contains: new("staff")}},
				},
			},
		},
	}
	sign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-signing"}, Data: map[string][]byte{"private.pem": signing}}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-oidc"}, Data: map[string][]byte{"client-secret": []byte(clientSecret)}}
	return ap, sign, sec
}

// A policy whose provider's discovery document does not load is published
// (decisions go on) with Ready=False, OIDCDiscoveryFailed, naming
// spec.login.oidc.issuerURL and the failure but never the provider's answer;
// pointed at a real provider (Ory Hydra), it turns Ready=True.
func TestOIDCDiscoveryFailed(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{name: "a"})

	// Nothing listens on this loopback port: connection refused.
	closed := "http://" + testproc.FreeAddr(t)
	// Something answers 200 with a page that is not a discovery document and
	// holds what must never reach a status message.
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>internal-secret-hunter2</html>"))
	}))
	t.Cleanup(leaky.Close)

	for _, tc := range []struct {
		name, issuer, host, want string
	}{
		{"closed-port", closed, "shop.example.com", "connection refused"},
		{"not-a-document", leaky.URL, "leaky.example.com", "is not a JSON discovery document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap, sign, sec := oidcObjects(t, ns, tc.name, tc.issuer, "shop", "s3cret", tc.host)
			create(t, sign, sec, ap)
			c := waitCondition(t, ns, tc.name, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonOIDCDiscoveryFailed)
			for _, want := range []string{"spec.login.oidc.issuerURL", tc.issuer, tc.want} {
				if !strings.Contains(c.Message, want) {
					t.Errorf("Ready message %q does not say %q", c.Message, want)
				}
			}
			for _, never := range []string{"hunter2", "<html>", "s3cret"} {
				if strings.Contains(c.Message, never) {
					t.Errorf("Ready message %q quotes %q", c.Message, never)
				}
			}
			// Published: its decisions go on.
			if out := r.store.Outcome(ns + "/" + tc.name); out.Serving == nil {
				t.Fatalf("the policy is not published: %+v", out)
			}
		})
	}
	if code := r.decide(ns, "closed-port", "/public/x", ""); code != http.StatusOK {
		t.Fatalf("public path of the published policy: %d, want 200", code)
	}
	if code := r.decide(ns, "closed-port", "/staff/x", ""); code != http.StatusUnauthorized {
		t.Fatalf("staff path without a token: %d, want 401", code)
	}
	// A sign-in there gets a page that says so (503), no redirect, no token.
	base, _ := oidcPages(t, r)
	req, _ := http.NewRequest(http.MethodGet, base+login.OIDCStartPath+"?rd=/", nil)
	req.Host = "shop.example.com"
	resp, err := oidctest.Browser().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	body := string(b)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" || oidctest.SetCookie(resp, policy.AccessCookie) != nil || !strings.Contains(body, "unavailable") {
		t.Fatalf("sign-in while discovery never loaded: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	// The same policy, pointed at a real provider, turns Ready=True.
	idp := oidctest.Start(t)
	id, secret := idp.Client("http://127.0.0.1")
	ap := &v1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "closed-port"}}
	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "closed-port-oidc"}}, func(s *corev1.Secret) {
		s.Data["client-secret"] = []byte(secret)
	})
	update(t, ap, func(ap *v1alpha1.AuthPolicy) {
		ap.Spec.Login.OIDC.IssuerURL = idp.Issuer()
		ap.Spec.Login.OIDC.ClientID = id
	})
	waitCondition(t, ns, "closed-port", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
}

// oidcPages serves what `jwtgate controller` serves on --listen from the
// replica's store and providers: the sign-in pages over one session store,
// and the decision endpoint.
func oidcPages(t *testing.T, r *replica) (base string, sessions *session.Memory) {
	t.Helper()
	sessions = session.NewMemory()
	discard := slog.New(slog.DiscardHandler)
	pages := login.New(login.Options{Store: r.store, Sessions: sessions, Providers: r.rec.Providers, Log: discard})
	srv := httptest.NewServer(server.NewMux(server.Options{Store: r.store, Sessions: sessions, Pages: pages, Log: discard}))
	t.Cleanup(srv.Close)
	return srv.URL, sessions
}

// decideAt asks base's decision endpoint for ns/name about GET base+path with
// the browser's cookies, as ingress-nginx would.
func decideAt(t *testing.T, c *http.Client, base, ns, name, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/jwtgate/auth/"+ns+"/"+name, nil)
	req.Header.Set("X-Original-URL", base+path)
	req.Header.Set("X-Original-Method", http.MethodGet)
	u, _ := url.Parse(base + "/")
	for _, ck := range c.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp
}

// The browser walk with the policy and its Secrets from the API server,
// compiled and published by the controller: sign-in at a real Ory Hydra,
// back to the original URL, a decision with the mapped user and roles,
// refresh, sign-out, and the ended session's refresh refused; on the way,
// the error paths set no access cookie.
func TestOIDCWalkThroughController(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{name: "a"})
	base, sessions := oidcPages(t, r)
	idp := oidctest.Start(t)
	id, secret := idp.Client(base)
	ap, sign, sec := oidcObjects(t, ns, "shop", idp.Issuer(), id, secret, "127.0.0.1")
	create(t, sign, sec, ap)
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)

	alice := oidctest.User{Subject: "u-alice", Claims: map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"staff", "ops"}}}
	c := oidctest.Browser()
	resp, _ := oidctest.Get(t, c, base+login.LoginPath+"?rd="+url.QueryEscape("/staff/report?x=1"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), login.OIDCStartPath) {
		t.Fatalf("/jwtgate/login with only oidc: %d %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), login.OIDCStartPath)
	}
	cb := idp.Walk(c, base+resp.Header.Get("Location"), alice)
	resp, body := oidctest.Get(t, c, cb.String())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/staff/report?x=1" {
		t.Fatalf("callback: %d %q, want 303 to the original URL\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if oidctest.SetCookie(resp, policy.AccessCookie) == nil || oidctest.SetCookie(resp, policy.RefreshCookie) == nil {
		t.Fatalf("callback set cookies %v", resp.Cookies())
	}
	d := decideAt(t, c, base, ns, "shop", "/staff/report?x=1")
	if d.StatusCode != http.StatusOK || d.Header.Get("X-Auth-User") != "alice@example.com" || d.Header.Get("X-Auth-Roles") != "staff,ops" {
		t.Fatalf("decision %d, user %q, roles %q", d.StatusCode, d.Header.Get("X-Auth-User"), d.Header.Get("X-Auth-Roles"))
	}
	if list, _ := sessions.UserSessions(t.Context(), ns+"/shop", "alice@example.com"); len(list) != 1 || list[0].Origin.Method != login.MethodOIDC || list[0].Origin.Subject != "u-alice" {
		t.Fatalf("sessions %+v", list)
	}

	// The same callback from another browser (foreign state, used code): 400, no token.
	resp, _ = oidctest.Get(t, oidctest.Browser(), cb.String())
	if resp.StatusCode != http.StatusBadRequest || oidctest.SetCookie(resp, policy.AccessCookie) != nil {
		t.Fatalf("replayed callback: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	// Refresh, sign out, and the ended session's refresh token renews nothing.
	oidctest.RenewSignOutAndRenewAgain(t, c, http.DefaultClient, base, "Test SSO")

	// allowedValues (groups contains staff) refuses bob: 403, no token.
	bob := oidctest.Browser()
	cb = idp.Walk(bob, base+login.OIDCStartPath+"?rd=/", oidctest.User{Subject: "u-bob",
		Claims: map[string]any{"email": "bob@example.com", "email_verified": true, "groups": []string{"ops"}}})
	resp, body = oidctest.Get(t, bob, cb.String())
	if resp.StatusCode != http.StatusForbidden || oidctest.SetCookie(resp, policy.AccessCookie) != nil || !strings.Contains(body, "not allowed") {
		t.Fatalf("refused user: %d, cookies %v\n%s", resp.StatusCode, resp.Cookies(), body)
	}

	// The provider says no (access_denied): 403, no token.
	dan := oidctest.Browser()
	resp, _ = oidctest.Get(t, dan, base+login.OIDCStartPath+"?rd=/")
	auth, _ := url.Parse(resp.Header.Get("Location"))
	resp, _ = oidctest.Get(t, dan, base+login.OIDCCallbackPath+"?error=access_denied&state="+url.QueryEscape(auth.Query().Get("state")))
	if resp.StatusCode != http.StatusForbidden || oidctest.SetCookie(resp, policy.AccessCookie) != nil {
		t.Fatalf("access_denied: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}

	// The provider goes down while erin is signed in and frank is on his way
	// back from it: frank's callback cannot reach it (502, no token); erin's
	// decisions and renewals go on.
	erin := oidctest.Browser()
	cb = idp.Walk(erin, base+login.OIDCStartPath+"?rd=/", oidctest.User{Subject: "u-erin",
		Claims: map[string]any{"email": "erin@example.com", "email_verified": true, "groups": []string{"staff"}}})
	if resp, body = oidctest.Get(t, erin, cb.String()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("erin's callback: %d\n%s", resp.StatusCode, body)
	}
	frank := oidctest.Browser()
	cb = idp.Walk(frank, base+login.OIDCStartPath+"?rd=/", oidctest.User{Subject: "u-frank",
		Claims: map[string]any{"email": "frank@example.com", "email_verified": true, "groups": []string{"staff"}}})
	idp.Stop()
	resp, body = oidctest.Get(t, frank, cb.String())
	if resp.StatusCode != http.StatusBadGateway || oidctest.SetCookie(resp, policy.AccessCookie) != nil {
		t.Fatalf("callback with the provider down: %d, cookies %v, want 502 and no token\n%s", resp.StatusCode, resp.Cookies(), body)
	}
	if d := decideAt(t, erin, base, ns, "shop", "/staff/x"); d.StatusCode != http.StatusOK || d.Header.Get("X-Auth-User") != "erin@example.com" {
		t.Fatalf("erin's decision with the provider down: %d %q", d.StatusCode, d.Header.Get("X-Auth-User"))
	}
	resp, err := erin.Post(base+login.RefreshPath, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("erin's refresh with the provider down: %d, want 204", resp.StatusCode)
	}
}

// The client's secret is read from the API server like every Secret a policy
// references: missing, Ready=False names spec.login.oidc.clientSecretRef and
// nothing serves; created, the policy turns Ready=True; changed to a secret
// the provider does not know, the next callback is refused (400, no token)
// while the policy stays published.
func TestOIDCClientSecretFromAPIServer(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{name: "a"})
	base, _ := oidcPages(t, r)
	idp := oidctest.Start(t)
	id, secret := idp.Client(base)
	ap, sign, sec := oidcObjects(t, ns, "shop", idp.Issuer(), id, secret, "127.0.0.1")
	create(t, sign, ap)
	c := waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, "spec.login.oidc.clientSecretRef") || !strings.Contains(c.Message, "shop-oidc") {
		t.Errorf("Ready message %q does not name spec.login.oidc.clientSecretRef and the Secret", c.Message)
	}
	create(t, sec)
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)

	alice := oidctest.User{Subject: "u-alice", Claims: map[string]any{"email": "alice@example.com", "email_verified": true, "groups": []string{"staff"}}}
	c1 := oidctest.Browser()
	cb := idp.Walk(c1, base+login.OIDCStartPath+"?rd=/", alice)
	if resp, body := oidctest.Get(t, c1, cb.String()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback with the right secret: %d\n%s", resp.StatusCode, body)
	}

	// A wrong secret in the Secret reaches the next callback.
	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-oidc"}}, func(s *corev1.Secret) {
		s.Data["client-secret"] = []byte("not-the-secret")
	})
	eventually(t, "the changed client secret to be published", func() (bool, string) {
		p := r.store.Load().Policy(ns, "shop")
		if p == nil || p.Login == nil || p.Login.OIDC == nil {
			return false, "not published"
		}
		return p.Login.OIDC.ClientSecret == "not-the-secret", "the old secret"
	})
	c2 := oidctest.Browser()
	cb = idp.Walk(c2, base+login.OIDCStartPath+"?rd=/", alice)
	resp, body := oidctest.Get(t, c2, cb.String())
	if resp.StatusCode != http.StatusBadRequest || oidctest.SetCookie(resp, policy.AccessCookie) != nil {
		t.Fatalf("callback with a secret the provider does not know: %d, cookies %v, want 400 and no token\n%s", resp.StatusCode, resp.Cookies(), body)
	}
}
