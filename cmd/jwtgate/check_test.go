package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const checkPolicy = `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: api, namespace: shop}
spec:
  hosts: [api.example.com]
  jwt:
    algorithms: [HS256]
    keys: [{secretRef: {name: api-hmac, key: secret}}]
  forwardClaims:
    - {claim: sub, header: X-Auth-User}
---
apiVersion: v1
kind: Secret
metadata: {name: api-hmac, namespace: shop}
stringData: {secret: "0123456789abcdef0123456789abcdef-not-a-key"}
`

func ingressWith(annotations string) string {
	return `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: api
  namespace: shop
  annotations:
` + annotations + `
spec:
  rules: [{host: api.example.com}]
`
}

// TestCheckProxyObjects: check reads Ingresses beside the policies, prints
// each finding with its file and line, fails on errors, and on warnings only
// with --strict.
func TestCheckProxyObjects(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ingress  string
		args     []string
		wantExit bool
		want     string
	}{
		{name: "clean", ingress: ingressWith(`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth/shop/api
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User`)},
		{name: "header not copied is an error", ingress: ingressWith(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth/shop/api`),
			wantExit: true, want: "error: " + "INGRESS:1 (document 1): Ingress shop/api: metadata.annotations[nginx.ingress.kubernetes.io/auth-response-headers]: does not copy X-Auth-User"},
		{name: "a warning does not fail", ingress: ingressWith(`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User`) + "---\n" + strings.Replace(ingressWith(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth`), "api.example.com", "other.example.com", 1),
			want: `no AuthPolicy lists host "other.example.com"`},
		{name: "a warning fails with --strict", args: []string{"--strict"}, ingress: strings.Replace(ingressWith(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth`), "api.example.com", "other.example.com", 1),
			wantExit: true, want: `no AuthPolicy lists host "other.example.com"`},
		{name: "another service name", args: []string{"--service-name", "auth/gate"}, ingress: ingressWith(
			`    nginx.ingress.kubernetes.io/auth-url: http://gate.auth.svc:8000/jwtgate/auth/shop/nope`),
			wantExit: true, want: "AuthPolicy shop/nope, which does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ingress := filepath.Join(dir, "ingress.yaml")
			if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(checkPolicy), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(ingress, []byte(tc.ingress), 0o600); err != nil {
				t.Fatal(err)
			}
			stderr := captureStderr(t, func() {
				err := runCheck(append(tc.args, "-f", dir))
				if (err != nil) != tc.wantExit {
					t.Errorf("check returned %v, want failure=%v", err, tc.wantExit)
				}
			})
			want := strings.ReplaceAll(tc.want, "INGRESS", ingress)
			if !strings.Contains(stderr, want) {
				t.Errorf("output lacks %q:\n%s", want, stderr)
			}
			if tc.want == "" && strings.TrimSpace(stderr) != "" {
				t.Errorf("want no findings, got:\n%s", stderr)
			}
		})
	}
}

// captureStderr returns what fn wrote on os.Stderr.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	fn()
	os.Stderr = old
	_ = w.Close()
	return <-done
}

// The README's promise: the examples check clean, with --strict, once the demo
// key exists (made as hack/run-examples.sh makes it: a Secret demo-keys with
// the public half of a fresh ES256 key), and without it the missing Secret is
// the only problem.
func TestExamplesCheckClean(t *testing.T) {
	examples := filepath.Join("..", "..", "examples")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	secret := "apiVersion: v1\nkind: Secret\nmetadata: {name: demo-keys, namespace: default}\nstringData:\n  public.pem: |\n    " +
		strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n    ") + "\n"
	if err := os.WriteFile(keys, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	out := captureStderr(t, func() {
		if err := runCheck([]string{"--strict", "-f", examples, "-f", keys}); err != nil {
			t.Errorf("check --strict -f examples/ -f keys.yaml: %v", err)
		}
	})
	if strings.TrimSpace(out) != "" {
		t.Errorf("the examples are not clean:\n%s", out)
	}
	out = captureStderr(t, func() {
		if err := runCheck([]string{"-f", examples}); err == nil {
			t.Error("check -f examples/ without the demo key passed")
		}
	})
	if !strings.Contains(out, "secret default/demo-keys not found") || !strings.Contains(out, "jwtgate check: 1 problem(s)") {
		t.Errorf("without the demo key, want only its missing Secret, got:\n%s", out)
	}
}
