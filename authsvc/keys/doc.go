// Package keys turns key material into keys the decision path can verify
// tokens with, and fetches remote JWKS documents.
//
// Three kinds of input are handled here:
//
//   - Verification keys a policy lists under spec.jwt.keys: PEM public keys
//     and certificates, JWKs and JWKSs, and HMAC secrets
//     ([ParseVerification]).
//   - The signing key of a policy that issues tokens: a private PEM or a
//     private JWKS whose last key signs ([ParseSigning]), and new keys for
//     `jwtgate keygen` ([Generate], [NewAPIKey]).
//   - Remote JWKS documents behind a jwksURL, refreshed in the background
//     and swapped atomically ([Remote], [Remotes]).
//
// Every key is compiled once into a [Key] that states which algorithms it may
// verify, derived from its type (never from a token), and a [Set] indexes them
// so that the hot path finds candidate keys by kid and alg without
// allocating. The type-derived algorithm list is what stops algorithm
// confusion: an RSA public key is never offered to HS256, and input that
// looks like a PEM or a JSON document is never used as an HMAC secret.
//
// All cryptography and JOSE handling is done by
// github.com/lestrrat-go/jwx/v3; this package only decides what to trust.
package keys
