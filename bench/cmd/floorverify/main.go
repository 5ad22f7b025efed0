// Command floorverify is the floor of bench/run.sh's cache-miss scenario: a
// minimal HTTP server that verifies each RS256 bearer token with bare crypto/rsa
// and checks exp, nothing else (no cache, no claims but exp, no policy). The
// verifier itself is package bench/floor, which BenchmarkFloorVerify runs in
// process.
package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/jwtgate/jwtgate/bench/floor"
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
	s := &http.Server{
		Addr:              *listen,
		Handler:           floor.Handler(pub),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	log.Fatal(s.ListenAndServe())
}
