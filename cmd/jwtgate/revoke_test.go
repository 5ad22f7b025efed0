package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/admin"
	"github.com/jwtgate/jwtgate/authsvc/session"
)

func TestRevokeCommand(t *testing.T) {
	const token = "revoke-test-token-0123456789"
	store := session.NewMemory()
	api := httptest.NewServer(&admin.Handler{Store: store, Records: &session.MemoryRecords{Sessions: store}, Token: []byte(token)})
	defer api.Close()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrongFile, []byte("wrong-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	s1, _, _ := store.Create(ctx, session.New{Policy: "shop/shop", User: "alice", TTL: time.Hour})
	if _, _, err := store.Create(ctx, session.New{Policy: "shop/shop", User: "alice", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s3, _, _ := store.Create(ctx, session.New{Policy: "shop/shop", User: "bob", TTL: time.Hour})

	run := func(args ...string) (string, error) {
		var out strings.Builder
		err := revoke(&out, append([]string{"--admin-url", api.URL}, args...))
		return out.String(), err
	}
	if out, err := run("--admin-token-file", tokenFile, "--policy", "shop/shop", "--sub", "alice"); err != nil || out != "ended 2 session(s) of alice in shop/shop\n" {
		t.Fatalf("--sub: %q %v", out, err)
	}
	if store.SessionAlive("shop/shop", s1.ID) {
		t.Fatal("alice's session is alive")
	}
	if out, err := run("--admin-token-file", tokenFile, "--policy", "shop/shop", "--session", s3.ID); err != nil || !strings.HasPrefix(out, "ended session "+s3.ID) {
		t.Fatalf("--session: %q %v", out, err)
	}
	if out, err := run("--admin-token-file", tokenFile, "--policy", "shop/shop", "--session", s3.ID); err != nil || !strings.Contains(out, "was not alive") {
		t.Fatalf("--session again: %q %v", out, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--admin-token-file", wrongFile, "--policy", "shop/shop", "--sub", "alice"}, "401"},
		{[]string{"--policy", "shop/shop", "--sub", "alice"}, "--admin-token-file is required"},
		{[]string{"--admin-token-file", tokenFile, "--sub", "alice"}, "--policy"},
		{[]string{"--admin-token-file", tokenFile, "--policy", "shop/shop"}, "--sub USER"},
		{[]string{"--admin-token-file", tokenFile, "--policy", "shop/shop", "--sub", "a", "--session", "b"}, "not both"},
		{[]string{"--admin-token-file", tokenFile, "--policy", "shop", "--sub", "alice"}, "namespace/name"},
		{[]string{"--admin-token-file", filepath.Join(dir, "missing"), "--policy", "shop/shop", "--sub", "alice"}, "admin token"},
	} {
		if _, err := run(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error saying %q", c.args, err, c.want)
		}
	}
}
