//go:build e2e

package e2e_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const caddyBin = "/usr/bin/caddy"

// The browser walk of the nginx test, through Caddy configured with the
// Caddyfile of docs/proxies/caddy.md (the forward-auth door).
func TestCaddyGuideFlow(t *testing.T) {
	if _, err := os.Stat(caddyBin); err != nil {
		t.Fatalf("missing Debian package caddy: run hack/install-deps.sh as root (make e2e does), or: sudo apt-get install -y caddy")
	}
	s := newStack(t, caddyGuide)
	walk(t, s)
}

// guideBlock returns the fenced block of the given language in a page of docs/.
func guideBlock(t *testing.T, page, lang string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, page))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok1 := strings.Cut(string(b), "```"+lang+"\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok1 || !ok2 {
		t.Fatalf("%s: no ```%s block", page, lang)
	}
	return block
}

func (s *stack) startCaddy(authAddr string) {
	t := s.t
	cfg := guideBlock(t, "docs/proxies/caddy.md", "caddyfile")
	for _, r := range []struct{ old, new string }{
		{"app.example.com {", appHost + ":" + strconv.Itoa(s.port) + " {\n\ttls " + certFile + " " + keyFile},
		{"forward_auth jwtgate.jwtgate.svc:8000", "forward_auth " + authAddr},
		{"reverse_proxy jwtgate.jwtgate.svc:8000", "reverse_proxy " + s.jwtgate},
		{"reverse_proxy app.default.svc:8080", "reverse_proxy " + s.app.addr},
	} {
		if strings.Count(cfg, r.old) != 1 {
			t.Fatalf("docs/proxies/caddy.md's Caddyfile must hold %q exactly once (the test replaces it)", r.old)
		}
		cfg = strings.Replace(cfg, r.old, r.new, 1)
	}
	cfg = "{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system " + filepath.Join(s.dir, "caddy-data") + "\n}\n" + cfg
	file := filepath.Join(s.dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, filepath.Join(s.dir, "nginx.out"), caddyBin, "run", "--config", file, "--adapter", "caddyfile")
	addr := "127.0.0.1:" + strconv.Itoa(s.port)
	waitFor(t, p, "caddy to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}
