package policy

import (
	"net/http"
	"testing"
	"unicode/utf8"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// FuzzDecide feeds arbitrary tokens, URLs and methods through the decision: it must
// never panic, always answer 200, 401 or 403, and never allow a token that is not
// one of the valid seeds.
func FuzzDecide(f *testing.F) {
	k := newTestKeys(f)
	ap, secrets := shopPolicy(k)
	p := mustCompile(f, ap, secrets)
	valid := mint(f, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), nil)
	seeds := []string{
		valid,
		mint(f, gojwt.SigningMethodHS256, k.rsaPEM, claimsValid(nil), nil),
		mint(f, gojwt.SigningMethodRS256, k.other, claimsValid(nil), map[string]any{"jku": "http://127.0.0.1:1/"}),
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"..", "a.b.c", "", "not-a-token",
	}
	for _, s := range seeds {
		f.Add(s, "https://shop.example.com/admin/", "GET")
		f.Add(s, "https://shop.example.com/public/%2e%2e/admin/", "POST")
		// Issue 12 items 3 and 4: double encoding, bad UTF-8, Exact plus a
		// slash, methods in lower case.
		f.Add(s, "https://shop.example.com/public/%252e%252e/admin/", "GET")
		f.Add(s, "https://shop.example.com/admin%c0%ae/x", "GET")
		f.Add(s, "https://shop.example.com/api/orders/export/", "get")
		f.Add(s, "https://shop.example.com/admin/users/1", "delete")
	}
	f.Fuzz(func(t *testing.T, token, rawURL, method string) {
		orig, ok := ParseOriginalURL(rawURL)
		if !ok {
			return
		}
		if !utf8.ValidString(orig.Path) || holdsEscape(orig.Path) {
			t.Fatalf("accepted path %q is not UTF-8 or still holds an escape", orig.Path)
		}
		h := http.Header{"Authorization": {"Bearer " + token}, "Cookie": {"jwtgate_access=" + token}}
		d := p.Decide(testNow, Request{Method: method, Path: orig.Path, Header: h}, nil)
		switch d.Status {
		case 200:
			if d.Reason != ReasonPublic && token != valid {
				t.Fatalf("allowed a token that is not the valid seed: %q (%s)", token, d.Reason)
			}
		case 401, 403:
		default:
			t.Fatalf("status %d", d.Status)
		}
	})
}
