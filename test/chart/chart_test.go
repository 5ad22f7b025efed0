package chart_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// repoRoot is the module root, two folders up from this package.
var repoRoot = func() string {
	p, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return p
}()

var chartDir = filepath.Join(repoRoot, "charts", "jwtgate")

// helmPath finds the helm binary: $HELM (make test sets it), else the pinned one
// `make helm` installs into bin/.
func helmPath(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if m, _ := filepath.Glob(filepath.Join(repoRoot, "bin", "helm-v*")); len(m) > 0 {
		sort.Strings(m)
		return m[len(m)-1]
	}
	if testing.Short() {
		t.Skip("helm not found (run make helm, or set $HELM)")
	}
	t.Fatal("helm not found: run `make helm` (installs the pinned helm into bin/), or set $HELM")
	return ""
}

// tempDirs are the package's own temporary folders, removed by TestMain.
var tempDirs []string

func packageTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		tempDirs = append(tempDirs, dir)
	}
	return dir, err
}

// helmEnv keeps helm away from the user's helm config, cache and repositories.
var helmEnv = func() []string {
	dir, err := packageTempDir("jwtgate-chart-helm-")
	if err != nil {
		panic(err)
	}
	return append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_DATA_HOME="+filepath.Join(dir, "data"),
		"KUBECONFIG="+filepath.Join(dir, "no-kubeconfig"),
	)
}()

// helm runs helm and returns its stdout; the error carries stderr.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmPath(t), args...)
	cmd.Env = helmEnv
	cmd.Dir = repoRoot
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// valuesFile writes values YAML to a file for -f.
func valuesFile(t *testing.T, values string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(p, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Values sets the checks render with: the defaults, every option on at once, and
// the namespaced mode.
var valueSets = map[string]string{
	"defaults": "",
	"namespaced": `
watchNamespaces: [app1, app2]
replicaCount: 1
`,
	"everything": `
watchNamespaces: [app1, app2]
hostClaims: {app1: ["*.app1.example.com"], app2: [app2.example.com]}
trustedProxies: [10.244.0.0/16, "fd00:10:244::/56"]
store: {redis: {existingSecret: jwtgate-redis, existingSecretKey: url}}
admin: {enabled: true, tokenSecret: {name: jwtgate-admin}}
grpc: {enabled: true}
proxyCheck: {serviceName: jwtgate/jwtgate}
serviceMonitor: {enabled: true, labels: {release: prometheus}}
grafanaDashboard: {enabled: true, annotations: {grafana_folder: Auth}}
networkPolicy:
  enabled: true
  decisionFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ingress-nginx}}}]
  metricsFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
  adminFrom: [{podSelector: {matchLabels: {app: ops}}}]
podAnnotations: {example.com/team: platform}
extraArgs: ["--log-level=debug"]
image: {digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
`,
	"redis-url": `
store: {redis: {url: "redis://redis.jwtgate.svc:6379/0"}}
crds: {keep: false}
`,
	"redis-sentinel": `
store:
  redis:
    sentinel:
      masterName: mymaster
      hosts: ["redis-node-0.redis-headless:26379", "redis-node-1.redis-headless:26379", "[fd00::1]:26379"]
      db: 2
    passwordSecret: {name: redis-auth, key: redis-password}
`,
	"redis-cluster": `
store:
  redis:
    cluster: {hosts: ["redis-cluster-0.redis-cluster-headless:6379", "redis-cluster-1.redis-cluster-headless"]}
    tls: true
    waitReplicas: 0
    passwordSecret: {name: redis-auth}
`,
}

// render runs helm template and parses every object it prints.
func render(t *testing.T, release, namespace, values string, extra ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := renderText(t, release, namespace, values, extra...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parseObjects(out)
	if err != nil {
		t.Fatalf("parsing helm template output: %v\n%s", err, out)
	}
	return objs
}

func renderText(t *testing.T, release, namespace, values string, extra ...string) (string, error) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "-f", valuesFile(t, values)}
	return helm(t, append(args, extra...)...)
}

// parseObjects splits multi-document YAML into objects, skipping empty documents.
func parseObjects(manifest string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var out []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, doc)
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "{}" {
			continue // an empty document
		}
		// Unstructured decoding keeps integers as int64, as the API machinery does.
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, doc)
		}
		out = append(out, o)
	}
}

// find returns the rendered objects of a kind.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the single rendered object of a kind and name.
func one(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %q rendered", kind, name)
	return nil
}

// container returns the jwtgate container of the rendered Deployment.
func container(t *testing.T, objs []*unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	d := one(t, objs, "Deployment", name)
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("Deployment %s has %d containers, want 1", name, len(cs))
	}
	return cs[0].(map[string]any)
}

func containerArgs(t *testing.T, objs []*unstructured.Unstructured, name string) []string {
	t.Helper()
	args, _, _ := unstructured.NestedStringSlice(container(t, objs, name), "args")
	return args
}

// readGenerated parses a generated file from config/ into its objects.
func readGenerated(t *testing.T, rel string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parseObjects(string(b))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return objs
}
