package policy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
)

func TestDecideTokens(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	rsaKid := mustKeys(t, k.rsaPEM)[0].ID

	// A server a "jku" header points at: it must never be asked for anything.
	var jkuHits atomic.Int32
	jku := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { jkuHits.Add(1) }))
	defer jku.Close()
	attackerJWK, err := jwk.Import(&k.other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	attackerJWKJSON, _ := json.Marshal(attackerJWK)
	var attackerJWKMap map[string]any
	_ = json.Unmarshal(attackerJWKJSON, &attackerJWKMap)

	valid := mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), nil)
	parts := strings.Split(valid, ".")
	tamperedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","iss":"https://idp.example.com","aud":"shop","exp":9999999999}`))

	gojwt.RegisterSigningMethod("none", func() gojwt.SigningMethod { return gojwt.SigningMethodNone })
	noneToken := mint(t, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, claimsValid(nil), nil)

	tests := []struct {
		name   string
		token  string
		status int
		reason Reason
	}{
		{"RS256 valid", valid, 200, ReasonAllowed},
		{"ES256 valid", mint(t, gojwt.SigningMethodES256, k.ec, claimsValid(nil), nil), 200, ReasonAllowed},
		{"EdDSA valid", mint(t, gojwt.SigningMethodEdDSA, k.ed, claimsValid(nil), nil), 200, ReasonAllowed},
		{"HS256 valid", mint(t, gojwt.SigningMethodHS256, k.hmac, claimsValid(nil), nil), 200, ReasonAllowed},
		{"RS256 with the right kid", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), map[string]any{"kid": rsaKid}), 200, ReasonAllowed},
		{"aud as a list", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"aud": []string{"other", "shop-api"}}), nil), 200, ReasonAllowed},

		{"no token", "", 401, ReasonMissingToken},
		{"alg none", noneToken, 401, ReasonAlgorithm},
		{"HS256 signed with the RSA public key PEM (algorithm confusion)", mint(t, gojwt.SigningMethodHS256, k.rsaPEM, claimsValid(nil), nil), 401, ReasonBadSignature},
		{"HS256 with the RSA key's kid (algorithm confusion by kid)", mint(t, gojwt.SigningMethodHS256, k.rsaPEM, claimsValid(nil), map[string]any{"kid": rsaKid}), 401, ReasonBadSignature},
		{"algorithm not in the policy", mint(t, gojwt.SigningMethodRS512, k.rsa, claimsValid(nil), nil), 401, ReasonAlgorithm},
		{"stripped signature", parts[0] + "." + parts[1] + ".", 401, ReasonBadSignature},
		{"tampered payload", parts[0] + "." + tamperedPayload + "." + parts[2], 401, ReasonBadSignature},
		// PEM keys name no kid, so any kid may be theirs: the signature decides.
		{"PEM key, any kid", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), map[string]any{"kid": "idp-2026"}), 200, ReasonAllowed},
		{"right kid, wrong key", mint(t, gojwt.SigningMethodRS256, k.other, claimsValid(nil), map[string]any{"kid": rsaKid}), 401, ReasonBadSignature},
		{"unknown key, no kid", mint(t, gojwt.SigningMethodRS256, k.other, claimsValid(nil), nil), 401, ReasonBadSignature},
		{"jku to an attacker's key set", mint(t, gojwt.SigningMethodRS256, k.other, claimsValid(nil), map[string]any{"jku": jku.URL, "kid": "attacker"}), 401, ReasonBadSignature},
		{"x5u to an attacker's certificate", mint(t, gojwt.SigningMethodRS256, k.other, claimsValid(nil), map[string]any{"x5u": jku.URL}), 401, ReasonBadSignature},
		{"embedded jwk of the attacker", mint(t, gojwt.SigningMethodRS256, k.other, claimsValid(nil), map[string]any{"jwk": attackerJWKMap}), 401, ReasonBadSignature},
		{"expired", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"exp": testNow.Add(-time.Minute).Unix()}), nil), 401, ReasonExpired},
		{"expired within leeway", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"exp": testNow.Add(-10 * time.Second).Unix()}), nil), 200, ReasonAllowed},
		{"nbf in the future", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"nbf": testNow.Add(time.Minute).Unix()}), nil), 401, ReasonNotYetValid},
		{"nbf within leeway", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"nbf": testNow.Add(10 * time.Second).Unix()}), nil), 200, ReasonAllowed},
		{"iat in the future", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"iat": testNow.Add(time.Hour).Unix()}), nil), 401, ReasonNotYetValid},
		{"missing exp", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"exp": nil}), nil), 401, ReasonNoExpiry},
		{"exp as a string", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"exp": "9999999999"}), nil), 401, ReasonNoExpiry},
		{"wrong iss", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"iss": "https://evil.example.com"}), nil), 401, ReasonIssuer},
		{"missing iss", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"iss": nil}), nil), 401, ReasonIssuer},
		{"wrong aud", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"aud": "billing"}), nil), 401, ReasonAudience},
		{"missing aud", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"aud": nil}), nil), 401, ReasonAudience},
		{"oversize", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"pad": strings.Repeat("x", MaxTokenSize)}), nil), 401, ReasonTooLarge},
		{"garbage", "not-a-token", 401, ReasonMalformed},
		{"empty segments", "..", 401, ReasonMalformed},
		{"two segments", parts[0] + "." + parts[1], 401, ReasonMalformed},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], 401, ReasonMalformed},
		{"payload is not an object", mint(t, gojwt.SigningMethodHS256, k.hmac, nil, nil)[:0] + signRaw(t, k, `[1,2,3]`), 401, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(testNow, Request{Method: "GET", Path: "/", Header: bearer(tc.token)}, nil)
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("got %d %s (%s), want %d %s", d.Status, d.Reason, d.Description, tc.status, tc.reason)
			}
			if d.Status == 401 && tc.token != "" && !d.TokenSent {
				t.Fatalf("a bad token must be answered as invalid_token")
			}
		})
	}
	if n := jkuHits.Load(); n != 0 {
		t.Fatalf("the jku server received %d requests; it must receive none", n)
	}
}

// signRaw makes an HS256 JWS over an arbitrary payload.
func signRaw(t *testing.T, k *testKeys, payload string) string {
	t.Helper()
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	pl := base64.RawURLEncoding.EncodeToString([]byte(payload))
	sig, err := gojwt.SigningMethodHS256.Sign(h+"."+pl, k.hmac)
	if err != nil {
		t.Fatal(err)
	}
	return h + "." + pl + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func mustKeys(t *testing.T, data []byte) []keys.Key {
	t.Helper()
	ks, err := keys.ParseVerification(data, "")
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// A JWKS names its keys: a kid it does not hold finds no key at all.
func TestDecideJWKSKid(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	jwks := fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":%q,"e":"AQAB"}]}`,
		base64.RawURLEncoding.EncodeToString(k.rsa.N.Bytes()))
	secrets["shop-keys"] = secret("shop", "shop-keys", map[string][]byte{"rsa.pem": []byte(jwks), "ec.pem": k.ecPEM, "ed.pem": k.edPEM})
	p := mustCompile(t, ap, secrets)
	tests := []struct {
		name   string
		token  string
		status int
		reason Reason
	}{
		{"right kid", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), map[string]any{"kid": "k1"}), 200, ReasonAllowed},
		{"no kid", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), nil), 200, ReasonAllowed},
		{"unknown kid", mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), map[string]any{"kid": "nope"}), 401, ReasonUnknownKey},
		{"right kid, wrong key", mint(t, gojwt.SigningMethodRS256, k.other, claimsValid(nil), map[string]any{"kid": "k1"}), 401, ReasonBadSignature},
		{"kid of an RSA key with HS256", mint(t, gojwt.SigningMethodHS256, []byte(jwks), claimsValid(nil), map[string]any{"kid": "k1"}), 401, ReasonBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(testNow, Request{Method: "GET", Path: "/", Header: bearer(tc.token)}, nil)
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("got %d %s, want %d %s", d.Status, d.Reason, tc.status, tc.reason)
			}
		})
	}
}

func TestDecideRules(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	tok := func(extra gojwt.MapClaims) string {
		return mint(t, gojwt.SigningMethodES256, k.ec, claimsValid(extra), nil)
	}
	admin := tok(gojwt.MapClaims{"realm_access": map[string]any{"roles": []string{"user", "admin"}}})
	user := tok(gojwt.MapClaims{"realm_access": map[string]any{"roles": "user viewer"}})
	reader := tok(gojwt.MapClaims{"scope": "profile orders:read"})
	readerArr := tok(gojwt.MapClaims{"scope": []string{"orders:read"}})
	exporter := tok(gojwt.MapClaims{"realm_access": map[string]any{"roles": []string{"exporter"}}})
	tenantA := tok(gojwt.MapClaims{"tenant": "a", "email_verified": true})
	tenantC := tok(gojwt.MapClaims{"tenant": "c", "email_verified": true})
	unverified := tok(gojwt.MapClaims{"tenant": "a", "email_verified": false})
	debug := tok(gojwt.MapClaims{"debug": 1})

	tests := []struct {
		name, method, path, token string
		status                    int
		reason                    Reason
	}{
		{"public without token", "GET", "/public/index.html", "", 200, ReasonPublic},
		{"public folder itself", "GET", "/public", "", 200, ReasonPublic},
		{"public prefix is by segment", "GET", "/publicity", "", 401, ReasonMissingToken},
		{"admin with role", "GET", "/admin/users", admin, 200, ReasonAllowed},
		{"admin without role", "GET", "/admin/users", user, 403, ReasonRole},
		{"admin without token", "GET", "/admin/", "", 401, ReasonMissingToken},
		{"admin rule does not cover DELETE: falls through to no rule", "DELETE", "/admin/users", user, 200, ReasonAllowed},
		{"space-separated roles string", "GET", "/admin/x", tok(gojwt.MapClaims{"realm_access": map[string]any{"roles": "admin"}}), 200, ReasonAllowed},
		{"claim contains (space-separated)", "GET", "/api/orders/7", reader, 200, ReasonAllowed},
		{"claim contains (array)", "GET", "/api/orders", readerArr, 200, ReasonAllowed},
		{"claim contains fails", "GET", "/api/orders/", user, 403, ReasonClaim},
		{"prefix is by segment: ordersX is not orders", "GET", "/api/ordersX", user, 200, ReasonAllowed},
		{"exact beats prefix", "GET", "/api/orders/export", reader, 403, ReasonRole},
		{"exact with its role", "GET", "/api/orders/export", exporter, 200, ReasonAllowed},
		{"exact is exact: child path uses the prefix rule", "GET", "/api/orders/export/1", reader, 200, ReasonAllowed},
		{"in + equals hold", "GET", "/tenant/x", tenantA, 200, ReasonAllowed},
		{"in fails", "GET", "/tenant/x", tenantC, 403, ReasonClaim},
		{"equals fails on a boolean", "GET", "/tenant/x", unverified, 403, ReasonClaim},
		{"exists: false holds when absent", "GET", "/nodebug", user, 200, ReasonAllowed},
		{"exists: false fails when present", "GET", "/nodebug", debug, 403, ReasonClaim},
		{"no rule: any valid token", "GET", "/anything", user, 200, ReasonAllowed},
		{"no rule: no token", "GET", "/anything", "", 401, ReasonMissingToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(testNow, Request{Method: tc.method, Path: tc.path, Header: bearer(tc.token)}, nil)
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("%s %s: got %d %s (rule %d), want %d %s", tc.method, tc.path, d.Status, d.Reason, d.Rule, tc.status, tc.reason)
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	token := mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{
		"sub":          "alice",
		"realm_access": map[string]any{"roles": []string{"user", "admin"}},
		"name":         "Alice\r\nX-Injected: yes",
	}), nil)
	d := p.Decide(testNow, Request{Method: "GET", Path: "/", Header: bearer(token)}, nil)
	if d.Status != 200 {
		t.Fatalf("status %d %s", d.Status, d.Reason)
	}
	got := map[string]string{}
	for _, h := range d.Identity.Headers {
		got[h.Name] = h.Values[0]
	}
	want := map[string]string{"X-Auth-User": "alice", "X-Auth-Roles": "user,admin", "X-Auth-Name": "AliceX-Injected: yes"}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %q, want %q", name, got[name], v)
		}
	}
}

func TestTokenSources(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	good := mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), nil)
	tests := []struct {
		name   string
		header http.Header
		status int
	}{
		{"bearer", http.Header{"Authorization": {"Bearer " + good}}, 200},
		{"bearer scheme is case-insensitive", http.Header{"Authorization": {"bearer " + good}}, 200},
		{"basic auth is no token", http.Header{"Authorization": {"Basic " + good}}, 401},
		{"cookie", http.Header{"Cookie": {"other=1; jwtgate_access=" + good}}, 200},
		{"cookie beside a malformed cookie", http.Header{"Cookie": {"bad cookie=\x01; jwtgate_access=" + good}}, 200},
		{"header wins over cookie", http.Header{"Authorization": {"Bearer garbage"}, "Cookie": {"jwtgate_access=" + good}}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(testNow, Request{Method: "GET", Path: "/", Header: tc.header}, nil)
			if d.Status != tc.status {
				t.Fatalf("got %d %s, want %d", d.Status, d.Reason, tc.status)
			}
		})
	}
}

func TestCacheNeverOutlivesExp(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	token := mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(gojwt.MapClaims{"exp": testNow.Add(time.Minute).Unix()}), nil)
	req := Request{Method: "GET", Path: "/", Header: bearer(token)}
	if d := p.Decide(testNow, req, nil); d.Status != 200 {
		t.Fatalf("first: %d %s", d.Status, d.Reason)
	}
	if p.cache.Len() != 1 {
		t.Fatalf("cache holds %d tokens, want 1", p.cache.Len())
	}
	later := testNow.Add(time.Minute + p.leeway)
	if d := p.Decide(later, req, nil); d.Status != 401 || d.Reason != ReasonExpired {
		t.Fatalf("after exp+leeway: got %d %s, want 401 expired", d.Status, d.Reason)
	}
}

func TestRecompileDropsCachedTokens(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	cache := NewTokenCache(1024)
	p1, err := Compile(Input{Policy: ap, Secrets: secrets, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	token := mint(t, gojwt.SigningMethodRS256, k.rsa, claimsValid(nil), nil)
	req := Request{Method: "GET", Path: "/", Header: bearer(token)}
	if d := p1.Decide(testNow, req, nil); d.Status != 200 {
		t.Fatalf("before rotation: %d", d.Status)
	}
	// Rotate: the RSA key is replaced by another one.
	secrets["shop-keys"] = secret("shop", "shop-keys", map[string][]byte{"rsa.pem": pemPublic(t, &k.other.PublicKey), "ec.pem": k.ecPEM, "ed.pem": k.edPEM})
	p2, err := Compile(Input{Policy: ap, Secrets: secrets, Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if d := p2.Decide(testNow, req, nil); d.Status != 401 {
		t.Fatalf("after rotation the old key's token must be refused, got %d", d.Status)
	}
}

func TestAPIKeys(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	key, sum, err := keys.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	ap.Spec.APIKeys = &v1alpha1APIKeys
	secrets["shop-apikeys"] = secret("shop", "shop-apikeys", map[string][]byte{"keys": []byte("# machines\nbuilder:sha256:" + sum + ":admin,ci\n")})
	p := mustCompile(t, ap, secrets)
	tests := []struct {
		name   string
		path   string
		key    string
		status int
		reason Reason
	}{
		{"valid key, role rule", "/admin/x", key, 200, ReasonAPIKey},
		{"valid key, claim rule fails", "/api/orders", key, 403, ReasonClaim},
		{"wrong key", "/admin/x", key + "x", 401, ReasonBadAPIKey},
		{"no key", "/admin/x", "", 401, ReasonMissingToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.key != "" {
				h.Set("X-API-Key", tc.key)
			}
			d := p.Decide(testNow, Request{Method: "GET", Path: tc.path, Header: h}, nil)
			if d.Status != tc.status || d.Reason != tc.reason {
				t.Fatalf("got %d %s, want %d %s", d.Status, d.Reason, tc.status, tc.reason)
			}
			if d.Status == 200 && d.Identity.Headers[0].Values[0] != "builder" {
				t.Fatalf("X-Auth-User = %q, want the key's name", d.Identity.Headers[0].Values[0])
			}
		})
	}
}

// Issue 12 item 3: a method in another case, or an override header that
// frameworks honor, must not slip past a rule that names methods. The
// decision holds for the override method too; the stricter answer wins.
func TestDecideMethodTricks(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	ap.Spec.Rules = append(ap.Spec.Rules, v1alpha1.Rule{Path: "/open/", Methods: []string{"GET"}, Public: true})
	p := mustCompile(t, ap, secrets)
	tok := func(roles ...string) string {
		return mint(t, gojwt.SigningMethodES256, k.ec, claimsValid(gojwt.MapClaims{"realm_access": map[string]any{"roles": roles}}), nil)
	}
	admin, user := tok("admin"), tok("user")
	with := func(token string, kv ...string) http.Header {
		h := bearer(token)
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name, method, path string
		header             http.Header
		status             int
	}{
		{"lower-case get is GET", "get", "/admin/users", with(user), 403},
		{"mixed-case Post is POST", "Post", "/admin/users", with(user), 403},
		{"lower-case get for admin", "get", "/admin/users", with(admin), 200},
		{"GET overridden to DELETE: the GET rule still holds", "GET", "/admin/users/1", with(user, "X-HTTP-Method-Override", "DELETE"), 403},
		{"DELETE overridden to GET: the GET rule holds too", "DELETE", "/admin/users/1", with(user, "X-HTTP-Method-Override", "GET"), 403},
		{"PUT with X-HTTP-Method: get", "PUT", "/admin/users", with(user, "X-HTTP-Method", "get"), 403},
		{"X-Method-Override", "PUT", "/admin/users", with(user, "X-Method-Override", "POST"), 403},
		{"override list", "PUT", "/admin/users", with(user, "X-HTTP-Method-Override", "PATCH, POST"), 403},
		{"override to a public GET needs what the real method needs", "POST", "/open/x", with("", "X-HTTP-Method-Override", "GET"), 401},
		{"real public GET with a POST override needs a token", "GET", "/open/x", with("", "X-HTTP-Method-Override", "POST"), 401},
		{"admin passes with an override", "DELETE", "/admin/users/1", with(admin, "X-HTTP-Method-Override", "GET"), 200},
		{"no override: public GET", "GET", "/open/x", with(""), 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(testNow, Request{Method: tc.method, Path: tc.path, Header: tc.header}, nil)
			if d.Status != tc.status {
				t.Fatalf("%s %s %v: got %d %s (rule %d), want %d", tc.method, tc.path, tc.header, d.Status, d.Reason, d.Rule, tc.status)
			}
		})
	}
}
