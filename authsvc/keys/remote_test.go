package keys

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// jwksServer serves whatever answer() returns and counts requests.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64
	answer   atomic.Pointer[func(w http.ResponseWriter, r *http.Request)]
	accept   atomic.Pointer[string]
}

func newJWKSServer(t *testing.T, tls bool, h func(w http.ResponseWriter, r *http.Request)) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(h)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		a := r.Header.Get("Accept")
		s.accept.Store(&a)
		(*s.answer.Load())(w, r)
	})
	if tls {
		s.Server = httptest.NewTLSServer(handler)
	} else {
		s.Server = httptest.NewServer(handler)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(h func(w http.ResponseWriter, r *http.Request)) { s.answer.Store(&h) }

func serveBody(status int, body []byte) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testRemote(t *testing.T, url string, opts RemoteOptions) *Remote {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	r, err := NewRemote(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// secretMarker is put into bad answers: it must never reach an error.
const secretMarker = "BODY-MUST-NOT-LEAK"

func TestRemoteRefresh(t *testing.T) {
	m := testKeys()
	jwksA := jwksJSON(t,
		jwkJSON(t, &m.rsa.PublicKey, map[string]any{"kid": "a"}),
		jwkJSON(t, &m.p256.PublicKey, map[string]any{"kid": "b"}),
	)
	jwksAReordered := jwksJSON(t,
		jwkJSON(t, &m.p256.PublicKey, map[string]any{"kid": "b"}),
		jwkJSON(t, &m.rsa.PublicKey, map[string]any{"kid": "a"}),
	)
	jwksB := jwksJSON(t, jwkJSON(t, m.ed.Public(), map[string]any{"kid": "c"}))
	ctx := context.Background()

	srv := newJWKSServer(t, false, serveBody(200, jwksA))
	r := testRemote(t, srv.URL+"/jwks.json", RemoteOptions{MaxBytes: 64 << 10})
	if r.Current() != nil || r.Generation() != 0 || !r.FetchedAt().IsZero() {
		t.Fatal("a new Remote must be empty and not fetch")
	}
	if srv.requests.Load() != 0 {
		t.Fatal("NewRemote fetched")
	}

	// Each step runs against the state the previous one left.
	steps := []struct {
		name    string
		answer  func(w http.ResponseWriter, r *http.Request)
		wantErr string // "" : success
		wantGen uint64
		wantIDs string // IDs of Current(), joined
	}{
		{name: "success", answer: serveBody(200, jwksA), wantGen: 1, wantIDs: "a,b"},
		{name: "same keys reordered is no change", answer: serveBody(200, jwksAReordered), wantGen: 1, wantIDs: "a,b"},
		{name: "500 keeps the last good set", answer: serveBody(500, []byte(secretMarker)), wantErr: "HTTP status 5xx", wantGen: 1, wantIDs: "a,b"},
		{name: "garbage keeps the last good set", answer: serveBody(200, []byte("<html>"+secretMarker+"</html>")), wantErr: "is not a JWKS", wantGen: 1, wantIDs: "a,b"},
		{name: "JSON that is not a JWKS", answer: serveBody(200, []byte(`{"error":"`+secretMarker+`"}`)), wantErr: "is not a JWKS", wantGen: 1, wantIDs: "a,b"},
		{name: "private key refused", answer: serveBody(200, jwksJSON(t, jwkJSON(t, m.p256, map[string]any{"kid": secretMarker}))), wantErr: "holds a private key", wantGen: 1, wantIDs: "a,b"},
		{name: "only symmetric keys refused", answer: serveBody(200, jwksJSON(t, jwkJSON(t, []byte("0123456789abcdef0123456789abcdef"), nil))), wantErr: "no usable signature verification key", wantGen: 1, wantIDs: "a,b"},
		{name: "body over the cap", answer: serveBody(200, append(jwksB, strings.Repeat(" ", 64<<10)...)), wantErr: "larger than 65536 bytes", wantGen: 1, wantIDs: "a,b"},
		{name: "redirect to http on another host refused", answer: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://idp.example.invalid/jwks.json", http.StatusFound)
		}, wantErr: "refusing redirect", wantGen: 1, wantIDs: "a,b"},
		{name: "changed keys", answer: serveBody(200, jwksB), wantGen: 2, wantIDs: "c"},
		{name: "unsupported and encryption keys are ignored, the rest is used", answer: serveBody(200, jwksJSON(t,
			[]byte(`{"kty":"OKP","crv":"X25519","kid":"x","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`),
			[]byte(`{"kty":"AKP","kid":"pq","alg":"ML-DSA-44","pub":"AAAA"}`),
			jwkJSON(t, []byte("0123456789abcdef0123456789abcdef"), map[string]any{"kid": "oct"}),
			jwkJSON(t, &m.rsa2.PublicKey, map[string]any{"kid": "enc", "use": "enc"}),
			jwkJSON(t, m.ed.Public(), map[string]any{"kid": "c"}),
		)), wantGen: 2, wantIDs: "c"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			srv.set(st.answer)
			before := r.Current()
			err := r.Refresh(ctx)
			if st.wantErr == "" {
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				if r.LastError() != nil {
					t.Fatalf("LastError after success = %v", r.LastError())
				}
				if time.Since(r.FetchedAt()) > time.Minute {
					t.Fatalf("FetchedAt = %v", r.FetchedAt())
				}
			} else {
				if err == nil || !strings.Contains(err.Error(), st.wantErr) {
					t.Fatalf("Refresh error = %v, want one containing %q", err, st.wantErr)
				}
				if !errors.Is(r.LastError(), err) && r.LastError().Error() != err.Error() {
					t.Fatalf("LastError = %v, want %v", r.LastError(), err)
				}
				if strings.Contains(err.Error(), secretMarker) {
					t.Fatalf("the error quotes the response body: %v", err)
				}
				if r.Current() != before {
					t.Fatal("a failed refresh replaced the set")
				}
			}
			if g := r.Generation(); g != st.wantGen {
				t.Fatalf("Generation = %d, want %d", g, st.wantGen)
			}
			var ids []string
			for _, k := range r.Current().Keys() {
				ids = append(ids, k.ID)
			}
			if got := strings.Join(ids, ","); got != st.wantIDs {
				t.Fatalf("keys = %q, want %q", got, st.wantIDs)
			}
		})
	}
	if a := srv.accept.Load(); a == nil || *a != "application/json" {
		t.Fatalf("Accept header = %v, want application/json", a)
	}
}

func TestRemoteSlowServerTimesOut(t *testing.T) {
	srv := newJWKSServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	r := testRemote(t, srv.URL, RemoteOptions{Client: &http.Client{Timeout: 100 * time.Millisecond}})
	start := time.Now()
	err := r.Refresh(context.Background())
	if err == nil {
		t.Fatal("a server that does not answer must be an error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Refresh took %v; the client timeout was 100ms", d)
	}
	if r.Current() != nil || r.LastError() == nil {
		t.Fatal("a timed-out first fetch must leave no set and a LastError")
	}
	if !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("error %q does not say it timed out", err)
	}
}

func TestRemoteHTTPS(t *testing.T) {
	m := testKeys()
	srv := newJWKSServer(t, true, serveBody(200, jwksJSON(t, jwkJSON(t, m.ed.Public(), map[string]any{"kid": "c"}))))
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatal("not a TLS server")
	}
	r := testRemote(t, srv.URL, RemoteOptions{Client: srv.Client(), HTTPSOnly: true})
	if err := r.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Current().Len() != 1 {
		t.Fatalf("%d keys, want 1", r.Current().Len())
	}
}

// TestRemoteRedirectNeverDowngrades: an https JWKS server may not send the
// default client to plain http, not even to a loopback address.
func TestRemoteRedirectNeverDowngrades(t *testing.T) {
	m := testKeys()
	plain := newJWKSServer(t, false, serveBody(200, jwksJSON(t, jwkJSON(t, m.ed.Public(), nil))))
	tlsSrv := newJWKSServer(t, true, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
	})
	opts := RemoteOptions{Logger: quietLogger()}.withDefaults() // the default redirect policy...
	opts.Client.Transport = tlsSrv.Client().Transport           // ...trusting the test CA
	r := testRemote(t, tlsSrv.URL, opts)
	err := r.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refusing redirect from https") {
		t.Fatalf("Refresh = %v, want the redirect refused", err)
	}
	if plain.requests.Load() != 0 {
		t.Fatal("the http server was contacted")
	}
}

// TestRemoteRequestRefreshIsRateLimited: tokens with unknown kids ask for a
// refresh each time; the server sees at most one request per MinInterval.
func TestRemoteRequestRefreshIsRateLimited(t *testing.T) {
	m := testKeys()
	srv := newJWKSServer(t, false, serveBody(200, jwksJSON(t, jwkJSON(t, m.ed.Public(), map[string]any{"kid": "c"}))))
	const minInterval = 300 * time.Millisecond
	r := testRemote(t, srv.URL, RemoteOptions{Interval: time.Hour, MinInterval: minInterval})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	waitCtx, waitCancel := context.WithTimeout(ctx, 5*time.Second)
	defer waitCancel()
	if err := r.WaitReady(waitCtx); err != nil {
		t.Fatal(err)
	}
	firstFetch := time.Now()
	waitRequests := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for srv.requests.Load() < want && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let any extra request arrive
		if got := srv.requests.Load(); got != want {
			t.Fatalf("server saw %d requests, want %d", got, want)
		}
	}
	waitRequests(1)

	// A burst right after the first fetch: all dropped.
	for range 100 {
		r.RequestRefresh()
	}
	waitRequests(1)

	// After MinInterval, a burst makes exactly one request...
	time.Sleep(time.Until(firstFetch.Add(minInterval + 20*time.Millisecond)))
	for range 100 {
		r.RequestRefresh()
	}
	waitRequests(2)
	// ...and the next burst is dropped again.
	for range 100 {
		r.RequestRefresh()
	}
	waitRequests(2)
}

func TestRemoteWaitReadyReportsTheLastError(t *testing.T) {
	srv := newJWKSServer(t, false, serveBody(503, nil))
	r := testRemote(t, srv.URL, RemoteOptions{MinInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	waitCtx, waitCancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer waitCancel()
	err := r.WaitReady(waitCtx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "status 5xx") {
		t.Fatalf("WaitReady = %v, want the deadline and the last fetch error", err)
	}
}

func TestRemotes(t *testing.T) {
	m := testKeys()
	srv := newJWKSServer(t, false, serveBody(200, jwksJSON(t, jwkJSON(t, m.ed.Public(), map[string]any{"kid": "c"}))))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs := NewRemotes(ctx, RemoteOptions{Logger: quietLogger()})

	a, err := rs.Get(srv.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	b, err := rs.Get(srv.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two policies with the same URL got different Remotes")
	}
	if a.URL() != srv.URL+"/jwks" {
		t.Fatalf("URL = %q", a.URL())
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, 5*time.Second)
	defer waitCancel()
	if err := a.WaitReady(waitCtx); err != nil {
		t.Fatalf("Get did not start the Remote: %v", err)
	}
	if a.Current().Len() != 1 {
		t.Fatal("no keys")
	}
	if _, err := rs.Get("http://idp.example.com/jwks"); err == nil {
		t.Fatal("Get accepted http to a non-loopback host")
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string // "" : valid
	}{
		{"https://idp.example.com/.well-known/jwks.json", ""},
		{"https://10.0.0.1:8443/jwks", ""},
		{"http://127.0.0.1:8080/jwks", ""},
		{"http://127.1.2.3/jwks", ""},
		{"http://[::1]:8080/jwks", ""},
		{"http://localhost/jwks", ""},
		{"http://LOCALHOST./jwks", ""},
		{"http://idp.example.com/jwks", "use https://"},
		{"http://10.0.0.1/jwks", "not loopback"},
		{"http://169.254.169.254/latest/meta-data", "not loopback"},
		{"http://localhost.evil.com/jwks", "not loopback"},
		{"http://127.0.0.1.nip.io/jwks", "not loopback"},
		{"ftp://idp.example.com/jwks", `scheme "ftp"`},
		{"file:///etc/passwd", "has no host"},
		{"https:///jwks", "has no host"},
		{"idp.example.com/jwks", "has no host"},
		{"://nope", "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckURL(tt.url)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckURL: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckURL = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("credentials are redacted", func(t *testing.T) {
		err := CheckURL("http://user:hunter2@idp.example.com/jwks")
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("CheckURL = %v", err)
		}
	})
	t.Run("HTTPSOnly refuses loopback http", func(t *testing.T) {
		if _, err := NewRemote("http://127.0.0.1/jwks", RemoteOptions{HTTPSOnly: true}); err == nil {
			t.Fatal("want an error")
		}
	})
}

// A jwksURL no policy lists any more stops being fetched; one a compile asked
// for within the last minute is kept.
func TestRemotesRetain(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs := NewRemotes(ctx, RemoteOptions{})
	now := time.Now()
	rs.now = func() time.Time { return now }
	if _, err := rs.Get(srv.URL + "/a"); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Get(srv.URL + "/b"); err != nil {
		t.Fatal(err)
	}
	rs.Retain(map[string]bool{srv.URL + "/a": true})
	if rs.Len() != 2 {
		t.Fatalf("%d remotes, want both kept within the grace", rs.Len())
	}
	now = now.Add(2 * time.Minute)
	rs.Retain(map[string]bool{srv.URL + "/a": true})
	if rs.Len() != 1 {
		t.Fatalf("%d remotes, want only the one in use", rs.Len())
	}
}
