package keys

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// FuzzParseVerification must never panic, and whatever it accepts must be
// usable and safe: every key allows at least one algorithm and never
// "none", and input holding a PEM marker never yields an HMAC secret.
func FuzzParseVerification(f *testing.F) {
	m := testKeys()
	secret := []byte("0123456789abcdef0123456789abcdef")
	seeds := [][]byte{
		pkixPEM(f, &m.rsa.PublicKey),
		pkixPEM(f, &m.p256.PublicKey),
		pkixPEM(f, m.ed.Public()),
		pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&m.rsa.PublicKey)),
		certPEM(f, m.p384),
		sec1PEM(f, m.p256),
		jwkJSON(f, &m.rsa.PublicKey, map[string]any{"kid": "a", "alg": "PS256"}),
		jwksJSON(f,
			jwkJSON(f, &m.p521.PublicKey, map[string]any{"kid": "b"}),
			jwkJSON(f, m.ed.Public(), map[string]any{"kid": "c", "use": "enc"}),
		),
		jwkJSON(f, secret, nil),
		jwkJSON(f, m.ed, nil),
		[]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`),
		[]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"),
		secret,
		[]byte(hex.EncodeToString(secret)),
		[]byte(base64.StdEncoding.EncodeToString(secret)),
		{},
	}
	for _, s := range seeds {
		for _, enc := range []string{"", "utf8", "hex", "base64"} {
			f.Add(s, enc)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, enc string) {
		keys, err := ParseVerification(data, Encoding(enc))
		if err != nil {
			if len(keys) != 0 {
				t.Fatal("keys returned with an error")
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		for _, k := range keys {
			if len(k.Algs) == 0 {
				t.Fatal("a key allows no algorithm")
			}
			for _, a := range k.Algs {
				if a.String() == "none" {
					t.Fatal(`a key allows "none"`)
				}
			}
			secret, isHMAC := k.Key.([]byte)
			if isHMAC && bytes.Contains(data, pemMarker) {
				t.Fatal("PEM input became an HMAC secret")
			}
			if isHMAC && len(secret) < MinHMACKeyBytes {
				t.Fatalf("HMAC secret of %d bytes accepted", len(secret))
			}
			if !isHMAC && (k.Public == nil || isPrivate(k.Public)) {
				t.Fatal("asymmetric key without a public JWK")
			}
		}
		set := NewSet(keys)
		for _, k := range keys {
			for _, a := range k.Algs {
				if len(set.Find(k.ID, a)) == 0 || len(set.Find("", a)) == 0 {
					t.Fatal("a key of the set is not found by its own kid and alg")
				}
			}
		}
	})
}
