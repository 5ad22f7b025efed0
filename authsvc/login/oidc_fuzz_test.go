package login

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/oidc"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

// fuzzProvider is an OpenID provider on loopback for the callback's fuzz
// target: discovery, a JWKS, and a token endpoint that answers the code
// "good-code" with a valid ID token for flow (its nonce), when the PKCE
// verifier is flow's, and refuses anything else (invalid_grant).
type fuzzProvider struct {
	srv       *httptest.Server
	flow      oidc.Flow
	exchanges atomic.Int64
}

func newFuzzProvider(f *testing.F, clientID string) *fuzzProvider {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	priv, err := jwk.Import(raw)
	if err != nil {
		f.Fatal(err)
	}
	if err := priv.Set(jwk.KeyIDKey, "k1"); err != nil {
		f.Fatal(err)
	}
	pub, _ := priv.PublicKey()
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		f.Fatal(err)
	}
	p := &fuzzProvider{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(oidc.Discovery{Issuer: p.srv.URL, AuthorizationEndpoint: p.srv.URL + "/auth",
			TokenEndpoint: p.srv.URL + "/token", JWKSURI: p.srv.URL + "/jwks", CodeChallengeMethods: []string{"S256"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(set) })
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		p.exchanges.Add(1)
		_ = r.ParseForm() // a bad form has no code: invalid_grant below
		if r.PostForm.Get("code") != "good-code" || r.PostForm.Get("code_verifier") != p.flow.Verifier {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{"iss": p.srv.URL, "aud": clientID, "sub": "u-fuzz", "nonce": p.flow.Nonce,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})
		tok, err := jws.Sign(claims, jws.WithKey(jwa.ES256(), priv))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": string(tok)})
	})
	p.srv = httptest.NewServer(mux)
	f.Cleanup(p.srv.Close)
	return p
}

// FuzzOIDCCallback sends /jwtgate/oidc/callback any query, with this
// browser's real flow cookie or with any cookie value. Whatever comes, the
// handler answers without a panic or a 500; the code is exchanged only when
// the query's one state is the flow's (and the cookie is the real one); a
// session starts (303 with jwtgate_access) only for that state, no error and
// one code that the provider accepts; every other answer is 400, 403, 502 or
// 503 and sets no token; and the page never repeats markup from the query.
func FuzzOIDCCallback(f *testing.F) {
	const clientID = "shop"
	idp := newFuzzProvider(f, clientID)
	signing, err := keys.Generate("ES256")
	if err != nil {
		f.Fatal(err)
	}
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
		Spec: v1alpha1.AuthPolicySpec{Hosts: []string{"127.0.0.1"}, Login: &v1alpha1.LoginSpec{
			SigningKeySecretRef: v1alpha1.SecretRef{Name: "signing"},
			Cookie:              &v1alpha1.CookieSpec{Secure: new(false)},
			OIDC:                &v1alpha1.OIDCSpec{IssuerURL: idp.srv.URL, ClientID: clientID},
		}},
	}
	p, err := policy.Compile(policy.Input{Policy: ap, Secrets: map[string]*corev1.Secret{"signing": {Data: map[string][]byte{"private.pem": signing}}}})
	if err != nil {
		f.Fatal(err)
	}
	store := policy.NewStore()
	store.Replace([]*policy.Policy{p})
	discard := slog.New(slog.DiscardHandler)
	providers := oidc.NewProviders(f.Context(), oidc.Options{Logger: discard,
		Remotes: keys.NewRemotes(f.Context(), keys.RemoteOptions{Logger: discard})})
	prov := providers.Get(idp.srv.URL)
	deadline := time.Now().Add(testproc.StartupTimeout)
	for !prov.Loaded() {
		if time.Now().After(deadline) {
			f.Fatalf("the fuzz provider did not load: %v", prov.Failure())
		}
		time.Sleep(20 * time.Millisecond)
	}
	idp.flow, err = oidc.NewFlow("/", "http://127.0.0.1"+OIDCCallbackPath, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := oidc.Seal(p.Login.OIDC.FlowKey, p.Key, idp.flow)
	if err != nil {
		f.Fatal(err)
	}
	state := url.QueryEscape(idp.flow.State)

	for _, seed := range []struct {
		query      string
		realCookie bool
		cookie     string
	}{
		{"code=good-code&state=" + state, true, ""},
		{"code=bad-code&state=" + state, true, ""},
		{"code=good-code&state=" + state, false, sealed[:len(sealed)-2] + "AA"},
		{"error=access_denied&state=" + state, true, ""},
		{"error=%3Cscript%3Ealert(1)%3C/script%3E&error_description=%3Cb%3Ex&state=" + state, true, ""},
		{"code=good-code&code=other&state=" + state, true, ""},
		{"code=good-code&state=" + state + "&state=" + state, true, ""},
		{"code=good-code&state=other", true, ""},
		{"code=good-code", true, ""},
		{"code=good-code&state=" + state + ";x=1", true, ""},
		{"%zz&state=" + state, true, ""},
		{"", false, ""},
		{"state=" + strings.Repeat("a", 600), false, "x"},
	} {
		f.Add(seed.query, seed.realCookie, seed.cookie)
	}

	f.Fuzz(func(t *testing.T, rawQuery string, realCookie bool, cookie string) {
		// A store per input: a state is used once, and every input starts a
		// fresh browser.
		h := New(Options{Store: store, Sessions: session.NewMemory(), Providers: providers, Log: discard})
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+OIDCCallbackPath, nil)
		req.URL.RawQuery = rawQuery
		req.RequestURI = ""
		value := cookie
		if realCookie {
			value = sealed
		}
		if c := (&http.Cookie{Name: oidc.CookieName(idp.flow.State), Value: value}); value != "" && c.Valid() == nil {
			req.AddCookie(c)
		} else {
			value = ""
		}
		cookieSent := value == sealed
		before := idp.exchanges.Load()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		exchanged := idp.exchanges.Load() != before

		q, perr := url.ParseQuery(rawQuery)
		ownState := perr == nil && len(rawQuery) <= maxCallbackQuery && len(q["state"]) == 1 && q.Get("state") == idp.flow.State && cookieSent
		if exchanged && !ownState {
			t.Fatalf("query %q (real cookie %v): the code was exchanged without this browser's state", rawQuery, realCookie)
		}
		access := false
		for _, c := range rec.Result().Cookies() {
			if (c.Name == policy.AccessCookie || c.Name == policy.RefreshCookie) && c.MaxAge >= 0 && c.Value != "" {
				access = true
			}
		}
		success := ownState && q.Get("error") == "" && len(q["code"]) == 1 && q.Get("code") == "good-code"
		switch {
		case success:
			if rec.Code != http.StatusSeeOther || !access {
				t.Fatalf("query %q: a good callback got %d (tokens %v)\n%s", rawQuery, rec.Code, access, rec.Body)
			}
		case access:
			t.Fatalf("query %q (real cookie %v): tokens issued with %d", rawQuery, realCookie, rec.Code)
		default:
			switch rec.Code {
			case http.StatusBadRequest, http.StatusForbidden, http.StatusBadGateway, http.StatusServiceUnavailable:
			default:
				t.Fatalf("query %q (real cookie %v): status %d, want 400, 403, 502 or 503\n%s", rawQuery, realCookie, rec.Code, rec.Body)
			}
		}
		body := rec.Body.String()
		if perr == nil {
			for _, vs := range q {
				for _, v := range vs {
					if strings.ContainsAny(v, "<>") && strings.Contains(body, v) {
						t.Fatalf("query %q: the page repeats %q", rawQuery, v)
					}
				}
			}
		}
	})
}
