package keys

import (
	"bytes"
	"crypto"
	"slices"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// testSet builds a set with named keys (RSA "rsa1", EC P-256 "ec1", a
// second RSA key also named "rsa1"), an HMAC secret and a PEM Ed25519 key
// (both AnyKID), and returns the IDs to name them in expectations.
func testSet(t *testing.T) (*Set, map[string]string) {
	t.Helper()
	m := testKeys()
	var all []Key
	add := func(data []byte, enc Encoding) {
		t.Helper()
		ks, err := ParseVerification(data, enc)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ks...)
	}
	add(jwksJSON(t,
		jwkJSON(t, &m.rsa.PublicKey, map[string]any{"kid": "rsa1"}),
		jwkJSON(t, &m.p256.PublicKey, map[string]any{"kid": "ec1"}),
		jwkJSON(t, &m.rsa2.PublicKey, map[string]any{"kid": "rsa1", "alg": "PS256"}),
	), "")
	add(bytes.Repeat([]byte("s"), 32), "")
	add(pkixPEM(t, m.ed.Public()), "")
	// name each key for the expectations below
	names := map[string]string{}
	for i, k := range all {
		names[string(rune('A'+i))] = k.ID
	}
	return NewSet(all), names
}

// label returns the keys' positions in set.Keys() as letters A, B, ...
func label(set *Set, ks []Key) string {
	var out []byte
	for _, k := range ks {
		for i, o := range set.Keys() {
			if sameKey(k, o) {
				out = append(out, byte('A'+i))
			}
		}
	}
	return string(out)
}

func sameKey(a, b Key) bool {
	if a.ID != b.ID || !slices.Equal(algStrings(a.Algs), algStrings(b.Algs)) {
		return false
	}
	if ab, ok := a.Key.([]byte); ok {
		bb, ok := b.Key.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	ae, ok := a.Key.(equaler)
	return ok && ae.Equal(b.Key)
}

func TestSetFind(t *testing.T) {
	set, _ := testSet(t)
	edID := set.Keys()[4].ID
	// Keys: A = rsa1 (RSA), B = ec1 (P-256), C = rsa1 (RSA, PS256 only),
	// D = HMAC secret (AnyKID), E = Ed25519 PEM (AnyKID).
	tests := []struct {
		kid  string
		alg  jwa.SignatureAlgorithm
		want string
	}{
		{"", jwa.RS256(), "A"},
		{"", jwa.PS256(), "AC"},
		{"", jwa.ES256(), "B"},
		{"", jwa.HS256(), "D"},
		{"", jwa.EdDSA(), "E"},
		{"rsa1", jwa.RS256(), "A"},
		{"rsa1", jwa.PS256(), "AC"},
		{"ec1", jwa.ES256(), "B"},
		{"ec1", jwa.ES384(), ""},
		{"ec1", jwa.RS256(), ""},
		// The algorithm-confusion guard: RSA and EC keys never for HMAC,
		// whichever kid the token names.
		{"rsa1", jwa.HS256(), "D"},
		{"ec1", jwa.HS512(), ""},
		{"", jwa.HS512(), ""}, // a 32-byte secret is too short for HS512
		// A kid no key names finds the keys that named no kid.
		{"unknown", jwa.EdDSA(), "E"},
		{"unknown", jwa.RS256(), ""},
		{"unknown", jwa.HS256(), "D"},
		// A thumbprint kid finds its key once.
		{edID, jwa.EdDSA(), "E"},
		{"", jwa.NoSignature(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.kid+"/"+tt.alg.String(), func(t *testing.T) {
			got := set.Find(tt.kid, tt.alg)
			if l := label(set, got); l != tt.want {
				t.Fatalf("Find(%q, %s) = %q, want %q", tt.kid, tt.alg, l, tt.want)
			}
			for _, k := range got {
				if !k.Allows(tt.alg) {
					t.Fatalf("Find returned a key that does not allow %s", tt.alg)
				}
				if _, isHMAC := k.Key.([]byte); isHMAC != tt.alg.IsSymmetric() {
					t.Fatalf("Find(%q, %s) returned a %T key", tt.kid, tt.alg, k.Key)
				}
			}
			if cap(got) != len(got) {
				t.Fatalf("result has spare capacity: a caller's append would write into a shared array")
			}
		})
	}
}

func TestSetFindDoesNotAllocate(t *testing.T) {
	set, _ := testSet(t)
	lookups := []struct {
		kid string
		alg jwa.SignatureAlgorithm
	}{
		{"", jwa.RS256()},
		{"rsa1", jwa.PS256()},
		{"unknown", jwa.HS256()},
		{"ec1", jwa.ES384()},
	}
	for _, l := range lookups {
		t.Run(l.kid+"/"+l.alg.String(), func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, func() { _ = set.Find(l.kid, l.alg) }); n != 0 {
				t.Fatalf("Find allocates %v times per call", n)
			}
		})
	}
}

func TestSetEmptyAndNil(t *testing.T) {
	for name, s := range map[string]*Set{"nil": nil, "empty": NewSet(nil)} {
		t.Run(name, func(t *testing.T) {
			if s.Len() != 0 || len(s.Keys()) != 0 || len(s.Find("", jwa.RS256())) != 0 || len(s.Find("x", jwa.RS256())) != 0 || s.HasKID("x") {
				t.Fatal("an empty set returned keys")
			}
		})
	}
}

func TestSetHasKIDAndLen(t *testing.T) {
	set, _ := testSet(t)
	if set.Len() != 5 {
		t.Fatalf("Len = %d, want 5", set.Len())
	}
	for kid, want := range map[string]bool{"rsa1": true, "ec1": true, "nope": false, "": false, set.Keys()[4].ID: true} {
		if got := set.HasKID(kid); got != want {
			t.Errorf("HasKID(%q) = %v, want %v", kid, got, want)
		}
	}
}

// TestSetVerifiesRealTokens runs the hot path end to end for each key type.
func TestSetVerifiesRealTokens(t *testing.T) {
	m := testKeys()
	secret := bytes.Repeat([]byte("s"), 32)
	set, _ := testSet(t)
	tests := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"RS256 kid rsa1", signToken(t, jwa.RS256(), m.rsa, map[string]any{"kid": "rsa1"}), true},
		{"PS256 by the second rsa1 key", signToken(t, jwa.PS256(), m.rsa2, map[string]any{"kid": "rsa1"}), true},
		{"RS256 by the second rsa1 key (restricted to PS256)", signToken(t, jwa.RS256(), m.rsa2, map[string]any{"kid": "rsa1"}), false},
		{"ES256 without kid", signToken(t, jwa.ES256(), m.p256, nil), true},
		{"HS256 with any kid", signToken(t, jwa.HS256(), secret, map[string]any{"kid": "whatever"}), true},
		{"EdDSA", signToken(t, jwa.EdDSA(), m.ed, nil), true},
		{"Ed25519 (RFC 9864)", signToken(t, jwa.EdDSAEd25519(), m.ed, nil), true},
		{"ES384 by an unknown key", signToken(t, jwa.ES384(), m.p384, nil), false},
		{"RS256 by a key not in the set", signToken(t, jwa.RS256(), m.rsa2, nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyWithSet(set, tt.tok)
			if (err == nil) != tt.ok {
				t.Fatalf("verify: err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
