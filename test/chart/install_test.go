package chart_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jwtgate/jwtgate/internal/testproc"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// One kube-apiserver and etcd (envtest) for the package, with no CRDs: the chart
// installs its own.
var (
	adminCfg        *rest.Config
	adminKubeconfig string
	dyn             *dynamic.DynamicClient
	mapper          *restmapper.DeferredDiscoveryRESTMapper
	envtestErr      error
)

// timeout bounds every wait: generous, for a loaded 2-core machine.
const timeout = 60 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	defer func() {
		for _, d := range tempDirs {
			_ = os.RemoveAll(d)
		}
	}()
	if testing.Short() {
		envtestErr = fmt.Errorf("-short")
		return m.Run()
	}
	env, err := startEnvtest()
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting envtest: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping envtest: %v\n", err)
		}
	}()
	return m.Run()
}

func startEnvtest() (*envtest.Environment, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		// make test sets it; a plain go test finds (or builds, once) the cached binaries.
		out, err := exec.Command(filepath.Join(repoRoot, "hack", "envtest-bins.sh")).Output()
		if err != nil {
			return nil, fmt.Errorf("envtest binaries: %w (run make envtest-bins, or go test -short)", err)
		}
		assets = strings.TrimSpace(string(out))
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if _, err := env.Start(); err != nil {
		return nil, err
	}
	// helm needs a kubeconfig: a cluster-admin user of its own.
	user, err := env.AddUser(envtest.User{Name: "chart-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	dir, err := packageTempDir("jwtgate-chart-envtest-")
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	adminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(adminKubeconfig, kc, 0o600); err != nil {
		_ = env.Stop()
		return nil, err
	}
	adminCfg = user.Config()
	if dyn, err = dynamic.NewForConfig(adminCfg); err != nil {
		_ = env.Stop()
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(adminCfg)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return env, nil
}

func needEnvtest(t *testing.T) {
	t.Helper()
	if envtestErr != nil {
		t.Skipf("envtest (kube-apiserver + etcd) not started: %v", envtestErr)
	}
}

// resource returns the dynamic client for an object's kind, refreshing discovery
// once for kinds that a CRD just added.
func resource(t *testing.T, o *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		mapper.Reset()
		if m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			t.Fatalf("%s: %v", gvk, err)
		}
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	}
	return dyn.Resource(m.Resource)
}

// apply creates or updates objects for real (test fixtures).
func apply(t *testing.T, manifest string) {
	t.Helper()
	objs, err := parseObjects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if _, err := resource(t, o).Apply(context.Background(), o.GetName(), o, metav1.ApplyOptions{FieldManager: "chart-test", Force: true}); err != nil {
			t.Fatalf("applying %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := f()
		if ok {
			return
		}
		last = msg
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, last)
}

// A minimal ServiceMonitor CRD, so the chart's optional ServiceMonitor reaches
// the API server like everything else.
const serviceMonitorCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// Every object the chart renders, for each values set, passes the real API
// server's validation and admission (server-side apply, dry run).
func TestServerSideDryRun(t *testing.T) {
	needEnvtest(t)
	apply(t, serviceMonitorCRD+`
---
{apiVersion: v1, kind: Namespace, metadata: {name: dryrun}}
---
{apiVersion: v1, kind: Namespace, metadata: {name: app1}}
---
{apiVersion: v1, kind: Namespace, metadata: {name: app2}}
`)
	eventually(t, "the ServiceMonitor CRD to be served", func() (bool, string) {
		mapper.Reset()
		_, err := mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}, "v1")
		return err == nil, fmt.Sprint(err)
	})
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			for _, o := range render(t, "dryrun", "dryrun", values) {
				_, err := resource(t, o).Apply(context.Background(), o.GetName(), o, metav1.ApplyOptions{
					FieldManager: "chart-test", Force: true, DryRun: []string{metav1.DryRunAll},
				})
				if err != nil {
					t.Errorf("%s %s/%s refused: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
		})
	}
}

// The chart installs into a real API server, and `jwtgate controller`, run with
// the chart's own arguments under the chart's ServiceAccount (impersonated),
// becomes ready, writes AuthPolicy status, serves decisions, and is never
// refused by the API server; what it must not do is refused.
func TestInstallAndRunUnderChartRBAC(t *testing.T) {
	needEnvtest(t)
	bin := jwtgateBinary(t)

	t.Run("cluster-wide", func(t *testing.T) {
		notes := helmInstall(t, "jwtgate", "jwtgate", "", "--create-namespace")
		for _, want := range []string{
			"nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc.cluster.local:8000/jwtgate/auth/<policy-namespace>/<policy-name>",
			"nginx.ingress.kubernetes.io/auth-signin: https://$host/jwtgate/login",
			"nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User,X-Auth-Roles",
			"sign-in sessions are per replica",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES lack %q:\n%s", want, notes)
			}
		}
		objs := installedObjects(t, "jwtgate", "jwtgate")

		apply(t, `{apiVersion: v1, kind: Namespace, metadata: {name: shop}}`)
		apply(t, policyManifest("shop", "shop", "shop.example.com"))

		c := startController(t, bin, objs, "jwtgate", "jwtgate")
		c.waitReady(t)
		c.waitPolicyReady(t, "shop", "shop")
		c.checkDecisions(t, "shop", "shop", "shop.example.com")
		c.waitLeaseHeld(t, "jwtgate", "jwtgate-leader-election")

		sa := impersonated(t, "jwtgate", "jwtgate")
		refused(t, "create a Secret", createSecret(sa, "shop"))
		refused(t, "delete a Secret", deleteSecret(sa, "shop", "shop-hmac"))
		refused(t, "change an AuthPolicy's spec", patchPolicySpec(sa, "shop", "shop"))
		refused(t, "take a Lease outside the release namespace", createLease(sa, "shop"))
		c.stop(t)
	})

	t.Run("watchNamespaces", func(t *testing.T) {
		apply(t, `
{apiVersion: v1, kind: Namespace, metadata: {name: team-a}}
---
{apiVersion: v1, kind: Namespace, metadata: {name: team-b}}
`)
		// The CRD belongs to the first release; this one only runs a controller.
		helmInstall(t, "team", "team-jwtgate", "watchNamespaces: [team-a]\ncrds: {enabled: false}\nreplicaCount: 1\n", "--create-namespace")
		objs := installedObjects(t, "team", "team-jwtgate")
		apply(t, policyManifest("team-a", "app", "a.example.com"))
		apply(t, policyManifest("team-b", "app", "b.example.com"))

		c := startController(t, bin, objs, "team-jwtgate", "team-jwtgate")
		c.waitReady(t)
		c.waitPolicyReady(t, "team-a", "app")
		c.checkDecisions(t, "team-a", "app", "a.example.com")
		c.waitLeaseHeld(t, "team-jwtgate", "team-jwtgate-leader-election")

		sa := impersonated(t, "team-jwtgate", "team-jwtgate")
		refused(t, "list Secrets cluster-wide", listSecrets(sa, ""))
		refused(t, "list Secrets in an unwatched namespace", listSecrets(sa, "team-b"))
		refused(t, "create a Secret in a watched namespace", createSecret(sa, "team-a"))
		c.stop(t)

		// The controller never touched the policy it does not watch.
		u, err := dyn.Resource(authPolicies).Namespace("team-b").Get(context.Background(), "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions"); len(conds) != 0 {
			t.Errorf("AuthPolicy team-b/app (not watched) got status %v", conds)
		}
	})

	t.Run("uninstall keeps the CRD", func(t *testing.T) {
		if _, err := helm(t, "uninstall", "jwtgate", "--namespace", "jwtgate", "--kubeconfig", adminKubeconfig, "--wait=false"); err != nil {
			t.Fatal(err)
		}
		crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
		if _, err := dyn.Resource(crds).Get(context.Background(), "authpolicies.jwtgate.dev", metav1.GetOptions{}); err != nil {
			t.Errorf("the CRD is gone after helm uninstall with crds.keep: %v", err)
		}
		if _, err := dyn.Resource(authPolicies).Namespace("shop").Get(context.Background(), "shop", metav1.GetOptions{}); err != nil {
			t.Errorf("AuthPolicy shop/shop is gone after helm uninstall: %v", err)
		}
		crs := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
		if _, err := dyn.Resource(crs).Get(context.Background(), "jwtgate", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("ClusterRole jwtgate after uninstall: %v, want NotFound", err)
		}
	})
}

var authPolicies = schema.GroupVersionResource{Group: "jwtgate.dev", Version: "v1alpha1", Resource: "authpolicies"}

// hmacSecret is the verification key of the test policies (HS256 needs 32 bytes or more).
const hmacSecret = "chart-test-hmac-secret-0123456789abcdefghijklmnop"

func policyManifest(ns, name, host string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: %[2]s-hmac, namespace: %[1]s}
stringData: {secret: %[4]s}
---
apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  hosts: [%[3]s]
  jwt:
    algorithms: [HS256]
    keys:
      - secretRef: {name: %[2]s-hmac, key: secret}
  rules:
    - path: /admin/
      roles: [admin]
  forwardClaims:
    - {claim: sub, header: X-Auth-User}
`, ns, name, host, hmacSecret)
}

// helmInstall installs the chart with values and returns what helm printed
// (the NOTES).
func helmInstall(t *testing.T, release, namespace, values string, extra ...string) string {
	t.Helper()
	args := append([]string{"install", release, chartDir, "--namespace", namespace, "--kubeconfig", adminKubeconfig,
		"-f", valuesFile(t, values), "--wait=false", "--timeout", "2m"}, extra...)
	out, err := helm(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// installedObjects returns what the release holds and checks that each object
// is on the API server.
func installedObjects(t *testing.T, release, namespace string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helm(t, "get", "manifest", release, "--namespace", namespace, "--kubeconfig", adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parseObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if _, err := resource(t, o).Get(context.Background(), o.GetName(), metav1.GetOptions{}); err != nil {
			t.Errorf("installed %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	for _, kind := range []string{"Deployment", "Service", "ServiceAccount", "Role", "RoleBinding"} {
		if len(find(objs, kind)) == 0 {
			t.Errorf("release %s installed no %s", release, kind)
		}
	}
	return objs
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// jwtgateBinary builds cmd/jwtgate once for the package.
func jwtgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := packageTempDir("jwtgate-chart-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "jwtgate")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/jwtgate")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/jwtgate: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// Flags the chart passes only when their values are set, which `jwtgate
// controller` may not have yet (admin).
var pendingFlags = []string{"admin-bind-address", "admin-token-file"}

// Every flag the chart passes, with every option on, is one `jwtgate controller`
// knows: an unknown flag would crash-loop the pods.
func TestRenderedFlagsExist(t *testing.T) {
	if testing.Short() {
		t.Skip("builds jwtgate")
	}
	bin := jwtgateBinary(t)
	out, _ := exec.Command(bin, "controller", "--help").CombinedOutput()
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-{1,2}([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		known[m[1]] = true
	}
	if !known["kubeconfig"] {
		t.Fatalf("could not read the flags of jwtgate controller --help:\n%s", out)
	}
	for name, values := range valueSets {
		for _, a := range containerArgs(t, render(t, "jwtgate", "jwtgate", values), "jwtgate")[1:] {
			flagName := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
			switch {
			case known[flagName]:
			case slices.Contains(pendingFlags, flagName):
				t.Logf("values %s: --%s is not implemented by jwtgate controller yet; the chart passes it only when its values are set", name, flagName)
			default:
				t.Errorf("values %s: the chart passes %s, which jwtgate controller does not know", name, a)
			}
		}
	}
}

// controllerProcess is `jwtgate controller` running as a subprocess.
type controllerProcess struct {
	cmd                    *exec.Cmd
	log                    *syncBuffer
	done                   chan error
	listen, health, metric string
	stopped                bool
}

type syncBuffer = testproc.SyncBuffer

func freeAddr(t *testing.T) string { return testproc.FreeAddr(t) }

// impersonatingKubeconfig writes a kubeconfig that acts as the ServiceAccount
// (user and groups as a real ServiceAccount token carries them).
func impersonatingKubeconfig(t *testing.T, ns, sa string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = "system:serviceaccount:" + ns + ":" + sa
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	p := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// startController runs the built binary with the args and env of the installed
// Deployment, on local ports, against envtest as the Deployment's ServiceAccount.
func startController(t *testing.T, bin string, objs []*unstructured.Unstructured, deployment, namespace string) *controllerProcess {
	t.Helper()
	d := one(t, objs, "Deployment", deployment)
	sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName")
	c := container(t, objs, deployment)
	args, _, _ := unstructured.NestedStringSlice(c, "args")
	p := &controllerProcess{log: &syncBuffer{}, done: make(chan error, 1),
		listen: freeAddr(t), health: freeAddr(t), metric: freeAddr(t)}
	// Later flags win: the chart's, then what a pod has and a test process lacks.
	args = append(args,
		"--kubeconfig="+impersonatingKubeconfig(t, namespace, sa),
		"--listen="+p.listen,
		"--health-probe-bind-address="+p.health,
		"--metrics-bind-address="+p.metric,
		"--shutdown-delay=0s",
	)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	envs, _, _ := unstructured.NestedSlice(c, "env")
	for _, e := range envs {
		em := e.(map[string]any)
		if v, ok := em["value"].(string); ok {
			env = append(env, em["name"].(string)+"="+v)
		}
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	t.Logf("running %s %s", bin, strings.Join(args, " "))
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if !p.stopped {
			_ = p.cmd.Process.Kill()
			if err := <-p.done; err != nil {
				t.Logf("controller killed: %v", err)
			}
		}
		if t.Failed() || os.Getenv("CHART_TEST_CONTROLLER_LOG") != "" {
			t.Logf("controller log:\n%s", p.log.String())
		}
	})
	return p
}

// check fails the test at once when the controller exited or the API server
// refused it a call.
func (p *controllerProcess) check(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.stopped = true
		t.Fatalf("the controller exited: %v\n%s", err, p.log.String())
	default:
	}
	if line := p.denied(); line != "" {
		t.Fatalf("the API server refused the controller under the chart's RBAC:\n%s", line)
	}
}

// denied returns the first log line that reports a refused API call.
func (p *controllerProcess) denied() string {
	for _, line := range strings.Split(p.log.String(), "\n") {
		if rbacDenied.MatchString(line) {
			return line
		}
	}
	return ""
}

func (p *controllerProcess) waitReady(t *testing.T) {
	t.Helper()
	eventually(t, "the controller's /readyz", func() (bool, string) {
		p.check(t)
		resp, err := http.Get("http://" + p.health + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// checkDecisions asks the decision port for a verdict with and without a token.
func (p *controllerProcess) checkDecisions(t *testing.T, ns, name, host string) {
	t.Helper()
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "exp": time.Now().Add(5 * time.Minute).Unix(),
	}).SignedString([]byte(hmacSecret))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		auth string
		want int
	}{{"Bearer " + token, http.StatusOK}, {"", http.StatusUnauthorized}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.listen+"/jwtgate/auth/"+ns+"/"+name, nil)
		req.Header.Set("X-Original-URL", "https://"+host+"/orders")
		req.Header.Set("X-Original-Method", "GET")
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("decision with a token: %t: %d, want %d", c.auth != "", resp.StatusCode, c.want)
		}
		if c.want == http.StatusOK && resp.Header.Get("X-Auth-User") != "alice" {
			t.Errorf("X-Auth-User = %q, want alice", resp.Header.Get("X-Auth-User"))
		}
	}
}

// rbacDenied matches what client-go and controller-runtime log when the API
// server refuses a call.
var rbacDenied = regexp.MustCompile(`(?i)is forbidden|forbidden: user|cannot (get|list|watch|create|update|patch|delete) resource`)

// stop ends the controller (SIGTERM) and fails the test if the API server refused
// it anything while it ran.
func (p *controllerProcess) stop(t *testing.T) {
	t.Helper()
	// Let asynchronous writes (events) reach the API server before judging.
	time.Sleep(time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("the controller exited with %v after SIGTERM", err)
		}
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		if err := <-p.done; err != nil {
			t.Logf("controller killed: %v", err)
		}
		t.Error("the controller did not stop within the timeout after SIGTERM")
	}
	p.stopped = true
	if line := p.denied(); line != "" {
		t.Errorf("the API server refused the controller under the chart's RBAC:\n%s", line)
	}
}

func (p *controllerProcess) waitPolicyReady(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "AuthPolicy "+ns+"/"+name+" Ready=True", func() (bool, string) {
		p.check(t)
		u, err := dyn.Resource(authPolicies).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			cm := c.(map[string]any)
			if cm["type"] == "Ready" {
				return cm["status"] == "True", fmt.Sprint(cm)
			}
		}
		return false, fmt.Sprintf("no Ready condition: %v", conds)
	})
}

func (p *controllerProcess) waitLeaseHeld(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, "Lease "+ns+"/"+name, func() (bool, string) {
		p.check(t)
		u, err := dyn.Resource(leases).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		h, _, _ := unstructured.NestedString(u.Object, "spec", "holderIdentity")
		return h != "", "no holder"
	})
}

// impersonated is a client acting as the ServiceAccount, for what it must not do.
func impersonated(t *testing.T, ns, sa string) *dynamic.DynamicClient {
	t.Helper()
	cfg := rest.CopyConfig(adminCfg)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	secrets = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	leases  = schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}
)

func createSecret(c *dynamic.DynamicClient, ns string) error {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "minted", "namespace": ns}}}
	_, err := c.Resource(secrets).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
	return err
}

func deleteSecret(c *dynamic.DynamicClient, ns, name string) error {
	return c.Resource(secrets).Namespace(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
}

func listSecrets(c *dynamic.DynamicClient, ns string) error {
	_, err := c.Resource(secrets).Namespace(ns).List(context.Background(), metav1.ListOptions{})
	return err
}

func patchPolicySpec(c *dynamic.DynamicClient, ns, name string) error {
	_, err := c.Resource(authPolicies).Namespace(ns).Patch(context.Background(), name, "application/merge-patch+json",
		[]byte(`{"spec":{"hosts":["evil.example.com"]}}`), metav1.PatchOptions{})
	return err
}

func createLease(c *dynamic.DynamicClient, ns string) error {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
		"metadata": map[string]any{"name": "stolen", "namespace": ns}}}
	_, err := c.Resource(leases).Namespace(ns).Create(context.Background(), u, metav1.CreateOptions{})
	return err
}

func refused(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) {
		t.Errorf("the chart's ServiceAccount may %s (error %v, want Forbidden)", what, err)
	}
}
