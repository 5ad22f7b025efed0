package policy

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
)

type deadSessions map[string]bool

func (d deadSessions) SessionAlive(policy, sid string) bool { return !d[policy+"/"+sid] }

// With revocation: strict, the policy's own tokens are refused once their session
// ends; tokens of the IdPs it lists are not checked against its sessions, even
// when they carry a sid of their own.
func TestStrictRevocation(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	pemBytes, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	secrets["sign"] = secret("shop", "sign", map[string][]byte{"private.pem": pemBytes})
	secrets["users"] = secret("shop", "users", map[string][]byte{"users": nil})
	ap.Spec.Login = &v1alpha1.LoginSpec{
		UsersSecretRef:      &v1alpha1.SecretKeyRef{Name: "users", Key: "users"},
		SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"},
		Revocation:          v1alpha1.RevocationStrict,
	}
	p := mustCompile(t, ap, secrets)
	own := func(sid string) string {
		return mint(t, gojwt.SigningMethodES256, priv, claimsValid(gojwt.MapClaims{
			"iss": "https://shop.example.com", "aud": []string{"shop/shop"}, "sid": sid,
		}), map[string]any{"kid": p.Login.Signer.ID})
	}
	dead := deadSessions{"shop/shop/s-ended": true, "shop/shop/idp-sid": true}
	tests := []struct {
		name   string
		token  string
		status int
		reason Reason
	}{
		{"own token, live session", own("s-live"), 200, ReasonAllowed},
		{"own token, ended session", own("s-ended"), 401, ReasonRevoked},
		{"own token without sid", own(""), 401, ReasonRevoked},
		{"IdP token carrying a sid of its own", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"sid": "idp-sid"}), nil), 200, ReasonAllowed},
		{"own key, wrong audience", mint(t, gojwt.SigningMethodES256, priv, claimsValid(gojwt.MapClaims{"iss": "https://shop.example.com", "aud": "other/policy", "sid": "s-live"}), nil), 401, ReasonAudience},
		{"own key, IdP issuer", mint(t, gojwt.SigningMethodES256, priv, claimsValid(gojwt.MapClaims{"aud": "shop/shop", "sid": "s-live"}), nil), 401, ReasonIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(testNow, Request{Method: "GET", Path: "/", Header: bearer(tc.token)}, dead)
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("got %d %s, want %d %s", d.Status, d.Reason, tc.status, tc.reason)
			}
		})
	}
}

// The CSRF key of the sign-in form follows the signing key: a new key (even one
// that keeps its kid) makes old forms invalid.
func TestCSRFKeyFollowsSigningKey(t *testing.T) {
	k := newTestKeys(t)
	compileWith := func() *Policy {
		ap, secrets := shopPolicy(k)
		pemBytes, err := keys.Generate("ES256")
		if err != nil {
			t.Fatal(err)
		}
		secrets["sign"] = secret("shop", "sign", map[string][]byte{"private.pem": pemBytes})
		secrets["users"] = secret("shop", "users", map[string][]byte{"users": nil})
		ap.Spec.Login = &v1alpha1.LoginSpec{
			UsersSecretRef:      &v1alpha1.SecretKeyRef{Name: "users", Key: "users"},
			SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"},
		}
		return mustCompile(t, ap, secrets)
	}
	a, b := compileWith(), compileWith()
	if len(a.Login.CSRFKey) != 32 || string(a.Login.CSRFKey) == string(b.Login.CSRFKey) {
		t.Fatalf("CSRF keys: %x and %x; want two different 32-byte keys", a.Login.CSRFKey, b.Login.CSRFKey)
	}
}
