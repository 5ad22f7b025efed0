// Command floorverify is the floor of bench/run.sh's cache-miss scenario: a
// minimal HTTP server that verifies each RS256 bearer token with bare crypto/rsa
// and checks exp, nothing else (no cache, no claims but exp, no policy).
package main

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"log"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	keyFile := flag.String("key", "", "RSA public key, PEM (PKIX)")
	flag.Parse()
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		log.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		log.Fatalf("%s: no PEM block", *keyFile)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		log.Fatalf("%s: not an RSA public key", *keyFile)
	}
	zero := []string{"0"}
	s := &http.Server{
		Addr: *listen,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Length"] = zero
			if verify(pub, r.Header.Get("Authorization"), time.Now()) {
				w.WriteHeader(http.StatusOK)
			} else {
				w.WriteHeader(http.StatusUnauthorized)
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Fatal(s.ListenAndServe())
}

func verify(pub *rsa.PublicKey, auth string, now time.Time) bool {
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
