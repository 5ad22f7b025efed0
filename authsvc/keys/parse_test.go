package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

func algStrings(algs []jwa.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = a.String()
	}
	return out
}

// wantKey describes what a parsed key must look like.
type wantKey struct {
	id     string // "" : not checked
	algs   []string
	anyKID bool
	// keyType is the Go type of Key.Key: "rsa", "ecdsa", "ed25519", "hmac".
	keyType string
	hmacLen int
}

func checkKey(t *testing.T, got Key, want wantKey) {
	t.Helper()
	if want.id != "" && got.ID != want.id {
		t.Errorf("ID = %q, want %q", got.ID, want.id)
	}
	if g := algStrings(got.Algs); !slices.Equal(g, want.algs) {
		t.Errorf("Algs = %v, want %v", g, want.algs)
	}
	if got.AnyKID != want.anyKID {
		t.Errorf("AnyKID = %v, want %v", got.AnyKID, want.anyKID)
	}
	switch want.keyType {
	case "rsa":
		if _, ok := got.Key.(*rsa.PublicKey); !ok {
			t.Errorf("Key is %T, want *rsa.PublicKey", got.Key)
		}
	case "ecdsa":
		if _, ok := got.Key.(*ecdsa.PublicKey); !ok {
			t.Errorf("Key is %T, want *ecdsa.PublicKey", got.Key)
		}
	case "ed25519":
		if _, ok := got.Key.(ed25519.PublicKey); !ok {
			t.Errorf("Key is %T, want ed25519.PublicKey", got.Key)
		}
	case "hmac":
		b, ok := got.Key.([]byte)
		if !ok {
			t.Fatalf("Key is %T, want []byte", got.Key)
		}
		if len(b) != want.hmacLen {
			t.Errorf("HMAC secret is %d bytes, want %d", len(b), want.hmacLen)
		}
		if got.Public != nil {
			t.Errorf("HMAC key has a Public JWK; it must never be published")
		}
	}
	if want.keyType != "hmac" {
		if got.Public == nil {
			t.Fatal("Public is nil")
		}
		if isPrivate(got.Public) {
			t.Error("Public holds a private key")
		}
		if kid, _ := got.Public.KeyID(); kid != got.ID {
			t.Errorf("Public kid = %q, want %q", kid, got.ID)
		}
		alg, hasAlg := got.Public.Algorithm()
		if len(got.Algs) == 1 && (!hasAlg || alg.String() != got.Algs[0].String()) {
			t.Errorf("Public alg = %v, want %v", alg, got.Algs[0])
		}
	}
}

var (
	rsaAlgNames = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	edAlgNames  = []string{"EdDSA", "Ed25519"}
)

func TestParseVerification(t *testing.T) {
	m := testKeys()
	rsaPKIX := pkixPEM(t, &m.rsa.PublicKey)
	ecCert := certPEM(t, m.p256)
	secret32 := []byte("0123456789abcdef0123456789abcdef")
	secret64 := bytes.Repeat([]byte("k"), 64)

	tests := []struct {
		name    string
		data    []byte
		enc     Encoding
		want    []wantKey
		wantErr string // substring; "" means success
	}{
		{
			name: "PEM PKIX RSA",
			data: rsaPKIX,
			want: []wantKey{{id: thumbprintOf(t, &m.rsa.PublicKey), algs: rsaAlgNames, anyKID: true, keyType: "rsa"}},
		},
		{
			name: "PEM PKIX EC P-256",
			data: pkixPEM(t, &m.p256.PublicKey),
			want: []wantKey{{id: thumbprintOf(t, &m.p256.PublicKey), algs: []string{"ES256"}, anyKID: true, keyType: "ecdsa"}},
		},
		{
			name: "PEM PKIX EC P-384",
			data: pkixPEM(t, &m.p384.PublicKey),
			want: []wantKey{{algs: []string{"ES384"}, anyKID: true, keyType: "ecdsa"}},
		},
		{
			name: "PEM PKIX EC P-521",
			data: pkixPEM(t, &m.p521.PublicKey),
			want: []wantKey{{algs: []string{"ES512"}, anyKID: true, keyType: "ecdsa"}},
		},
		{
			name: "PEM PKIX Ed25519",
			data: pkixPEM(t, m.ed.Public()),
			want: []wantKey{{id: thumbprintOf(t, m.ed.Public()), algs: edAlgNames, anyKID: true, keyType: "ed25519"}},
		},
		{
			name: "PEM PKCS#1 RSA",
			data: pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&m.rsa.PublicKey)),
			want: []wantKey{{id: thumbprintOf(t, &m.rsa.PublicKey), algs: rsaAlgNames, anyKID: true, keyType: "rsa"}},
		},
		{
			name: "PEM certificate",
			data: ecCert,
			want: []wantKey{{id: thumbprintOf(t, &m.p256.PublicKey), algs: []string{"ES256"}, anyKID: true, keyType: "ecdsa"}},
		},
		{
			name: "PEM several blocks with text around them",
			data: slices.Concat([]byte("Subject: CN=idp\n"), rsaPKIX, []byte("\n# next\n"), ecCert),
			want: []wantKey{
				{algs: rsaAlgNames, anyKID: true, keyType: "rsa"},
				{algs: []string{"ES256"}, anyKID: true, keyType: "ecdsa"},
			},
		},
		{
			name: "PEM EC PARAMETERS block is skipped",
			data: slices.Concat(pemBlock("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), pkixPEM(t, &m.p256.PublicKey)),
			want: []wantKey{{algs: []string{"ES256"}, anyKID: true, keyType: "ecdsa"}},
		},
		{
			name: "JWK with kid",
			data: jwkJSON(t, &m.rsa.PublicKey, map[string]any{"kid": "rsa-1"}),
			want: []wantKey{{id: "rsa-1", algs: rsaAlgNames, keyType: "rsa"}},
		},
		{
			name: "JWK without kid gets the thumbprint",
			data: jwkJSON(t, m.ed.Public(), nil),
			want: []wantKey{{id: thumbprintOf(t, m.ed.Public()), algs: edAlgNames, anyKID: true, keyType: "ed25519"}},
		},
		{
			name: "JWK with leading whitespace",
			data: slices.Concat([]byte("\n  "), jwkJSON(t, &m.p256.PublicKey, map[string]any{"kid": "ec"})),
			want: []wantKey{{id: "ec", algs: []string{"ES256"}, keyType: "ecdsa"}},
		},
		{
			name: "JWK alg restricts Algs",
			data: jwkJSON(t, &m.rsa.PublicKey, map[string]any{"kid": "ps", "alg": "PS256"}),
			want: []wantKey{{id: "ps", algs: []string{"PS256"}, keyType: "rsa"}},
		},
		{
			name: "JWKS with several keys and kids",
			data: jwksJSON(t,
				jwkJSON(t, &m.rsa.PublicKey, map[string]any{"kid": "a", "use": "sig"}),
				jwkJSON(t, &m.p384.PublicKey, map[string]any{"kid": "b"}),
				jwkJSON(t, m.ed.Public(), map[string]any{"kid": "c", "alg": "EdDSA"}),
			),
			want: []wantKey{
				{id: "a", algs: rsaAlgNames, keyType: "rsa"},
				{id: "b", algs: []string{"ES384"}, keyType: "ecdsa"},
				{id: "c", algs: []string{"EdDSA"}, keyType: "ed25519"},
			},
		},
		{
			name: "JWKS use=enc, encryption alg and key_ops without verify are skipped",
			data: jwksJSON(t,
				jwkJSON(t, &m.rsa2.PublicKey, map[string]any{"kid": "enc", "use": "enc"}),
				jwkJSON(t, &m.rsa2.PublicKey, map[string]any{"kid": "oaep", "alg": "RSA-OAEP"}),
				jwkJSON(t, &m.p256.PublicKey, map[string]any{"kid": "ops", "key_ops": []string{"encrypt"}}),
				jwkJSON(t, &m.rsa.PublicKey, map[string]any{"kid": "sig", "use": "sig"}),
			),
			want: []wantKey{{id: "sig", algs: rsaAlgNames, keyType: "rsa"}},
		},
		{
			name: "JWK oct is an HMAC key",
			data: jwkJSON(t, secret32, map[string]any{"kid": "h"}),
			want: []wantKey{{id: "h", algs: []string{"HS256"}, keyType: "hmac", hmacLen: 32}},
		},
		{name: "HMAC utf8 (default)", data: secret32, want: []wantKey{{algs: []string{"HS256"}, anyKID: true, keyType: "hmac", hmacLen: 32}}},
		{name: "HMAC utf8 keeps a trailing newline", data: append(slices.Clone(secret32), '\n'), enc: EncodingUTF8, want: []wantKey{{algs: []string{"HS256"}, anyKID: true, keyType: "hmac", hmacLen: 33}}},
		{name: "HMAC 48 bytes allows HS384", data: bytes.Repeat([]byte("k"), 48), want: []wantKey{{algs: []string{"HS256", "HS384"}, anyKID: true, keyType: "hmac", hmacLen: 48}}},
		{name: "HMAC 64 bytes allows HS512", data: secret64, want: []wantKey{{algs: []string{"HS256", "HS384", "HS512"}, anyKID: true, keyType: "hmac", hmacLen: 64}}},
		{name: "HMAC hex with whitespace", data: []byte(" " + hex.EncodeToString(secret32) + "\n"), enc: EncodingHex, want: []wantKey{{algs: []string{"HS256"}, anyKID: true, keyType: "hmac", hmacLen: 32}}},
		{name: "HMAC base64 std", data: []byte(base64.StdEncoding.EncodeToString(secret64) + "\n"), enc: EncodingBase64, want: []wantKey{{algs: []string{"HS256", "HS384", "HS512"}, anyKID: true, keyType: "hmac", hmacLen: 64}}},
		{name: "HMAC base64 raw url", data: []byte(base64.RawURLEncoding.EncodeToString([]byte("\xff\xfe" + string(secret32)))), enc: EncodingBase64, want: []wantKey{{algs: []string{"HS256"}, anyKID: true, keyType: "hmac", hmacLen: 34}}},

		// Errors.
		{name: "empty", data: nil, wantErr: "empty"},
		{name: "HMAC too short", data: []byte("hunter2-is-short"), wantErr: "16 bytes long; at least 32"},
		{name: "HMAC too short after hex decoding", data: []byte(hex.EncodeToString(secret32[:20])), enc: EncodingHex, wantErr: "20 bytes long"},
		{name: "HMAC bad hex", data: []byte(strings.Repeat("zz", 40)), enc: EncodingHex, wantErr: "not valid hex"},
		{name: "HMAC bad base64", data: []byte(strings.Repeat("*", 60)), enc: EncodingBase64, wantErr: "not valid base64"},
		{name: "unknown encoding", data: secret32, enc: "rot13", wantErr: `unknown encoding "rot13"`},
		{name: "unknown encoding with a PEM key", data: rsaPKIX, enc: "b64", wantErr: `unknown encoding "b64"`},
		{name: "garbage PEM is an error, not an HMAC secret", data: []byte("-----BEGIN PUBLIC KEY-----\nthis is not base64 at all, but long enough\n-----END PUBLIC KEY-----\n"), wantErr: "PEM block 1 is malformed"},
		{name: "PEM marker after a secret-looking prefix", data: []byte("0123456789abcdef0123456789abcdef -----BEGIN nothing"), wantErr: "malformed"},
		{name: "PEM with bad DER", data: pemBlock("PUBLIC KEY", bytes.Repeat([]byte{1}, 64)), wantErr: "PEM block 1: PUBLIC KEY"},
		{name: "PEM private key refused", data: slices.Concat(rsaPKIX, sec1PEM(t, m.p256)), wantErr: `PEM block 2: a private key: store the public key only`},
		{name: "PEM PKCS#8 private key refused", data: pkcs8PEM(t, m.ed), wantErr: `a private key: store the public key only`},
		{name: "PEM unknown type", data: pemBlock("X509 CRL", []byte{1, 2, 3}), wantErr: `unsupported block type`},
		{name: "PEM only parameters", data: pemBlock("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}), wantErr: "no public key"},
		{name: "PEM RSA 1024 refused", data: pkixPEM(t, &m.rsaSmall.PublicKey), wantErr: "PEM block 1 (PUBLIC KEY): RSA key is 1024 bits; at least 2048"},
		{name: "JSON that is not a JWK", data: []byte(`{"hello": "world", "padding": "0123456789abcdef0123"}`), wantErr: "not a valid JWK or JWKS"},
		{name: "broken JSON", data: []byte(`{"kty": "RSA", "n": "0123456789abcdef0123456789abcdef"`), wantErr: "not a valid JWK or JWKS"},
		{name: "private JWK refused", data: jwkJSON(t, m.p256, map[string]any{"kid": "p"}), wantErr: "private key"},
		{name: "private JWK inside a JWKS refused", data: jwksJSON(t, jwkJSON(t, &m.rsa.PublicKey, nil), jwkJSON(t, m.ed, nil)), wantErr: "key 2: holds a private key"},
		{name: "JWK alg that does not fit the type", data: jwkJSON(t, &m.p256.PublicKey, map[string]any{"alg": "ES384"}), wantErr: `"alg" "ES384" does not fit this EC key`},
		{name: "JWK RSA key with HS256 alg", data: jwkJSON(t, &m.rsa.PublicKey, map[string]any{"alg": "HS256"}), wantErr: `"alg" "HS256" does not fit`},
		{name: "JWK HMAC alg needing a longer key", data: jwkJSON(t, secret32, map[string]any{"alg": "HS512"}), wantErr: `"alg" "HS512" does not fit`},
		{name: "JWK oct too short", data: jwkJSON(t, []byte("short"), nil), wantErr: "5 bytes long"},
		{name: "JWKS with only encryption keys", data: jwksJSON(t, jwkJSON(t, &m.rsa.PublicKey, map[string]any{"use": "enc"})), wantErr: "no signature verification key"},
		{name: "empty JWKS", data: []byte(`{"keys": []}`), wantErr: "no keys"},
		{name: "unsupported curve", data: []byte(`{"kty":"OKP","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`), wantErr: "unsupported OKP curve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVerification(tt.data, tt.enc)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got %d keys, want error containing %q", len(got), tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				checkKey(t, got[i], tt.want[i])
			}
		})
	}
}

// TestParseVerificationErrorsHoldNoSecret checks that no error message
// repeats the secret it was given.
func TestParseVerificationErrorsHoldNoSecret(t *testing.T) {
	const secret = "Sup3rS3cretValue"
	tests := []struct {
		name string
		data string
		enc  Encoding
	}{
		{"short utf8", secret, EncodingUTF8},
		{"bad hex", secret + secret, EncodingHex},
		{"bad base64", secret + "!!" + secret, EncodingBase64},
		{"short base64", base64.StdEncoding.EncodeToString([]byte(secret)), EncodingBase64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseVerification([]byte(tt.data), tt.enc)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, frag := range []string{secret, secret[:6], secret[len(secret)-6:], tt.data} {
				if strings.Contains(err.Error(), frag) {
					t.Fatalf("error %q contains secret material %q", err, frag)
				}
			}
		})
	}
}

// TestAlgorithmConfusion is the classic attack: the attacker takes the
// published RSA public key, uses its PEM bytes as an HS256 secret and signs
// a token. It must not verify, whatever kid the token carries.
func TestAlgorithmConfusion(t *testing.T) {
	m := testKeys()
	pubPEM := pkixPEM(t, &m.rsa.PublicKey)
	keys, err := ParseVerification(pubPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	set := NewSet(keys)

	// The legitimate token verifies...
	if err := verifyWithSet(set, signToken(t, jwa.RS256(), m.rsa, nil)); err != nil {
		t.Fatalf("RS256 token signed by the key: %v", err)
	}
	// ...the forged ones do not.
	for _, kid := range []string{"", keys[0].ID, "anything"} {
		for _, alg := range []jwa.SignatureAlgorithm{jwa.HS256(), jwa.HS384(), jwa.HS512()} {
			t.Run(alg.String()+"/kid="+kid, func(t *testing.T) {
				var hdr map[string]any
				if kid != "" {
					hdr = map[string]any{"kid": kid}
				}
				forged := signToken(t, alg, pubPEM, hdr)
				if err := verifyWithSet(set, forged); err == nil {
					t.Fatal("a token MACed with the public key verified")
				}
				if ks := set.Find(kid, alg); len(ks) != 0 {
					t.Fatalf("Find(%q, %s) returned %d keys for an RSA-only set", kid, alg, len(ks))
				}
			})
		}
	}
	// The same bytes are never accepted as an HMAC secret either.
	for _, enc := range []Encoding{"", EncodingUTF8, EncodingHex, EncodingBase64} {
		keys, err := ParseVerification(pubPEM, enc)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if _, isHMAC := k.Key.([]byte); isHMAC {
				t.Fatalf("encoding %q: a PEM public key became an HMAC secret", enc)
			}
		}
	}
}

func TestKeyAllows(t *testing.T) {
	k := Key{Algs: []jwa.SignatureAlgorithm{jwa.RS256(), jwa.PS256()}}
	tests := []struct {
		alg  jwa.SignatureAlgorithm
		want bool
	}{
		{jwa.RS256(), true},
		{jwa.PS256(), true},
		{jwa.RS512(), false},
		{jwa.HS256(), false},
		{jwa.NoSignature(), false},
		{jwa.NewSignatureAlgorithm("RS256"), true}, // compared by name
	}
	for _, tt := range tests {
		t.Run(tt.alg.String(), func(t *testing.T) {
			if got := k.Allows(tt.alg); got != tt.want {
				t.Fatalf("Allows(%s) = %v, want %v", tt.alg, got, tt.want)
			}
		})
	}
}

// A public key must never become an HMAC secret, whatever encoding hides it.
func TestPublicKeyIsNeverAnHMACSecret(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1 := x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	jwkJSON := []byte(`{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(rsaKey.N.Bytes()) + `","e":"AQAB"}`)
	tests := []struct {
		name string
		data []byte
		enc  Encoding
	}{
		{"base64 PEM", []byte(base64.StdEncoding.EncodeToString(pemBytes)), EncodingBase64},
		{"hex PEM", []byte(hex.EncodeToString(pemBytes)), EncodingHex},
		{"base64 JWK", []byte(base64.StdEncoding.EncodeToString(jwkJSON)), EncodingBase64},
		{"OpenSSH key", []byte("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host"), EncodingUTF8},
		{"base64 DER", []byte(base64.StdEncoding.EncodeToString(der)), EncodingBase64},
		{"hex DER", []byte(hex.EncodeToString(der)), EncodingHex},
		// Issue 12 item 5: the same text given as a utf8 secret (the default
		// encoding) passed, so anyone holding the public key could forge HS256.
		{"utf8 base64 SPKI RSA", []byte(base64.StdEncoding.EncodeToString(der)), EncodingUTF8},
		{"utf8 base64 SPKI RSA with newline", []byte(base64.StdEncoding.EncodeToString(der) + "\n"), EncodingUTF8},
		{"utf8 base64 SPKI RSA wrapped at 64", wrap64(base64.StdEncoding.EncodeToString(der)), EncodingUTF8},
		{"utf8 base64url SPKI RSA unpadded", []byte(base64.RawURLEncoding.EncodeToString(der)), EncodingUTF8},
		{"utf8 base64 PKCS#1 RSA", []byte(base64.StdEncoding.EncodeToString(pkcs1)), EncodingUTF8},
		{"utf8 base64 SPKI EC", []byte(base64.StdEncoding.EncodeToString(ecDER)), EncodingUTF8},
		{"utf8 hex SPKI RSA", []byte(hex.EncodeToString(der)), EncodingUTF8},
		{"utf8 hex PKCS#1 RSA upper case", []byte(strings.ToUpper(hex.EncodeToString(pkcs1))), EncodingUTF8},
		{"utf8 hex SPKI EC", []byte(hex.EncodeToString(ecDER)), EncodingUTF8},
		{"utf8 base64 PEM", []byte(base64.StdEncoding.EncodeToString(pemBytes)), EncodingUTF8},
		{"utf8 hex PEM", []byte(hex.EncodeToString(pemBytes)), EncodingUTF8},
		{"base64 of base64 DER", []byte(base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(der)))), EncodingBase64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := ParseVerification(tc.data, tc.enc)
			if err == nil {
				t.Fatalf("accepted as %v; a public key must be refused as an HMAC secret", ks[0].Algs)
			}
			if !strings.Contains(err.Error(), "public key") && !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("error %q does not say it is a public key", err)
			}
		})
	}
}

// wrap64 wraps base64 text at 64 columns, as openssl and base64 -w 64 do.
func wrap64(s string) []byte {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	b.WriteString(s + "\n")
	return []byte(b.String())
}

// Issue 12 item 1: whoever may reference a Secret from a policy reads the
// problems with it back (status, check, logs), so no error quotes the Secret:
// not a kid, kty, crv, alg, use or PEM block type, and no jwx error that does.
func TestErrorsQuoteNoKeyMaterial(t *testing.T) {
	const s = "S3NTINEL"
	m := testKeys()
	rsaJWK := func(extra string) string {
		return `{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString(m.rsa.N.Bytes()) + `","e":"AQAB"` + extra + `}`
	}
	verify := []struct{ name, data string }{
		{"unknown kty", `{"kty":"` + s + `","kid":"` + s + `"}`},
		{"unknown crv", `{"kty":"EC","crv":"` + s + `","x":"AAAA","y":"AAAA","kid":"` + s + `"}`},
		{"bad alg", rsaJWK(`,"alg":"` + s + `","kid":"` + s + `"`)},
		{"alg that does not fit", rsaJWK(`,"alg":"ES256","kid":"` + s + `"`)},
		{"use enc only", rsaJWK(`,"use":"` + s + `","kid":"` + s + `"`)},
		{"kid of a bad key in a set", `{"keys":[` + rsaJWK(`,"kid":"`+s+`","alg":"`+s+`"`) + `]}`},
		{"oct too short", `{"kty":"oct","k":"` + base64.RawURLEncoding.EncodeToString([]byte(s)) + `","kid":"` + s + `"}`},
		{"oct bad k", `{"kty":"oct","k":"` + s + `!!","kid":"` + s + `"}`},
		{"JSON syntax", `{"kty":"RSA","n":` + s + `}`},
		{"member of a wrong type", `{"kty":"RSA","n":"AQAB","e":"AQAB","kid":{"` + s + `":1}}`},
		{"PEM of an unknown type", "-----BEGIN " + s + "-----\nAAAA\n-----END " + s + "-----\n"},
		{"PEM private key", "-----BEGIN " + s + " PRIVATE KEY-----\nAAAA\n-----END " + s + " PRIVATE KEY-----\n"},
		{"PEM with bad DER", string(pemBlock("PUBLIC KEY", []byte(s+s+s+s)))},
		{"PEM certificate with bad DER", string(pemBlock("CERTIFICATE", []byte(s+s+s+s)))},
	}
	for _, tc := range verify {
		t.Run("verify/"+tc.name, func(t *testing.T) {
			_, err := ParseVerification([]byte(tc.data), EncodingUTF8)
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the Secret: %q", err)
			}
		})
	}
	signing := []struct {
		name string
		data map[string][]byte
	}{
		{"JWKS unknown kty", map[string][]byte{SigningKeyJWKS: []byte(`{"keys":[{"kty":"` + s + `","kid":"` + s + `"}]}`)}},
		{"JWKS public key", map[string][]byte{SigningKeyJWKS: []byte(`{"keys":[` + rsaJWK(`,"kid":"`+s+`"`) + `]}`)}},
		{"JWKS same kid twice", map[string][]byte{SigningKeyJWKS: jwksJSON(t,
			jwkJSON(t, m.p256, map[string]any{"kid": s}), jwkJSON(t, m.p384, map[string]any{"kid": s}))}},
		{"JWKS use enc", map[string][]byte{SigningKeyJWKS: jwksJSON(t, jwkJSON(t, m.p256, map[string]any{"kid": s, "use": s}))}},
		{"JWKS syntax", map[string][]byte{SigningKeyJWKS: []byte(`{"keys":[` + s + `]}`)}},
		{"PEM unknown type", map[string][]byte{SigningKeyPEM: []byte("-----BEGIN " + s + "-----\nAAAA\n-----END " + s + "-----\n")}},
		{"PEM bad DER", map[string][]byte{SigningKeyPEM: pemBlock("PRIVATE KEY", []byte(s+s+s+s))}},
		{"PEM bad EC DER", map[string][]byte{SigningKeyPEM: pemBlock("EC PRIVATE KEY", []byte(s+s+s+s))}},
	}
	for _, tc := range signing {
		t.Run("signing/"+tc.name, func(t *testing.T) {
			_, _, err := ParseSigning(tc.data)
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the Secret: %q", err)
			}
		})
	}
}
