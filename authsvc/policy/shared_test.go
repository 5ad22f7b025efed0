package policy

import (
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
