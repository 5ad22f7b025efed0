package oidc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// testProvider signs ID tokens as a provider would, with a key whose public
// half is in set.
type testProvider struct {
	priv jwk.Key
	set  *keys.Set
}

func newTestProvider(t *testing.T, kid string) *testProvider {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(set)
	ks, err := keys.ParseVerification(b, "")
	if err != nil {
		t.Fatal(err)
	}
	return &testProvider{priv: priv, set: keys.NewSet(ks)}
}

func (p *testProvider) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.Sign(b, jws.WithKey(jwa.ES256(), p.priv))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func TestVerifyIDToken(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	op := newTestProvider(t, "k1")
	other := newTestProvider(t, "k1") // same kid, another key: a forged token
	expect := Expect{Issuer: "https://idp.example", ClientID: "shop", Nonce: "n-123", Leeway: 30 * time.Second, Now: now}
	good := func() map[string]any {
		return map[string]any{
			"iss": "https://idp.example", "aud": "shop", "sub": "u1", "nonce": "n-123",
			"iat": now.Unix() - 5, "exp": now.Unix() + 300, "email": "a@example.com",
		}
	}
	with := func(change func(map[string]any)) map[string]any { c := good(); change(c); return c }
	tests := []struct {
		name    string
		signer  *testProvider
		claims  map[string]any
		raw     string // instead of signing claims
		wantErr string // "" means valid
	}{
		{name: "valid", claims: good()},
		{name: "several audiences with azp naming the client", claims: with(func(c map[string]any) { c["aud"] = []string{"shop", "other"}; c["azp"] = "shop" })},
		{name: "exp just past, within leeway", claims: with(func(c map[string]any) { c["exp"] = now.Unix() - 10 })},
		{name: "signed by another key", signer: other, claims: good(), wantErr: "fails a check"},
		{name: "another issuer", claims: with(func(c map[string]any) { c["iss"] = "https://evil.example" }), wantErr: "issuer"},
		{name: "issuer with a trailing slash", claims: with(func(c map[string]any) { c["iss"] = "https://idp.example/" }), wantErr: "issuer"},
		{name: "for another client", claims: with(func(c map[string]any) { c["aud"] = "other" }), wantErr: "another client"},
		{name: "several audiences without azp", claims: with(func(c map[string]any) { c["aud"] = []string{"shop", "other"} }), wantErr: "azp"},
		{name: "azp naming another client", claims: with(func(c map[string]any) { c["azp"] = "other" }), wantErr: "azp"},
		{name: "expired", claims: with(func(c map[string]any) { c["exp"] = now.Unix() - 60 }), wantErr: "expired"},
		{name: "no exp", claims: with(func(c map[string]any) { delete(c, "exp") }), wantErr: "required claim"},
		{name: "no iat", claims: with(func(c map[string]any) { delete(c, "iat") }), wantErr: "required claim"},
		{name: "issued in the future", claims: with(func(c map[string]any) { c["iat"] = now.Unix() + 600 }), wantErr: "future"},
		{name: "wrong nonce", claims: with(func(c map[string]any) { c["nonce"] = "n-999" }), wantErr: "nonce"},
		{name: "no nonce", claims: with(func(c map[string]any) { delete(c, "nonce") }), wantErr: "nonce"},
		{name: "empty", raw: "", wantErr: "without an ID token"},
		{name: "garbage", raw: "not.a.token", wantErr: ""},
		{name: "unsigned (alg none)", raw: unsigned(good()), wantErr: ""},
		{name: "too large", raw: strings.Repeat("a", 17<<10), wantErr: "larger"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.raw
			if tc.claims != nil {
				signer := op
				if tc.signer != nil {
					signer = tc.signer
				}
				raw = signer.sign(t, tc.claims)
			}
			claims, err := VerifyIDToken(raw, op.set, expect)
			valid := tc.claims != nil && tc.wantErr == ""
			if valid {
				if err != nil {
					t.Fatalf("refused a valid ID token: %v", err)
				}
				if claims["email"] != "a@example.com" || claims["sub"] != "u1" {
					t.Fatalf("claims = %v", claims)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %v", claims)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not say %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "eyJ") {
				t.Fatalf("the error quotes the token: %v", err)
			}
		})
	}
}

func TestVerifyIDTokenAlgorithms(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	op := newTestProvider(t, "k1")
	raw := op.sign(t, map[string]any{"iss": "i", "aud": "c", "nonce": "n", "iat": now.Unix(), "exp": now.Unix() + 60})
	// The provider says it signs with RS256 only: an ES256 token is refused.
	if _, err := VerifyIDToken(raw, op.set, Expect{Issuer: "i", ClientID: "c", Nonce: "n", Now: now, Algs: []string{"RS256"}}); err == nil {
		t.Fatal("accepted an algorithm the provider does not list")
	}
	if _, err := VerifyIDToken(raw, op.set, Expect{Issuer: "i", ClientID: "c", Nonce: "n", Now: now, Algs: []string{"ES256", "HS256"}}); err != nil {
		t.Fatalf("refused: %v", err)
	}
	// No key for the kid: ErrUnknownKey, so the caller can refresh the JWKS.
	if _, err := VerifyIDToken(raw, newTestProvider(t, "k2").set, Expect{Issuer: "i", ClientID: "c", Nonce: "n", Now: now}); err != ErrUnknownKey {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
}

func unsigned(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	enc := func(s []byte) string { return strings.TrimRight(jwsB64(s), "=") }
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(b) + "."
}
