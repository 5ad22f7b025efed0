package keys

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"

	golangjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// verifyElsewhere verifies token with github.com/golang-jwt/jwt/v5, a
// library independent of the one that signed it, trying each key.
func verifyElsewhere(t *testing.T, token string, alg string, keys []Key) error {
	t.Helper()
	var last error
	for _, k := range keys {
		parsed, err := golangjwt.Parse(token, func(*golangjwt.Token) (any, error) { return k.Key, nil },
			golangjwt.WithValidMethods([]string{alg}), golangjwt.WithExpirationRequired())
		if err == nil {
			if sub, _ := parsed.Claims.GetSubject(); sub != "alice" {
				return errors.New("wrong subject")
			}
			return nil
		}
		last = err
	}
	return last
}

// signWithSigner signs the way the login code will, and checks the kid.
func signWithSigner(t *testing.T, s Signer) string {
	t.Helper()
	tok := signToken(t, s.Alg, s.Key, nil)
	msg, err := jws.ParseString(tok)
	if err != nil {
		t.Fatal(err)
	}
	if kid, _ := msg.Signatures()[0].ProtectedHeaders().KeyID(); kid != s.ID {
		t.Fatalf("token kid = %q, want the signer's ID %q", kid, s.ID)
	}
	return tok
}

func TestParseSigning(t *testing.T) {
	m := testKeys()
	privJWK := func(raw any, members map[string]any) []byte { return jwkJSON(t, raw, members) }

	tests := []struct {
		name     string
		data     map[string][]byte
		wantAlg  string
		wantID   string // "" : the thumbprint of the signing key's public half
		wantKIDs []string
	}{
		{name: "PKCS#8 RSA", data: map[string][]byte{"private.pem": pkcs8PEM(t, m.rsa)}, wantAlg: "RS256", wantID: thumbprintOf(t, &m.rsa.PublicKey)},
		{name: "PKCS#1 RSA", data: map[string][]byte{"private.pem": pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.rsa))}, wantAlg: "RS256", wantID: thumbprintOf(t, &m.rsa.PublicKey)},
		{name: "SEC1 EC P-256", data: map[string][]byte{"private.pem": sec1PEM(t, m.p256)}, wantAlg: "ES256", wantID: thumbprintOf(t, &m.p256.PublicKey)},
		{name: "SEC1 EC P-384 after EC PARAMETERS", data: map[string][]byte{"private.pem": append(pemBlock("EC PARAMETERS", []byte{6, 5, 43, 129, 4, 0, 34}), sec1PEM(t, m.p384)...)}, wantAlg: "ES384"},
		{name: "PKCS#8 EC P-521", data: map[string][]byte{"private.pem": pkcs8PEM(t, m.p521)}, wantAlg: "ES512"},
		{name: "PKCS#8 Ed25519", data: map[string][]byte{"private.pem": pkcs8PEM(t, m.ed)}, wantAlg: "EdDSA", wantID: thumbprintOf(t, m.ed.Public())},
		{
			name: "private JWKS: the last key signs, all verify",
			data: map[string][]byte{"jwks.json": jwksJSON(t,
				privJWK(m.rsa, map[string]any{"kid": "2024"}),
				privJWK(m.p256, map[string]any{"kid": "2025", "use": "sig", "key_ops": []string{"sign"}}),
			)},
			wantAlg: "ES256", wantID: "2025", wantKIDs: []string{"2024", "2025"},
		},
		{
			name:    "private JWK with alg",
			data:    map[string][]byte{"jwks.json": privJWK(m.rsa, map[string]any{"kid": "ps", "alg": "PS384"})},
			wantAlg: "PS384", wantID: "ps", wantKIDs: []string{"ps"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, vks, err := ParseSigning(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if s.Alg.String() != tt.wantAlg {
				t.Errorf("Alg = %s, want %s", s.Alg, tt.wantAlg)
			}
			if tt.wantID != "" && s.ID != tt.wantID {
				t.Errorf("ID = %q, want %q", s.ID, tt.wantID)
			}
			if !isPrivate(s.Key) {
				t.Error("Signer.Key is not a private key")
			}
			if kid, _ := s.Key.KeyID(); kid != s.ID {
				t.Errorf("Signer.Key kid = %q, want %q", kid, s.ID)
			}
			if alg, _ := s.Key.Algorithm(); alg == nil || alg.String() != tt.wantAlg {
				t.Errorf("Signer.Key alg = %v, want %s", alg, tt.wantAlg)
			}
			if tt.wantKIDs != nil {
				var kids []string
				for _, k := range vks {
					kids = append(kids, k.ID)
				}
				if !slices.Equal(kids, tt.wantKIDs) {
					t.Errorf("verify kids = %v, want %v", kids, tt.wantKIDs)
				}
			}
			last := vks[len(vks)-1]
			if last.ID != s.ID {
				t.Errorf("the last verify key is %q, want the signer %q", last.ID, s.ID)
			}
			for _, k := range vks {
				if len(k.Algs) != 1 || k.AnyKID || k.Public == nil || isPrivate(k.Public) {
					t.Errorf("verify key %q: Algs %v AnyKID %v, Public private=%v; want one alg, a kid and a public JWK",
						k.ID, k.Algs, k.AnyKID, k.Public != nil && isPrivate(k.Public))
				}
			}
			// What jwks.json will publish must hold no private member.
			for _, k := range vks {
				b, err := json.Marshal(k.Public)
				if err != nil {
					t.Fatal(err)
				}
				for _, member := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"key_ops"`} {
					if strings.Contains(string(b), member) {
						t.Errorf("public JWK %s holds %s", b, member)
					}
				}
			}
			tok := signWithSigner(t, s)
			if err := verifyElsewhere(t, tok, tt.wantAlg, vks); err != nil {
				t.Fatalf("golang-jwt did not verify the token: %v", err)
			}
			if err := verifyWithSet(NewSet(vks), tok); err != nil {
				t.Fatalf("the verify keys did not verify the token: %v", err)
			}
		})
	}
}

// TestParseSigningRotation: a token signed by the older key of a JWKS
// still verifies after the new key was appended.
func TestParseSigningRotation(t *testing.T) {
	m := testKeys()
	old := importJWK(t, m.ed, map[string]any{"kid": "old"})
	oldJSON, _ := json.Marshal(old)
	tokOld := signToken(t, jwa.EdDSA(), old, nil)

	s, vks, err := ParseSigning(map[string][]byte{"jwks.json": jwksJSON(t, oldJSON, jwkJSON(t, m.p256, map[string]any{"kid": "new"}))})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "new" {
		t.Fatalf("signer = %q, want the last key", s.ID)
	}
	if err := verifyWithSet(NewSet(vks), tokOld); err != nil {
		t.Fatalf("a token of the previous key no longer verifies: %v", err)
	}
	if err := verifyElsewhere(t, tokOld, "EdDSA", vks); err != nil {
		t.Fatal(err)
	}
}

func TestParseSigningErrors(t *testing.T) {
	m := testKeys()
	tests := []struct {
		name    string
		data    map[string][]byte
		wantErr string
		noKey   bool // errors.Is(err, ErrNoSigningKey)
	}{
		{name: "neither key", data: map[string][]byte{"other": []byte("x")}, noKey: true, wantErr: "neither"},
		{name: "nil data", data: nil, noKey: true},
		{name: "both keys", data: map[string][]byte{"private.pem": pkcs8PEM(t, m.ed), "jwks.json": jwkJSON(t, m.ed, nil)}, wantErr: `both "private.pem" and "jwks.json"`},
		{name: "RSA 1024 PKCS#1", data: map[string][]byte{"private.pem": pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(m.rsaSmall))}, wantErr: `"private.pem": RSA key is 1024 bits; at least 2048`},
		{name: "RSA 1024 PKCS#8", data: map[string][]byte{"private.pem": pkcs8PEM(t, m.rsaSmall)}, wantErr: "1024 bits"},
		{name: "RSA 1024 JWKS", data: map[string][]byte{"jwks.json": rsaPrivateJWK(t, m.rsaSmall)}, wantErr: `"jwks.json": not a valid JWKS`},
		{name: "public key PEM", data: map[string][]byte{"private.pem": pkixPEM(t, &m.rsa.PublicKey)}, wantErr: "PUBLIC KEY holds a public key"},
		{name: "two private keys", data: map[string][]byte{"private.pem": append(pkcs8PEM(t, m.ed), sec1PEM(t, m.p256)...)}, wantErr: "holds 2 private keys"},
		{name: "encrypted PEM", data: map[string][]byte{"private.pem": pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3})}, wantErr: "encrypted"},
		{name: "garbage PEM", data: map[string][]byte{"private.pem": []byte("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n")}, wantErr: "malformed"},
		{name: "empty PEM", data: map[string][]byte{"private.pem": nil}, wantErr: "no PEM private key"},
		{name: "bad PKCS#8", data: map[string][]byte{"private.pem": pemBlock("PRIVATE KEY", []byte{1, 2, 3})}, wantErr: "PEM block 1: PRIVATE KEY (PKCS#8)"},
		{name: "public JWKS", data: map[string][]byte{"jwks.json": jwksJSON(t, jwkJSON(t, &m.rsa.PublicKey, map[string]any{"kid": "a"}))}, wantErr: `key 1: is a public key`},
		{name: "HMAC JWK", data: map[string][]byte{"jwks.json": jwksJSON(t, jwkJSON(t, []byte("0123456789abcdef0123456789abcdef"), nil))}, wantErr: "HMAC"},
		{name: "use=enc", data: map[string][]byte{"jwks.json": jwkJSON(t, m.p256, map[string]any{"use": "enc"})}, wantErr: `"use" is not "sig"`},
		{name: "alg that does not fit", data: map[string][]byte{"jwks.json": jwkJSON(t, m.p256, map[string]any{"alg": "RS256"})}, wantErr: "does not fit"},
		{name: "duplicate kid", data: map[string][]byte{"jwks.json": jwksJSON(t, jwkJSON(t, m.p256, map[string]any{"kid": "k"}), jwkJSON(t, m.ed, map[string]any{"kid": "k"}))}, wantErr: `same kid`},
		{name: "empty JWKS", data: map[string][]byte{"jwks.json": []byte(`{"keys":[]}`)}, wantErr: "no keys"},
		{name: "not JSON", data: map[string][]byte{"jwks.json": []byte(`nope`)}, wantErr: "not a valid JWKS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseSigning(tt.data)
			if err == nil {
				t.Fatal("want an error")
			}
			if errors.Is(err, ErrNoSigningKey) != tt.noKey {
				t.Fatalf("errors.Is(err, ErrNoSigningKey) = %v, want %v (err: %v)", !tt.noKey, tt.noKey, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestGenerateRoundTrip: a generated key loads, signs with jwx and verifies
// with golang-jwt using the verify key ParseSigning returns.
func TestGenerateRoundTrip(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			pemData, err := Generate(alg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(pemData), "-----BEGIN PRIVATE KEY-----") {
				t.Fatalf("not PKCS#8 PEM: %.30q", pemData)
			}
			s, vks, err := ParseSigning(map[string][]byte{"private.pem": pemData})
			if err != nil {
				t.Fatal(err)
			}
			if s.Alg.String() != alg {
				t.Fatalf("Alg = %s, want %s", s.Alg, alg)
			}
			if len(vks) != 1 {
				t.Fatalf("%d verify keys, want 1", len(vks))
			}
			tok, err := jwt.Sign(mustToken(t), jwt.WithKey(s.Alg, s.Key))
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyElsewhere(t, string(tok), alg, vks); err != nil {
				t.Fatalf("golang-jwt: %v", err)
			}
			// A token signed with the same key but another algorithm
			// name is refused by golang-jwt too: the method is pinned.
			if err := verifyElsewhere(t, string(tok), "HS256", vks); err == nil {
				t.Fatal("golang-jwt accepted a token under the wrong method")
			}
		})
	}
	t.Run("two keys differ", func(t *testing.T) {
		a, _ := Generate("EdDSA")
		b, _ := Generate("EdDSA")
		if string(a) == string(b) {
			t.Fatal("Generate returned the same key twice")
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		if _, err := Generate("HS256"); err == nil || !strings.Contains(err.Error(), "use RS256, ES256 or EdDSA") {
			t.Fatalf("err = %v", err)
		}
	})
}

func mustToken(t *testing.T) jwt.Token {
	t.Helper()
	tok := jwt.New()
	if err := tok.Set("sub", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := tok.Set("exp", 4102444800); err != nil { // 2100-01-01
		t.Fatal(err)
	}
	return tok
}

func TestNewAPIKey(t *testing.T) {
	key, sum, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "jgk_") || len(key) != 4+43 {
		t.Fatalf("key %q: want jgk_ and 43 base64url characters (256 bits)", key)
	}
	if strings.ContainsAny(key[4:], "+/=") {
		t.Fatalf("key %q is not unpadded base64url", key)
	}
	want := sha256.Sum256([]byte(key))
	if sum != hex.EncodeToString(want[:]) || HashAPIKey(key) != sum {
		t.Fatalf("hash %q is not the SHA-256 hex of the key", sum)
	}
	key2, _, _ := NewAPIKey()
	if key2 == key {
		t.Fatal("two API keys are equal")
	}
}

// rsaPrivateJWK writes a private RSA JWK by hand: jwk.Import refuses keys
// under 2048 bits, which is what the test needs to feed.
func rsaPrivateJWK(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	k.Precompute()
	b64 := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	out, err := json.Marshal(map[string]string{
		"kty": "RSA", "n": b64(k.N), "e": b64(big.NewInt(int64(k.E))), "d": b64(k.D),
		"p": b64(k.Primes[0]), "q": b64(k.Primes[1]),
		"dp": b64(k.Precomputed.Dp), "dq": b64(k.Precomputed.Dq), "qi": b64(k.Precomputed.Qinv),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
