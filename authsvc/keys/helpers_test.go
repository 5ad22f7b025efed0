package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// testKeys are generated once per test binary: RSA generation is slow.
type testKeyMaterial struct {
	rsa, rsa2 *rsa.PrivateKey
	rsaSmall  *rsa.PrivateKey
	p256      *ecdsa.PrivateKey
	p384      *ecdsa.PrivateKey
	p521      *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

var testKeys = sync.OnceValue(func() *testKeyMaterial {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var m testKeyMaterial
	var err error
	m.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	m.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	m.rsaSmall, err = rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // testing that small keys are refused
	must(err)
	m.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	m.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	m.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	must(err)
	_, m.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return &m
})

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkixPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PUBLIC KEY", der)
}

func pkcs8PEM(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("PRIVATE KEY", der)
}

func sec1PEM(t testing.TB, priv *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("EC PRIVATE KEY", der)
}

// certPEM self-signs a certificate for signer's public key.
func certPEM(t testing.TB, signer crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "idp.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der)
}

// jwkJSON returns raw (public or private) as a JWK with extra members set.
func jwkJSON(t testing.TB, raw any, members map[string]any) []byte {
	t.Helper()
	k := importJWK(t, raw, members)
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func importJWK(t testing.TB, raw any, members map[string]any) jwk.Key {
	t.Helper()
	k, err := jwk.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range members {
		if err := k.Set(name, v); err != nil {
			t.Fatalf("set %s: %v", name, err)
		}
	}
	return k
}

// jwksJSON wraps JWK documents into a JWKS.
func jwksJSON(t testing.TB, keys ...[]byte) []byte {
	t.Helper()
	raws := make([]json.RawMessage, len(keys))
	for i, k := range keys {
		raws[i] = k
	}
	b, err := json.Marshal(map[string]any{"keys": raws})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func thumbprintOf(t testing.TB, pub any) string {
	t.Helper()
	k := importJWK(t, pub, nil)
	tp, err := thumbprint(k)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// signToken signs a JWT with sub=alice with jwx.
func signToken(t testing.TB, alg jwa.SignatureAlgorithm, key any, headers map[string]any) string {
	t.Helper()
	tok, err := jwt.NewBuilder().Subject("alice").Expiration(time.Now().Add(time.Minute)).Build()
	if err != nil {
		t.Fatal(err)
	}
	var opts []jwt.Option
	if len(headers) > 0 {
		h := jws.NewHeaders()
		for name, v := range headers {
			if err := h.Set(name, v); err != nil {
				t.Fatal(err)
			}
		}
		opts = append(opts, jws.WithProtectedHeaders(h))
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, opts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(signed)
}

// verifyWithSet does what the decision path does: read alg and kid from the
// header (jwx), ask the set for candidates and verify with the fast path.
func verifyWithSet(set *Set, token string) error {
	msg, err := jws.ParseString(token)
	if err != nil {
		return err
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	alg, _ := hdr.Algorithm()
	kid, _ := hdr.KeyID()
	cands := set.Find(kid, alg)
	if len(cands) == 0 {
		return errors.New("no candidate key")
	}
	for _, k := range cands {
		if _, err := jws.VerifyCompactFast(k.Key, []byte(token), alg); err == nil {
			return nil
		}
	}
	return errors.New("no key verified the signature")
}
