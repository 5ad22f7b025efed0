package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Every listener of the process (decisions and sign-in, admin, pprof, metrics,
// probes) bounds the whole request, not only its headers: a client that sends
// its headers and then trickles the body a byte at a time is cut off, a
// kept-alive connection that sits idle is closed, and a body over the limit is
// refused with 413.
func TestListenersBoundSlowAndLargeRequests(t *testing.T) {
	for _, kind := range servers {
		t.Run(kind, func(t *testing.T) { checkListenerLimits(t, kind) })
	}
}

// checkListenerLimits runs the decision listener on the given HTTP server
// (--http-server) beside every other listener of the process, and checks the
// limits of each; the other listeners always run net/http, so they are
// checked once.
func checkListenerLimits(t *testing.T, kind string) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lim := httpLimits{readHeader: 500 * time.Millisecond, read: time.Second, idle: time.Second, maxHeader: 8 << 10, maxBody: 4 << 10}
	common := commonFlags{
		registry:        prometheus.NewRegistry(), // the package's other tests use the process registry
		listen:          freeAddr(t),
		metricsAddr:     freeAddr(t),
		probeAddr:       freeAddr(t),
		adminAddr:       freeAddr(t),
		adminTokenFile:  tokenFile,
		pprofAddr:       freeAddr(t),
		shutdownTimeout: time.Second,
		httpLimits:      &lim,
		httpServer:      kind,
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	svc, err := newDecisionService(ctx, policy.NewStore(), common, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serveAll(ctx, log, common, svc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveAll: %v", err)
		}
		svc.Close()
	})

	targets := map[string]string{
		"decisions (sign-in)": common.listen + " /jwtgate/login",
		"decisions (auth)":    common.listen + " /jwtgate/auth",
	}
	if kind == serverNetHTTP {
		targets["admin"] = common.adminAddr + " /admin/revoke"
		targets["pprof"] = common.pprofAddr + " /debug/pprof/"
		targets["metrics"] = common.metricsAddr + " /metrics"
		targets["probes"] = common.probeAddr + " /readyz"
	}
	for name, target := range targets {
		addr, path, _ := strings.Cut(target, " ")
		waitListening(t, addr)
		t.Run(name+": trickled body", func(t *testing.T) {
			c := dial(t, addr)
			_, _ = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n", path)
			// One byte every 100ms would take 100s; the server must hang up
			// long before (its limit is 1s; the test allows 20s).
			deadline := time.Now().Add(20 * time.Second)
			for i := 0; time.Now().Before(deadline); i++ {
				if i < 1000 {
					if _, err := c.Write([]byte("a")); err != nil {
						return // cut off while sending
					}
				}
				if closedWithin(c, 100*time.Millisecond) {
					return
				}
			}
			t.Fatal("the connection is still open 20s into a trickled body")
		})
		t.Run(name+": idle keep-alive", func(t *testing.T) {
			c := dial(t, addr)
			_, _ = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: shop.example.com\r\n\r\n", path)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.Close {
				return // the server already closes after each request
			}
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("an idle kept-alive connection is still open after 20s (read: %v)", err)
			}
		})
		t.Run(name+": oversize body", func(t *testing.T) {
			c := dial(t, addr)
			body := strings.Repeat("a", 64<<10)
			_, _ = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: shop.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", path, len(body))
			go func() { _, _ = c.Write([]byte(body)) }() // the server may close before it has all of it
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("a %d-byte body got %d, want 413", len(body), resp.StatusCode)
			}
		})
	}
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedWithin reports whether the server closed c (or answered and closed)
// within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue // an answer (408, 400): keep reading until the close
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

func waitListening(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening after 20s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
