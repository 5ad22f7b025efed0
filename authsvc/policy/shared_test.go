package policy

import (
	"strings"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// Policies that list the same key share its parsed form, but never each other's
// algorithms or secrets.
func TestSharedKeysKeepEachPolicysAlgorithms(t *testing.T) {
	k := newTestKeys(t)
	mk := func(name string, alg v1alpha1.Algorithm, keyData []byte) *Policy {
		ap := &v1alpha1.AuthPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: v1alpha1.AuthPolicySpec{JWT: &v1alpha1.JWTSpec{
				Algorithms: []v1alpha1.Algorithm{alg},
				Keys:       []v1alpha1.KeySource{{SecretRef: &v1alpha1.SecretKeyRef{Name: "k", Key: "key"}}},
			}},
		}
		return mustCompile(t, ap, map[string]*corev1.Secret{"k": secret("ns", "k", map[string][]byte{"key": keyData})})
	}
	rs256 := mk("a", "RS256", k.rsaPEM)
	rs384 := mk("b", "RS384", k.rsaPEM)
	hmacA := mk("c", "HS256", k.hmac)
	hmacB := mk("d", "HS256", append([]byte("another-secret-"), k.hmac...))
	if rs256.listed.Keys()[0].Key != rs384.listed.Keys()[0].Key {
		t.Error("the same PEM key should be parsed once and shared")
	}
	tests := []struct {
		name   string
		p      *Policy
		token  string
		status int
	}{
		{"RS256 policy, RS256 token", rs256, mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), nil), 200},
		{"RS256 policy, RS384 token", rs256, mint(t, gojwt.SigningMethodRS384, k.rsa, claimsValid(nil), nil), 401},
		{"RS384 policy, RS384 token", rs384, mint(t, gojwt.SigningMethodRS384, k.rsa, claimsValid(nil), nil), 200},
		{"RS384 policy, RS256 token", rs384, mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), nil), 401},
		{"HMAC policy, its secret", hmacA, mint(t, gojwt.SigningMethodHS256, k.hmac, claimsValid(nil), nil), 200},
		{"HMAC policy, another policy's secret", hmacB, mint(t, gojwt.SigningMethodHS256, k.hmac, claimsValid(nil), nil), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := tc.p.Decide(testNow, Request{Method: "GET", Path: "/", Header: bearer(tc.token)}, nil); d.Status != tc.status {
				t.Fatalf("got %d %s, want %d", d.Status, d.Reason, tc.status)
			}
		})
	}
}

// Policies whose rules, forwardClaims, token sources and roles claim say the
// same share one compiled shape (issue 17: 10,000 policies of one template);
// anything else in them stays their own, and a shape is never written after
// it is shared.
func TestPoliciesOfOneShapeShareIt(t *testing.T) {
	k := newTestKeys(t)
	h4, h5, signing := mixedCosts(t)
	mk := func(name string, edit func(*v1alpha1.AuthPolicy, map[string]*corev1.Secret)) *Policy {
		ap, secrets := shopPolicy(k)
		ap.Name = name
		ap.Spec.Hosts = []string{name + ".example.com"}
		if edit != nil {
			edit(ap, secrets)
		}
		return mustCompile(t, ap, secrets)
	}
	a, b := mk("a", nil), mk("b", nil)
	if a.shape != b.shape {
		t.Error("two policies of the same rules, forwardClaims, token sources and roles claim should share their shape")
	}
	// The mixed bcrypt costs warning is the policy's own: it is appended to a
	// copy, never to the shared warnings.
	login := mk("login", func(ap *v1alpha1.AuthPolicy, secrets map[string]*corev1.Secret) {
		secrets["u"] = secret("shop", "u", map[string][]byte{"users": []byte("a:" + string(h4) + "\nb:" + string(h5) + "\n")})
		secrets["sign"] = secret("shop", "sign", map[string][]byte{"private.pem": signing})
		ap.Spec.Login = &v1alpha1.LoginSpec{UsersSecretRef: &v1alpha1.SecretKeyRef{Name: "u", Key: "users"}, SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"}}
	})
	if login.shape != a.shape || len(login.Warnings()) != len(a.Warnings())+1 || len(mk("c", nil).Warnings()) != len(a.Warnings()) {
		t.Errorf("warnings: shared %v, with login %v", a.Warnings(), login.Warnings())
	}
	others := map[string]func(*v1alpha1.AuthPolicy, map[string]*corev1.Secret){
		"rule path":    func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) { ap.Spec.Rules[1].Path = "/Admin/" },
		"rule methods": func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) { ap.Spec.Rules[1].Methods = []string{"GET"} },
		"roles claim":  func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) { ap.Spec.RolesClaim = "roles" },
		"forward":      func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) { ap.Spec.ForwardClaims[0].Format = "json" },
		"token source": func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT.TokenSources = []v1alpha1.TokenSource{{Header: "X-Token"}}
		},
	}
	for name, edit := range others {
		if mk("other", edit).shape == a.shape {
			t.Errorf("%s differs: the shape must too", name)
		}
	}
	// Same decisions from either policy of a shape.
	admin := mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"realm_access": map[string]any{"roles": []string{"admin"}}}), nil)
	for _, path := range []string{"/admin/x", "/public/", "/api/orders", "/tenant"} {
		req := Request{Method: "GET", Path: path, Header: bearer(admin)}
		if da, db := a.Decide(testNow, req, nil), b.Decide(testNow, req, nil); da.Status != db.Status || da.Reason != db.Reason || da.Rule != db.Rule {
			t.Errorf("%s: %d %s rule %d, and %d %s rule %d", path, da.Status, da.Reason, da.Rule, db.Status, db.Reason, db.Rule)
		}
	}
	// A spec with a problem in its rules is refused, also when a good shape
	// of similar rules exists.
	ap, secrets := shopPolicy(k)
	ap.Spec.Rules[0].Path = "/public/../admin/"
	if _, err := Compile(Input{Policy: ap, Secrets: secrets}); err == nil || !strings.Contains(err.Error(), "spec.rules[0].path") {
		t.Fatalf("compile: %v", err)
	}
}
