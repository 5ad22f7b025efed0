// Command mint writes N signed JWTs, one a line, for bench/run.sh: each has its
// own jti, so every token is a cache miss the first time a server sees it.
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// readKey reads a PKCS#8 private key and the algorithm it signs with.
func readKey(path string) (any, jwa.SignatureAlgorithm) {
	data, err := os.ReadFile(path) //nolint:gosec // G304: the key file named with -key
	if err != nil {
		log.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		log.Fatalf("%s: no PEM block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	switch key.(type) {
	case *rsa.PrivateKey:
		return key, jwa.RS256()
	case *ecdsa.PrivateKey:
		return key, jwa.ES256()
	case ed25519.PrivateKey:
		return key, jwa.EdDSA()
	}
	log.Fatalf("%s: unsupported key type %T", path, key)
	return nil, jwa.SignatureAlgorithm{}
}

// printJWKS prints the public key of key as a JWK set (kid "bench").
func printJWKS(key any, alg jwa.SignatureAlgorithm) {
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		log.Fatal(err)
	}
	_ = pub.Set(jwk.AlgorithmKey, alg)
	_ = pub.Set(jwk.KeyUsageKey, "sig")
	_ = pub.Set(jwk.KeyIDKey, "bench")
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	b, err := json.Marshal(set)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
}

func main() {
	keyFile := flag.String("key", "", "private key, PEM (PKCS#8): RSA signs RS256, P-256 ES256, Ed25519 EdDSA")
	n := flag.Int("n", 1, "how many tokens")
	claimsJSON := flag.String("claims", "{}", "claims (a JSON object); exp, iat and jti are added")
	ttl := flag.Duration("ttl", 2*time.Hour, "exp = now + ttl")
	jwks := flag.Bool("jwks", false, "print the public key as a JWK set instead of tokens")
	flag.Parse()
	key, alg := readKey(*keyFile)
	if *jwks {
		printJWKS(key, alg)
		return
	}
	var base map[string]any
	if err := json.Unmarshal([]byte(*claimsJSON), &base); err != nil || base == nil {
		log.Fatalf("--claims must be a JSON object: %v", err)
	}
	now := time.Now()
	base["iat"] = now.Unix()
	base["exp"] = now.Add(*ttl).Unix()
	out := make([]string, *n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			c := make(map[string]any, len(base)+1)
			for k, v := range base {
				c[k] = v
			}
			for i := w; i < *n; i += workers {
				c["jti"] = "bench-" + strconv.Itoa(i)
				payload, err := json.Marshal(c)
				if err != nil {
					log.Fatal(err)
				}
				signed, err := jws.Sign(payload, jws.WithKey(alg, key))
				if err != nil {
					log.Fatal(err)
				}
				out[i] = string(signed)
			}
		})
	}
	wg.Wait()
	bw := bufio.NewWriter(os.Stdout)
	for _, t := range out {
		_, _ = fmt.Fprintln(bw, t)
	}
	if err := bw.Flush(); err != nil {
		log.Fatal(err)
	}
}
