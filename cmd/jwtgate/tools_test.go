package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"

	corev1 "k8s.io/api/core/v1"

	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// runWithIO runs a command function with stdin fed from in, and returns what it
// printed on stdout.
func runWithIO(t *testing.T, in string, fn func([]string) error, args ...string) (string, error) {
	t.Helper()
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	oldIn, oldOut := os.Stdin, os.Stdout
	os.Stdin, os.Stdout = inR, outW
	defer func() { os.Stdin, os.Stdout = oldIn, oldOut }()
	go func() { _, _ = io.WriteString(inW, in); _ = inW.Close() }()
	err := fn(args)
	_ = outW.Close()
	out, _ := io.ReadAll(outR)
	return string(out), err
}

func TestHashPasswordFromStdin(t *testing.T) {
	out, err := runWithIO(t, "correct horse\n", runHashPassword, "--cost", "10")
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.TrimSpace(out)
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost != 10 {
		t.Fatalf("%q is not a bcrypt hash of cost 10 (%v)", hash, err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")) != nil {
		t.Fatal("the hash does not match the password (the trailing newline must not be part of it)")
	}
	for _, bad := range [][]string{{"--cost", "4"}, {"--cost", "17"}} {
		if _, err := runWithIO(t, "pw\n", runHashPassword, bad...); err == nil {
			t.Errorf("%v: want an error", bad)
		}
	}
	if _, err := runWithIO(t, "\n", runHashPassword); err == nil {
		t.Error("an empty password must be refused")
	}
}

func TestKeygenAPIKey(t *testing.T) {
	out, err := runWithIO(t, "", runKeygen, "--api-key", "builder", "--roles", "deploy,ci")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want the key and its line, got %q", out)
	}
	key, line := lines[0], lines[1]
	sum := sha256.Sum256([]byte(key))
	if want := "builder:sha256:" + hex.EncodeToString(sum[:]) + ":deploy,ci"; line != want || len(key) < 43 {
		t.Fatalf("line %q, want %q (key %q)", line, want, key)
	}
	for _, name := range []string{"#x", "a:b", "a b"} {
		if _, err := runWithIO(t, "", runKeygen, "--api-key", name); err == nil {
			t.Errorf("--api-key %q: want an error", name)
		}
	}
}

// keygen prints a Secret whose key signs tokens that `jwtgate token` mints and
// another library verifies.
func TestKeygenAndToken(t *testing.T) {
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			out, err := runWithIO(t, "", runKeygen, "--alg", alg, "--namespace", "shop", "--name", "shop-signing")
			if err != nil {
				t.Fatal(err)
			}
			var s corev1.Secret
			if err := yaml.UnmarshalStrict([]byte(out), &s); err != nil {
				t.Fatalf("not a Secret manifest: %v\n%s", err, out)
			}
			if s.Namespace != "shop" || s.Name != "shop-signing" || s.StringData["private.pem"] == "" {
				t.Fatalf("unexpected Secret: %+v", s.ObjectMeta)
			}
			keyFile := filepath.Join(t.TempDir(), "private.pem")
			if err := os.WriteFile(keyFile, []byte(s.StringData["private.pem"]), 0o600); err != nil {
				t.Fatal(err)
			}
			tok, err := runWithIO(t, "", runToken, "--key", keyFile, "--claims", `{"sub":"alice","roles":["admin"]}`, "--ttl", "2m")
			if err != nil {
				t.Fatal(err)
			}
			_, verify, err := keys.ParseSigning(map[string][]byte{"private.pem": []byte(s.StringData["private.pem"])})
			if err != nil {
				t.Fatal(err)
			}
			claims := gojwt.MapClaims{}
			parsed, err := gojwt.ParseWithClaims(strings.TrimSpace(tok), claims, func(*gojwt.Token) (any, error) { return verify[0].Key, nil })
			if err != nil || !parsed.Valid {
				t.Fatalf("golang-jwt does not verify the minted token: %v", err)
			}
			if claims["sub"] != "alice" || claims["exp"] == nil || parsed.Header["kid"] == nil {
				b, _ := json.Marshal(claims)
				t.Fatalf("claims %s, header %v: want sub, exp and a kid", b, parsed.Header)
			}
		})
	}
}
