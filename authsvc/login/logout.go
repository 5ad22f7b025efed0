package login

import (
	"errors"
	"net/http"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

// /jwtgate/logout: a page that asks (GET), and sign-out (POST), which ends the
// session of the refresh token it carries.

func (h *Handler) logoutPage(x *exchange) {
	rd := SafeRedirect(RedirectParam(x.r.URL.RawQuery), x.p.Login.AllowedRedirectHosts)
	writePage(x.w, http.StatusOK, "message", pageData{Title: "Sign out", Host: x.host, Message: "Sign out of " + x.host + "?", SignOut: true, Redirect: rd}, x.p.Login.AllowedRedirectHosts)
}

// logout runs for POST only: the form post ends the session as the JSON one does.
func (h *Handler) logout(x *exchange) {
	if !originAllowed(x) {
		h.refuse(x, "origin", "Origin is not allowed")
		return
	}
	token, ok := x.ans.logoutToken(x)
	if !ok {
		return
	}
	ended := true
	if token != "" {
		x.ended, ended = h.endSession(x, token)
	}
	x.ans.signedOut(x, ended)
}

// endSession ends the session of a refresh token (sign-out) and keeps the
// record. It reports false when the session may still be alive because the
// store could not be asked. An unknown token has nothing left to end.
func (h *Handler) endSession(x *exchange, refreshToken string) (session.Session, bool) {
	ctx := x.r.Context()
	client := ClientAddr(x.r, h.o.TrustedProxies).String()
	s, err := h.o.Sessions.EndByToken(ctx, x.p.Key, refreshToken)
	switch {
	case err == nil:
		h.log.Info("signed out", "policy", x.p.Key, "user", s.User, "session", s.ID)
		h.record(ctx, session.Event{Kind: session.EventRevoked, Policy: x.p.Key, User: s.User, Session: s.ID, By: session.ByUser, Reason: "sign-out", Client: client})
		return s, true
	case errors.Is(err, session.ErrInvalid):
		return session.Session{}, true
	default:
		h.log.Error("sign-out could not end the session: the session store is unavailable", "policy", x.p.Key, "client", client, "error", err)
		return session.Session{}, false
	}
}
