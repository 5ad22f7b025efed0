// Package login serves the pages of policies that sign people in:
// /jwtgate/login (form, sign-in, silent renewal), /jwtgate/refresh,
// /jwtgate/logout and /jwtgate/jwks.json, each for the policy chosen by the
// request's Host.
package login

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/crypto/bcrypt"

	"github.com/jwtgate/jwtgate/authsvc/admin"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/session"
	"github.com/jwtgate/jwtgate/authsvc/users"
)

// The paths this handler answers.
const (
	LoginPath   = "/jwtgate/login"
	RefreshPath = "/jwtgate/refresh"
	LogoutPath  = "/jwtgate/logout"
	JWKSPath    = "/jwtgate/jwks.json"
)

const (
	maxBody     = 16 << 10
	maxUsername = 256
	maxPassword = 1024
	// defaultDummyCost is the cost of the hash unknown users are compared
	// against when a policy has no users at all.
	defaultDummyCost = 12
	// retryAfterUnavailable is the Retry-After, in seconds, of the 503 answered
	// while the session store cannot be reached.
	retryAfterUnavailable = 5
)

// Options wire the sign-in pages.
type Options struct {
	Store    *policy.Store
	Sessions session.Store
	// Records keeps the token records (issued, refreshed, revoked, refused) and
	// writes their audit lines; nil: none are kept or written.
	Records admin.Records
	Metrics *Metrics     // may be nil
	Log     *slog.Logger // may be nil
	// TrustedProxies are the peers whose X-Forwarded-For / X-Real-IP name the
	// client (--trusted-proxies).
	TrustedProxies []netip.Prefix
	// MaxConcurrentHashes bounds the bcrypt comparisons running at once
	// (0: runtime.NumCPU()); a sign-in past it is answered 429 at once.
	MaxConcurrentHashes int
	// Limits slow repeated failures; the zero value means DefaultLimits.
	Limits Limits
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Handler serves the sign-in pages. Mount it at /jwtgate/ (server.Options.Pages).
type Handler struct {
	o       Options
	log     *slog.Logger
	sem     chan struct{}
	limiter *limiter

	dummyMu sync.Mutex
	dummies map[int][]byte // bcrypt cost -> hash of a random password
}

// New returns the handler.
func New(o Options) *Handler {
	if o.MaxConcurrentHashes <= 0 {
		o.MaxConcurrentHashes = runtime.NumCPU()
	}
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits
	}
	if o.Limits.MaxEntries <= 0 {
		o.Limits.MaxEntries = DefaultLimits.MaxEntries
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		o:       o,
		log:     log,
		sem:     make(chan struct{}, o.MaxConcurrentHashes),
		limiter: newLimiter(o.Limits),
		dummies: map[int][]byte{},
	}
}

func (h *Handler) now() time.Time {
	if h.o.Now != nil {
		return h.o.Now()
	}
	return time.Now()
}

// exchange is one request in progress.
type exchange struct {
	w    http.ResponseWriter
	r    *http.Request
	p    *policy.Policy
	host string
	json bool
	now  time.Time
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case LoginPath, RefreshPath, LogoutPath, JWKSPath:
	default:
		setPageHeaders(w.Header())
		http.NotFound(w, r)
		return
	}
	x := &exchange{w: w, r: r, host: requestHost(r.Host), json: wantsJSON(r), now: h.now()}
	x.p = h.o.Store.Load().ForHost(x.host)
	if x.p == nil || x.p.Login == nil {
		msg := "No sign-in policy serves this host."
		if x.json {
			writeJSONError(w, http.StatusForbidden, "invalid_request", msg)
			return
		}
		writePage(w, http.StatusForbidden, "message", pageData{Title: "Not available", Message: msg}, nil)
		return
	}
	switch r.URL.Path {
	case LoginPath:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.loginPage(x)
		case http.MethodPost:
			h.signIn(x)
		default:
			methodNotAllowed(w, "GET, HEAD, POST")
		}
	case RefreshPath:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		h.refresh(x)
	case LogoutPath:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			rd := SafeRedirect(RedirectParam(r.URL.RawQuery), x.p.Login.AllowedRedirectHosts)
			writePage(w, http.StatusOK, "message", pageData{Title: "Sign out", Host: x.host, Message: "Sign out of " + x.host + "?", SignOut: true, Redirect: rd}, x.p.Login.AllowedRedirectHosts)
		case http.MethodPost:
			h.logout(x)
		default:
			methodNotAllowed(w, "GET, HEAD, POST")
		}
	case JWKSPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.jwks(x)
	}
}

// requestHost is the Host header's name, lower case, without port or final dot.
func requestHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

func wantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
				return true
			}
		}
	}
	return false
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	setPageHeaders(w.Header())
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// originAllowed checks Origin when the browser sent one: it must be this host or
// one of the policy's allowed redirect hosts. A cross-site page posting here is
// refused even where SameSite would not stop it.
func originAllowed(x *exchange) bool {
	o := x.r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false // including "null"
	}
	host := strings.ToLower(u.Hostname())
	return host == x.host || hostAllowed(host, x.p.Login.AllowedRedirectHosts)
}

// ---- sign-in ----

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
			h.unavailablePage(x)
			return
		}
		clearTokenCookies(x.w, l)
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
	writePage(x.w, status, "login", pageData{Title: "Sign in", Host: x.host, Error: message, Redirect: rd, CSRF: token, Username: username}, x.p.Login.AllowedRedirectHosts)
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

func (h *Handler) signIn(x *exchange) {
	l := x.p.Login
	x.r.Body = http.MaxBytesReader(x.w, x.r.Body, maxBody)
	var creds credentials
	rd := "/"
	if x.json {
		if !originAllowed(x) {
			h.refuse(x, "origin", "Origin is not allowed")
			return
		}
		if err := json.NewDecoder(x.r.Body).Decode(&creds); err != nil {
			h.refuse(x, "body", "the body must be a JSON object with username and password")
			return
		}
	} else {
		if err := x.r.ParseForm(); err != nil {
			h.refuse(x, "body", "the form could not be read")
			return
		}
		rd = SafeRedirect(x.r.PostFormValue("rd"), l.AllowedRedirectHosts)
		if !originAllowed(x) || !h.checkCSRF(x.r, x.p) {
			h.o.Metrics.count(x.p.Key, ResultRefused)
			h.log.Warn("sign-in form refused: CSRF token or Origin does not match", "policy", x.p.Key, "client", ClientAddr(x.r, h.o.TrustedProxies).String())
			h.showForm(x, http.StatusForbidden, rd, "", "This form has expired. Please sign in again.")
			return
		}
		creds.Username, creds.Password = x.r.PostFormValue("username"), x.r.PostFormValue("password")
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
		if x.json {
			writeJSONError(x.w, http.StatusTooManyRequests, "too_many_requests", msg)
			return
		}
		h.showForm(x, http.StatusTooManyRequests, rd, "", msg)
		return
	default:
		if x.json {
			writeJSONError(x.w, http.StatusUnauthorized, "invalid_grant", "user name or password is wrong")
			return
		}
		prefill := ""
		if len(creds.Username) <= maxUsername {
			prefill = strings.ToValidUTF8(creds.Username, "")
		}
		h.showForm(x, http.StatusUnauthorized, rd, prefill, "The user name or password is wrong.")
		return
	}

	ctx := x.r.Context()
	client := ClientAddr(x.r, h.o.TrustedProxies).String()
	s, refresh, err := h.o.Sessions.Create(ctx, session.New{Policy: x.p.Key, User: user.Name, Roles: user.Roles, TTL: l.RefreshTTL})
	if err != nil {
		// The password was right; the store could not take the session (Redis
		// unreachable, or full). Fail closed, say so plainly, log the cause.
		h.o.Metrics.count(x.p.Key, ResultUnavailable)
		h.log.Error("sign-in refused: the session store cannot start a session", "policy", x.p.Key, "client", client, "user", user.Name, "error", err)
		h.unavailable(x)
		return
	}
	access, err := issueAccess(x.p, s, user.Roles, x.now)
	if err != nil {
		h.log.Error("cannot sign an access token", "policy", x.p.Key, "user", user.Name, "error", err)
		// Nobody holds this session's token: end it rather than leave it.
		h.o.Sessions.End(context.WithoutCancel(ctx), x.p.Key, s.ID)
		h.o.Metrics.count(x.p.Key, ResultUnavailable)
		h.unavailable(x)
		return
	}
	h.o.Metrics.count(x.p.Key, ResultSuccess)
	h.log.Info("signed in", "policy", x.p.Key, "client", client, "user", user.Name, "session", s.ID)
	h.record(ctx, admin.Event{Kind: admin.EventIssued, Policy: x.p.Key, User: user.Name, Session: s.ID, By: admin.ByUser, Client: client, Expires: s.Expires})
	if x.json {
		writeTokens(x.w, l, access, refresh)
		return
	}
	http.SetCookie(x.w, &http.Cookie{Name: csrfCookieName(x.p), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: l.Cookie.Secure, SameSite: http.SameSiteLaxMode})
	setTokenCookies(x.w, l, access, refresh)
	setPageHeaders(x.w.Header())
	http.Redirect(x.w, x.r, rd, http.StatusSeeOther)
}

// authenticate checks a user name and password. Known and unknown users cost
// one bcrypt comparison each, at the same cost, and take the same path after
// it. It returns the result (a Result* constant) and, for a 429, the wait.
func (h *Handler) authenticate(x *exchange, username, password string) (*users.User, string, time.Duration) {
	client := ClientAddr(x.r, h.o.TrustedProxies)
	addrKey, uKey := addressKey(client), userKey(x.p.Key, username)
	if wait := h.limiter.retryAfter(x.now, addrKey, uKey); wait > 0 {
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
			h.o.Metrics.count(x.p.Key, ResultBusy)
			return nil, ResultBusy, time.Second
		}
		u, known := x.p.Login.Users.Lookup(username)
		hash := h.dummyHash(x.p.Login.Users.MaxCost())
		if known {
			hash = u.Hash
		}
		err := bcrypt.CompareHashAndPassword(hash, []byte(password))
		<-h.sem
		ok = err == nil && known
		user = u
	}
	if !ok {
		h.limiter.fail(x.now, addrKey, h.o.Limits.FreePerAddress)
		h.limiter.fail(x.now, uKey, h.o.Limits.FreePerUser)
		h.o.Metrics.count(x.p.Key, ResultFailure)
		// One line per failure, for fail2ban; client before user, so that a user
		// name can never place a forged address where the filter looks.
		h.log.Warn("sign-in failed", "policy", x.p.Key, "client", client.String(), "user", printable(username))
		return nil, ResultFailure, 0
	}
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

// ---- renewal and sign-out ----

// renew rotates a refresh token and signs a new access token with the user's
// current roles; a user no longer in the users file ends the session. Callers
// answer storeTrouble errors with 503 and keep the client's tokens (the store
// said nothing about them), any other error with 401.
func (h *Handler) renew(x *exchange, refreshToken string) (access, refresh string, s session.Session, err error) {
	ctx := x.r.Context()
	s, refresh, err = h.o.Sessions.Rotate(ctx, x.p.Key, refreshToken)
	client := ClientAddr(x.r, h.o.TrustedProxies).String()
	switch {
	case errors.Is(err, session.ErrReused):
		h.o.Metrics.count(x.p.Key, ResultReused)
		h.log.Warn("refresh token replayed after rotation: session ended", "policy", x.p.Key, "client", client, "user", s.User, "session", s.ID)
		const reason = "refresh token reused"
		h.record(ctx, admin.Event{Kind: admin.EventRefused, Policy: x.p.Key, User: s.User, Session: s.ID, By: admin.BySystem, Reason: reason, Client: client})
		h.record(ctx, admin.Event{Kind: admin.EventRevoked, Policy: x.p.Key, User: s.User, Session: s.ID, By: admin.BySystem, Reason: reason, Client: client})
		return "", "", s, err
	case storeTrouble(err):
		h.o.Metrics.count(x.p.Key, ResultUnavailable)
		h.log.Error("refresh refused: the session store is unavailable; the client keeps its tokens", "policy", x.p.Key, "client", client, "error", err)
		return "", "", s, err
	case err != nil:
		h.o.Metrics.count(x.p.Key, ResultRenewFailed)
		return "", "", s, err
	}
	u, ok := x.p.Login.Users.Lookup(s.User)
	if !ok {
		h.o.Metrics.count(x.p.Key, ResultRenewFailed)
		if err := h.o.Sessions.End(context.WithoutCancel(ctx), x.p.Key, s.ID); err != nil {
			// Refused all the same: the user is gone, whatever the store says.
			h.log.Error("cannot end the session of a user no longer in the users file", "policy", x.p.Key, "user", s.User, "session", s.ID, "error", err)
			return "", "", s, session.ErrInvalid
		}
		h.log.Info("session ended: its user is no longer in the users file", "policy", x.p.Key, "user", s.User, "session", s.ID)
		h.record(ctx, admin.Event{Kind: admin.EventRevoked, Policy: x.p.Key, User: s.User, Session: s.ID, By: admin.BySystem, Reason: "user no longer in the users file", Client: client})
		return "", "", s, session.ErrInvalid
	}
	access, err = issueAccess(x.p, s, u.Roles, x.now)
	if err != nil {
		h.log.Error("cannot sign an access token", "policy", x.p.Key, "error", err)
		return "", "", s, err
	}
	h.o.Metrics.count(x.p.Key, ResultRenewed)
	h.record(ctx, admin.Event{Kind: admin.EventRefreshed, Policy: x.p.Key, User: s.User, Session: s.ID, By: admin.ByUser, Client: client, Expires: s.Expires})
	return access, refresh, s, nil
}

// storeTrouble tells the errors that say the session store cannot serve now
// (unreachable, full), not that a token is bad: nobody is signed out for them.
func storeTrouble(err error) bool {
	return errors.Is(err, session.ErrUnavailable) || errors.Is(err, session.ErrFull)
}

// record keeps a token record, which also writes its audit line (the Records
// implementations write it; the handler does not). A record that cannot be
// kept is logged and does not fail the request; neither does a client that
// went away meanwhile.
func (h *Handler) record(ctx context.Context, e admin.Event) {
	if h.o.Records == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = h.now()
	}
	if err := h.o.Records.Record(context.WithoutCancel(ctx), e); err != nil {
		h.log.Warn("cannot keep a token record", "event", e.Kind, "policy", e.Policy, "user", e.User, "session", e.Session, "error", err)
	}
}

type refreshBody struct {
	RefreshToken string `json:"refresh_token"`
}

func (h *Handler) readRefreshBody(x *exchange) (string, bool) {
	x.r.Body = http.MaxBytesReader(x.w, x.r.Body, maxBody)
	var b refreshBody
	if err := json.NewDecoder(x.r.Body).Decode(&b); err != nil || b.RefreshToken == "" {
		writeJSONError(x.w, http.StatusBadRequest, "invalid_request", "the body must be a JSON object with refresh_token")
		return "", false
	}
	return b.RefreshToken, true
}

func (h *Handler) refresh(x *exchange) {
	l := x.p.Login
	if !originAllowed(x) {
		h.refuse(x, "origin", "Origin is not allowed")
		return
	}
	if x.json {
		token, ok := h.readRefreshBody(x)
		if !ok {
			return
		}
		access, refresh, _, err := h.renew(x, token)
		if storeTrouble(err) {
			h.unavailable(x)
			return
		}
		if err != nil {
			writeJSONError(x.w, http.StatusUnauthorized, "invalid_grant", "refresh token is not valid")
			return
		}
		writeTokens(x.w, l, access, refresh)
		return
	}
	setPageHeaders(x.w.Header())
	c, err := x.r.Cookie(policy.RefreshCookie)
	if err != nil || c.Value == "" {
		x.w.WriteHeader(http.StatusUnauthorized)
		return
	}
	access, refresh, _, err := h.renew(x, c.Value)
	if storeTrouble(err) {
		// The cookies stay: the refresh token is probably good, and clearing it
		// would sign the user out for an outage.
		x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
		x.w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		clearTokenCookies(x.w, l)
		x.w.WriteHeader(http.StatusUnauthorized)
		return
	}
	// The tokens travel only in HttpOnly cookies here, never in a body that
	// scripts could read.
	setTokenCookies(x.w, l, access, refresh)
	x.w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) logout(x *exchange) {
	l := x.p.Login
	if !originAllowed(x) {
		h.refuse(x, "origin", "Origin is not allowed")
		return
	}
	if x.json {
		token, ok := h.readRefreshBody(x)
		if !ok {
			return
		}
		if !h.endSession(x, token) {
			x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
			writeJSONError(x.w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session could not be ended now; try again in a moment")
			return
		}
		setPageHeaders(x.w.Header())
		x.w.WriteHeader(http.StatusNoContent)
		return
	}
	x.r.Body = http.MaxBytesReader(x.w, x.r.Body, maxBody)
	x.r.ParseForm()
	// logout runs for POST only: the form post ends the session as the JSON one does.
	ended := true
	if c, err := x.r.Cookie(policy.RefreshCookie); err == nil && c.Value != "" {
		ended = h.endSession(x, c.Value)
	}
	clearTokenCookies(x.w, l)
	if !ended {
		// The browser forgets its tokens all the same, but the session lives on
		// in the store until it expires or an administrator ends it: say so.
		x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
		writePage(x.w, http.StatusServiceUnavailable, "message", pageData{
			Title: "Sign-out is not complete", Host: x.host,
			Message: "This browser no longer holds your sign-in to " + x.host + ", but the sign-in service is unavailable " +
				"for a moment and could not end your session: it stays valid until it expires or an administrator ends it.",
			Link: LoginPath, LinkText: "Sign in",
		}, nil)
		return
	}
	if rd := x.r.PostFormValue("rd"); rd != "" || RedirectParam(x.r.URL.RawQuery) != "" {
		if rd == "" {
			rd = RedirectParam(x.r.URL.RawQuery)
		}
		setPageHeaders(x.w.Header())
		http.Redirect(x.w, x.r, SafeRedirect(rd, l.AllowedRedirectHosts), http.StatusSeeOther)
		return
	}
	writePage(x.w, http.StatusOK, "message", pageData{Title: "Signed out", Host: x.host, Message: "You are signed out of " + x.host + ".", Link: LoginPath, LinkText: "Sign in again"}, nil)
}

// endSession ends the session of a refresh token (sign-out) and keeps the
// record. It reports false when the session may still be alive because the
// store could not be asked. An unknown token has nothing left to end.
func (h *Handler) endSession(x *exchange, refreshToken string) bool {
	ctx := x.r.Context()
	client := ClientAddr(x.r, h.o.TrustedProxies).String()
	s, err := h.o.Sessions.EndByToken(ctx, x.p.Key, refreshToken)
	switch {
	case err == nil:
		h.log.Info("signed out", "policy", x.p.Key, "user", s.User, "session", s.ID)
		h.record(ctx, admin.Event{Kind: admin.EventRevoked, Policy: x.p.Key, User: s.User, Session: s.ID, By: admin.ByUser, Reason: "sign-out", Client: client})
		return true
	case errors.Is(err, session.ErrInvalid):
		return true
	default:
		h.log.Error("sign-out could not end the session: the session store is unavailable", "policy", x.p.Key, "client", client, "error", err)
		return false
	}
}

// unavailable answers a sign-in or refresh that the session store cannot
// serve now: 503 with Retry-After, and no detail of the cause.
func (h *Handler) unavailable(x *exchange) {
	if x.json {
		x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
		writeJSONError(x.w, http.StatusServiceUnavailable, "temporarily_unavailable", "sign-in is unavailable for a moment; try again shortly")
		return
	}
	h.unavailablePage(x)
}

func (h *Handler) unavailablePage(x *exchange) {
	x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
	writePage(x.w, http.StatusServiceUnavailable, "message", pageData{
		Title: "Sign-in is unavailable for a moment", Host: x.host,
		Message: "The sign-in service cannot be reached right now. Please try again in a few seconds.",
	}, nil)
}

// refuse answers a request that fails a check before any password is looked at.
func (h *Handler) refuse(x *exchange, what, desc string) {
	h.o.Metrics.count(x.p.Key, ResultRefused)
	if x.json {
		writeJSONError(x.w, http.StatusBadRequest, "invalid_request", desc)
		return
	}
	writePage(x.w, http.StatusForbidden, "message", pageData{Title: "Refused", Message: "This request was refused (" + what + ")."}, nil)
}

// ---- jwks.json ----

func (h *Handler) jwks(x *exchange) {
	set := jwk.NewSet()
	for _, k := range x.p.Login.VerifyKeys {
		if k.Public != nil {
			set.AddKey(k.Public)
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		http.Error(x.w, "cannot encode the key set", http.StatusInternalServerError)
		return
	}
	hd := x.w.Header()
	hd.Set("Content-Type", "application/jwk-set+json")
	hd.Set("Cache-Control", "public, max-age=300")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Access-Control-Allow-Origin", "*")
	x.w.Write(body)
}

// ---- answers ----

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
	json.NewEncoder(w).Encode(v)
}

// printable makes a user name safe to log and to show: valid UTF-8, no control
// characters, at most 64 characters.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "..."
	}
	return s
}
