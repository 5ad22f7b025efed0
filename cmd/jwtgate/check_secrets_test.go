package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"

	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/standalone"
)

// sentinel stands for Secret content that whoever writes a policy must not
// be able to read back.
const sentinel = "S3NTINELvalue"

// sentinelCase is a policy pointing at a malformed Secret that holds the
// sentinel. spec is the policy's spec (YAML, indented for "spec:"), data the
// Secret's stringData.
type sentinelCase struct {
	name string
	spec string
	data map[string]string
}

func sentinelCases(t *testing.T) []sentinelCase {
	t.Helper()
	h4, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	jwtSpec := func(key string) string {
		return "  jwt:\n    algorithms: [ES256, HS256]\n    keys:\n      - secretRef: {name: SECRET, key: " + key + "}\n"
	}
	loginSpec := func(users, signing string) string {
		return "  hosts: [HOST]\n  login:\n    usersSecretRef: {name: " + users + ", key: users}\n    signingKeySecretRef: {name: " + signing + "}\n"
	}
	return []sentinelCase{
		{"users: white space in a name", loginSpec("SECRET", "SECRET"), map[string]string{
			"users": "password = " + sentinel + "\n", "private.pem": string(mustPEMKey(t))}},
		{"users: plain-text password and a name", loginSpec("SECRET", "SECRET"), map[string]string{
			"users":       "postgres" + sentinel + ":" + sentinel + "\n" + sentinel + ":" + string(h4) + "\n" + sentinel + ":" + string(h4) + "\n",
			"private.pem": string(mustPEMKey(t))}},
		{"jwt key: JWK with an unknown kty and kid", jwtSpec("jwk"), map[string]string{
			"jwk": `{"kty":"` + sentinel + `","kid":"` + sentinel + `"}`}},
		{"jwt key: JWK with an unknown crv", jwtSpec("jwk"), map[string]string{
			"jwk": `{"kty":"EC","crv":"` + sentinel + `","x":"AAAA","y":"AAAA","kid":"` + sentinel + `"}`}},
		{"jwt key: JWKS with a bad alg and use", jwtSpec("jwks"), map[string]string{
			"jwks": `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64(ec.X.Bytes()) + `","y":"` + b64(ec.Y.Bytes()) + `","alg":"` + sentinel + `","use":"` + sentinel + `","kid":"` + sentinel + `"}]}`}},
		{"jwt key: JSON syntax", jwtSpec("jwk"), map[string]string{"jwk": `{"kty": ` + sentinel + `}`}},
		{"jwt key: PEM block type", jwtSpec("pem"), map[string]string{
			"pem": "-----BEGIN " + sentinel + "-----\nAAAA\n-----END " + sentinel + "-----\n"}},
		{"jwt key: short HMAC secret", jwtSpec("hmac"), map[string]string{"hmac": sentinel}},
		{"jwt key: the base64 of a public key as HMAC", jwtSpec("hmac"), map[string]string{
			"hmac": base64.StdEncoding.EncodeToString(der), "other": sentinel}},
		{"jwt key: missing key, other keys' values", jwtSpec("missing"), map[string]string{
			"present": sentinel, "pem": pubPEM}},
		{"api keys: bad and repeated lines", jwtSpec("pem") + "  apiKeys:\n    secretRef: {name: SECRET, key: keys}\n", map[string]string{
			"pem":  pubPEM,
			"keys": sentinel + ":sha256:" + sentinel + "\n" + sentinel + "x:sha256:" + strings.Repeat("ab", 32) + "\n" + sentinel + "x:sha256:" + strings.Repeat("ab", 32) + "\n" + sentinel + "\n"}},
		{"signing key: JWKS with the same kid twice", loginSpec("SECRET", "SECRET"), map[string]string{
			"users": "", "jwks.json": `{"keys":[` + privateJWK(t, sentinel) + `,` + privateJWK(t, sentinel) + `]}`}},
		{"signing key: JWKS with a bad kty", loginSpec("SECRET", "SECRET"), map[string]string{
			"users": "", "jwks.json": `{"keys":[{"kty":"` + sentinel + `","kid":"` + sentinel + `"}]}`}},
		{"signing key: PEM block type", loginSpec("SECRET", "SECRET"), map[string]string{
			"users": "", "private.pem": "-----BEGIN " + sentinel + "-----\nAAAA\n-----END " + sentinel + "-----\n"}},
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustPEMKey(t *testing.T) []byte {
	t.Helper()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func privateJWK(t *testing.T, kid string) string {
	t.Helper()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d, err := ec.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"kty":"EC","crv":"P-256","kid":%q,"x":%q,"y":%q,"d":%q}`, kid,
		b64(ec.X.FillBytes(make([]byte, 32))), b64(ec.Y.FillBytes(make([]byte, 32))), b64(d))
}

// writeSentinelFiles writes each case as a policy and its Secret, into one
// folder per case, and returns the folders.
func writeSentinelFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i, tc := range sentinelCases(t) {
		dir := t.TempDir()
		secretName := fmt.Sprintf("s%d", i)
		spec := strings.ReplaceAll(strings.ReplaceAll(tc.spec, "SECRET", secretName), "HOST", fmt.Sprintf("h%d.example.com", i))
		pol := fmt.Sprintf("apiVersion: jwtgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: p%d, namespace: ns}\nspec:\n%s", i, spec)
		sec, err := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret",
			"metadata": map[string]any{"name": secretName, "namespace": "ns"}, "stringData": tc.data})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(pol+"---\n"+string(sec)), 0o600); err != nil {
			t.Fatal(err)
		}
		out[tc.name] = dir
	}
	return out
}

// Issue 12 item 1: problems with a Secret name the Secret, the key, the line
// and the kind of mistake, and never quote the Secret: not in `jwtgate
// check`'s output, not in serve's log.
func TestProblemsQuoteNoSecretContent(t *testing.T) {
	for name, dir := range writeSentinelFiles(t) {
		t.Run(name, func(t *testing.T) {
			out, code := runCheckCapturing(t, "-f", dir)
			if code == 0 {
				t.Fatalf("check passed a malformed Secret:\n%s", out)
			}
			if !strings.Contains(out, "secret ns/s") && !strings.Contains(out, "Secret key") {
				t.Errorf("check does not name the Secret:\n%s", out)
			}
			if strings.Contains(out, sentinel) || strings.Contains(out, "postgres") {
				t.Errorf("check quotes the Secret:\n%s", out)
			}

			// serve: the same files through the loader serve runs, its log
			// and the problems serve logs.
			var logBuf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			l := &standalone.Loader{Paths: []string{dir}, Store: policy.NewStore(), Log: log}
			for _, p := range l.Reload() {
				log.Error("config problem", "problem", p.Error())
			}
			if logBuf.Len() == 0 {
				t.Fatal("serve logged nothing")
			}
			if strings.Contains(logBuf.String(), sentinel) {
				t.Errorf("serve's log quotes the Secret:\n%s", logBuf.String())
			}
		})
	}
}

// runCheckCapturing runs `jwtgate check` and returns what it printed on
// stdout and stderr, and its exit code.
func runCheckCapturing(t *testing.T, args ...string) (string, int) {
	t.Helper()
	r, w, _ := os.Pipe()
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	err := runCheck(args)
	os.Stdout, os.Stderr = oldOut, oldErr
	_ = w.Close()
	out := string(<-done)
	code := 0
	if err != nil {
		code = 1
		if e, ok := err.(exitError); ok {
			code = int(e)
		}
	}
	return out, code
}

// Issue 12 items 3 and 12: warnings are printed and check still exits 0.
func TestCheckWarnsAndPasses(t *testing.T) {
	dir := t.TempDir()
	h4, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	h5, _ := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	users, _ := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "u", "namespace": "ns"},
		"stringData": map[string]string{"users": "a:" + string(h4) + "\nb:" + string(h5) + "\n"}})
	signing, _ := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "sign", "namespace": "ns"},
		"stringData": map[string]string{"private.pem": string(mustPEMKey(t))}})
	pol := `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: shop, namespace: ns}
spec:
  hosts: [shop.example.com]
  rules:
    - path: /admin/
      methods: [GET, POST]
      roles: [admin]
  login:
    usersSecretRef: {name: u, key: users}
    signingKeySecretRef: {name: sign}
`
	if err := os.WriteFile(filepath.Join(dir, "all.yaml"), []byte(pol+"---\n"+string(users)+"---\n"+string(signing)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runCheckCapturing(t, "-f", dir)
	if code != 0 {
		t.Fatalf("exit %d, want 0 (warnings only):\n%s", code, out)
	}
	for _, want := range []string{
		"warning: ", "spec.rules[0].methods: methods other than GET, POST at /admin/ fall through to no rule, so any valid token passes",
		"spec.login.usersSecretRef: secret ns/u key \"users\" mixes bcrypt costs 4, 5",
		"with 2 warning(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
