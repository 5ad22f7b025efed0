package controllers_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// Issue 12 item 1: whoever may write an AuthPolicy in a namespace may point it
// at any Secret there; the status condition names the Secret, the key and the
// line, and never quotes what the Secret holds.
func TestStatusQuotesNoSecretContent(t *testing.T) {
	const sentinel = "S3NTINELvalue"
	ns := newNamespace(t)
	startReplica(t, ns, replicaOptions{})
	key := newSigner(t)
	cases := []struct {
		name   string
		data   map[string]string
		ref    string
		reason string
	}{
		{"jwk", map[string]string{"k": `{"kty":"` + sentinel + `","kid":"` + sentinel + `"}`}, "k", v1alpha1.ReasonKeyInvalid},
		{"crv", map[string]string{"k": `{"kty":"EC","crv":"` + sentinel + `","x":"AAAA","y":"AAAA"}`}, "k", v1alpha1.ReasonKeyInvalid},
		{"pem", map[string]string{"k": "-----BEGIN " + sentinel + "-----\nAAAA\n-----END " + sentinel + "-----\n"}, "k", v1alpha1.ReasonKeyInvalid},
		{"missing", map[string]string{"other": sentinel}, "k", v1alpha1.ReasonSecretKeyNotFound},
		{"users", map[string]string{"users": "password = " + sentinel + "\npostgres:" + sentinel + "\n"}, "users", v1alpha1.ReasonUsersInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "leak-" + tc.name}, StringData: tc.data}
			ap := jwtPolicy(ns, "leak-"+tc.name, "leak-"+tc.name)
			ap.Spec.JWT.Keys[0].SecretRef.Key = tc.ref
			if tc.name == "users" {
				signing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "leak-signing"},
					Data: map[string][]byte{"private.pem": key.privatePEM(t)}}
				keys := keySecret(t, ns, "leak-keys", key)
				create(t, signing, keys)
				ap.Spec.JWT.Keys[0].SecretRef = &v1alpha1.SecretKeyRef{Name: "leak-keys", Key: "key.pem"}
				ap.Spec.Hosts = []string{"leak.example.com"}
				ap.Spec.Login = &v1alpha1.LoginSpec{
					UsersSecretRef:      &v1alpha1.SecretKeyRef{Name: sec.Name, Key: "users"},
					SigningKeySecretRef: v1alpha1.SecretRef{Name: "leak-signing"},
				}
			}
			create(t, sec, ap)
			c := waitCondition(t, ns, ap.Name, v1alpha1.ConditionReady, metav1.ConditionFalse, tc.reason)
			if strings.Contains(c.Message, sentinel) || strings.Contains(c.Message, "postgres") {
				t.Fatalf("status quotes the Secret: %q", c.Message)
			}
			if !strings.Contains(c.Message, ns+"/"+sec.Name) {
				t.Errorf("status does not name the Secret: %q", c.Message)
			}
		})
	}
}

// Issue 12 item 3: the Warnings condition names the rule whose methods fall
// through; a policy without the hole has Warnings=False.
func TestWarningsCondition(t *testing.T) {
	ns := newNamespace(t)
	startReplica(t, ns, replicaOptions{})
	key := newSigner(t)
	ap := jwtPolicy(ns, "shop", "shop-keys")
	ap.Spec.Rules = append(ap.Spec.Rules, v1alpha1.Rule{Path: "/orders/", Methods: []string{"GET", "POST"}, Roles: []string{"admin"}})
	create(t, keySecret(t, ns, "shop-keys", key), ap)
	c := waitCondition(t, ns, "shop", v1alpha1.ConditionWarnings, metav1.ConditionTrue, v1alpha1.ReasonMethodsFallThrough)
	if !strings.Contains(c.Message, "spec.rules[2].methods") || !strings.Contains(c.Message, "any valid token") {
		t.Errorf("message %q does not name the rule and where the methods land", c.Message)
	}
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)

	update(t, ap, func(ap *v1alpha1.AuthPolicy) {
		ap.Spec.Rules = append(ap.Spec.Rules, v1alpha1.Rule{Path: "/orders/", Roles: []string{"admin"}})
	})
	waitCondition(t, ns, "shop", v1alpha1.ConditionWarnings, metav1.ConditionFalse, v1alpha1.ReasonNoWarnings)
	var got v1alpha1.AuthPolicy
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "shop"}, &got); err != nil {
		t.Fatal(err)
	}
	if meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady) == nil {
		t.Fatal("no Ready condition")
	}
}
