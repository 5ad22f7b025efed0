package policy

import (
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// Issue 12 item 3: a rule that names methods lets the others fall through;
// the README's own /admin/ example let DELETE pass with any token. Compile
// warns (the policy still compiles), naming the rule and where they land.
func TestCompileWarnsAboutMethodsThatFallThrough(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	ap.Spec.Rules = append(ap.Spec.Rules,
		v1alpha1.Rule{Path: "/pub/", Methods: []string{"GET"}, Roles: []string{"x"}},
		v1alpha1.Rule{Path: "/pub/", Public: true, Methods: []string{"OPTIONS"}},
		v1alpha1.Rule{Path: "/", Public: true},
		v1alpha1.Rule{Path: "/covered/", Methods: []string{"GET"}, Roles: []string{"a"}},
		v1alpha1.Rule{Path: "/covered/", Roles: []string{"b"}},
		v1alpha1.Rule{Path: "/api/orders/export/x", PathType: v1alpha1.PathTypeExact, Methods: []string{"POST"}, Roles: []string{"c"}},
	)
	p := mustCompile(t, ap, secrets)
	want := map[string]string{
		"spec.rules[1].methods":  "fall through to spec.rules[8] (/), which is public: no token at all",
		"spec.rules[6].methods":  "fall through to spec.rules[8] (/), which is public",
		"spec.rules[7].methods":  "fall through to spec.rules[8] (/), which is public",
		"spec.rules[11].methods": "fall through to spec.rules[2] (/api/orders, claims)",
	}
	got := map[string]string{}
	for _, w := range p.Warnings() {
		if w.Reason != v1alpha1.ReasonMethodsFallThrough {
			t.Errorf("warning %v: reason %s", w, w.Reason)
		}
		got[w.Field] = w.Message
	}
	for field, text := range want {
		if !strings.Contains(got[field], text) {
			t.Errorf("%s: got %q, want it to say %q", field, got[field], text)
		}
	}
	if len(got) != len(want) {
		t.Errorf("warnings %v, want only %v", got, want)
	}

	// Without the public catch-all, /admin/'s other methods land on "any valid token".
	ap, secrets = shopPolicy(k)
	p = mustCompile(t, ap, secrets)
	if len(p.Warnings()) != 1 || !strings.Contains(p.Warnings()[0].Message, "no rule, so any valid token passes") ||
		!strings.Contains(p.Warnings()[0].Message, "GET, POST at /admin/") {
		t.Fatalf("warnings %v", p.Warnings())
	}
}

// Issue 12 item 12: mixed bcrypt costs are a warning, not an error.
func TestCompileWarnsAboutMixedBcryptCosts(t *testing.T) {
	k := newTestKeys(t)
	h4, h5, signing := mixedCosts(t)
	for _, tc := range []struct {
		users string
		warn  bool
	}{
		{"a:" + string(h4) + "\nb:" + string(h4) + "\n", false},
		{"a:" + string(h4) + "\nb:" + string(h5) + "\n", true},
	} {
		ap, secrets := shopPolicy(k)
		ap.Spec.Rules = nil
		secrets["u"] = secret("shop", "u", map[string][]byte{"users": []byte(tc.users)})
		secrets["sign"] = secret("shop", "sign", map[string][]byte{"private.pem": signing})
		ap.Spec.Login = &v1alpha1.LoginSpec{UsersSecretRef: &v1alpha1.SecretKeyRef{Name: "u", Key: "users"}, SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"}}
		p := mustCompile(t, ap, secrets)
		var found bool
		for _, w := range p.Warnings() {
			if w.Reason == v1alpha1.ReasonMixedBcryptCosts && w.Field == "spec.login.usersSecretRef" && strings.Contains(w.Message, "4, 5") {
				found = true
			}
		}
		if found != tc.warn {
			t.Errorf("users %q: warned %v, want %v (%v)", tc.users, found, tc.warn, p.Warnings())
		}
	}
}
