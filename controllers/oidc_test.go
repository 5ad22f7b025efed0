package controllers_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/internal/oidctest"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

// oidcObjects are a policy that signs people in at the OpenID provider issuer
// (only there: no users Secret), its signing key Secret and the Secret with
// the client's secret. Hosts: 127.0.0.1 (the sign-in pages the walk serves)
// and shop.example.com (replica.decide).
func oidcObjects(t *testing.T, ns, name, issuer, clientID, clientSecret string, hosts ...string) (*v1alpha1.AuthPolicy, *corev1.Secret, *corev1.Secret) {
	t.Helper()
	signing, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1", "shop.example.com"}
	}
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts:      hosts,
			RolesClaim: "roles",
			ForwardClaims: []v1alpha1.ForwardClaim{
				{Claim: "sub", Header: "X-Auth-User"},
				{Claim: "roles", Header: "X-Auth-Roles"},
			},
			Rules: []v1alpha1.Rule{
				{Path: "/public/", Public: true},
				{Path: "/staff/", Roles: []string{"staff"}},
			},
			Login: &v1alpha1.LoginSpec{
				SigningKeySecretRef: v1alpha1.SecretRef{Name: name + "-signing"},
				Cookie:              &v1alpha1.CookieSpec{Secure: new(false)},
				OIDC: &v1alpha1.OIDCSpec{
					IssuerURL:       issuer,
					ClientID:        clientID,
					ClientSecretRef: &v1alpha1.SecretKeyRef{Name: name + "-oidc", Key: "client-secret"},
					UsernameClaim:   "email",
					RolesClaim:      "groups",
					DisplayName:     "Test SSO",
					AllowedValues:   []v1alpha1.ClaimRequirement{{Name: "groups", Contains: new("staff")}},
				},
			},
		},
	}
	sign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-signing"}, Data: map[string][]byte{"private.pem": signing}}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-oidc"}, Data: map[string][]byte{"client-secret": []byte(clientSecret)}}
	return ap, sign, sec
}

// A policy whose provider's discovery document does not load is published
// (decisions go on) with Ready=False, OIDCDiscoveryFailed, naming
// spec.login.oidc.issuerURL and the failure but never the provider's answer;
// pointed at a real provider (Ory Hydra), it turns Ready=True.
func TestOIDCDiscoveryFailed(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{name: "a"})

	// Nothing listens on this loopback port: connection refused.
	closed := "http://" + testproc.FreeAddr(t)
	// Something answers 200 with a page that is not a discovery document and
	// holds what must never reach a status message.
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>internal-secret-hunter2</html>"))
	}))
	t.Cleanup(leaky.Close)

	for _, tc := range []struct {
		name, issuer, host, want string
	}{
		{"closed-port", closed, "shop.example.com", "connection refused"},
		{"not-a-document", leaky.URL, "leaky.example.com", "is not a JSON discovery document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap, sign, sec := oidcObjects(t, ns, tc.name, tc.issuer, "shop", "s3cret", tc.host)
			create(t, sign, sec, ap)
			c := waitCondition(t, ns, tc.name, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonOIDCDiscoveryFailed)
			for _, want := range []string{"spec.login.oidc.issuerURL", tc.issuer, tc.want} {
				if !strings.Contains(c.Message, want) {
					t.Errorf("Ready message %q does not say %q", c.Message, want)
				}
			}
			for _, never := range []string{"hunter2", "<html>", "s3cret"} {
				if strings.Contains(c.Message, never) {
					t.Errorf("Ready message %q quotes %q", c.Message, never)
				}
			}
			// Published: its decisions go on.
			if out := r.store.Outcome(ns + "/" + tc.name); out.Serving == nil {
				t.Fatalf("the policy is not published: %+v", out)
			}
		})
	}
	if code := r.decide(ns, "closed-port", "/public/x", ""); code != http.StatusOK {
		t.Fatalf("public path of the published policy: %d, want 200", code)
	}
	if code := r.decide(ns, "closed-port", "/staff/x", ""); code != http.StatusUnauthorized {
		t.Fatalf("staff path without a token: %d, want 401", code)
	}

	// The same policy, pointed at a real provider, turns Ready=True.
	idp := oidctest.Start(t)
	id, secret := idp.Client("http://127.0.0.1")
	ap := &v1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "closed-port"}}
	update(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "closed-port-oidc"}}, func(s *corev1.Secret) {
		s.Data["client-secret"] = []byte(secret)
	})
	update(t, ap, func(ap *v1alpha1.AuthPolicy) {
		ap.Spec.Login.OIDC.IssuerURL = idp.Issuer()
		ap.Spec.Login.OIDC.ClientID = id
	})
	waitCondition(t, ns, "closed-port", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
}
