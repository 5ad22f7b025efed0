package standalone

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/jwtgate/jwtgate/authsvc/filesource"
	"github.com/jwtgate/jwtgate/authsvc/policy"
)

const policyTmpl = `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: web, namespace: shop}
spec:
  jwt:
    algorithms: [%s]
    keys:
      - secretRef: {name: keys, key: pub.pem}
  rules:
%s
`

func writeConfig(t *testing.T, dir, alg, rules string, pub []byte) {
	t.Helper()
	secret := "apiVersion: v1\nkind: Secret\nmetadata: {name: keys, namespace: shop}\nstringData:\n  pub.pem: |\n" +
		indent(string(pub), "    ")
	write(t, filepath.Join(dir, "secret.yaml"), secret)
	write(t, filepath.Join(dir, "policy.yaml"), fmt.Sprintf(policyTmpl, alg, rules))
}

// write replaces a file the way editors do: a temporary file renamed over it.
func write(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = pre + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestReload(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	tok, err := gojwt.NewWithClaims(gojwt.SigningMethodES256, gojwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeConfig(t, dir, "ES256", "    - {path: /public/, public: true}", pub)

	store := policy.NewStore()
	l := &Loader{Paths: []string{dir}, Store: store}
	if errs := l.Reload(); len(errs) != 0 {
		t.Fatalf("first load: %v", errs)
	}
	decide := func(path string) int {
		p := store.Load().Policy("shop", "web")
		if p == nil {
			return 0
		}
		h := http.Header{"Authorization": {"Bearer " + tok}}
		return p.Decide(time.Now(), policy.Request{Method: "GET", Path: path, Header: h}, nil).Status
	}
	if got := decide("/admin/"); got != 200 {
		t.Fatalf("before the edit /admin/ = %d, want 200", got)
	}

	// The watcher notices edits and the loader applies them.
	w, err := filesource.NewWatcher([]string{dir}, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reloaded := make(chan []error, 10)
	go w.Run(ctx, func() { reloaded <- l.Reload() })
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for !cond() {
			select {
			case <-reloaded:
			case <-deadline:
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	t.Run("a rule added to a file applies", func(t *testing.T) {
		writeConfig(t, dir, "ES256", "    - {path: /public/, public: true}\n    - {path: /admin/, roles: [admin]}", pub)
		waitFor("the admin rule", func() bool { return decide("/admin/") == 403 })
	})
	t.Run("an invalid edit keeps the last good version", func(t *testing.T) {
		gen := store.Load().Generation
		writeConfig(t, dir, "none", "    - {path: /public/, public: true}", pub)
		var errs []error
		deadline := time.After(10 * time.Second)
		for len(errs) == 0 {
			select {
			case errs = <-reloaded:
			case <-deadline:
				t.Fatal("no reload after the invalid edit")
			}
		}
		if !strings.Contains(fmt.Sprint(errs), "policy.yaml") || !strings.Contains(fmt.Sprint(errs), "spec.jwt.algorithms[0]") {
			t.Fatalf("problems must name the file and field: %v", errs)
		}
		if got := decide("/admin/"); got != 403 {
			t.Fatalf("after an invalid edit /admin/ = %d, want the last good policy's 403", got)
		}
		_ = gen
	})
	t.Run("a YAML error changes nothing", func(t *testing.T) {
		write(t, filepath.Join(dir, "policy.yaml"), "apiVersion: jwtgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: web\n")
		select {
		case errs := <-reloaded:
			if len(errs) == 0 {
				t.Fatal("a broken file must be reported")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no reload")
		}
		if store.Load().Policy("shop", "web") == nil {
			t.Fatal("a broken file must not remove the policies it held")
		}
	})
	t.Run("removing the policy stops it", func(t *testing.T) {
		if err := os.Remove(filepath.Join(dir, "policy.yaml")); err != nil {
			t.Fatal(err)
		}
		waitFor("the policy to go", func() bool { return store.Load().Policy("shop", "web") == nil })
	})
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "bad.yaml"), `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: web, namespace: shop}
spec:
  jwt:
    algorithms: [none]
    keys:
      - secretRef: {name: keys, key: missing.pem}
  rules:
    - path: admin
---
apiVersion: v1
kind: Secret
metadata: {name: keys, namespace: shop}
stringData:
  pub.pem: x
`)
	errs := Check([]string{dir})
	all := fmt.Sprint(errs)
	for _, want := range []string{
		"spec.jwt.algorithms[0]",
		`spec.jwt.keys[0].secretRef: secret shop/keys has no key "missing.pem"`,
		"spec.rules[0].path",
		"bad.yaml",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("check output lacks %q:\n%s", want, all)
		}
	}
}

// Two policies claiming one host: check reports the later one, with its file.
func TestCheckHostConflict(t *testing.T) {
	dir := t.TempDir()
	doc := func(name string) string {
		return `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: ` + name + `, namespace: shop}
spec:
  hosts: [shop.example.com]
  jwt:
    algorithms: [HS256]
    keys: [{secretRef: {name: k, key: s}}]
`
	}
	write(t, filepath.Join(dir, "a.yaml"), doc("first")+"---\napiVersion: v1\nkind: Secret\nmetadata: {name: k, namespace: shop}\nstringData: {s: 0123456789abcdef0123456789abcdef}\n")
	write(t, filepath.Join(dir, "b.yaml"), doc("second"))
	errs := fmt.Sprint(Check([]string{dir}))
	if !strings.Contains(errs, "b.yaml") || !strings.Contains(errs, "AuthPolicy shop/second: spec.hosts") || !strings.Contains(errs, "already belongs to AuthPolicy shop/first") {
		t.Fatalf("check must report the later policy's host conflict with its file:\n%s", errs)
	}
}
