package fastserve_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/fastserve"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

var limits = fastserve.Limits{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Idle: 120 * time.Second, MaxHeader: 8 << 10, MaxBody: 64 << 10}

// echoHandler answers every request with what the handler saw of it, one
// line per field, so that a test can compare net/http and fasthttp.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "method=%q\nuri=%q\npath=%q\nrawpath=%q\nquery=%q\nhost=%q\nproto=%q\nte=%q\nbody=%q\n",
		r.Method, r.RequestURI, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.Host, r.Proto, r.TransferEncoding, body)
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, "header %s=%q\n", name, r.Header[name])
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Set-Cookie", "a=1; Path=/; HttpOnly")
	w.Header().Add("Set-Cookie", "a=2; Path=/x; Secure; SameSite=Lax")
	w.Header().Set("X-Served", r.RequestURI)
	_, _ = io.WriteString(w, b.String())
})

// serve starts net/http's server (the reference) or fastserve's with the
// same limits on h, until the test ends, and returns its address.
func serve(t testing.TB, fast bool, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var srv interface {
		Serve(net.Listener) error
		Shutdown(context.Context) error
	}
	if fast {
		srv = fastserve.New(h, limits, slog.New(slog.DiscardHandler))
	} else {
		srv = &http.Server{Handler: h, ReadHeaderTimeout: limits.ReadHeader, ReadTimeout: limits.Read, IdleTimeout: limits.Idle, MaxHeaderBytes: limits.MaxHeader}
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// answer is one response as the client read it.
type answer struct {
	status int
	header http.Header
	body   string
}

// exchange sends raw on a new connection and reads the responses the server
// gives, at most max, until it closes the connection or goes quiet for a
// second.
func exchange(t testing.TB, addr, raw string, max int) []answer {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []answer
	for len(out) < max {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		out = append(out, answer{status: resp.StatusCode, header: resp.Header, body: string(body)})
	}
	return out
}

const (
	netHTTP  = "net/http"
	fastHTTP = "fasthttp"
)

var servers = []string{netHTTP, fastHTTP}

// The handlers see the same request from either server: method, target, the
// decoded path, query, host, every header as sent (repeats in order, cookies
// of other applications untouched, values trimmed) and the body. And the
// client sees the same answer: status, headers (both cookies), body.
func TestServersHandOverTheSameRequest(t *testing.T) {
	cases := map[string]string{
		"auth request":                 "GET /jwtgate/auth/shop/web HTTP/1.1\r\nHost: jwtgate:8000\r\nX-Original-URL: https://shop.example.com/a?b=c\r\nX-Original-Method: GET\r\nAuthorization: Bearer abc.def.ghi\r\n\r\n",
		"repeated headers and cookies": "GET /x HTTP/1.1\r\nHost: h\r\nCookie: other=\"quoted\"; bad cookie; jwtgate_access=tok\r\nCookie: second=1\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nAccept:   text/html ,*/*  \r\n\r\n",
		"encoded path and query":       "GET /jwtgate/ext-authz/shop/web/a%2Fb/%2e%2e/c?q=%20x&r HTTP/1.1\r\nHost: h\r\n\r\n",
		"lower-case names":             "GET / HTTP/1.1\r\nhost: h\r\nx-original-url: http://a/b\r\nx-http-method-override: DELETE\r\n\r\n",
		"form post":                    "POST /jwtgate/login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 21\r\n\r\nusername=a&password=b",
		"chunked post":                 "POST /jwtgate/login HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"http/1.0":                     "GET /jwtgate/auth HTTP/1.0\r\nHost: h\r\n\r\n",
		"absolute target":              "GET http://h/jwtgate/auth?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
		"head":                         "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n",
		"absolute target, other host":  "GET http://target.example/jwtgate/ext-authz/a/b/x HTTP/1.1\r\nHost: header.example\r\n\r\n",
		"http/1.0 without host":        "GET /jwtgate/auth HTTP/1.0\r\n\r\n",
	}
	addrs := map[string]string{netHTTP: serve(t, false, echoHandler), fastHTTP: serve(t, true, echoHandler)}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			got := map[string]string{}
			for _, kind := range servers {
				resps := exchange(t, addrs[kind], raw, 1)
				if len(resps) != 1 {
					t.Fatalf("%s: %d responses, want 1", kind, len(resps))
				}
				r := resps[0]
				delete(r.header, "Date")
				names := slices.Sorted(maps.Keys(r.header))
				var hs strings.Builder
				for _, n := range names {
					fmt.Fprintf(&hs, "%s: %q\n", n, r.header[n])
				}
				got[kind] = fmt.Sprintf("status %d\n%s\n%s", r.status, hs.String(), r.body)
			}
			if got[netHTTP] != got[fastHTTP] {
				t.Errorf("the handler saw different requests:\n--- net/http\n%s\n--- fasthttp\n%s", got[netHTTP], got[fastHTTP])
			}
		})
	}
}

// What net/http refuses, fastserve refuses too (400, or 501 for a coding; a
// coding fasthttp's parser rejects itself gets its 400): a request without
// Host on HTTP/1.1, with two or a malformed one, a transfer coding other than
// chunked (fasthttp alone would ignore "identity" and read the body as the
// next request).
func TestServersRefuseAlike(t *testing.T) {
	cases := map[string]string{
		"no host":           "GET /a HTTP/1.1\r\n\r\n",
		"two hosts":         "GET /a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
		"malformed host":    "GET /a HTTP/1.1\r\nHost: a b\r\n\r\n",
		"identity coding":   "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
		"chunked, identity": "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
	}
	addrs := map[string]string{netHTTP: serve(t, false, echoHandler), fastHTTP: serve(t, true, echoHandler)}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			got := map[string][]int{}
			for _, kind := range servers {
				as := exchange(t, addrs[kind], raw, 2)
				got[kind] = statuses(as)
				for _, a := range as {
					if a.header.Get("X-Served") != "" {
						t.Errorf("%s served it: %q", kind, a.header.Get("X-Served"))
					}
				}
			}
			for _, kind := range servers {
				if len(got[kind]) != 1 || got[kind][0] < 400 {
					t.Errorf("answers: net/http %v, fasthttp %v; want one refusal from each", got[netHTTP], got[fastHTTP])
				}
			}
		})
	}
}

// Both servers answer a header section over the limit with 431, keep a
// connection alive across requests, and answer pipelined requests in order.
func TestServersLimitsAndKeepalive(t *testing.T) {
	for _, kind := range servers {
		t.Run(kind, func(t *testing.T) {
			addr := serve(t, kind == fastHTTP, echoHandler)
			big := "GET /a HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("x", 16<<10) + "\r\n\r\n"
			resps := exchange(t, addr, big, 1)
			if len(resps) != 1 || resps[0].status != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("16 KiB of headers over an 8 KiB limit: %d responses %v, want one 431", len(resps), statuses(resps))
			}
			pipelined := strings.Repeat("GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 3) + "GET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
			resps = exchange(t, addr, pipelined, 4)
			var served []string
			for _, r := range resps {
				served = append(served, r.header.Get("X-Served"))
			}
			if want := []string{"/a", "/a", "/a", "/b"}; !slices.Equal(served, want) {
				t.Errorf("four requests on one connection were answered as %q, want %q", served, want)
			}
		})
	}
}

func statuses(rs []answer) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.status)
	}
	return out
}

// FuzzServersAgree sends the same request to both servers: what fasthttp
// hands the handlers must be what net/http hands them, and fasthttp must not
// serve a request net/http refuses (a laxer parser is where smuggling and
// header confusion start). fasthttp may refuse more.
func FuzzServersAgree(f *testing.F) {
	f.Add("GET", "/jwtgate/auth/shop/web", "h", "X-Original-URL: https://shop.example.com/a?b=c\r\nAuthorization: Bearer a.b.c\r\n", "")
	f.Add("POST", "/jwtgate/login?rd=%2Fx", "h", "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n", "a=b")
	f.Add("GET", "/a%2Fb/../c", "h", "Cookie: a=1; b=\"x y\"\r\nCookie: c=2\r\nAccept:  text/html \r\n", "")
	f.Add("GET", "/", "h", "X-A: 1\r\n x-b: 2\r\n", "")
	f.Add("GET", "http://a.example/x", "b.example:8000", "", "")
	f.Add("POST", "/", "h", "Transfer-Encoding: identity\r\n", "GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
	f.Add("POST", "/", "h", "Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n")
	f.Add("GET", "/", "h", "X-A: a\x00b\r\nX-B\t: c\r\n", "")
	addrs := map[string]string{netHTTP: serve(f, false, echoHandler), fastHTTP: serve(f, true, echoHandler)}
	f.Fuzz(func(t *testing.T, method, target, host, headers, body string) {
		raw := method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + headers + "Connection: close\r\n\r\n" + body
		got := map[string]answer{}
		for _, kind := range servers {
			if as := exchange(t, addrs[kind], raw, 1); len(as) == 1 {
				got[kind] = as[0]
			}
		}
		std, fast := got[netHTTP], got[fastHTTP]
		served := func(a answer) bool { return a.header.Get("X-Served") != "" }
		switch {
		case served(fast) && !served(std):
			t.Errorf("fasthttp served a request net/http refused with %d:\n%q\nfasthttp's handler saw:\n%s", std.status, raw, fast.body)
		case served(fast) && served(std) && fast.body != std.body:
			t.Errorf("the handler saw different requests for\n%q\n--- net/http\n%s\n--- fasthttp\n%s", raw, std.body, fast.body)
		}
	})
}

// A handler that panics costs its own request only: it is answered 500 and
// the server goes on serving (fasthttp does not recover on its own; net/http
// does).
func TestServerSurvivesAPanickingHandler(t *testing.T) {
	var logs testproc.SyncBuffer
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("boom")
		}
		w.Header().Set("X-Served", r.URL.Path)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := fastserve.New(h, limits, slog.New(slog.NewTextHandler(&logs, nil)))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	addr := ln.Addr().String()
	if as := exchange(t, addr, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n", 1); len(as) != 1 || as[0].status != http.StatusInternalServerError {
		t.Fatalf("a panicking handler: %v, want one 500", statuses(as))
	}
	if as := exchange(t, addr, "GET /after HTTP/1.1\r\nHost: h\r\n\r\n", 1); len(as) != 1 || as[0].header.Get("X-Served") != "/after" {
		t.Fatalf("the request after the panic: %v, want it served", statuses(as))
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Errorf("the panic is not logged: %q", logs.String())
	}
}
