package login

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func cookieOf(c *http.Client, path, name string) string {
	u, _ := url.Parse("https://" + testHost + path)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

func setCookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestBrowserFlow(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	b := hs.browser()
	rd := "https://" + testHost + "/orders/7?x=1"

	// The form, with its CSRF field and nonce cookie.
	resp, page := hs.do(b, http.MethodGet, LoginPath+"?rd="+url.QueryEscape(rd), nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("form: %d", resp.StatusCode)
	}
	csrf := formCSRF(t, page)

	// Sign in: 303 to rd with both cookies.
	resp, _ = hs.do(b, http.MethodPost, LoginPath, formBody("username", "alice", "password", alicePW, "rd", rd, "jwtgate_csrf", csrf), formHeader)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != rd {
		t.Fatalf("sign-in: %d to %q, want 303 to %q", resp.StatusCode, resp.Header.Get("Location"), rd)
	}
	access, refresh := setCookie(resp, "jwtgate_access"), setCookie(resp, "jwtgate_refresh")
	if access == nil || refresh == nil {
		t.Fatalf("sign-in set %v", resp.Header["Set-Cookie"])
	}
	if access.Path != "/" || !access.HttpOnly || !access.Secure || access.SameSite != http.SameSiteLaxMode || access.MaxAge != 300 {
		t.Errorf("access cookie %+v: want Path=/ HttpOnly Secure SameSite=Lax Max-Age=300", access)
	}
	if refresh.Path != "/jwtgate/" || !refresh.HttpOnly || !refresh.Secure || refresh.SameSite != http.SameSiteLaxMode || refresh.MaxAge != 336*3600 {
		t.Errorf("refresh cookie %+v: want Path=/jwtgate/ HttpOnly Secure SameSite=Lax Max-Age=1209600", refresh)
	}
	if len(refresh.Value) != 43 || strings.Count(refresh.Value, ".") != 0 {
		t.Errorf("refresh token %q is not an opaque 256-bit value", refresh.Value)
	}
	firstRefresh := refresh.Value

	// The issued token, verified by another library against jwks.json.
	claims := hs.verifyWithOtherLibrary(access.Value)
	if claims["sub"] != "alice" || claims["sid"] == "" || claims["jti"] == "" {
		t.Errorf("claims %v: want sub, sid and jti", claims)
	}
	ra, _ := claims["realm_access"].(map[string]any)
	if roles, _ := ra["roles"].([]any); len(roles) != 2 || roles[0] != "admin" {
		t.Errorf("roles under realm_access.roles: %v", claims["realm_access"])
	}

	// A decision with the cookie the browser holds for the application.
	rec := hs.decide("/admin/", http.Header{"Cookie": {"jwtgate_access=" + cookieOf(b, "/", "jwtgate_access")}})
	if rec.Code != 200 || rec.Header().Get("X-Auth-User") != "alice" || rec.Header().Get("X-Auth-Roles") != "admin,user" {
		t.Fatalf("decision with the access cookie: %d %v", rec.Code, rec.Header())
	}
	if cookieOf(b, "/", "jwtgate_refresh") != "" {
		t.Fatal("the refresh cookie is sent to application paths")
	}

	// POST /jwtgate/refresh with the cookie: new cookies, no tokens in the body.
	hs.clock.Advance(time.Minute)
	resp, body := hs.do(b, http.MethodPost, RefreshPath, nil, nil)
	if resp.StatusCode != http.StatusNoContent || body != "" || setCookie(resp, "jwtgate_refresh") == nil {
		t.Fatalf("refresh: %d %q", resp.StatusCode, body)
	}
	if cookieOf(b, "/jwtgate/", "jwtgate_refresh") == firstRefresh {
		t.Fatal("refresh did not rotate the refresh token")
	}

	// Silent renewal: the form page with a refresh cookie goes straight back.
	hs.clock.Advance(time.Minute)
	before := cookieOf(b, "/jwtgate/", "jwtgate_refresh")
	resp, _ = hs.do(b, http.MethodGet, LoginPath+"?rd=/after", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/after" || setCookie(resp, "jwtgate_access") == nil {
		t.Fatalf("silent renewal: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if cookieOf(b, "/jwtgate/", "jwtgate_refresh") == before {
		t.Fatal("silent renewal did not rotate the refresh token")
	}
	renewed := cookieOf(b, "/", "jwtgate_access")
	hs.verifyWithOtherLibrary(renewed)

	// Sign out: cookies cleared, session ended, the signed-out page.
	lastRefresh := cookieOf(b, "/jwtgate/", "jwtgate_refresh")
	resp, page = hs.do(b, http.MethodPost, LogoutPath, nil, map[string]string{"Origin": "https://" + testHost})
	if resp.StatusCode != 200 || !strings.Contains(page, "signed out") {
		t.Fatalf("logout: %d\n%s", resp.StatusCode, page)
	}
	if cookieOf(b, "/", "jwtgate_access") != "" || cookieOf(b, "/jwtgate/", "jwtgate_refresh") != "" {
		t.Fatal("logout left cookies in the jar")
	}
	// revocation: strict, so the access token of the ended session is refused at once.
	if rec := hs.decide("/", http.Header{"Cookie": {"jwtgate_access=" + renewed}}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("decision after sign-out with strict revocation: %d", rec.Code)
	}

	// The refresh token the browser held at sign-out is dead.
	if resp, _ := hs.do(hs.browser(), http.MethodPost, RefreshPath, nil, map[string]string{"Cookie": "jwtgate_refresh=" + lastRefresh}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("refresh with the token of a signed-out session: %d", resp.StatusCode)
	}

	// The first refresh token, replayed: refused, and no cookies handed out.
	hs.clock.Advance(time.Minute)
	resp, _ = hs.do(hs.browser(), http.MethodPost, RefreshPath, nil, map[string]string{"Cookie": "jwtgate_refresh=" + firstRefresh})
	if resp.StatusCode != http.StatusUnauthorized || (setCookie(resp, "jwtgate_access") != nil && setCookie(resp, "jwtgate_access").Value != "") {
		t.Fatalf("replayed refresh token: %d", resp.StatusCode)
	}
	// ... and the form page does not renew with it either.
	resp, page = hs.do(hs.browser(), http.MethodGet, LoginPath+"?rd=/x", nil, map[string]string{"Cookie": "jwtgate_refresh=" + firstRefresh})
	if resp.StatusCode != 200 || !strings.Contains(page, "<form") {
		t.Fatalf("login page with a dead refresh cookie: %d", resp.StatusCode)
	}
}

func TestRefreshGraceAndReuseEndsSession(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	c := hs.browser()
	_, body := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"alice","password":"`+alicePW+`"}`), jsonHeaders())
	first := decodeTokens(t, body)
	refresh := func(tok string) (*http.Response, string) {
		return hs.do(c, http.MethodPost, RefreshPath, strings.NewReader(`{"refresh_token":"`+tok+`"}`), jsonHeaders())
	}

	resp, body := refresh(first.RefreshToken)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	second := decodeTokens(t, body)
	// A parallel tab with the same token, 9 s later: still served.
	hs.clock.Advance(9 * time.Second)
	if resp, body := refresh(first.RefreshToken); resp.StatusCode != 200 {
		t.Fatalf("reuse within the 10 s grace: %d %s", resp.StatusCode, body)
	}
	// Past the grace: a replay. Refused, and the whole session ends.
	hs.clock.Advance(2 * time.Second)
	if resp, _ := refresh(first.RefreshToken); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reuse after the grace: %d, want 401", resp.StatusCode)
	}
	if resp, _ := refresh(second.RefreshToken); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the live token of a session ended by reuse: %d, want 401", resp.StatusCode)
	}
	if rec := hs.decide("/", http.Header{"Authorization": {"Bearer " + second.AccessToken}}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("access token of the ended session (strict): %d", rec.Code)
	}
	if !strings.Contains(hs.logs.String(), "refresh token replayed") {
		t.Error("the replay is not logged")
	}
}

func TestRefreshTokenIsNotABearerToken(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	_, body := hs.do(hs.browser(), http.MethodPost, LoginPath, strings.NewReader(`{"username":"alice","password":"`+alicePW+`"}`), jsonHeaders())
	a := decodeTokens(t, body)
	if rec := hs.decide("/", http.Header{"Authorization": {"Bearer " + a.AccessToken}}); rec.Code != 200 {
		t.Fatalf("the access token as bearer: %d", rec.Code)
	}
	for _, hdr := range []http.Header{
		{"Authorization": {"Bearer " + a.RefreshToken}},
		{"Cookie": {"jwtgate_access=" + a.RefreshToken}},
	} {
		rec := hs.decide("/", hdr)
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), "invalid_token") {
			t.Fatalf("refresh token presented as %v: %d %v", hdr, rec.Code, rec.Header())
		}
	}
}

func TestJSONFlow(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	c := hs.browser()
	post := func(path, body string, extra ...string) (*http.Response, string) {
		h := jsonHeaders()
		for i := 0; i+1 < len(extra); i += 2 {
			h[extra[i]] = extra[i+1]
		}
		return hs.do(c, http.MethodPost, path, strings.NewReader(body), h)
	}
	errorOf := func(body string) string {
		if !strings.Contains(body, `"error_description"`) {
			t.Errorf("error without error_description: %s", body)
		}
		i := strings.Index(body, `"error":"`)
		if i < 0 {
			return ""
		}
		rest := body[i+9:]
		return rest[:strings.IndexByte(rest, '"')]
	}

	for _, tc := range []struct {
		name, body string
		extra      []string
		status     int
		err        string
	}{
		{"malformed", `{"username":`, nil, 400, "invalid_request"},
		{"wrong password", `{"username":"alice","password":"nope"}`, nil, 401, "invalid_grant"},
		{"unknown user", `{"username":"mallory","password":"nope"}`, nil, 401, "invalid_grant"},
		{"foreign origin", `{"username":"alice","password":"` + alicePW + `"}`, []string{"Origin", "https://evil.example"}, 400, "invalid_request"},
	} {
		resp, body := post(LoginPath, tc.body, tc.extra...)
		if resp.StatusCode != tc.status || errorOf(body) != tc.err || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.status, tc.err)
		}
	}

	resp, body := post(LoginPath, `{"username":"alice","password":"`+alicePW+`"}`, "Origin", "https://app.shop.example.com")
	if resp.StatusCode != 200 || len(resp.Cookies()) != 0 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("login: %d cookies %v", resp.StatusCode, resp.Cookies())
	}
	a := decodeTokens(t, body)
	if a.TokenType != "Bearer" || a.ExpiresIn != 300 {
		t.Errorf("answer %+v", a)
	}
	hs.verifyWithOtherLibrary(a.AccessToken)

	resp, body = post(RefreshPath, `{"refresh_token":"`+a.RefreshToken+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	b := decodeTokens(t, body)
	if b.RefreshToken == a.RefreshToken {
		t.Fatal("refresh did not rotate")
	}
	if resp, body := post(RefreshPath, `{}`); resp.StatusCode != 400 || errorOf(body) != "invalid_request" {
		t.Errorf("refresh without a token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := post(LogoutPath, `{"refresh_token":"`+b.RefreshToken+`"}`); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, body := post(RefreshPath, `{"refresh_token":"`+b.RefreshToken+`"}`); resp.StatusCode != 401 || errorOf(body) != "invalid_grant" {
		t.Fatalf("refresh after logout: %d %s", resp.StatusCode, body)
	}
}

func TestUnknownHostAndHeaders(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	req := httptest.NewRequest(http.MethodGet, "https://other.example.com"+LoginPath, nil)
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "No sign-in policy serves this host") {
		t.Fatalf("unknown host: %d %s", rec.Code, rec.Body)
	}
	// Host with a port and upper case still finds the policy.
	req = httptest.NewRequest(http.MethodGet, "https://SHOP.example.com:8443"+LoginPath, nil)
	rec = httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("host with port: %d", rec.Code)
	}
	h := rec.Header()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "style-src 'sha256-", "form-action 'self' shop.example.com *.shop.example.com", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("page headers %v", h)
	}
	page := rec.Body.String()
	for _, want := range []string{`<html lang="en">`, `<label for="username">`, `<label for="password">`, `autocomplete="username"`, `autocomplete="current-password"`, `method="post"`} {
		if !strings.Contains(page, want) {
			t.Errorf("form lacks %s", want)
		}
	}
	for _, never := range []string{"<script", "http://", "https://"} {
		if strings.Contains(page, never) {
			t.Errorf("form holds %q: no scripts or external assets", never)
		}
	}
}
