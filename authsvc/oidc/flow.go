package oidc

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// FlowCookiePrefix starts the name of every flow cookie. Each flow has its own
// cookie (parallel tabs each run their own flow), named by its state.
const FlowCookiePrefix = "jwtgate_oidc_"

// FlowTTL is how long a person has at the provider before the flow expires.
const FlowTTL = 10 * time.Minute

// Flow is what the browser carries, sealed, between /jwtgate/oidc/start and
// the callback. Nothing of it is readable or changeable without the key.
type Flow struct {
	State       string `json:"s"`
	Nonce       string `json:"n"`
	Verifier    string `json:"v"` // PKCE code verifier
	Redirect    string `json:"r"` // rd, already checked
	RedirectURI string `json:"u"` // the redirect_uri sent to the provider
	Expires     int64  `json:"e"` // unix seconds
}

// ErrFlow: the flow cookie is missing, expired, or was not sealed by this
// policy's key (another policy, a forged or changed value).
var ErrFlow = errors.New("the sign-in flow is unknown, expired or from another site")

// NewFlow makes a fresh flow: 256-bit state and nonce, a PKCE verifier.
func NewFlow(redirect, redirectURI string, now time.Time) (Flow, error) {
	state, err := random(32)
	if err != nil {
		return Flow{}, err
	}
	nonce, err := random(32)
	if err != nil {
		return Flow{}, err
	}
	return Flow{
		State: state, Nonce: nonce, Verifier: oauth2.GenerateVerifier(),
		Redirect: redirect, RedirectURI: redirectURI, Expires: now.Add(FlowTTL).Unix(),
	}, nil
}

func random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// CookieName is the name of the flow cookie of state: a prefix and a hash
// of the state, so the callback finds its own flow among parallel ones.
func CookieName(state string) string {
	sum := sha256.Sum256([]byte("jwtgate oidc flow cookie|" + state))
	return FlowCookiePrefix + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// maxSealed bounds a flow cookie's value before it is decoded.
const maxSealed = 2048

// Seal encrypts and authenticates f for policy (AES-256-GCM). The policy key
// is authenticated too: one policy's cookie does not open at another.
func Seal(key []byte, policy string, f Flow) (string, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(f)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := aead.Seal(nonce, nonce, plain, additional(policy))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open decrypts a flow cookie of policy. Any failure is ErrFlow (wrapped).
func Open(key []byte, policy, value string, now time.Time) (Flow, error) {
	if value == "" || len(value) > maxSealed {
		return Flow{}, ErrFlow
	}
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return Flow{}, fmt.Errorf("%w: not base64url", ErrFlow)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return Flow{}, err
	}
	if len(raw) < aead.NonceSize()+aead.Overhead() {
		return Flow{}, fmt.Errorf("%w: too short", ErrFlow)
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], additional(policy))
	if err != nil {
		return Flow{}, fmt.Errorf("%w: not sealed by this policy's key", ErrFlow)
	}
	var f Flow
	if err := json.Unmarshal(plain, &f); err != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return Flow{}, fmt.Errorf("%w: malformed", ErrFlow)
	}
	if now.Unix() > f.Expires {
		return Flow{}, fmt.Errorf("%w: expired", ErrFlow)
	}
	return f, nil
}

func additional(policy string) []byte { return []byte("jwtgate oidc flow v1|" + policy) }

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, errors.New("the flow key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
