package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

var ctx = context.Background()

const testToken = "s3cr3t-admin-token-0123456789"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	clock   *clock
	store   *session.Memory
	records *session.MemoryRecords
	logs    *bytes.Buffer
	srv     *httptest.Server
}

func newFixture(t *testing.T) *fixture {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	st := &session.Memory{Now: c.Now}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	rec := &session.MemoryRecords{Log: log, Sessions: st, Now: c.Now}
	h := &Handler{Store: st, Records: rec, Token: []byte(testToken), Logger: log, Now: c.Now}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{clock: c, store: st, records: rec, logs: logs, srv: srv}
}

// signIn creates a session and records it, as the login handler does.
func (f *fixture) signIn(t *testing.T, policy, user string) (session.Session, string) {
	t.Helper()
	s, tok, err := f.store.Create(ctx, session.New{Policy: policy, User: user, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.records.Record(ctx, session.Event{Time: f.clock.Now(), Kind: session.EventIssued, Policy: policy, User: user, Session: s.ID, By: session.ByUser, Client: "192.0.2.1", Expires: s.Expires}); err != nil {
		t.Fatal(err)
	}
	return s, tok
}

func (f *fixture) do(t *testing.T, method, path, auth, body string) (int, []byte) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return resp.StatusCode, b.Bytes()
}

func TestAuthorization(t *testing.T) {
	f := newFixture(t)
	s, _ := f.signIn(t, "shop/shop", "alice")
	body := `{"policy":"shop/shop","sub":"alice"}`
	for _, auth := range []string{
		"",
		"Bearer",
		"Bearer ",
		"Bearer wrong",
		"Bearer " + testToken[:len(testToken)-1],
		"Bearer " + testToken + "0",
		"Basic " + testToken,
		testToken,
	} {
		for _, req := range []struct{ method, path, body string }{
			{http.MethodPost, RevokePath, body},
			{http.MethodGet, TokensPath + "?policy=shop/shop&sub=alice", ""},
			{http.MethodGet, "/admin/other", ""},
		} {
			code, out := f.do(t, req.method, req.path, auth, req.body)
			if code != http.StatusUnauthorized {
				t.Fatalf("%s %s with Authorization %q: %d %s, want 401", req.method, req.path, auth, code, out)
			}
			var e ErrorBody
			if json.Unmarshal(out, &e) != nil || e.Error != "unauthorized" || e.Description == "" {
				t.Fatalf("401 body %s", out)
			}
		}
	}
	if !f.store.SessionAlive("shop/shop", s.ID) {
		t.Fatal("a refused request ended a session")
	}
	if !strings.Contains(f.logs.String(), "admin API refused a wrong token") {
		t.Fatal("refused tokens are not logged")
	}
	// The scheme is case-insensitive (RFC 7235).
	if code, out := f.do(t, http.MethodPost, RevokePath, "bearer "+testToken, body); code != http.StatusOK {
		t.Fatalf("lower-case scheme: %d %s", code, out)
	}

	// A handler without a token refuses everything, even an empty bearer.
	h := &Handler{Store: f.store}
	for _, auth := range []string{"", "Bearer "} {
		req := httptest.NewRequest(http.MethodPost, RevokePath, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("no token configured: %d", w.Code)
		}
	}
}

func TestBadInput(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + testToken
	for _, c := range []struct {
		body, want string
	}{
		{``, "JSON object"},
		{`not json`, "JSON object"},
		{`[]`, "JSON object"},
		{`{"policy":"shop/shop","sub":"alice","extra":1}`, "extra"},
		{`{"policy":"shop/shop","sub":"alice"} {}`, "one JSON object"},
		{`{"sub":"alice"}`, "policy is required"},
		{`{"policy":"shop","sub":"alice"}`, "namespace/name"},
		{`{"policy":"a/b/c","sub":"alice"}`, "namespace/name"},
		{`{"policy":"/b","sub":"alice"}`, "namespace/name"},
		{`{"policy":"Shop/Shop","sub":"alice"}`, "lower-case"},
		{`{"policy":"shop/shop"}`, `"sub"`},
		{`{"policy":"shop/shop","sub":"alice","session":"abc"}`, "not both"},
		{`{"policy":"shop/shop","sub":"al\nice"}`, "control characters"},
		{`{"policy":"shop/shop","sub":"` + strings.Repeat("a", 300) + `"}`, "longer than"},
		{`{"policy":"shop/shop","session":"a b"}`, "base64url"},
		{`{"policy":"shop/shop","sub":"alice","reason":"` + strings.Repeat("x", 201) + `"}`, "reason is longer"},
	} {
		code, out := f.do(t, http.MethodPost, RevokePath, auth, c.body)
		var e ErrorBody
		if code != http.StatusBadRequest || json.Unmarshal(out, &e) != nil || e.Error != "invalid_request" || !strings.Contains(e.Description, c.want) {
			t.Errorf("body %.60q: %d %s, want 400 saying %q", c.body, code, out, c.want)
		}
	}
	for _, q := range []struct{ query, want string }{
		{"", "policy is required"},
		{"?policy=shop/shop", "sub is required"},
		{"?sub=alice", "policy is required"},
		{"?policy=shop&sub=alice", "namespace/name"},
	} {
		code, out := f.do(t, http.MethodGet, TokensPath+q.query, auth, "")
		if code != http.StatusBadRequest || !strings.Contains(string(out), q.want) {
			t.Errorf("tokens %q: %d %s, want 400 saying %q", q.query, code, out, q.want)
		}
	}
	if code, _ := f.do(t, http.MethodGet, RevokePath, auth, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET revoke: %d", code)
	}
	if code, _ := f.do(t, http.MethodPost, TokensPath, auth, ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST tokens: %d", code)
	}
	if code, _ := f.do(t, http.MethodGet, "/admin/", auth, ""); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
}

func TestRevokeAndRecord(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + testToken
	a1, tok1 := f.signIn(t, "shop/shop", "alice")
	f.clock.Advance(time.Minute)
	a2, _ := f.signIn(t, "shop/shop", "alice")
	b1, _ := f.signIn(t, "shop/shop", "bob")
	o1, _ := f.signIn(t, "other/app", "alice")
	f.clock.Advance(time.Minute)
	r, _, err := f.store.Rotate(ctx, "shop/shop", tok1)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.records.Record(ctx, session.Event{Time: f.clock.Now(), Kind: session.EventRefreshed, Policy: "shop/shop", User: "alice", Session: r.ID, By: session.ByUser, Expires: r.Expires}); err != nil {
		t.Fatal(err)
	}

	// One session, by id; the user is found in the records.
	f.clock.Advance(time.Minute)
	code, out := f.do(t, http.MethodPost, RevokePath, auth, `{"policy":"shop/shop","session":"`+a2.ID+`","by":"jane","reason":"lost laptop"}`)
	var res RevokeResult
	if code != http.StatusOK || json.Unmarshal(out, &res) != nil || res.Ended != 1 {
		t.Fatalf("revoke session: %d %s", code, out)
	}
	if f.store.SessionAlive("shop/shop", a2.ID) || !f.store.SessionAlive("shop/shop", a1.ID) {
		t.Fatal("revoking one session ended the wrong ones")
	}
	// Again: nothing to end.
	if code, out = f.do(t, http.MethodPost, RevokePath, auth, `{"policy":"shop/shop","session":"`+a2.ID+`"}`); code != http.StatusOK || !strings.Contains(string(out), `"ended": 0`) {
		t.Fatalf("revoke an ended session: %d %s", code, out)
	}

	// Every session of alice in shop/shop.
	f.clock.Advance(time.Minute)
	code, out = f.do(t, http.MethodPost, RevokePath, auth, `{"policy":"shop/shop","sub":"alice"}`)
	if code != http.StatusOK || json.Unmarshal(out, &res) != nil || res.Ended != 1 || res.User != "alice" {
		t.Fatalf("revoke user: %d %s", code, out)
	}
	if f.store.SessionAlive("shop/shop", a1.ID) || !f.store.SessionAlive("shop/shop", b1.ID) || !f.store.SessionAlive("other/app", o1.ID) {
		t.Fatal("revoking a user ended the wrong sessions")
	}
	logs := f.logs.String()
	if strings.Count(logs, `"msg":"admin revoked sessions"`) != 3 || !strings.Contains(logs, `"by":"admin:jane"`) || !strings.Contains(logs, `"reason":"lost laptop"`) {
		t.Fatalf("audit lines of the revocations missing:\n%s", logs)
	}
	if strings.Contains(logs, tok1) {
		t.Fatal("a refresh token reached the logs")
	}

	// The record.
	code, out = f.do(t, http.MethodGet, TokensPath+"?policy=shop/shop&sub=alice", auth, "")
	var rec session.UserRecord
	if code != http.StatusOK || json.Unmarshal(out, &rec) != nil {
		t.Fatalf("tokens: %d %s", code, out)
	}
	if rec.Policy != "shop/shop" || rec.User != "alice" || len(rec.Sessions) != 2 {
		t.Fatalf("record %s", out)
	}
	byID := map[string]session.SessionRecord{}
	for _, s := range rec.Sessions {
		byID[s.ID] = s
	}
	s1, s2 := byID[a1.ID], byID[a2.ID]
	if s1.Alive || s1.Refreshes != 1 || s1.EndedBy != session.ByAdmin || s1.Client != "192.0.2.1" || !s1.LastUsed.Equal(r.Refreshed) || s1.Issued.IsZero() {
		t.Fatalf("session 1 %+v", s1)
	}
	if s2.Alive || s2.EndedBy != "admin:jane" || s2.EndReason != "lost laptop" || s2.Refreshes != 0 {
		t.Fatalf("session 2 %+v", s2)
	}
	if rec.Sessions[0].ID != a2.ID {
		t.Fatal("sessions are not newest first")
	}
	var kinds []string
	for _, e := range rec.Events {
		kinds = append(kinds, e.Kind)
	}
	// newest first: user revocation, session revocations (twice), refresh, two sign-ins
	want := []string{session.EventRevoked, session.EventRevoked, session.EventRevoked, session.EventRefreshed, session.EventIssued, session.EventIssued}
	if strings.Join(kinds, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	// bob's record is his alone, and alive.
	code, out = f.do(t, http.MethodGet, TokensPath+"?policy=shop/shop&sub=bob", auth, "")
	if code != http.StatusOK || json.Unmarshal(out, &rec) != nil || len(rec.Sessions) != 1 || !rec.Sessions[0].Alive || len(rec.Events) != 1 {
		t.Fatalf("bob: %d %s", code, out)
	}
	// An expired session says so.
	f.clock.Advance(2 * time.Hour)
	_, out = f.do(t, http.MethodGet, TokensPath+"?policy=shop/shop&sub=bob", auth, "")
	if json.Unmarshal(out, &rec) != nil || rec.Sessions[0].Alive || rec.Sessions[0].EndReason != "expired" {
		t.Fatalf("expired: %s", out)
	}
	// Unknown users have an empty record, not an error.
	code, out = f.do(t, http.MethodGet, TokensPath+"?policy=shop/shop&sub=nobody", auth, "")
	if code != http.StatusOK || !strings.Contains(string(out), `"sessions": []`) || !strings.Contains(string(out), `"events": []`) {
		t.Fatalf("unknown user: %d %s", code, out)
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := LoadToken(write("ok", testToken+"\n")); err != nil || string(tok) != testToken {
		t.Fatalf("LoadToken: %q %v", tok, err)
	}
	for name, content := range map[string]string{
		"empty":   "",
		"blank":   " \n\n",
		"short":   "0123456789abcde\n",
		"spaces":  "0123456789 abcdef0123",
		"control": "0123456789abcdef\x01",
		"large":   strings.Repeat("a", 5000),
	} {
		if _, err := LoadToken(write(name, content)); err == nil {
			t.Errorf("%s token accepted", name)
		}
	}
	if _, err := LoadToken(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
	_, err := LoadToken(write("short2", "abc"))
	if err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("short token error does not say the minimum: %v", err)
	}
}

func TestClient(t *testing.T) {
	f := newFixture(t)
	s, _ := f.signIn(t, "shop/shop", "alice")
	c := &Client{URL: f.srv.URL + "/", Token: []byte(testToken)}
	res, err := c.Revoke(ctx, RevokeRequest{Policy: "shop/shop", Session: s.ID})
	if err != nil || res.Ended != 1 {
		t.Fatalf("Revoke: %+v %v", res, err)
	}
	rec, err := c.Tokens(ctx, "shop/shop", "alice")
	if err != nil || len(rec.Events) != 2 {
		t.Fatalf("Tokens: %+v %v", rec, err)
	}
	bad := &Client{URL: f.srv.URL, Token: []byte("wrong-token-0123456789")}
	if _, err := bad.Revoke(ctx, RevokeRequest{Policy: "shop/shop", User: "alice"}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := c.Revoke(ctx, RevokeRequest{Policy: "shop"}); err == nil || !strings.Contains(err.Error(), "namespace/name") {
		t.Fatalf("bad request: %v", err)
	}
	if _, err := (&Client{URL: "ftp://x", Token: []byte(testToken)}).Revoke(ctx, RevokeRequest{}); err == nil {
		t.Fatal("ftp URL accepted")
	}
}
