package policy

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// The last good version never trusts more than the Secrets hold now, for every
// kind of Secret material a policy trusts: when the newest version does not
// compile, a users Secret, an OpenID client secret or API keys that were
// deleted or changed stop working at once (password sign-in and the sessions
// it renews, sign-in at the provider, API keys), while what is still held
// keeps serving.
func TestLastGoodDropsEveryKindOfMaterialNoLongerHeld(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	if err != nil {
		t.Fatal(err)
	}
	base := func(t *testing.T) (*v1alpha1.AuthPolicy, map[string]*corev1.Secret) {
		ap, secrets := oidcPolicy(t)
		secrets["users"] = secret("shop", "users", map[string][]byte{"users": []byte("alice:" + string(hash) + "\n")})
		ap.Spec.Login.UsersSecretRef = &v1alpha1.SecretKeyRef{Name: "users", Key: "users"}
		secrets["api"] = secret("shop", "api", map[string][]byte{"keys": []byte("build-bot:sha256:" + strings.Repeat("ab", 32) + "\n")})
		ap.Spec.APIKeys = &v1alpha1.APIKeys{SecretRef: v1alpha1.SecretKeyRef{Name: "api", Key: "keys"}}
		return ap, secrets
	}
	for _, tc := range []struct {
		name    string
		change  func(map[string]*corev1.Secret)
		dropped string
		check   func(t *testing.T, p *Policy)
	}{
		{"users Secret deleted", func(s map[string]*corev1.Secret) { delete(s, "users") }, "spec.login.usersSecretRef", func(t *testing.T, p *Policy) {
			if _, ok := p.Login.Users.Lookup("alice"); ok {
				t.Error("alice still signs in with the users of a deleted Secret")
			}
			if p.Login.OIDC == nil {
				t.Error("sign-in at the provider stopped although its client secret is held")
			}
		}},
		{"users Secret changed", func(s map[string]*corev1.Secret) {
			s["users"] = secret("shop", "users", map[string][]byte{"users": []byte("alice:not-a-hash\n")})
		}, "spec.login.usersSecretRef", func(t *testing.T, p *Policy) {
			if _, ok := p.Login.Users.Lookup("alice"); ok {
				t.Error("alice still signs in with her old password after the users Secret changed")
			}
		}},
		{"client secret deleted", func(s map[string]*corev1.Secret) { delete(s, "shop-oidc") }, "spec.login.oidc.clientSecretRef", func(t *testing.T, p *Policy) {
			if p.Login.OIDC != nil {
				t.Error("sign-in at the provider goes on with the client secret of a deleted Secret")
			}
			if _, ok := p.Login.Users.Lookup("alice"); !ok {
				t.Error("password sign-in stopped although the users Secret is held")
			}
		}},
		{"signing key deleted", func(s map[string]*corev1.Secret) { delete(s, "sign") }, "spec.login.signingKeySecretRef", func(t *testing.T, p *Policy) {
			if p.Login != nil || p.own.Len() != 0 {
				t.Error("sign-in, or the tokens it signed, outlive the signing key's Secret")
			}
		}},
		{"API keys deleted", func(s map[string]*corev1.Secret) { delete(s, "api") }, "spec.apiKeys.secretRef", func(t *testing.T, p *Policy) {
			if p.apiKeys != nil {
				t.Error("the API keys of a deleted Secret still work")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ap, secrets := base(t)
			good := mustCompile(t, ap, secrets)
			store := NewStore()
			store.Sync([]Version{{Key: good.Key, Policy: good, Secrets: secrets}})

			now := maps.Clone(secrets)
			tc.change(now)
			out := store.Sync([]Version{{Key: good.Key, Err: errors.New("the newest version does not compile"), Secrets: now}})[0]
			if !out.LastGood || !strings.Contains(strings.Join(out.Dropped, "; "), tc.dropped) {
				t.Fatalf("outcome %+v: want the last good version without %s", out, tc.dropped)
			}
			p := store.Load().Policy("shop", "shop")
			if p == nil {
				t.Fatal("nothing serves")
			}
			if p.Login == nil && tc.dropped != "spec.login.signingKeySecretRef" {
				t.Fatal("sign-in stopped altogether, though its signing key is held")
			}
			tc.check(t, p)
			if good.Login.Users == nil || good.Login.OIDC == nil {
				t.Error("narrowing changed the last good version itself")
			}
		})
	}
}
