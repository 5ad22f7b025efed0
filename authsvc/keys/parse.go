package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// pemMarker starts every PEM block. Input holding it anywhere is PEM (or an
// error), never an HMAC secret: a secret that is a public key would let
// anyone who has the public key forge HS256 tokens.
var pemMarker = []byte("-----BEGIN")

// utf8BOM is stripped before sniffing the format; editors on some systems
// prepend it.
var utf8BOM = []byte("\xef\xbb\xbf")

// ParseVerification reads verification key material and detects its format:
//
//   - PEM: one or more blocks of type PUBLIC KEY (PKIX), RSA PUBLIC KEY
//     (PKCS#1) or CERTIFICATE (its public key; validity dates are not
//     checked, the certificate only carries the key). A private key block
//     is refused: a verification Secret should hold the public key only.
//   - JSON: a JWK or a JWKS. Keys with "use":"enc" (or an encryption alg,
//     or key_ops without "verify") are skipped; private keys are refused;
//     symmetric ("oct") keys are HMAC secrets.
//   - Anything else: an HMAC secret, decoded per enc.
//
// Input that contains "-----BEGIN" or starts with "{" is never taken as an
// HMAC secret: when it does not parse, that is an error.
//
// Errors are meant for users: they say which block or key is wrong and how to
// fix it, and never contain secret material.
func ParseVerification(data []byte, enc Encoding) ([]Key, error) {
	switch enc {
	case "", EncodingUTF8, EncodingHex, EncodingBase64:
	default:
		return nil, fmt.Errorf("unknown encoding %q: use utf8, hex or base64", enc)
	}
	sniff := bytes.TrimLeft(bytes.TrimPrefix(data, utf8BOM), " \t\r\n")
	switch {
	case len(data) == 0:
		return nil, errors.New("key material is empty")
	case bytes.Contains(data, pemMarker):
		return parsePEMPublic(data)
	case len(sniff) > 0 && sniff[0] == '{':
		return parseJWKJSON(sniff)
	default:
		return parseHMAC(data, enc)
	}
}

// parsePEMPublic reads every PEM block in data as a public key.
func parsePEMPublic(data []byte) ([]Key, error) {
	var out []Key
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		raw, err := publicKeyFromPEMBlock(block)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		if raw == nil { // EC PARAMETERS and the like: nothing to verify with
			continue
		}
		if rk, ok := raw.(*rsa.PublicKey); ok && rk.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("PEM block %d (%s): RSA key is %d bits; at least %d are required", n, block.Type, rk.N.BitLen(), MinRSABits)
		}
		jk, err := jwk.Import(raw)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): the key cannot be used (%s)", n, block.Type, keyKind(raw))
		}
		k, err := verificationKeyFromJWK(jk, false)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		out = append(out, k)
	}
	if bytes.Contains(rest, pemMarker) {
		return nil, fmt.Errorf("PEM block %d is malformed (check the BEGIN/END lines and the base64 between them)", len(out)+1)
	}
	if len(out) == 0 {
		return nil, errors.New("no public key found in the PEM data")
	}
	return out, nil
}

// publicKeyFromPEMBlock decodes one block into a crypto public key, or nil
// for blocks that carry no key (EC PARAMETERS).
func publicKeyFromPEMBlock(block *pem.Block) (any, error) {
	switch block.Type {
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, errors.New("PUBLIC KEY: the DER inside is not a PKIX public key of a supported type (RSA, EC P-256/384/521, Ed25519)")
		}
		return pub, nil
	case "RSA PUBLIC KEY":
		pub, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, errors.New("RSA PUBLIC KEY: the DER inside is not a PKCS#1 RSA public key")
		}
		return pub, nil
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, errors.New("CERTIFICATE: the DER inside is not an X.509 certificate jwtgate can read")
		}
		return cert.PublicKey, nil
	case "EC PARAMETERS":
		return nil, nil
	}
	if strings.Contains(block.Type, "PRIVATE KEY") {
		return nil, errors.New("a private key: store the public key only (openssl pkey -in key.pem -pubout)")
	}
	return nil, errors.New("unsupported block type (the word after BEGIN): use PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE")
}

// parseJWKJSON reads a JWK or a JWKS kept in a Secret. Every key must be
// usable: the user can fix the Secret, so a key that cannot be used is an
// error rather than silently ignored.
func parseJWKJSON(data []byte) ([]Key, error) {
	set, err := jwk.Parse(data, jwk.WithStrictKeySetParsing(true))
	if err != nil {
		return nil, jsonProblem("JWK or JWKS", err)
	}
	keys, _, err := keysFromJWKSet(set, true)
	return keys, err
}

// keysFromJWKSet compiles the keys of a parsed JWK set. It serves both local
// Secrets (local=true) and remote JWKS documents (local=false).
//
// Keys that are not for signatures are always skipped, and a private key is
// always an error. Other unusable keys (unsupported type or curve, an alg
// that does not fit) are errors for local input, which the user can fix,
// but are only reported in ignored for a remote document, which is not ours
// to fix and may list keys for other consumers. Symmetric keys are accepted
// only from local input.
func keysFromJWKSet(set jwk.Set, local bool) (keys []Key, ignored []error, err error) {
	var skipped []string
	for i := range set.Len() {
		jk, _ := set.Key(i)
		k, err := verificationKeyFromJWK(jk, local)
		if err == nil {
			keys = append(keys, k)
			continue
		}
		// A remote document's kids stay out of errors (which status shows):
		// its content is never quoted there.
		err = fmt.Errorf("%s: %w", describeJWK(i, jk, local), err)
		switch {
		case errors.Is(err, errSkip):
			skipped = append(skipped, err.Error())
		case errors.Is(err, errPrivate) || local:
			return nil, nil, err
		default:
			ignored = append(ignored, err)
		}
	}
	if len(keys) == 0 {
		switch {
		case set.Len() == 0:
			return nil, ignored, errors.New("the JWKS holds no keys")
		case len(skipped) > 0 && local:
			return nil, ignored, fmt.Errorf("no signature verification key found (%s)", strings.Join(skipped, "; "))
		case len(skipped) > 0:
			return nil, ignored, fmt.Errorf("no signature verification key found (%d keys are for encryption)", len(skipped))
		case local:
			return nil, ignored, errors.New("no usable signature verification key found")
		default:
			return nil, ignored, fmt.Errorf("no usable signature verification key found (%d ignored, see the log)", len(ignored))
		}
	}
	return keys, ignored, nil
}

// describeJWK names a key of a set for messages by its position: `key 2`.
// Never by its kid: messages reach whoever may reference the Secret (status,
// check), and a remote document's content is never quoted either.
func describeJWK(i int, _ jwk.Key, _ bool) string {
	return fmt.Sprintf("key %d", i+1)
}

// jsonProblem describes why a JSON key document did not parse, without
// quoting it: jwx's errors repeat member values (kty, crv, kid), and those
// are the Secret's content. A syntax error keeps its byte offset.
func jsonProblem(what string, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not a valid %s: the JSON is malformed near byte %d", what, se.Offset)
	}
	return fmt.Errorf("not a valid %s: check that every key has a supported kty (RSA, EC, OKP, oct), a supported crv (P-256, P-384, P-521, Ed25519) and the members its type needs", what)
}

// keyKind names the Go type of a parsed key for messages.
func keyKind(raw any) string {
	switch raw.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "EC"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return "unsupported key type"
}

// parseHMAC decodes an HMAC secret. Secret bytes never appear in errors.
func parseHMAC(data []byte, enc Encoding) ([]Key, error) {
	var secret []byte
	switch enc {
	case "", EncodingUTF8:
		// Exact bytes: a trailing newline is part of the secret, as it is
		// for every other consumer of the same Secret.
		secret = bytes.Clone(data)
	case EncodingHex:
		s := bytes.TrimSpace(data)
		secret = make([]byte, hex.DecodedLen(len(s)))
		if _, err := hex.Decode(secret, s); err != nil {
			return nil, errors.New("HMAC secret is not valid hex (encoding: hex): use only the digits 0-9 and a-f, an even number of them")
		}
	case EncodingBase64:
		var err error
		if secret, err = decodeBase64(bytes.TrimSpace(data)); err != nil {
			return nil, err
		}
	default: // checked by ParseVerification
		return nil, fmt.Errorf("unknown encoding %q: use utf8, hex or base64", enc)
	}
	if len(secret) < MinHMACKeyBytes {
		return nil, shortSecretError(len(secret))
	}
	if what := publicKeyMaterial(secret); what != "" {
		return nil, fmt.Errorf("this looks like %s, not an HMAC secret: a public key used as an HMAC secret lets anyone who has it forge tokens; store the key itself (PEM, JWK or JWKS) without an encoding", what)
	}
	return []Key{{Algs: slices.Clone(hmacAlgs(len(secret))), Key: secret, AnyKID: true}}, nil
}

// publicKeyMaterial names the kind of key material secret holds, or "" when it
// holds none. It catches what the format sniffing of ParseVerification cannot
// see before decoding: a PEM or JWK stored base64- or hex-encoded, an OpenSSH
// public key, a DER key or certificate. The secret as given is looked at, and
// so are its base64 and hex decodings, two levels deep: the base64 body of a
// public key (what remains of a PEM without its armour) given as a utf8 secret
// is the key itself to anyone who has it.
func publicKeyMaterial(secret []byte) string {
	if what := publicKeyForm(secret); what != "" {
		return what
	}
	level := [][]byte{secret}
	for depth := 1; depth <= 2; depth++ {
		var next [][]byte
		for _, c := range level {
			for _, d := range textDecodings(c) {
				if what := publicKeyForm(d); what != "" {
					return "the base64 or hex text of " + what
				}
				next = append(next, d)
			}
		}
		level = next
	}
	return ""
}

// publicKeyForm names the public key material b is as it stands, or "".
func publicKeyForm(b []byte) string {
	trimmed := bytes.TrimSpace(b)
	switch {
	case bytes.Contains(b, pemMarker):
		return "a PEM block (a public key?)"
	case len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed):
		return "a JSON document (a JWK public key?)"
	case bytes.HasPrefix(trimmed, []byte("ssh-")) || bytes.HasPrefix(trimmed, []byte("ecdsa-sha2-")):
		return "an OpenSSH public key"
	}
	if _, err := x509.ParsePKIXPublicKey(b); err == nil {
		return "a DER public key"
	}
	if _, err := x509.ParsePKCS1PublicKey(b); err == nil {
		return "a DER RSA public key"
	}
	if _, err := x509.ParseCertificate(b); err == nil {
		return "a DER certificate"
	}
	return ""
}

// textDecodings returns what b decodes to as hex and as base64 (standard or
// URL-safe, padded or not), with white space (line wrapping) removed first.
// Text that is neither gives nothing.
func textDecodings(b []byte) [][]byte {
	s := bytes.Join(bytes.Fields(b), nil)
	if len(s) < 16 {
		return nil
	}
	var out [][]byte
	if len(s)%2 == 0 {
		d := make([]byte, hex.DecodedLen(len(s)))
		if _, err := hex.Decode(d, s); err == nil {
			out = append(out, d)
		}
	}
	for _, e := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		d := make([]byte, e.DecodedLen(len(s)))
		if n, err := e.Decode(d, s); err == nil {
			out = append(out, d[:n])
			break
		}
	}
	return out
}

// decodeBase64 accepts standard and URL-safe base64, padded or not. Line
// breaks inside are ignored by the decoder, as `base64` wraps its output.
func decodeBase64(s []byte) ([]byte, error) {
	for _, e := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
	} {
		out := make([]byte, e.DecodedLen(len(s)))
		if n, err := e.Decode(out, s); err == nil {
			return out[:n], nil
		}
	}
	return nil, errors.New("HMAC secret is not valid base64 (encoding: base64): use standard or URL-safe base64")
}
