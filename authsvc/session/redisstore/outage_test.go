package redisstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

func waitHealthy(t *testing.T, want bool, stores ...*Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, st := range stores {
		for st.Healthy() != want {
			if time.Now().After(deadline) {
				t.Fatalf("store healthy=%v, want %v after 10 s", st.Healthy(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func mustUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, session.ErrUnavailable) {
		t.Fatalf("%s with Redis down: got %v, want session.ErrUnavailable", what, err)
	}
}

// outageStart creates a session on A, makes B know it, then stops Redis and
// checks what works without it. It returns the session and its token.
func outageStart(t *testing.T, srv *redisServer, a, b *Store) (session.Session, string) {
	t.Helper()
	s, tok, err := a.Create(ctx, session.New{Policy: "shop/shop", User: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !b.SessionAlive("shop/shop", s.ID) {
		t.Fatal("B does not see the session")
	}
	srv.stop()
	waitHealthy(t, false, a, b)

	start := time.Now()
	_, _, err = a.Create(ctx, session.New{Policy: "shop/shop", User: "bob", TTL: time.Hour})
	mustUnavailable(t, "Create", err)
	if d := time.Since(start); d > DefaultTimeout+time.Second {
		t.Fatalf("Create took %v to fail", d)
	}
	_, _, err = b.Rotate(ctx, "shop/shop", tok)
	mustUnavailable(t, "Rotate", err)
	_, err = a.EndByToken(ctx, "shop/shop", tok)
	mustUnavailable(t, "EndByToken", err)
	mustUnavailable(t, "End", b.End(ctx, "shop/shop", s.ID))
	_, err = b.EndUser(ctx, "shop/shop", "alice")
	mustUnavailable(t, "EndUser", err)
	mustUnavailable(t, "Record", a.Record(ctx, session.Event{Kind: session.EventRefused, Policy: "shop/shop", User: "alice"}))
	_, err = a.UserRecord(ctx, "shop/shop", "alice")
	mustUnavailable(t, "UserRecord", err)

	// Decisions for the known session keep working from the cache; an unknown
	// session is refused (fail closed), at once.
	for _, st := range []*Store{a, b} {
		if !st.SessionAlive("shop/shop", s.ID) {
			t.Fatal("a known live session is refused while Redis is down")
		}
	}
	start = time.Now()
	if b.SessionAlive("shop/shop", "AAAAAAAAAAAAAAAAAAAAAA") {
		t.Fatal("an unknown session is alive while Redis is down")
	}
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Fatalf("an unknown session took %v to refuse with Redis down", d)
	}
	return s, tok
}

// outageEnd checks that everything works again after Redis came back.
func outageEnd(t *testing.T, a, b *Store) {
	t.Helper()
	s, tok, err := a.Create(ctx, session.New{Policy: "shop/shop", User: "carol", TTL: time.Hour})
	if err != nil {
		t.Fatalf("Create after Redis came back: %v", err)
	}
	if !b.SessionAlive("shop/shop", s.ID) {
		t.Fatal("B does not see a new session")
	}
	if _, tok, err = b.Rotate(ctx, "shop/shop", tok); err != nil {
		t.Fatalf("Rotate after Redis came back: %v", err)
	}
	if _, err := a.EndByToken(ctx, "shop/shop", tok); err != nil {
		t.Fatal(err)
	}
	t.Logf("after reconnection, sign-out on A refused by B after %v", waitDead(t, b, "shop/shop", s.ID))
}

// A Redis without persistence restarts empty: every session is over ("a lost
// store means signing in again"), on every replica, including in the caches.
func TestRedisRestartLosesSessions(t *testing.T) {
	srv, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix(t)
	a := newTestStore(t, srv, prefix, Options{})
	b := newTestStore(t, srv, prefix, Options{})
	s, tok := outageStart(t, srv, a, b)

	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, true, a, b)
	for _, st := range []*Store{a, b} {
		if st.SessionAlive("shop/shop", s.ID) {
			t.Fatal("a session the restarted Redis lost is still alive in a cache")
		}
	}
	if _, _, err := b.Rotate(ctx, "shop/shop", tok); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("refresh of a lost session: got %v, want ErrInvalid", err)
	}
	outageEnd(t, a, b)
}

// A Redis that keeps its data (append-only file) comes back with the
// sessions: they stay valid.
func TestRedisRestartKeepsSessions(t *testing.T) {
	srv, err := startRedis("--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix(t)
	a := newTestStore(t, srv, prefix, Options{})
	b := newTestStore(t, srv, prefix, Options{})
	s, tok := outageStart(t, srv, a, b)

	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, true, a, b)
	for _, st := range []*Store{a, b} {
		if !st.SessionAlive("shop/shop", s.ID) {
			t.Fatal("a session Redis kept is not alive after the reconnection")
		}
	}
	if _, _, err := b.Rotate(ctx, "shop/shop", tok); err != nil {
		t.Fatalf("refresh of a kept session: %v", err)
	}
	outageEnd(t, a, b)
}

// An end a replica did not hear (its subscription was down) is found when it
// resubscribes.
func TestResyncAfterResubscribe(t *testing.T) {
	srv := sharedRedis(t)
	prefix := uniquePrefix(t)
	b := newTestStore(t, srv, prefix, Options{})
	s, _, err := b.Create(ctx, session.New{Policy: "shop/shop", User: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	keep, _, _ := b.Create(ctx, session.New{Policy: "shop/shop", User: "bob", TTL: time.Hour})
	// The session vanishes without a message (as if ended while B was not
	// subscribed): B's cache still says alive...
	if _, err := srv.do("DEL", prefix+"{shop/shop}:s:"+s.ID); err != nil {
		t.Fatal(err)
	}
	if !b.SessionAlive("shop/shop", s.ID) {
		t.Fatal("cache entry gone before the test")
	}
	// ...until its subscription breaks and comes back.
	if _, err := srv.do("CLIENT", "KILL", "TYPE", "pubsub"); err != nil {
		t.Fatal(err)
	}
	t.Logf("resynchronised after %v", waitDead(t, b, "shop/shop", s.ID))
	if !b.SessionAlive("shop/shop", keep.ID) {
		t.Fatal("resynchronisation ended a live session")
	}
}

// A missing redis-server must fail the tests with the command that installs
// it, never skip them.
func TestMissingRedisServerFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := startRedis()
	if err == nil {
		t.Fatal("startRedis without redis-server did not fail")
	}
	if got := err.Error(); !strings.Contains(got, "apt-get install -y redis-server") {
		t.Fatalf("error does not say how to install redis-server: %s", got)
	}
}

func TestNewOptions(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, o := range []Options{
		{},
		{URL: "http://127.0.0.1:6379"},
		{URL: "redis://:hunter2hunter2@127.0.0.1:6379/notadb"},
		{URL: "redis://127.0.0.1:6379", PasswordFile: filepath.Join(dir, "missing")},
		{URL: "redis://127.0.0.1:6379", PasswordFile: write("empty", "\n")},
	} {
		st, err := New(ctx, o)
		if err == nil {
			_ = st.Close()
			t.Fatalf("%+v accepted", o)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}

	srv, err := startRedis("--requirepass", "pw-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	// The password from a file (a mounted Secret), with its final newline.
	st, err := New(ctx, Options{URL: srv.url(), PasswordFile: write("pw", "pw-0123456789\n"), KeyPrefix: uniquePrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Create(ctx, session.New{Policy: "p/p", User: "alice", TTL: time.Minute}); err != nil || !st.Healthy() {
		t.Fatalf("with the password file: %v (healthy %v)", err, st.Healthy())
	}
	_ = st.Close()
	// And in the URL.
	u := strings.Replace(srv.url(), "redis://", "redis://:pw-0123456789@", 1)
	st, err = New(ctx, Options{URL: u, KeyPrefix: uniquePrefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	// A wrong password fails at once, without showing it.
	_, err = New(ctx, Options{URL: strings.Replace(srv.url(), "redis://", "redis://:wrong-password@", 1)})
	if err == nil || strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("wrong password: %v", err)
	}
	t.Logf("wrong password: %v", err)
}

// A replica may start before Redis: New returns, sign-in fails with
// ErrUnavailable, and everything works once Redis answers.
func TestStartBeforeRedis(t *testing.T) {
	srv, err := startRedis()
	if err != nil {
		t.Fatal(err)
	}
	srv.stop()
	nctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	st, err := New(nctx, Options{URL: srv.url(), KeyPrefix: uniquePrefix(t)})
	if err != nil {
		t.Fatalf("New with Redis down: %v", err)
	}
	defer func() { _ = st.Close() }()
	if st.Healthy() {
		t.Fatal("healthy without Redis")
	}
	_, _, err = st.Create(ctx, session.New{Policy: "p/p", User: "alice", TTL: time.Minute})
	mustUnavailable(t, "Create", err)
	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, true, st)
	s, _, err := st.Create(ctx, session.New{Policy: "p/p", User: "alice", TTL: time.Minute})
	if err != nil || !st.SessionAlive("p/p", s.ID) {
		t.Fatalf("Create once Redis answers: %v", err)
	}
}
