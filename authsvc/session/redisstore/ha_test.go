package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/internal/testredis"
)

// The high-availability modes against real servers (internal/testredis):
// the conformance suite through Sentinel and on a Redis Cluster, ends
// acknowledged only once a replica holds them, and two stores of a cluster
// seeing each other's ends.

func newURLStore(t *testing.T, rawURL, prefix string, o Options) *Store {
	t.Helper()
	o.URL, o.KeyPrefix = rawURL, prefix
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if !st.Healthy() {
		t.Fatalf("store on %s is not subscribed after New", st.target)
	}
	return st
}

func TestSentinelStore(t *testing.T) {
	g := testredis.StartSentinel(t, 1)
	url := g.URL("wait_timeout=300ms")
	t.Run("Conformance", func(t *testing.T) {
		runConformance(t, func(t *testing.T, clock *fakeClock, maxPerUser int) session.Store {
			return newURLStore(t, url, uniquePrefix(t), Options{Now: clock.Now, MaxPerUser: maxPerUser})
		})
	})

	// With its only replica gone, an end is done on the master but not
	// acknowledged: the caller gets ErrUnavailable (503, try again), and so
	// does every try until a replica confirms, even the tries that find
	// nothing left to end.
	t.Run("NoReplicaNoAcknowledgement", func(t *testing.T) {
		prefix := uniquePrefix(t)
		st := newURLStore(t, url, prefix, Options{})
		s1, tok1, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "alice", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		s2, _, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "bob", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		_, tok3, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "carol", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// Acknowledged while the replica is there.
		if _, err := st.EndByToken(ctx, "shop/shop", tok3); err != nil {
			t.Fatalf("sign-out with a replica: %v", err)
		}

		g.Replicas[0].Kill()
		for try := range 2 {
			if _, err := st.EndByToken(ctx, "shop/shop", tok1); !errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("sign-out without a replica, try %d: got %v, want ErrUnavailable", try+1, err)
			}
			if err := st.End(ctx, "shop/shop", s2.ID); !errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("admin end without a replica, try %d: got %v, want ErrUnavailable", try+1, err)
			}
			if _, err := st.EndUser(ctx, "shop/shop", "alice"); !errors.Is(err, session.ErrUnavailable) {
				t.Fatalf("admin end of a user without a replica, try %d: got %v, want ErrUnavailable", try+1, err)
			}
		}
		// The master did end them: nothing refreshes.
		if _, _, err := st.Rotate(ctx, "shop/shop", tok1); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("refresh of the session ended without a replica: %v, want ErrInvalid", err)
		}
		if st.SessionAlive("shop/shop", s1.ID) || st.SessionAlive("shop/shop", s2.ID) {
			t.Fatal("a session ended without a replica is alive")
		}
		// Sign-in and refresh need no replica.
		_, tok4, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "dave", TTL: time.Hour})
		if err != nil {
			t.Fatalf("sign-in without a replica: %v", err)
		}
		if _, _, err := st.Rotate(ctx, "shop/shop", tok4); err != nil {
			t.Fatalf("refresh without a replica: %v", err)
		}
		// wait_replicas=0 turns the wait off.
		nowait := newURLStore(t, g.URL("wait_replicas=0"), prefix, Options{})
		if _, err := nowait.EndByToken(ctx, "shop/shop", tok1); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("wait_replicas=0, sign-out of an ended session: %v, want ErrInvalid", err)
		}
	})
}

func TestClusterStore(t *testing.T) {
	c := testredis.StartCluster(t, 3, 1)
	url := c.URL("")
	t.Run("Conformance", func(t *testing.T) {
		runConformance(t, func(t *testing.T, clock *fakeClock, maxPerUser int) session.Store {
			return newURLStore(t, url, uniquePrefix(t), Options{Now: clock.Now, MaxPerUser: maxPerUser})
		})
	})

	// Policies land in different slots, on different masters; each store's
	// subscription is on one node, and ends published on any master reach it.
	t.Run("EndsReachTheOtherStore", func(t *testing.T) {
		prefix := uniquePrefix(t)
		a := newURLStore(t, url, prefix, Options{})
		b := newURLStore(t, url, prefix, Options{})
		policies := []string{"shop/shop", "ns1/app", "ns2/admin", "team-a/portal", "team-b/api", "x/y"}
		nodes := map[string]bool{}
		for _, p := range policies {
			n, err := a.rdb.(*redis.ClusterClient).MasterForKey(ctx, a.prefix(p)+"s:x")
			if err != nil {
				t.Fatal(err)
			}
			nodes[n.Options().Addr] = true
		}
		if len(nodes) < 2 {
			t.Fatalf("the policies of the test all live on one master (%v): pick others", nodes)
		}
		for _, p := range policies {
			s, tok, err := a.Create(ctx, session.New{Policy: p, User: "alice", TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if !b.SessionAlive(p, s.ID) {
				t.Fatalf("%s: B does not see the session A created", p)
			}
			r, tok2, err := b.Rotate(ctx, p, tok)
			if err != nil || r.ID != s.ID {
				t.Fatalf("%s: refresh on B: %+v %v", p, r, err)
			}
			if _, err := b.EndByToken(ctx, p, tok2); err != nil {
				t.Fatalf("%s: sign-out on B: %v", p, err)
			}
			took := waitDead(t, a, p, s.ID)
			t.Logf("%s (master %s): sign-out on B refused by A's SessionAlive after %v", p, mustMaster(t, a, p), took)
		}
	})
}

func mustMaster(t *testing.T, st *Store, policy string) string {
	n, err := st.rdb.(*redis.ClusterClient).MasterForKey(ctx, st.prefix(policy)+"s:x")
	if err != nil {
		t.Fatal(err)
	}
	return n.Options().Addr
}

// TestSentinelFailover SIGKILLs the master of a Sentinel group (two replicas,
// three sentinels) under a load of sign-ins and renewals through the store,
// and logs the figures: how long sign-in and renewal failed, how many
// attempts failed (all with ErrUnavailable: 503), how many sessions
// replicated before the kill were lost (want 0). A sign-out acknowledged just
// before the kill stays ended: its token is refused through the new master,
// and a store that never saw it (strict revocation's check) finds the session
// over.
func TestSentinelFailover(t *testing.T) {
	g := testredis.StartSentinel(t, 2)
	url := g.URL("")
	prefix := uniquePrefix(t)
	st := newURLStore(t, url, prefix, Options{})
	const n = 12
	type sess struct {
		id, tok string
	}
	var before []sess
	for i := range n {
		s, tok, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "user" + string(rune('a'+i)), TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, sess{s.ID, tok})
	}
	leaver, leaverTok, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "leaver", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, chain, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "chainer", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	testredis.WaitReplicated(t, g.Master, 2)
	if _, err := st.EndByToken(ctx, "shop/shop", leaverTok); err != nil {
		t.Fatalf("sign-out before the kill: %v", err)
	}
	killAt := time.Now()
	g.Master.Kill()

	var signInFails, renewFails, signIns, renews, chainsLost int
	var signInBack, renewBack time.Time
	other := map[int]int{}
	for signInBack.IsZero() || renewBack.IsZero() {
		if time.Since(killAt) > 60*time.Second {
			t.Fatalf("sign-in or renewal not back within 60 s of the kill (sentinels name %s)", g.MasterAddr(t))
		}
		if signInBack.IsZero() {
			signIns++
			_, _, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "loader", TTL: time.Hour})
			switch {
			case err == nil:
				signInBack = time.Now()
			case errors.Is(err, session.ErrUnavailable):
				signInFails++
			default:
				other[1]++
				t.Errorf("sign-in during the failover: %v, want ErrUnavailable", err)
			}
		}
		if renewBack.IsZero() {
			renews++
			_, next, err := st.Rotate(ctx, "shop/shop", chain)
			switch {
			case err == nil:
				chain, renewBack = next, time.Now()
			case errors.Is(err, session.ErrUnavailable):
				renewFails++
			case errors.Is(err, session.ErrInvalid):
				chainsLost++
				t.Errorf("the renewal chain, replicated before the kill, is unknown after it")
				_, chain, _ = st.Create(ctx, session.New{Policy: "shop/shop", User: "chainer", TTL: time.Hour})
			default:
				t.Errorf("renewal during the failover: %v", err)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	newMaster := g.MasterAddr(t)
	if newMaster == g.Master.Addr() {
		t.Fatalf("the sentinels still name the killed master")
	}
	lost := 0
	for i, s := range before {
		if _, _, err := st.Rotate(ctx, "shop/shop", s.tok); err != nil {
			lost++
			t.Errorf("session %d, replicated before the kill: renewal after the failover: %v", i, err)
		}
	}
	if _, _, err := st.Rotate(ctx, "shop/shop", leaverTok); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("the session signed out just before the kill renews after the failover: %v, want ErrInvalid", err)
	}
	fresh := newURLStore(t, url, prefix, Options{})
	if fresh.SessionAlive("shop/shop", leaver.ID) {
		t.Fatal("a store started after the failover finds the session signed out before it alive")
	}
	if !fresh.SessionAlive("shop/shop", before[0].id) {
		t.Fatal("a store started after the failover finds a live session over")
	}
	t.Logf("FAILOVER FIGURES (store level, one attempt every ~20 ms): sign-in failed for %.2f s after the SIGKILL (%d of %d attempts, all ErrUnavailable = 503); "+
		"renewal for %.2f s (%d of %d); sessions lost: %d of %d replicated before the kill, renewal chains broken: %d; "+
		"the sign-out acknowledged just before the kill stayed ended; new master %s",
		signInBack.Sub(killAt).Seconds(), signInFails, signIns, renewBack.Sub(killAt).Seconds(), renewFails, renews,
		lost, n, chainsLost, newMaster)
}
