package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/door"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

// doorFixture serves two policies through NewMux:
//   - shop/web: hosts shop.example.com, signs people in (Secure cookies, the
//     default), allowedRedirectHosts *.apps.example.com; /public is public,
//     /admin needs the admin role; forwards sub, roles and email.
//   - lab/plain: hosts lab.example.com, signs people in with cookies that are
//     not Secure (plain http).
type doorFixture struct {
	handler http.Handler
	metrics *door.Metrics
	key     *ecdsa.PrivateKey
	logs    *testproc.SyncBuffer
}

var doorKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// newDoorFixture makes a fixture trusting doorKey.
func newDoorFixture(t testing.TB) *doorFixture {
	t.Helper()
	key := doorKey
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	signing, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sder, _ := x509.MarshalPKCS8PrivateKey(signing)
	priv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: sder})
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	no := false
	spec := func(ns, name, host string, secure *bool, redirectHosts []string) *v1alpha1.AuthPolicy {
		return &v1alpha1.AuthPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.AuthPolicySpec{
				Hosts: []string{host},
				JWT: &v1alpha1.JWTSpec{
					Algorithms: []v1alpha1.Algorithm{"ES256"},
					Keys:       []v1alpha1.KeySource{{SecretRef: &v1alpha1.SecretKeyRef{Name: "keys", Key: "pub.pem"}}},
				},
				Login: &v1alpha1.LoginSpec{
					UsersSecretRef:       &v1alpha1.SecretKeyRef{Name: "users", Key: "users"},
					SigningKeySecretRef:  v1alpha1.SecretRef{Name: "sign"},
					Cookie:               &v1alpha1.CookieSpec{Secure: secure},
					AllowedRedirectHosts: redirectHosts,
				},
				Rules: []v1alpha1.Rule{
					{Path: "/public", Public: true},
					{Path: "/admin", Roles: []string{"admin"}},
				},
				ForwardClaims: []v1alpha1.ForwardClaim{
					{Claim: "sub", Header: "X-Auth-User"}, {Claim: "roles", Header: "X-Auth-Roles"}, {Claim: "email", Header: "X-Auth-Email"},
				},
			},
		}
	}
	var ps []*policy.Policy
	for _, ap := range []*v1alpha1.AuthPolicy{
		spec("shop", "web", "shop.example.com", nil, []string{"shop.example.com", "*.apps.example.com"}),
		spec("lab", "plain", "lab.example.com", &no, nil),
	} {
		secrets := map[string]*corev1.Secret{
			"keys":  {ObjectMeta: metav1.ObjectMeta{Namespace: ap.Namespace, Name: "keys"}, Data: map[string][]byte{"pub.pem": pub}},
			"users": {ObjectMeta: metav1.ObjectMeta{Namespace: ap.Namespace, Name: "users"}, Data: map[string][]byte{"users": []byte("alice:" + string(hash) + ":user\n")}},
			"sign":  {ObjectMeta: metav1.ObjectMeta{Namespace: ap.Namespace, Name: "sign"}, Data: map[string][]byte{"private.pem": priv}},
		}
		p, err := policy.Compile(policy.Input{Policy: ap, Secrets: secrets, Cache: policy.NewTokenCache(128)})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	store := policy.NewStore()
	store.Replace(ps)
	m := door.NewMetrics(prometheus.NewRegistry())
	logs := &testproc.SyncBuffer{}
	h := NewMux(Options{Store: store, Metrics: m, Log: slog.New(slog.NewTextHandler(logs, nil)), AuditPerSecond: 1000})
	return &doorFixture{handler: h, metrics: m, key: key, logs: logs}
}

func (f *doorFixture) token(t *testing.T, claims gojwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Minute).Unix()
	}
	s, err := gojwt.NewWithClaims(gojwt.SigningMethodES256, claims).SignedString(f.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forwarded is the four headers a forward-auth proxy sets.
func forwarded(method, proto, host, uri string) map[string]string {
	return map[string]string{"X-Forwarded-Method": method, "X-Forwarded-Proto": proto, "X-Forwarded-Host": host, "X-Forwarded-Uri": uri}
}

func with(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "\x00" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

// allowedHeaders are the only headers besides the forwardClaims ones an allow of
// the forward-auth and Envoy HTTP doors may carry.
var allowedHeaders = []string{"Content-Length", "Date", "Content-Type"}

func checkAllowHeaders(t *testing.T, h http.Header, forward map[string]string) {
	t.Helper()
	for k := range h {
		if _, ok := forward[k]; !ok && !slices.Contains(allowedHeaders, k) {
			t.Fatalf("allow carries %s: %q; a proxy copying the auth answer's headers upstream would pass it on", k, h[k])
		}
	}
	for k, v := range forward {
		if got, ok := h[k]; !ok || len(got) != 1 || got[0] != v {
			t.Fatalf("%s = %q (present %v), want exactly %q", k, got, ok, v)
		}
	}
}

type doorCase struct {
	name     string
	path     string // the door's own URL
	header   map[string]string
	status   int
	location string
	forward  map[string]string // on 200: every forwardClaims header, exactly
	log      string            // a warning or audit line must hold this
}

func (f *doorFixture) run(t *testing.T, method string, tc doorCase) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, tc.path, nil)
	req.Host = "jwtgate.jwtgate.svc:8000"
	for k, v := range tc.header {
		req.Header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	res := rec.Result()
	if tc.status < 0 {
		return rec // the caller compares
	}
	if res.StatusCode != tc.status {
		t.Fatalf("status %d, want %d (Location %q)\n%s", res.StatusCode, tc.status, res.Header.Get("Location"), f.logs.String())
	}
	switch tc.status {
	case http.StatusOK:
		checkAllowHeaders(t, res.Header, tc.forward)
		if rec.Body.Len() != 0 {
			t.Fatalf("allow with a body %q", rec.Body.String())
		}
	case http.StatusFound:
		if got := res.Header.Get("Location"); got != tc.location {
			t.Fatalf("Location %q, want %q", got, tc.location)
		}
	case http.StatusUnauthorized:
		if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), `Bearer realm="jwtgate"`) {
			t.Fatalf("401 without WWW-Authenticate: %q", res.Header)
		}
		if res.Header.Get("Location") != "" {
			t.Fatal("401 with a Location")
		}
	}
	if tc.log != "" && !strings.Contains(f.logs.String(), tc.log) {
		t.Fatalf("no log line holding %q:\n%s", tc.log, f.logs.String())
	}
	return rec
}

func TestForwardAuthDoor(t *testing.T) {
	base := newDoorFixture(t)
	user := base.token(t, gojwt.MapClaims{"sub": "alice", "roles": []string{"user", "dev"}})
	admin := base.token(t, gojwt.MapClaims{"sub": "root", "roles": "admin", "email": "root@example.com"})
	bearer := "Bearer " + user
	fw := forwarded("GET", "https", "shop.example.com", "/app?a=1")
	const fa = "/jwtgate/forward-auth/shop/web"
	aliceHeaders := map[string]string{"X-Auth-User": "alice", "X-Auth-Roles": "user,dev", "X-Auth-Email": ""}
	blank := map[string]string{"X-Auth-User": "", "X-Auth-Roles": "", "X-Auth-Email": ""}
	html := "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	tests := []doorCase{
		{name: "allowed: every forwardClaims header, empty when the claim is absent", path: fa,
			header: with(fw, "Authorization", bearer), status: 200, forward: aliceHeaders},
		{name: "allowed with every claim", path: fa, header: with(fw, "Authorization", "Bearer "+admin, "X-Forwarded-Uri", "/admin/x"), status: 200,
			forward: map[string]string{"X-Auth-User": "root", "X-Auth-Roles": "admin", "X-Auth-Email": "root@example.com"}},
		{name: "client's own X-Auth-User is overwritten on a public path", path: fa,
			header: with(fw, "X-Forwarded-Uri", "/public/a", "X-Auth-User", "root"), status: 200, forward: blank},
		{name: "host routing, port in X-Forwarded-Host", path: "/jwtgate/forward-auth",
			header: with(fw, "Authorization", bearer, "X-Forwarded-Host", "SHOP.example.com:8443"), status: 200, forward: aliceHeaders},
		{name: "host routing with a trailing slash", path: "/jwtgate/forward-auth/",
			header: with(fw, "Authorization", bearer), status: 200, forward: aliceHeaders},
		{name: "absolute X-Forwarded-Uri", path: fa,
			header: with(fw, "Authorization", bearer, "X-Forwarded-Uri", "https://shop.example.com:8443/app?a=1"), status: 200, forward: aliceHeaders},
		{name: "absolute X-Forwarded-Uri naming another host", path: fa,
			header: with(fw, "Authorization", bearer, "X-Forwarded-Uri", "https://evil.example.com/app"), status: 403, log: "names another host"},
		{name: "IPv6 host", path: fa,
			header: with(fw, "Authorization", bearer, "X-Forwarded-Host", "[2001:db8::1]:8443"), status: 200, forward: aliceHeaders},
		{name: "a bare IPv6 host is refused", path: fa,
			header: with(fw, "Authorization", bearer, "X-Forwarded-Host", "2001:db8::1"), status: 403, log: "X-Forwarded-Host"},
		{name: "host with a path is refused", path: fa,
			header: with(fw, "Authorization", bearer, "X-Forwarded-Host", "shop.example.com/evil"), status: 403, log: "X-Forwarded-Host"},
		{name: "missing X-Forwarded-Method", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Method", "\x00"), status: 403, log: "X-Forwarded-Method is missing"},
		{name: "missing X-Forwarded-Proto", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Proto", "\x00"), status: 403, log: "X-Forwarded-Proto is missing"},
		{name: "missing X-Forwarded-Host", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Host", "\x00"), status: 403, log: "X-Forwarded-Host is missing"},
		{name: "missing X-Forwarded-Uri", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Uri", "\x00"), status: 403, log: "X-Forwarded-Uri is missing"},
		{name: "empty X-Forwarded-Uri", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Uri", ""), status: 403, log: "X-Forwarded-Uri is missing"},
		{name: "a method that is no token", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Method", "GE T"), status: 403, log: "X-Forwarded-Method is not"},
		{name: "a scheme that is not http(s)", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Proto", "ftp"), status: 403, log: "X-Forwarded-Proto is not"},
		{name: "wss reads as https", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Proto", "wss"), status: 200, forward: aliceHeaders},
		{name: "role missing", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Uri", "/admin/users"), status: 403},
		{name: "dot segments resolved before the rules", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Uri", "/public/../admin/users"), status: 403},
		{name: "encoded dot segments", path: fa, header: with(fw, "Authorization", bearer, "X-Forwarded-Uri", "/public/%2e%2e/admin/users"), status: 403},
		{name: "encoded slash refused", path: fa, header: with(fw, "X-Forwarded-Uri", "/public%2F..%2Fadmin"), status: 403, log: "X-Forwarded-Uri is not a clean path"},
		{name: "a forged X-Original-URL means nothing here", path: fa,
			header: with(fw, "Authorization", bearer, "X-Forwarded-Uri", "/admin/users", "X-Original-URL", "https://shop.example.com/public/"), status: 403},
		{name: "unknown policy", path: "/jwtgate/forward-auth/shop/nope", header: with(fw, "Authorization", bearer), status: 403, log: "no policy"},
		{name: "unknown host", path: "/jwtgate/forward-auth", header: with(fw, "Authorization", bearer, "X-Forwarded-Host", "other.example.com"), status: 403},
		{name: "a door path with more segments names no policy", path: fa + "/x", header: with(fw, "Authorization", bearer), status: 403},
		{name: "door path with a query", path: fa + "?x=1", header: with(fw, "Authorization", bearer), status: 200, forward: aliceHeaders},

		// Browsers: the sign-in redirect.
		{name: "page load without a token: 302, https since cookies are Secure, port kept", path: fa,
			header: with(fw, "Accept", html, "X-Forwarded-Proto", "http", "X-Forwarded-Host", "shop.example.com:8443"), status: 302,
			location: "https://shop.example.com:8443/jwtgate/login?rd=https%3A%2F%2Fshop.example.com%3A8443%2Fapp%3Fa%3D1"},
		{name: "page load with an expired token: 302", path: fa,
			header: with(fw, "Accept", html, "Authorization", "Bearer "+base.token(t, gojwt.MapClaims{"sub": "a", "exp": time.Now().Add(-time.Hour).Unix()})), status: 302,
			location: "https://shop.example.com/jwtgate/login?rd=https%3A%2F%2Fshop.example.com%2Fapp%3Fa%3D1"},
		{name: "HEAD page load: 302", path: fa,
			header: with(fw, "Accept", "text/html", "X-Forwarded-Method", "HEAD"), status: 302,
			location: "https://shop.example.com/jwtgate/login?rd=https%3A%2F%2Fshop.example.com%2Fapp%3Fa%3D1"},
		{name: "page load on an allowedRedirectHosts wildcard", path: fa,
			header: with(fw, "Accept", html, "X-Forwarded-Host", "one.apps.example.com"), status: 302,
			location: "https://one.apps.example.com/jwtgate/login?rd=https%3A%2F%2Fone.apps.example.com%2Fapp%3Fa%3D1"},
		{name: "page load on a host the policy does not own: 401, never a redirect there", path: fa,
			header: with(fw, "Accept", html, "X-Forwarded-Host", "evil.example.com"), status: 401},
		{name: "page load on an IPv6 host: 401", path: fa,
			header: with(fw, "Accept", html, "X-Forwarded-Host", "[2001:db8::1]"), status: 401},
		{name: "POST with text/html: 401", path: fa, header: with(fw, "Accept", html, "X-Forwarded-Method", "POST"), status: 401},
		{name: "API call: 401", path: fa, header: with(fw, "Accept", "application/json"), status: 401},
		{name: "no Accept: 401", path: fa, header: fw, status: 401},
		{name: "a valid token without the role is 403, never a redirect", path: fa,
			header: with(fw, "Accept", html, "Authorization", bearer, "X-Forwarded-Uri", "/admin/"), status: 403},
		{name: "cookies not Secure: the proxy's scheme is kept", path: "/jwtgate/forward-auth/lab/plain",
			header: with(fw, "Accept", html, "X-Forwarded-Proto", "http", "X-Forwarded-Host", "lab.example.com:8080"), status: 302,
			location: "http://lab.example.com:8080/jwtgate/login?rd=http%3A%2F%2Flab.example.com%3A8080%2Fapp%3Fa%3D1"},
		{name: "cookies not Secure, https proxy", path: "/jwtgate/forward-auth/lab/plain",
			header: with(fw, "Accept", html, "X-Forwarded-Host", "lab.example.com"), status: 302,
			location: "https://lab.example.com/jwtgate/login?rd=https%3A%2F%2Flab.example.com%2Fapp%3Fa%3D1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := base
			if tc.log != "" {
				// Warnings are written at most once a second: a fixture of its own.
				f = newDoorFixture(t)
			}
			f.run(t, "GET", tc)
		})
	}
	if n := testutil.ToFloat64(base.metrics.Decisions(door.ForwardAuth, "shop/web", "forbidden", policy.ReasonRole)); n < 2 {
		t.Fatalf(`jwtgate_decisions_total{door="forward_auth",policy="shop/web",result="forbidden",reason="role"} = %v`, n)
	}
}
