// Package floor is the floor verifier of bench/run.sh's cache-miss scenario
// (c): an RS256 bearer token checked with bare crypto/rsa, its exp read and
// nothing else (no cache, no other claims, no policy). bench/cmd/floorverify
// serves it over HTTP; BenchmarkFloorVerify runs the same handler in process,
// beside BenchmarkAuthHandler, so the ratio of the two shows in one
// `go test -bench` run. It is a yardstick only: jwtgate itself verifies with jwx.
package floor

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Handler answers 200 when the request's bearer token verifies under pub and
// is not expired, else 401; always with Content-Length: 0.
func Handler(pub *rsa.PublicKey) http.Handler {
	zero := []string{"0"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Length"] = zero
		if Verify(pub, r.Header.Get("Authorization"), time.Now()) {
			w.WriteHeader(http.StatusOK)
		} else {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
}

// Verify checks an "Authorization: Bearer" value: the RS256 signature over the
// signing input, then exp against now.
func Verify(pub *rsa.PublicKey, auth string, now time.Time) bool {
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return false
	}
	i, j := strings.IndexByte(tok, '.'), strings.LastIndexByte(tok, '.')
	if i < 0 || j <= i {
		return false
	}
	sig, err := base64.RawURLEncoding.DecodeString(tok[j+1:])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(tok[:j]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(tok[i+1 : j])
	if err != nil {
		return false
	}
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Exp == nil {
		return false
	}
	return float64(now.Unix()) < *c.Exp
}
