package controllers_test

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/oidc"
	"github.com/jwtgate/jwtgate/authsvc/outbound"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/proxycheck"
	"github.com/jwtgate/jwtgate/authsvc/server"
	"github.com/jwtgate/jwtgate/controllers"
)

// The suite runs one kube-apiserver and etcd (envtest) for the package. Each test
// has its own namespace and starts its own manager(s) limited to it, as
// --watch-namespaces does, so tests do not see each other's objects.
var (
	restCfg   *rest.Config
	k8s       client.Client
	scheme    = runtime.NewScheme()
	envtestUp bool
	testEnv   *envtest.Environment // for AddUser: API users with narrower RBAC
)

// timeout bounds every wait: generous, for a loaded 2-core machine.
const timeout = 20 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if testing.Short() {
		os.Exit(m.Run()) // envtest tests skip themselves
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		// `make test` sets it; a plain `go test` finds the cached binaries (or
		// builds them, once) with the same script.
		out, err := exec.Command(filepath.Join("..", "hack", "envtest-bins.sh")).Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "envtest binaries: %v (run make envtest-bins, or go test -short)\n", err)
			os.Exit(1)
		}
		assets = strings.TrimSpace(string(out))
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	testEnv = env
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		os.Exit(1)
	}
	restCfg = cfg
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintf(os.Stderr, "client: %v\n", err)
		_ = env.Stop()
		os.Exit(1)
	}
	envtestUp = true
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
	}
	os.Exit(code)
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	if !envtestUp {
		t.Skip("envtest (kube-apiserver + etcd) not started: -short")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "jwtgate-test-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	// envtest runs no namespace controller: a deleted namespace stays Terminating
	// with its objects, which is harmless here.
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	return ns.Name
}

// replica is one jwtgate controller process: a manager and its decision snapshot.
type replica struct {
	t     testing.TB
	name  string
	mgr   manager.Manager
	rec   *controllers.AuthPolicyReconciler
	store *policy.Store
	reg   *prometheus.Registry // the replica's metrics, as the process registry holds them in production
	mux   http.Handler
	probe *controllers.APIServerProbe // when replicaOptions.probeInterval is set
	proxy *controllers.ProxyChecker   // when replicaOptions.proxyCheck is set
	// recorded counts the events the proxy checker recorded, by reason.
	recorded *countingRecorder
	elect    *controllers.LeaderElector // when replicaOptions.leaderElect is set

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan error
}

type replicaOptions struct {
	name        string
	leaderElect bool
	replicas    int // --replicas-hint
	// Lease timing with leaderElect; defaults 6 s, 4 s, 500 ms: short, but with
	// room for a loaded machine.
	leaseDuration, renewDeadline, retryPeriod time.Duration

	// Fault tests: the API server to talk to (default restCfg), the jwksURL
	// fetcher's options, the API-server probe (off when 0) and its log, and a
	// health probe address serving /readyz with the checks controller.go adds.
	cfg           *rest.Config
	remotes       keys.RemoteOptions
	probeInterval time.Duration
	probeLog      *slog.Logger
	healthAddr    string
	hostClaims    string // --host-claims

	// --proxy-check: the checker runs when proxyCheck is set, looking for
	// CRDs every proxyInterval (default 200 ms), counting what it records in
	// recorded and logging to proxyLog.
	proxyCheck    bool
	proxyInterval time.Duration
	proxyLog      logr.Logger
}

// startReplica starts a manager watching ns, wired as `jwtgate controller` wires it.
func startReplica(t *testing.T, ns string, o replicaOptions) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := restCfg
	if o.cfg != nil {
		cfg = o.cfg
	}
	healthAddr := "0"
	if o.healthAddr != "" {
		healthAddr = o.healthAddr
	}
	if o.remotes.Logger == nil {
		o.remotes.Logger = slog.New(slog.DiscardHandler)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions([]string{ns}),
		Client:                 controllers.ClientOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: healthAddr,
		// Several managers in one process register the same controller name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		// As in production: jwtgate's own elector, never the manager's.
		LeaderElection: false,
	})
	if err != nil {
		cancel()
		t.Fatalf("manager: %v", err)
	}
	var elect *controllers.LeaderElector
	var leader controllers.Leader
	if o.leaderElect {
		elect, err = controllers.NewLeaderElector(cfg, controllers.LeaderElectorOptions{
			Namespace:     ns,
			Name:          "jwtgate-test",
			Identity:      "replica-" + o.name + "_" + ns,
			LeaseDuration: cmp.Or(o.leaseDuration, 6*time.Second),
			RenewDeadline: cmp.Or(o.renewDeadline, 4*time.Second),
			RetryPeriod:   cmp.Or(o.retryPeriod, 500*time.Millisecond),
		})
		if err != nil {
			cancel()
			t.Fatalf("leader elector: %v", err)
		}
		if err := mgr.Add(elect); err != nil {
			cancel()
			t.Fatal(err)
		}
		leader = elect
	}
	reg := prometheus.NewRegistry()
	store := policy.NewStore()
	store.UseMetrics(policy.NewMetrics(reg))
	if o.remotes.Metrics == nil {
		o.remotes.Metrics = keys.NewMetrics(reg)
	}
	claims, err := policy.ParseHostClaims(o.hostClaims)
	if err != nil {
		cancel()
		t.Fatalf("host claims: %v", err)
	}
	store.SetHostClaims(claims)
	remotes := keys.NewRemotes(ctx, o.remotes)
	rec := &controllers.AuthPolicyReconciler{
		Client:       mgr.GetClient(),
		SecretReader: mgr.GetAPIReader(),
		Store:        store,
		Remotes:      remotes,
		// As wiring.go makes them (the guarded outbound client), with retries
		// after a failure sooner than the default 10 s.
		Providers: oidc.NewProviders(ctx, oidc.Options{Remotes: remotes, Logger: o.remotes.Logger, MinInterval: 200 * time.Millisecond,
			Client: outbound.NewClient(outbound.Options{Timeout: oidc.DefaultTimeout, CheckRedirect: oidc.CheckRedirect})}),
		TokenCache: policy.NewTokenCache(1024),
		Recorder:   mgr.GetEventRecorder("jwtgate-controller"),
		Replicas:   o.replicas,
		Leader:     leader,
	}
	var proxy *controllers.ProxyChecker
	var recorded *countingRecorder
	if o.proxyCheck {
		recorded = &countingRecorder{EventRecorder: mgr.GetEventRecorder("jwtgate-proxycheck"), n: map[string]int{}}
		proxy = controllers.NewProxyChecker(controllers.ProxyCheckOptions{
			Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Cache: mgr.GetCache(),
			Namespaces: []string{ns}, Service: proxycheck.ParseService("jwtgate"),
			Interval: cmp.Or(o.proxyInterval, 200*time.Millisecond),
			Recorder: recorded, Leader: leader, Policies: rec, Log: o.proxyLog,
		})
		rec.Proxy = proxy
		if err := mgr.Add(proxy); err != nil {
			cancel()
			t.Fatal(err)
		}
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		cancel()
		t.Fatalf("setup: %v", err)
	}
	if o.healthAddr != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			t.Fatal(err)
		}
		if err := mgr.AddReadyzCheck("policies", rec.ReadyCheck); err != nil {
			t.Fatal(err)
		}
	}
	var probe *controllers.APIServerProbe
	if o.probeInterval > 0 {
		probe, err = controllers.NewAPIServerProbe(cfg, o.probeInterval, o.probeLog, reg)
		if err != nil {
			t.Fatal(err)
		}
		if err := mgr.Add(probe); err != nil {
			t.Fatal(err)
		}
	}
	r := &replica{
		t:        t,
		proxy:    proxy,
		recorded: recorded,
		probe:    probe,
		elect:    elect,
		name:     o.name,
		mgr:      mgr,
		rec:      rec,
		store:    store,
		reg:      reg,
		mux:      server.NewMux(server.Options{Store: store, Log: slog.New(slog.DiscardHandler)}),
		cancel:   cancel,
		done:     make(chan error, 1),
	}
	go func() { r.done <- mgr.Start(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop ends the manager and waits for it (the lease is released on the way out).
func (r *replica) stop() {
	r.stopOnce.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			r.t.Logf("replica %s: the manager ended with %v", r.name, err)
		}
	})
}

// leading: the replica holds the lease (always, without leader election).
func (r *replica) leading() bool {
	return r.elect == nil || r.elect.Leading()
}

// decide asks the replica's decision listener, as ingress-nginx would, for
// GET https://shop.example.com<path> with the token, and returns the status.
func (r *replica) decide(ns, name, path, token string) int {
	req := httptest.NewRequest(http.MethodGet, "/jwtgate/auth/"+ns+"/"+name, nil)
	req.Header.Set("X-Original-URL", "https://shop.example.com"+path)
	req.Header.Set("X-Original-Method", http.MethodGet)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	r.mux.ServeHTTP(w, req)
	return w.Code
}

// eventually polls cond until it holds or the timeout ends; cond's string says
// what it saw, for the failure message.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		if time.Now().After(deadline) {
			t.Fatalf("after %s, still waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitCondition waits until the policy's condition has status and reason for its
// current generation, and returns it.
func waitCondition(t *testing.T, ns, name, condType string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	eventually(t, fmt.Sprintf("%s/%s %s=%s (%s)", ns, name, condType, status, reason), func() (bool, string) {
		var ap v1alpha1.AuthPolicy
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ap); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(ap.Status.Conditions, condType)
		if c == nil {
			return false, fmt.Sprintf("no %s condition; status %+v", condType, ap.Status)
		}
		got = *c
		ok := c.Status == status && c.Reason == reason && ap.Status.ObservedGeneration == ap.Generation && c.ObservedGeneration == ap.Generation
		return ok, fmt.Sprintf("%s=%s reason %s observedGeneration %d/%d: %s", condType, c.Status, c.Reason, ap.Status.ObservedGeneration, ap.Generation, c.Message)
	})
	return got
}

// signer is an ES256 key pair that mints tokens with golang-jwt, a library other
// than the verifier's.
type signer struct {
	key *ecdsa.PrivateKey
}

func newSigner(t *testing.T) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{key: k}
}

// publicPEM is the public key as a PEM block, as a user puts it in a Secret.
func (s signer) publicPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// privatePEM is the key as PKCS#8 PEM: a signing Secret's private.pem.
func (s signer) privatePEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

var tokenSeq atomic.Int64

func (s signer) token(t *testing.T, roles ...string) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":   "alice",
		"iat":   now.Unix(),
		"exp":   now.Add(10 * time.Minute).Unix(),
		"jti":   fmt.Sprint(tokenSeq.Add(1)),
		"roles": roles,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// keySecret is a Secret holding a public key at key.pem.
func keySecret(t *testing.T, ns, name string, s signer) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string][]byte{"key.pem": s.publicPEM(t)},
	}
}

// jwtPolicy accepts ES256 tokens verified by secretName's key.pem; /admin/ needs
// the admin role.
func jwtPolicy(ns, name, secretName string, hosts ...string) *v1alpha1.AuthPolicy {
	return &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts: hosts,
			JWT: &v1alpha1.JWTSpec{
				Algorithms: []v1alpha1.Algorithm{"ES256"},
				Keys:       []v1alpha1.KeySource{{SecretRef: &v1alpha1.SecretKeyRef{Name: secretName, Key: "key.pem"}}},
			},
			Rules: []v1alpha1.Rule{
				{Path: "/public/", Public: true},
				{Path: "/admin/", Roles: []string{"admin"}},
			},
		},
	}
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// update re-reads obj and applies change to it, retrying on conflicts.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	ctx := context.Background()
	for range 10 {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatalf("reading %s: %v", obj.GetName(), err)
		}
		change(obj)
		err := k8s.Update(ctx, obj)
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "the object has been modified") {
			t.Fatalf("updating %s: %v", obj.GetName(), err)
		}
	}
	t.Fatalf("updating %s: conflicts", obj.GetName())
}

// restrictedUser creates role (cluster-wide, deleted when the test ends) and an
// API user bound to it alone, for tests of what the controller does under RBAC
// narrower than the chart's. Change role's rules with update; they apply at
// once.
func restrictedUser(t *testing.T, ns string, role *rbacv1.ClusterRole) *envtest.AuthenticatedUser {
	t.Helper()
	ctx := context.Background()
	create(t, role)
	t.Cleanup(func() { _ = k8s.Delete(ctx, role) })
	name := "jwtgate-" + ns
	user, err := testEnv.AddUser(envtest.User{Name: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{GenerateName: role.GenerateName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}},
	}
	create(t, binding)
	t.Cleanup(func() { _ = k8s.Delete(ctx, binding) })
	return user
}
