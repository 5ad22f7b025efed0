package oidc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestDiscoveryKeepsLastGood(t *testing.T) {
	var mode atomic.Value
	mode.Store("ok")
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		switch mode.Load() {
		case "ok":
			_ = json.NewEncoder(w).Encode(Discovery{Issuer: srv.URL, AuthorizationEndpoint: srv.URL + "/auth", TokenEndpoint: srv.URL + "/token", JWKSURI: srv.URL + "/jwks", EndSessionEndpoint: srv.URL + "/logout"})
		case "down":
			http.Error(w, "SECRET-BODY", http.StatusBadGateway)
		case "garbage":
			_, _ = w.Write([]byte("<html>SECRET-BODY</html>"))
		case "other issuer":
			_ = json.NewEncoder(w).Encode(Discovery{Issuer: "https://evil.example", AuthorizationEndpoint: srv.URL + "/auth", TokenEndpoint: srv.URL + "/token", JWKSURI: srv.URL + "/jwks"})
		case "no pkce":
			_ = json.NewEncoder(w).Encode(Discovery{Issuer: srv.URL, AuthorizationEndpoint: srv.URL + "/auth", TokenEndpoint: srv.URL + "/token", JWKSURI: srv.URL + "/jwks", CodeChallengeMethods: []string{"plain"}})
		}
	}))
	defer srv.Close()
	ps := NewProviders(context.Background(), Options{Logger: slog.New(slog.DiscardHandler)})
	var notified []string
	ps.Subscribe(func(iss string) { notified = append(notified, iss) })
	p := &Provider{issuer: srv.URL, opts: ps.opts, notify: ps.notify}
	if p.Discovery() != nil || p.Loaded() || p.Failure() != nil {
		t.Fatal("a provider never fetched has a document or no error")
	}
	for _, m := range []string{"down", "garbage", "other issuer", "no pkce"} {
		mode.Store(m)
		if err := p.Refresh(context.Background()); err == nil {
			t.Fatalf("%s: accepted", m)
		} else if strings.Contains(err.Error(), "SECRET-BODY") {
			t.Fatalf("%s: the error quotes the body: %v", m, err)
		}
		if p.Discovery() != nil {
			t.Fatalf("%s: a document was kept", m)
		}
	}
	if p.Failure() == nil || len(notified) != 1 {
		t.Fatalf("after failures: Failure %v, subscribers told %d times, want once", p.Failure(), len(notified))
	}
	mode.Store("ok")
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !p.Loaded() || p.Failure() != nil || len(notified) != 2 || notified[1] != srv.URL {
		t.Fatalf("after the first load: Loaded %v, Failure %v, subscribers told %v", p.Loaded(), p.Failure(), notified)
	}
	d := p.Discovery()
	if d == nil || d.TokenEndpoint != srv.URL+"/token" || d.EndSessionEndpoint == "" || p.Failure() != nil {
		t.Fatalf("document %+v, failure %v", d, p.Failure())
	}
	mode.Store("down")
	if err := p.Refresh(context.Background()); err == nil {
		t.Fatal("accepted a failing provider")
	}
	if p.Discovery() != d {
		t.Fatal("the last good document was dropped when the provider failed")
	}
	if p.Failure() == nil || !p.Loaded() || len(notified) != 3 || notified[2] != srv.URL {
		t.Fatalf("after a failure with a good document: Failure %v, Loaded %v (want true: the last good one serves), subscribers told %v (want the recovery and the failure)",
			p.Failure(), p.Loaded(), notified)
	}
}
