package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// Tokens in these tests are minted with github.com/golang-jwt/jwt/v5, a different
// library than the one that verifies them (jwx), so a bug in one cannot hide itself.

type testKeys struct {
	rsa     *rsa.PrivateKey
	rsaPEM  []byte // public, PKIX PEM
	ec      *ecdsa.PrivateKey
	ecPEM   []byte
	ed      ed25519.PrivateKey
	edPEM   []byte
	hmac    []byte
	other   *rsa.PrivateKey // a key the policy does not know
	otherEC *ecdsa.PrivateKey
}

var sharedKeys *testKeys

func newTestKeys(t testing.TB) *testKeys {
	t.Helper()
	if sharedKeys != nil {
		return sharedKeys
	}
	k := &testKeys{hmac: []byte("0123456789abcdef0123456789abcdef-hmac-secret")}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if k.otherEC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	var edPub ed25519.PublicKey
	if edPub, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	k.rsaPEM = pemPublic(t, &k.rsa.PublicKey)
	k.ecPEM = pemPublic(t, &k.ec.PublicKey)
	k.edPEM = pemPublic(t, edPub)
	sharedKeys = k
	return k
}

func pemPublic(t testing.TB, pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// mint signs claims with golang-jwt. headers are added to the JOSE header.
func mint(t testing.TB, method gojwt.SigningMethod, key any, claims gojwt.MapClaims, headers map[string]any) string {
	t.Helper()
	tok := gojwt.NewWithClaims(method, claims)
	for k, v := range headers {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var testNow = time.Unix(1_800_000_000, 0)

func claimsValid(extra gojwt.MapClaims) gojwt.MapClaims {
	c := gojwt.MapClaims{
		"sub": "alice",
		"iss": "https://idp.example.com",
		"aud": "shop",
		"exp": testNow.Add(5 * time.Minute).Unix(),
		"iat": testNow.Add(-time.Minute).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func secret(ns, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// shopPolicy is the policy most tests decide with: RS256, ES256, EdDSA and HS256
// keys, issuer and audience set, and rules of every kind.
func shopPolicy(k *testKeys) (*v1alpha1.AuthPolicy, map[string]*corev1.Secret) {
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop", Generation: 1},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts: []string{"shop.example.com"},
			JWT: &v1alpha1.JWTSpec{
				Algorithms: []v1alpha1.Algorithm{"RS256", "ES256", "EdDSA", "HS256"},
				Keys: []v1alpha1.KeySource{
					{SecretRef: &v1alpha1.SecretKeyRef{Name: "shop-keys", Key: "rsa.pem"}},
					{SecretRef: &v1alpha1.SecretKeyRef{Name: "shop-keys", Key: "ec.pem"}},
					{SecretRef: &v1alpha1.SecretKeyRef{Name: "shop-keys", Key: "ed.pem"}},
					{SecretRef: &v1alpha1.SecretKeyRef{Name: "shop-hmac", Key: "secret"}},
				},
				Issuer:    "https://idp.example.com",
				Audiences: []string{"shop", "shop-api"},
			},
			RolesClaim: "realm_access.roles",
			Rules: []v1alpha1.Rule{
				{Path: "/public/", Public: true},
				{Path: "/admin/", Methods: []string{"GET", "POST"}, Roles: []string{"admin"}},
				{Path: "/api/orders", Claims: []v1alpha1.ClaimRequirement{{Name: "scope", Contains: ptr("orders:read")}}},
				{Path: "/api/orders/export", PathType: v1alpha1.PathTypeExact, Roles: []string{"exporter"}},
				{Path: "/tenant", Claims: []v1alpha1.ClaimRequirement{{Name: "tenant", In: []string{"a", "b"}}, {Name: "email_verified", Equals: ptr("true")}}},
				{Path: "/nodebug", Claims: []v1alpha1.ClaimRequirement{{Name: "debug", Exists: ptrBool(false)}}},
			},
			ForwardClaims: []v1alpha1.ForwardClaim{
				{Claim: "sub", Header: "X-Auth-User"},
				{Claim: "realm_access.roles", Header: "X-Auth-Roles"},
				{Claim: "name", Header: "X-Auth-Name"},
			},
		},
	}
	secrets := map[string]*corev1.Secret{
		"shop-keys": secret("shop", "shop-keys", map[string][]byte{"rsa.pem": k.rsaPEM, "ec.pem": k.ecPEM, "ed.pem": k.edPEM}),
		"shop-hmac": secret("shop", "shop-hmac", map[string][]byte{"secret": k.hmac}),
	}
	return ap, secrets
}

func ptr(s string) *string { return &s }
func ptrBool(b bool) *bool { return &b }

func mustCompile(t testing.TB, ap *v1alpha1.AuthPolicy, secrets map[string]*corev1.Secret) *Policy {
	t.Helper()
	p, err := Compile(Input{Policy: ap, Secrets: secrets, Cache: NewTokenCache(1024)})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

func bearer(token string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

var v1alpha1APIKeys = v1alpha1.APIKeys{SecretRef: v1alpha1.SecretKeyRef{Name: "shop-apikeys", Key: "keys"}}

// mixedCosts are two bcrypt hashes of "pw" at costs 4 and 5 (a users file of
// mixed costs) and a signing key, for policies that sign people in.
func mixedCosts(t *testing.T) (h4, h5, signing []byte) {
	t.Helper()
	h4, _ = bcrypt.GenerateFromPassword([]byte("pw"), 4)
	h5, _ = bcrypt.GenerateFromPassword([]byte("pw"), 5)
	signing, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	return h4, h5, signing
}
