package login

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// answers writes the answers of one exchange in the form its client asked for:
// HTML pages with cookies for browsers (pageAnswers), JSON bodies for API
// clients (jsonAnswers). The handler chooses one per request (answersFor); the
// endpoints never ask which.
type answers interface {
	// noSignInPolicy answers a host that no sign-in policy serves: 403.
	noSignInPolicy(x *exchange)
	// refused answers a request refused before any password is looked at.
	refused(x *exchange, what, desc string)

	// credentials reads the user name and password of a sign-in, and the
	// redirect after it. false: it has answered already.
	credentials(x *exchange) (c credentials, rd string, ok bool)
	// tooManyAttempts answers 429; Retry-After is already set.
	tooManyAttempts(x *exchange, rd, msg string)
	// wrongCredentials answers 401 to a failed sign-in.
	wrongCredentials(x *exchange, rd string, c credentials)
	// signedIn hands over the tokens of a new session.
	signedIn(x *exchange, rd, access, refresh string)
	// unavailable answers 503 when the session store cannot serve now.
	unavailable(x *exchange)

	// refreshToken reads the refresh token of a renewal. false: it has
	// answered already.
	refreshToken(x *exchange) (string, bool)
	// renewed hands over the rotated tokens.
	renewed(x *exchange, access, refresh string)
	// renewRefused answers a refresh token that is not valid: 401.
	renewRefused(x *exchange)
	// renewUnavailable answers a renewal the session store cannot serve now.
	renewUnavailable(x *exchange)

	// logoutToken reads the refresh token whose session a sign-out ends (""
	// when there is none to end). false: it has answered already.
	logoutToken(x *exchange) (string, bool)
	// signedOut answers a sign-out; ended is false when the store could not
	// end the session.
	signedOut(x *exchange, ended bool)
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

// jsonAnswers answers API clients: JSON bodies, tokens in the body, never
// cookies.
type jsonAnswers struct{}

func (jsonAnswers) noSignInPolicy(x *exchange) {
	writeJSONError(x.w, http.StatusForbidden, "invalid_request", "No sign-in policy serves this host.")
}

func (jsonAnswers) refused(x *exchange, _, desc string) {
	writeJSONError(x.w, http.StatusBadRequest, "invalid_request", desc)
}

func (a jsonAnswers) credentials(x *exchange) (credentials, string, bool) {
	var c credentials
	if !originAllowed(x) {
		x.h.refuse(x, "origin", "Origin is not allowed")
		return c, "", false
	}
	if err := json.NewDecoder(x.r.Body).Decode(&c); err != nil {
		x.h.refuse(x, "body", "the body must be a JSON object with username and password")
		return c, "", false
	}
	return c, "/", true
}

func (jsonAnswers) tooManyAttempts(x *exchange, _, msg string) {
	writeJSONError(x.w, http.StatusTooManyRequests, "too_many_requests", msg)
}

func (jsonAnswers) wrongCredentials(x *exchange, _ string, _ credentials) {
	writeJSONError(x.w, http.StatusUnauthorized, "invalid_grant", "user name or password is wrong")
}

func (jsonAnswers) signedIn(x *exchange, _, access, refresh string) {
	writeTokens(x.w, x.p.Login, access, refresh)
}

func (jsonAnswers) unavailable(x *exchange) {
	x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
	writeJSONError(x.w, http.StatusServiceUnavailable, "temporarily_unavailable", "sign-in is unavailable for a moment; try again shortly")
}

func (jsonAnswers) refreshToken(x *exchange) (string, bool) { return readRefreshBody(x) }

func (jsonAnswers) renewed(x *exchange, access, refresh string) {
	writeTokens(x.w, x.p.Login, access, refresh)
}

func (jsonAnswers) renewRefused(x *exchange) {
	writeJSONError(x.w, http.StatusUnauthorized, "invalid_grant", "refresh token is not valid")
}

func (a jsonAnswers) renewUnavailable(x *exchange) { a.unavailable(x) }

func (jsonAnswers) logoutToken(x *exchange) (string, bool) { return readRefreshBody(x) }

func (jsonAnswers) signedOut(x *exchange, ended bool) {
	if !ended {
		x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
		writeJSONError(x.w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session could not be ended now; try again in a moment")
		return
	}
	setPageHeaders(x.w.Header())
	x.w.WriteHeader(http.StatusNoContent)
}

// readRefreshBody reads {"refresh_token": ...}; it answers 400 when the body
// holds none.
func readRefreshBody(x *exchange) (string, bool) {
	x.r.Body = http.MaxBytesReader(x.w, x.r.Body, maxBody)
	var b refreshBody
	if err := json.NewDecoder(x.r.Body).Decode(&b); err != nil || b.RefreshToken == "" {
		writeJSONError(x.w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object with refresh_token")
		return "", false
	}
	return b.RefreshToken, true
}

func writeTokens(w http.ResponseWriter, l *policy.Login, access, refresh string) {
	writeJSON(w, http.StatusOK, tokenAnswer{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int(l.AccessTTL / time.Second)})
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the status is sent; a client gone away is not ours to report
}
