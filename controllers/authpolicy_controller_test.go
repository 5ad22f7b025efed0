package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

func TestCreateReadyAndDecide(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{})
	key := newSigner(t)
	create(t, keySecret(t, ns, "shop-keys", key), jwtPolicy(ns, "shop", "shop-keys"))

	c := waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	t.Logf("Ready: %s", c.Message)

	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"valid token", "/orders", key.token(t), http.StatusOK},
		{"admin role", "/admin/users", key.token(t, "admin"), http.StatusOK},
		{"missing role", "/admin/users", key.token(t, "viewer"), http.StatusForbidden},
		{"no token", "/orders", "", http.StatusUnauthorized},
		{"public", "/public/logo.png", "", http.StatusOK},
		{"other key", "/orders", newSigner(t).token(t), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.decide(ns, "shop", tc.path, tc.token); got != tc.want {
				t.Errorf("decision %d, want %d", got, tc.want)
			}
		})
	}

	// The transition to Ready is an event a person sees in kubectl describe.
	eventually(t, "a Ready event", func() (bool, string) {
		var evs eventsv1.EventList
		if err := k8s.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			if e.Regarding.Name == "shop" && e.Reason == v1alpha1.ReasonReady && e.Type == corev1.EventTypeNormal {
				return true, ""
			}
			seen = append(seen, e.Reason)
		}
		return false, fmt.Sprint(seen)
	})
}

func TestSecretRotation(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{})
	old := newSigner(t)
	secret := keySecret(t, ns, "shop-keys", old)
	create(t, secret, jwtPolicy(ns, "shop", "shop-keys"))
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	if got := r.decide(ns, "shop", "/orders", old.token(t)); got != http.StatusOK {
		t.Fatalf("before rotation: decision %d, want 200", got)
	}

	// Rotate several times and measure from the Secret update (the API server's
	// answer) to the first decision that accepts the new key.
	var lat []time.Duration
	for i := range 5 {
		next := newSigner(t)
		nextTok, oldTok := next.token(t), old.token(t)
		start := time.Now()
		update(t, secret, func(s *corev1.Secret) { s.Data = map[string][]byte{"key.pem": next.publicPEM(t)} })
		written := time.Now()
		deadline := start.Add(timeout)
		for r.decide(ns, "shop", "/orders", nextTok) != http.StatusOK {
			if time.Now().After(deadline) {
				t.Fatalf("rotation %d: the new key is not accepted after %s", i, timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, time.Since(written))
		if got := r.decide(ns, "shop", "/orders", oldTok); got != http.StatusUnauthorized {
			t.Fatalf("rotation %d: the old key still gives %d, want 401", i, got)
		}
		old = next
	}
	slices.Sort(lat)
	t.Logf("Secret update -> decision latency over %d rotations: min %s, median %s, max %s",
		len(lat), lat[0].Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
}

func TestInvalidReferenceKeepsLastGood(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{})
	key := newSigner(t)
	ap := jwtPolicy(ns, "shop", "shop-keys")
	create(t, keySecret(t, ns, "shop-keys", key), ap)
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)

	update(t, ap, func(ap *v1alpha1.AuthPolicy) {
		ap.Spec.JWT.Keys = append(ap.Spec.JWT.Keys, v1alpha1.KeySource{SecretRef: &v1alpha1.SecretKeyRef{Name: "shop-keys", Key: "missing.pem"}})
	})
	c := waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretKeyNotFound)
	for _, want := range []string{`spec.jwt.keys[1].secretRef`, `secret ` + ns + `/shop-keys has no key "missing.pem"`, "last good version (generation 1"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q does not say %q", c.Message, want)
		}
	}
	if got := r.decide(ns, "shop", "/orders", key.token(t)); got != http.StatusOK {
		t.Errorf("the last good version should still serve: decision %d, want 200", got)
	}
	if p := r.store.Current(ns + "/shop"); p == nil || p.ObjectGen != 1 {
		t.Errorf("serving %+v, want generation 1", p)
	}

	// A Secret that does not exist at all.
	update(t, ap, func(ap *v1alpha1.AuthPolicy) {
		ap.Spec.JWT.Keys[1].SecretRef = &v1alpha1.SecretKeyRef{Name: "nope", Key: "key.pem"}
	})
	c = waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	if !strings.Contains(c.Message, "spec.jwt.keys[1].secretRef: secret "+ns+"/nope not found") {
		t.Errorf("message %q does not name the field and Secret", c.Message)
	}

	// Creating the missing Secret fixes the policy: the Secret watch finds it.
	other := newSigner(t)
	create(t, keySecret(t, ns, "nope", other))
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	if got := r.decide(ns, "shop", "/orders", other.token(t)); got != http.StatusOK {
		t.Errorf("token of the new key: decision %d, want 200", got)
	}
}

func TestAdmissionRefusesMalformedPolicies(t *testing.T) {
	ns := newNamespace(t)
	for _, tc := range []struct {
		name   string
		change func(*v1alpha1.AuthPolicy)
		want   string
	}{
		{"algorithm none", func(ap *v1alpha1.AuthPolicy) {
			ap.Spec.JWT.Algorithms = []v1alpha1.Algorithm{"none"}
		}, `spec.jwt.algorithms[0]: Unsupported value: "none"`},
		{"rule path without slash", func(ap *v1alpha1.AuthPolicy) {
			ap.Spec.Rules = []v1alpha1.Rule{{Path: "admin", Roles: []string{"admin"}}}
		}, "spec.rules[0].path"},
		{"key with secretRef and jwksURL", func(ap *v1alpha1.AuthPolicy) {
			ap.Spec.JWT.Keys[0].JWKSURL = "https://idp.example.com/jwks.json"
		}, "set exactly one of secretRef or jwksURL"},
		{"claim with equals and in", func(ap *v1alpha1.AuthPolicy) {
			ap.Spec.Rules = []v1alpha1.Rule{{Path: "/api/", Claims: []v1alpha1.ClaimRequirement{{Name: "scope", Equals: ptr.To("a"), In: []string{"a", "b"}}}}}
		}, "set exactly one of equals, in, contains or exists"},
		{"neither jwt nor login", func(ap *v1alpha1.AuthPolicy) {
			ap.Spec.JWT = nil
		}, "set jwt, login, or both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap := jwtPolicy(ns, "bad", "keys")
			tc.change(ap)
			err := k8s.Create(context.Background(), ap)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create: %v, want Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestAdmissionAcceptsClaimIn(t *testing.T) {
	ns := newNamespace(t)
	ap := jwtPolicy(ns, "in", "keys")
	ap.Spec.Rules = []v1alpha1.Rule{{Path: "/api/", Claims: []v1alpha1.ClaimRequirement{{Name: "tier", In: []string{"gold", "silver"}}}}}
	create(t, ap) // "in" is a CEL keyword: the CRD's rule must escape it
}

func TestDeleteDeniesAtOnce(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{})
	key := newSigner(t)
	ap := jwtPolicy(ns, "shop", "shop-keys")
	create(t, keySecret(t, ns, "shop-keys", key), ap)
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	tok := key.token(t)
	if got := r.decide(ns, "shop", "/orders", tok); got != http.StatusOK {
		t.Fatalf("decision %d, want 200", got)
	}
	if err := k8s.Delete(context.Background(), ap); err != nil {
		t.Fatal(err)
	}
	eventually(t, "decisions to deny", func() (bool, string) {
		got := r.decide(ns, "shop", "/orders", tok)
		return got == http.StatusForbidden, fmt.Sprint("decision ", got)
	})
	if got := r.decide(ns, "shop", "/public/x", ""); got != http.StatusForbidden {
		t.Errorf("public path of a deleted policy: %d, want 403 (no policy)", got)
	}
}

func TestTwoReplicasOneWritesStatus(t *testing.T) {
	ns := newNamespace(t)
	a := startReplica(t, ns, replicaOptions{name: "a", leaderElect: true})
	b := startReplica(t, ns, replicaOptions{name: "b", leaderElect: true})
	key := newSigner(t)
	ap := jwtPolicy(ns, "shop", "shop-keys")
	create(t, keySecret(t, ns, "shop-keys", key), ap)

	// Both serve decisions, whoever leads.
	tok := key.token(t)
	for _, r := range []*replica{a, b} {
		eventually(t, "replica "+r.name+" to allow", func() (bool, string) {
			got := r.decide(ns, "shop", "/orders", tok)
			return got == http.StatusOK, fmt.Sprint("decision ", got)
		})
	}
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)

	var leader, follower *replica
	eventually(t, "one leader", func() (bool, string) {
		switch {
		case a.leading() && !b.leading():
			leader, follower = a, b
		case b.leading() && !a.leading():
			leader, follower = b, a
		default:
			return false, fmt.Sprintf("a leading %v, b leading %v", a.leading(), b.leading())
		}
		return true, ""
	})

	// A change both replicas reconcile: only the leader writes it.
	update(t, ap, func(ap *v1alpha1.AuthPolicy) { ap.Spec.JWT.Keys[0].SecretRef.Key = "missing.pem" })
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretKeyNotFound)
	for _, r := range []*replica{a, b} {
		if got := r.decide(ns, "shop", "/orders", tok); got != http.StatusOK {
			t.Errorf("replica %s: last good version: decision %d, want 200", r.name, got)
		}
	}
	// The API server shows a patch a moment before the leader counts it.
	eventually(t, "leader "+leader.name+" to count its two status writes", func() (bool, string) {
		n := leader.rec.StatusPatches()
		return n >= 2, fmt.Sprint(n)
	})
	if n := follower.rec.StatusPatches(); n != 0 {
		t.Errorf("follower %s wrote status %d times", follower.name, n)
	}
	t.Logf("leader %s wrote status %d times, follower %s %d times", leader.name, leader.rec.StatusPatches(), follower.name, follower.rec.StatusPatches())

	// The leader goes away (releasing its lease); the other takes over status.
	leader.stop()
	eventually(t, "follower "+follower.name+" to lead", func() (bool, string) { return follower.leading(), "not leading" })
	update(t, ap, func(ap *v1alpha1.AuthPolicy) { ap.Spec.JWT.Keys[0].SecretRef.Key = "key.pem" })
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	eventually(t, "new leader "+follower.name+" to write status", func() (bool, string) {
		n := follower.rec.StatusPatches()
		return n > 0, fmt.Sprint(n)
	})
}

func TestSigningKeyMissing(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{replicas: 2})
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-users"},
		StringData: map[string]string{"users": "alice:" + string(hash) + ":admin\n"},
	}
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop"},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts: []string{"login.example.com"},
			Login: &v1alpha1.LoginSpec{
				UsersSecretRef:      &v1alpha1.SecretKeyRef{Name: "shop-users", Key: "users"},
				SigningKeySecretRef: v1alpha1.SecretRef{Name: "shop-signing"},
			},
		},
	}
	create(t, users, ap)
	c := waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSigningKeyMissing)
	wantLine := "jwtgate keygen --alg ES256 --namespace " + ns + " --name shop-signing | kubectl apply -f -"
	if !strings.Contains(c.Message, wantLine) {
		t.Errorf("message %q does not hold %q", c.Message, wantLine)
	}
	if !strings.Contains(c.Message, "nothing serves it") {
		t.Errorf("message %q does not say that nothing serves", c.Message)
	}
	sessions := waitCondition(t, ns, "shop", v1alpha1.ConditionSessionsShared, metav1.ConditionFalse, v1alpha1.ReasonPerReplica)
	t.Logf("SessionsShared: %s", sessions.Message)

	// What the keygen line would apply.
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "shop-signing"},
		Data:       map[string][]byte{"private.pem": newSigner(t).privatePEM(t)},
	})
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	if p := r.store.Current(ns + "/shop"); p == nil || p.Login == nil {
		t.Errorf("policy with login not serving: %+v", p)
	}
}

// With --host-claims, a namespace claims only the hosts it is given: a policy
// naming another host is Ready=False, HostNotAllowed, holds none of its hosts
// (so it cannot squat on them first) and still answers by path.
func TestHostClaims(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{hostClaims: ns + "=*.shop.example.com,shop.example.com;other-team=pay.example.com"})
	key := newSigner(t)
	create(t, keySecret(t, ns, "keys", key), jwtPolicy(ns, "squatter", "keys", "pay.example.com", "www.shop.example.com"))
	c := waitCondition(t, ns, "squatter", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonHostNotAllowed)
	if !strings.Contains(c.Message, `"pay.example.com"`) || strings.Contains(c.Message, `"www.shop.example.com"`) ||
		!strings.Contains(c.Message, "*.shop.example.com") || strings.Contains(c.Message, "other-team") {
		t.Errorf("message %q should name the refused host and what this namespace may claim, and nothing of other namespaces", c.Message)
	}
	if got := r.store.Load().ForHost("www.shop.example.com"); got != nil {
		t.Errorf("a refused policy must not be host-routed at all; www.shop.example.com goes to %s", got.Key)
	}
	if got := r.decide(ns, "squatter", "/orders", key.token(t)); got != http.StatusOK {
		t.Errorf("path-routed decision of the refused policy: %d, want 200", got)
	}
	// An allowed policy created later gets the hosts the refused one named.
	create(t, jwtPolicy(ns, "shop", "keys", "shop.example.com", "www.shop.example.com"))
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	if got := r.store.Load().ForHost("www.shop.example.com"); got == nil || got.Key != ns+"/shop" {
		t.Errorf("www.shop.example.com routes to %v, want %s/shop", got, ns)
	}
}

func TestHostConflict(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{})
	key := newSigner(t)
	// Names sort in creation order, so that the tie-break on equal creation
	// seconds agrees with it.
	first := jwtPolicy(ns, "conflict-a", "keys", "shop.example.com")
	create(t, keySecret(t, ns, "keys", key), first)
	waitCondition(t, ns, "conflict-a", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	create(t, jwtPolicy(ns, "conflict-b", "keys", "shop.example.com", "other.example.com"))
	c := waitCondition(t, ns, "conflict-b", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonHostConflict)
	if !strings.Contains(c.Message, `host "shop.example.com" is held by AuthPolicy `+ns+"/conflict-a") {
		t.Errorf("message %q does not name the host and its holder", c.Message)
	}
	waitCondition(t, ns, "conflict-a", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	if got := r.store.Load().ForHost("other.example.com"); got != nil {
		t.Errorf("a conflicting policy must not be host-routed at all; other.example.com goes to %s", got.Key)
	}
	// The path route still answers.
	if got := r.decide(ns, "conflict-b", "/orders", key.token(t)); got != http.StatusOK {
		t.Errorf("path-routed decision of the conflicting policy: %d, want 200", got)
	}

	// When the holder goes, the other one gets the host.
	if err := k8s.Delete(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, ns, "conflict-b", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	if got := r.store.Load().ForHost("shop.example.com"); got == nil || got.Key != ns+"/conflict-b" {
		t.Errorf("shop.example.com routes to %v, want conflict-b", got)
	}
}

func TestJWKSUnreachable(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{})
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "idp"},
		Spec: v1alpha1.AuthPolicySpec{JWT: &v1alpha1.JWTSpec{
			Algorithms: []v1alpha1.Algorithm{"RS256"},
			Keys:       []v1alpha1.KeySource{{JWKSURL: "http://127.0.0.1:1/jwks.json"}},
		}},
	}
	create(t, ap)
	c := waitCondition(t, ns, "idp", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonJWKSUnreachable)
	if !strings.Contains(c.Message, "spec.jwt.keys[0].jwksURL") {
		t.Errorf("message %q does not name the field", c.Message)
	}
	// Published, failing closed.
	if got := r.decide(ns, "idp", "/orders", newSigner(t).token(t)); got != http.StatusUnauthorized {
		t.Errorf("decision %d, want 401", got)
	}
}
