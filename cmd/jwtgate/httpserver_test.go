package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

var servers = []string{serverNetHTTP, serverFastHTTP}

// echoTarget answers every request 200 and names its target in X-Served.
var echoTarget = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("X-Served", r.RequestURI)
})

// startHTTPServer serves h on a listener of the given server kind with the
// default limits, until the test ends.
func startHTTPServer(t testing.TB, kind string, h http.Handler, lim httpLimits) string {
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

// served sends raw on a new connection and returns the X-Served header of
// every response the server gives until it closes the connection or goes
// quiet for a second.
func served(t *testing.T, addr, raw string) []string {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		out = append(out, resp.Header.Get("X-Served"))
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
		"identity coding":            "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n" + smuggled,
		"space before colon":         "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"obs-fold":                   "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled,
		"bad chunk size":             "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n" + smuggled,
		"two hosts":                  "GET /a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n" + smuggled,
	}
	addrs := map[string]string{}
	for _, kind := range servers {
		addrs[kind] = startHTTPServer(t, kind, echoTarget, defaultLimits)
	}
	for name, raw := range cases {
		for _, kind := range servers {
			t.Run(name+"/"+kind, func(t *testing.T) {
				for i, target := range served(t, addrs[kind], raw) {
					if target == "/smuggled" {
						t.Errorf("response %d answers the request hidden in the body", i+1)
					}
				}
			})
		}
	}
}
