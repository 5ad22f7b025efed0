package login

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/oidc"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/session"
)

// The paths of the OpenID Connect relying party.
const (
	OIDCStartPath    = "/jwtgate/oidc/start"
	OIDCCallbackPath = policy.OIDCCallbackPath
)

// Sign-in methods, the values of the method label and of signin_method.
const (
	MethodPassword = "password"
	MethodOIDC     = session.MethodOIDC
)

// Results of sign-ins at a provider, beside the shared ones.
const (
	ResultStateInvalid  = "state_invalid"        // 400: flow cookie missing, foreign, expired, or state replayed
	ResultProviderError = "provider_error"       // 400/403: the provider answered with an error, or refused the code
	ResultTokenInvalid  = "token_invalid"        // 400: the ID token failed a check
	ResultForbidden     = "forbidden"            // 403: the provider's user is refused (allowedValues, email, name clash)
	ResultUnreachable   = "provider_unreachable" // 502: the provider could not be reached during the callback
)

// maxCallbackQuery bounds the callback's query before it is parsed.
const maxCallbackQuery = 8 << 10

// scheme is the scheme of the URLs jwtgate builds for a policy: https while
// its cookies are Secure (the default), whatever the proxy says.
func scheme(l *policy.Login) string {
	if l.Cookie.Secure {
		return "https"
	}
	return "http"
}

// oidcStartURL is where a browser begins a sign-in at the provider.
func oidcStartURL(rd string) string {
	return OIDCStartPath + "?rd=" + url.QueryEscape(rd)
}

// oidcStart sends the browser to the provider with a fresh flow, bound to
// it by a sealed cookie.
func (h *Handler) oidcStart(x *exchange) {
	l := x.p.Login
	o := l.OIDC
	rd := SafeRedirect(RedirectParam(x.r.URL.RawQuery), l.AllowedRedirectHosts)
	// The callback comes back to one registered host: redirectURL's, or the
	// host the flow starts on when it is one of the policy's exact hosts.
	callback := ""
	switch {
	case o.RedirectURL != "":
		callback = o.RedirectURL
	case containsHost(x.p.Hosts, x.host):
		callback = scheme(l) + "://" + x.r.Host + OIDCCallbackPath
	default:
		h.oidcFail(x, http.StatusBadRequest, ResultStateInvalid, "sign-in at the provider started on a wildcard host without redirectURL",
			"Sign-in at the identity provider is not set up for "+x.host+": its administrator needs to set spec.login.oidc.redirectURL.")
		return
	}
	if cu, err := url.Parse(callback); err == nil && requestHost(cu.Host) != x.host {
		// Start again on the callback's host, so the flow cookie is set where
		// the provider sends the browser back; rd stays on this host.
		if strings.HasPrefix(rd, "/") {
			rd = scheme(l) + "://" + x.r.Host + rd
		}
		setPageHeaders(x.w.Header())
		http.Redirect(x.w, x.r, cu.Scheme+"://"+cu.Host+oidcStartURL(rd), http.StatusFound)
		return
	}
	_, d := h.provider(o)
	if d == nil {
		h.oidcFail(x, http.StatusServiceUnavailable, ResultUnavailable, "sign-in at the provider refused: its discovery document has not loaded",
			"Sign-in at the identity provider is unavailable right now: jwtgate could not reach it yet. Please try again in a minute.")
		return
	}
	flow, err := oidc.NewFlow(rd, callback, x.now)
	if err != nil {
		h.oidcFail(x, http.StatusServiceUnavailable, ResultUnavailable, "cannot start a sign-in flow: "+err.Error(), "Sign-in is unavailable for a moment.")
		return
	}
	sealed, err := oidc.Seal(o.FlowKey, x.p.Key, flow)
	if err != nil {
		h.oidcFail(x, http.StatusServiceUnavailable, ResultUnavailable, "cannot seal the flow cookie: "+err.Error(), "Sign-in is unavailable for a moment.")
		return
	}
	http.SetCookie(x.w, &http.Cookie{
		Name: oidc.CookieName(flow.State), Value: sealed, Path: refreshCookiePath,
		MaxAge: int(oidc.FlowTTL / time.Second), HttpOnly: true, Secure: l.Cookie.Secure,
		// Lax, whatever the policy says: the provider sends the browser back
		// with a top-level GET from its own site, which Strict would strip.
		SameSite: http.SameSiteLaxMode,
	})
	setPageHeaders(x.w.Header())
	http.Redirect(x.w, x.r, h.client(o).AuthURL(d, flow), http.StatusFound)
}

func containsHost(hosts []string, host string) bool {
	for _, h := range hosts {
		if h == host {
			return true
		}
	}
	return false
}

func (h *Handler) client(o *policy.OIDC) oidc.Client {
	return oidc.Client{ID: o.ClientID, Secret: o.ClientSecret, Scopes: o.Scopes}
}

// provider returns the issuer's provider and its last good discovery
// document (nil when it never loaded).
func (h *Handler) provider(o *policy.OIDC) (*oidc.Provider, *oidc.Discovery) {
	if h.o.Providers == nil {
		return nil, nil
	}
	p := h.o.Providers.Get(o.IssuerURL)
	return p, p.Discovery()
}

// callbackKeysWait bounds how long a callback waits for the first load of the
// provider's keys.
const callbackKeysWait = 5 * time.Second

// oidcCallback finishes a sign-in at the provider: flow cookie and state,
// code exchange, ID token checks, mapping, then the same session, tokens and
// records as a password sign-in.
func (h *Handler) oidcCallback(x *exchange) {
	q, flow, ok := h.callbackFlow(x)
	if !ok {
		return
	}
	code, ok := h.callbackCode(x, q)
	if !ok || !h.useStateOnce(x, flow) {
		return
	}
	rawID, claims, ok := h.verifiedIDToken(x, flow, code)
	if !ok {
		return
	}
	mapped, refusal := x.p.Login.OIDC.Identify(claims)
	if refusal != nil {
		h.oidcFail(x, http.StatusForbidden, ResultForbidden, "provider user refused: "+refusal.Reason, "You are signed in at the identity provider, but you are not allowed to use "+x.host+".")
		return
	}
	h.startOIDCSession(x, flow, mapped, claims, rawID)
}

// callbackFlow reads the callback's state and opens this browser's flow cookie
// for it, which goes whatever happens next. A state that is not the flow's is
// refused.
func (h *Handler) callbackFlow(x *exchange) (url.Values, oidc.Flow, bool) {
	l := x.p.Login
	if len(x.r.URL.RawQuery) > maxCallbackQuery {
		h.oidcFail(x, http.StatusBadRequest, ResultStateInvalid, "callback query too long", "This sign-in link is not valid. Please sign in again.")
		return nil, oidc.Flow{}, false
	}
	q, err := url.ParseQuery(x.r.URL.RawQuery)
	state := q.Get("state")
	if err != nil || state == "" || len(q["state"]) != 1 || len(state) > 512 {
		h.oidcFail(x, http.StatusBadRequest, ResultStateInvalid, "callback without a usable state", "This sign-in link is not valid. Please sign in again.")
		return nil, oidc.Flow{}, false
	}
	name := oidc.CookieName(state)
	// Whatever happens next, this flow is over: its cookie goes.
	http.SetCookie(x.w, &http.Cookie{Name: name, Value: "", Path: refreshCookiePath, MaxAge: -1, HttpOnly: true, Secure: l.Cookie.Secure, SameSite: http.SameSiteLaxMode})
	c, err := x.r.Cookie(name)
	var flow oidc.Flow
	if err == nil {
		flow, err = oidc.Open(l.OIDC.FlowKey, x.p.Key, c.Value, x.now)
	}
	if err != nil || subtle.ConstantTimeCompare([]byte(flow.State), []byte(state)) != 1 {
		// No flow of this browser has this state: another browser's link,
		// a forged one, one that expired, or a cookie sealed for another policy.
		h.oidcFail(x, http.StatusBadRequest, ResultStateInvalid, "callback state does not belong to this browser's sign-in",
			"This sign-in did not start in this browser, or it has expired. Please sign in again.")
		return nil, oidc.Flow{}, false
	}
	return q, flow, true
}

// callbackCode returns the callback's code, or answers the provider's error.
func (h *Handler) callbackCode(x *exchange, q url.Values) (string, bool) {
	if e := q.Get("error"); e != "" {
		code := oidc.PrintableCode(e)
		status, msg := http.StatusBadRequest, "The identity provider did not sign you in ("+code+")."
		if code == "access_denied" {
			status, msg = http.StatusForbidden, "The identity provider did not allow this sign-in."
		}
		h.oidcFail(x, status, ResultProviderError, "the provider answered with an error: "+code, msg)
		return "", false
	}
	code := q.Get("code")
	if code == "" || len(q["code"]) != 1 {
		h.oidcFail(x, http.StatusBadRequest, ResultProviderError, "callback without a code", "The identity provider sent no sign-in code. Please sign in again.")
		return "", false
	}
	return code, true
}

// useStateOnce records the flow's state as used in the session store: a
// callback replayed, on this replica or another, is refused.
func (h *Handler) useStateOnce(x *exchange, flow oidc.Flow) bool {
	once, ok := h.o.Sessions.(session.OnceStore)
	if !ok {
		h.oidcFail(x, http.StatusServiceUnavailable, ResultUnavailable, "the session store cannot record used states", "Sign-in is unavailable for a moment.")
		return false
	}
	first, err := once.UseOnce(x.r.Context(), x.p.Key, flow.State, time.Unix(flow.Expires, 0).Add(time.Minute))
	switch {
	case err != nil:
		h.oidcFail(x, http.StatusServiceUnavailable, ResultUnavailable, "the session store cannot record the state: "+err.Error(), "Sign-in is unavailable for a moment. Please try again in a few seconds.")
		return false
	case !first:
		h.oidcFail(x, http.StatusBadRequest, ResultStateInvalid, "callback state used before (replay)", "This sign-in link was already used. Please sign in again.")
		return false
	}
	return true
}

// verifiedIDToken exchanges the code at the provider and verifies the ID token
// it answers with against the provider's keys, the flow's nonce and the client.
func (h *Handler) verifiedIDToken(x *exchange, flow oidc.Flow, code string) (string, map[string]any, bool) {
	o := x.p.Login.OIDC
	ctx := x.r.Context()
	p, d := h.provider(o)
	if d == nil {
		h.oidcFail(x, http.StatusServiceUnavailable, ResultUnavailable, "the provider's discovery document has not loaded",
			"Sign-in at the identity provider is unavailable right now. Please try again in a minute.")
		return "", nil, false
	}
	if jwks := p.Keys(); jwks != nil && jwks.Current() == nil {
		// Discovery has loaded and the provider's keys are still on their way
		// (a replica that has just started, or found the provider a moment
		// ago): wait for them briefly rather than spend the code and answer 502.
		wctx, cancel := context.WithTimeout(ctx, callbackKeysWait)
		_ = jwks.WaitReady(wctx)
		cancel()
	}
	rawID, err := p.Exchange(ctx, h.client(o), d, flow, code)
	switch {
	case errors.Is(err, oidc.ErrProviderRefused):
		h.oidcFail(x, http.StatusBadRequest, ResultProviderError, "code exchange refused: "+err.Error(), "The identity provider refused this sign-in (the link may have been used already). Please sign in again.")
		return "", nil, false
	case err != nil:
		h.oidcFail(x, http.StatusBadGateway, ResultUnreachable, "code exchange failed: "+err.Error(), "The identity provider could not be reached. Please try again in a moment.")
		return "", nil, false
	}
	jwks := p.Keys()
	if jwks == nil || jwks.Current() == nil {
		h.oidcFail(x, http.StatusBadGateway, ResultUnreachable, "the provider's keys have not loaded", "The identity provider's keys could not be loaded. Please try again in a moment.")
		return "", nil, false
	}
	claims, err := oidc.VerifyIDToken(rawID, jwks.Current(), oidc.Expect{
		Issuer: o.IssuerURL, ClientID: o.ClientID, Nonce: flow.Nonce, Leeway: o.Leeway, Now: x.now, Algs: d.IDTokenAlgs,
	})
	if err != nil {
		if errors.Is(err, oidc.ErrUnknownKey) {
			jwks.RequestRefresh() // the provider may have rotated its keys
		}
		h.oidcFail(x, http.StatusBadRequest, ResultTokenInvalid, "ID token refused: "+err.Error(), "The identity provider's answer could not be verified. Please sign in again.")
		return "", nil, false
	}
	return rawID, claims, true
}

// startOIDCSession starts the session of a provider user the policy lets in,
// with the same tokens, records and cookies as a password sign-in, and sends
// the browser back to where the flow began.
func (h *Handler) startOIDCSession(x *exchange, flow oidc.Flow, mapped policy.Mapped, claims map[string]any, rawID string) {
	l := x.p.Login
	o := l.OIDC
	ctx := x.r.Context()
	sub, _ := claims["sub"].(string)
	sid, _ := claims["sid"].(string)
	client := ClientAddr(x.r, h.o.TrustedProxies).String()
	s, refresh, err := h.o.Sessions.Create(ctx, session.New{
		Policy: x.p.Key, User: mapped.User, Roles: mapped.Roles, TTL: min(l.RefreshTTL, o.MaxSessionAge),
		MaxLifetime: sessionLimit(l.SessionMaxLifetime, o.MaxSessionAge),
		Origin:      session.Origin{Method: MethodOIDC, Subject: sub, SID: sid, IDToken: rawID},
	})
	if err != nil {
		h.oidcFail(x, http.StatusServiceUnavailable, ResultUnavailable, "the session store cannot start a session: "+err.Error(), "Sign-in is unavailable for a moment. Please try again in a few seconds.")
		return
	}
	access, err := issueAccess(x.p, s, mapped.Roles, x.now)
	if err != nil {
		if err := h.o.Sessions.End(context.WithoutCancel(ctx), x.p.Key, s.ID); err != nil {
			h.log.Error("cannot end the session nobody holds a token for; it expires on its own", "policy", x.p.Key, "session", s.ID, "error", err)
		}
		h.oidcFail(x, http.StatusServiceUnavailable, ResultUnavailable, "cannot sign an access token: "+err.Error(), "Sign-in is unavailable for a moment.")
		return
	}
	h.o.Metrics.countMethod(x.p.Key, ResultSuccess, MethodOIDC)
	h.log.Info("signed in", "policy", x.p.Key, "client", client, "user", mapped.User, "session", s.ID, "signin_method", MethodOIDC, "provider_sub", sub)
	h.record(ctx, session.Event{Kind: session.EventIssued, Policy: x.p.Key, User: mapped.User, Session: s.ID, By: session.ByUser, Client: client, Expires: s.Expires,
		Method: MethodOIDC, ProviderSub: sub, ProviderSID: sid})
	setTokenCookies(x.w, l, access, refresh)
	setPageHeaders(x.w.Header())
	http.Redirect(x.w, x.r, flow.Redirect, http.StatusSeeOther)
}

// oidcFail answers a sign-in at the provider that cannot go on: a page with
// status and msg, a log and audit line with why, a metric. Never a token:
// the token cookies are not touched.
func (h *Handler) oidcFail(x *exchange, status int, result, why, msg string) {
	h.o.Metrics.countMethod(x.p.Key, result, MethodOIDC)
	client := ClientAddr(x.r, h.o.TrustedProxies).String()
	h.log.Warn("sign-in at the provider refused", "policy", x.p.Key, "client", client, "status", status, "result", result, "reason", why, "signin_method", MethodOIDC)
	h.record(x.r.Context(), session.Event{Kind: session.EventRefused, Policy: x.p.Key, By: session.BySystem, Reason: result + ": " + why, Client: client, Method: MethodOIDC})
	if status == http.StatusServiceUnavailable {
		x.w.Header().Set("Retry-After", "30")
	}
	d := pageData{Title: "Sign-in did not work", Host: x.host, Message: msg, Link: oidcStartURL("/"), LinkText: "Sign in again"}
	if status == http.StatusForbidden {
		d.Title, d.Link, d.LinkText = "Not allowed", "", ""
	}
	writePage(x.w, status, "message", d, nil)
}

// oidcSessionGone reports why a renewal of a session from a provider is
// refused: the policy no longer signs in there, or the session is older
// than maxSessionAge. "" lets the renewal go on.
func oidcSessionGone(p *policy.Policy, s session.Session, now time.Time) string {
	o := p.Login.OIDC
	switch {
	case o == nil:
		return "the policy no longer signs in at an identity provider"
	case s.PastMaxLifetime(now) || !now.Before(s.Created.Add(o.MaxSessionAge)):
		return "older than spec.login.oidc.maxSessionAge: sign in at the provider again"
	}
	return ""
}

// providerSignOutURL is the provider's RP-initiated logout for a session
// from it, coming back to this host; "" when the provider offers none.
func (h *Handler) providerSignOutURL(x *exchange, s session.Session) string {
	o := x.p.Login.OIDC
	if o == nil || s.Origin.Method != MethodOIDC {
		return ""
	}
	_, d := h.provider(o)
	return oidc.EndSessionURL(d, o.ClientID, s.Origin.IDToken, scheme(x.p.Login)+"://"+x.r.Host+"/")
}

// sessionLimit is the lifetime of a session from the provider: the shorter of
// the policy's sessionMaxLifetime and oidc.maxSessionAge.
func sessionLimit(policyMax, providerMax time.Duration) time.Duration {
	if policyMax > 0 && policyMax < providerMax {
		return policyMax
	}
	return providerMax
}
