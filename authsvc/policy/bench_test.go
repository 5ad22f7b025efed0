package policy

import (
	"fmt"
	"testing"

	gojwt "github.com/golang-jwt/jwt/v5"
)

// BenchmarkDecision measures one decision per algorithm: "cached" is the steady
// state (a token seen before), "uncached" verifies the signature every time.
// Run with -benchmem: the cached decide step must not allocate.
func BenchmarkDecision(b *testing.B) {
	k := newTestKeys(b)
	algs := []struct {
		name   string
		method gojwt.SigningMethod
		key    any
	}{
		{"HS256", gojwt.SigningMethodHS256, k.hmac},
		{"RS256", gojwt.SigningMethodRS256, k.rsa},
		{"ES256", gojwt.SigningMethodES256, k.ec},
		{"EdDSA", gojwt.SigningMethodEdDSA, k.ed},
	}
	for _, a := range algs {
		token := mint(b, a.method, a.key, claimsValid(nil), nil)
		req := Request{Method: "GET", Path: "/api/x", Header: bearer(token)}
		b.Run(a.name+"/cached", func(b *testing.B) {
			ap, secrets := shopPolicy(k)
			p := mustCompile(b, ap, secrets)
			if d := p.Decide(testNow, req, nil); d.Status != 200 {
				b.Fatalf("status %d %s", d.Status, d.Reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(testNow, req, nil)
			}
		})
		b.Run(a.name+"/uncached", func(b *testing.B) {
			ap, secrets := shopPolicy(k)
			p := mustCompile(b, ap, secrets)
			p.cache = nil
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(testNow, req, nil)
			}
		})
	}
}

// BenchmarkRuleMatch shows that matching cost follows the depth of the path, not
// the number of rules.
func BenchmarkRuleMatch(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			k := newTestKeys(b)
			ap, secrets := shopPolicy(k)
			for i := range n {
				ap.Spec.Rules = append(ap.Spec.Rules, ap.Spec.Rules[1])
				ap.Spec.Rules[len(ap.Spec.Rules)-1].Path = fmt.Sprintf("/r%d/", i)
			}
			p := mustCompile(b, ap, secrets)
			b.ReportAllocs()
			for b.Loop() {
				p.shape.rules.match("/api/orders/7/items", "GET")
			}
		})
	}
}

func TestCachedDecisionDoesNotAllocate(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	req := Request{Method: "GET", Path: "/admin/x", Header: bearer(mint(t, gojwt.SigningMethodRS256, k.rsa,
		claimsValid(gojwt.MapClaims{"realm_access": map[string]any{"roles": []string{"admin"}}}), nil))}
	if d := p.Decide(testNow, req, nil); d.Status != 200 {
		t.Fatalf("status %d %s", d.Status, d.Reason)
	}
	if n := testing.AllocsPerRun(100, func() { p.Decide(testNow, req, nil) }); n != 0 {
		t.Fatalf("a cached decision allocates %v times, want 0", n)
	}
}
