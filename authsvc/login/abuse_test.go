package login

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// signInAs posts the JSON sign-in straight to the handler from a client address.
func (hs *harness) signInAs(remote, user, pw string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(credentials{Username: user, Password: pw})
	req := httptest.NewRequest(http.MethodPost, "https://"+testHost+LoginPath, strings.NewReader(string(body)))
	req.Header.Set("Accept", "application/json")
	req.RemoteAddr = remote
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

func TestBruteForceReaches429(t *testing.T) {
	hs := newHarness(t, harnessConfig{limits: Limits{FreePerAddress: 6, FreePerUser: 3, Base: time.Second, Max: time.Minute, Window: time.Hour, MaxEntries: 1000}})
	const attacker = "203.0.113.7:5555"
	for i := 0; i < 3; i++ {
		if rec := hs.signInAs(attacker, "alice", "guess"+strconv.Itoa(i)); rec.Code != 401 {
			t.Fatalf("failure %d: %d", i+1, rec.Code)
		}
	}
	// The third failure for alice (FreePerUser) starts the backoff: 1 s. The
	// very next attempt is refused, even with the right password.
	rec := hs.signInAs(attacker, "alice", alicePW)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), `"too_many_requests"`) {
		t.Fatalf("past the threshold, even with the right password: %d Retry-After=%q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	// Per user name: another address is slowed for alice too.
	if rec := hs.signInAs("198.51.100.1:1", "alice", alicePW); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("alice from another address while throttled: %d", rec.Code)
	}
	// Backoff doubles: after the wait, one more failure costs 2 s.
	hs.clock.Advance(1100 * time.Millisecond)
	if rec := hs.signInAs(attacker, "alice", "guess4"); rec.Code != 401 {
		t.Fatalf("after the wait: %d", rec.Code)
	}
	if rec := hs.signInAs(attacker, "alice", "x"); rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("backoff after the 4th failure: Retry-After=%q, want 2", rec.Header().Get("Retry-After"))
	}
	// Per address: the attacker moves to other user names and is stopped too.
	hs.clock.Advance(3 * time.Second)
	codes := []int{}
	for i := 0; i < 3; i++ {
		codes = append(codes, hs.signInAs(attacker, "user"+strconv.Itoa(i), "x").Code)
	}
	if codes[len(codes)-1] != http.StatusTooManyRequests {
		t.Fatalf("spraying user names from one address: %v", codes)
	}
	// bob, from a clean address, is not affected.
	if rec := hs.signInAs("192.0.2.9:1", "bob", "bob-password"); rec.Code != 200 {
		t.Fatalf("bob: %d", rec.Code)
	}
	// The HTML form says 429 too, with Retry-After.
	b := hs.browser()
	_, page := hs.do(b, http.MethodGet, LoginPath, nil, nil)
	for i := 0; i < 10; i++ {
		hs.signInAs("192.0.2.10:1", "carol", "x")
	}
	resp, page := hs.do(b, http.MethodPost, LoginPath, formBody("username", "carol", "password", "x", "jwtgate_csrf", formCSRF(t, page)), formHeader)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "Too many") {
		t.Fatalf("form while throttled: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestSemaphoreFullAnswers429(t *testing.T) {
	hs := newHarness(t, harnessConfig{slots: 1})
	hs.h.sem <- struct{}{} // another sign-in holds the only bcrypt slot
	start := time.Now()
	rec := hs.signInAs("192.0.2.1:1", "alice", alicePW)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("bcrypt slots full: %d %v", rec.Code, rec.Header())
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("a full semaphore must answer at once, not wait")
	}
	<-hs.h.sem
	if rec := hs.signInAs("192.0.2.1:1", "alice", alicePW); rec.Code != 200 {
		t.Fatalf("slot free again: %d", rec.Code)
	}
}

func TestClientAddress(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseTrustedProxies("10.0.0.0/33"); err == nil {
		t.Fatal("a bad CIDR was accepted")
	}
	for _, tc := range []struct {
		remote, xff, xri, want string
	}{
		{"203.0.113.5:1", "1.2.3.4", "", "203.0.113.5"},             // untrusted peer: its headers are ignored
		{"10.1.1.1:1", "1.2.3.4", "", "1.2.3.4"},                    // trusted proxy
		{"10.1.1.1:1", "6.6.6.6, 1.2.3.4, 10.2.2.2", "", "1.2.3.4"}, // the client's own XFF entry is not believed
		{"192.0.2.1:1", "", "5.6.7.8", "5.6.7.8"},
		{"10.1.1.1:1", "garbage", "", "10.1.1.1"},
		{"[::ffff:10.1.1.1]:1", "1.2.3.4", "", "1.2.3.4"},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.xri != "" {
			r.Header.Set("X-Real-IP", tc.xri)
		}
		if got := ClientAddr(r, proxies); got != netip.MustParseAddr(tc.want) {
			t.Errorf("%+v: %s, want %s", tc, got, tc.want)
		}
	}
}

func TestCSRF(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	b := hs.browser()
	_, pageA := hs.do(b, http.MethodGet, LoginPath, nil, nil)
	tokenA := formCSRF(t, pageA)
	other := hs.browser()
	_, pageB := hs.do(other, http.MethodGet, LoginPath, nil, nil)
	tokenB := formCSRF(t, pageB)

	creds := []string{"username", "alice", "password", alicePW}
	for _, tc := range []struct {
		name   string
		client func() *http.Client
		field  []string
		hdr    map[string]string
	}{
		{"missing field", func() *http.Client { return b }, nil, nil},
		{"wrong field", func() *http.Client { return b }, []string{"jwtgate_csrf", "AAAA" + tokenA[4:]}, nil},
		{"field of another form", func() *http.Client { return b }, []string{"jwtgate_csrf", tokenB}, nil},
		{"no nonce cookie", hs.browser, []string{"jwtgate_csrf", tokenA}, nil},
		{"cross-site origin", func() *http.Client { return b }, []string{"jwtgate_csrf", tokenA}, map[string]string{"Origin": "https://evil.example"}},
		{"planted nonce cookie", hs.browser, []string{"jwtgate_csrf", tokenA}, map[string]string{"Cookie": "__Host-jwtgate_csrf=attacker-chosen"}},
	} {
		hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		for k, v := range tc.hdr {
			hdr[k] = v
		}
		resp, page := hs.do(tc.client(), http.MethodPost, LoginPath, formBody(append(slices.Clone(creds), tc.field...)...), hdr)
		if resp.StatusCode != http.StatusForbidden || setCookie(resp, "jwtgate_access") != nil || setCookie(resp, "jwtgate_refresh") != nil {
			t.Errorf("%s: %d %v, want 403 and no token cookies", tc.name, resp.StatusCode, resp.Header["Set-Cookie"])
		}
		if !strings.Contains(page, "<form") {
			t.Errorf("%s: the refusal should offer a fresh form", tc.name)
		}
	}
	// The right pair signs in, and an unsafe rd lands on /. (Each refusal above
	// handed b a new form, so its nonce has changed: take the latest form.)
	_, pageA = hs.do(b, http.MethodGet, LoginPath, nil, nil)
	resp, _ := hs.do(b, http.MethodPost, LoginPath, formBody(append(slices.Clone(creds), "jwtgate_csrf", formCSRF(t, pageA), "rd", "//evil.example/")...), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://" + testHost})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("valid form: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestFailedSignInFormAndLogLine(t *testing.T) {
	hs := newHarness(t, harnessConfig{})
	b := hs.browser()
	for _, user := range []string{"alice", "mallory"} {
		_, page := hs.do(b, http.MethodGet, LoginPath, nil, nil)
		resp, page := hs.do(b, http.MethodPost, LoginPath, formBody("username", user, "password", "wrong", "jwtgate_csrf", formCSRF(t, page)), formHeader)
		if resp.StatusCode != http.StatusUnauthorized || setCookie(resp, "jwtgate_access") != nil || setCookie(resp, "jwtgate_refresh") != nil {
			t.Fatalf("%s: %d %v", user, resp.StatusCode, resp.Header["Set-Cookie"])
		}
		if !strings.Contains(page, "The user name or password is wrong.") || !strings.Contains(page, `role="alert"`) {
			t.Fatalf("%s: the form does not say what went wrong", user)
		}
	}
	// A user name crafted to look like another address must not move the
	// address fail2ban reads.
	hs.signInAs("198.51.100.23:4444", `x","client":"192.0.2.99`, "wrong")

	re := regexp.MustCompile(strings.ReplaceAll(Fail2banJSONRegex, "<HOST>", `(?P<host>[0-9A-Fa-f:.]+)`))
	var hosts []string
	for _, line := range strings.Split(strings.TrimSpace(hs.logs.String()), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			hosts = append(hosts, m[1])
		}
	}
	if want := []string{"127.0.0.1", "127.0.0.1", "198.51.100.23"}; !slices.Equal(hosts, want) {
		t.Fatalf("fail2ban matches %v, want %v; log:\n%s", hosts, want, hs.logs)
	}
	if !strings.Contains(hs.logs.String(), `"user":"mallory"`) {
		t.Error("the failure line lacks the user name")
	}
}

func httptestRefresh(hs *harness, tok string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "https://"+testHost+RefreshPath, strings.NewReader(`{"refresh_token":"`+tok+`"}`))
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	hs.h.ServeHTTP(rec, req)
	return rec
}

// A parallel burst of wrong passwords gets no more password checks than the
// limit allows: the attempt is counted before bcrypt runs, not after, so the
// number of bcrypt slots (cores) does not multiply an attacker's guesses. The
// comparisons are held until every request of the burst has either reached
// its comparison or been refused, so the test does not depend on scheduling.
func TestParallelBurstGetsOnlyTheAllowedChecks(t *testing.T) {
	const burst = 20
	for _, tc := range []struct {
		name       string
		users      func(i int) string
		wantChecks int
	}{
		{"one user name", func(int) string { return "alice" }, 3},                         // FreePerUser
		{"sprayed user names", func(i int) string { return "user" + strconv.Itoa(i) }, 6}, // FreePerAddress
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, harnessConfig{slots: burst, limits: Limits{FreePerAddress: 6, FreePerUser: 3, Base: time.Second, Max: time.Minute, Window: time.Hour, MaxEntries: 1000}})
			release := make(chan struct{})
			arrived := make(chan struct{}, burst)
			var checks atomic.Int32
			hs.h.beforeCompare = func() {
				checks.Add(1)
				arrived <- struct{}{}
				<-release
			}
			codes := make(chan int, burst)
			for i := range burst {
				go func() { codes <- hs.signInAs("203.0.113.7:5555", tc.users(i), "guess"+strconv.Itoa(i)).Code }()
			}
			var got []int
			for waiting := 0; waiting+len(got) < burst; {
				select {
				case <-arrived:
					waiting++
				case c := <-codes:
					got = append(got, c)
				}
			}
			close(release)
			for len(got) < burst {
				got = append(got, <-codes)
			}
			if n := int(checks.Load()); n > tc.wantChecks {
				t.Errorf("a burst of %d got %d password checks, want at most %d (answers %v)", burst, n, tc.wantChecks, got)
			}
			if n := slices.Index(got, http.StatusTooManyRequests); n < 0 {
				t.Errorf("no 429 in the burst: %v", got)
			}
		})
	}
}

// "After 10 (address) or 5 (user name) failures they are answered 429", as the
// README says: with the default limits, the attempt after the last free
// failure of a user name is refused, not allowed one more guess.
func TestRefusedRightAfterTheFreeFailures(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	promise := fmt.Sprintf("after %d\n  (address) or %d (user name) failures they are answered `429`", DefaultLimits.FreePerAddress, DefaultLimits.FreePerUser)
	if !strings.Contains(string(readme), promise) {
		t.Errorf("README.md does not say %q: the defaults and the text disagree", promise)
	}
	limits := DefaultLimits
	limits.FreePerAddress = 100 // only the user name's limit here
	hs := newHarness(t, harnessConfig{limits: limits})
	for i := range limits.FreePerUser {
		if rec := hs.signInAs("203.0.113.7:5555", "alice", "guess"+strconv.Itoa(i)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, rec.Code)
		}
	}
	if rec := hs.signInAs("203.0.113.7:5555", "alice", "one more"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("the attempt after %d failures: %d, want 429", limits.FreePerUser, rec.Code)
	}
}
