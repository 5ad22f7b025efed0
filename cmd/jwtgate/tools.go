package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/jwtgate/jwtgate/authsvc/keys"
)

func runHashPassword(args []string) error {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	cost := fs.Int("cost", 12, "bcrypt cost (10 to 16); each step doubles the time of a sign-in")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if *cost < 10 || *cost > 16 {
		return fmt.Errorf("--cost %d: use 10 to 16", *cost)
	}
	var pw []byte
	if term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprint(os.Stderr, "Password: ")
		p1, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return err
		}
		fmt.Fprint(os.Stderr, "Again: ")
		p2, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return err
		}
		if string(p1) != string(p2) {
			return errors.New("the passwords differ")
		}
		pw = p1
	} else {
		line, err := bufio.NewReader(io.LimitReader(os.Stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		pw = []byte(strings.TrimRight(line, "\r\n"))
	}
	if len(pw) == 0 {
		return errors.New("the password is empty")
	}
	if len(pw) > 72 {
		return errors.New("bcrypt uses at most 72 bytes of a password: choose a shorter one")
	}
	hash, err := bcrypt.GenerateFromPassword(pw, *cost)
	if err != nil {
		return err
	}
	fmt.Println(string(hash))
	return nil
}

func runKeygen(args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	alg := fs.String("alg", "ES256", "RS256, ES256 or EdDSA")
	ns := fs.String("namespace", "default", "namespace of the Secret")
	name := fs.String("name", "jwtgate-signing", "name of the Secret")
	apiKey := fs.String("api-key", "", "print a new API key with this name instead, and its line for the apiKeys Secret")
	roles := fs.String("roles", "", "with --api-key: comma-separated roles of the key")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if *apiKey != "" {
		if strings.ContainsAny(*apiKey, ": \t\r\n") || strings.HasPrefix(*apiKey, "#") {
			return errors.New("--api-key: the name must not start with '#' or hold ':' or white space")
		}
		for _, r := range strings.Split(*roles, ",") {
			if strings.ContainsAny(r, ": \t\r\n") {
				return fmt.Errorf("--roles: %q must not hold ':' or white space", r)
			}
		}
		key, sum, err := keys.NewAPIKey()
		if err != nil {
			return err
		}
		line := *apiKey + ":sha256:" + sum
		if *roles != "" {
			line += ":" + *roles
		}
		fmt.Fprintf(os.Stderr, "# the key (give it to the client; it is not stored anywhere):\n")
		fmt.Println(key)
		fmt.Fprintf(os.Stderr, "# the line for the apiKeys Secret:\n")
		fmt.Println(line)
		return nil
	}
	pemBytes, err := keys.Generate(*alg)
	if err != nil {
		return err
	}
	s := corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: *ns, Name: *name, Labels: map[string]string{"app.kubernetes.io/part-of": "jwtgate"}},
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{"private.pem": string(pemBytes)},
	}
	out, err := yaml.Marshal(s)
	if err != nil {
		return err
	}
	fmt.Print(strings.Replace(string(out), "creationTimestamp: null\n", "", 1))
	return nil
}

func runToken(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	keyFile := fs.String("key", "", "private key: PEM, private JWKS (the last key signs), or with --alg HS* an HMAC secret file")
	claimsJSON := fs.String("claims", "{}", "claims as a JSON object; exp and iat are added when absent")
	ttl := fs.Duration("ttl", 5*time.Minute, "lifetime: exp = now + ttl")
	algFlag := fs.String("alg", "", "HS256, HS384 or HS512 to sign with an HMAC secret; otherwise taken from the key")
	if err := fs.Parse(args); err != nil {
		return exitError(2)
	}
	if *keyFile == "" {
		return errors.New("--key FILE is required")
	}
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	var claims map[string]any
	dec := json.NewDecoder(strings.NewReader(*claimsJSON))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return fmt.Errorf("--claims must be a JSON object: %v", err)
	}
	now := time.Now()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = now.Add(*ttl).Unix()
	}
	if _, ok := claims["iat"]; !ok {
		claims["iat"] = now.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return err
	}
	hdr := jws.NewHeaders()
	var signed []byte
	if strings.HasPrefix(*algFlag, "HS") {
		alg, ok := jwa.LookupSignatureAlgorithm(*algFlag)
		if !ok {
			return fmt.Errorf("--alg %q is not an HMAC algorithm", *algFlag)
		}
		_ = hdr.Set(jws.TypeKey, "JWT")
		signed, err = jws.Sign(payload, jws.WithKey(alg, data, jws.WithProtectedHeaders(hdr)))
	} else {
		name := "private.pem"
		if strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
			name = "jwks.json"
		}
		signer, _, perr := keys.ParseSigning(map[string][]byte{name: data})
		if perr != nil {
			return fmt.Errorf("%s: %w", *keyFile, perr)
		}
		_ = hdr.Set(jws.TypeKey, "JWT")
		_ = hdr.Set(jws.KeyIDKey, signer.ID)
		signed, err = jws.Sign(payload, jws.WithKey(signer.Alg, signer.Key, jws.WithProtectedHeaders(hdr)))
	}
	if err != nil {
		return err
	}
	fmt.Println(string(signed))
	return nil
}
