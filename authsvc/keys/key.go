package keys

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Encoding is the encoding of an HMAC secret held in a Secret key.
type Encoding string

// The encodings an HMAC secret may be stored in.
const (
	// EncodingUTF8 uses the bytes of the Secret value exactly as stored,
	// including any trailing newline. It is the default ("" means utf8).
	EncodingUTF8 Encoding = "utf8"
	// EncodingHex decodes hexadecimal digits (either case); surrounding
	// whitespace is ignored.
	EncodingHex Encoding = "hex"
	// EncodingBase64 decodes standard or URL-safe base64, padded or not;
	// surrounding whitespace and line breaks are ignored.
	EncodingBase64 Encoding = "base64"
)

// MinHMACKeyBytes is the shortest HMAC secret accepted: RFC 7518 section 3.2
// requires a key at least as long as the hash output, 32 bytes for HS256.
// HS384 and HS512 are allowed only for keys of at least 48 and 64 bytes.
const MinHMACKeyBytes = 32

// Key is one verification key, prepared at compile time for the hot path.
type Key struct {
	// ID is the key's kid. For PEM keys and JWKs without a kid it is the
	// RFC 7638 SHA-256 thumbprint, base64url; for HMAC secrets without a
	// kid it is "" (a thumbprint would be a hash of the secret).
	ID string
	// Algs lists the algorithms this key may verify, derived from its type
	// (and narrowed to the JWK's "alg" when it carries one). "none" is
	// never among them.
	Algs []jwa.SignatureAlgorithm
	// Key is what jws.VerifyCompactFast and jwsbb.Verify take:
	// *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey, or []byte for
	// HMAC.
	Key any
	// Public is the public JWK with kid, use=sig and, when the key allows
	// exactly one algorithm, alg set; it is what jwks.json publishes. It is
	// nil for HMAC keys, which have no public form.
	Public jwk.Key
	// AnyKID is true when the key material named no kid (PEM keys, HMAC
	// secrets, JWKs without "kid"). Such a key is a candidate for tokens
	// carrying any kid, because the issuer may well label its tokens with
	// a kid the key material does not know; see Set.Find.
	AnyKID bool
}

// Allows reports whether the key may verify a signature made with alg.
func (k Key) Allows(alg jwa.SignatureAlgorithm) bool {
	name := alg.String()
	for _, a := range k.Algs {
		if a.String() == name {
			return true
		}
	}
	return false
}

// The algorithm lists per key type. They are shared, read-only values: a
// Key's Algs either is one of these or a fresh one-element slice.
var (
	rsaAlgs = []jwa.SignatureAlgorithm{
		jwa.RS256(), jwa.RS384(), jwa.RS512(),
		jwa.PS256(), jwa.PS384(), jwa.PS512(),
	}
	es256Algs = []jwa.SignatureAlgorithm{jwa.ES256()}
	es384Algs = []jwa.SignatureAlgorithm{jwa.ES384()}
	es512Algs = []jwa.SignatureAlgorithm{jwa.ES512()}
	// Ed25519 keys verify "EdDSA" (RFC 8037) and the fully specified
	// "Ed25519" (RFC 9864), which names the same signature.
	ed25519Algs = []jwa.SignatureAlgorithm{jwa.EdDSA(), jwa.EdDSAEd25519()}
	hs256Algs   = []jwa.SignatureAlgorithm{jwa.HS256()}
	hs384Algs   = []jwa.SignatureAlgorithm{jwa.HS256(), jwa.HS384()}
	hs512Algs   = []jwa.SignatureAlgorithm{jwa.HS256(), jwa.HS384(), jwa.HS512()}
)

// hmacAlgs returns the HMAC algorithms a secret of n bytes may be used with
// (RFC 7518 section 3.2: the key must be at least as long as the hash).
func hmacAlgs(n int) []jwa.SignatureAlgorithm {
	switch {
	case n >= 64:
		return hs512Algs
	case n >= 48:
		return hs384Algs
	case n >= MinHMACKeyBytes:
		return hs256Algs
	}
	return nil
}

// curver is implemented by the EC and OKP JWK types.
type curver interface {
	Crv() (jwa.EllipticCurveAlgorithm, bool)
}

// typeAlgs returns the signature algorithms a public or private asymmetric
// key may be used with, from its key type and curve alone.
func typeAlgs(k jwk.Key) ([]jwa.SignatureAlgorithm, error) {
	switch kty := k.KeyType(); kty {
	case jwa.RSA():
		return rsaAlgs, nil
	case jwa.EC(), jwa.OKP():
		var crv jwa.EllipticCurveAlgorithm
		if c, ok := k.(curver); ok {
			crv, _ = c.Crv()
		}
		switch crv {
		case jwa.P256():
			return es256Algs, nil
		case jwa.P384():
			return es384Algs, nil
		case jwa.P521():
			return es512Algs, nil
		case jwa.Ed25519():
			return ed25519Algs, nil
		}
		return nil, fmt.Errorf("unsupported %s curve: use P-256, P-384, P-521 or Ed25519", kty)
	default:
		return nil, errors.New("unsupported key type: use RSA, EC or OKP (Ed25519)")
	}
}

// errSkip marks a key that is not meant for signatures at all (use=enc, an
// encryption "alg", key_ops without "verify"). Such keys are passed over
// quietly: JWKS documents often mix signature and encryption keys.
var errSkip = errors.New("not a signature key")

// errPrivate marks key material that holds a private key where only a
// public key belongs.
var errPrivate = errors.New("holds a private key")

// narrowAlgs applies a JWK's "alg" member to the algorithms its type allows:
// an absent alg keeps them all, a fitting one narrows to exactly that one.
func narrowAlgs(k jwk.Key, allowed []jwa.SignatureAlgorithm) ([]jwa.SignatureAlgorithm, error) {
	ka, ok := k.Algorithm()
	if !ok || ka == nil || ka.String() == "" {
		return allowed, nil
	}
	name := ka.String()
	sa, isSig := jwa.LookupSignatureAlgorithm(name)
	if !isSig {
		if _, enc := jwa.LookupKeyEncryptionAlgorithm(name); enc {
			return nil, fmt.Errorf("%w: \"alg\" %q is an encryption algorithm", errSkip, name)
		}
		if _, enc := jwa.LookupContentEncryptionAlgorithm(name); enc {
			return nil, fmt.Errorf("%w: \"alg\" %q is an encryption algorithm", errSkip, name)
		}
		return nil, errors.New("unknown \"alg\": use a JWS signature algorithm such as RS256 or ES256, or leave alg out")
	}
	for _, a := range allowed {
		if a.String() == name {
			return []jwa.SignatureAlgorithm{sa}, nil
		}
	}
	return nil, fmt.Errorf("\"alg\" %q does not fit this %s key, which allows only %s",
		name, k.KeyType(), algNames(allowed))
}

// algNames formats algorithms for messages: "RS256, RS384".
func algNames(algs []jwa.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = a.String()
	}
	return strings.Join(names, ", ")
}

// isPrivate reports whether k holds private (or, for oct keys, secret)
// asymmetric key material.
func isPrivate(k jwk.Key) bool {
	priv, err := jwk.IsPrivateKey(k)
	return err == nil && priv
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of k, base64url.
func thumbprint(k jwk.Key) (string, error) {
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("computing the key's thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// verificationKeyFromJWK compiles one parsed JWK into a Key. It is the single
// place where verification keys are made, for PEM input (after jwk.Import),
// local JWK(S) documents and remote JWKS documents alike.
//
// allowSymmetric admits "kty":"oct" keys (HMAC secrets). Local Secrets may
// hold them; a remote JWKS is public, so a symmetric key there would be a
// secret anyone can read, and it is never trusted.
//
// Errors wrapping errSkip mean "not a signature key, pass over"; errors
// wrapping errPrivate mean private material where a public key belongs.
func verificationKeyFromJWK(k jwk.Key, allowSymmetric bool) (Key, error) {
	if jwk.IsUnsupportedKey(k) {
		var reason error
		if uk, ok := k.(jwk.UnsupportedKey); ok {
			reason = uk.Reason()
		}
		_ = reason // jwx's reason quotes the key's members
		return Key{}, errors.New("unsupported key: check kty (RSA, EC, OKP, oct) and crv (P-256, P-384, P-521, Ed25519)")
	}
	if isPrivate(k) {
		return Key{}, fmt.Errorf("%w: store only the public key (drop the private members such as \"d\")", errPrivate)
	}
	if use, ok := k.KeyUsage(); ok && use != "" && use != string(jwk.ForSignature) {
		return Key{}, fmt.Errorf("%w: \"use\" is not \"sig\"", errSkip)
	}
	if ops, ok := k.KeyOps(); ok && len(ops) > 0 && !slices.Contains(ops, jwk.KeyOpVerify) {
		return Key{}, fmt.Errorf("%w: \"key_ops\" does not include \"verify\"", errSkip)
	}
	kid, hasKID := k.KeyID()
	hasKID = hasKID && kid != ""

	if k.KeyType() == jwa.OctetSeq() {
		if !allowSymmetric {
			return Key{}, errors.New("a symmetric (kty \"oct\") key is never trusted from a published JWKS")
		}
		var secret []byte
		if err := jwk.Export(k, &secret); err != nil {
			return Key{}, errors.New("the \"k\" member does not decode: it must be base64url")
		}
		if len(secret) < MinHMACKeyBytes {
			return Key{}, shortSecretError(len(secret))
		}
		algs, err := narrowAlgs(k, hmacAlgs(len(secret)))
		if err != nil {
			return Key{}, err
		}
		return Key{ID: kid, Algs: slices.Clone(algs), Key: secret, AnyKID: !hasKID}, nil
	}

	allowed, err := typeAlgs(k)
	if err != nil {
		return Key{}, err
	}
	algs, err := narrowAlgs(k, allowed)
	if err != nil {
		return Key{}, err
	}
	pub, err := k.PublicKey()
	if err != nil {
		return Key{}, fmt.Errorf("deriving the public key: %w", err)
	}
	var raw any
	if err := jwk.Export(pub, &raw); err != nil {
		return Key{}, fmt.Errorf("exporting the public key: %w", err)
	}
	if !hasKID {
		if kid, err = thumbprint(pub); err != nil {
			return Key{}, err
		}
	}
	if err := decoratePublic(pub, kid, algs); err != nil {
		return Key{}, err
	}
	// Algs is cloned: the type lists above are shared and must not be
	// reachable for modification through a Key.
	return Key{ID: kid, Algs: slices.Clone(algs), Key: raw, Public: pub, AnyKID: !hasKID}, nil
}

// decoratePublic sets the members jwks.json consumers rely on: kid, use=sig
// and, when the key allows exactly one algorithm, alg.
func decoratePublic(pub jwk.Key, kid string, algs []jwa.SignatureAlgorithm) error {
	if err := pub.Set(jwk.KeyIDKey, kid); err != nil {
		return fmt.Errorf("setting kid: %w", err)
	}
	if err := pub.Set(jwk.KeyUsageKey, jwk.ForSignature); err != nil {
		return fmt.Errorf("setting use: %w", err)
	}
	if len(algs) == 1 {
		if err := pub.Set(jwk.AlgorithmKey, algs[0]); err != nil {
			return fmt.Errorf("setting alg: %w", err)
		}
	}
	return nil
}

// shortSecretError says how long an HMAC secret is and how long it must be,
// never what it holds.
func shortSecretError(n int) error {
	return fmt.Errorf("HMAC secret is %d bytes long; at least %d bytes are required (RFC 7518 3.2): generate one with `openssl rand -base64 48` and set encoding: base64",
		n, MinHMACKeyBytes)
}
