package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/filesource"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/standalone"
)

// commonFlags are the flags serve and controller share, named as the README and
// controller-runtime name them.
type commonFlags struct {
	// registry is where the decision service registers its metrics; nil: the
	// process registry (tests give each service its own).
	registry        prometheus.Registerer
	listen          string
	metricsAddr     string
	probeAddr       string
	logLevel        string
	logFormat       string
	cacheSize       int
	shutdownDelay   time.Duration
	shutdownTimeout time.Duration
	trustedProxies  string

	redisURL          string
	redisURLFile      string
	redisPasswordFile string
	adminAddr         string
	adminTokenFile    string
	auditRate         float64
	pprofAddr         string
	grpcAddr          string
	outboundProxy     string
	httpServer        string

	httpLimits *httpLimits // tests only; nil: defaultLimits
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", ":8000", "address of the decision service and sign-in pages")
	fs.StringVar(&c.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 turns it off")
	fs.StringVar(&c.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; 0 turns it off")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "json", "json or text")
	fs.IntVar(&c.cacheSize, "token-cache-size", 65536, "verified tokens kept in memory (0 turns the cache off)")
	fs.DurationVar(&c.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, report not ready for this long before closing the listener, so load balancers stop sending first")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For / X-Real-IP name the client (failed sign-ins are counted per client address)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "on SIGTERM, how long in-flight requests may take to finish")
	fs.StringVar(&c.redisURL, "redis-url", "", "shared session store: redis://[:password@]host:6379/0, redis-sentinel://[:password@]h1:26379,h2:26379/MASTER_NAME[/DB][?sentinel_password=...] or redis-cluster://[:password@]h1:6379,h2:6379 (rediss... for TLS); default $"+redisURLEnv+", which keeps a password out of the process arguments; empty: sessions live in this process only")
	fs.StringVar(&c.redisURLFile, "redis-url-file", "", "file holding the --redis-url value (mounted from a Secret); wins over $"+redisURLEnv)
	fs.StringVar(&c.redisPasswordFile, "redis-password-file", "", "file holding the Redis password (mounted from a Secret), instead of a password in the URL; with Sentinel, the master's")
	fs.StringVar(&c.adminAddr, "admin-bind-address", "0", "address of the admin API (POST /admin/revoke, GET /admin/tokens); 0 turns it off")
	fs.StringVar(&c.adminTokenFile, "admin-token-file", "", "file holding the bearer token the admin API requires")
	fs.StringVar(&c.pprofAddr, "pprof-bind-address", "0", "address of Go's /debug/pprof/ profiles, for performance work; 0 turns it off (keep it on loopback)")
	fs.StringVar(&c.grpcAddr, "grpc-bind-address", "0", "address of the Envoy ext_authz gRPC door (envoy.service.auth.v3.Authorization/Check and grpc.health.v1, plaintext HTTP/2), e.g. :9001; 0 turns it off")
	fs.StringVar(&c.httpServer, "http-server", defaultHTTPServer, "HTTP/1.1 server of the decision listener (--listen): fasthttp, or net/http (Go's own; more CPU per decision, see bench/README.md)")
	fs.StringVar(&c.outboundProxy, "outbound-proxy", "", "proxy for jwtgate's own requests (jwksURL key sets, OpenID providers' discovery, keys and token exchange), e.g. http://proxy:3128; the environment's HTTP(S)_PROXY is ignored. Targets are resolved and checked before sending: link-local, unspecified and multicast addresses are refused")
	fs.Float64Var(&c.auditRate, "audit-denied-rate", 100, "audit log lines of denied decisions per second at most (floods are sampled; the metrics count every one); 0 turns them off")
}

func (c *commonFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use json or text", c.logFormat)
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "jwtgate")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "jwtgate")
	}
	return filepath.Join(os.TempDir(), "jwtgate-state")
}

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	var paths pathsFlag
	fs.Var(&paths, "f", "AuthPolicy and Secret YAML file or folder (repeatable); reloaded on change")
	stateDir := fs.String("state-dir", defaultStateDir(), "folder for signing keys jwtgate creates (mode 0600)")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	paths = append(paths, fs.Args()...)
	if len(paths) == 0 {
		return errors.New("name the AuthPolicy and Secret files or folders with -f")
	}
	log, err := common.logger()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	store := newStore()
	var cache *policy.TokenCache
	if common.cacheSize > 0 {
		cache = policy.NewTokenCache(common.cacheSize)
	}
	svc, err := newDecisionService(ctx, store, common, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	loader := &standalone.Loader{
		Paths:    paths,
		StateDir: *stateDir,
		Remotes:  svc.remotes,
		Cache:    cache,
		Store:    store,
		Log:      log,
	}
	reload := func() bool {
		problems := loader.Reload()
		for _, p := range problems {
			log.Error("config problem", "problem", p.Error())
		}
		snap := store.Load()
		log.Info("config loaded", "policies", snap.Len(), "problems", len(problems), "generation", snap.Generation)
		// A reload parses every file and compiles every policy: hand the
		// garbage back to the OS now rather than carry it at the peak.
		debug.FreeOSMemory()
		return len(problems) == 0
	}
	reload()
	watcher, err := filesource.NewWatcher(paths, 200*time.Millisecond, log)
	if err != nil {
		return fmt.Errorf("watching %v: %w", paths, err)
	}
	go watcher.Run(ctx, func() { reload() })

	return serveAll(ctx, log, common, svc)
}

// serveAll runs the service's listeners, metrics and probes until ctx ends, then
// drains: readiness drops first, in-flight requests finish.
func serveAll(ctx context.Context, log *slog.Logger, common commonFlags, svc *decisionService) error {
	listeners := svc.listeners
	decisions := listeners[0]
	// The probes stay up while the decision listener drains, so that readiness
	// can say so.
	listeners = append(listeners, opsListeners(common, log, decisions.ReadyCheck)...)
	runners := make([]interface{ Start(context.Context) error }, 0, len(listeners)+1)
	for _, l := range listeners {
		runners = append(runners, l)
	}
	if svc.grpc != nil {
		runners = append(runners, svc.grpc)
	}
	errc := make(chan error, len(runners))
	for _, r := range runners {
		go func() { errc <- r.Start(ctx) }()
	}
	for range runners {
		// One listener failing (e.g. its port is taken) ends the process.
		if err := <-errc; err != nil {
			return err
		}
	}
	log.Info("stopped")
	return nil
}
