package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// Issue 12 item 14: Traefik (its ingress-nginx provider calls auth-url as it is
// written) and Caddy set their own X-Forwarded-Method/-Uri/-Host but pass every
// client header through, a forged X-Original-URL included. On /jwtgate/auth a
// user token on /admin/ plus "X-Original-URL: https://shop.example.com/public/"
// was allowed. These are the headers such a proxy sends, with the forgery.
func TestAuthRequestRefusesForgedOriginalURL(t *testing.T) {
	tests := []struct {
		name    string
		header  map[string]string
		status  int
		logHint string // what the warning line must hold
	}{
		{"forged path (Traefik/Caddy set X-Forwarded-Uri)", map[string]string{
			"X-Original-URL": "https://shop.example.com/public/", "X-Original-Method": "GET",
			"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example.com", "X-Forwarded-Uri": "/admin/users",
		}, 403, "/jwtgate/forward-auth/"},
		{"forged path hidden by encoding", map[string]string{
			"X-Original-URL": "https://shop.example.com/public/", "X-Original-Method": "GET",
			"X-Forwarded-Uri": "/public/%2e%2e/admin/users",
		}, 403, "/jwtgate/forward-auth/"},
		{"forged method", map[string]string{
			"X-Original-URL": "https://shop.example.com/admin/users", "X-Original-Method": "GET",
			"X-Forwarded-Method": "DELETE", "X-Forwarded-Uri": "/admin/users",
		}, 403, "/jwtgate/forward-auth/"},
		{"forged host", map[string]string{
			"X-Original-URL": "https://shop.example.com/app", "X-Original-Method": "GET",
			"X-Forwarded-Host": "other.example.com",
		}, 403, "/jwtgate/forward-auth/"},
		{"no X-Original-URL, only what Traefik sends", map[string]string{
			"X-Forwarded-Method": "GET", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example.com", "X-Forwarded-Uri": "/app",
		}, 403, "/jwtgate/forward-auth/"},
		{"agreeing headers: case, port and normalization do not matter", map[string]string{
			"X-Original-URL": "https://shop.example.com:8443/app/./x?a=1", "X-Original-Method": "GET",
			"X-Forwarded-Method": "get", "X-Forwarded-Host": "SHOP.example.com:8443", "X-Forwarded-Uri": "/app//x?a=1",
		}, 200, ""},
		{"empty X-Forwarded-* are no disagreement", map[string]string{
			"X-Original-URL": "https://shop.example.com/app", "X-Original-Method": "GET",
			"X-Forwarded-Method": "", "X-Forwarded-Host": "", "X-Forwarded-Uri": "",
		}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fixture per case: refusal warnings are written at most once a second.
			var logs strings.Builder
			f := newFixtureWithLog(t, &logs, 1000)
			user := f.token(t, gojwt.MapClaims{"sub": "alice", "roles": []string{"user"}})
			req := httptest.NewRequest("GET", "/jwtgate/auth/shop/web", nil)
			req.Header.Set("Authorization", "Bearer "+user)
			for k, v := range tc.header {
				req.Header[http.CanonicalHeaderKey(k)] = []string{v}
			}
			rec := httptest.NewRecorder()
			f.handler.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			if tc.status == 200 && rec.Header().Get("X-Auth-User") != "alice" {
				t.Fatalf("X-Auth-User %q, want alice", rec.Header().Get("X-Auth-User"))
			}
			if tc.logHint != "" && !strings.Contains(logs.String(), tc.logHint) {
				t.Fatalf("the log line must point at the forward-auth door (%s):\n%s", tc.logHint, logs.String())
			}
		})
	}
}
