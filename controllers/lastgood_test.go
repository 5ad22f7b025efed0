package controllers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// Deleting a compromised key's Secret makes the policy fail to compile; the last
// good version keeps serving, but never with that key (issue 12 item 2). With no
// key left every token is refused and the status says why.
func TestDeletedKeyStopsVerifying(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{})
	a, b := newSigner(t), newSigner(t)
	ap := jwtPolicy(ns, "shop", "key-a")
	ap.Spec.JWT.Keys = append(ap.Spec.JWT.Keys, v1alpha1.KeySource{SecretRef: &v1alpha1.SecretKeyRef{Name: "key-b", Key: "key.pem"}})
	secretA, secretB := keySecret(t, ns, "key-a", a), keySecret(t, ns, "key-b", b)
	create(t, secretA, secretB, ap)
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	for _, s := range []signer{a, b} {
		if got := r.decide(ns, "shop", "/orders", s.token(t)); got != http.StatusOK {
			t.Fatalf("before the deletion: decision %d, want 200", got)
		}
	}
	// jwtgate_policy_ready says what the status says, as in serve
	// (authsvc/standalone's TestLastGoodNeverWidensTrust).
	ready := func() float64 {
		m := metric(t, r.reg, "jwtgate_policy_ready", map[string]string{"policy": ns + "/shop"})
		if m == nil {
			t.Fatalf("no jwtgate_policy_ready{policy=%s/shop}", ns)
		}
		return m.GetGauge().GetValue()
	}
	if v := ready(); v != 1 {
		t.Errorf("jwtgate_policy_ready = %v while Ready=True, want 1", v)
	}

	if err := k8s.Delete(context.Background(), secretB); err != nil {
		t.Fatal(err)
	}
	c := waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	for _, want := range []string{"spec.jwt.keys[1].secretRef", "without what its Secrets no longer hold"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("Ready message %q does not say %q", c.Message, want)
		}
	}
	if got := r.decide(ns, "shop", "/orders", b.token(t)); got != http.StatusUnauthorized {
		t.Errorf("token signed by the deleted key: decision %d, want 401", got)
	}
	if v := ready(); v != 0 {
		t.Errorf("jwtgate_policy_ready = %v while the last good version serves (Ready=False), want 0", v)
	}
	if got := r.decide(ns, "shop", "/orders", a.token(t)); got != http.StatusOK {
		t.Errorf("token signed by the key still held: decision %d, want 200", got)
	}

	if err := k8s.Delete(context.Background(), secretA); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the status to say no key is left", func() (bool, string) {
		got := &v1alpha1.AuthPolicy{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "shop"}, got); err != nil {
			return false, err.Error()
		}
		for _, c := range got.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady {
				return c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "no key is left"), c.Message
			}
		}
		return false, "no Ready condition"
	})
	if got := r.decide(ns, "shop", "/orders", a.token(t)); got != http.StatusUnauthorized {
		t.Errorf("no key left: decision %d, want 401", got)
	}
}

// A replica counts a policy for /readyz only once it has published it or found
// it invalid: a reconcile that fails (here RBAC refuses the Secret read) leaves
// the replica not ready, instead of ready with a policy it does not serve
// (issue 12 item 11).
func TestReadyOnlyOncePublished(t *testing.T) {
	ns := newNamespace(t)
	key := newSigner(t)
	create(t, keySecret(t, ns, "shop-keys", key), jwtPolicy(ns, "shop", "shop-keys"))

	// A user that may list and watch Secrets (the cache) but not get one (the
	// reconciler reads Secrets with a live GET).
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "jwtgate-no-secret-get-"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"jwtgate.dev"}, Resources: []string{"*"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"events", "configmaps", "namespaces", "services", "endpoints"}, Verbs: []string{"*"}},
			{APIGroups: []string{"events.k8s.io", "coordination.k8s.io", "networking.k8s.io", "discovery.k8s.io"}, Resources: []string{"*"}, Verbs: []string{"*"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list", "watch"}},
		},
	}
	user := restrictedUser(t, ns, role)

	healthAddr := freeAddr(t)
	r := startReplica(t, ns, replicaOptions{cfg: user.Config(), healthAddr: healthAddr})
	// Long enough for the caches to sync and several reconciles to fail.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if code := readyz(healthAddr); code == http.StatusOK {
			t.Fatalf("/readyz 200 while the only policy was never published (decision %d)", r.decide(ns, "shop", "/orders", key.token(t)))
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Once the Secret can be read, the retry publishes the policy and the
	// replica becomes ready.
	update(t, role, func(cr *rbacv1.ClusterRole) {
		cr.Rules[len(cr.Rules)-1].Verbs = []string{"get", "list", "watch"}
	})
	eventually(t, "/readyz 200 once the policy is published", func() (bool, string) {
		code := readyz(healthAddr)
		return code == http.StatusOK, http.StatusText(code)
	})
	if got := r.decide(ns, "shop", "/orders", key.token(t)); got != http.StatusOK {
		t.Errorf("ready replica: decision %d, want 200", got)
	}
}

// readyz is the replica's /readyz status; 0 while it does not answer.
func readyz(addr string) int {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
