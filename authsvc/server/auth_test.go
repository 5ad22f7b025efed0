package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/door"
	"github.com/jwtgate/jwtgate/authsvc/policy"
)

type fixture struct {
	handler http.Handler
	metrics *door.Metrics
	reg     *prometheus.Registry
	key     *ecdsa.PrivateKey
	// recompile compiles the policy again and serves the new compile.
	recompile func()
}

func newFixture(t *testing.T) *fixture { return newFixtureWithLog(t, nil, 0) }

// newFixtureWithLog logs to w (when not nil) with auditPerSecond audit lines.
func newFixtureWithLog(t *testing.T, w io.Writer, auditPerSecond float64) *fixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts: []string{"shop.example.com"},
			JWT: &v1alpha1.JWTSpec{
				Algorithms: []v1alpha1.Algorithm{"ES256"},
				Keys:       []v1alpha1.KeySource{{SecretRef: &v1alpha1.SecretKeyRef{Name: "keys", Key: "pub.pem"}}},
			},
			Rules: []v1alpha1.Rule{
				{Path: "/public", Public: true},
				{Path: "/admin", Roles: []string{"admin"}},
			},
			ForwardClaims: []v1alpha1.ForwardClaim{{Claim: "sub", Header: "X-Auth-User"}, {Claim: "roles", Header: "X-Auth-Roles"}},
		},
	}
	secrets := map[string]*corev1.Secret{"keys": {ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "keys"}, Data: map[string][]byte{"pub.pem": pub}}}
	store := policy.NewStore()
	recompile := func() {
		p, err := policy.Compile(policy.Input{Policy: ap, Secrets: secrets, Cache: policy.NewTokenCache(128)})
		if err != nil {
			t.Fatal(err)
		}
		store.Replace([]*policy.Policy{p})
	}
	recompile()
	reg := prometheus.NewRegistry()
	m := door.NewMetrics(reg)
	o := Options{Store: store, Metrics: m, AuditPerSecond: auditPerSecond}
	if w != nil {
		o.Log = slog.New(slog.NewTextHandler(w, nil))
	}
	return &fixture{handler: NewMux(o), metrics: m, reg: reg, key: key, recompile: recompile}
}

func (f *fixture) token(t *testing.T, claims gojwt.MapClaims) string {
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

func TestAuthHandler(t *testing.T) {
	f := newFixture(t)
	user := f.token(t, gojwt.MapClaims{"sub": "alice", "roles": []string{"user", "dev"}})
	admin := f.token(t, gojwt.MapClaims{"sub": "root", "roles": "admin"})
	expired := f.token(t, gojwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	tests := []struct {
		name      string
		authPath  string
		url       string
		method    string
		header    map[string]string
		status    int
		challenge string
		headers   map[string]string
	}{
		{"allowed by path routing", "/jwtgate/auth/shop/web", "https://shop.example.com/app", "GET", map[string]string{"Authorization": "Bearer " + user}, 200, "",
			map[string]string{"X-Auth-User": "alice", "X-Auth-Roles": "user,dev"}},
		{"allowed by host routing, port ignored", "/jwtgate/auth", "https://shop.example.com:8443/app", "GET", map[string]string{"Authorization": "Bearer " + user}, 200, "", nil},
		{"no token", "/jwtgate/auth/shop/web", "https://shop.example.com/app", "GET", nil, 401, `Bearer realm="jwtgate"`, nil},
		{"expired token", "/jwtgate/auth/shop/web", "https://shop.example.com/app", "GET", map[string]string{"Authorization": "Bearer " + expired}, 401,
			`Bearer realm="jwtgate", error="invalid_token", error_description="token is expired"`, nil},
		{"role missing", "/jwtgate/auth/shop/web", "https://shop.example.com/admin/x", "GET", map[string]string{"Authorization": "Bearer " + user}, 403, "", nil},
		{"role present", "/jwtgate/auth/shop/web", "https://shop.example.com/admin/x", "GET", map[string]string{"Authorization": "Bearer " + admin}, 200, "", nil},
		{"public", "/jwtgate/auth/shop/web", "https://shop.example.com/public/a", "GET", nil, 200, "", nil},
		{"unknown policy is 403, not 401 (no sign-in loop)", "/jwtgate/auth/shop/nope", "https://shop.example.com/app", "GET", map[string]string{"Authorization": "Bearer " + user}, 403, "", nil},
		{"unknown host is 403", "/jwtgate/auth", "https://other.example.com/app", "GET", map[string]string{"Authorization": "Bearer " + user}, 403, "", nil},
		{"X-Forwarded-Host is never used for routing", "/jwtgate/auth", "https://other.example.com/app", "GET", map[string]string{"Authorization": "Bearer " + user, "X-Forwarded-Host": "shop.example.com"}, 403, "", nil},
		{"missing X-Original-URL", "/jwtgate/auth/shop/web", "", "GET", map[string]string{"Authorization": "Bearer " + user}, 403, "", nil},
		{"missing X-Original-Method", "/jwtgate/auth/shop/web", "https://shop.example.com/app", "", map[string]string{"Authorization": "Bearer " + user}, 403, "", nil},
		{"encoded slash", "/jwtgate/auth/shop/web", "https://shop.example.com/public%2F..%2Fadmin", "GET", nil, 403, "", nil},
		{"dot segments resolved before rules", "/jwtgate/auth/shop/web", "https://shop.example.com/public/../admin/", "GET", map[string]string{"Authorization": "Bearer " + user}, 403, "", nil},
		{"client's forwarded header is replaced", "/jwtgate/auth/shop/web", "https://shop.example.com/app", "GET", map[string]string{"Authorization": "Bearer " + user, "X-Auth-User": "root"}, 200, "",
			map[string]string{"X-Auth-User": "alice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.authPath, nil)
			req.Host = "jwtgate.jwtgate.svc"
			if tc.url != "" {
				req.Header.Set("X-Original-URL", tc.url)
			}
			if tc.method != "" {
				req.Header.Set("X-Original-Method", tc.method)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, req)
			res := rec.Result()
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if rec.Body.Len() != 0 || res.Header.Get("Content-Length") != "0" {
				t.Fatalf("body %q, Content-Length %q: every answer must be empty with Content-Length: 0", rec.Body.String(), res.Header.Get("Content-Length"))
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			for k, v := range tc.headers {
				if got := res.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Fatalf("%s = %q, want exactly %q", k, got, v)
				}
			}
		})
	}
	got := testutil.ToFloat64(f.metrics.Decisions(door.AuthRequest, "shop/web", "forbidden", policy.ReasonRole))
	if got != 2 { // "role missing" and "dot segments resolved before rules"
		t.Fatalf(`jwtgate_decisions_total{policy="shop/web",result="forbidden",reason="role"} = %v, want 2`, got)
	}
	if n := testutil.CollectAndCount(f.reg, "jwtgate_decision_duration_seconds"); n != 4 { // one series per door
		t.Fatalf("duration histogram missing")
	}
}

// Through a real listener: the answer nginx reads has no body and keeps the
// connection open.
func TestAuthOverHTTP(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.handler)
	defer srv.Close()
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", srv.URL+"/jwtgate/auth/shop/web", nil)
		req.Header.Set("X-Original-URL", "https://shop.example.com/")
		req.Header.Set("X-Original-Method", "GET")
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != 401 || res.ContentLength != 0 || res.Close {
			t.Fatalf("status %d, length %d, close %v", res.StatusCode, res.ContentLength, res.Close)
		}
		if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatal("no challenge")
		}
	}
}

func TestAPIKeyFailureIsLoggedAndCounted(t *testing.T) {
	f := newFixture(t)
	var logs strings.Builder
	store := policy.NewStore()
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ci", Name: "api"},
		Spec: v1alpha1.AuthPolicySpec{
			JWT:     &v1alpha1.JWTSpec{Algorithms: []v1alpha1.Algorithm{"ES256"}},
			APIKeys: &v1alpha1.APIKeys{SecretRef: v1alpha1.SecretKeyRef{Name: "k", Key: "keys"}},
		},
	}
	secrets := map[string]*corev1.Secret{"k": {Data: map[string][]byte{"keys": []byte("builder:sha256:" + strings.Repeat("ab", 32) + ":ci\n")}}}
	p, err := policy.Compile(policy.Input{Policy: ap, Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	store.Replace([]*policy.Policy{p})
	h := NewMux(Options{Store: store, Metrics: f.metrics, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		ClientAddr: func(*http.Request) string { return "192.0.2.7" }})
	req := httptest.NewRequest("GET", "/jwtgate/auth/ci/api", nil)
	req.Header.Set("X-Original-URL", "https://ci.example.com/deploy")
	req.Header.Set("X-Original-Method", "POST")
	req.Header.Set("X-API-Key", "jgk_wrong")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("status %d, want 401", rec.Code)
	}
	if !strings.Contains(logs.String(), `msg="decision denied" audit=true policy=ci/api result=unauthenticated reason=bad_api_key sub="" client=192.0.2.7 method=POST path=/deploy`) {
		t.Fatalf("no log line for the refused key:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "jgk_wrong") {
		t.Fatal("the presented key must never be logged")
	}
	if got := testutil.ToFloat64(f.metrics.APIKeyUses("ci/api", "")); got != 1 {
		t.Fatalf("refused keys counted %v, want 1", got)
	}
}

func TestAuditOfDeniedDecisions(t *testing.T) {
	var logs strings.Builder
	h := newFixtureWithLog(t, &logs, 1)
	user := h.token(t, gojwt.MapClaims{"sub": "alice", "roles": []string{"user"}})
	do := func(path, token string) int {
		req := httptest.NewRequest("GET", "/jwtgate/auth/shop/web", nil)
		req.Header.Set("X-Original-URL", "https://shop.example.com"+path+"?secret=query")
		req.Header.Set("X-Original-Method", "GET")
		req.Header.Set("X-Request-ID", "req-123")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		return rec.Code
	}
	if do("/admin/x", user) != 403 {
		t.Fatal("want 403")
	}
	line := logs.String()
	for _, want := range []string{`msg="decision denied"`, "audit=true", "policy=shop/web", "result=forbidden", "reason=role", "sub=alice", "path=/admin/x", "request_id=req-123"} {
		if !strings.Contains(line, want) {
			t.Fatalf("audit line lacks %s:\n%s", want, line)
		}
	}
	if strings.Contains(line, user) || strings.Contains(line, "secret=query") {
		t.Fatal("an audit line must never hold a token or the query")
	}
	// A flood: 1 line a second (burst 2) is written, the rest counted as dropped.
	logs.Reset()
	for range 50 {
		do("/app", "garbage")
	}
	if n := strings.Count(logs.String(), "decision denied"); n > 2 {
		t.Fatalf("%d audit lines in a flood, want at most 2", n)
	}
	if got := testutil.ToFloat64(h.metrics.AuditDropped()); got < 48 {
		t.Fatalf("dropped audit lines counted %v, want at least 48", got)
	}
	// The allowed token, twice: one verification, then a cache hit.
	do("/app", user)
	do("/app", user)
	if hits := testutil.ToFloat64(h.metrics.CacheHits()); hits < 1 {
		t.Fatalf("cache hits %v, want at least 1", hits)
	}
}

// A policy's decision counts go on across a recompile (a key rotation, an
// edit): a Prometheus counter that fell back to zero would read as a reset.
// Requests no policy answers are counted under policy "".
func TestDecisionCountsSurviveARecompile(t *testing.T) {
	f := newFixture(t)
	ask := func(path string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("X-Original-URL", "https://shop.example.com/orders")
		req.Header.Set("X-Original-Method", "GET")
		f.handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	for range 3 {
		ask("/jwtgate/auth/shop/web")
	}
	f.recompile()
	for range 2 {
		ask("/jwtgate/auth/shop/web")
	}
	ask("/jwtgate/auth/shop/gone")
	if n := testutil.ToFloat64(f.metrics.Decisions(door.AuthRequest, "shop/web", "unauthenticated", policy.ReasonMissingToken)); n != 5 {
		t.Errorf("missing_token decisions of shop/web across a recompile: %v, want 5", n)
	}
	want := `
# HELP jwtgate_decisions_total Decisions by door (auth_request, forward_auth, ext_authz_http, ext_authz_grpc), policy, result (allow, unauthenticated, forbidden) and reason.
# TYPE jwtgate_decisions_total counter
jwtgate_decisions_total{door="auth_request",policy="",reason="no_policy",result="forbidden"} 1
jwtgate_decisions_total{door="auth_request",policy="shop/web",reason="missing_token",result="unauthenticated"} 5
`
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(want), "jwtgate_decisions_total"); err != nil {
		t.Error(err)
	}
}
