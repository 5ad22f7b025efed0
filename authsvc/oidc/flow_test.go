package oidc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func jwsB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func TestFlowSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	otherKey := bytes.Repeat([]byte{8}, 32)
	now := time.Unix(1_800_000_000, 0)
	f, err := NewFlow("https://shop.example/cart", "https://shop.example/jwtgate/oidc/callback", now)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Seal(key, "shop/shop", f)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, f.State) || strings.Contains(sealed, f.Verifier) {
		t.Fatal("the sealed cookie shows the state or verifier")
	}
	got, err := Open(key, "shop/shop", sealed, now.Add(time.Minute))
	if err != nil || got != f {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, f)
	}
	flip := []byte(sealed)
	flip[len(flip)/2] ^= 1
	for name, tc := range map[string]struct {
		key    []byte
		policy string
		value  string
		at     time.Time
	}{
		"another policy": {key, "shop/other", sealed, now},
		"another key":    {otherKey, "shop/shop", sealed, now},
		"expired":        {key, "shop/shop", sealed, now.Add(FlowTTL + time.Second)},
		"changed":        {key, "shop/shop", string(flip), now},
		"empty":          {key, "shop/shop", "", now},
		"not base64":     {key, "shop/shop", "%%%", now},
		"short":          {key, "shop/shop", "AAAA", now},
		"very long":      {key, "shop/shop", strings.Repeat("A", 5000), now},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Open(tc.key, tc.policy, tc.value, tc.at); !errors.Is(err, ErrFlow) {
				t.Fatalf("err = %v, want ErrFlow", err)
			}
		})
	}
	if CookieName(f.State) == CookieName("other") || !strings.HasPrefix(CookieName(f.State), FlowCookiePrefix) {
		t.Fatal("cookie names do not tell flows apart")
	}
}

func TestAuthURLAndClientAuth(t *testing.T) {
	d := &Discovery{Issuer: "https://idp", AuthorizationEndpoint: "https://idp/auth", TokenEndpoint: "https://idp/token", JWKSURI: "https://idp/jwks"}
	f, _ := NewFlow("/", "https://shop.example/jwtgate/oidc/callback", time.Now())
	u, err := url.Parse(Client{ID: "shop", Scopes: []string{"openid", "email"}}.AuthURL(d, f))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": "shop", "state": f.State, "nonce": f.Nonce,
		"code_challenge_method": "S256", "scope": "openid email", "redirect_uri": f.RedirectURI,
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	if q.Get("code_challenge") == "" || q.Get("code_challenge") == f.Verifier {
		t.Error("the code challenge is missing or is the verifier itself")
	}
	for _, tc := range []struct {
		name    string
		secret  string
		methods []string
		inBody  bool
	}{
		{"basic by default", "s", nil, false},
		{"basic when offered", "s", []string{"client_secret_post", "client_secret_basic"}, false},
		{"post when it is all", "s", []string{"client_secret_post"}, true},
		{"public client", "", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := *d
			d.TokenAuthMethods = tc.methods
			got := Client{ID: "shop", Secret: tc.secret}.config(&d, "").Endpoint.AuthStyle
			if inBody := got == oauth2.AuthStyleInParams; inBody != tc.inBody {
				t.Fatalf("auth style %v, want in body = %v", got, tc.inBody)
			}
		})
	}
}
