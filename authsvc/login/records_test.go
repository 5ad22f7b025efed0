package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

// memoryRecords keeps the records in this process, writing audit lines to the
// harness's log, with the harness's clock.
func memoryRecords(s session.Store, clock *fakeClock, log *slog.Logger) session.Records {
	return &session.MemoryRecords{Log: log, Sessions: s, Now: clock.Now}
}

// eventsOf returns the records of a user, oldest first.
func eventsOf(t *testing.T, hs *harness, user string) []session.Event {
	t.Helper()
	rec, err := hs.records.UserRecord(context.Background(), "shop/shop", user)
	if err != nil {
		t.Fatal(err)
	}
	ev := rec.Events // newest first
	out := make([]session.Event, len(ev))
	for i, e := range ev {
		out[len(ev)-1-i] = e
	}
	return out
}

// auditLines returns the audit lines of the log ("audit":"token").
func auditLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if m["audit"] == "token" {
			out = append(out, m)
		}
	}
	return out
}

type wantEvent struct{ kind, by, reason string }

func checkEvents(t *testing.T, got []session.Event, user, sid string, want ...wantEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i, w := range want {
		e := got[i]
		if e.Kind != w.kind || e.By != w.by || e.Reason != w.reason || e.Policy != "shop/shop" || e.User != user || e.Session != sid {
			t.Errorf("event %d: %+v, want %s by %s (%q) of %s session %s", i, e, w.kind, w.by, w.reason, user, sid)
		}
		if e.Time.IsZero() || e.Client == "" {
			t.Errorf("event %d: %+v lacks its time or client", i, e)
		}
		if (e.Kind == session.EventIssued || e.Kind == session.EventRefreshed) && e.Expires.IsZero() {
			t.Errorf("event %d: %+v lacks the refresh token's end", i, e)
		}
	}
}

// sidOf is the session id of an access token (its sid claim).
func sidOf(t *testing.T, hs *harness, access string) string {
	t.Helper()
	sid, _ := hs.verifyWithOtherLibrary(access)["sid"].(string)
	if sid == "" {
		t.Fatal("access token without sid")
	}
	return sid
}

func TestTokenRecords(t *testing.T) {
	hs := newHarness(t, harnessConfig{records: memoryRecords})

	// Browser: sign-in, refresh, silent renewal, sign-out.
	b := hs.browser()
	_, page := hs.do(b, http.MethodGet, LoginPath, nil, nil)
	resp, _ := hs.do(b, http.MethodPost, LoginPath, formBody("username", "alice", "password", alicePW, "rd", "/", "jwtgate_csrf", formCSRF(t, page)), formHeader)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	sid := sidOf(t, hs, cookieOf(b, "/", "jwtgate_access"))
	issued := eventsOf(t, hs, "alice")
	checkEvents(t, issued, "alice", sid, wantEvent{session.EventIssued, session.ByUser, ""})
	if want := hs.clock.Now().Add(336 * time.Hour); !issued[0].Expires.Equal(want) {
		t.Errorf("issued: expires %v, want the refresh token's end %v", issued[0].Expires, want)
	}
	hs.clock.Advance(time.Minute)
	if resp, _ := hs.do(b, http.MethodPost, RefreshPath, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("refresh: %d", resp.StatusCode)
	}
	hs.clock.Advance(time.Minute)
	if resp, _ := hs.do(b, http.MethodGet, LoginPath+"?rd=/x", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("silent renewal: %d", resp.StatusCode)
	}
	if resp, _ := hs.do(b, http.MethodPost, LogoutPath, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	ev := eventsOf(t, hs, "alice")
	checkEvents(t, ev, "alice", sid,
		wantEvent{session.EventIssued, session.ByUser, ""},
		wantEvent{session.EventRefreshed, session.ByUser, ""},
		wantEvent{session.EventRefreshed, session.ByUser, ""},
		wantEvent{session.EventRevoked, session.ByUser, "sign-out"},
	)
	if want := hs.clock.Now().Add(336 * time.Hour); !ev[2].Expires.Equal(want) {
		t.Errorf("refreshed: expires %v, want the new refresh token's end %v", ev[2].Expires, want)
	}
	rec, _ := hs.records.UserRecord(context.Background(), "shop/shop", "alice")
	if len(rec.Sessions) != 1 || rec.Sessions[0].Alive || rec.Sessions[0].Refreshes != 2 || rec.Sessions[0].EndedBy != session.ByUser || rec.Sessions[0].EndReason != "sign-out" {
		t.Errorf("alice's record after sign-out: %+v", rec.Sessions)
	}

	// API client (bob): sign-in, refresh, then the first token replayed past the
	// grace period: refused, and the session revoked by jwtgate.
	c := hs.browser()
	_, body := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"bob","password":"bob-password"}`), jsonHeaders())
	first := decodeTokens(t, body)
	bsid := sidOf(t, hs, first.AccessToken)
	refresh := func(tok string) int {
		resp, _ := hs.do(c, http.MethodPost, RefreshPath, strings.NewReader(`{"refresh_token":"`+tok+`"}`), jsonHeaders())
		return resp.StatusCode
	}
	if code := refresh(first.RefreshToken); code != 200 {
		t.Fatalf("refresh: %d", code)
	}
	hs.clock.Advance(11 * time.Second)
	if code := refresh(first.RefreshToken); code != http.StatusUnauthorized {
		t.Fatalf("replay after the grace: %d", code)
	}
	checkEvents(t, eventsOf(t, hs, "bob"), "bob", bsid,
		wantEvent{session.EventIssued, session.ByUser, ""},
		wantEvent{session.EventRefreshed, session.ByUser, ""},
		wantEvent{session.EventRefused, session.BySystem, "refresh token reused"},
		wantEvent{session.EventRevoked, session.BySystem, "refresh token reused"},
	)
	// An unknown token leaves no record (it names nobody).
	if code := refresh(strings.Repeat("A", 43)); code != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d", code)
	}
	if n := len(eventsOf(t, hs, "bob")); n != 4 {
		t.Fatalf("%d events of bob after an unknown token, want 4", n)
	}

	// Each event wrote exactly one audit line: the records write it, the
	// handler does not write another.
	lines := auditLines(t, hs.logs.String())
	if len(lines) != 8 {
		t.Fatalf("%d audit lines, want 8 (one per event):\n%s", len(lines), hs.logs.String())
	}
	for _, l := range lines {
		for _, never := range []string{first.RefreshToken, first.AccessToken} {
			if strings.Contains(fmt.Sprint(l), never) {
				t.Fatalf("audit line holds a token: %v", l)
			}
		}
	}
}

func TestTokenRecordsUserRemoved(t *testing.T) {
	hs := newHarness(t, harnessConfig{records: memoryRecords})
	c := hs.browser()
	_, body := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"bob","password":"bob-password"}`), jsonHeaders())
	a := decodeTokens(t, body)
	sid := sidOf(t, hs, a.AccessToken)
	// bob leaves the users file: his next refresh ends the session.
	hs.setUsers("alice:" + hashAt(t, alicePW, 4) + ":admin,user\n")
	resp, _ := hs.do(c, http.MethodPost, RefreshPath, strings.NewReader(`{"refresh_token":"`+a.RefreshToken+`"}`), jsonHeaders())
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("refresh of a removed user: %d", resp.StatusCode)
	}
	if hs.sessions.SessionAlive("shop/shop", sid) {
		t.Fatal("the session of a removed user is alive")
	}
	ev := eventsOf(t, hs, "bob")
	checkEvents(t, ev, "bob", sid,
		wantEvent{session.EventIssued, session.ByUser, ""},
		wantEvent{session.EventRevoked, session.BySystem, ev[len(ev)-1].Reason},
	)
	if ev[1].Reason == "" {
		t.Error("the revocation of a removed user's session gives no reason")
	}
}

// failingRecords fails every record after writing nothing.
type failingRecords struct{ session.MemoryRecords }

func (*failingRecords) Record(context.Context, session.Event) error {
	return fmt.Errorf("%w: test", session.ErrUnavailable)
}

func TestRecordFailureDoesNotFailRequests(t *testing.T) {
	hs := newHarness(t, harnessConfig{records: func(session.Store, *fakeClock, *slog.Logger) session.Records { return &failingRecords{} }})
	c := hs.browser()
	resp, body := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"alice","password":"`+alicePW+`"}`), jsonHeaders())
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in with records failing: %d %s", resp.StatusCode, body)
	}
	a := decodeTokens(t, body)
	if resp, _ := hs.do(c, http.MethodPost, RefreshPath, strings.NewReader(`{"refresh_token":"`+a.RefreshToken+`"}`), jsonHeaders()); resp.StatusCode != 200 {
		t.Fatalf("refresh with records failing: %d", resp.StatusCode)
	}
	if n := strings.Count(hs.logs.String(), "cannot keep a token record"); n != 2 {
		t.Fatalf("%d warnings about records, want 2:\n%s", n, hs.logs.String())
	}
}

// outageStore is session.Memory behind a switch: while down, every operation
// that needs the store fails with session.ErrUnavailable and changes nothing,
// as the Redis store does when Redis is away.
type outageStore struct {
	*session.Memory
	down atomic.Bool
}

func (o *outageStore) fail() error {
	return fmt.Errorf("%w: redis rotate: dial tcp 10.0.0.7:6379: connect: connection refused", session.ErrUnavailable)
}

func (o *outageStore) Create(ctx context.Context, n session.New) (session.Session, string, error) {
	if o.down.Load() {
		return session.Session{}, "", o.fail()
	}
	return o.Memory.Create(ctx, n)
}

func (o *outageStore) Rotate(ctx context.Context, policy, tok string) (session.Session, string, error) {
	if o.down.Load() {
		return session.Session{}, "", o.fail()
	}
	return o.Memory.Rotate(ctx, policy, tok)
}

func (o *outageStore) EndByToken(ctx context.Context, policy, tok string) (session.Session, error) {
	if o.down.Load() {
		return session.Session{}, o.fail()
	}
	return o.Memory.EndByToken(ctx, policy, tok)
}

func (o *outageStore) End(ctx context.Context, policy, id string) error {
	if o.down.Load() {
		return o.fail()
	}
	return o.Memory.End(ctx, policy, id)
}

func (o *outageStore) EndUser(ctx context.Context, policy, user string) (int, error) {
	if o.down.Load() {
		return 0, o.fail()
	}
	return o.Memory.EndUser(ctx, policy, user)
}

func TestStoreUnavailable(t *testing.T) {
	var st *outageStore
	hs := newHarness(t, harnessConfig{
		sessions: func(m *session.Memory, _ *fakeClock) session.Store { st = &outageStore{Memory: m}; return st },
		records:  memoryRecords,
	})
	b := hs.browser()
	_, page := hs.do(b, http.MethodGet, LoginPath, nil, nil)
	csrf := formCSRF(t, page)
	if resp, _ := hs.do(b, http.MethodPost, LoginPath, formBody("username", "alice", "password", alicePW, "rd", "/", "jwtgate_csrf", csrf), formHeader); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	access, refresh := cookieOf(b, "/", "jwtgate_access"), cookieOf(b, "/jwtgate/", "jwtgate_refresh")
	sid := sidOf(t, hs, access)

	is503 := func(what string, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s with the store down: %d Retry-After %q, want 503 with Retry-After", what, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		for _, leak := range []string{"10.0.0.7", "dial tcp", "redis", "connection refused"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the answer tells %q:\n%s", what, leak, body)
			}
		}
	}
	keptCookies := func(what string, resp *http.Response) {
		t.Helper()
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s with the store down set cookies %v: it must keep them", what, resp.Header["Set-Cookie"])
		}
		if cookieOf(b, "/", "jwtgate_access") != access || cookieOf(b, "/jwtgate/", "jwtgate_refresh") != refresh {
			t.Errorf("%s with the store down changed the browser's cookies", what)
		}
	}

	st.down.Store(true)

	// Sign-in: a clear 503 page (or JSON), no cookies.
	c := hs.browser()
	_, page = hs.do(c, http.MethodGet, LoginPath, nil, nil)
	resp, page := hs.do(c, http.MethodPost, LoginPath, formBody("username", "alice", "password", alicePW, "rd", "/", "jwtgate_csrf", formCSRF(t, page)), formHeader)
	is503("form sign-in", resp, page)
	if !strings.Contains(page, "Sign-in is unavailable for a moment") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("sign-in page with the store down:\n%s", page)
	}
	if setCookie(resp, "jwtgate_access") != nil || setCookie(resp, "jwtgate_refresh") != nil {
		t.Error("a failed sign-in set token cookies")
	}
	resp, body := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"alice","password":"`+alicePW+`"}`), jsonHeaders())
	is503("JSON sign-in", resp, body)
	var je struct{ Error, Description string }
	if json.Unmarshal([]byte(body), &je) != nil || je.Error != "temporarily_unavailable" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("JSON sign-in with the store down: %s", body)
	}
	// A wrong password is still a wrong password.
	if resp, _ := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"alice","password":"nope"}`), jsonHeaders()); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password with the store down: %d, want 401", resp.StatusCode)
	}

	// Refresh and silent renewal: 503, and the browser keeps its cookies.
	resp, body = hs.do(b, http.MethodPost, RefreshPath, nil, nil)
	is503("cookie refresh", resp, body)
	keptCookies("cookie refresh", resp)
	resp, page = hs.do(b, http.MethodGet, LoginPath+"?rd=/x", nil, nil)
	is503("silent renewal", resp, page)
	keptCookies("silent renewal", resp)
	if !strings.Contains(page, "Sign-in is unavailable for a moment") {
		t.Errorf("silent renewal page with the store down:\n%s", page)
	}
	resp, body = hs.do(c, http.MethodPost, RefreshPath, strings.NewReader(`{"refresh_token":"`+refresh+`"}`), jsonHeaders())
	is503("JSON refresh", resp, body)
	if !strings.Contains(body, `"temporarily_unavailable"`) {
		t.Errorf("JSON refresh with the store down: %s", body)
	}

	// The store is back: the cookies the browser kept still renew.
	st.down.Store(false)
	hs.clock.Advance(time.Minute)
	if resp, _ := hs.do(b, http.MethodPost, RefreshPath, nil, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("refresh after the outage: %d, want 204", resp.StatusCode)
	}
	refresh = cookieOf(b, "/jwtgate/", "jwtgate_refresh")

	// Sign-out while the store is down: the cookies go, but the page says the
	// session was not ended, and it was not.
	st.down.Store(true)
	resp, page = hs.do(b, http.MethodPost, LogoutPath, nil, nil)
	is503("sign-out", resp, page)
	if a, r := setCookie(resp, "jwtgate_access"), setCookie(resp, "jwtgate_refresh"); a == nil || r == nil || a.MaxAge >= 0 || r.MaxAge >= 0 {
		t.Errorf("sign-out with the store down did not clear the cookies: %v", resp.Header["Set-Cookie"])
	}
	if cookieOf(b, "/", "jwtgate_access") != "" || cookieOf(b, "/jwtgate/", "jwtgate_refresh") != "" {
		t.Error("sign-out with the store down left cookies in the jar")
	}
	if !strings.Contains(page, "could not end your session") || strings.Contains(page, "You are signed out") {
		t.Errorf("sign-out page with the store down must say the session was not ended:\n%s", page)
	}
	resp, body = hs.do(c, http.MethodPost, LogoutPath, strings.NewReader(`{"refresh_token":"`+refresh+`"}`), jsonHeaders())
	is503("JSON sign-out", resp, body)
	st.down.Store(false)
	if !hs.sessions.SessionAlive("shop/shop", sid) {
		t.Fatal("the session ended although the store was down")
	}

	logs := hs.logs.String()
	for _, want := range []string{"sign-in refused: the session store cannot start a session", "refresh refused: the session store is unavailable", "sign-out could not end the session"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	// Nothing was recorded as ended or refused during the outage.
	for _, e := range eventsOf(t, hs, "alice") {
		if e.Kind == session.EventRevoked || e.Kind == session.EventRefused {
			t.Errorf("event %+v recorded during the outage", e)
		}
	}
}

// unconfirmedStore is session.Memory whose ends a replicated store could not
// confirm with a replica: each is done, and fails with an error wrapping
// session.ErrUnavailable (and, for a reuse, session.ErrReused too), as the
// Redis store in Sentinel or Cluster mode answers when WAIT sees no replica.
type unconfirmedStore struct{ *session.Memory }

func (u unconfirmedStore) unconfirmed() error {
	return fmt.Errorf("%w: redis end: no replica confirmed the end of the session in time", session.ErrUnavailable)
}

func (u unconfirmedStore) Rotate(ctx context.Context, policy, tok string) (session.Session, string, error) {
	s, next, err := u.Memory.Rotate(ctx, policy, tok)
	if errors.Is(err, session.ErrReused) {
		return s, "", fmt.Errorf("%w; %w", err, u.unconfirmed())
	}
	return s, next, err
}

func (u unconfirmedStore) EndByToken(ctx context.Context, policy, tok string) (session.Session, error) {
	s, err := u.Memory.EndByToken(ctx, policy, tok)
	if err == nil {
		return s, u.unconfirmed()
	}
	return s, err
}

// An end the store cannot confirm is not acknowledged: sign-out and the
// refresh that detected a replayed token answer 503 (try again), never 200 or
// 500; the replay is still recorded.
func TestUnconfirmedEndsAnswer503(t *testing.T) {
	hs := newHarness(t, harnessConfig{
		sessions: func(m *session.Memory, _ *fakeClock) session.Store { return unconfirmedStore{m} },
		records:  memoryRecords,
	})
	c := hs.browser()
	_, body := hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"alice","password":"`+alicePW+`"}`), jsonHeaders())
	first := decodeTokens(t, body)
	refresh := func(tok string) (*http.Response, string) {
		return hs.do(c, http.MethodPost, RefreshPath, strings.NewReader(`{"refresh_token":"`+tok+`"}`), jsonHeaders())
	}
	resp, body := refresh(first.RefreshToken)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %s", resp.StatusCode, body)
	}
	second := decodeTokens(t, body)
	hs.clock.Advance(11 * time.Second)
	resp, body = refresh(first.RefreshToken)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("replay whose end is not confirmed: %d (Retry-After %q), want 503\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if !strings.Contains(hs.logs.String(), "refresh token replayed") {
		t.Error("the replay is not logged")
	}
	ev := eventsOf(t, hs, "alice")
	if len(ev) < 2 || ev[len(ev)-1].Kind != session.EventRevoked || ev[len(ev)-2].Kind != session.EventRefused {
		t.Fatalf("the replay is not recorded: %+v", ev)
	}
	// The session is ended all the same.
	if resp, _ := refresh(second.RefreshToken); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the live token of the session ended by the replay: %d, want 401", resp.StatusCode)
	}

	_, body = hs.do(c, http.MethodPost, LoginPath, strings.NewReader(`{"username":"alice","password":"`+alicePW+`"}`), jsonHeaders())
	third := decodeTokens(t, body)
	resp, body = hs.do(c, http.MethodPost, LogoutPath, strings.NewReader(`{"refresh_token":"`+third.RefreshToken+`"}`), jsonHeaders())
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("sign-out whose end is not confirmed: %d, want 503\n%s", resp.StatusCode, body)
	}
}
