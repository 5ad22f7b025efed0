package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Options wire the decision service's listener.
type Options struct {
	Store    *policy.Store
	Sessions policy.SessionChecker // for spec.login.revocation: strict; may be nil
	Metrics  *Metrics
	Log      *slog.Logger
	// Pages serves everything else under /jwtgate/ (sign-in, refresh, logout,
	// jwks.json); nil leaves those paths unanswered (404).
	Pages http.Handler
	// ClientAddr names the client in log lines; nil: the direct peer.
	ClientAddr func(*http.Request) string
	// Now is the decision clock; nil: time.Now. Tests with a fake clock set it.
	Now func() time.Time
	// AuditPerSecond bounds the audit lines of denied decisions; see Auth.
	AuditPerSecond float64
}

// NewMux returns the handler of the decision listener (--listen).
func NewMux(o Options) http.Handler {
	auth := &Auth{Store: o.Store, Sessions: o.Sessions, Metrics: o.Metrics, Log: o.Log, ClientAddr: o.ClientAddr, Now: o.Now, AuditPerSecond: o.AuditPerSecond}
	mux := http.NewServeMux()
	mux.Handle(AuthPath, auth)
	mux.Handle(AuthPath+"/", auth)
	if o.Pages != nil {
		mux.Handle("/jwtgate/", o.Pages)
	}
	// Decisions skip the ServeMux's pattern matching: they are nearly every
	// request this listener sees.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == AuthPath || (len(p) > len(AuthPath) && p[len(AuthPath)] == '/' && p[:len(AuthPath)] == AuthPath) {
			auth.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
