package chart_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/jwtgate/jwtgate/authsvc/session/redisstore"
)

// The chart renders RBAC and CRDs from copies of what controller-gen generates
// into config/; `make manifests` refreshes them. A stale copy would install
// rules or a schema that the code no longer matches.
func TestChartCopiesOfGeneratedFilesAreCurrent(t *testing.T) {
	pairs := map[string]string{
		"config/rbac/role.yaml": "charts/jwtgate/files/rbac/role.yaml",
	}
	crds, _ := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if len(crds) == 0 {
		t.Fatal("no CRDs in config/crd/bases")
	}
	for _, p := range crds {
		pairs["config/crd/bases/"+filepath.Base(p)] = "charts/jwtgate/files/crds/" + filepath.Base(p)
	}
	for src, dst := range pairs {
		a, err := os.ReadFile(filepath.Join(repoRoot, src))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, dst))
		if err != nil {
			t.Errorf("%s: %v (run make manifests)", dst, err)
			continue
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: run `make manifests` (or `make chart-files`) and commit both", dst, src)
		}
	}
	copies, _ := filepath.Glob(filepath.Join(chartDir, "files", "crds", "*.yaml"))
	if len(copies) != len(crds) {
		t.Errorf("charts/jwtgate/files/crds holds %d CRDs, config/crd/bases %d: run make chart-files", len(copies), len(crds))
	}
}

func TestLint(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			if out, err := helm(t, "lint", "--strict", chartDir, "-f", valuesFile(t, values)); err != nil {
				t.Errorf("%v\n%s", err, out)
			}
		})
	}
}

// values.schema.json refuses what the chart does not understand, so a typo fails
// the install instead of being ignored; checks the schema cannot express fail in
// the templates.
func TestValuesRefused(t *testing.T) {
	cases := []struct {
		name, values, want string
	}{
		{"unknown top-level key", "replicas: 3", "replicas"},
		{"typo in a nested key", "crds: {enable: false}", "enable"},
		{"typo deep down", "store: {redis: {uri: redis://r:6379}}", "uri"},
		{"number as string", `replicaCount: "2"`, "replicaCount"},
		{"negative replicas", "replicaCount: -1", "replicaCount"},
		{"bool as string", `crds: {keep: "yes"}`, "keep"},
		{"image tag as number", "image: {tag: 1.0}", "tag"},
		{"log level", "logLevel: verbose", "logLevel"},
		{"service as a DNS name", "proxyCheck: {serviceName: jwtgate.jwtgate.svc}", "serviceName"},
		{"proxy check as a string", `proxyCheck: {enabled: "no"}`, "enabled"},
		{"log format", "logFormat: logfmt", "logFormat"},
		{"trusted proxies as a string", "trustedProxies: 10.0.0.0/8", "trustedProxies"},
		{"trusted proxy not a CIDR", "trustedProxies: [10.0.0.1]", "trustedProxies"},
		{"namespace name", "watchNamespaces: [Team_A]", "watchNamespaces"},
		{"host claim namespace", `hostClaims: {Team_A: ["a.example.com"]}`, "Team_A"}, // helm names the wrong path for propertyNames
		{"host claim pattern", `hostClaims: {shop: ["https://shop.example.com"]}`, "hostClaims"},
		{"host claim wildcard inside", `hostClaims: {shop: ["a.*.example.com"]}`, "hostClaims"},
		{"host claim as a string", `hostClaims: "shop=*.shop.example.com"`, "hostClaims"},
		{"redis URL scheme", "store: {redis: {url: http://redis:6379}}", "url"},
		{"duration without unit", "shutdownDelay: 5", "shutdownDelay"},
		{"port out of range", "ports: {http: 80000, metrics: 8080, health: 8081}", "http"},
		{"service type", "service: {type: ExternalName}", "type"},
		{"unknown networkPolicy peer field", "networkPolicy: {enabled: true, decisionFrom: [{namespace: ingress-nginx}]}", "namespace"},
		{"resources typo", "resources: {limit: {memory: 1Gi}}", "limit"},
		{"extra args not flags", "extraArgs: [debug]", "extraArgs"},
		{"admin without a token Secret", "admin: {enabled: true}", "admin.tokenSecret.name"},
		{"redis url and Secret", "store: {redis: {url: redis://r:6379, existingSecret: r}}", "not both"},
		{"redis url and sentinel", "store: {redis: {url: redis://r:6379, sentinel: {masterName: m, hosts: [s:26379]}}}", "not both"},
		{"sentinel and cluster", "store: {redis: {sentinel: {masterName: m, hosts: [s:26379]}, cluster: {hosts: [c:6379]}}}", "not both"},
		{"sentinel without master name", "store: {redis: {sentinel: {hosts: [s:26379]}}}", "masterName"},
		{"sentinel without hosts", "store: {redis: {sentinel: {masterName: m}}}", "sentinel.hosts"},
		{"cluster host not host:port", `store: {redis: {cluster: {hosts: ["redis://c:6379"]}}}`, "hosts"},
		{"master name with a slash", "store: {redis: {sentinel: {masterName: a/b, hosts: [s:26379]}}}", "masterName"},
		{"wait replicas negative", "store: {redis: {waitReplicas: -1}}", "waitReplicas"},
		{"redis password without redis", "store: {redis: {passwordSecret: {name: redis-auth}}}", "passwordSecret needs a Redis"},
		{"ports collide", "admin: {enabled: true, port: 8000, tokenSecret: {name: a}}", "must differ"},
		{"no ServiceAccount name", "serviceAccount: {create: false}", "serviceAccount.name"},
		{"typo in grpc", "grpc: {enable: true}", "enable"},
		{"grpc port out of range", "grpc: {enabled: true, port: 0}", "port"},
		{"grpc port collides", "grpc: {enabled: true, port: 8081}", "must differ"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := renderText(t, "jwtgate", "jwtgate", c.values)
			if err == nil {
				t.Fatalf("values %q rendered; want them refused\n%.400s", c.values, out)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error does not name %q:\n%v", c.want, err)
			}
		})
	}
}

// Every closed object of the schema is documented, key for key, in values.yaml,
// so that values.yaml is the reference users read.
func TestSchemaMatchesValuesFile(t *testing.T) {
	var schema map[string]any
	b, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	var values map[string]any
	b, err = os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	var walk func(path string, s map[string]any, v any)
	walk = func(path string, s map[string]any, v any) {
		props, ok := s["properties"].(map[string]any)
		if !ok {
			return
		}
		if s["additionalProperties"] != false {
			t.Errorf("schema %s: object without additionalProperties: false", path)
		}
		vm, _ := v.(map[string]any)
		var inSchema, inValues []string
		for k := range props {
			if path == "" && k == "global" {
				continue // for parent charts only
			}
			inSchema = append(inSchema, k)
		}
		for k := range vm {
			inValues = append(inValues, k)
		}
		sort.Strings(inSchema)
		sort.Strings(inValues)
		if !slices.Equal(inSchema, inValues) {
			t.Errorf("%s: schema declares %v, values.yaml sets %v", strings.TrimPrefix(path, "."), inSchema, inValues)
		}
		for k, sub := range props {
			if sm, ok := sub.(map[string]any); ok {
				walk(path+"."+k, sm, vm[k])
			}
		}
	}
	walk("", schema, values)
}

func TestDefaults(t *testing.T) {
	objs := render(t, "jwtgate", "jwtgate", valueSets["defaults"])

	d := one(t, objs, "Deployment", "jwtgate")
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r != 2 {
		t.Errorf("replicas = %d, want 2", r)
	}
	args := containerArgs(t, objs, "jwtgate")
	for _, want := range []string{"controller", "--listen=:8000", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081",
		"--leader-elect=true", "--leader-election-namespace=jwtgate"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	if args[0] != "controller" {
		t.Errorf("first arg %q, want the controller subcommand", args[0])
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--redis-url") || strings.HasPrefix(a, "--admin-") || strings.HasPrefix(a, "--watch-namespaces") {
			t.Errorf("default args hold %s", a)
		}
	}

	c := container(t, objs, "jwtgate")
	// Probes on the health port, by name.
	ports := map[string]int64{}
	ps, _, _ := unstructured.NestedSlice(c, "ports")
	for _, p := range ps {
		pm := p.(map[string]any)
		ports[pm["name"].(string)] = pm["containerPort"].(int64)
	}
	if !reflect.DeepEqual(ports, map[string]int64{"http": 8000, "metrics": 8080, "health": 8081}) {
		t.Errorf("container ports %v", ports)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/readyz"} {
		p, _, _ := unstructured.NestedString(c, probe, "httpGet", "path")
		port, _, _ := unstructured.NestedFieldNoCopy(c, probe, "httpGet", "port")
		if p != path || port != "health" {
			t.Errorf("%s: GET %v on port %v, want %s on health", probe, p, port, path)
		}
	}
	if _, ok, _ := unstructured.NestedMap(c, "resources", "requests"); !ok {
		t.Error("no resource requests")
	}
	if v, _, _ := unstructured.NestedString(c, "resources", "limits", "memory"); v == "" {
		t.Error("no memory limit")
	}
	env, _, _ := unstructured.NestedSlice(c, "env")
	if !slices.ContainsFunc(env, func(e any) bool {
		em := e.(map[string]any)
		return em["name"] == "JWTGATE_REPLICAS" && em["value"] == "2"
	}) {
		t.Errorf("env %v lacks JWTGATE_REPLICAS=2", env)
	}

	// Locked down: non-root, read-only root, no escalation, no capabilities, seccomp.
	sc, _, _ := unstructured.NestedMap(c, "securityContext")
	psc, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec", "securityContext")
	checks := []struct {
		obj  map[string]any
		path []string
		want any
	}{
		{sc, []string{"runAsNonRoot"}, true},
		{sc, []string{"readOnlyRootFilesystem"}, true},
		{sc, []string{"allowPrivilegeEscalation"}, false},
		{sc, []string{"capabilities", "drop"}, []any{"ALL"}},
		{sc, []string{"seccompProfile", "type"}, "RuntimeDefault"},
		{psc, []string{"runAsNonRoot"}, true},
		{psc, []string{"runAsUser"}, int64(65532)},
		{psc, []string{"seccompProfile", "type"}, "RuntimeDefault"},
	}
	for _, ck := range checks {
		got, _, _ := unstructured.NestedFieldNoCopy(ck.obj, ck.path...)
		if !reflect.DeepEqual(got, ck.want) {
			t.Errorf("securityContext %s = %v, want %v", strings.Join(ck.path, "."), got, ck.want)
		}
	}

	// The Service carries the decision port and metrics.
	svc := one(t, objs, "Service", "jwtgate")
	sps, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	svcPorts := map[string]int64{}
	for _, p := range sps {
		pm := p.(map[string]any)
		svcPorts[pm["name"].(string)] = pm["port"].(int64)
	}
	if !reflect.DeepEqual(svcPorts, map[string]int64{"http": 8000, "metrics": 8080}) {
		t.Errorf("Service ports %v, want http 8000 and metrics 8080", svcPorts)
	}

	one(t, objs, "ServiceAccount", "jwtgate")
	one(t, objs, "PodDisruptionBudget", "jwtgate")
	if n := len(find(objs, "ServiceMonitor")) + len(find(objs, "NetworkPolicy")) + len(find(objs, "Secret")); n != 0 {
		t.Errorf("defaults render %d ServiceMonitor/NetworkPolicy/Secret objects, want none", n)
	}

	// RBAC: exactly the generated rules.
	generated := readGenerated(t, "config/rbac/role.yaml")
	genCluster := one(t, generated, "ClusterRole", "jwtgate")
	genLease := find(generated, "Role")
	if len(genLease) != 1 {
		t.Fatalf("config/rbac/role.yaml holds %d Roles, want the leader-election one", len(genLease))
	}
	cr := one(t, objs, "ClusterRole", "jwtgate")
	if !reflect.DeepEqual(cr.Object["rules"], genCluster.Object["rules"]) {
		t.Errorf("ClusterRole rules differ from config/rbac:\n%v\n%v", cr.Object["rules"], genCluster.Object["rules"])
	}
	le := one(t, objs, "Role", "jwtgate-leader-election")
	if le.GetNamespace() != "jwtgate" {
		t.Errorf("leader-election Role in %q", le.GetNamespace())
	}
	leRules, _, _ := unstructured.NestedSlice(le.Object, "rules")
	for _, r := range genLease[0].Object["rules"].([]any) {
		if !slices.ContainsFunc(leRules, func(x any) bool { return reflect.DeepEqual(x, r) }) {
			t.Errorf("leader-election Role lacks generated rule %v", r)
		}
	}
	crb := one(t, objs, "ClusterRoleBinding", "jwtgate")
	subjects, _, _ := unstructured.NestedSlice(crb.Object, "subjects")
	wantSubject := map[string]any{"kind": "ServiceAccount", "name": "jwtgate", "namespace": "jwtgate"}
	if len(subjects) != 1 || !reflect.DeepEqual(subjects[0], wantSubject) {
		t.Errorf("ClusterRoleBinding subjects %v, want %v", subjects, wantSubject)
	}

	// The CRD: the generated one, kept on uninstall.
	genCRD := one(t, readGenerated(t, "config/crd/bases/jwtgate.dev_authpolicies.yaml"), "CustomResourceDefinition", "authpolicies.jwtgate.dev")
	crd := one(t, objs, "CustomResourceDefinition", "authpolicies.jwtgate.dev")
	if !reflect.DeepEqual(crd.Object["spec"], genCRD.Object["spec"]) {
		t.Error("rendered CRD spec differs from config/crd/bases")
	}
	if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
		t.Errorf("CRD annotations %v lack helm.sh/resource-policy: keep", crd.GetAnnotations())
	}
}

func TestSwitches(t *testing.T) {
	t.Run("crds.enabled=false", func(t *testing.T) {
		if n := len(find(render(t, "jwtgate", "jwtgate", "crds: {enabled: false}"), "CustomResourceDefinition")); n != 0 {
			t.Errorf("%d CRDs rendered", n)
		}
	})
	t.Run("crds.keep=false", func(t *testing.T) {
		crd := one(t, render(t, "jwtgate", "jwtgate", "crds: {keep: false}"), "CustomResourceDefinition", "authpolicies.jwtgate.dev")
		if _, ok := crd.GetAnnotations()["helm.sh/resource-policy"]; ok {
			t.Errorf("annotations %v", crd.GetAnnotations())
		}
	})
	t.Run("no Grafana dashboard by default", func(t *testing.T) {
		if n := len(find(render(t, "jwtgate", "jwtgate", ""), "ConfigMap")); n != 0 {
			t.Errorf("%d ConfigMaps rendered by default", n)
		}
	})
	t.Run("Grafana dashboard in the sidecar's namespace", func(t *testing.T) {
		cm := one(t, render(t, "jwtgate", "jwtgate", "grafanaDashboard: {enabled: true, namespace: monitoring}"), "ConfigMap", "jwtgate-dashboard")
		if cm.GetNamespace() != "monitoring" {
			t.Errorf("dashboard ConfigMap in %q, want monitoring", cm.GetNamespace())
		}
	})
	t.Run("one replica has no PodDisruptionBudget", func(t *testing.T) {
		if n := len(find(render(t, "jwtgate", "jwtgate", "replicaCount: 1"), "PodDisruptionBudget")); n != 0 {
			t.Errorf("%d PodDisruptionBudgets rendered for one replica", n)
		}
	})
	t.Run("leader election off", func(t *testing.T) {
		objs := render(t, "jwtgate", "jwtgate", "leaderElection: {enabled: false}\nreplicaCount: 1")
		if !slices.Contains(containerArgs(t, objs, "jwtgate"), "--leader-elect=false") {
			t.Error("--leader-elect=false not passed")
		}
		if len(find(objs, "Role")) != 0 {
			t.Error("leader-election Role rendered with leader election off")
		}
	})
	t.Run("rbac.create=false", func(t *testing.T) {
		objs := render(t, "jwtgate", "jwtgate", "rbac: {create: false}")
		for _, k := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
			if len(find(objs, k)) != 0 {
				t.Errorf("%s rendered with rbac.create=false", k)
			}
		}
	})
	t.Run("release name", func(t *testing.T) {
		objs := render(t, "edge", "auth", "")
		one(t, objs, "Deployment", "edge-jwtgate")
		one(t, objs, "ClusterRole", "edge-jwtgate")
		if !slices.Contains(containerArgs(t, objs, "edge-jwtgate"), "--leader-election-id=edge-jwtgate-leader-election") {
			t.Error("leader election id does not follow the release")
		}
	})
}

func TestNamespacedRBAC(t *testing.T) {
	objs := render(t, "jwtgate", "jwtgate", valueSets["namespaced"])
	if n := len(find(objs, "ClusterRole")) + len(find(objs, "ClusterRoleBinding")); n != 0 {
		t.Errorf("watchNamespaces set, yet %d cluster-wide RBAC objects rendered", n)
	}
	genCluster := one(t, readGenerated(t, "config/rbac/role.yaml"), "ClusterRole", "jwtgate")
	roles := map[string]bool{}
	for _, r := range find(objs, "Role") {
		if r.GetName() == "jwtgate-leader-election" {
			continue
		}
		roles[r.GetNamespace()] = true
		if !reflect.DeepEqual(r.Object["rules"], genCluster.Object["rules"]) {
			t.Errorf("Role in %s: rules differ from the generated ClusterRole", r.GetNamespace())
		}
	}
	if !reflect.DeepEqual(roles, map[string]bool{"app1": true, "app2": true}) {
		t.Errorf("controller Roles in %v, want app1 and app2", roles)
	}
	bound := map[string]bool{}
	for _, rb := range find(objs, "RoleBinding") {
		subjects, _, _ := unstructured.NestedSlice(rb.Object, "subjects")
		if len(subjects) != 1 || subjects[0].(map[string]any)["namespace"] != "jwtgate" || subjects[0].(map[string]any)["name"] != "jwtgate" {
			t.Errorf("RoleBinding %s/%s subjects %v", rb.GetNamespace(), rb.GetName(), subjects)
		}
		bound[rb.GetNamespace()+"/"+rb.GetName()] = true
	}
	for _, want := range []string{"app1/jwtgate", "app2/jwtgate", "jwtgate/jwtgate-leader-election"} {
		if !bound[want] {
			t.Errorf("no RoleBinding %s (have %v)", want, bound)
		}
	}
	if !slices.Contains(containerArgs(t, objs, "jwtgate"), "--watch-namespaces=app1,app2") {
		t.Errorf("args %v lack --watch-namespaces=app1,app2", containerArgs(t, objs, "jwtgate"))
	}
}

// The controller must never be able to create, change or delete Secrets
// (cluster-wide create on Secrets mints ServiceAccount tokens), nor hold
// wildcards or verbs that grant more RBAC.
func TestRBACGrantsNoSecretWrites(t *testing.T) {
	readOnly := []string{"get", "list", "watch"}
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, "jwtgate", "jwtgate", values)
			for _, role := range append(find(objs, "ClusterRole"), find(objs, "Role")...) {
				rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
				if len(rules) == 0 {
					t.Errorf("%s %s has no rules", role.GetKind(), role.GetName())
				}
				for _, r := range rules {
					rm := r.(map[string]any)
					groups, _, _ := unstructured.NestedStringSlice(rm, "apiGroups")
					resources, _, _ := unstructured.NestedStringSlice(rm, "resources")
					verbs, _, _ := unstructured.NestedStringSlice(rm, "verbs")
					where := role.GetKind() + " " + role.GetNamespace() + "/" + role.GetName()
					for _, list := range [][]string{groups, resources, verbs} {
						if slices.Contains(list, "*") {
							t.Errorf("%s: wildcard in rule %v", where, rm)
						}
					}
					for _, v := range []string{"escalate", "bind", "impersonate"} {
						if slices.Contains(verbs, v) {
							t.Errorf("%s: verb %s in rule %v", where, v, rm)
						}
					}
					if slices.Contains(groups, "") && slices.Contains(resources, "secrets") {
						for _, v := range verbs {
							if !slices.Contains(readOnly, v) {
								t.Errorf("%s: grants %s on secrets", where, v)
							}
						}
					}
					if _, ok := rm["nonResourceURLs"]; ok {
						t.Errorf("%s: nonResourceURLs in rule %v", where, rm)
					}
				}
			}
		})
	}
}

func TestOptionalParts(t *testing.T) {
	objs := render(t, "jwtgate", "jwtgate", valueSets["everything"])
	args := containerArgs(t, objs, "jwtgate")
	for _, want := range []string{
		"--trusted-proxies=10.244.0.0/16,fd00:10:244::/56",
		"--admin-bind-address=:9000",
		"--admin-token-file=/etc/jwtgate/admin/token",
		"--watch-namespaces=app1,app2",
		"--log-level=debug",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("args %v lack %s", args, want)
		}
	}
	c := container(t, objs, "jwtgate")
	env, _, _ := unstructured.NestedSlice(c, "env")
	var redisFrom map[string]any
	for _, e := range env {
		if em := e.(map[string]any); em["name"] == "JWTGATE_REDIS_URL" {
			redisFrom, _, _ = unstructured.NestedMap(em, "valueFrom", "secretKeyRef")
		}
	}
	if !reflect.DeepEqual(redisFrom, map[string]any{"name": "jwtgate-redis", "key": "url"}) {
		t.Errorf("JWTGATE_REDIS_URL from %v, want Secret jwtgate-redis key url", redisFrom)
	}
	if img, _, _ := unstructured.NestedString(c, "image"); !strings.Contains(img, "@sha256:") {
		t.Errorf("image %q not pinned by digest", img)
	}
	one(t, objs, "ServiceMonitor", "jwtgate")
	dash := one(t, objs, "ConfigMap", "jwtgate-dashboard")
	if dash.GetNamespace() != "jwtgate" || dash.GetLabels()["grafana_dashboard"] != "1" || dash.GetAnnotations()["grafana_folder"] != "Auth" {
		t.Errorf("dashboard ConfigMap in %q, labels %v, annotations %v", dash.GetNamespace(), dash.GetLabels(), dash.GetAnnotations())
	}
	dj, _, _ := unstructured.NestedString(dash.Object, "data", "jwtgate.json")
	var board struct {
		UID    string `json:"uid"`
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal([]byte(dj), &board); err != nil || board.UID != "jwtgate" {
		t.Errorf("dashboard JSON (uid %q): %v", board.UID, err)
	}
	var exprs strings.Builder
	for _, p := range board.Panels {
		for _, tg := range p.Targets {
			exprs.WriteString(tg.Expr + "\n")
		}
	}
	for _, m := range []string{"jwtgate_decisions_total", "jwtgate_decision_duration_seconds_bucket", "jwtgate_signins_total",
		"jwtgate_jwks_fetches_total", "jwtgate_jwks_age_seconds", "jwtgate_policy_compile_errors_total", "jwtgate_policy_ready",
		"jwtgate_apiserver_last_contact_timestamp_seconds"} {
		if !strings.Contains(exprs.String(), m) {
			t.Errorf("the dashboard shows no %s", m)
		}
	}
	np := one(t, objs, "NetworkPolicy", "jwtgate")
	ingress, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	if len(ingress) != 3 {
		t.Errorf("NetworkPolicy has %d ingress rules, want decision, metrics and admin", len(ingress))
	}
	// The Service never exposes the admin API.
	svc := one(t, objs, "Service", "jwtgate")
	sps, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	for _, p := range sps {
		if p.(map[string]any)["name"] == "admin" {
			t.Error("the Service exposes the admin port")
		}
	}

	// An inline Redis URL goes into a Secret the chart owns, not into the pod spec
	// (TestRedisURLNeverInArgs checks the arguments).
	objs = render(t, "jwtgate", "jwtgate", valueSets["redis-url"])
	sec := one(t, objs, "Secret", "jwtgate-redis")
	if u, _, _ := unstructured.NestedString(sec.Object, "stringData", "url"); u != "redis://redis.jwtgate.svc:6379/0" {
		t.Errorf("Redis Secret holds %q", u)
	}
	d := one(t, objs, "Deployment", "jwtgate")
	b, _ := json.Marshal(d.Object)
	if strings.Contains(string(b), "redis.jwtgate.svc") {
		t.Error("the Redis URL appears in the Deployment")
	}
}

// The Redis URL (password included) never reaches the process's argv, where
// `ps` and /proc/PID/cmdline show it to anyone on the node: the chart hands it
// over in the environment, from a Secret, and jwtgate reads JWTGATE_REDIS_URL
// itself. A `--redis-url=$(JWTGATE_REDIS_URL)` argument would be expanded by the
// kubelet into the argv.
func TestRedisURLNeverInArgs(t *testing.T) {
	cases := []struct{ name, values, secret, key string }{
		{"existingSecret", valueSets["everything"], "jwtgate-redis", "url"},
		{"inline url", valueSets["redis-url"], "jwtgate-redis", "url"},
		{"existingSecret with its own key", `store: {redis: {existingSecret: shop-redis, existingSecretKey: connection}}`, "shop-redis", "connection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, "jwtgate", "jwtgate", tc.values)
			c := container(t, objs, "jwtgate")
			for _, field := range []string{"args", "command"} {
				vals, _, _ := unstructured.NestedStringSlice(c, field)
				for _, a := range vals {
					if strings.Contains(strings.ToLower(a), "redis") {
						t.Errorf("container %s hold %q: the Redis URL must come from the environment, not the argv", field, a)
					}
				}
			}
			env, _, _ := unstructured.NestedSlice(c, "env")
			var from map[string]any
			for _, e := range env {
				em := e.(map[string]any)
				if em["name"] != "JWTGATE_REDIS_URL" {
					continue
				}
				if _, inline := em["value"]; inline {
					t.Errorf("JWTGATE_REDIS_URL is set inline in the pod spec: %v", em)
				}
				from, _, _ = unstructured.NestedMap(em, "valueFrom", "secretKeyRef")
			}
			if want := (map[string]any{"name": tc.secret, "key": tc.key}); !reflect.DeepEqual(from, want) {
				t.Errorf("JWTGATE_REDIS_URL from %v, want secretKeyRef %v", from, want)
			}
		})
	}
}

// hostClaims becomes one --host-claims argument that `jwtgate controller`
// parses; unset, the chart passes none (any namespace may claim any host).
func TestHostClaimsValue(t *testing.T) {
	for _, a := range containerArgs(t, render(t, "jwtgate", "jwtgate", valueSets["defaults"]), "jwtgate") {
		if strings.HasPrefix(a, "--host-claims") {
			t.Errorf("default args hold %s", a)
		}
	}
	objs := render(t, "jwtgate", "jwtgate", `hostClaims: {shop: ["*.shop.example.com", "shop.example.com"], team-b: ["b.example.com"]}`)
	want := "--host-claims=shop=*.shop.example.com,shop.example.com;team-b=b.example.com"
	if args := containerArgs(t, objs, "jwtgate"); !slices.Contains(args, want) {
		t.Errorf("args %v lack %s", args, want)
	}
}

// The gRPC door's port exists only when grpc.enabled: an upgrade with the
// defaults opens no new port (TestDefaults checks the exact port sets). On, it
// is on the pod, on the Service as h2c, in the NetworkPolicy's decision rule,
// and the probes stay on the health port.
func TestGRPCPort(t *testing.T) {
	objs := render(t, "jwtgate", "jwtgate", `
grpc: {enabled: true, port: 9443}
networkPolicy:
  enabled: true
  decisionFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: envoy-gateway-system}}}]
`)
	if args := containerArgs(t, objs, "jwtgate"); !slices.Contains(args, "--grpc-bind-address=:9443") {
		t.Errorf("args %v lack --grpc-bind-address=:9443", args)
	}
	c := container(t, objs, "jwtgate")
	ps, _, _ := unstructured.NestedSlice(c, "ports")
	if !slices.ContainsFunc(ps, func(p any) bool {
		pm := p.(map[string]any)
		return pm["name"] == "grpc" && pm["containerPort"] == int64(9443) && pm["protocol"] == "TCP"
	}) {
		t.Errorf("container ports %v lack grpc 9443", ps)
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
		if port, _, _ := unstructured.NestedFieldNoCopy(c, probe, "httpGet", "port"); port != "health" {
			t.Errorf("%s on port %v, want health", probe, port)
		}
		if _, ok, _ := unstructured.NestedMap(c, probe, "grpc"); ok {
			t.Errorf("%s became a gRPC probe", probe)
		}
	}
	svc := one(t, objs, "Service", "jwtgate")
	sps, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	want := map[string]any{"name": "grpc", "port": int64(9443), "targetPort": "grpc", "protocol": "TCP", "appProtocol": "kubernetes.io/h2c"}
	if !slices.ContainsFunc(sps, func(p any) bool { return reflect.DeepEqual(p, want) }) {
		t.Errorf("Service ports %v lack %v", sps, want)
	}
	np := one(t, objs, "NetworkPolicy", "jwtgate")
	ingress, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
	if len(ingress) == 0 {
		t.Fatal("NetworkPolicy without ingress rules")
	}
	decision := ingress[0].(map[string]any)
	npPorts, _, _ := unstructured.NestedSlice(decision, "ports")
	if !slices.ContainsFunc(npPorts, func(p any) bool { return p.(map[string]any)["port"] == "grpc" }) {
		t.Errorf("the decision rule %v does not cover the grpc port", decision)
	}
	if from, _, _ := unstructured.NestedSlice(decision, "from"); len(from) != 1 {
		t.Errorf("the decision rule's peers %v, want decisionFrom", from)
	}
}

// Sentinel and Cluster by their parts: the chart writes a URL jwtgate reads
// (no password in it), keeps it in its Secret, and mounts the password
// Secret for --redis-password-file.
func TestRedisModes(t *testing.T) {
	for _, c := range []struct {
		values, url, pwKey string
		mode               redisstore.Mode
	}{
		{"redis-sentinel", "redis-sentinel://redis-node-0.redis-headless:26379,redis-node-1.redis-headless:26379,[fd00::1]:26379/mymaster/2",
			"redis-password", redisstore.ModeSentinel},
		{"redis-cluster", "rediss-cluster://redis-cluster-0.redis-cluster-headless:6379,redis-cluster-1.redis-cluster-headless?wait_replicas=0",
			"password", redisstore.ModeCluster},
	} {
		t.Run(c.values, func(t *testing.T) {
			objs := render(t, "jwtgate", "jwtgate", valueSets[c.values])
			sec := one(t, objs, "Secret", "jwtgate-redis")
			u, _, _ := unstructured.NestedString(sec.Object, "stringData", "url")
			if u != c.url {
				t.Fatalf("Redis Secret holds %q, want %q", u, c.url)
			}
			target, err := redisstore.ParseURL(u)
			if err != nil || target.Mode != c.mode {
				t.Fatalf("jwtgate reads the chart's URL %q as %v: %v", u, target.Mode, err)
			}
			args := containerArgs(t, objs, "jwtgate")
			if want := "--redis-password-file=/etc/jwtgate/redis/" + c.pwKey; !slices.Contains(args, want) {
				t.Errorf("args %v lack %s", args, want)
			}
			d := one(t, objs, "Deployment", "jwtgate")
			vols, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
			found := false
			for _, v := range vols {
				vm := v.(map[string]any)
				if vm["name"] == "redis-password" {
					name, _, _ := unstructured.NestedString(vm, "secret", "secretName")
					found = name == "redis-auth"
				}
			}
			if !found {
				t.Errorf("no volume redis-password from Secret redis-auth in %v", vols)
			}
			ann, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "metadata", "annotations")
			if ann["checksum/redis-url"] == "" {
				t.Errorf("no checksum/redis-url annotation: %v", ann)
			}
		})
	}
}

// proxyCheck: on by default with this release's Service, its read rules in the
// ClusterRole (and only read verbs); off, neither the flag's checker nor
// the rules.
func TestProxyCheckValues(t *testing.T) {
	proxyResources := []string{"ingresses", "httproutes", "securitypolicies", "middlewares", "authorizationpolicies", "configmaps"}
	rules := func(objs []*unstructured.Unstructured, kind, name string) []map[string]any {
		var out []map[string]any
		rs, _, _ := unstructured.NestedSlice(one(t, objs, kind, name).Object, "rules")
		for _, r := range rs {
			out = append(out, r.(map[string]any))
		}
		return out
	}
	proxyRules := func(rs []map[string]any) map[string][]any {
		out := map[string][]any{}
		for _, r := range rs {
			for _, res := range r["resources"].([]any) {
				if slices.Contains(proxyResources, res.(string)) {
					out[res.(string)] = r["verbs"].([]any)
				}
			}
		}
		return out
	}

	objs := render(t, "edge", "auth", "")
	args := containerArgs(t, objs, "edge-jwtgate")
	for _, want := range []string{"--proxy-check=true", "--service-name=auth/edge-jwtgate"} {
		if !slices.Contains(args, want) {
			t.Errorf("default args %v lack %s", args, want)
		}
	}
	got := proxyRules(rules(objs, "ClusterRole", "edge-jwtgate"))
	for _, res := range proxyResources {
		verbs, ok := got[res]
		if !ok {
			t.Errorf("the ClusterRole does not let the proxy check read %s", res)
		}
		for _, v := range verbs {
			if !slices.Contains([]any{"get", "list", "watch"}, v) {
				t.Errorf("%s: verb %v; the proxy check only reads", res, v)
			}
		}
	}

	objs = render(t, "jwtgate", "jwtgate", "proxyCheck: {serviceName: jwtgate/auth}")
	if args := containerArgs(t, objs, "jwtgate"); !slices.Contains(args, "--service-name=jwtgate/auth") {
		t.Errorf("args %v lack --service-name=jwtgate/auth", args)
	}

	objs = render(t, "jwtgate", "jwtgate", "proxyCheck: {enabled: false}\nwatchNamespaces: [app1]")
	args = containerArgs(t, objs, "jwtgate")
	if !slices.Contains(args, "--proxy-check=false") || slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--service-name") }) {
		t.Errorf("args with proxyCheck off: %v", args)
	}
	if got := proxyRules(rules(objs, "Role", "jwtgate")); len(got) != 0 {
		t.Errorf("the Role grants the proxy check's reads with proxyCheck off: %v", got)
	}
	if rs := rules(objs, "Role", "jwtgate"); !slices.ContainsFunc(rs, func(r map[string]any) bool {
		return slices.Contains(r["resources"].([]any), any("authpolicies"))
	}) {
		t.Errorf("proxyCheck off dropped the controller's own rules: %v", rs)
	}
}
