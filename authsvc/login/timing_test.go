package login

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// An unknown user costs a bcrypt comparison like a wrong password does: the two
// medians stay within a factor of 2 of each other (without the dummy
// comparison, an unknown user answers hundreds of times faster).
func TestEnumerationTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("measures bcrypt")
	}
	hs := newHarness(t, harnessConfig{cost: 8, limits: Limits{FreePerAddress: 1 << 20, FreePerUser: 1 << 20, Base: time.Second, Max: time.Second, Window: time.Hour, MaxEntries: 1000}})
	measure := func(user string) time.Duration {
		start := time.Now()
		rec := hs.signInAs("192.0.2.1:1", user, "wrong password")
		d := time.Since(start)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("%s: %d", user, rec.Code)
		}
		return d
	}
	measure("alice") // warm up
	measure("nobody")
	var known, unknown []time.Duration
	for i := 0; i < 21; i++ { // interleaved, so that machine noise hits both alike
		known = append(known, measure("alice"))
		unknown = append(unknown, measure(fmt.Sprintf("nobody-%d", i)))
	}
	slices.Sort(known)
	slices.Sort(unknown)
	mk, mu := known[len(known)/2], unknown[len(unknown)/2]
	t.Logf("median: wrong password %v, unknown user %v", mk, mu)
	if mu*2 < mk || mk*2 < mu {
		t.Fatalf("unknown user %v vs wrong password %v: more than a factor of 2 apart", mu, mk)
	}
}

// BenchmarkSignIn measures one successful password sign-in (bcrypt, session,
// signed ES256 token) per iteration at the costs users are hashed with.
// Sign-ins per second per core = 1 / (ns/op) with -cpu 1.
func BenchmarkSignIn(b *testing.B) {
	for _, cost := range []int{10, 12} {
		b.Run(fmt.Sprintf("cost=%d", cost), func(b *testing.B) {
			hs := newHarness(b, harnessConfig{cost: cost, slots: 1 << 10})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if rec := hs.signInAs("192.0.2.1:1", "alice", alicePW); rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signins/s")
		})
	}
}

// BenchmarkRefresh is the path without bcrypt: rotation and a new token.
func BenchmarkRefresh(b *testing.B) {
	hs := newHarness(b, harnessConfig{})
	rec := hs.signInAs("192.0.2.1:1", "alice", alicePW)
	a := decodeTokens(b, rec.Body.String())
	tok := a.RefreshToken
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptestRefresh(hs, tok)
		if r.Code != 200 {
			b.Fatalf("%d %s", r.Code, r.Body)
		}
		tok = decodeTokens(b, r.Body.String()).RefreshToken
	}
}
