//go:build fault

package fault_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/internal/loadtest"
)

// TestKeyRotationUnderLoad rewrites the keys Secret file of `jwtgate serve`
// from {A} to {A,B} to {B} while eight clients send, continuously, tokens of a
// key that is in the file at that moment: not one decision may fail. The window
// that matters is {A} -> {A,B}: A's tokens must never be refused, neither while
// the file changes nor while the policy is recompiled and the token cache is
// dropped. Each way a file gets replaced is tried: in place (an editor, cp),
// rename (an atomic writer), and the ..data symlink swap of a mounted Secret.
func TestKeyRotationUnderLoad(t *testing.T) {
	for _, mode := range []string{"in-place", "rename", "kubernetes-volume"} {
		t.Run(mode, func(t *testing.T) { rotateUnderLoad(t, mode) })
	}
}

func rotateUnderLoad(t *testing.T, mode string) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	a, b := newSigner(t), newSigner(t)
	keys := newKeysFile(t, dir, mode)
	keys.write(keysSecret(t, a))
	j := startJwtgate(t, dir, "jwtgate", nil, policyFile, keys.path)

	var toks [2][]string
	for i, s := range []signer{a, b} {
		for range 16 {
			toks[i] = append(toks[i], s.token(t))
		}
	}
	var use atomic.Int32 // 0: A's tokens, 1: B's
	load := loadtest.Start(8, func(_, i int) error {
		k := use.Load()
		if got := j.decide(nil, "/orders/"+strconv.Itoa(i%7), toks[k][i%len(toks[k])]); got != http.StatusOK {
			return fmt.Errorf("key %c: status %d", 'A'+k, got)
		}
		return nil
	})
	defer load.Stop()
	start := time.Now()
	time.Sleep(500 * time.Millisecond)
	keys.write(keysSecret(t, a, b))
	waitUntil(t, "B to be accepted", func() bool { return j.decide(nil, "/orders", toks[1][0]) == http.StatusOK })
	addB := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	use.Store(1) // clients move to B, then A leaves
	time.Sleep(200 * time.Millisecond)
	keys.write(keysSecret(t, b))
	waitUntil(t, "A to be refused", func() bool { return j.decide(nil, "/orders", a.token(t)) == http.StatusUnauthorized })
	time.Sleep(500 * time.Millisecond)
	load.Stop()
	if n := load.Failed(); n > 0 {
		t.Fatalf("%s: %d of %d decisions for a token of a key in the file failed: %s", mode, n, load.Sent(), load.Failures())
	}
	t.Logf("%s: {A} -> {A,B} -> {B}: %d decisions in %s, none failed (B accepted %s after start)",
		mode, load.Sent(), time.Since(start).Round(time.Millisecond), addB.Round(time.Millisecond))
}

// keysFile writes the keys Secret in one of three ways.
type keysFile struct {
	t    *testing.T
	mode string
	dir  string
	path string // what jwtgate is given with -f
	n    int
}

func newKeysFile(t *testing.T, dir, mode string) *keysFile {
	k := &keysFile{t: t, mode: mode, dir: dir, path: filepath.Join(dir, "keys.yaml")}
	if mode == "kubernetes-volume" {
		k.dir = filepath.Join(dir, "secret-volume")
		if err := os.MkdirAll(k.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		k.path = filepath.Join(k.dir, "keys.yaml")
	}
	return k
}

func (k *keysFile) write(data []byte) {
	t := k.t
	k.n++
	switch k.mode {
	case "in-place":
		if err := os.WriteFile(k.path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	case "rename":
		tmp := k.path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, k.path); err != nil {
			t.Fatal(err)
		}
	case "kubernetes-volume":
		// As the kubelet's AtomicWriter: a new timestamped folder, a ..data_tmp
		// symlink to it renamed over ..data, and keys.yaml -> ..data/keys.yaml.
		ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", k.n, os.Getpid())
		if err := os.Mkdir(filepath.Join(k.dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(k.dir, ts, "keys.yaml"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(k.dir, "..data_tmp")
		if err := os.Symlink(ts, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if k.n == 1 {
			if err := os.Symlink(filepath.Join("..data", "keys.yaml"), k.path); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(startupTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after %s", what, startupTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
