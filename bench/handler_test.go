package bench

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/door"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/server"
	"github.com/jwtgate/jwtgate/bench/floor"
)

// benchPolicy is the policy run.sh serves: RS256, issuer and audience, three
// rules, one forwarded claim.
func benchPolicy(name string, pub []byte, cache *policy.TokenCache) (*policy.Policy, error) {
	ap := &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts: []string{name + ".bench.test"},
			JWT: &v1alpha1.JWTSpec{
				Algorithms: []v1alpha1.Algorithm{"RS256"},
				Keys:       []v1alpha1.KeySource{{SecretRef: &v1alpha1.SecretKeyRef{Name: "bench-keys", Key: "rs256.pem"}}},
				Issuer:     "bench-issuer",
				Audiences:  []string{"bench"},
			},
			RolesClaim: "roles",
			Rules: []v1alpha1.Rule{
				{Path: "/public/", Public: true},
				{Path: "/admin/", Roles: []string{"admin"}},
				{Path: "/api/orders", Methods: []string{"POST"}, Claims: []v1alpha1.ClaimRequirement{{Name: "scope", Contains: ptr("orders:write")}}},
			},
			ForwardClaims: []v1alpha1.ForwardClaim{{Claim: "sub", Header: "X-Auth-User"}},
		},
	}
	secrets := map[string]*corev1.Secret{"bench-keys": {ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "bench-keys"}, Data: map[string][]byte{"rs256.pem": pub}}}
	return policy.Compile(policy.Input{Policy: ap, Secrets: secrets, Cache: cache})
}

func ptr[T any](v T) *T { return &v }

type keyPair struct {
	priv *rsa.PrivateKey
	pub  []byte
}

func newKey(tb testing.TB) keyPair {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return keyPair{k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

func (k keyPair) token(tb testing.TB, jti string) string {
	s, err := gojwt.NewWithClaims(gojwt.SigningMethodRS256, gojwt.MapClaims{
		"sub": "alice", "iss": "bench-issuer", "aud": "bench", "roles": []string{"user"}, "jti": jti,
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	}).SignedString(k.priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// discard is the cheapest ResponseWriter: the handler's own work is measured,
// not httptest's.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(s int)           { d.status = s }

// BenchmarkAuthHandler is one /jwtgate/auth request through the mux, as
// net/http hands it over: X-Original-URL parsing, policy lookup, the decision,
// the answer's headers and the metrics. "cached" is a token seen before;
// "uncached" verifies the RS256 signature every time (no cache); "unique" is
// scenario c of run.sh: each request carries the next of 256 tokens against a
// cache of 64, so every request verifies and also inserts and evicts. "floor"
// is that scenario's baseline, bench/cmd/floorverify's handler (bare
// crypto/rsa, exp only) on the same request: ns/op of floor over ns/op of
// uncached is issue 17's target (≥ 0.80). "ratio" runs the two in turn and
// reports that ratio of their medians directly, robust to a busy machine:
//
//	go test -run '^$' -bench 'BenchmarkAuthHandler/RS256/(uncached|floor|ratio)' -benchmem ./bench/
func BenchmarkAuthHandler(b *testing.B) {
	k := newKey(b)
	token := k.token(b, "1")
	b.Run("RS256/cached", func(b *testing.B) {
		benchHandler(b, authMux(b, k, policy.NewTokenCache(65536)), []string{token})
	})
	b.Run("RS256/uncached", func(b *testing.B) {
		benchHandler(b, authMux(b, k, nil), []string{token})
	})
	b.Run("RS256/unique", func(b *testing.B) {
		tokens := make([]string, 256)
		for i := range tokens {
			tokens[i] = k.token(b, fmt.Sprint(i))
		}
		benchHandler(b, authMux(b, k, policy.NewTokenCache(64)), tokens)
	})
	b.Run("RS256/floor", func(b *testing.B) {
		benchHandler(b, floor.Handler(&k.priv.PublicKey), []string{token})
	})
	b.Run("RS256/ratio", func(b *testing.B) {
		benchRatio(b, floor.Handler(&k.priv.PublicKey), authMux(b, k, nil), token)
	})
}

// benchRatio serves the same request with the floor and with jwtgate (no
// cache) in turn, each iteration one of each, and reports the median time of
// each and floor/jwtgate, the ratio of issue 17's target: taken side by side
// and as medians, so that the load of a shared machine (other processes,
// preemption) falls on both alike and outliers do not count.
func benchRatio(b *testing.B, floorH, authH http.Handler, token string) {
	req, _ := http.NewRequest("GET", "http://127.0.0.1:8000/jwtgate/auth/bench/rs256", nil)
	req.Header.Set("X-Original-URL", "http://app.bench.test/api/orders/7")
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("Authorization", "Bearer "+token)
	w := &discard{h: http.Header{}}
	var floorT, authT []time.Duration
	for b.Loop() {
		clear(w.h)
		t0 := time.Now()
		floorH.ServeHTTP(w, req)
		t1 := time.Now()
		clear(w.h)
		authH.ServeHTTP(w, req)
		floorT, authT = append(floorT, t1.Sub(t0)), append(authT, time.Since(t1))
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2])
	}
	f, a := median(floorT), median(authT)
	b.ReportMetric(f, "floor-ns")
	b.ReportMetric(a, "jwtgate-ns")
	b.ReportMetric(f/a, "floor/jwtgate")
}

// authMux is jwtgate's decision mux serving run.sh's bench/rs256 policy.
func authMux(b *testing.B, k keyPair, cache *policy.TokenCache) http.Handler {
	p, err := benchPolicy("rs256", k.pub, cache)
	if err != nil {
		b.Fatal(err)
	}
	store := policy.NewStore()
	store.Replace([]*policy.Policy{p})
	return server.NewMux(server.Options{Store: store, Metrics: door.NewMetrics(prometheus.NewRegistry())})
}

// benchHandler sends run.sh's auth request to h, with the next of tokens each
// time; every answer must be 200.
func benchHandler(b *testing.B, h http.Handler, tokens []string) {
	req, _ := http.NewRequest("GET", "http://127.0.0.1:8000/jwtgate/auth/bench/rs256", nil)
	req.Header.Set("X-Original-URL", "http://app.bench.test/api/orders/7")
	req.Header.Set("X-Original-Method", "GET")
	auth := make([][]string, len(tokens))
	for i, t := range tokens {
		auth[i] = []string{"Bearer " + t}
	}
	req.Header["Authorization"] = auth[0]
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req.Header["Authorization"] = auth[i%len(auth)]
		i++
		clear(w.h)
		h.ServeHTTP(w, req)
	}
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
}

// BenchmarkPolicyMemory compiles n policies like run.sh's and reports the live
// heap they hold (-memprofile shows by whom).
func BenchmarkPolicyMemory(b *testing.B) {
	k := newKey(b)
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			var perPolicy float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				cache := policy.NewTokenCache(65536)
				ps := make([]*policy.Policy, n)
				for i := range ps {
					p, err := benchPolicy(fmt.Sprintf("p%d", i), k.pub, cache)
					if err != nil {
						b.Fatal(err)
					}
					ps[i] = p
				}
				store := policy.NewStore()
				store.Replace(ps)
				runtime.GC()
				runtime.ReadMemStats(&after)
				perPolicy = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				runtime.KeepAlive(store)
			}
			b.ReportMetric(perPolicy, "heapB/policy")
		})
	}
}

// BenchmarkAuthHandlerPolicies is scenario d of run.sh in-process: the cached
// RS256 decision, each request to the next of n policies. The cost should not
// grow with n.
func BenchmarkAuthHandlerPolicies(b *testing.B) {
	k := newKey(b)
	token := k.token(b, "1")
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("policies=%d", n), func(b *testing.B) {
			cache := policy.NewTokenCache(65536)
			ps := make([]*policy.Policy, n)
			paths := make([]string, n)
			for i := range ps {
				p, err := benchPolicy(fmt.Sprintf("p%d", i), k.pub, cache)
				if err != nil {
					b.Fatal(err)
				}
				ps[i], paths[i] = p, fmt.Sprintf("/jwtgate/auth/bench/p%d", i)
			}
			store := policy.NewStore()
			store.Replace(ps)
			h := server.NewMux(server.Options{Store: store, Metrics: door.NewMetrics(prometheus.NewRegistry())})
			req, _ := http.NewRequest("GET", "http://127.0.0.1:8000/", nil)
			req.Header.Set("X-Original-URL", "http://app.bench.test/api/orders/7")
			req.Header.Set("X-Original-Method", "GET")
			req.Header.Set("Authorization", "Bearer "+token)
			w := &discard{h: http.Header{}}
			for _, p := range paths { // warm the cache: one verification per policy
				req.URL.Path = p
				h.ServeHTTP(w, req)
				if w.status != 200 {
					b.Fatalf("%s: status %d", p, w.status)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req.URL.Path = paths[i%n]
				i++
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}
