package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStore() (*Memory, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	return &Memory{Now: c.Now}, c
}

var ctx = context.Background()

func TestRotateGraceAndReuse(t *testing.T) {
	m, clock := newStore()
	s, t1, err := m.Create(ctx, New{Policy: "shop/shop", User: "alice", Roles: []string{"user"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(t1) != 43 {
		t.Fatalf("token %q: want 43 base64url characters (256 bits)", t1)
	}
	_, t2, err := m.Rotate(ctx, "shop/shop", t1)
	if err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	// A parallel tab sends t1 again within the grace period: it gets a token too,
	// and the one the first tab got stays valid.
	clock.Advance(9 * time.Second)
	_, t3, err := m.Rotate(ctx, "shop/shop", t1)
	if err != nil {
		t.Fatalf("rotation within grace: %v", err)
	}
	if t3 == t2 {
		t.Fatal("a parallel rotation returned the same token")
	}
	if !m.SessionAlive("shop/shop", s.ID) {
		t.Fatal("session ended by a use within the grace period")
	}
	// Later, t1 comes back: that is a replay, and the whole session ends.
	clock.Advance(2 * time.Second)
	ended, _, err := m.Rotate(ctx, "shop/shop", t1)
	if !errors.Is(err, ErrReused) {
		t.Fatalf("reuse after grace: got %v, want ErrReused", err)
	}
	// The session it ended comes back with the error, for the token records.
	if ended.ID != s.ID || ended.User != "alice" || ended.Policy != "shop/shop" {
		t.Fatalf("reuse returned %+v, want the ended session %s of alice", ended, s.ID)
	}
	if m.SessionAlive("shop/shop", s.ID) {
		t.Fatal("session still alive after a reused token")
	}
	for _, tok := range []string{t2, t3} {
		if _, _, err := m.Rotate(ctx, "shop/shop", tok); !errors.Is(err, ErrInvalid) {
			t.Fatalf("token of an ended session: got %v, want ErrInvalid", err)
		}
	}
}

func TestSiblingTokensBothRenew(t *testing.T) {
	m, clock := newStore()
	_, t1, _ := m.Create(ctx, New{Policy: "p/p", User: "alice", TTL: time.Hour})
	_, t2, _ := m.Rotate(ctx, "p/p", t1)
	_, t3, _ := m.Rotate(ctx, "p/p", t1) // parallel tab
	// Minutes later the browser holds whichever answer came last; either renews.
	clock.Advance(5 * time.Minute)
	_, t4, err := m.Rotate(ctx, "p/p", t2)
	if err != nil {
		t.Fatalf("renewing with the first sibling: %v", err)
	}
	_ = t4
	// t3 was replaced together with t2: past the grace it is a replay.
	clock.Advance(11 * time.Second)
	if _, _, err := m.Rotate(ctx, "p/p", t3); !errors.Is(err, ErrReused) {
		t.Fatalf("replaced sibling after grace: got %v, want ErrReused", err)
	}
}

func TestExpiryPolicyAndBounds(t *testing.T) {
	m, clock := newStore()
	s, tok, _ := m.Create(ctx, New{Policy: "a/a", User: "alice", TTL: time.Minute})
	if _, _, err := m.Rotate(ctx, "b/b", tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token of another policy: got %v", err)
	}
	if m.SessionAlive("b/b", s.ID) {
		t.Fatal("session alive for another policy")
	}
	clock.Advance(time.Minute)
	if _, _, err := m.Rotate(ctx, "a/a", tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired token: got %v", err)
	}
	for _, bad := range []string{"", "x", "eyJhbGciOiJIUzI1NiJ9.e30.sig", tok + "A"} {
		if _, _, err := m.Rotate(ctx, "a/a", bad); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%q: got %v", bad, err)
		}
	}

	m.MaxPerUser = 2
	s1, _, _ := m.Create(ctx, New{Policy: "a/a", User: "bob", TTL: time.Hour})
	if _, _, err := m.Create(ctx, New{Policy: "a/a", User: "bob", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Create(ctx, New{Policy: "a/a", User: "bob", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if m.SessionAlive("a/a", s1.ID) {
		t.Fatal("the oldest session of a user past MaxPerUser is still alive")
	}
	m.MaxSessions = m.Len()
	if _, _, err := m.Create(ctx, New{Policy: "a/a", User: "carol", TTL: time.Hour}); !errors.Is(err, ErrFull) {
		t.Fatalf("full store: got %v", err)
	}
	clock.Advance(2 * time.Hour)
	if _, _, err := m.Create(ctx, New{Policy: "a/a", User: "carol", TTL: time.Hour}); err != nil {
		t.Fatalf("a full store of expired sessions must make room: %v", err)
	}
	if m.Len() != 1 {
		t.Fatalf("after the sweep %d sessions, want 1", m.Len())
	}
}

func TestEnd(t *testing.T) {
	m, _ := newStore()
	s1, tok1, _ := m.Create(ctx, New{Policy: "a/a", User: "alice", TTL: time.Hour})
	s2, _, _ := m.Create(ctx, New{Policy: "a/a", User: "alice", TTL: time.Hour})
	s3, _, _ := m.Create(ctx, New{Policy: "a/a", User: "bob", TTL: time.Hour})
	if got, err := m.EndByToken(ctx, "a/a", tok1); err != nil || got.ID != s1.ID {
		t.Fatalf("EndByToken: %v %v", got, err)
	}
	if m.SessionAlive("a/a", s1.ID) {
		t.Fatal("session alive after sign-out")
	}
	if n, _ := m.EndUser(ctx, "a/a", "alice"); n != 1 || m.SessionAlive("a/a", s2.ID) {
		t.Fatalf("EndUser ended %d", n)
	}
	if !m.SessionAlive("a/a", s3.ID) {
		t.Fatal("EndUser ended another user's session")
	}
	if err := m.End(ctx, "a/a", s3.ID); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 {
		t.Fatalf("%d sessions left", m.Len())
	}
}

func TestUserSessions(t *testing.T) {
	m, clock := newStore()
	if got, err := m.UserSessions(ctx, "a/a", "alice"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("no sessions: %v %v, want an empty list", got, err)
	}
	s1, _, _ := m.Create(ctx, New{Policy: "a/a", User: "alice", Roles: []string{"user"}, TTL: time.Hour})
	clock.Advance(time.Second)
	s2, tok2, _ := m.Create(ctx, New{Policy: "a/a", User: "alice", TTL: 2 * time.Hour})
	if _, _, err := m.Create(ctx, New{Policy: "a/a", User: "bob", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Create(ctx, New{Policy: "b/b", User: "alice", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	r2, _, err := m.Rotate(ctx, "a/a", tok2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.UserSessions(ctx, "a/a", "alice")
	if err != nil || len(got) != 2 || got[0].ID != s1.ID || got[1].ID != s2.ID {
		t.Fatalf("alice's sessions: %+v %v, want %s then %s", got, err, s1.ID, s2.ID)
	}
	if got[1].Rotations != 1 || !got[1].Expires.Equal(r2.Expires) || got[0].Roles[0] != "user" {
		t.Fatalf("listed %+v: want the current state of each session", got)
	}
	got[0].Roles[0] = "changed" // a copy
	if again, _ := m.UserSessions(ctx, "a/a", "alice"); again[0].Roles[0] != "user" {
		t.Fatal("UserSessions returned the store's own roles slice")
	}
	// Expired sessions are not listed, even before a sweep.
	clock.Advance(time.Hour)
	if got, _ := m.UserSessions(ctx, "a/a", "alice"); len(got) != 1 || got[0].ID != s2.ID {
		t.Fatalf("after s1 expired: %+v", got)
	}
	if _, err := m.EndUser(ctx, "a/a", "alice"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.UserSessions(ctx, "a/a", "alice"); len(got) != 0 {
		t.Fatalf("after EndUser: %+v", got)
	}
}
