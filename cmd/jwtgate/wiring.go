package main

import (
	"log/slog"
	"net/http"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/jwtgate/jwtgate/authsvc/login"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/server"
	"github.com/jwtgate/jwtgate/authsvc/session"
)

// decisionService is what serve and controller put on the --listen address: the
// decision endpoint and the sign-in pages, over one store and one session store.
type decisionService struct {
	handler  http.Handler
	sessions session.Store
}

// newDecisionService wires the handlers both commands serve. Sessions live in
// this process unless a shared store is configured.
func newDecisionService(store *policy.Store, common commonFlags, log *slog.Logger) (*decisionService, error) {
	proxies, err := login.ParseTrustedProxies(common.trustedProxies)
	if err != nil {
		return nil, err
	}
	sessions := session.NewMemory()
	pages := login.New(login.Options{
		Store:          store,
		Sessions:       sessions,
		Metrics:        login.NewMetrics(ctrlmetrics.Registry),
		Log:            log,
		TrustedProxies: proxies,
	})
	// The cost of the stand-in comparison for unknown users follows the users
	// files, so it is worked out again when they change.
	store.OnChange(func(*policy.Snapshot) { go pages.WarmUp() })
	go pages.WarmUp()
	mux := server.NewMux(server.Options{
		Store:      store,
		Sessions:   sessions,
		Metrics:    server.NewMetrics(ctrlmetrics.Registry),
		Log:        log,
		Pages:      pages,
		ClientAddr: func(r *http.Request) string { return login.ClientAddr(r, proxies).String() },
	})
	return &decisionService{handler: mux, sessions: sessions}, nil
}
