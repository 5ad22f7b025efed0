package standalone

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// A signer is a key pair and a token it signed.
type signer struct {
	pub []byte // PEM
	tok string
}

func newSigner(t *testing.T) signer {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	tok, err := gojwt.NewWithClaims(gojwt.SigningMethodES256, gojwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signer{pub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), tok: tok}
}

const twoKeysPolicy = `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: web, namespace: shop}
spec:
  jwt:
    algorithms: [%s]
    keys:
      - secretRef: {name: key-a, key: pub.pem}
      - secretRef: {name: key-b, key: pub.pem}
`

func keySecret(name string, pub []byte) string {
	return "apiVersion: v1\nkind: Secret\nmetadata: {name: " + name + ", namespace: shop}\nstringData:\n  pub.pem: |\n" + indent(string(pub), "    ")
}

func policyReady(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "jwtgate_policy_ready" {
			for _, m := range mf.GetMetric() {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatal("no jwtgate_policy_ready{policy=shop/web}")
	return 0
}

// Keeping the last good version never trusts more than the Secrets hold now: a
// key whose Secret was deleted, or whose data no longer parses, stops verifying
// at the next reload, even though the policy no longer compiles; a tightening
// edit that fails validation keeps the last good version as it was.
func TestLastGoodNeverWidensTrust(t *testing.T) {
	a, b := newSigner(t), newSigner(t)
	tests := []struct {
		name    string
		alg     string
		secrets string // the Secrets file after the edit
		wantA   int    // decision on a token signed by key A
		wantB   int
		problem string // in Reload's problems
	}{
		{"key B's Secret deleted", "ES256", keySecret("key-a", a.pub), 200, 401, "keeps serving without what its Secrets no longer hold: the keys of spec.jwt.keys[1].secretRef"},
		{"key B's data no longer parses", "ES256", keySecret("key-a", a.pub) + "---\n" + keySecret("key-b", []byte("not a key")), 200, 401, "keeps serving without what its Secrets no longer hold: the keys of spec.jwt.keys[1].secretRef"},
		{"both Secrets deleted", "ES256", "", 401, 401, "no key is left"},
		{"invalid tightening edit, Secrets unchanged", "none", keySecret("key-a", a.pub) + "---\n" + keySecret("key-b", b.pub), 200, 200, "the last good version (generation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "secrets.yaml"), keySecret("key-a", a.pub)+"---\n"+keySecret("key-b", b.pub))
			write(t, filepath.Join(dir, "policy.yaml"), fmt.Sprintf(twoKeysPolicy, "ES256"))
			reg := prometheus.NewRegistry()
			store := policy.NewStore()
			store.UseMetrics(policy.NewMetrics(reg))
			l := &Loader{Paths: []string{dir}, Store: store}
			if errs := l.Reload(); len(errs) != 0 {
				t.Fatalf("first load: %v", errs)
			}
			decide := func(tok string) int {
				p := store.Load().Policy("shop", "web")
				if p == nil {
					return 0
				}
				return p.Decide(time.Now(), policy.Request{Method: "GET", Path: "/x", Header: http.Header{"Authorization": {"Bearer " + tok}}}, nil).Status
			}
			if decide(a.tok) != 200 || decide(b.tok) != 200 || policyReady(t, reg) != 1 {
				t.Fatalf("before the edit: A %d, B %d, ready %v; want 200, 200, 1", decide(a.tok), decide(b.tok), policyReady(t, reg))
			}

			write(t, filepath.Join(dir, "secrets.yaml"), tc.secrets)
			write(t, filepath.Join(dir, "policy.yaml"), fmt.Sprintf(twoKeysPolicy, tc.alg))
			errs := l.Reload()
			if !strings.Contains(fmt.Sprint(errs), tc.problem) {
				t.Errorf("problems %v do not say %q", errs, tc.problem)
			}
			if got := decide(a.tok); got != tc.wantA {
				t.Errorf("token signed by key A: %d, want %d", got, tc.wantA)
			}
			if got := decide(b.tok); got != tc.wantB {
				t.Errorf("token signed by key B: %d, want %d", got, tc.wantB)
			}
			if v := policyReady(t, reg); v != 0 {
				t.Errorf("jwtgate_policy_ready = %v after an edit that does not compile, want 0", v)
			}
		})
	}
}
