package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// The keys of a signing Secret (spec.login.signingKeySecretRef).
const (
	// SigningKeyPEM holds one private key: PKCS#8, PKCS#1 or SEC1 PEM.
	SigningKeyPEM = "private.pem"
	// SigningKeyJWKS holds a private JWKS: the last key signs, all verify.
	SigningKeyJWKS = "jwks.json"
)

// MinRSABits is the smallest RSA modulus accepted for signing.
const MinRSABits = 2048

// ErrNoSigningKey is returned (wrapped) by ParseSigning when the Secret
// holds neither SigningKeyPEM nor SigningKeyJWKS, so that callers can create
// one (jwtgate serve) or report SigningKeyMissing (the controller).
var ErrNoSigningKey = errors.New(`no signing key: the Secret holds neither "private.pem" nor "jwks.json"`)

// Signer is the key a login policy signs its tokens with.
type Signer struct {
	// ID is the kid (the RFC 7638 thumbprint when the key names none).
	ID string
	// Alg is RS256 for RSA, ES256/ES384/ES512 by curve for EC, EdDSA for
	// Ed25519, or the JWK's "alg" when it has one.
	Alg jwa.SignatureAlgorithm
	// Key is the private JWK with kid and alg set, ready for
	// jwt.Sign(tok, jwt.WithKey(s.Alg, s.Key)).
	Key jwk.Key
}

// ParseSigning reads a signing Secret's data: SigningKeyPEM or
// SigningKeyJWKS, not both. It returns the key that signs and the keys
// that verify (for a JWKS, every key, so that tokens signed before a
// rotation stay valid; the signer's own key is the last). Each verify key
// allows exactly its signing algorithm, and its Public JWK is what
// /jwtgate/jwks.json publishes.
//
// Errors name the Secret key that is wrong and why. When neither key is
// present the error wraps ErrNoSigningKey.
func ParseSigning(data map[string][]byte) (Signer, []Key, error) {
	pemData, hasPEM := data[SigningKeyPEM]
	jwksData, hasJWKS := data[SigningKeyJWKS]
	switch {
	case hasPEM && hasJWKS:
		return Signer{}, nil, fmt.Errorf("the Secret holds both %q and %q: keep only one of them", SigningKeyPEM, SigningKeyJWKS)
	case hasPEM:
		s, k, err := parseSigningPEM(pemData)
		if err != nil {
			return Signer{}, nil, fmt.Errorf("Secret key %q: %w", SigningKeyPEM, err) //nolint:staticcheck // ST1005: Secret is the Kubernetes kind
		}
		return s, []Key{k}, nil
	case hasJWKS:
		s, ks, err := parseSigningJWKS(jwksData)
		if err != nil {
			return Signer{}, nil, fmt.Errorf("Secret key %q: %w", SigningKeyJWKS, err) //nolint:staticcheck // ST1005: Secret is the Kubernetes kind
		}
		return s, ks, nil
	default:
		return Signer{}, nil, ErrNoSigningKey
	}
}

// parseSigningPEM reads exactly one private key from PEM data.
func parseSigningPEM(data []byte) (Signer, Key, error) {
	var (
		raw   any
		found int
		rest  = data
	)
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		k, err := privateKeyFromPEMBlock(block)
		if err != nil {
			return Signer{}, Key{}, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if k == nil {
			continue
		}
		raw = k
		found++
	}
	switch {
	case bytes.Contains(rest, pemMarker):
		return Signer{}, Key{}, errors.New("a PEM block is malformed (check the BEGIN/END lines and the base64 between them)")
	case found == 0:
		return Signer{}, Key{}, errors.New("no PEM private key found (create one with `jwtgate keygen`)")
	case found > 1:
		return Signer{}, Key{}, fmt.Errorf("holds %d private keys; keep one here, or list several in %q to rotate keys", found, SigningKeyJWKS)
	}
	if rk, ok := raw.(*rsa.PrivateKey); ok && rk.N.BitLen() < MinRSABits {
		return Signer{}, Key{}, fmt.Errorf("RSA key is %d bits; at least %d are required", rk.N.BitLen(), MinRSABits)
	}
	jk, err := jwk.Import(raw)
	if err != nil {
		return Signer{}, Key{}, errors.New("the private key cannot be used: use RSA, EC P-256/384/521 or Ed25519")
	}
	return signerFromJWK(jk)
}

// privateKeyFromPEMBlock decodes one block into a crypto private key, or nil
// for blocks that carry none (EC PARAMETERS, written by openssl ecparam).
func privateKeyFromPEMBlock(block *pem.Block) (any, error) {
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("the key is encrypted: store it decrypted (openssl pkey -in key.pem -out plain.pem)")
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("PRIVATE KEY (PKCS#8): the DER inside is not a PKCS#8 key of a supported type (RSA, EC P-256/384/521, Ed25519)")
		}
		return k, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("RSA PRIVATE KEY (PKCS#1): the DER inside is not a PKCS#1 RSA private key")
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("EC PRIVATE KEY (SEC 1): the DER inside is not a SEC 1 EC private key on a supported curve")
		}
		return k, nil
	case "EC PARAMETERS":
		return nil, nil
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return nil, fmt.Errorf("%s holds a public key; signing needs the private key", block.Type)
	case "OPENSSH PRIVATE KEY":
		return nil, errors.New("OpenSSH key format is not supported: convert it with ssh-keygen -p -m PKCS8 -f KEYFILE")
	}
	return nil, errors.New("unsupported block type (the word after BEGIN): use PRIVATE KEY (PKCS#8), RSA PRIVATE KEY or EC PRIVATE KEY")
}

// parseSigningJWKS reads a private JWKS: every key verifies, the last signs.
func parseSigningJWKS(data []byte) (Signer, []Key, error) {
	set, err := jwk.Parse(data, jwk.WithStrictKeySetParsing(true))
	if err != nil {
		return Signer{}, nil, jsonProblem("JWKS", err)
	}
	if set.Len() == 0 {
		return Signer{}, nil, errors.New("the JWKS holds no keys (create one with `jwtgate keygen`)")
	}
	var (
		signer Signer
		keys   = make([]Key, 0, set.Len())
		seen   = make(map[string]int, set.Len())
	)
	for i := range set.Len() {
		jk, _ := set.Key(i)
		s, k, err := signerFromJWK(jk)
		if err != nil {
			return Signer{}, nil, fmt.Errorf("%s: %w", describeJWK(i, jk, true), err)
		}
		if j, dup := seen[s.ID]; dup {
			return Signer{}, nil, fmt.Errorf("keys %d and %d have the same kid: give each key its own kid", j+1, i+1)
		}
		seen[s.ID] = i
		signer = s
		keys = append(keys, k)
	}
	return signer, keys, nil
}

// signerFromJWK checks a private JWK and returns it as a Signer, with the
// matching verification Key.
func signerFromJWK(k jwk.Key) (Signer, Key, error) {
	if jwk.IsUnsupportedKey(k) {
		return Signer{}, Key{}, errors.New("unsupported key: check kty (RSA, EC, OKP) and crv (P-256, P-384, P-521, Ed25519)")
	}
	if k.KeyType() == jwa.OctetSeq() {
		return Signer{}, Key{}, errors.New(`HMAC (kty "oct") keys cannot sign here: jwks.json publishes the keys that verify issued tokens and a secret key cannot be published; use RSA, EC or Ed25519 (jwtgate keygen)`)
	}
	if !isPrivate(k) {
		return Signer{}, Key{}, errors.New("is a public key; signing needs the private key")
	}
	if use, ok := k.KeyUsage(); ok && use != "" && use != string(jwk.ForSignature) {
		return Signer{}, Key{}, errors.New("\"use\" is not \"sig\"; a signing key needs \"sig\" or none")
	}
	allowed, err := typeAlgs(k)
	if err != nil {
		return Signer{}, Key{}, err
	}
	if k.KeyType() == jwa.RSA() {
		var raw any
		if err := jwk.Export(k, &raw); err != nil {
			return Signer{}, Key{}, fmt.Errorf("reading the RSA key: %w", err)
		}
		if rk, ok := raw.(*rsa.PrivateKey); !ok || rk.N.BitLen() < MinRSABits {
			if !ok {
				return Signer{}, Key{}, fmt.Errorf("reading the RSA key: got %T", raw)
			}
			return Signer{}, Key{}, fmt.Errorf("RSA key is %d bits; at least %d are required", rk.N.BitLen(), MinRSABits)
		}
	}
	algs, err := narrowAlgs(k, allowed)
	if err != nil {
		if errors.Is(err, errSkip) {
			return Signer{}, Key{}, fmt.Errorf("%v; a signing key needs a signature algorithm", err)
		}
		return Signer{}, Key{}, err
	}
	alg := algs[0] // RS256 for RSA, the curve's ES*, EdDSA, or the JWK's alg

	kid, ok := k.KeyID()
	if !ok || kid == "" {
		if kid, err = thumbprint(k); err != nil {
			return Signer{}, Key{}, err
		}
	}
	priv, err := k.Clone()
	if err != nil {
		return Signer{}, Key{}, fmt.Errorf("copying the key: %w", err)
	}
	if err := priv.Set(jwk.KeyIDKey, kid); err != nil {
		return Signer{}, Key{}, fmt.Errorf("setting kid: %w", err)
	}
	if err := priv.Set(jwk.AlgorithmKey, alg); err != nil {
		return Signer{}, Key{}, fmt.Errorf("setting alg: %w", err)
	}

	// The verification side: the public half, restricted to alg, with the
	// private key's operations ("sign") dropped.
	pub, err := priv.PublicKey()
	if err != nil {
		return Signer{}, Key{}, fmt.Errorf("deriving the public key: %w", err)
	}
	if pub.Has(jwk.KeyOpsKey) {
		if err := pub.Remove(jwk.KeyOpsKey); err != nil {
			return Signer{}, Key{}, fmt.Errorf("removing key_ops: %w", err)
		}
	}
	vk, err := verificationKeyFromJWK(pub, false)
	if err != nil {
		return Signer{}, Key{}, err
	}
	return Signer{ID: kid, Alg: alg, Key: priv}, vk, nil
}

// Generate makes a new private key for alg and returns it as PKCS#8 PEM,
// ready for the SigningKeyPEM key of a signing Secret.
//
//   - "RS256": RSA 2048. 2048 bits is the size RFC 7518 requires and every
//     JWT library accepts; it is rated secure beyond 2030 (NIST SP 800-57),
//     and 3072 would make every issued token about 3 times as slow to sign
//     and keygen take seconds on small nodes. Whoever wants a stronger key
//     should prefer ES256 or EdDSA, which are also faster.
//   - "ES256": ECDSA P-256.
//   - "EdDSA": Ed25519.
func Generate(alg string) ([]byte, error) {
	var (
		key any
		err error
	)
	switch alg {
	case "RS256":
		key, err = rsa.GenerateKey(rand.Reader, MinRSABits)
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("unsupported algorithm %q: use RS256, ES256 or EdDSA", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generating a %s key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s key: %w", alg, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// APIKeyPrefix starts every API key made by NewAPIKey, so that leaked keys
// are easy to recognize (and to scan for).
const APIKeyPrefix = "jgk_"

// NewAPIKey returns a fresh random API key (256 bits, base64url, prefixed
// APIKeyPrefix) and HashAPIKey of it, the value an API keys Secret stores.
func NewAPIKey() (key string, sha256hex string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("reading random bytes: %w", err)
	}
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	return key, HashAPIKey(key), nil
}

// HashAPIKey returns the lowercase hex SHA-256 of the whole key as clients
// send it (prefix included). API keys are long and random, so a fast hash
// is enough and keeps every request cheap.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
