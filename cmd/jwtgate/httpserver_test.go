package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"

	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

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

// startHTTPServer serves h on a listener of the given server kind with the
// default limits, until the test ends.
func startHTTPServer(t *testing.T, kind string, h http.Handler, lim httpLimits) string {
	t.Helper()
	l := &listener{name: "decisions", addr: freeAddr(t), handler: h, log: slog.New(slog.DiscardHandler), limits: lim, timeout: time.Second, server: kind}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s listener: %v", kind, err)
		}
	})
	waitListening(t, l.addr)
	return l.addr
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
func exchange(t *testing.T, addr, raw string, max int) []answer {
	t.Helper()
	c := dial(t, addr)
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

var servers = []string{serverNetHTTP, serverFastHTTP}

// The handlers see the same request from either server: method, target, the
// decoded path, query, host, every header as sent (repeats in order, cookies
// of other applications untouched, values trimmed) and the body. And the
// client sees the same answer: status, headers (both cookies), body.
func TestHTTPServersHandOverTheSameRequest(t *testing.T) {
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
	}
	addrs := map[string]string{}
	for _, kind := range servers {
		addrs[kind] = startHTTPServer(t, kind, echoHandler, defaultLimits)
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			got := map[string]string{}
			for _, kind := range servers {
				resps := exchange(t, addrs[kind], raw, 1)
				if len(resps) != 1 {
					t.Fatalf("%s: %d responses, want 1", kind, len(resps))
				}
				r := resps[0]
				got[kind] = fmt.Sprintf("status %d\ncache-control %q\nset-cookie %q\ncontent-type %q\nx-served %q\n%s",
					r.status, r.header["Cache-Control"], r.header["Set-Cookie"], r.header["Content-Type"], r.header["X-Served"], r.body)
			}
			if got[serverNetHTTP] != got[serverFastHTTP] {
				t.Errorf("the handler saw different requests:\n--- net/http\n%s\n--- fasthttp\n%s", got[serverNetHTTP], got[serverFastHTTP])
			}
		})
	}
}

// A request a front proxy and jwtgate could read differently (smuggling) is
// refused or answered once: what hides in its body is never answered as a
// request of its own. Malformed header lines and sizes are refused alike.
func TestHTTPServersRefuseAmbiguousRequests(t *testing.T) {
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
	cases := map[string]string{
		"content-length and chunked": "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"chunked and content-length": "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + smuggled,
		"two content-lengths":        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n" + smuggled,
		"content-length list":        "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0, 36\r\n\r\n" + smuggled,
		"signed content-length":      "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: +36\r\n\r\n" + smuggled,
		"chunked not last":           "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled,
		"unknown coding":             "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled,
		"space before colon":         "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"obs-fold":                   "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"bad chunk size":             "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n" + smuggled,
		"two hosts":                  "GET /a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n" + smuggled,
	}
	addrs := map[string]string{}
	for _, kind := range servers {
		addrs[kind] = startHTTPServer(t, kind, echoHandler, defaultLimits)
	}
	for name, raw := range cases {
		for _, kind := range servers {
			t.Run(name+"/"+kind, func(t *testing.T) {
				for i, r := range exchange(t, addrs[kind], raw, 2) {
					if served := r.header.Get("X-Served"); served == "/smuggled" {
						t.Errorf("response %d answers the request hidden in the body", i+1)
					}
				}
			})
		}
	}
}

// Both servers answer a header section over the limit with 431, keep a
// connection alive across requests, and answer pipelined requests in order.
func TestHTTPServersLimitsAndKeepalive(t *testing.T) {
	lim := defaultLimits
	lim.maxHeader = 8 << 10
	for _, kind := range servers {
		t.Run(kind, func(t *testing.T) {
			addr := startHTTPServer(t, kind, echoHandler, lim)
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
