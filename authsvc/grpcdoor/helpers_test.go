package grpcdoor

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	gojwt "github.com/golang-jwt/jwt/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Tokens are minted with golang-jwt, another library than the one that
// verifies them (jwx).
var (
	keyOnce sync.Once
	tokKey  *ecdsa.PrivateKey
	tokPEM  []byte
	signPEM []byte
)

func testKeys(t testing.TB) {
	keyOnce.Do(func() {
		var err error
		if tokKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&tokKey.PublicKey)
		tokPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if signPEM, err = keys.Generate("ES256"); err != nil {
			panic(err)
		}
	})
}

func secret(ns, name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

// newStore compiles the test policies:
//   - shop/web on shop.example.com, which signs people in: /public is
//     public, /admin needs the role admin; forwards sub, roles and email;
//   - api/api on api.example.com, without sign-in.
func newStore(t testing.TB) *policy.Store {
	t.Helper()
	testKeys(t)
	jwt := &v1alpha1.JWTSpec{
		Algorithms: []v1alpha1.Algorithm{"ES256"},
		Keys:       []v1alpha1.KeySource{{SecretRef: &v1alpha1.SecretKeyRef{Name: "keys", Key: "pub.pem"}}},
	}
	forward := []v1alpha1.ForwardClaim{
		{Claim: "sub", Header: "X-Auth-User"},
		{Claim: "roles", Header: "X-Auth-Roles"},
		{Claim: "email", Header: "X-Auth-Email"},
	}
	rules := []v1alpha1.Rule{
		{Path: "/public", Public: true},
		{Path: "/admin", Roles: []string{"admin"}},
	}
	shop := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts:         []string{"shop.example.com"},
			JWT:           jwt,
			Rules:         rules,
			ForwardClaims: forward,
			Login: &v1alpha1.LoginSpec{
				UsersSecretRef:      &v1alpha1.SecretKeyRef{Name: "users", Key: "users"},
				SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"},
			},
		},
	}
	shopSecrets := map[string]*corev1.Secret{
		"keys":  secret("shop", "keys", map[string][]byte{"pub.pem": tokPEM}),
		"sign":  secret("shop", "sign", map[string][]byte{"private.pem": signPEM}),
		"users": secret("shop", "users", map[string][]byte{"users": nil}),
	}
	api := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "api", Name: "api"},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts:         []string{"api.example.com"},
			JWT:           jwt,
			Rules:         rules,
			ForwardClaims: forward,
		},
	}
	apiSecrets := map[string]*corev1.Secret{"keys": secret("api", "keys", map[string][]byte{"pub.pem": tokPEM})}
	var ps []*policy.Policy
	for _, in := range []policy.Input{{Policy: shop, Secrets: shopSecrets}, {Policy: api, Secrets: apiSecrets}} {
		in.Cache = policy.NewTokenCache(128)
		p, err := policy.Compile(in)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	store := policy.NewStore()
	store.Replace(ps)
	return store
}

// token mints an ES256 token the test policies accept; exp defaults to a
// minute from now.
func token(t testing.TB, claims gojwt.MapClaims) string {
	t.Helper()
	testKeys(t)
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Minute).Unix()
	}
	s, err := gojwt.NewWithClaims(gojwt.SigningMethodES256, claims).SignedString(tokKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkRequest is what Envoy's gRPC ext_authz filter sends for a request:
// the method, authority, path (query included, as sent), scheme and every
// header, lower-case, with the pseudo-headers too.
func checkRequest(method, host, path string, headers, extensions map[string]string) *authv3.CheckRequest {
	h := map[string]string{":method": method, ":authority": host, ":path": path, ":scheme": "https"}
	for k, v := range headers {
		h[k] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "203.0.113.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 41000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "req-1", Method: method, Host: host, Path: path, Scheme: "https", Protocol: "HTTP/2", Headers: h,
		}},
		ContextExtensions: extensions,
	}}
}
