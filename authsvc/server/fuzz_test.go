package server

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The Envoy HTTP door: any raw target and Host gets 200, 302, 401 or 403, never
// a panic, a 3xx other than the sign-in redirect, a 404 or a 5xx.
func FuzzExtAuthzDoor(f *testing.F) {
	for _, s := range [][3]string{
		{"GET", "/jwtgate/ext-authz/shop/web/app?a=1", "shop.example.com"},
		{"DELETE", "/jwtgate/ext-authz/-/public/%2e%2e/admin/", "shop.example.com:8443"},
		{"GET", "/jwtgate/ext-authz/shop/web", "[2001:db8::1]"},
		{"POST", "/jwtgate/ext-authz/shop/web?x", "a b"},
		{"GET", "/jwtgate/ext-authz//web//x", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	fx := newDoorFixture(f)
	f.Fuzz(func(t *testing.T, method, target, host string) {
		if !httpToken(method) || !strings.HasPrefix(target, ExtAuthzPath) {
			return
		}
		req := &http.Request{Method: method, RequestURI: target, Host: host, Header: http.Header{"Accept": {"text/html"}}, URL: &url.URL{Path: "/"}}
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, req)
		checkDoorStatus(t, rec)
	})
}

// The forward-auth door: any four X-Forwarded-* values.
func FuzzForwardAuthDoor(f *testing.F) {
	f.Add("GET", "https", "shop.example.com", "/app?a=1")
	f.Add("HEAD", "http", "SHOP.example.com:8443", "https://shop.example.com/x/../admin")
	f.Add("get", "wss", "[::1]:1", "/%c0%ae")
	fx := newDoorFixture(f)
	f.Fuzz(func(t *testing.T, method, proto, host, uri string) {
		req := httptest.NewRequest("GET", ForwardAuthPath+"/shop/web", nil)
		req.Header = http.Header{"Accept": {"text/html"},
			"X-Forwarded-Method": {method}, "X-Forwarded-Proto": {proto}, "X-Forwarded-Host": {host}, "X-Forwarded-Uri": {uri}}
		rec := httptest.NewRecorder()
		fx.handler.ServeHTTP(rec, req)
		checkDoorStatus(t, rec)
		if rec.Code == http.StatusFound {
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil || loc.Scheme != "https" || loc.Path != "/jwtgate/login" {
				t.Fatalf("Location %q", rec.Header().Get("Location"))
			}
		}
	})
}

func checkDoorStatus(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	switch rec.Code {
	case http.StatusOK, http.StatusUnauthorized, http.StatusForbidden:
	case http.StatusFound:
		if !strings.Contains(rec.Header().Get("Location"), "/jwtgate/login?rd=") {
			t.Fatalf("302 to %q", rec.Header().Get("Location"))
		}
	default:
		t.Fatalf("status %d", rec.Code)
	}
}

// httpToken reports what net/http accepts as a method: never hands a handler a method that is not a token.
func httpToken(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range []byte(m) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
