// Package session keeps the sign-in sessions of login policies: who signed in,
// to which policy, until when, and the hashes of the refresh tokens that renew
// them. A refresh token is an opaque random value, never a JWT; the store keeps
// only its SHA-256, so a copy of the store renews nothing.
//
// Each refresh rotates the token. The token it replaces stays usable for a short
// grace period (parallel tabs send the same cookie at once); a use after that is
// taken as a stolen token being replayed, and ends the whole session.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// DefaultGrace is how long a rotated refresh token stays usable.
const DefaultGrace = 10 * time.Second

// Errors of a Store. Callers answer ErrInvalid and ErrReused with 401 and never
// tell the client which one it was; ErrUnavailable and ErrFull with 503.
var (
	// ErrInvalid: the token is unknown, expired, or belongs to another policy.
	ErrInvalid = errors.New("refresh token is not valid")
	// ErrReused: the token was rotated more than the grace period ago and came
	// back; the session it belonged to has been ended.
	ErrReused = errors.New("refresh token was used after it had been replaced: the session is ended")
	// ErrFull: the store holds as many sessions as it may.
	ErrFull = errors.New("session store is full")
	// ErrUnavailable: a shared store cannot be reached (or answered with an
	// error); nothing was changed. It says nothing about the token or the
	// session: callers answer 503 and must not sign the user out for it. Stores
	// return errors wrapping it (test with errors.Is).
	ErrUnavailable = errors.New("session store is unavailable")
)

// New describes a session to create.
type New struct {
	Policy string // namespace/name
	User   string
	Roles  []string
	TTL    time.Duration // refresh token lifetime; each rotation extends the session by it
	// MaxLifetime, when set, is how long after Created the session may still
	// be renewed; the caller refuses (and ends) it past that. Each session
	// carries its own (a policy's sessionMaxLifetime, or a provider's limit).
	MaxLifetime time.Duration
	// Credential is a fingerprint of the credential the user signed in with
	// (users.User.Fingerprint; never the password hash itself): when the
	// user's current one differs, renewal ends the session.
	Credential string
	// Origin says where the session began; zero for a password sign-in.
	Origin Origin
}

// Origin says how a session began when it was not at the password form.
type Origin struct {
	// Method is "oidc" for a session from an OpenID provider; "" is a password sign-in.
	Method string `json:"method,omitempty"`
	// Subject and SID are the provider's sub and sid claims, for the records.
	Subject string `json:"provider_sub,omitempty"`
	SID     string `json:"provider_sid,omitempty"`
	// IDToken is the provider's ID token: the id_token_hint of RP-initiated logout.
	IDToken string `json:"id_token,omitempty"`
}

// MethodOIDC is Origin.Method of a session from an OpenID provider.
const MethodOIDC = "oidc"

// OnceStore records single-use values (the state of an OpenID sign-in) so
// that each is accepted once across every replica sharing the store.
type OnceStore interface {
	// UseOnce records value for policy until until; it reports false when the
	// value was recorded before (a replay). Errors wrap ErrUnavailable.
	UseOnce(ctx context.Context, policy, value string, until time.Time) (bool, error)
}

// Session is the record of one sign-in. Values returned by a Store are copies.
type Session struct {
	ID        string
	Policy    string
	User      string
	Roles     []string
	TTL       time.Duration
	Created   time.Time
	Refreshed time.Time // last rotation; zero before the first
	Rotations int
	Expires   time.Time // the current refresh token's end

	MaxLifetime time.Duration // see New; 0: none
	Credential  string        // see New; "": not recorded
	Origin      Origin
}

// PastMaxLifetime reports whether the session may no longer be renewed at now.
func (s Session) PastMaxLifetime(now time.Time) bool {
	return s.MaxLifetime > 0 && !now.Before(s.Created.Add(s.MaxLifetime))
}

// Store keeps sessions. Implementations are safe for concurrent use; the
// in-memory one serves a single replica, a shared one (Redis) many. A store
// that cannot reach its backend fails with an error wrapping ErrUnavailable.
type Store interface {
	// Create starts a session and returns it with its first refresh token.
	Create(ctx context.Context, n New) (Session, string, error)
	// Rotate takes a refresh token of policy and returns the session with a
	// new refresh token, extending the session by its TTL. It returns
	// ErrInvalid or ErrReused (having ended the session) when it refuses; with
	// ErrReused it also returns the session it ended (at least ID, Policy and
	// User), for the token records. A store that must confirm the end with
	// its replicas and cannot returns an error wrapping both ErrReused and
	// ErrUnavailable: callers keep the records of the reuse and answer 503.
	Rotate(ctx context.Context, policy, refreshToken string) (Session, string, error)
	// EndByToken ends the session a refresh token of policy belongs to
	// (sign-out), and returns it; ErrInvalid when there is none. An error
	// wrapping ErrUnavailable means the end is not acknowledged (the store
	// could not be reached, or, replicated, could not confirm it): callers
	// answer 503 and the client tries again.
	EndByToken(ctx context.Context, policy, refreshToken string) (Session, error)
	// End ends one session; ending an absent session is no error.
	End(ctx context.Context, policy, sessionID string) error
	// EndUser ends every session of user in policy and says how many.
	EndUser(ctx context.Context, policy, user string) (int, error)
	// SessionAlive reports whether the session exists and has not expired
	// (policy.SessionChecker, for spec.login.revocation: strict). It must be
	// fast: decisions call it.
	SessionAlive(policy, sessionID string) bool
}

// tokenHash is what a store keeps of a refresh token.
type tokenHash = [sha256.Size]byte

func hashToken(token string) tokenHash { return sha256.Sum256([]byte(token)) }

// NewToken returns a fresh refresh token: 256 random bits, base64url without
// padding (43 characters).
func NewToken() (string, error) { return randomString(32) }

// NewID returns a fresh session or token id: 128 random bits, base64url.
func NewID() (string, error) { return randomString(16) }

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// wellFormed rejects values that cannot be tokens before any lookup.
func wellFormed(token string) bool {
	if len(token) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}
