package redisstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/admin"
	"github.com/jwtgate/jwtgate/authsvc/session"
)

// Two stores sharing one Redis are two replicas of jwtgate.

const propagation = time.Second // an end must reach every replica within this

// waitDead polls SessionAlive until it says false, and returns how long it took.
func waitDead(t *testing.T, st *Store, policy, sid string) time.Duration {
	t.Helper()
	start := time.Now()
	for st.SessionAlive(policy, sid) {
		if time.Since(start) > propagation {
			t.Fatalf("session %s still alive on the other replica after %v", sid, propagation)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

func TestReplicasLogoutPropagates(t *testing.T) {
	srv := sharedRedis(t)
	prefix := uniquePrefix(t)
	a := newTestStore(t, srv, prefix, Options{})
	b := newTestStore(t, srv, prefix, Options{})

	s, t1, err := a.Create(ctx, session.New{Policy: "shop/shop", User: "alice", Roles: []string{"user"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !b.SessionAlive("shop/shop", s.ID) {
		t.Fatal("B does not see the session A created")
	}
	r, t2, err := b.Rotate(ctx, "shop/shop", t1)
	if err != nil || r.ID != s.ID || r.Rotations != 1 {
		t.Fatalf("rotation on B: %+v %v", r, err)
	}
	// SessionAlive on B now answers from its cache, without Redis.
	before := commandsProcessed(t, srv)
	for range 1000 {
		if !b.SessionAlive("shop/shop", s.ID) {
			t.Fatal("session not alive on B")
		}
	}
	if n := commandsProcessed(t, srv) - before; n > 5 {
		t.Fatalf("1000 SessionAlive calls of a known session made %d Redis commands", n)
	}

	// Sign-out on A with the token B issued.
	if got, err := a.EndByToken(ctx, "shop/shop", t2); err != nil || got.ID != s.ID {
		t.Fatalf("sign-out on A: %+v %v", got, err)
	}
	if a.SessionAlive("shop/shop", s.ID) {
		t.Fatal("A still sees the session it ended")
	}
	took := waitDead(t, b, "shop/shop", s.ID)
	t.Logf("sign-out on A refused by B's SessionAlive after %v", took)
	if _, _, err := b.Rotate(ctx, "shop/shop", t2); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("refresh on B after sign-out on A: got %v, want ErrInvalid", err)
	}
	if _, _, err := b.Rotate(ctx, "shop/shop", t1); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("old token on B after sign-out on A: got %v, want ErrInvalid", err)
	}
}

// commandsProcessed reads the server's command counter.
func commandsProcessed(t *testing.T, srv *redisServer) int {
	t.Helper()
	info, err := srv.do("INFO", "stats")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("no total_commands_processed in INFO")
	return 0
}

func TestReplicasRotationRace(t *testing.T) {
	srv := sharedRedis(t)
	prefix := uniquePrefix(t)
	const grace = 500 * time.Millisecond
	a := newTestStore(t, srv, prefix, Options{Grace: grace})
	b := newTestStore(t, srv, prefix, Options{Grace: grace})

	for round := range 20 {
		s, t1, err := a.Create(ctx, session.New{Policy: "p/p", User: "alice", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		// Two tabs, one on each replica, refresh with the same token at once.
		var wg sync.WaitGroup
		var got [2]string
		var errs [2]error
		start := make(chan struct{})
		for i, st := range []*Store{a, b} {
			wg.Go(func() {
				<-start
				_, got[i], errs[i] = st.Rotate(ctx, "p/p", t1)
			})
		}
		close(start)
		wg.Wait()
		for i := range 2 {
			if errs[i] != nil {
				t.Fatalf("round %d: parallel rotation %d: %v", round, i, errs[i])
			}
		}
		if got[0] == got[1] {
			t.Fatalf("round %d: both rotations returned the same token", round)
		}
		// Whichever answer the browser kept renews.
		if _, _, err := b.Rotate(ctx, "p/p", got[round%2]); err != nil {
			t.Fatalf("round %d: renewing with a sibling: %v", round, err)
		}
		if round < 19 {
			continue
		}
		// Later, the first token comes back: a replay ends the session everywhere.
		time.Sleep(grace + 50*time.Millisecond)
		if _, _, err := a.Rotate(ctx, "p/p", t1); !errors.Is(err, session.ErrReused) {
			t.Fatalf("reuse after grace: got %v, want ErrReused", err)
		}
		t.Logf("reuse on A refused by B's SessionAlive after %v", waitDead(t, b, "p/p", s.ID))
		if _, _, err := b.Rotate(ctx, "p/p", got[(round+1)%2]); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("sibling after the session ended: %v", err)
		}
	}
}

func TestReplicasAdminEndsUser(t *testing.T) {
	srv := sharedRedis(t)
	prefix := uniquePrefix(t)
	a := newTestStore(t, srv, prefix, Options{})
	b := newTestStore(t, srv, prefix, Options{})
	token := []byte("0123456789abcdef-admin")
	h := &admin.Handler{Store: a, Records: a, Token: token}
	api := httptest.NewServer(h)
	defer api.Close()

	type sess struct {
		s     session.Session
		token string
	}
	var alice []sess
	for _, st := range []*Store{a, a, b} {
		s, tok, err := st.Create(ctx, session.New{Policy: "shop/shop", User: "alice", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Record(ctx, session.Event{Kind: session.EventIssued, Policy: "shop/shop", User: "alice", Session: s.ID, By: session.ByUser, Client: "192.0.2.7", Expires: s.Expires}); err != nil {
			t.Fatal(err)
		}
		alice = append(alice, sess{s, tok})
	}
	bob, _, _ := b.Create(ctx, session.New{Policy: "shop/shop", User: "bob", TTL: time.Hour})
	other, _, _ := b.Create(ctx, session.New{Policy: "other/app", User: "alice", TTL: time.Hour})
	// A refresh on B, recorded as the login handler does.
	r, tok, err := b.Rotate(ctx, "shop/shop", alice[0].token)
	if err != nil {
		t.Fatal(err)
	}
	alice[0].token = tok
	if err := b.Record(ctx, session.Event{Kind: session.EventRefreshed, Policy: "shop/shop", User: "alice", Session: r.ID, By: session.ByUser, Expires: r.Expires}); err != nil {
		t.Fatal(err)
	}
	for _, x := range alice {
		if !a.SessionAlive("shop/shop", x.s.ID) || !b.SessionAlive("shop/shop", x.s.ID) {
			t.Fatal("session not alive before the revocation")
		}
	}

	post := func(auth, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, api.URL+"/admin/revoke", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return resp, buf.Bytes()
	}
	body := `{"policy":"shop/shop","sub":"alice"}`
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + string(token), "Bearer " + string(token) + "x"} {
		if resp, _ := post(auth, body); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: %d, want 401", auth, resp.StatusCode)
		}
	}
	if !b.SessionAlive("shop/shop", alice[0].s.ID) {
		t.Fatal("a refused request ended a session")
	}

	resp, out := post("Bearer "+string(token), body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, out)
	}
	var res admin.RevokeResult
	if err := json.Unmarshal(out, &res); err != nil || res.Ended != 3 || res.User != "alice" {
		t.Fatalf("revoke answered %s (%v)", out, err)
	}
	for _, x := range alice {
		if a.SessionAlive("shop/shop", x.s.ID) {
			t.Fatal("A still sees a revoked session")
		}
		t.Logf("admin revocation refused by B after %v", waitDead(t, b, "shop/shop", x.s.ID))
		if _, _, err := b.Rotate(ctx, "shop/shop", x.token); !errors.Is(err, session.ErrInvalid) {
			t.Fatalf("refresh of a revoked session: %v", err)
		}
	}
	if !a.SessionAlive("shop/shop", bob.ID) || !a.SessionAlive("other/app", other.ID) {
		t.Fatal("the revocation ended another user's session, or one of another policy")
	}

	// The record shows the sessions and their events.
	c := &admin.Client{URL: api.URL, Token: token}
	rec, err := c.Tokens(ctx, "shop/shop", "alice")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range rec.Events {
		kinds[e.Kind]++
	}
	if kinds[session.EventIssued] != 3 || kinds[session.EventRefreshed] != 1 || kinds[session.EventRevoked] != 1 {
		t.Fatalf("events %v", kinds)
	}
	if len(rec.Sessions) != 3 {
		t.Fatalf("%d sessions in the record, want 3: %+v", len(rec.Sessions), rec.Sessions)
	}
	for _, sr := range rec.Sessions {
		if sr.Alive || sr.Ended.IsZero() || !strings.HasPrefix(sr.EndedBy, session.ByAdmin) || sr.Issued.IsZero() || sr.LastUsed.IsZero() {
			t.Fatalf("session record %+v", sr)
		}
		if sr.ID == alice[0].s.ID && sr.Refreshes != 1 {
			t.Fatalf("refreshed session record %+v", sr)
		}
	}

	// One session, with the CLI's client.
	s, _, _ := b.Create(ctx, session.New{Policy: "shop/shop", User: "alice", TTL: time.Hour})
	if err := a.Record(ctx, session.Event{Kind: session.EventIssued, Policy: "shop/shop", User: "alice", Session: s.ID, By: session.ByUser}); err != nil {
		t.Fatal(err)
	}
	one, err := c.Revoke(ctx, admin.RevokeRequest{Policy: "shop/shop", Session: s.ID, By: "jane"})
	if err != nil || one.Ended != 1 {
		t.Fatalf("revoke one session: %+v %v", one, err)
	}
	waitDead(t, b, "shop/shop", s.ID)
	rec, _ = c.Tokens(ctx, "shop/shop", "alice")
	if e := rec.Events[0]; e.Kind != session.EventRevoked || e.Session != s.ID || e.By != "admin:jane" || e.User != "alice" {
		t.Fatalf("newest event %+v", e)
	}
	if !a.SessionAlive("shop/shop", bob.ID) {
		t.Fatal("bob's session ended")
	}
}
