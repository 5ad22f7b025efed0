package policy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// Identity is who a verified token (or API key) says the caller is, resolved into
// just what the policy's rules and forwarded headers read. It is immutable and
// shared by every request that presents the same token.
type Identity struct {
	Subject string
	Session string // sid of tokens jwtgate issued
	TokenID string // jti
	APIKey  bool
	// Own: signed by the policy's own signing key (a token its sign-in issued),
	// so Session names a session of its session store.
	Own bool
	// Expires is exp plus the policy's leeway (zero for API keys): past it the
	// token is refused, cached or not.
	Expires time.Time
	Headers []Header // forwardClaims, rendered once

	claims    []claimValue // by the policy's claim slots
	remote    *keys.Remote // the key set that verified it, when remote
	remoteGen uint64
}

// Roles are the values of the policy's roles claim.
func (id *Identity) Roles() []string {
	if id == nil || len(id.claims) <= rolesSlot {
		return nil
	}
	return id.claims[rolesSlot].elems
}

// Header is one forwarded claim header. An empty value means the claim is
// absent: the proxy overwrites or deletes the client's own copy.
type Header struct {
	Name   string   // canonical, as HTTP/1.1 answers carry it
	Lower  string   // lower case, as Envoy's gRPC answers carry it (worked out at compile)
	Values []string // one value; a slice so the handler can set it without allocating
}

// BlankForwardHeaders are every forwardClaims header with an empty value: what
// an allow without an identity (a public rule) forwards, so that the proxy
// still overwrites or deletes a client's own copy. Shared; never modify.
func (p *Policy) BlankForwardHeaders() []Header { return p.shape.blank }

// verifyError is a token that is refused, with the reason for metrics and the
// description for WWW-Authenticate's error_description.
type verifyError struct {
	reason Reason
	desc   string
}

func refuse(r Reason, desc string) *verifyError { return &verifyError{reason: r, desc: desc} }

// verify checks a token's signature against the keys chosen at compile time, then
// its claims, and resolves the identity. No key set is searched: the (kid, alg)
// index of the policy's sets finds the candidate keys.
func (p *Policy) verify(token string, now time.Time) (*Identity, *verifyError) {
	signed, verr := p.verifySignature(token)
	if verr != nil {
		return nil, verr
	}
	claims, err := decodeClaims(signed.payload)
	if err != nil {
		return nil, refuse(ReasonMalformed, "token payload is not a JSON object")
	}
	expires, verr := p.checkTimes(claims, now)
	if verr != nil {
		return nil, verr
	}
	if verr := p.checkIssuerAudience(claims, signed.own); verr != nil {
		return nil, verr
	}
	id := p.newIdentity(claims)
	id.Own = signed.own
	id.Expires = expires
	id.remote, id.remoteGen = signed.remote, signed.remoteGen
	return id, nil
}

// signedPayload is a payload whose signature verified, and the key that did it.
type signedPayload struct {
	payload   []byte
	own       bool         // the policy's own signing key: a token its sign-in issued
	remote    *keys.Remote // the jwksURL set that verified it, if one did
	remoteGen uint64       // that set's generation, read before its keys
}

// verifySignature finds the token's candidate keys by its header's kid and alg
// and returns the payload the first of them verifies. The alg must be one the
// policy accepts; never "none". The token is split, decoded and its header
// parsed once, whatever the number of candidate keys.
func (p *Policy) verifySignature(token string) (signedPayload, *verifyError) {
	if len(token) > MaxTokenSize {
		return signedPayload{}, refuse(ReasonTooLarge, "token is larger than 16 KiB")
	}
	tok, ok := splitCompact(token)
	if !ok {
		return signedPayload{}, refuse(ReasonMalformed, "token is not a compact JWS")
	}
	alg, algName, kid, verr := p.acceptedHeader(tok.header)
	if verr != nil {
		return signedPayload{}, verr
	}
	// jwa looks names up exactly, so this holds; jws.VerifyCompactFast checked
	// it too, and jwsbb.Verify is given alg's own name.
	tok.unverifiable = tok.unverifiable || alg.String() != algName
	trial := keyTrial{tok: &tok, alg: alg}
	var signed signedPayload
	// The policy's own signing keys verify only its own algorithm; listed keys
	// were narrowed to spec.jwt.algorithms at compile time.
	switch {
	case trial.try(p.own.Find(kid, alg)):
		signed.own = true
	case trial.try(p.listed.Find(kid, alg)):
	case slices.Contains(p.algs, algName):
		signed.remote, signed.remoteGen = p.tryRemotes(&trial, kid)
	}
	if !trial.verified {
		if trial.tried == 0 {
			return signedPayload{}, refuse(ReasonUnknownKey, "no key of this policy matches the token's kid and alg")
		}
		return signedPayload{}, refuse(ReasonBadSignature, "signature does not verify")
	}
	signed.payload = trial.payload
	return signed, nil
}

// compactJWS is a compact JWS split, base64url-decoded and its header parsed,
// once for all the keys it is tried against.
type compactJWS struct {
	header       jwsbb.Header
	signingInput []byte // header.payload as sent: what the signature covers
	payload      []byte // decoded
	signature    []byte // decoded
	// unverifiable: the header names crit or b64, which jws.VerifyCompactFast
	// (the path this one replaces) refuses to verify with any key, or an alg
	// that is not the name of the algorithm it looks up.
	unverifiable bool
	// lenient is the whole token when a segment is not plain unpadded
	// base64url: jwx also decodes padded and standard-alphabet segments, seen
	// in the wild, so such a token goes through jws.VerifyCompactFast for
	// every key, as all tokens did before.
	lenient []byte
}

// splitCompact splits a compact JWS into its three segments and decodes them,
// in one allocation. ok is false when it does not have three segments.
func splitCompact(token string) (c compactJWS, ok bool) {
	enc := base64.RawURLEncoding
	buf := make([]byte, len(token), len(token)+enc.DecodedLen(len(token)))
	copy(buf, token)
	hdr, payload, sig, err := jwsbb.SplitCompact(buf)
	if err != nil {
		return c, false
	}
	c.signingInput = buf[:len(hdr)+1+len(payload)]
	dst := buf[len(buf):cap(buf)]
	decoded := [3][]byte{}
	for i, seg := range [3][]byte{hdr, payload, sig} {
		n, err := enc.Decode(dst, seg)
		if err != nil {
			c.header, c.lenient = jwsbb.HeaderParseCompact(hdr), buf
			return c, true
		}
		decoded[i], dst = dst[:n:n], dst[n:]
	}
	c.header, c.payload, c.signature = jwsbb.HeaderParse(decoded[0]), decoded[1], decoded[2]
	c.unverifiable = jwsbb.HeaderHas(c.header, jws.CriticalKey) || jwsbb.HeaderHas(c.header, "b64")
	return c, true
}

// acceptedHeader reads the compact JWS header's alg (and its name) and kid; the
// alg must be the policy's own signing algorithm or one of spec.jwt.algorithms.
func (p *Policy) acceptedHeader(h jwsbb.Header) (alg jwa.SignatureAlgorithm, algName, kid string, verr *verifyError) {
	algName, err := jwsbb.HeaderGetString(h, "alg")
	if err != nil {
		return alg, "", "", refuse(ReasonMalformed, "token header has no alg")
	}
	kid, _ = jwsbb.HeaderGetString(h, "kid")
	alg, ok := jwa.LookupSignatureAlgorithm(algName)
	ownAlg := p.Login != nil && p.Login.Signer.Alg == alg
	if !ok || algName == "none" || !(ownAlg || slices.Contains(p.algs, algName)) {
		return alg, "", "", refuse(ReasonAlgorithm, "algorithm is not accepted")
	}
	return alg, algName, kid, nil
}

// keyTrial tries candidate keys on one token, at most maxCandidateKeys in all,
// and keeps the payload of the first that verifies.
type keyTrial struct {
	tok      *compactJWS
	alg      jwa.SignatureAlgorithm
	tried    int
	verified bool
	payload  []byte
}

func (t *keyTrial) try(cands []keys.Key) bool {
	for _, k := range cands {
		if t.tried >= maxCandidateKeys {
			return false
		}
		t.tried++
		if t.verify(k) {
			t.verified = true
			return true
		}
	}
	return false
}

// verify checks the token's signature with one key. The key must allow the
// alg (the index it came from says so; checked again, as jws.VerifyCompactFast
// did): an HMAC secret never verifies an RS256 token, nor an RSA key an HS256 one.
func (t *keyTrial) verify(k keys.Key) bool {
	if t.tok.lenient != nil {
		pl, err := jws.VerifyCompactFast(k.Key, t.tok.lenient, t.alg)
		t.payload = pl
		return err == nil
	}
	if t.tok.unverifiable || !k.Allows(t.alg) {
		return false
	}
	if jwsbb.Verify(k.Key, t.alg.String(), t.tok.signingInput, t.tok.signature) != nil {
		return false
	}
	t.payload = t.tok.payload
	return true
}

// tryRemotes tries the current keys of each jwksURL set; a kid no set holds
// asks that set for a refresh (rate-limited), since a new key may have been
// published. It returns the set that verified the token and its generation.
func (p *Policy) tryRemotes(trial *keyTrial, kid string) (*keys.Remote, uint64) {
	for _, r := range p.remotes {
		// The generation is read first: if the set changes in between, the
		// entry is cached under the older number and dropped at its next use.
		gen := r.Generation()
		set := r.Current()
		if set == nil {
			continue
		}
		cands := set.Find(kid, trial.alg)
		if kid != "" && !set.HasKID(kid) {
			r.RequestRefresh()
		}
		if trial.try(cands) {
			return r, gen
		}
	}
	return nil, 0
}

// checkTimes checks exp (required), nbf and iat against now, each with the
// policy's leeway, and returns when the token stops being accepted.
func (p *Policy) checkTimes(claims map[string]any, now time.Time) (time.Time, *verifyError) {
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return time.Time{}, refuse(ReasonNoExpiry, "token has no valid exp")
	}
	expires := exp.Add(p.leeway)
	if !now.Before(expires) {
		return time.Time{}, refuse(ReasonExpired, "token is expired")
	}
	if v, present := claims["nbf"]; present {
		nbf, ok := numericDate(v)
		if !ok {
			return time.Time{}, refuse(ReasonMalformed, "nbf is not a number")
		}
		if now.Add(p.leeway).Before(nbf) {
			return time.Time{}, refuse(ReasonNotYetValid, "token is not valid yet")
		}
	}
	if v, present := claims["iat"]; present {
		iat, ok := numericDate(v)
		if !ok {
			return time.Time{}, refuse(ReasonMalformed, "iat is not a number")
		}
		if now.Add(p.leeway).Before(iat) {
			return time.Time{}, refuse(ReasonNotYetValid, "token is issued in the future")
		}
	}
	return expires, nil
}

// checkIssuerAudience: a token of the policy's own sign-in carries its issuer
// and the policy's key in aud; any other token spec.jwt's issuer and one of
// its audiences, when those are set.
func (p *Policy) checkIssuerAudience(claims map[string]any, own bool) *verifyError {
	iss, _ := claims["iss"].(string)
	if own {
		if iss != p.Login.Issuer {
			return refuse(ReasonIssuer, "issuer is not accepted")
		}
		if !audienceHas(claims["aud"], []string{p.Key}) {
			return refuse(ReasonAudience, "audience is not accepted")
		}
		return nil
	}
	if p.issuer != "" && iss != p.issuer {
		return refuse(ReasonIssuer, "issuer is not accepted")
	}
	if len(p.audiences) > 0 && !audienceHas(claims["aud"], p.audiences) {
		return refuse(ReasonAudience, "audience is not accepted")
	}
	return nil
}

// newIdentity resolves the claims the policy reads.
func (p *Policy) newIdentity(claims map[string]any) *Identity {
	id := &Identity{claims: make([]claimValue, len(p.slots))}
	id.Subject, _ = claims["sub"].(string)
	id.Session, _ = claims["sid"].(string)
	id.TokenID, _ = claims["jti"].(string)
	for i, path := range p.slots {
		id.claims[i] = newClaimValue(resolveClaim(claims, path))
	}
	if len(p.forward) == 0 {
		return id
	}
	// One allocation for the headers, one for their values.
	id.Headers = make([]Header, len(p.forward))
	values := make([]string, len(p.forward))
	for i, f := range p.forward {
		v, ok := resolveClaim(claims, p.slots[f.slot])
		render := headerValue
		if f.json {
			render = headerJSON
		}
		values[i] = render(v, ok)
		id.Headers[i] = Header{Name: f.header, Lower: f.lower, Values: values[i : i+1 : i+1]}
	}
	return id
}

// decodeClaims decodes a payload that must be one JSON object (trailing space
// aside), numbers kept as written (json.Number). It decodes into an any, not a
// map[string]any: encoding/json then builds the map without reflection, the
// same map with the same values (FuzzDecodeClaims compares the two). As
// before, dec.More lets one stray "}" or "]" after the object through; only
// the token's signer can put it there.
func decodeClaims(payload []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok || dec.More() {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// numericDate reads a NumericDate claim (seconds since the epoch, RFC 7519 2).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// audienceHas reports whether aud (a string or an array of strings) holds any of want.
func audienceHas(aud any, want []string) bool {
	switch a := aud.(type) {
	case string:
		return slices.Contains(want, a)
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}
