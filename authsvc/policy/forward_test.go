package policy

import (
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// Issue 12 item 8: a role holding a comma is never forwarded as two roles; it
// is left out of the comma-joined header (the decision still sees it), and
// format: json forwards the exact value.
func TestForwardedArraysWithCommas(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	ap.Spec.Rules = append(ap.Spec.Rules, v1alpha1.Rule{Path: "/comma/", Roles: []string{"user,admin"}})
	ap.Spec.ForwardClaims = append(ap.Spec.ForwardClaims,
		v1alpha1.ForwardClaim{Claim: "realm_access.roles", Header: "X-Auth-Roles-Json", Format: v1alpha1.ForwardFormatJSON},
		v1alpha1.ForwardClaim{Claim: "sub", Header: "X-Auth-Sub-Json", Format: v1alpha1.ForwardFormatJSON},
		v1alpha1.ForwardClaim{Claim: "nested", Header: "X-Auth-Nested", Format: v1alpha1.ForwardFormatJSON},
		v1alpha1.ForwardClaim{Claim: "absent", Header: "X-Auth-Absent", Format: v1alpha1.ForwardFormatJSON},
	)
	p := mustCompile(t, ap, secrets)
	token := mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{
		"sub":          "alice",
		"realm_access": map[string]any{"roles": []any{"user,admin", "viewer", "a\"b<c>"}},
		"nested":       map[string]any{"n": 1.5, "s": "x,y"},
	}), nil)
	d := p.Decide(testNow, Request{Method: "GET", Path: "/comma/x", Header: bearer(token)}, nil)
	if d.Status != 200 {
		t.Fatalf("the decision must still see the role %q: %d %s", "user,admin", d.Status, d.Reason)
	}
	got := map[string]string{}
	for _, h := range d.Identity.Headers {
		got[h.Name] = h.Values[0]
	}
	want := map[string]string{
		"X-Auth-Roles":      `viewer,a"b<c>`,
		"X-Auth-Roles-Json": `["user,admin","viewer","a\"b<c>"]`,
		"X-Auth-Sub-Json":   `"alice"`,
		"X-Auth-Nested":     `{"n":1.5,"s":"x,y"}`,
		"X-Auth-Absent":     ``,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %q, want %q", name, got[name], v)
		}
	}
}
