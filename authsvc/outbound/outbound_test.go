package outbound

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestBlocked(t *testing.T) {
	for addr, want := range map[string]string{
		"169.254.169.254":        "link-local",
		"169.254.0.1":            "link-local",
		"fe80::1":                "link-local",
		"::ffff:169.254.169.254": "link-local",
		"0.0.0.0":                "unspecified",
		"::":                     "unspecified",
		"224.0.0.1":              "multicast",
		"ff02::1":                "multicast",
		"127.0.0.1":              "",
		"::1":                    "",
		"10.0.0.1":               "",
		"192.0.2.1":              "",
		"2001:db8::1":            "",
	} {
		if got := Blocked(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Blocked(%s) = %q, want %q", addr, got, want)
		}
	}
}

// The dial-time check: loopback (test servers, IdP sidecars) is reached,
// forbidden addresses are refused before any connection, redirects included.
func TestClientRefusesAtDialTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	c := NewClient(Options{})
	resp, err := c.Get(srv.URL + "/ok")
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
	_ = resp.Body.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':'):]
	for _, u := range []string{
		"http://0.0.0.0" + port + "/",
		"http://[::]" + port + "/",
		"http://169.254.169.254/latest/meta-data/",
		"http://[fe80::1%25lo]/",
		"http://224.0.0.1/",
		srv.URL + "/redirect",
	} {
		before := hits.Load()
		resp, err := c.Get(u)
		if err == nil {
			_ = resp.Body.Close()
			t.Errorf("%s: reached", u)
			continue
		}
		var be *BlockedError
		if !errors.As(err, &be) {
			t.Errorf("%s: %v, want a BlockedError", u, err)
		}
		if !strings.HasPrefix(Describe(err), "refused: the host resolves to a") {
			t.Errorf("%s: Describe = %q", u, Describe(err))
		}
		if u != srv.URL+"/redirect" && hits.Load() != before {
			t.Errorf("%s: the server behind it was reached", u)
		}
	}
}

// The environment's proxy is ignored; an explicit one is used, after the
// target host is checked.
func TestClientProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	if tr := NewClient(Options{}).Transport.(*http.Transport); tr.Proxy != nil {
		t.Fatal("the client reads a proxy from the environment")
	}
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.WriteHeader(200)
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	c := NewClient(Options{Proxy: pu})
	resp, err := c.Get("http://192.0.2.1/jwks.json")
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	_ = resp.Body.Close()
	if proxied.Load() != 1 {
		t.Fatalf("the proxy saw %d requests, want 1", proxied.Load())
	}
	for _, u := range []string{"http://169.254.169.254/", "http://[fe80::1]/", "http://0.0.0.0/"} {
		if resp, err := c.Get(u); err == nil {
			_ = resp.Body.Close()
			t.Errorf("%s: sent through the proxy", u)
		} else if !strings.Contains(Describe(err), "refused") {
			t.Errorf("%s: %v", u, err)
		}
	}
	if proxied.Load() != 1 {
		t.Fatalf("the proxy saw %d requests, want 1", proxied.Load())
	}
}
