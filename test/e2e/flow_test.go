//go:build e2e

package e2e_test

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestNginxFlow walks a browser-like client through each nginx config: the one
// ingress-nginx renders for auth-url + auth-signin + auth-response-headers,
// the same with keepalive to the auth upstream, and README.md's plain nginx
// block verbatim.
func TestNginxFlow(t *testing.T) {
	for _, config := range []nginxConfig{ingressStyle, ingressStyleKeepalive, readmePlainNginx} {
		t.Run(strings.ReplaceAll(config.String(), " ", "_"), func(t *testing.T) {
			s := newStack(t, config)
			walk(t, s)
			if config == readmePlainNginx {
				doorsStayPrivate(t, s)
			}
		})
	}
}

// doorsStayPrivate checks that README's nginx block routes only the public
// sign-in paths to jwtgate: its doors answer "is this token valid?" to
// whoever reaches them, so from the internet they must not answer at all.
func doorsStayPrivate(t *testing.T, s *stack) {
	hdr := http.Header{"X-Original-URL": {s.origin + "/"}, "X-Original-Method": {"GET"}}
	for _, path := range []string{"/jwtgate/auth", "/jwtgate/auth/default/shop", "/jwtgate/forward-auth", "/jwtgate/ext-authz/-/", "/jwtgate/%61uth", "/jwtgate/login/../auth", "/jwtgate/loginx"} {
		resp, _ := s.do(s.client(), http.MethodGet, s.origin+path, nil, hdr)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s from outside: %d, want nginx's 404 (only the sign-in paths are routed to jwtgate)", path, resp.StatusCode)
		}
	}
	resp, _ := s.do(s.client(), http.MethodGet, s.origin+"/jwtgate/jwks.json", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /jwtgate/jwks.json from outside: %d, want 200", resp.StatusCode)
	}
}

// pageAccept is what a browser's page load sends.
const pageAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// The page the walk starts from: a query with '&' and an escape, which rd must
// carry back intact.
const startPath = "/some/page?x=1&y=a%20b"

var (
	csrfRE = regexp.MustCompile(`name="jwtgate_csrf" value="([^"]*)"`)
	rdRE   = regexp.MustCompile(`name="rd" value="([^"]*)"`)
)

func walk(t *testing.T, s *stack) {
	c := s.client()
	original := s.origin + startPath

	// 1. Anonymous: nginx's auth subrequest gets 401, error_page sends the
	// browser to the sign-in page with rd; the upstream never sees the request.
	hits := s.app.hits.Load()
	// A browser's page load (Accept: text/html): the doors other than
	// auth_request redirect only those; nginx redirects every 401.
	resp, _ := s.do(c, http.MethodGet, original, nil, http.Header{"X-Auth-User": {"mallory"}, "Accept": {pageAccept}})
	signin := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(signin, s.origin+"/jwtgate/login?rd=") {
		t.Fatalf("anonymous GET %s: %d, Location %q; want 302 to %s/jwtgate/login?rd=...", startPath, resp.StatusCode, signin, s.origin)
	}
	switch s.config {
	case readmePlainNginx:
		// Plain nginx cannot escape: rd is the original URL as it came.
		if want := s.origin + "/jwtgate/login?rd=" + original; signin != want {
			t.Fatalf("sign-in redirect: %q, want %q", signin, want)
		}
	default:
		// ingress-nginx escapes it with set_escape_uri.
		if strings.ContainsAny(strings.TrimPrefix(signin, s.origin+"/jwtgate/login?"), "&?") {
			t.Fatalf("sign-in redirect %q: rd is not escaped", signin)
		}
	}
	if s.config.forwardAuthDoor() {
		// An API call without a token: 401 with the challenge, never a redirect.
		resp, body := s.do(c, http.MethodGet, original, nil, http.Header{"Accept": {"application/json"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("anonymous API call: %d, WWW-Authenticate %q\n%s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
	if n := s.app.hits.Load(); n != hits {
		t.Fatalf("the upstream saw an anonymous request")
	}

	// 2. The sign-in form, served by jwtgate through nginx, carries rd.
	resp, page := s.do(c, http.MethodGet, signin, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `<form method="post" action="/jwtgate/login"`) {
		t.Fatalf("GET the sign-in page: %d\n%s", resp.StatusCode, page)
	}
	if rd := field(t, rdRE, page); rd != original {
		t.Fatalf("the form's rd is %q, want %q: nginx's redirect lost part of the URL", rd, original)
	}

	// 3. A wrong password: the form again, 401, no cookies.
	form := url.Values{"username": {"alice"}, "password": {"wrong"}, "rd": {original}, "jwtgate_csrf": {field(t, csrfRE, page)}}
	resp, page = s.postForm(c, "/jwtgate/login", form)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(page, "user name or password is wrong") || cookie(resp, "jwtgate_access") != nil {
		t.Fatalf("sign-in with a wrong password: %d\n%s", resp.StatusCode, page)
	}

	// 4. Sign in (CSRF field from the form just shown): 303 back to the original
	// URL, with Secure HttpOnly cookies.
	form.Set("password", alicePassword)
	form.Set("jwtgate_csrf", field(t, csrfRE, page))
	resp, page = s.postForm(c, "/jwtgate/login", form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != original {
		t.Fatalf("sign-in: %d to %q, want 303 to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), original, page)
	}
	access, refresh := cookie(resp, "jwtgate_access"), cookie(resp, "jwtgate_refresh")
	if access == nil || refresh == nil {
		t.Fatalf("sign-in set no token cookies: %q", resp.Header.Values("Set-Cookie"))
	}
	for _, ck := range []*http.Cookie{access, refresh} {
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s: Secure=%v HttpOnly=%v SameSite=%v; want Secure, HttpOnly, Lax", ck.Name, ck.Secure, ck.HttpOnly, ck.SameSite)
		}
	}
	if refresh.Path != "/jwtgate/" {
		t.Errorf("jwtgate_refresh has Path %q, want /jwtgate/", refresh.Path)
	}

	// 5. Back at the original URL: the upstream sees the user from the token,
	// not the X-Auth-User / X-Auth-Roles the client sent.
	resp, body := s.do(c, http.MethodGet, original, nil, http.Header{"X-Auth-User": {"mallory"}, "X-Auth-Roles": {"admin"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s signed in: %d\n%s", startPath, resp.StatusCode, body)
	}
	wantLines(t, body, "upstream saw GET "+startPath, "X-Auth-User: alice", "X-Auth-Roles: user")
	if strings.Contains(body, "mallory") || strings.Count(body, "X-Auth-User:") != 1 || strings.Count(body, "X-Auth-Roles:") != 1 {
		t.Fatalf("the upstream saw the client's own identity headers:\n%s", body)
	}

	// 6. A path that needs the admin role: 403 from nginx, upstream not reached.
	hits = s.app.hits.Load()
	if resp, body := s.do(c, http.MethodGet, s.origin+"/admin/users", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /admin/users as alice: %d, want 403\n%s", resp.StatusCode, body)
	}
	if s.app.hits.Load() != hits {
		t.Fatal("the upstream saw a forbidden request")
	}

	// 7. Keepalive to the auth upstream: 20 decisions over the same few
	// connections when it is on, a connection each when it is off.
	before := s.authConns.Load()
	const n = 20
	for i := 0; i < n; i++ {
		if resp, body := s.do(c, http.MethodGet, s.origin+"/keepalive", nil, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d\n%s", i, resp.StatusCode, body)
		}
	}
	opened := s.authConns.Load() - before
	switch s.config {
	case haproxyGuide:
		// HAProxy's Lua HTTP client opens a connection per request: nothing to
		// hold it to, the count is logged below.
	case ingressStyle:
		if opened < n {
			t.Errorf("without keepalive nginx opened %d connections to jwtgate for %d decisions, want one each", opened, n)
		}
	default:
		if opened > 2 {
			t.Errorf("with keepalive nginx opened %d connections to jwtgate for %d decisions, want at most 2", opened, n)
		}
	}
	t.Logf("%s: %d connections to jwtgate for %d decisions", s.config, opened, n)

	// 8. An admin, signed in with the JSON API, sends its token as a Bearer header.
	api := s.client()
	req := s.request(http.MethodPost, s.origin+"/jwtgate/login", strings.NewReader(`{"username":"root","password":"`+rootPassword+`"}`),
		http.Header{"Accept": {"application/json"}, "Content-Type": {"application/json"}})
	resp, body = s.send(api, req)
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &tok) != nil || tok.AccessToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("JSON sign-in as root: %d\n%s", resp.StatusCode, body)
	}
	resp, body = s.do(api, http.MethodGet, s.origin+"/admin/users", nil, http.Header{"Authorization": {"Bearer " + tok.AccessToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/users as root with a Bearer token: %d\n%s", resp.StatusCode, body)
	}
	wantLines(t, body, "upstream saw GET /admin/users", "X-Auth-User: root", "X-Auth-Roles: admin,user")

	// 9. Sign out: the confirmation page, then its form post; both cookies go
	// and the session ends.
	resp, page = s.do(c, http.MethodGet, s.origin+"/jwtgate/logout?rd=%2F", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/jwtgate/logout"`) {
		t.Fatalf("GET /jwtgate/logout: %d\n%s", resp.StatusCode, page)
	}
	resp, page = s.postForm(c, "/jwtgate/logout", url.Values{"rd": {s.origin + "/bye"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != s.origin+"/bye" {
		t.Fatalf("POST /jwtgate/logout: %d to %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	for _, path := range []string{"/", "/jwtgate/"} {
		u, _ := url.Parse(s.origin + path)
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == "jwtgate_access" || ck.Name == "jwtgate_refresh" {
				t.Errorf("after sign-out the browser still holds %s", ck.Name)
			}
		}
	}

	// 10. Anonymous again.
	resp, _ = s.do(c, http.MethodGet, original, nil, http.Header{"Accept": {pageAccept}})
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), s.origin+"/jwtgate/login?rd=") {
		t.Fatalf("GET %s after sign-out: %d to %q, want 302 to the sign-in page", startPath, resp.StatusCode, resp.Header.Get("Location"))
	}
	// ... and the refresh token of the ended session renews nothing: the sign-in
	// page shows its form instead of sending the browser back.
	resp, page = s.do(s.client(), http.MethodGet, s.origin+"/jwtgate/login?rd=/", nil, http.Header{"Cookie": {"jwtgate_refresh=" + refresh.Value}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "<form") {
		t.Fatalf("sign-in page with the refresh token of an ended session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func (s *stack) request(method, target string, body io.Reader, h http.Header) *http.Request {
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return req
}

func (s *stack) send(c *http.Client, req *http.Request) (*http.Response, string) {
	s.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		s.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

func (s *stack) do(c *http.Client, method, target string, body io.Reader, h http.Header) (*http.Response, string) {
	s.t.Helper()
	return s.send(c, s.request(method, target, body, h))
}

// postForm posts a form as a browser does from a page of this site.
func (s *stack) postForm(c *http.Client, path string, form url.Values) (*http.Response, string) {
	s.t.Helper()
	return s.do(c, http.MethodPost, s.origin+path, strings.NewReader(form.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"},
		"Origin":       {s.origin},
	})
}

func field(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s in the page:\n%s", re, page)
	}
	return html.UnescapeString(m[1])
}

func cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name && c.Value != "" {
			return c
		}
	}
	return nil
}

func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("the upstream's answer lacks the line %q:\n%s", l, body)
		}
	}
}
