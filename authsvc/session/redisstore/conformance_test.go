package redisstore

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

// Both stores list a user's sessions for /admin/tokens.
var (
	_ session.SessionLister = (*session.Memory)(nil)
	_ session.SessionLister = (*Store)(nil)
)

// The conformance suite: the rules of session.Store, run against
// session.Memory (the reference) and the Redis store, so both behave alike.
// It could move to a session/sessiontest package once session is settled.

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// storeMaker returns an empty store on the given clock.
type storeMaker func(t *testing.T, clock *fakeClock, maxPerUser int) session.Store

var ctx = context.Background()

func TestConformanceMemory(t *testing.T) {
	runConformance(t, func(t *testing.T, clock *fakeClock, maxPerUser int) session.Store {
		return &session.Memory{Now: clock.Now, MaxPerUser: maxPerUser}
	})
}

func TestConformanceRedis(t *testing.T) {
	srv := sharedRedis(t)
	runConformance(t, func(t *testing.T, clock *fakeClock, maxPerUser int) session.Store {
		return newTestStore(t, srv, uniquePrefix(t), Options{Now: clock.Now, MaxPerUser: maxPerUser})
	})
}

func runConformance(t *testing.T, mk storeMaker) {
	t.Run("Fields", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 0)
		start := clock.Now()
		s, tok, err := m.Create(ctx, session.New{Policy: "shop/shop", User: "alice", Roles: []string{"user", "admin"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 43 || s.ID == "" || s.Policy != "shop/shop" || s.User != "alice" || !slices.Equal(s.Roles, []string{"user", "admin"}) ||
			s.TTL != time.Hour || !s.Created.Equal(start) || !s.Expires.Equal(start.Add(time.Hour)) || s.Rotations != 0 || !s.Refreshed.IsZero() {
			t.Fatalf("created %+v, token %q", s, tok)
		}
		clock.Advance(time.Minute)
		r, tok2, err := m.Rotate(ctx, "shop/shop", tok)
		if err != nil {
			t.Fatal(err)
		}
		now := clock.Now()
		if tok2 == tok || r.ID != s.ID || r.User != "alice" || !slices.Equal(r.Roles, s.Roles) || r.Rotations != 1 ||
			!r.Refreshed.Equal(now) || !r.Expires.Equal(now.Add(time.Hour)) || !r.Created.Equal(start) {
			t.Fatalf("rotated %+v", r)
		}
		if !m.SessionAlive("shop/shop", s.ID) {
			t.Fatal("a rotated session is not alive")
		}
		// Rotation extends the session: past the first token's end it lives on.
		clock.Advance(time.Hour - time.Second)
		if _, _, err := m.Rotate(ctx, "shop/shop", tok2); err != nil {
			t.Fatalf("rotation within the extended lifetime: %v", err)
		}
	})

	t.Run("RotateGraceAndReuse", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 0)
		s, t1, err := m.Create(ctx, session.New{Policy: "shop/shop", User: "alice", Roles: []string{"user"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		_, t2, err := m.Rotate(ctx, "shop/shop", t1)
		if err != nil {
			t.Fatalf("first rotation: %v", err)
		}
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
		clock.Advance(2 * time.Second)
		ended, _, err := m.Rotate(ctx, "shop/shop", t1)
		if !errors.Is(err, session.ErrReused) {
			t.Fatalf("reuse after grace: got %v, want ErrReused", err)
		}
		// The ended session comes back with the error, for the token records.
		if ended.ID != s.ID || ended.User != "alice" || ended.Policy != "shop/shop" {
			t.Fatalf("reuse returned %+v, want the ended session %s of alice", ended, s.ID)
		}
		if m.SessionAlive("shop/shop", s.ID) {
			t.Fatal("session still alive after a reused token")
		}
		for _, tok := range []string{t1, t2, t3} {
			if _, _, err := m.Rotate(ctx, "shop/shop", tok); !errors.Is(err, session.ErrInvalid) {
				t.Fatalf("token of an ended session: got %v, want ErrInvalid", err)
			}
		}
	})

	t.Run("SiblingTokensBothRenew", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 0)
		_, t1, _ := m.Create(ctx, session.New{Policy: "p/p", User: "alice", TTL: time.Hour})
		_, t2, _ := m.Rotate(ctx, "p/p", t1)
		_, t3, _ := m.Rotate(ctx, "p/p", t1) // parallel tab
		clock.Advance(5 * time.Minute)
		if _, _, err := m.Rotate(ctx, "p/p", t2); err != nil {
			t.Fatalf("renewing with the first sibling: %v", err)
		}
		// t3 was replaced together with t2: within the grace it still renews...
		clock.Advance(5 * time.Second)
		if _, _, err := m.Rotate(ctx, "p/p", t3); err != nil {
			t.Fatalf("replaced sibling within grace: %v", err)
		}
		// ...past it, it is a replay.
		clock.Advance(11 * time.Second)
		if _, _, err := m.Rotate(ctx, "p/p", t3); !errors.Is(err, session.ErrReused) {
			t.Fatalf("replaced sibling after grace: got %v, want ErrReused", err)
		}
	})

	t.Run("SiblingsAreBounded", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 0)
		s, t1, _ := m.Create(ctx, session.New{Policy: "p/p", User: "alice", TTL: time.Hour})
		_, _, _ = m.Rotate(ctx, "p/p", t1)
		var sib []string
		for range 6 { // more parallel requests than siblings are kept
			_, tok, err := m.Rotate(ctx, "p/p", t1)
			if err != nil {
				t.Fatalf("parallel rotation: %v", err)
			}
			sib = append(sib, tok)
		}
		// The oldest siblings were replaced (grace still running): they renew now,
		// and are replays past the grace period.
		clock.Advance(11 * time.Second)
		if _, _, err := m.Rotate(ctx, "p/p", sib[len(sib)-1]); err != nil {
			t.Fatalf("newest sibling: %v", err)
		}
		clock.Advance(11 * time.Second)
		if _, _, err := m.Rotate(ctx, "p/p", sib[0]); !errors.Is(err, session.ErrReused) {
			t.Fatalf("oldest sibling, replaced, after grace: got %v, want ErrReused", err)
		}
		if m.SessionAlive("p/p", s.ID) {
			t.Fatal("session alive after a replay")
		}
	})

	t.Run("RetiredAreBounded", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 0)
		s, tok, _ := m.Create(ctx, session.New{Policy: "p/p", User: "alice", TTL: time.Hour})
		toks := []string{tok}
		for range 20 {
			clock.Advance(time.Minute)
			_, next, err := m.Rotate(ctx, "p/p", toks[len(toks)-1])
			if err != nil {
				t.Fatal(err)
			}
			toks = append(toks, next)
		}
		// The first tokens are forgotten: unknown, not a replay.
		if _, _, err := m.Rotate(ctx, "p/p", toks[0]); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("forgotten token: got %v, want ErrInvalid", err)
		}
		if !m.SessionAlive("p/p", s.ID) {
			t.Fatal("a forgotten token ended the session")
		}
		// A remembered one is a replay.
		if _, _, err := m.Rotate(ctx, "p/p", toks[len(toks)-3]); !errors.Is(err, session.ErrReused) {
			t.Fatalf("replaced token: got %v, want ErrReused", err)
		}
		if _, _, err := m.Rotate(ctx, "p/p", toks[len(toks)-1]); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("live token of an ended session: got %v, want ErrInvalid", err)
		}
	})

	t.Run("ExpiryAndPolicy", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 0)
		s, tok, _ := m.Create(ctx, session.New{Policy: "a/a", User: "alice", TTL: time.Minute})
		if _, _, err := m.Rotate(ctx, "b/b", tok); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("token of another policy: got %v", err)
		}
		if _, err := m.EndByToken(ctx, "b/b", tok); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("sign-out with a token of another policy: got %v", err)
		}
		if m.SessionAlive("b/b", s.ID) {
			t.Fatal("session alive for another policy")
		}
		if !m.SessionAlive("a/a", s.ID) {
			t.Fatal("session not alive")
		}
		clock.Advance(time.Minute)
		if m.SessionAlive("a/a", s.ID) {
			t.Fatal("expired session alive")
		}
		if _, _, err := m.Rotate(ctx, "a/a", tok); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("expired token: got %v", err)
		}
		for _, bad := range []string{"", "x", "eyJhbGciOiJIUzI1NiJ9.e30.sig", tok + "A", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"} {
			if _, _, err := m.Rotate(ctx, "a/a", bad); !errors.Is(err, session.ErrInvalid) {
				t.Fatalf("%q: got %v", bad, err)
			}
			if _, err := m.EndByToken(ctx, "a/a", bad); !errors.Is(err, session.ErrInvalid) {
				t.Fatalf("%q: got %v", bad, err)
			}
		}
		if m.SessionAlive("a/a", "") || m.SessionAlive("", s.ID) {
			t.Fatal("empty names alive")
		}
	})

	t.Run("MaxPerUser", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 2)
		s1, t1, _ := m.Create(ctx, session.New{Policy: "a/a", User: "bob", TTL: time.Hour})
		s2, _, _ := m.Create(ctx, session.New{Policy: "a/a", User: "bob", TTL: time.Hour})
		s3, _, _ := m.Create(ctx, session.New{Policy: "a/a", User: "bob", TTL: time.Hour})
		o, _, _ := m.Create(ctx, session.New{Policy: "b/b", User: "bob", TTL: time.Hour})
		if m.SessionAlive("a/a", s1.ID) {
			t.Fatal("the oldest session of a user past MaxPerUser is still alive")
		}
		if _, _, err := m.Rotate(ctx, "a/a", t1); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("token of the session ended past MaxPerUser: %v", err)
		}
		if !m.SessionAlive("a/a", s2.ID) || !m.SessionAlive("a/a", s3.ID) || !m.SessionAlive("b/b", o.ID) {
			t.Fatal("a newer session, or one of another policy, ended")
		}
	})

	t.Run("UserSessions", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 0)
		l, ok := m.(session.SessionLister)
		if !ok {
			t.Fatalf("%T is not an session.SessionLister", m)
		}
		if got, err := l.UserSessions(ctx, "a/a", "alice"); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("no sessions: %v %v, want an empty list", got, err)
		}
		s1, _, _ := m.Create(ctx, session.New{Policy: "a/a", User: "alice", Roles: []string{"user"}, TTL: time.Hour})
		clock.Advance(time.Second)
		s2, tok2, _ := m.Create(ctx, session.New{Policy: "a/a", User: "alice", TTL: 2 * time.Hour})
		if _, _, err := m.Create(ctx, session.New{Policy: "a/a", User: "bob", TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.Create(ctx, session.New{Policy: "b/b", User: "alice", TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		r2, _, err := m.Rotate(ctx, "a/a", tok2)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.UserSessions(ctx, "a/a", "alice")
		if err != nil || len(got) != 2 || got[0].ID != s1.ID || got[1].ID != s2.ID {
			t.Fatalf("alice's sessions: %+v %v, want %s then %s", got, err, s1.ID, s2.ID)
		}
		if got[1].Rotations != 1 || !got[1].Expires.Equal(r2.Expires) || !slices.Equal(got[0].Roles, []string{"user"}) || got[0].User != "alice" {
			t.Fatalf("listed %+v: want the current state of each session", got)
		}
		clock.Advance(time.Hour) // s1 expires
		if got, _ := l.UserSessions(ctx, "a/a", "alice"); len(got) != 1 || got[0].ID != s2.ID {
			t.Fatalf("after s1 expired: %+v", got)
		}
		if _, err := m.EndUser(ctx, "a/a", "alice"); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.UserSessions(ctx, "a/a", "alice"); len(got) != 0 {
			t.Fatalf("after EndUser: %+v", got)
		}
	})

	t.Run("End", func(t *testing.T) {
		clock := newClock()
		m := mk(t, clock, 0)
		s1, tok1, _ := m.Create(ctx, session.New{Policy: "a/a", User: "alice", TTL: time.Hour})
		s2, tok2, _ := m.Create(ctx, session.New{Policy: "a/a", User: "alice", TTL: time.Hour})
		s3, _, _ := m.Create(ctx, session.New{Policy: "a/a", User: "bob", TTL: time.Hour})
		s4, _, _ := m.Create(ctx, session.New{Policy: "b/b", User: "alice", TTL: time.Hour})
		_, tok1b, _ := m.Rotate(ctx, "a/a", tok1)
		// Signing out with the token just replaced (a parallel tab) ends the session.
		if got, err := m.EndByToken(ctx, "a/a", tok1); err != nil || got.ID != s1.ID || got.User != "alice" {
			t.Fatalf("EndByToken: %+v %v", got, err)
		}
		if m.SessionAlive("a/a", s1.ID) {
			t.Fatal("session alive after sign-out")
		}
		if _, _, err := m.Rotate(ctx, "a/a", tok1b); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("token of a signed-out session: %v", err)
		}
		if _, err := m.EndByToken(ctx, "a/a", tok1b); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("second sign-out: %v", err)
		}
		if n, err := m.EndUser(ctx, "a/a", "alice"); err != nil || n != 1 || m.SessionAlive("a/a", s2.ID) {
			t.Fatalf("EndUser ended %d (%v)", n, err)
		}
		if _, _, err := m.Rotate(ctx, "a/a", tok2); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("token of an ended user: %v", err)
		}
		if !m.SessionAlive("a/a", s3.ID) || !m.SessionAlive("b/b", s4.ID) {
			t.Fatal("EndUser ended another user's session, or one of another policy")
		}
		if n, err := m.EndUser(ctx, "a/a", "alice"); err != nil || n != 0 {
			t.Fatalf("EndUser again: %d %v", n, err)
		}
		if err := m.End(ctx, "b/b", s3.ID); err != nil || !m.SessionAlive("a/a", s3.ID) {
			t.Fatalf("End with another policy ended the session (%v)", err)
		}
		if err := m.End(ctx, "a/a", s3.ID); err != nil || m.SessionAlive("a/a", s3.ID) {
			t.Fatalf("End: %v", err)
		}
		if err := m.End(ctx, "a/a", s3.ID); err != nil {
			t.Fatalf("ending an absent session: %v", err)
		}
	})
}
