package login

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/authsvc/users"
)

// /jwtgate/login: the form (GET), silent renewal (GET with a refresh cookie)
// and sign-in (POST).

func (h *Handler) loginPage(x *exchange) {
	l := x.p.Login
	rd := SafeRedirect(RedirectParam(x.r.URL.RawQuery), l.AllowedRedirectHosts)
	if c, err := x.r.Cookie(policy.RefreshCookie); err == nil && c.Value != "" && x.r.Method == http.MethodGet {
		// Silent renewal: nginx sent the browser here because its access token
		// ran out; the refresh cookie renews it without a password.
		access, refresh, _, err := h.renew(x, c.Value)
		switch {
		case err == nil:
			setTokenCookies(x.w, l, access, refresh)
			setPageHeaders(x.w.Header())
			http.Redirect(x.w, x.r, rd, http.StatusSeeOther)
			return
		case storeTrouble(err):
			// The refresh token may well be good: keep the cookies, and let the
			// browser come back when the store answers again.
			unavailablePage(x)
			return
		}
		clearTokenCookies(x.w, l)
	}
	if l.OIDC != nil && l.Users == nil && x.r.Method == http.MethodGet {
		// Only the provider signs people in here: straight there.
		setPageHeaders(x.w.Header())
		http.Redirect(x.w, x.r, oidcStartURL(rd), http.StatusFound)
		return
	}
	h.showForm(x, http.StatusOK, rd, "", "")
}

func (h *Handler) showForm(x *exchange, status int, rd, username, message string) {
	token, err := h.issueCSRF(x.w, x.p)
	if err != nil {
		h.log.Error("cannot make the sign-in form", "policy", x.p.Key, "error", err)
		writePage(x.w, http.StatusInternalServerError, "message", pageData{Title: "Error", Message: "The sign-in form is unavailable."}, nil)
		return
	}
	d := pageData{Title: "Sign in", Host: x.host, Error: message, Redirect: rd, CSRF: token, Username: username, Form: x.p.Login.Users != nil}
	if o := x.p.Login.OIDC; o != nil {
		d.ProviderButton, d.ProviderStart = o.DisplayName, oidcStartURL(rd)
	}
	writePage(x.w, status, "login", d, x.p.Login.AllowedRedirectHosts)
}

// signIn checks the credentials of a POST and, when they are right, starts a
// session and hands over its tokens.
func (h *Handler) signIn(x *exchange) {
	x.r.Body = http.MaxBytesReader(x.w, x.r.Body, maxBody)
	creds, rd, ok := x.ans.credentials(x)
	if !ok {
		return
	}
	user, res, wait := h.authenticate(x, creds.Username, creds.Password)
	switch res {
	case ResultSuccess:
	case ResultRateLimited, ResultBusy:
		secs := int((wait + time.Second - 1) / time.Second)
		x.w.Header().Set("Retry-After", strconv.Itoa(secs))
		msg := "Too many sign-in attempts. Try again in " + strconv.Itoa(secs) + " seconds."
		if res == ResultBusy {
			msg = "The sign-in service is busy. Try again in a moment."
		}
		x.ans.tooManyAttempts(x, rd, msg)
		return
	default:
		x.ans.wrongCredentials(x, rd, creds)
		return
	}
	access, refresh, ok := h.startSession(x, user)
	if !ok {
		x.ans.unavailable(x)
		return
	}
	x.ans.signedIn(x, rd, access, refresh)
}

// startSession starts the session of a user who signed in and signs its first
// access token. false: no session could be started (the cause is logged).
func (h *Handler) startSession(x *exchange, user *users.User) (access, refresh string, ok bool) {
	ctx := x.r.Context()
	client := ClientAddr(x.r, h.o.TrustedProxies).String()
	s, refresh, err := h.o.Sessions.Create(ctx, session.New{Policy: x.p.Key, User: user.Name, Roles: user.Roles, TTL: x.p.Login.RefreshTTL,
		MaxLifetime: x.p.Login.SessionMaxLifetime, Credential: user.Fingerprint()})
	if err != nil {
		// The password was right; the store could not take the session (Redis
		// unreachable, or full). Fail closed, say so plainly, log the cause.
		h.o.Metrics.count(x.p.Key, ResultUnavailable)
		h.log.Error("sign-in refused: the session store cannot start a session", "policy", x.p.Key, "client", client, "user", user.Name, "error", err)
		return "", "", false
	}
	access, err = issueAccess(x.p, s, user.Roles, x.now)
	if err != nil {
		h.log.Error("cannot sign an access token", "policy", x.p.Key, "user", user.Name, "error", err)
		// Nobody holds this session's token: end it rather than leave it.
		if err := h.o.Sessions.End(context.WithoutCancel(ctx), x.p.Key, s.ID); err != nil {
			h.log.Error("cannot end the session nobody holds a token for; it expires on its own", "policy", x.p.Key, "user", user.Name, "session", s.ID, "error", err)
		}
		h.o.Metrics.count(x.p.Key, ResultUnavailable)
		return "", "", false
	}
	h.o.Metrics.count(x.p.Key, ResultSuccess)
	h.log.Info("signed in", "policy", x.p.Key, "client", client, "user", user.Name, "session", s.ID, "signin_method", MethodPassword)
	h.record(ctx, session.Event{Kind: session.EventIssued, Policy: x.p.Key, User: user.Name, Session: s.ID, By: session.ByUser, Client: client, Expires: s.Expires, Method: MethodPassword})
	return access, refresh, true
}

// authenticate checks a user name and password. Known and unknown users cost
// one bcrypt comparison each, at the same cost, and take the same path after
// it. It returns the result (a Result* constant) and, for a 429, the wait.
func (h *Handler) authenticate(x *exchange, username, password string) (*users.User, string, time.Duration) {
	client := ClientAddr(x.r, h.o.TrustedProxies)
	addrKey, uKey := addressKey(client), userKey(x.p.Key, username)
	if wait := h.limiter.reserve(x.now, addrKey, h.o.Limits.FreePerAddress, uKey, h.o.Limits.FreePerUser); wait > 0 {
		h.o.Metrics.count(x.p.Key, ResultRateLimited)
		h.log.Warn("sign-in throttled", "policy", x.p.Key, "client", client.String(), "user", printable(username), "retry_after", int(wait.Seconds()+0.999))
		return nil, ResultRateLimited, wait
	}
	ok := false
	var user *users.User
	if username != "" && password != "" && len(username) <= maxUsername && len(password) <= maxPassword {
		select {
		case h.sem <- struct{}{}:
		default:
			// Not checked: not a failure.
			h.limiter.release(addrKey, h.o.Limits.FreePerAddress)
			h.limiter.release(uKey, h.o.Limits.FreePerUser)
			h.o.Metrics.count(x.p.Key, ResultBusy)
			return nil, ResultBusy, time.Second
		}
		u, known := x.p.Login.Users.Lookup(username)
		hash := h.dummyHash(x.p.Login.Users.MaxCost())
		if known {
			hash = u.Hash
		}
		if h.beforeCompare != nil {
			h.beforeCompare()
		}
		err := bcrypt.CompareHashAndPassword(hash, []byte(password))
		<-h.sem
		ok = err == nil && known
		user = u
	}
	if !ok {
		// The failure was counted by reserve.
		h.o.Metrics.count(x.p.Key, ResultFailure)
		// One line per failure, for fail2ban; client before user, so that a user
		// name can never place a forged address where the filter looks.
		h.log.Warn("sign-in failed", "policy", x.p.Key, "client", client.String(), "user", printable(username))
		return nil, ResultFailure, 0
	}
	h.limiter.release(addrKey, h.o.Limits.FreePerAddress)
	h.limiter.clear(uKey)
	// ResultSuccess is counted once the session exists (signIn).
	return user, ResultSuccess, 0
}

// dummyHash returns a hash of a random password at cost, made once per cost.
func (h *Handler) dummyHash(cost int) []byte {
	if cost < bcrypt.MinCost {
		cost = defaultDummyCost
	}
	h.dummyMu.Lock()
	defer h.dummyMu.Unlock()
	if d, ok := h.dummies[cost]; ok {
		return d
	}
	pw, _ := session.NewToken()
	d, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		d, _ = bcrypt.GenerateFromPassword([]byte(pw), defaultDummyCost)
	}
	h.dummies[cost] = d
	return d
}

// WarmUp makes the comparison hashes for unknown users of every policy in the
// current snapshot, so that the first sign-in of an unknown user is not slower
// than that of a known one. Call it after each reload (it is cheap when nothing
// changed).
func (h *Handler) WarmUp() {
	for _, p := range h.o.Store.Load().Policies() {
		if p.Login != nil {
			h.dummyHash(p.Login.Users.MaxCost())
		}
	}
}
