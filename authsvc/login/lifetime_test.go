package login

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/authsvc/session/redisstore"
)

// sessionStores runs a test over the in-memory store and the Redis store.
func sessionStores(t *testing.T, run func(t *testing.T, stores func(*session.Memory, *fakeClock) session.Store)) {
	t.Run("memory", func(t *testing.T) { run(t, nil) })
	t.Run("redis", func(t *testing.T) {
		url := startRedis(t)
		run(t, func(_ *session.Memory, clock *fakeClock) session.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := redisstore.New(ctx, redisstore.Options{URL: url, KeyPrefix: "jwtgate-lifetime-test:", Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			return st
		})
	})
}

func refreshJSON(hs *harness, c *http.Client, token string) (int, tokenAnswer) {
	resp, body := hs.do(c, http.MethodPost, RefreshPath, strings.NewReader(`{"refresh_token":"`+token+`"}`), jsonHeaders())
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, tokenAnswer{}
	}
	return resp.StatusCode, decodeTokens(hs.t, body)
}

// Renewal does not slide forever: past spec.login.sessionMaxLifetime (counted
// from the sign-in) a refresh is refused and the session ends, however often
// it was renewed.
func TestSessionMaxLifetime(t *testing.T) {
	sessionStores(t, func(t *testing.T, stores func(*session.Memory, *fakeClock) session.Store) {
		hs := newHarness(t, harnessConfig{sessions: stores, policy: func(ap *v1alpha1.AuthPolicy) {
			ap.Spec.Login.RefreshTokenTTL = &metav1.Duration{Duration: time.Hour}
			ap.Spec.Login.SessionMaxLifetime = &metav1.Duration{Duration: 2 * time.Hour}
		}})
		c := hs.browser()
		_, body := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"alice","password":"`+alicePW+`"}`), jsonHeaders())
		tok := decodeTokens(t, body)
		sid := sidOf(t, hs, tok.AccessToken)
		for i := range 2 { // at 50 and 100 minutes: renewed
			hs.clock.Advance(50 * time.Minute)
			code, next := refreshJSON(hs, c, tok.RefreshToken)
			if code != http.StatusOK {
				t.Fatalf("refresh %d within the lifetime: %d", i+1, code)
			}
			tok = next
		}
		hs.clock.Advance(30 * time.Minute) // 130 minutes after sign-in; the refresh token is still valid
		if code, _ := refreshJSON(hs, c, tok.RefreshToken); code != http.StatusUnauthorized {
			t.Fatalf("refresh past sessionMaxLifetime: %d, want 401", code)
		}
		if hs.used.SessionAlive("shop/shop", sid) {
			t.Error("the session outlived sessionMaxLifetime")
		}
	})
}

// The default lifetime is 720h and a policy says so.
func TestSessionMaxLifetimeDefault(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	if got := hs.store.Current("shop/shop").Login.SessionMaxLifetime; got != 720*time.Hour {
		t.Errorf("default sessionMaxLifetime %s, want 720h", got)
	}
}

// A changed password ends the user's sessions at their next refresh; other
// users, and a users file reloaded without changing that hash, keep theirs.
// The session keeps a fingerprint of the hash, never the hash.
func TestPasswordChangeEndsSessions(t *testing.T) {
	sessionStores(t, func(t *testing.T, stores func(*session.Memory, *fakeClock) session.Store) {
		hs := newHarness(t, harnessConfig{sessions: stores})
		aliceHash, bobHash := hashAt(t, alicePW, 4), hashAt(t, "bob-password", 4)
		hs.setUsers("alice:" + aliceHash + ":admin,user\nbob:" + bobHash + ":user\n")
		signIn := func(user, pw string) tokenAnswer {
			_, body := hs.do(hs.browser(), http.MethodPost, LoginPath, strings.NewReader(`{"username":"`+user+`","password":"`+pw+`"}`), jsonHeaders())
			return decodeTokens(t, body)
		}
		alice, bob := signIn("alice", alicePW), signIn("bob", "bob-password")
		sid := sidOf(t, hs, alice.AccessToken)
		// Reloaded unchanged: both renew.
		hs.setUsers("# reloaded\nalice:" + aliceHash + ":admin,user\nbob:" + bobHash + ":user\n")
		var code int
		if code, alice = refreshJSON(hs, hs.browser(), alice.RefreshToken); code != http.StatusOK {
			t.Fatalf("alice after an unchanged reload: %d", code)
		}
		if code, bob = refreshJSON(hs, hs.browser(), bob.RefreshToken); code != http.StatusOK {
			t.Fatalf("bob after an unchanged reload: %d", code)
		}
		// alice's password changes (a new hash, same roles): her session ends.
		hs.setUsers("alice:" + hashAt(t, "a new password", 4) + ":admin,user\nbob:" + bobHash + ":user\n")
		if code, _ := refreshJSON(hs, hs.browser(), alice.RefreshToken); code != http.StatusUnauthorized {
			t.Fatalf("alice's refresh after her password changed: %d, want 401", code)
		}
		if hs.used.SessionAlive("shop/shop", sid) {
			t.Error("alice's session is alive after her password changed")
		}
		if code, _ := refreshJSON(hs, hs.browser(), bob.RefreshToken); code != http.StatusOK {
			t.Errorf("bob's refresh after alice's password changed: %d, want 200", code)
		}
		if strings.Contains(hs.logs.String(), aliceHash) || strings.Contains(hs.logs.String(), aliceHash[7:29]) {
			t.Error("a log line holds alice's hash")
		}
	})
}
