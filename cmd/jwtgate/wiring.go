package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/jwtgate/jwtgate/authsvc/admin"
	"github.com/jwtgate/jwtgate/authsvc/door"
	"github.com/jwtgate/jwtgate/authsvc/fastserve"
	"github.com/jwtgate/jwtgate/authsvc/grpcdoor"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/login"
	"github.com/jwtgate/jwtgate/authsvc/oidc"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/server"
	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/authsvc/session/redisstore"
)

// decisionService is what serve and controller run beside their config source:
// the decision endpoint and sign-in pages on --listen, over one session store,
// and the admin API on --admin-bind-address when it is on.
type decisionService struct {
	// listeners[0] is the decision listener; the admin listener follows when on.
	listeners []*listener
	sessions  session.Store
	shared    bool // sessions live in a store every replica shares
	close     func()
	// grpc is the Envoy ext_authz gRPC door, when --grpc-bind-address is on.
	grpc *grpcListener
	// remotes fetch jwksURL key sets and the OpenID providers' keys;
	// providers keep the providers' discovery documents.
	remotes   *keys.Remotes
	providers *oidc.Providers
}

// Close releases the session store.
func (s *decisionService) Close() {
	if s.close != nil {
		s.close()
	}
}

// newDecisionService wires the handlers both commands serve. Sessions live in
// this process unless --redis-url names a shared store.
func newDecisionService(ctx context.Context, store *policy.Store, common commonFlags, log *slog.Logger) (*decisionService, error) {
	proxies, err := login.ParseTrustedProxies(common.trustedProxies)
	if err != nil {
		return nil, err
	}
	redisURL, warning, err := common.redisURLFrom(os.Getenv)
	if err != nil {
		return nil, err
	}
	if warning != "" {
		log.Warn(warning)
	}
	httpServer, err := common.decisionServer()
	if err != nil {
		return nil, err
	}
	svc := &decisionService{}
	svc.remotes, svc.providers, err = newOutbound(ctx, store, log, common)
	if err != nil {
		return nil, err
	}
	records, err := svc.openSessions(ctx, redisURL, common, log)
	if err != nil {
		return nil, err
	}

	pages := login.New(login.Options{
		Store:          store,
		Sessions:       svc.sessions,
		Records:        records,
		Metrics:        login.NewMetrics(common.metricsRegisterer()),
		Log:            log,
		TrustedProxies: proxies,
		Providers:      svc.providers,
	})
	// The cost of the stand-in comparison for unknown users follows the users
	// files, so it is worked out again when they change.
	store.OnChange(func(*policy.Snapshot) { go pages.WarmUp() })
	go pages.WarmUp()
	decisionMetrics := door.NewMetrics(common.metricsRegisterer())
	mux := server.NewMux(server.Options{
		Store:          store,
		Sessions:       svc.sessions,
		Metrics:        decisionMetrics,
		Log:            log,
		Pages:          pages,
		ClientAddr:     func(r *http.Request) string { return login.ClientAddr(r, proxies).String() },
		AuditPerSecond: auditRate(common.auditRate),
	})
	svc.listeners = append(svc.listeners, &listener{name: "decisions", addr: common.listen, handler: mux, log: log,
		limits: common.limits(), delay: common.shutdownDelay, timeout: common.shutdownTimeout, server: httpServer})

	if on(common.grpcAddr) {
		// The same decisions, metrics (door="ext_authz_grpc") and audit lines as
		// the HTTP doors; an audit line's client is the downstream address
		// Envoy reports.
		checker := &door.Checker{Store: store, Sessions: svc.sessions, Metrics: decisionMetrics, Log: log, AuditPerSecond: auditRate(common.auditRate)}
		svc.grpc = &grpcListener{addr: common.grpcAddr, server: grpcdoor.NewServer(&grpcdoor.Door{Checker: checker}, log), log: log,
			delay: common.shutdownDelay, timeout: common.shutdownTimeout}
	}
	if on(common.adminAddr) {
		if err := svc.addAdmin(records, common, log); err != nil {
			return nil, err
		}
	}
	if on(common.pprofAddr) {
		m := http.NewServeMux()
		m.HandleFunc("/debug/pprof/", pprof.Index)
		m.HandleFunc("/debug/pprof/profile", pprof.Profile)
		m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		m.HandleFunc("/debug/pprof/trace", pprof.Trace)
		svc.listeners = append(svc.listeners, &listener{name: "pprof", addr: common.pprofAddr, handler: m, log: log, limits: common.limits(), timeout: time.Second})
	}
	return svc, nil
}

// openSessions opens the session store and its token records: Redis when
// --redis-url names one (shared by the replicas), else this process's memory.
func (svc *decisionService) openSessions(ctx context.Context, redisURL string, common commonFlags, log *slog.Logger) (session.Records, error) {
	if redisURL == "" {
		mem := session.NewMemory()
		svc.sessions = mem
		return &session.MemoryRecords{Log: log, Sessions: mem}, nil
	}
	rs, err := redisstore.New(ctx, redisstore.Options{URL: redisURL, PasswordFile: common.redisPasswordFile, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--redis-url (or --redis-url-file, $%s): %w", redisURLEnv, err)
	}
	svc.sessions, svc.shared = rs, true
	svc.close = func() { _ = rs.Close() }
	return rs, nil
}

// addAdmin adds the admin API listener, which answers only requests that
// carry the token of --admin-token-file.
func (svc *decisionService) addAdmin(records session.Records, common commonFlags, log *slog.Logger) error {
	if common.adminTokenFile == "" {
		return errors.New("--admin-bind-address needs --admin-token-file: the admin API answers only requests that carry its token")
	}
	token, err := admin.LoadToken(common.adminTokenFile)
	if err != nil {
		return fmt.Errorf("--admin-token-file: %w", err)
	}
	h := &admin.Handler{Store: svc.sessions, Records: records, Token: token, Logger: log}
	svc.listeners = append(svc.listeners, &listener{name: "admin", addr: common.adminAddr, handler: h, log: log, limits: common.limits(), timeout: common.shutdownTimeout})
	return nil
}

// opsListeners returns the metrics and probe listeners that are on, for serve
// and controller alike (the controller turns the manager's own servers off, so
// that every listener of the process has the same timeouts). /readyz passes
// while every ready check passes.
func opsListeners(common commonFlags, log *slog.Logger, ready ...func(*http.Request) error) []*listener {
	var out []*listener
	if on(common.metricsAddr) {
		m := http.NewServeMux()
		m.Handle("/metrics", promhttp.HandlerFor(metricsRegistry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
		out = append(out, &listener{name: "metrics", addr: common.metricsAddr, handler: m, log: log, limits: common.limits(), timeout: time.Second})
	}
	if on(common.probeAddr) {
		m := http.NewServeMux()
		m.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		m.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
			for _, check := range ready {
				if err := check(r); err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
			}
			_, _ = w.Write([]byte("ok"))
		})
		out = append(out, &listener{name: "probes", addr: common.probeAddr, handler: m, log: log, limits: common.limits(), delay: common.shutdownDelay, timeout: time.Second})
	}
	return out
}

// httpLimits bound what one client may hold of a listener: the time to send
// the headers and the whole request (a body trickled a byte at a time must not
// hold a connection forever), how long a kept-alive connection may sit idle,
// and the size of the headers and the body.
type httpLimits struct {
	readHeader time.Duration
	read       time.Duration
	idle       time.Duration
	maxHeader  int
	maxBody    int64
}

// defaultLimits serve every listener. Nothing jwtgate answers needs a large
// or slow request: decisions have no body, sign-in forms and JSON are a few
// hundred bytes (the sign-in handlers also cap theirs at 16 KiB).
var defaultLimits = httpLimits{
	readHeader: 10 * time.Second,
	read:       30 * time.Second,
	idle:       120 * time.Second,
	maxHeader:  64 << 10,
	maxBody:    64 << 10,
}

// limits are the listeners' limits: defaultLimits unless a test set its own.
func (c *commonFlags) limits() httpLimits {
	if c.httpLimits != nil {
		return *c.httpLimits
	}
	return defaultLimits
}

// limitBody refuses a request whose declared body is over max with 413 before
// the handler runs, and cuts a longer body without a declared length (chunked)
// at max, so that the handler's read fails.
func limitBody(h http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body too large: at most %d bytes", max), http.StatusRequestEntityTooLarge)
			return
		}
		if len(r.TransferEncoding) > 0 {
			// A chunked body: net/http dropped any Content-Length beside it,
			// which a proxy in front may have believed instead. Nothing here
			// needs a chunked body, so the connection ends after the answer and
			// whatever followed the chunks is never read as a request.
			w.Header().Set("Connection", "close")
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		h.ServeHTTP(w, r)
	})
}

// on reports whether a bind address turns its listener on ("0" and "" are off).
func on(addr string) bool { return addr != "" && addr != "0" }

// listener serves one HTTP handler until its context ends. It is a
// controller-runtime runnable that every replica runs, leader or not; serve runs
// it directly.
type listener struct {
	name    string
	addr    string
	handler http.Handler
	log     *slog.Logger
	limits  httpLimits
	server  string        // serverFastHTTP or net/http ("")
	delay   time.Duration // not ready for this long before closing
	timeout time.Duration // for in-flight requests to finish

	serving  atomic.Bool
	draining atomic.Bool
}

func (l *listener) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then reports not ready for the shutdown delay (so
// load balancers stop sending first) and drains in-flight requests.
func (l *listener) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return fmt.Errorf("%s: listening on %s: %w", l.name, l.addr, err)
	}
	lim := l.limits
	if lim == (httpLimits{}) {
		lim = defaultLimits
	}
	srv := l.newServer(lim)
	// Closed here too: fasthttp's Shutdown misses a listener its Serve has
	// not registered yet (a context ended right after Start).
	defer func() { _ = ln.Close() }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	l.serving.Store(true)
	l.log.Info("listening", "listener", l.name, "address", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	l.draining.Store(true)
	if l.delay > 0 {
		l.log.Info("shutting down: not ready, draining", "listener", l.name, "delay", l.delay)
		time.Sleep(l.delay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: draining: %w", l.name, err)
	}
	return nil
}

// httpServer is what a listener needs of net/http's and fasthttp's servers.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// newServer is the listener's HTTP server: fasthttp when l.server says so
// (the decision listener's --http-server), else net/http.
func (l *listener) newServer(lim httpLimits) httpServer {
	if l.server == serverFastHTTP {
		return fastserve.New(l.handler, fastserve.Limits{ReadHeader: lim.readHeader, Read: lim.read, Idle: lim.idle, MaxHeader: lim.maxHeader, MaxBody: lim.maxBody}, l.log)
	}
	return &http.Server{
		Handler:           limitBody(l.handler, lim.maxBody),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeader,
	}
}

// ReadyCheck passes while the listener serves and is not draining.
func (l *listener) ReadyCheck(*http.Request) error {
	switch {
	case l.draining.Load():
		return errors.New("shutting down")
	case !l.serving.Load():
		return fmt.Errorf("%s listener not started", l.name)
	}
	return nil
}

// grpcListener serves the gRPC door until its context ends, then drains the
// same way the decision listener does: health reports NOT_SERVING for the
// shutdown delay, then calls in flight finish within the shutdown timeout. Like
// listener, every replica runs it, leader or not.
type grpcListener struct {
	addr    string
	server  *grpcdoor.Server
	log     *slog.Logger
	delay   time.Duration
	timeout time.Duration
}

func (g *grpcListener) NeedLeaderElection() bool { return false }

func (g *grpcListener) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		return fmt.Errorf("grpc: listening on %s (--grpc-bind-address): %w", g.addr, err)
	}
	g.log.Info("listening", "listener", "grpc", "address", ln.Addr().String())
	if err := g.server.Run(ctx, ln, g.delay, g.timeout); err != nil {
		return fmt.Errorf("grpc: %w", err)
	}
	return nil
}

// auditRate maps --audit-denied-rate to server.Options.AuditPerSecond, where 0
// means the default and a negative value turns the lines off.
func auditRate(flag float64) float64 {
	if flag <= 0 {
		return -1
	}
	return flag
}

// metricsRegistry is where every metric of the process is registered (and
// controller-runtime registers its own): the registry that /metrics on
// --metrics-bind-address exposes in serve and controller alike. Only this package names it; the packages
// that make metrics take a prometheus.Registerer.
var metricsRegistry = ctrlmetrics.Registry

// metricsRegisterer is common.registry, or the process registry.
func (c commonFlags) metricsRegisterer() prometheus.Registerer {
	if c.registry != nil {
		return c.registry
	}
	return metricsRegistry
}

// newStore returns the store both commands publish into, with its metrics.
func newStore() *policy.Store {
	s := policy.NewStore()
	s.UseMetrics(policy.NewMetrics(metricsRegistry))
	return s
}

// newOutbound fetches, in the background, the jwksURL key sets and the
// OpenID providers' discovery documents and keys for the policies of store,
// and stops fetching what no published policy uses any more. Every request
// goes through the guarded outbound client (authsvc/outbound), through proxy
// when --outbound-proxy names one.
func newOutbound(ctx context.Context, store *policy.Store, log *slog.Logger, common commonFlags) (*keys.Remotes, *oidc.Providers, error) {
	proxy := common.outboundProxy
	opts := keys.RemoteOptions{Logger: log, Metrics: keys.NewMetrics(common.metricsRegisterer())}
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, fmt.Errorf("--outbound-proxy %q: write it as http://HOST:PORT or https://HOST:PORT", proxy)
		}
		opts.Proxy = u
	}
	remotes := keys.NewRemotes(ctx, opts)
	providers := oidc.NewProviders(ctx, oidc.Options{Remotes: remotes, Logger: log, Proxy: opts.Proxy})
	store.OnChange(func(s *policy.Snapshot) {
		issuers := map[string]bool{}
		for _, p := range s.Policies() {
			if p.Login != nil && p.Login.OIDC != nil {
				issuers[p.Login.OIDC.IssuerURL] = true
			}
		}
		providers.Retain(issuers)
		inUse := s.RemoteURLs()
		for u := range providers.JWKSURLs() {
			inUse[u] = true
		}
		remotes.Retain(inUse)
	})
	return remotes, providers, nil
}
