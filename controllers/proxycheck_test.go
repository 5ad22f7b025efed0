package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// TestProxyCheckIngress: with no Gateway API, Envoy Gateway, Traefik or Istio
// CRD in the API server, an Ingress whose auth-url points at a policy but
// does not copy one of its forwardClaims headers from jwtgate's answer (the
// upstream would believe a client's own X-Auth-User) turns the policy's
// ProxyConfigured False with the finding in status.proxyFindings, and gets a
// Warning event; an Ingress naming a policy that does not exist gets its
// event too. Passes go on without a new event, status patch or error log
// while nothing changes, and fixing the Ingress turns the condition True,
// empties the list and records a Normal event.
func TestProxyCheckIngress(t *testing.T) {
	ns := newNamespace(t)
	s := newSigner(t)
	ap := jwtPolicy(ns, "shop", "shop-keys", "shop.example.com")
	ap.Spec.ForwardClaims = []v1alpha1.ForwardClaim{{Claim: "sub", Header: "X-Auth-User"}, {Claim: "roles", Header: "X-Auth-Roles"}}
	create(t, keySecret(t, ns, "shop-keys", s), ap)
	var logs syncBuffer
	r := startReplica(t, ns, replicaOptions{name: "a", proxyCheck: true,
		proxyLog: logr.FromSlogHandler(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))})

	// Nothing points at the policy yet.
	c := waitCondition(t, ns, "shop", v1alpha1.ConditionProxyConfigured, metav1.ConditionTrue, v1alpha1.ReasonProxyConfigured)
	if !strings.Contains(c.Message, "points at this policy") || !strings.HasPrefix(c.Message, "no ") {
		t.Errorf("ProxyConfigured with nothing pointing at the policy: %s", c.Message)
	}

	web := ingress(ns, "web", "shop.example.com", map[string]string{
		"nginx.ingress.kubernetes.io/auth-url":              "http://jwtgate.jwtgate.svc.cluster.local:8000/jwtgate/auth/" + ns + "/shop",
		"nginx.ingress.kubernetes.io/auth-response-headers": "X-Auth-Roles",
	})
	other := ingress(ns, "other", "other.example.com", map[string]string{
		"nginx.ingress.kubernetes.io/auth-url": "http://jwtgate.jwtgate.svc.cluster.local:8000/jwtgate/auth/" + ns + "/nope",
	})
	create(t, web, other)

	c = waitCondition(t, ns, "shop", v1alpha1.ConditionProxyConfigured, metav1.ConditionFalse, v1alpha1.ReasonProxyMisconfigured)
	if !strings.Contains(c.Message, "X-Auth-User") || !strings.Contains(c.Message, "Ingress "+ns+"/web") {
		t.Errorf("ProxyConfigured message does not name the Ingress and the header: %s", c.Message)
	}
	got := policyStatus(t, ns, "shop").ProxyFindings
	want := v1alpha1.ProxyFinding{Severity: "error", Object: "Ingress " + ns + "/web",
		Field: "metadata.annotations[nginx.ingress.kubernetes.io/auth-response-headers]"}
	if len(got) != 1 || got[0].Severity != want.Severity || got[0].Object != want.Object || got[0].Field != want.Field ||
		!strings.Contains(got[0].Message, "does not copy X-Auth-User") {
		t.Errorf("status.proxyFindings = %+v, want one like %+v about X-Auth-User", got, want)
	}
	// The proxy's configuration does not change whether the policy serves.
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	waitEvent(t, ns, "Ingress", "web", corev1.EventTypeWarning, v1alpha1.ReasonProxyMisconfigured, "does not copy X-Auth-User")
	waitEvent(t, ns, "Ingress", "other", corev1.EventTypeWarning, v1alpha1.ReasonProxyMisconfigured, "which does not exist")

	// Nothing changes: more passes, and no new event, status patch or error.
	patches, passes := r.rec.StatusPatches(), r.proxy.Passes()
	eventually(t, "five more passes of the checker", func() (bool, string) {
		return r.proxy.Passes() >= passes+5, fmt.Sprint(r.proxy.Passes()-passes, " passes")
	})
	if n := r.rec.StatusPatches(); n != patches {
		t.Errorf("%d status patches while nothing changed", n-patches)
	}
	for _, name := range []string{"web", "other"} {
		if n := r.recorded.count(name, v1alpha1.ReasonProxyMisconfigured); n != 1 {
			t.Errorf("Ingress %s: %d ProxyMisconfigured events, want 1", name, n)
		}
	}
	if w := r.proxy.Watching(); len(w) != 0 {
		t.Errorf("watching %v, whose CRDs this API server does not have", w)
	}
	if logs.String() != "" {
		t.Errorf("the checker logged errors without the optional CRDs:\n%s", logs.String())
	}

	update(t, web, func(i *networkingv1.Ingress) {
		i.Annotations["nginx.ingress.kubernetes.io/auth-response-headers"] = "X-Auth-User,X-Auth-Roles"
	})
	c = waitCondition(t, ns, "shop", v1alpha1.ConditionProxyConfigured, metav1.ConditionTrue, v1alpha1.ReasonProxyConfigured)
	if want := "nothing wrong found in the 1 proxy object(s) that point at this policy: Ingress " + ns + "/web"; c.Message != want {
		t.Errorf("ProxyConfigured after the fix: %q, want %q", c.Message, want)
	}
	if got := policyStatus(t, ns, "shop").ProxyFindings; len(got) != 0 {
		t.Errorf("status.proxyFindings after the fix: %+v", got)
	}
	waitEvent(t, ns, "Ingress", "web", corev1.EventTypeNormal, v1alpha1.ReasonProxyConfigured, "nothing wrong")
	if logs.String() != "" {
		t.Errorf("the checker logged errors:\n%s", logs.String())
	}
}

// TestProxyCheckGatewayAPIInstalledLater: the controller starts without the
// Gateway API CRDs; once the experimental channel's HTTPRoute CRD
// (sigs.k8s.io/gateway-api v1.6.3) is installed it watches HTTPRoutes, and a
// route whose ExternalAuth filter does not copy X-Auth-User from the answer
// turns the policy's ProxyConfigured False, with an event on the route. When
// the CRD is removed again, the checker stops watching and the finding goes.
func TestProxyCheckGatewayAPIInstalledLater(t *testing.T) {
	ns := newNamespace(t)
	s := newSigner(t)
	ap := jwtPolicy(ns, "shop", "shop-keys", "shop.example.com")
	ap.Spec.ForwardClaims = []v1alpha1.ForwardClaim{{Claim: "sub", Header: "X-Auth-User"}, {Claim: "roles", Header: "X-Auth-Roles"}}
	create(t, keySecret(t, ns, "shop-keys", s), ap)
	r := startReplica(t, ns, replicaOptions{name: "a", proxyCheck: true})
	waitCondition(t, ns, "shop", v1alpha1.ConditionProxyConfigured, metav1.ConditionTrue, v1alpha1.ReasonProxyConfigured)

	crd := envtest.CRDInstallOptions{Paths: []string{filepath.Join(gatewayAPIExperimental(t), "gateway.networking.k8s.io_httproutes.yaml")}}
	if _, err := envtest.InstallCRDs(restCfg, crd); err != nil {
		t.Fatalf("installing the HTTPRoute CRD: %v", err)
	}
	removed := false
	remove := func() {
		if removed {
			return
		}
		removed = true
		if err := envtest.UninstallCRDs(restCfg, crd); err != nil {
			t.Errorf("removing the HTTPRoute CRD: %v", err)
		}
		// The other tests of the package expect an API server without it.
		eventually(t, "the HTTPRoute CRD gone", func() (bool, string) {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("apiextensions.k8s.io/v1")
			u.SetKind("CustomResourceDefinition")
			err := k8s.Get(context.Background(), client.ObjectKey{Name: "httproutes.gateway.networking.k8s.io"}, u)
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	}
	t.Cleanup(remove)
	const httpRoute = "HTTPRoute.gateway.networking.k8s.io/v1"
	eventually(t, "the checker watching HTTPRoutes", func() (bool, string) {
		w := r.proxy.Watching()
		return slices.Contains(w, httpRoute), fmt.Sprint(w)
	})

	route := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(fmt.Sprintf(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: %[1]s}
spec:
  hostnames: [shop.example.com]
  rules:
    - filters:
        - type: ExternalAuth
          externalAuth:
            protocol: HTTP
            backendRef: {name: jwtgate, namespace: jwtgate, port: 8000}
            http:
              path: /jwtgate/ext-authz/%[1]s/shop
              allowedHeaders: [cookie, accept, x-forwarded-proto]
              allowedResponseHeaders: [X-Auth-Roles]
      backendRefs: [{name: web, port: 80}]
`, ns)), &route.Object); err != nil {
		t.Fatal(err)
	}
	create(t, route)
	c := waitCondition(t, ns, "shop", v1alpha1.ConditionProxyConfigured, metav1.ConditionFalse, v1alpha1.ReasonProxyMisconfigured)
	f := policyStatus(t, ns, "shop").ProxyFindings
	if !strings.Contains(c.Message, "HTTPRoute "+ns+"/web") || len(f) == 0 ||
		f[0].Field != "spec.rules[0].filters[0].externalAuth.http.allowedResponseHeaders" || !strings.Contains(f[0].Message, "does not copy X-Auth-User") {
		t.Errorf("ProxyConfigured %q, status.proxyFindings %+v: want the route's allowedResponseHeaders without X-Auth-User", c.Message, f)
	}
	waitEvent(t, ns, "HTTPRoute", "web", corev1.EventTypeWarning, v1alpha1.ReasonProxyMisconfigured, "does not copy X-Auth-User")

	remove()
	eventually(t, "the checker no longer watching HTTPRoutes", func() (bool, string) {
		w := r.proxy.Watching()
		return !slices.Contains(w, httpRoute), fmt.Sprint(w)
	})
	waitCondition(t, ns, "shop", v1alpha1.ConditionProxyConfigured, metav1.ConditionTrue, v1alpha1.ReasonProxyConfigured)
}

// gatewayAPIExperimental is the folder of the Gateway API experimental
// channel's CRDs, from the Go module cache (downloaded when missing).
func gatewayAPIExperimental(t *testing.T) string {
	t.Helper()
	const module = "sigs.k8s.io/gateway-api@v1.6.3"
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	if err != nil {
		t.Fatalf("go mod download %s (the Gateway API CRDs this test installs): %v\n%s", module, err, out)
	}
	var m struct{ Dir string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: no folder in %s (%v)", module, out, err)
	}
	return filepath.Join(m.Dir, "config", "crd", "experimental")
}

func ingress(ns, name, host string, annotations map[string]string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name, Port: networkingv1.ServiceBackendPort{Number: 80}}},
			}}}},
		}}},
	}
}

func policyStatus(t *testing.T, ns, name string) v1alpha1.AuthPolicyStatus {
	t.Helper()
	var ap v1alpha1.AuthPolicy
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ap); err != nil {
		t.Fatal(err)
	}
	return ap.Status
}

// waitEvent waits for an events.k8s.io Event on the object with that type,
// reason and a note holding text.
func waitEvent(t *testing.T, ns, kind, name, typ, reason, text string) {
	t.Helper()
	eventually(t, fmt.Sprintf("a %s event %s on %s %s", typ, reason, kind, name), func() (bool, string) {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Regarding.Kind != kind || e.Regarding.Name != name {
				continue
			}
			if e.Type == typ && e.Reason == reason && strings.Contains(e.Note, text) {
				return true, ""
			}
			seen = append(seen, e.Type+" "+e.Reason+": "+e.Note)
		}
		return false, strings.Join(seen, " | ")
	})
}

// countingRecorder passes events on to the manager's recorder and counts
// them by object name and reason.
type countingRecorder struct {
	events.EventRecorder
	mu sync.Mutex
	n  map[string]int
}

func (r *countingRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	name := "?"
	if o, ok := regarding.(client.Object); ok {
		name = o.GetName()
	}
	r.mu.Lock()
	r.n[name+"/"+reason]++
	r.mu.Unlock()
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (r *countingRecorder) count(name, reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[name+"/"+reason]
}

// TestProxyCheckWithoutIngressRights: under RBAC that does not let it list
// Ingresses, the controller still publishes policies; the checker says once
// what to grant (no ProxyConfigured meanwhile), and starts checking as soon
// as the rule is granted.
func TestProxyCheckWithoutIngressRights(t *testing.T) {
	ns := newNamespace(t)
	s := newSigner(t)
	create(t, keySecret(t, ns, "shop-keys", s), jwtPolicy(ns, "shop", "shop-keys", "shop.example.com"))
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "jwtgate-no-ingress-"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"jwtgate.dev"}, Resources: []string{"*"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"secrets", "events"}, Verbs: []string{"*"}},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"*"}},
		},
	}
	user := restrictedUser(t, ns, role)

	var logs syncBuffer
	const said = "the proxy check cannot list Ingresses"
	r := startReplica(t, ns, replicaOptions{cfg: user.Config(), proxyCheck: true,
		proxyLog: logr.FromSlogHandler(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))})
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	eventually(t, "the checker saying what to grant", func() (bool, string) {
		return strings.Contains(logs.String(), said), logs.String()
	})
	if st := policyStatus(t, ns, "shop"); meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionProxyConfigured) != nil || r.proxy.Passes() != 0 {
		t.Errorf("ProxyConfigured set, or %d passes, without the right to list Ingresses", r.proxy.Passes())
	}

	update(t, role, func(cr *rbacv1.ClusterRole) {
		cr.Rules = append(cr.Rules, rbacv1.PolicyRule{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: []string{"get", "list", "watch"}})
	})
	waitCondition(t, ns, "shop", v1alpha1.ConditionProxyConfigured, metav1.ConditionTrue, v1alpha1.ReasonProxyConfigured)
	if n := strings.Count(logs.String(), said); n != 1 {
		t.Errorf("said %d times what to grant, want once:\n%s", n, logs.String())
	}
}
