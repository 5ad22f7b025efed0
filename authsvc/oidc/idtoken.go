package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// maxIDToken bounds an ID token before it is parsed.
const maxIDToken = 16 << 10

// asymmetric are the algorithms an ID token may be signed with. HS* would
// make the client secret a signing key; "none" is never accepted.
var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Expect is what an ID token must say.
type Expect struct {
	Issuer   string
	ClientID string
	Nonce    string
	Leeway   time.Duration
	Now      time.Time
	// Algs narrows the accepted algorithms (the provider's
	// id_token_signing_alg_values_supported); empty: every asymmetric one.
	Algs []string
}

// ErrUnknownKey: no key of the provider's JWKS verifies the ID token's kid
// and alg; the caller may ask the JWKS for a refresh.
var ErrUnknownKey = errors.New("no key of the provider's JWKS matches the ID token's kid and alg")

// VerifyIDToken checks an ID token (OpenID Connect Core 1.0, 3.1.3.7) and
// returns its claims: signature by a key of set, iss, aud holding the client
// (and azp naming it when there are several audiences, or whenever present),
// exp and iat (with leeway), and nonce. Every failure is an error that says
// which check failed and never quotes the token.
func VerifyIDToken(raw string, set *keys.Set, e Expect) (map[string]any, error) {
	if raw == "" {
		return nil, errors.New("the provider answered without an ID token")
	}
	if len(raw) > maxIDToken {
		return nil, fmt.Errorf("the ID token is larger than %d bytes", maxIDToken)
	}
	algs := asymmetric
	if len(e.Algs) > 0 {
		algs = slices.DeleteFunc(slices.Clone(asymmetric), func(a string) bool { return !slices.Contains(e.Algs, a) })
	}
	found := false
	provider := jws.KeyProviderFunc(func(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
		hdr := sig.ProtectedHeaders()
		alg, ok := hdr.Algorithm()
		if !ok || !slices.Contains(algs, alg.String()) {
			return fmt.Errorf("the ID token's alg %q is not accepted (use one of %s)", alg.String(), strings.Join(algs, ", "))
		}
		kid, _ := hdr.KeyID()
		for _, k := range set.Find(kid, alg) {
			found = true
			sink.Key(alg, k.Key)
		}
		return nil
	})
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKeyProvider(provider),
		jwt.WithValidate(true),
		jwt.WithIssuer(e.Issuer),
		jwt.WithAudience(e.ClientID),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithAcceptableSkew(e.Leeway),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return e.Now })),
	)
	if err != nil {
		if !found && !errors.Is(err, jwt.ValidateError()) {
			return nil, ErrUnknownKey
		}
		return nil, fmt.Errorf("the ID token fails a check: %s", describe(err))
	}
	aud, _ := tok.Audience()
	var azp string
	_ = tok.Get("azp", &azp)
	if (len(aud) > 1 || azp != "") && azp != e.ClientID {
		return nil, errors.New("the ID token has several audiences and its azp does not name this client")
	}
	var nonce string
	if err := tok.Get("nonce", &nonce); err != nil || nonce == "" || nonce != e.Nonce {
		return nil, errors.New("the ID token's nonce is not the one this sign-in sent")
	}
	// The claims as the rest of jwtgate reads them: numbers as json.Number.
	msg, err := jws.Parse([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("the ID token fails a check: %s", describe(err))
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(msg.Payload()))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, errors.New("the ID token's claims are not a JSON object")
	}
	return claims, nil
}

// describe is a jwx error without the token in it.
func describe(err error) string {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return "it has expired (exp)"
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return "it was issued in the future (iat)"
	case errors.Is(err, jwt.InvalidIssuerError()):
		return "it is from another issuer (iss)"
	case errors.Is(err, jwt.InvalidAudienceError()):
		return "it is for another client (aud)"
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return "it is not valid yet (nbf)"
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return "a required claim (exp, iat) is missing"
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
