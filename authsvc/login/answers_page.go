package login

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// pageAnswers answers browsers: HTML pages, tokens in HttpOnly cookies only,
// never in a body that scripts could read.
type pageAnswers struct{}

func (pageAnswers) noSignInPolicy(x *exchange) {
	writePage(x.w, http.StatusForbidden, "message", pageData{Title: "Not available", Message: "No sign-in policy serves this host."}, nil)
}

func (pageAnswers) refused(x *exchange, what, _ string) {
	writePage(x.w, http.StatusForbidden, "message", pageData{Title: "Refused", Message: "This request was refused (" + what + ")."}, nil)
}

// credentials reads the sign-in form, whose CSRF token and Origin must match.
func (pageAnswers) credentials(x *exchange) (credentials, string, bool) {
	h := x.h
	if err := x.r.ParseForm(); err != nil {
		h.refuse(x, "body", "the form could not be read")
		return credentials{}, "", false
	}
	rd := SafeRedirect(x.r.PostFormValue("rd"), x.p.Login.AllowedRedirectHosts)
	if !originAllowed(x) || !h.checkCSRF(x.r, x.p) {
		h.o.Metrics.count(x.p.Key, ResultRefused)
		h.log.Warn("sign-in form refused: CSRF token or Origin does not match", "policy", x.p.Key, "client", ClientAddr(x.r, h.o.TrustedProxies).String())
		h.showForm(x, http.StatusForbidden, rd, "", "This form has expired. Please sign in again.")
		return credentials{}, "", false
	}
	return credentials{Username: x.r.PostFormValue("username"), Password: x.r.PostFormValue("password")}, rd, true
}

func (pageAnswers) tooManyAttempts(x *exchange, rd, msg string) {
	x.h.showForm(x, http.StatusTooManyRequests, rd, "", msg)
}

func (pageAnswers) wrongCredentials(x *exchange, rd string, c credentials) {
	prefill := ""
	if len(c.Username) <= maxUsername {
		prefill = strings.ToValidUTF8(c.Username, "")
	}
	x.h.showForm(x, http.StatusUnauthorized, rd, prefill, "The user name or password is wrong.")
}

func (pageAnswers) signedIn(x *exchange, rd, access, refresh string) {
	l := x.p.Login
	http.SetCookie(x.w, &http.Cookie{Name: csrfCookieName(x.p), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: l.Cookie.Secure, SameSite: http.SameSiteLaxMode})
	setTokenCookies(x.w, l, access, refresh)
	setPageHeaders(x.w.Header())
	http.Redirect(x.w, x.r, rd, http.StatusSeeOther)
}

func (pageAnswers) unavailable(x *exchange) { unavailablePage(x) }

// refreshToken reads the refresh cookie; without one, the answer is 401.
func (pageAnswers) refreshToken(x *exchange) (string, bool) {
	setPageHeaders(x.w.Header())
	c, err := x.r.Cookie(policy.RefreshCookie)
	if err != nil || c.Value == "" {
		x.w.WriteHeader(http.StatusUnauthorized)
		return "", false
	}
	return c.Value, true
}

// renewed sets the cookies: the tokens travel only in HttpOnly cookies here.
func (pageAnswers) renewed(x *exchange, access, refresh string) {
	setTokenCookies(x.w, x.p.Login, access, refresh)
	x.w.WriteHeader(http.StatusNoContent)
}

func (pageAnswers) renewRefused(x *exchange) {
	clearTokenCookies(x.w, x.p.Login)
	x.w.WriteHeader(http.StatusUnauthorized)
}

// renewUnavailable keeps the cookies: the refresh token is probably good, and
// clearing it would sign the user out for an outage.
func (pageAnswers) renewUnavailable(x *exchange) {
	x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
	x.w.WriteHeader(http.StatusServiceUnavailable)
}

// logoutToken reads the sign-out form and the refresh cookie, if any.
func (pageAnswers) logoutToken(x *exchange) (string, bool) {
	x.r.Body = http.MaxBytesReader(x.w, x.r.Body, maxBody)
	_ = x.r.ParseForm() // sign-out needs only the cookie; a bad form changes nothing
	if c, err := x.r.Cookie(policy.RefreshCookie); err == nil {
		return c.Value, true
	}
	return "", true
}

// signedOut clears the cookies whatever the store said, then shows where the
// sign-out stands or follows the redirect.
func (pageAnswers) signedOut(x *exchange, ended bool) {
	l := x.p.Login
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
	d := pageData{Title: "Signed out", Host: x.host, Message: "You are signed out of " + x.host + ".", Link: LoginPath, LinkText: "Sign in again"}
	if u := x.h.providerSignOutURL(x, x.ended); u != "" {
		d.ProviderSignOut, d.ProviderButton = u, x.p.Login.OIDC.DisplayName
	}
	writePage(x.w, http.StatusOK, "message", d, nil)
}

// unavailablePage answers 503 with a page that asks to try again shortly.
func unavailablePage(x *exchange) {
	x.w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
	writePage(x.w, http.StatusServiceUnavailable, "message", pageData{
		Title: "Sign-in is unavailable for a moment", Host: x.host,
		Message: "The sign-in service cannot be reached right now. Please try again in a few seconds.",
	}, nil)
}
