package login

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/server"
	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

const (
	testHost   = "shop.example.com"
	alicePW    = "alice-password"
	testIssuer = "https://shop.example.com"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type syncBuffer = testproc.SyncBuffer

var (
	signingPEMOnce sync.Once
	signingPEM     []byte
	hashCache      sync.Map // cost -> map of user -> hash
)

func hashAt(t testing.TB, pw string, cost int) string {
	t.Helper()
	key := pw + "\x00" + string(rune('0'+cost))
	if h, ok := hashCache.Load(key); ok {
		return h.(string)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	hashCache.Store(key, string(h))
	return string(h)
}

// harness is jwtgate's decision listener with the sign-in pages, over TLS so
// that Secure cookies travel, reached as https://shop.example.com.
type harness struct {
	t        testing.TB
	clock    *fakeClock
	store    *policy.Store
	sessions *session.Memory // the in-memory store (also behind cfg.sessions' wrapper)
	used     session.Store   // the store the handler uses
	records  session.Records // nil unless cfg.records
	ap       *v1alpha1.AuthPolicy
	h        *Handler
	mux      http.Handler
	srv      *httptest.Server
	logs     *syncBuffer
}

type harnessConfig struct {
	cost   int
	limits Limits
	slots  int
	policy func(*v1alpha1.AuthPolicy)
	// sessions, when set, makes the store the handler uses (from the harness's
	// in-memory one and clock); nil: the in-memory store itself.
	sessions func(m *session.Memory, clock *fakeClock) session.Store
	// records, when set, makes the token records the handler keeps, given the
	// store it uses and the log the harness captures; nil: none.
	records func(s session.Store, clock *fakeClock, log *slog.Logger) session.Records
}

func newHarness(t testing.TB, cfg harnessConfig) *harness {
	t.Helper()
	if cfg.cost == 0 {
		cfg.cost = 4
	}
	signingPEMOnce.Do(func() {
		var err error
		if signingPEM, err = keys.Generate("ES256"); err != nil {
			t.Fatal(err)
		}
	})
	usersFile := "# test users\n" +
		"alice:" + hashAt(t, alicePW, cfg.cost) + ":admin,user\n" +
		"bob:" + hashAt(t, "bob-password", cfg.cost) + ":user\n"
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop", Generation: 1},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts:      []string{testHost},
			RolesClaim: "realm_access.roles",
			Rules:      []v1alpha1.Rule{{Path: "/admin/", Roles: []string{"admin"}}},
			ForwardClaims: []v1alpha1.ForwardClaim{
				{Claim: "sub", Header: "X-Auth-User"},
				{Claim: "realm_access.roles", Header: "X-Auth-Roles"},
			},
			Login: &v1alpha1.LoginSpec{
				UsersSecretRef:       &v1alpha1.SecretKeyRef{Name: "shop-users", Key: "users"},
				SigningKeySecretRef:  v1alpha1.SecretRef{Name: "shop-signing"},
				AllowedRedirectHosts: []string{testHost, "*.shop.example.com"},
				Revocation:           v1alpha1.RevocationStrict,
			},
		},
	}
	if cfg.policy != nil {
		cfg.policy(ap)
	}
	store := policy.NewStore()
	store.Replace([]*policy.Policy{compileTestPolicy(t, ap, usersFile)})

	clock := &fakeClock{t: time.Now()}
	sessions := &session.Memory{Now: clock.Now}
	var used session.Store = sessions
	if cfg.sessions != nil {
		used = cfg.sessions(sessions, clock)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	var records session.Records
	if cfg.records != nil {
		records = cfg.records(used, clock, log)
	}
	h := New(Options{
		Store:               store,
		Sessions:            used,
		Records:             records,
		Log:                 log,
		Now:                 clock.Now,
		Limits:              cfg.limits,
		MaxConcurrentHashes: cfg.slots,
	})
	h.WarmUp()
	mux := server.NewMux(server.Options{Store: store, Sessions: used, Pages: h, Now: clock.Now})
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &harness{t: t, clock: clock, store: store, sessions: sessions, used: used, records: records, ap: ap, h: h, mux: mux, srv: srv, logs: logs}
}

func compileTestPolicy(t testing.TB, ap *v1alpha1.AuthPolicy, usersFile string) *policy.Policy {
	t.Helper()
	p, err := policy.Compile(policy.Input{Policy: ap, Secrets: map[string]*corev1.Secret{
		"shop-users":   {Data: map[string][]byte{"users": []byte(usersFile)}},
		"shop-signing": {Data: map[string][]byte{"private.pem": signingPEM}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// setUsers replaces the policy's users file, as a reload would.
func (hs *harness) setUsers(usersFile string) {
	hs.t.Helper()
	hs.store.Replace([]*policy.Policy{compileTestPolicy(hs.t, hs.ap, usersFile)})
}

// browser is a client with a cookie jar that reaches the harness under any host
// name and does not follow redirects.
func (hs *harness) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	addr := hs.srv.Listener.Addr().String()
	return &http.Client{
		Jar: jar,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test server's own certificate
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (hs *harness) do(c *http.Client, method, path string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	hs.t.Helper()
	req, err := http.NewRequest(method, "https://"+testHost+path, body)
	if err != nil {
		hs.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		hs.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfRE = regexp.MustCompile(`name="jwtgate_csrf" value="([^"]+)"`)

func formCSRF(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", page)
	}
	return m[1]
}

func formBody(kv ...string) io.Reader {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return strings.NewReader(v.Encode())
}

var formHeader = map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

func jsonHeaders() map[string]string {
	return map[string]string{"Accept": "application/json", "Content-Type": "application/json"}
}

// decide asks /jwtgate/auth/shop/shop about a request for path with hdr.
func (hs *harness) decide(path string, hdr http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/jwtgate/auth/shop/shop", nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("X-Original-URL", "https://"+testHost+path)
	req.Header.Set("X-Original-Method", "GET")
	rec := httptest.NewRecorder()
	hs.mux.ServeHTTP(rec, req)
	return rec
}

// verifyWithOtherLibrary checks an issued access token with golang-jwt against
// the key served at /jwtgate/jwks.json.
func (hs *harness) verifyWithOtherLibrary(token string) gojwt.MapClaims {
	hs.t.Helper()
	resp, body := hs.do(hs.browser(), http.MethodGet, JWKSPath, nil, nil)
	if resp.StatusCode != 200 {
		hs.t.Fatalf("jwks.json: %d", resp.StatusCode)
	}
	set, err := jwk.Parse([]byte(body))
	if err != nil {
		hs.t.Fatalf("jwks.json does not parse: %v\n%s", err, body)
	}
	if strings.Contains(body, `"d"`) {
		hs.t.Fatalf("jwks.json publishes private key material: %s", body)
	}
	claims := gojwt.MapClaims{}
	_, err = gojwt.ParseWithClaims(token, claims, func(tok *gojwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		k, ok := set.LookupKeyID(kid)
		if !ok {
			hs.t.Fatalf("kid %q is not in jwks.json", kid)
		}
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			return nil, err
		}
		return raw, nil
	},
		gojwt.WithValidMethods([]string{"ES256"}),
		gojwt.WithIssuer(testIssuer),
		gojwt.WithAudience("shop/shop"),
		gojwt.WithExpirationRequired(),
		gojwt.WithIssuedAt(),
		gojwt.WithTimeFunc(hs.clock.Now),
	)
	if err != nil {
		hs.t.Fatalf("golang-jwt refuses the issued token: %v", err)
	}
	return claims
}

func decodeTokens(t testing.TB, body string) tokenAnswer {
	t.Helper()
	var a tokenAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.AccessToken == "" || a.RefreshToken == "" {
		t.Fatalf("not a token answer: %v\n%s", err, body)
	}
	return a
}
