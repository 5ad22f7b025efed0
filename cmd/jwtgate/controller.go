package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/proxycheck"
	"github.com/jwtgate/jwtgate/controllers"
)

// controllerFlags are the flags of `jwtgate controller` beyond the common ones.
type controllerFlags struct {
	kubeconfig       string
	leaderElect      bool
	leaderElectionID string
	leaderElectionNS string
	watchNamespaces  string
	replicas         int
	hostClaims       string
	proxyCheck       bool
	serviceName      string
}

func (c *controllerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster config, then $KUBECONFIG, then ~/.kube/config")
	fs.BoolVar(&c.leaderElect, "leader-elect", false, "elect a leader among replicas: every replica serves decisions, only the leader writes status")
	fs.StringVar(&c.leaderElectionID, "leader-election-id", "jwtgate-controller.jwtgate.dev", "name of the Lease the replicas elect a leader with")
	fs.StringVar(&c.leaderElectionNS, "leader-election-namespace", "", "namespace of the Lease; default: the pod's namespace (required outside a cluster)")
	fs.StringVar(&c.watchNamespaces, "watch-namespaces", "", "comma-separated namespaces to watch AuthPolicies and Secrets in; empty: all")
	fs.StringVar(&c.hostClaims, "host-claims", "", "which namespaces may claim which hosts in spec.hosts, e.g. 'shop=*.shop.example.com,shop.example.com;team-b=b.example.com' (*.D: every host under D); a namespace not named may claim none; empty: any namespace may claim any host, and the first policy to claim one keeps it")
	fs.BoolVar(&c.proxyCheck, "proxy-check", true, "read the Ingresses (and, when their CRDs are installed, HTTPRoutes, Envoy Gateway SecurityPolicies, Traefik Middlewares, Istio AuthorizationPolicies) that point at jwtgate, and report configurations that leak in each policy's status (condition ProxyConfigured, status.proxyFindings) and as events on the proxy objects; read-only")
	fs.StringVar(&c.serviceName, "service-name", "jwtgate", "jwtgate's Service, NAMESPACE/NAME (or NAME: in any namespace): --proxy-check counts an auth URL or backend naming it as pointing at jwtgate")
	fs.IntVar(&c.replicas, "replicas-hint", replicasFromEnv(), "how many replicas serve decisions (default $JWTGATE_REPLICAS, else 1); with more than one and no shared session store, policies with login get SessionsShared=False")
}

func replicasFromEnv() int {
	if n, err := strconv.Atoi(os.Getenv("JWTGATE_REPLICAS")); err == nil && n > 0 {
		return n
	}
	return 1
}

func (c *controllerFlags) namespaces() []string {
	var out []string
	for _, ns := range strings.Split(c.watchNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}

// restConfig resolves the API server: --kubeconfig, else in-cluster, $KUBECONFIG,
// ~/.kube/config (controller-runtime's order).
func (c *controllerFlags) restConfig() (*rest.Config, error) {
	if c.kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", c.kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("finding the API server (not in a cluster, no $KUBECONFIG, no ~/.kube/config; or pass --kubeconfig): %w", err)
	}
	return cfg, nil
}

func runController(args []string) error {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	var common commonFlags
	common.register(fs)
	var cf controllerFlags
	cf.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	log, err := common.logger()
	if err != nil {
		return err
	}
	cfg, err := cf.restConfig()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return controllerMain(ctx, cfg, log, common, cf)
}

// controllerMain runs the manager (the AuthPolicy controller, metrics and probes)
// and the decision listener until ctx ends.
func controllerMain(ctx context.Context, cfg *rest.Config, log *slog.Logger, common commonFlags, cf controllerFlags) error {
	logger := logr.FromSlogHandler(log.Handler())
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	mgr, err := newManager(cfg, logger, common, cf)
	if err != nil {
		return err
	}
	claims, err := policy.ParseHostClaims(cf.hostClaims)
	if err != nil {
		return fmt.Errorf("--host-claims: %w", err)
	}
	store := newStore()
	store.SetHostClaims(claims)
	svc, err := newDecisionService(ctx, store, common, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	var cache *policy.TokenCache
	if common.cacheSize > 0 {
		cache = policy.NewTokenCache(common.cacheSize)
	}
	leader, err := addLeaderElector(mgr, cfg, cf, logger)
	if err != nil {
		return err
	}
	rec := &controllers.AuthPolicyReconciler{
		Client:         mgr.GetClient(),
		SecretReader:   mgr.GetAPIReader(),
		Store:          store,
		Remotes:        svc.remotes,
		Providers:      svc.providers,
		TokenCache:     cache,
		Recorder:       mgr.GetEventRecorder("jwtgate-controller"),
		Replicas:       cf.replicas,
		SharedSessions: svc.shared,
		Leader:         leader,
	}
	if cf.proxyCheck {
		if err := addProxyChecker(mgr, rec, cf, leader, logger); err != nil {
			return err
		}
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the AuthPolicy controller: %w", err)
	}
	if err := addServing(mgr, cfg, log, common, svc, rec); err != nil {
		return err
	}
	log.Info("starting controller", "namespaces", cf.namespaces(), "leader_elect", cf.leaderElect, "proxy_check", cf.proxyCheck, "replicas_hint", cf.replicas)
	return mgr.Start(ctx)
}

// newManager makes the controller-runtime manager: our scheme, the caches
// limited to the watched namespaces, no servers and no leader election of its
// own, and a shutdown that waits for the decision listener to drain.
func newManager(cfg *rest.Config, logger logr.Logger, common commonFlags, cf controllerFlags) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	// The decision listener reports not ready for --shutdown-delay, then drains
	// for up to --shutdown-timeout: the manager must wait for both.
	gracePeriod := common.shutdownDelay + common.shutdownTimeout + 5*time.Second
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme,
		Logger: logger,
		Cache:  controllers.CacheOptions(cf.namespaces()),
		Client: controllers.ClientOptions(),
		// Metrics and probes are served by opsListeners (addServing), with the
		// request timeouts of every other listener; the manager's servers
		// bound only the headers.
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// Not the manager's leader election: it ends the process when a renewal
		// fails (an API-server outage longer than the renew deadline), and a
		// replica restarted during the outage never gets ready. The elector
		// (addLeaderElector) only turns status writes on and off.
		LeaderElection:          false,
		GracefulShutdownTimeout: &gracePeriod,
	})
	if err != nil {
		return nil, fmt.Errorf("starting the controller manager: %w", err)
	}
	return mgr, nil
}

// addLeaderElector adds the lease elector that turns status writes on for one
// replica, with --leader-elect; nil without: every replica writes.
func addLeaderElector(mgr ctrl.Manager, cfg *rest.Config, cf controllerFlags, logger logr.Logger) (controllers.Leader, error) {
	if !cf.leaderElect {
		return nil, nil
	}
	el, err := controllers.NewLeaderElector(cfg, controllers.LeaderElectorOptions{
		Namespace: cf.leaderElectionNS,
		Name:      cf.leaderElectionID,
		Log:       logger.WithName("leader-election"),
	})
	if err != nil {
		return nil, err
	}
	if err := mgr.Add(el); err != nil {
		return nil, err
	}
	return el, nil
}

// addProxyChecker adds --proxy-check's checker of the proxy objects that point
// at jwtgate's Service.
func addProxyChecker(mgr ctrl.Manager, rec *controllers.AuthPolicyReconciler, cf controllerFlags, leader controllers.Leader, logger logr.Logger) error {
	service, err := parseServiceName(cf.serviceName)
	if err != nil {
		return fmt.Errorf("--service-name: %w", err)
	}
	rec.Proxy = controllers.NewProxyChecker(controllers.ProxyCheckOptions{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Cache: mgr.GetCache(),
		Namespaces: cf.namespaces(), Service: service,
		Recorder: mgr.GetEventRecorder("jwtgate-proxycheck"), Leader: leader, Policies: rec,
		Log: logger.WithName("proxycheck"),
	})
	return mgr.Add(rec.Proxy)
}

// addServing adds what serves to the manager: the decision listeners, the gRPC
// door, the API server probe, and the metrics and probe listeners.
func addServing(mgr ctrl.Manager, cfg *rest.Config, log *slog.Logger, common commonFlags, svc *decisionService, rec *controllers.AuthPolicyReconciler) error {
	for _, l := range svc.listeners {
		if err := mgr.Add(l); err != nil {
			return err
		}
	}
	if svc.grpc != nil {
		if err := mgr.Add(svc.grpc); err != nil {
			return err
		}
	}
	// Every replica probes the API server: a metric and a warning say how old the
	// snapshot decisions serve from is while it is unreachable. Readiness does
	// not depend on it (an API outage must not empty the Service).
	probe, err := controllers.NewAPIServerProbe(cfg, 0, log.With("component", "apiserver-probe"), metricsRegistry)
	if err != nil {
		return err
	}
	if err := mgr.Add(probe); err != nil {
		return err
	}
	// Ready once every policy that existed at start has been compiled, and while
	// the decision listener serves.
	for _, l := range opsListeners(common, log, rec.ReadyCheck, svc.listeners[0].ReadyCheck) {
		if err := mgr.Add(l); err != nil {
			return err
		}
	}
	return nil
}

// parseServiceName reads --service-name: NAMESPACE/NAME or NAME, each a DNS
// label as Kubernetes names Services and namespaces.
func parseServiceName(s string) (proxycheck.Service, error) {
	svc := proxycheck.ParseService(strings.TrimSpace(s))
	if svc.Namespace == "" && strings.Contains(s, "/") {
		return svc, fmt.Errorf("%q: the namespace before / is empty; write NAMESPACE/NAME or NAME", s)
	}
	if errs := validation.IsDNS1123Label(svc.Name); len(errs) > 0 {
		return svc, fmt.Errorf("%q: the Service name %q is not valid (%s); write NAMESPACE/NAME or NAME, e.g. jwtgate/jwtgate", s, svc.Name, strings.Join(errs, "; "))
	}
	if svc.Namespace != "" {
		if errs := validation.IsDNS1123Label(svc.Namespace); len(errs) > 0 {
			return svc, fmt.Errorf("%q: the namespace %q is not valid (%s); write NAMESPACE/NAME or NAME", s, svc.Namespace, strings.Join(errs, "; "))
		}
	}
	return svc, nil
}
