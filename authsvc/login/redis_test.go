package login

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/authsvc/session/redisstore"
)

// startRedis starts a redis-server of this test on a free loopback port
// (as redisstore's tests do) and returns its URL; it stops at the test's end.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is needed by this test and was not found: install it with\n\tsudo apt-get install -y redis-server\n(%v)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
		"--dir", dir, "--logfile", "", "--loglevel", "warning")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = fmt.Fprint(c, "PING\r\n")
			buf := make([]byte, 7)
			n, _ := c.Read(buf)
			_ = c.Close()
			if strings.HasPrefix(string(buf[:n]), "+PONG") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer within 10 s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "redis://" + addr + "/0"
}

// TestFlowOverRedis runs the sign-in pages over the real Redis store, which
// also keeps the token records: sign-in, refresh, sign-out, and the tokens of
// the ended session refused; then a replayed token ending a session.
func TestFlowOverRedis(t *testing.T) {
	url := startRedis(t)
	var st *redisstore.Store
	hs := newHarness(t, harnessConfig{
		sessions: func(_ *session.Memory, clock *fakeClock) session.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			st, err = redisstore.New(ctx, redisstore.Options{URL: url, KeyPrefix: "jwtgate-login-test:", Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		},
		records: func(s session.Store, _ *fakeClock, log *slog.Logger) session.Records {
			// The Redis store keeps the records; its audit lines go to its own
			// Logger (nil here), so the harness's log holds the handler's lines.
			return s.(*redisstore.Store)
		},
	})
	ctx := context.Background()
	b := hs.browser()

	// Sign in with the form.
	_, page := hs.do(b, http.MethodGet, LoginPath, nil, nil)
	resp, _ := hs.do(b, http.MethodPost, LoginPath, formBody("username", "alice", "password", alicePW, "rd", "/", "jwtgate_csrf", formCSRF(t, page)), formHeader)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	first := cookieOf(b, "/jwtgate/", "jwtgate_refresh")
	sid := sidOf(t, hs, cookieOf(b, "/", "jwtgate_access"))
	if !st.SessionAlive("shop/shop", sid) {
		t.Fatal("the session is not in Redis")
	}

	// Refresh: new cookies, the session extended in Redis. (The decisions
	// below run on the real clock, so the harness's clock stays put until they
	// are done: a token issued "in the future" would be refused for that.)
	if resp, _ := hs.do(b, http.MethodPost, RefreshPath, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("refresh: %d", resp.StatusCode)
	}
	second := cookieOf(b, "/jwtgate/", "jwtgate_refresh")
	access := cookieOf(b, "/", "jwtgate_access")
	if second == first {
		t.Fatal("refresh did not rotate the refresh token")
	}
	if rec := hs.decide("/admin/", http.Header{"Cookie": {"jwtgate_access=" + access}}); rec.Code != 200 {
		t.Fatalf("decision with the renewed token (strict, over Redis): %d %v", rec.Code, rec.Header())
	}

	// Sign out: the session leaves Redis; its access token is refused (strict),
	// and neither refresh token renews any more.
	resp, page = hs.do(b, http.MethodPost, LogoutPath, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(page, "signed out") {
		t.Fatalf("sign-out: %d\n%s", resp.StatusCode, page)
	}
	if st.SessionAlive("shop/shop", sid) {
		t.Fatalf("the session is alive in Redis after sign-out\n%s", hs.logs.String())
	}
	if rec := hs.decide("/", http.Header{"Cookie": {"jwtgate_access=" + access}}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("access token of the signed-out session: %d", rec.Code)
	}
	hs.clock.Advance(time.Minute)
	for _, tok := range []string{second, first} {
		resp, _ := hs.do(hs.browser(), http.MethodPost, RefreshPath, nil, map[string]string{"Cookie": "jwtgate_refresh=" + tok})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("replayed refresh token after sign-out: %d, want 401", resp.StatusCode)
		}
		if a := setCookie(resp, "jwtgate_access"); a != nil && a.Value != "" {
			t.Fatal("a replayed refresh token got an access token")
		}
	}
	checkEvents(t, eventsOf(t, hs, "alice"), "alice", sid,
		wantEvent{session.EventIssued, session.ByUser, ""},
		wantEvent{session.EventRefreshed, session.ByUser, ""},
		wantEvent{session.EventRevoked, session.ByUser, "sign-out"},
	)

	// bob, over the JSON API: a token replayed past the grace period ends his
	// session in Redis, and the records name him and the session.
	c := hs.browser()
	_, body := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"bob","password":"bob-password"}`), jsonHeaders())
	a := decodeTokens(t, body)
	bsid := sidOf(t, hs, a.AccessToken)
	refresh := func(tok string) int {
		resp, _ := hs.do(c, http.MethodPost, RefreshPath, strings.NewReader(`{"refresh_token":"`+tok+`"}`), jsonHeaders())
		return resp.StatusCode
	}
	if code := refresh(a.RefreshToken); code != 200 {
		t.Fatalf("bob's refresh: %d", code)
	}
	hs.clock.Advance(11 * time.Second)
	if code := refresh(a.RefreshToken); code != http.StatusUnauthorized {
		t.Fatalf("replay past the grace: %d, want 401", code)
	}
	if st.SessionAlive("shop/shop", bsid) {
		t.Fatal("bob's session survived the replay")
	}
	checkEvents(t, eventsOf(t, hs, "bob"), "bob", bsid,
		wantEvent{session.EventIssued, session.ByUser, ""},
		wantEvent{session.EventRefreshed, session.ByUser, ""},
		wantEvent{session.EventRefused, session.BySystem, "refresh token reused"},
		wantEvent{session.EventRevoked, session.BySystem, "refresh token reused"},
	)
	rec, err := st.UserRecord(ctx, "shop/shop", "bob")
	if err != nil || len(rec.Sessions) != 1 || rec.Sessions[0].Alive || rec.Sessions[0].EndedBy != session.BySystem {
		t.Fatalf("bob's record: %+v %v", rec.Sessions, err)
	}
}
