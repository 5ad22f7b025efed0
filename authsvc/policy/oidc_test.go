package policy

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// oidcPolicy is shopPolicy signing people in at a provider only.
func oidcPolicy(t *testing.T) (*v1alpha1.AuthPolicy, map[string]*corev1.Secret) {
	t.Helper()
	ap, secrets := shopPolicy(newTestKeys(t))
	pemBytes, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	secrets["sign"] = secret("shop", "sign", map[string][]byte{"private.pem": pemBytes})
	secrets["shop-oidc"] = secret("shop", "shop-oidc", map[string][]byte{"client-secret": []byte("s3cret\n")})
	ap.Spec.Login = &v1alpha1.LoginSpec{
		SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"},
		OIDC: &v1alpha1.OIDCSpec{
			IssuerURL:       "https://idp.example.com",
			ClientID:        "shop",
			ClientSecretRef: &v1alpha1.SecretKeyRef{Name: "shop-oidc", Key: "client-secret"},
		},
	}
	return ap, secrets
}

func TestCompileOIDC(t *testing.T) {
	ap, secrets := oidcPolicy(t)
	p := mustCompile(t, ap, secrets)
	o := p.Login.OIDC
	if o == nil || p.Login.Users != nil {
		t.Fatalf("OIDC %+v, users %v", o, p.Login.Users)
	}
	if o.ClientSecret != "s3cret" || o.UsernameClaim != "sub" || o.MaxSessionAge != 24*time.Hour || !slices.Equal(o.Scopes, []string{"openid", "email", "profile"}) {
		t.Fatalf("defaults: %+v", o)
	}
	if len(o.FlowKey) != 32 || string(o.FlowKey) == string(p.Login.CSRFKey) {
		t.Fatal("the flow key is missing or is the CSRF key")
	}
	// "openid" is always sent, first.
	ap.Spec.Login.OIDC.Scopes = []string{"groups"}
	if got := mustCompile(t, ap, secrets).Login.OIDC.Scopes; !slices.Equal(got, []string{"openid", "groups"}) {
		t.Fatalf("scopes %v", got)
	}
}

func TestCompileOIDCProblems(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.AuthPolicy, map[string]*corev1.Secret)
		field  string
		reason string
		text   string
	}{
		{"neither users nor oidc", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC = nil
		}, "spec.login", v1alpha1.ReasonInvalidSpec, "usersSecretRef, oidc, or both"},
		{"issuer over http", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.IssuerURL = "http://idp.example.com"
		}, "spec.login.oidc.issuerURL", v1alpha1.ReasonInvalidSpec, "not loopback"},
		{"issuer with credentials", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.IssuerURL = "https://u:p@idp.example.com"
		}, "spec.login.oidc.issuerURL", v1alpha1.ReasonInvalidSpec, "credentials"},
		{"issuer without host", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.IssuerURL = "https:///realms/x"
		}, "spec.login.oidc.issuerURL", v1alpha1.ReasonInvalidSpec, "no host"},
		{"no client ID", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.ClientID = ""
		}, "spec.login.oidc.clientID", v1alpha1.ReasonInvalidSpec, "required"},
		{"client secret missing", func(_ *v1alpha1.AuthPolicy, s map[string]*corev1.Secret) {
			delete(s, "shop-oidc")
		}, "spec.login.oidc.clientSecretRef", v1alpha1.ReasonSecretNotFound, "shop/shop-oidc not found"},
		{"client secret key missing", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.ClientSecretRef.Key = "secret"
		}, "spec.login.oidc.clientSecretRef", v1alpha1.ReasonSecretKeyNotFound, `has no key "secret"`},
		{"scope with a space", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.Scopes = []string{"openid email"}
		}, "spec.login.oidc.scopes[0]", v1alpha1.ReasonInvalidSpec, "each scope its own item"},
		{"max session age too short", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.MaxSessionAge = &metav1.Duration{Duration: time.Minute}
		}, "spec.login.oidc.maxSessionAge", v1alpha1.ReasonInvalidSpec, "out of range"},
		{"every host a wildcard, no redirectURL", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Hosts = []string{"*.shop.example.com"}
		}, "spec.login.oidc.redirectURL", v1alpha1.ReasonInvalidSpec, "required when every host is a wildcard"},
		{"redirectURL on a foreign host", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.RedirectURL = "https://evil.example.com/jwtgate/oidc/callback"
		}, "spec.login.oidc.redirectURL", v1alpha1.ReasonInvalidSpec, "not one of spec.hosts"},
		{"redirectURL on another path", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.RedirectURL = "https://shop.example.com/callback"
		}, "spec.login.oidc.redirectURL", v1alpha1.ReasonInvalidSpec, "/jwtgate/oidc/callback"},
		{"redirectURL on a wildcard host without a cookie domain", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Hosts = []string{"*.shop.example.com"}
			ap.Spec.Login.OIDC.RedirectURL = "https://login.shop.example.com/jwtgate/oidc/callback"
		}, "spec.login.oidc.redirectURL", v1alpha1.ReasonInvalidSpec, "spec.login.cookie.domain"},
		{"allowedValues with two operators", func(ap *v1alpha1.AuthPolicy, _ map[string]*corev1.Secret) {
			ap.Spec.Login.OIDC.AllowedValues = []v1alpha1.ClaimRequirement{{Name: "hd", Equals: ptr("a"), Contains: ptr("b")}}
		}, "spec.login.oidc.allowedValues[0]", v1alpha1.ReasonInvalidSpec, "exactly one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ap, secrets := oidcPolicy(t)
			tc.mutate(ap, secrets)
			_, err := Compile(Input{Policy: ap, Secrets: secrets})
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("want a CompileError, got %v", err)
			}
			for _, p := range ce.Problems {
				if p.Field == tc.field && p.Reason == tc.reason && strings.Contains(p.Message, tc.text) {
					if strings.Contains(p.Message, "s3cret") {
						t.Fatalf("the message shows the client secret: %s", p.Message)
					}
					return
				}
			}
			t.Fatalf("no problem %s/%s containing %q in %v", tc.field, tc.reason, tc.text, ce.Problems)
		})
	}
	// Allowed: loopback http (tests), and a wildcard-only policy with a
	// redirectURL whose host the cookie domain covers.
	ap, secrets := oidcPolicy(t)
	ap.Spec.Login.OIDC.IssuerURL = "http://127.0.0.1:4444/"
	ap.Spec.Hosts = []string{"*.shop.example.com"}
	ap.Spec.Login.Cookie = &v1alpha1.CookieSpec{Domain: "shop.example.com"}
	ap.Spec.Login.OIDC.RedirectURL = "https://login.shop.example.com/jwtgate/oidc/callback"
	mustCompile(t, ap, secrets)
}

func TestOIDCIdentify(t *testing.T) {
	ap, secrets := oidcPolicy(t)
	secrets["users"] = secret("shop", "users", map[string][]byte{"users": []byte("alice:$2a$04$7qRvtJzj4lLVDyPrG9ZpROk7d4IvTTPe0XfQ0bsjwNzZWV4gSfsiq:admin\n")})
	ap.Spec.Login.UsersSecretRef = &v1alpha1.SecretKeyRef{Name: "users", Key: "users"}
	ap.Spec.APIKeys = &v1alpha1APIKeys
	secrets["shop-apikeys"] = secret("shop", "shop-apikeys", map[string][]byte{"keys": []byte("builder:sha256:" + strings.Repeat("ab", 32) + ":ci\n")})
	ap.Spec.Login.OIDC.UsernameClaim = "email"
	ap.Spec.Login.OIDC.RolesClaim = "groups"
	ap.Spec.Login.OIDC.AllowedValues = []v1alpha1.ClaimRequirement{{Name: "hd", Equals: ptr("example.com")}, {Name: "groups", Contains: ptr("staff")}}
	p := mustCompile(t, ap, secrets)
	apiKeyName := p.apiKeys.keys[0].name
	claims := func(extra string) map[string]any {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(`{"sub":"u1","email":"bob@example.com","email_verified":true,"hd":"example.com","groups":["staff","ops","staff"]` + extra + `}`))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m, refused := p.Login.OIDC.Identify(claims(""))
	if refused != nil || m.User != "bob@example.com" || !slices.Equal(m.Roles, []string{"staff", "ops"}) {
		t.Fatalf("mapped %+v, refused %v", m, refused)
	}
	for _, tc := range []struct{ name, extra, text string }{
		{"email not verified", `,"email_verified":false`, "not verified"},
		{"email_verified missing", `,"email_verified":null`, "not verified"},
		{"another domain", `,"hd":"evil.com"`, "allowedValues[0]"},
		{"not staff", `,"groups":["ops"]`, "allowedValues[1]"},
		{"no email", `,"email":null`, "no \"email\" claim"},
		{"email not a string", `,"email":7`, "not a non-empty string"},
		{"email with a control character", `,"email":"bob\n@example.com"`, "control"},
		{"name of a password user", `,"email":"alice"`, "users Secret"},
		{"name of an API key", `,"email":"` + apiKeyName + `"`, "API key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, refused := p.Login.OIDC.Identify(claims(tc.extra))
			if refused == nil {
				t.Fatalf("mapped %+v", m)
			}
			if !strings.Contains(refused.Reason, tc.text) {
				t.Fatalf("reason %q does not say %q", refused.Reason, tc.text)
			}
		})
	}
}
