package server

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/door"
	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Options wire the decision service's listener.
type Options struct {
	Store    *policy.Store
	Sessions policy.SessionChecker // for spec.login.revocation: strict; may be nil
	Metrics  *door.Metrics
	Log      *slog.Logger
	// Pages serves everything else under /jwtgate/ (sign-in, refresh, logout,
	// jwks.json); nil leaves those paths unanswered (404).
	Pages http.Handler
	// ClientAddr names the client in log lines; nil: the direct peer.
	ClientAddr func(*http.Request) string
	// Now is the decision clock; nil: time.Now. Tests with a fake clock set it.
	Now func() time.Time
	// AuditPerSecond bounds the audit lines of denied decisions; see door.Checker.
	AuditPerSecond float64
}

// NewMux returns the handler of the decision listener (--listen).
func NewMux(o Options) http.Handler {
	checker := &door.Checker{Store: o.Store, Sessions: o.Sessions, Metrics: o.Metrics, Log: o.Log, Now: o.Now, AuditPerSecond: o.AuditPerSecond}
	auth := &Auth{Checker: checker, ClientAddr: o.ClientAddr}
	forward := &ForwardAuth{Checker: checker, ClientAddr: o.ClientAddr}
	extAuthz := &ExtAuthz{Checker: checker, ClientAddr: o.ClientAddr}
	mux := http.NewServeMux()
	mux.Handle(AuthPath, auth)
	mux.Handle(AuthPath+"/", auth)
	if o.Pages != nil {
		mux.Handle("/jwtgate/", o.Pages)
	}
	// The doors are dispatched before the ServeMux: decisions are nearly every
	// request this listener sees, and a ServeMux answers 301 to a path holding
	// ".." or "//" (nginx turns a 3xx from the auth service into a 500) and
	// hands over a decoded path. The forward-auth and ext_authz doors read their
	// own URL raw.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if underPath(r.URL.Path, AuthPath) {
			auth.ServeHTTP(w, r)
			return
		}
		if underPath(requestPath(r), ForwardAuthPath) {
			forward.ServeHTTP(w, r)
			return
		}
		// Envoy: any method, the original path appended raw after the prefix
		// (a ServeMux would answer 301 to "..", "//", and 404 elsewhere).
		if strings.HasPrefix(r.RequestURI, ExtAuthzPath) {
			extAuthz.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// underPath reports whether p is base or below it.
func underPath(p, base string) bool {
	return strings.HasPrefix(p, base) && (len(p) == len(base) || p[len(base)] == '/')
}
