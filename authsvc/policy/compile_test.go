package policy

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

func TestCompileProblems(t *testing.T) {
	k := newTestKeys(t)
	tests := []struct {
		name   string
		mutate func(*v1alpha1.AuthPolicy, map[string]*corev1.Secret)
		field  string
		reason string
		text   string
	}{
		{"none algorithm", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT.Algorithms = append(ap.Spec.JWT.Algorithms, "none")
		}, "spec.jwt.algorithms[4]", v1alpha1.ReasonInvalidSpec, "unsigned tokens are never accepted"},
		{"no algorithms", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT.Algorithms = nil
		}, "spec.jwt.algorithms", v1alpha1.ReasonInvalidSpec, "list the algorithms"},
		{"missing secret", func(_ *v1alpha1.AuthPolicy, s map[string]*corev1.Secret) {
			delete(s, "shop-hmac")
		}, "spec.jwt.keys[3].secretRef", v1alpha1.ReasonSecretNotFound, "secret shop/shop-hmac not found"},
		{"missing secret key", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT.Keys[1].SecretRef.Key = "missing.pem"
		}, "spec.jwt.keys[1].secretRef", v1alpha1.ReasonSecretKeyNotFound, `secret shop/shop-keys has no key "missing.pem"`},
		{"key does not parse", func(_ *v1alpha1.AuthPolicy, s map[string]*corev1.Secret) {
			s["shop-keys"].Data["ec.pem"] = []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
		}, "spec.jwt.keys[1].secretRef", v1alpha1.ReasonKeyInvalid, "shop-keys"},
		{"key fits no algorithm", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT.Algorithms = []v1alpha1.Algorithm{"RS256"}
		}, "spec.jwt.keys[1].secretRef", v1alpha1.ReasonKeyInvalid, "no key in it fits"},
		{"malformed rule path", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Rules[2].Path = "api/orders"
		}, "spec.rules[2].path", v1alpha1.ReasonInvalidSpec, "normalized absolute path"},
		{"rule path with dot segments", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Rules[2].Path = "/public/../api"
		}, "spec.rules[2].path", v1alpha1.ReasonInvalidSpec, "normalized"},
		{"lower-case method", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Rules[1].Methods = []string{"get"}
		}, "spec.rules[1].methods[0]", v1alpha1.ReasonInvalidSpec, "upper case"},
		{"public rule with roles", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Rules[0].Roles = []string{"x"}
		}, "spec.rules[0]", v1alpha1.ReasonInvalidSpec, "public rule"},
		{"claim with two operators", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Rules[2].Claims[0].Equals = ptr("x")
		}, "spec.rules[2].claims[0]", v1alpha1.ReasonInvalidSpec, "exactly one"},
		{"host with port", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Hosts = []string{"shop.example.com:443"}
		}, "spec.hosts[0]", v1alpha1.ReasonInvalidSpec, "not a host name"},
		{"key with both sources", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT.Keys[0].JWKSURL = "https://idp.example.com/jwks"
		}, "spec.jwt.keys[0]", v1alpha1.ReasonInvalidSpec, "exactly one"},
		{"jwksURL over plain http", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT.Keys = append(ap.Spec.JWT.Keys, v1alpha1.KeySource{JWKSURL: "http://idp.example.com/jwks"})
		}, "spec.jwt.keys[4].jwksURL", v1alpha1.ReasonInvalidSpec, "https"},
		{"leeway too long", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT.Leeway = &metav1.Duration{Duration: time.Hour}
		}, "spec.jwt.leeway", v1alpha1.ReasonInvalidSpec, "out of range"},
		{"bad forward header", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.ForwardClaims[0].Header = "X Auth"
		}, "spec.forwardClaims[0].header", v1alpha1.ReasonInvalidSpec, "not a valid header name"},
		{"neither jwt nor login", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.JWT = nil
		}, "spec", v1alpha1.ReasonInvalidSpec, "set jwt, login, or both"},
		{"login without hosts", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Hosts = nil
			ap.Spec.Login = &v1alpha1.LoginSpec{UsersSecretRef: &v1alpha1.SecretKeyRef{Name: "u", Key: "users"}, SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"}}
		}, "spec.hosts", v1alpha1.ReasonInvalidSpec, "login requires hosts"},
		{"missing signing secret", func(ap *v1alpha1.AuthPolicy, s map[string]*corev1.Secret) {
			s["u"] = secret("shop", "u", map[string][]byte{"users": []byte("")})
			ap.Spec.Login = &v1alpha1.LoginSpec{UsersSecretRef: &v1alpha1.SecretKeyRef{Name: "u", Key: "users"}, SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"}}
		}, "spec.login.signingKeySecretRef", v1alpha1.ReasonSigningKeyMissing, "jwtgate keygen --alg ES256 --namespace shop --name sign | kubectl apply -f -"},
		{"plaintext password", func(ap *v1alpha1.AuthPolicy, s map[string]*corev1.Secret) {
			s["u"] = secret("shop", "u", map[string][]byte{"users": []byte("# users\nalice:secret:admin\n")})
			ap.Spec.Login = &v1alpha1.LoginSpec{UsersSecretRef: &v1alpha1.SecretKeyRef{Name: "u", Key: "users"}, SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"}}
		}, "spec.login.usersSecretRef", v1alpha1.ReasonUsersInvalid, "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ap, secrets := shopPolicy(k)
			tc.mutate(ap, secrets)
			_, err := Compile(Input{Policy: ap, Secrets: secrets})
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("want a CompileError, got %v", err)
			}
			for _, p := range ce.Problems {
				if p.Field == tc.field && p.Reason == tc.reason && strings.Contains(p.Message, tc.text) {
					return
				}
			}
			t.Fatalf("no problem at %s (%s) saying %q; got:\n%v", tc.field, tc.reason, tc.text, ce)
		})
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	ap.Spec.JWT.Algorithms = append(ap.Spec.JWT.Algorithms, "none")
	ap.Spec.Rules[0].Path = "nope"
	delete(secrets, "shop-hmac")
	_, err := Compile(Input{Policy: ap, Secrets: secrets})
	var ce *CompileError
	if !errors.As(err, &ce) || len(ce.Problems) < 3 {
		t.Fatalf("want at least 3 problems, got %v", err)
	}
}

func TestSnapshotRouting(t *testing.T) {
	k := newTestKeys(t)
	mk := func(ns, name string, hosts ...string) *Policy {
		ap, secrets := shopPolicy(k)
		ap.Namespace, ap.Name, ap.Spec.Hosts = ns, name, hosts
		for _, s := range secrets {
			s.Namespace = ns
		}
		return mustCompile(t, ap, secrets)
	}
	store := NewStore()
	a := mk("a", "web", "shop.example.com", "*.apps.example.com")
	b := mk("b", "web", "shop.example.com", "b.example.com")
	c := mk("c", "web", "c.example.com")
	conflicts := store.Replace([]*Policy{a, b, c})
	if len(conflicts) != 1 || conflicts[0].Policy != "b/web" || conflicts[0].Holder != "a/web" || conflicts[0].Host != "shop.example.com" {
		t.Fatalf("conflicts = %+v, want b/web losing shop.example.com to a/web", conflicts)
	}
	snap := store.Load()
	tests := []struct {
		host string
		want string
	}{
		{"shop.example.com", "a/web"},
		{"x.apps.example.com", "a/web"},
		{"apps.example.com", ""},
		{"y.x.apps.example.com", ""}, // wildcards are one label deep
		{"b.example.com", ""},        // b lost a host, so it is not host-routed at all
		{"c.example.com", "c/web"},
		{"unknown.example.com", ""},
	}
	for _, tc := range tests {
		got := ""
		if p := snap.ForHost(tc.host); p != nil {
			got = p.Key
		}
		if got != tc.want {
			t.Errorf("ForHost(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
	if snap.Policy("b", "web") == nil {
		t.Error("b/web must stay routable by path")
	}
	store.Remove("c/web")
	if store.Load().Policy("c", "web") != nil || store.Load().ForHost("c.example.com") != nil {
		t.Error("a deleted policy must stop answering at once")
	}
}

// Issue 17: a cached decision reads the fields before apiKeys, and they must
// stay in one cache line: the first 64 bytes of a Policy whose size class
// starts every object on a line (320 bytes; 352 would put half of them
// across two).
func TestPolicyHotFieldsFillOneCacheLine(t *testing.T) {
	var p Policy
	if end := unsafe.Offsetof(p.apiKeys) + unsafe.Sizeof(p.apiKeys); end > 64 {
		t.Errorf("the fields a cached decision reads end at byte %d, past the first cache line", end)
	}
	// The allocator's size classes of 256 (241-256 bytes) and 320 (289-320)
	// bytes start every object on a 64-byte line; 288 and 352 do not.
	if size := unsafe.Sizeof(p); !(size > 288 && size <= 320) && !(size > 240 && size <= 256) {
		t.Errorf("Policy is %d bytes: keep it in the size class of 256 or 320 bytes", size)
	}
}
