package login

import (
	"context"
	"errors"

	"github.com/jwtgate/jwtgate/authsvc/session"
)

// /jwtgate/refresh: a refresh token (cookie or JSON body) is rotated for new
// tokens.

func (h *Handler) refresh(x *exchange) {
	if !originAllowed(x) {
		h.refuse(x, "origin", "Origin is not allowed")
		return
	}
	token, ok := x.ans.refreshToken(x)
	if !ok {
		return
	}
	access, refresh, _, err := h.renew(x, token)
	switch {
	case storeTrouble(err):
		x.ans.renewUnavailable(x)
	case err != nil:
		x.ans.renewRefused(x)
	default:
		x.ans.renewed(x, access, refresh)
	}
}

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
		h.record(ctx, session.Event{Kind: session.EventRefused, Policy: x.p.Key, User: s.User, Session: s.ID, By: session.BySystem, Reason: reason, Client: client})
		h.record(ctx, session.Event{Kind: session.EventRevoked, Policy: x.p.Key, User: s.User, Session: s.ID, By: session.BySystem, Reason: reason, Client: client})
		return "", "", s, err
	case storeTrouble(err):
		h.o.Metrics.count(x.p.Key, ResultUnavailable)
		h.log.Error("refresh refused: the session store is unavailable; the client keeps its tokens", "policy", x.p.Key, "client", client, "error", err)
		return "", "", s, err
	case err != nil:
		h.o.Metrics.count(x.p.Key, ResultRenewFailed)
		return "", "", s, err
	}
	roles := s.Roles
	var ended string
	if s.Origin.Method == MethodOIDC {
		// A session from the provider: its roles were mapped at sign-in, and it
		// lasts at most maxSessionAge (its MaxLifetime) before the provider is
		// asked again.
		ended = oidcSessionGone(x.p, s, x.now)
	} else {
		u, ok := x.p.Login.Users.Lookup(s.User)
		switch {
		case !ok:
			ended = "user no longer in the users file"
		case s.PastMaxLifetime(x.now):
			ended = "session older than sessionMaxLifetime"
		case s.Credential != "" && s.Credential != u.Fingerprint():
			ended = "password changed in the users file"
		default:
			roles = u.Roles
		}
	}
	if ended != "" {
		h.o.Metrics.count(x.p.Key, ResultRenewFailed)
		if err := h.o.Sessions.End(context.WithoutCancel(ctx), x.p.Key, s.ID); err != nil {
			// Refused all the same, whatever the store says.
			h.log.Error("cannot end a session that may no longer be renewed", "policy", x.p.Key, "user", s.User, "session", s.ID, "reason", ended, "error", err)
			return "", "", s, session.ErrInvalid
		}
		h.log.Info("session ended", "policy", x.p.Key, "user", s.User, "session", s.ID, "reason", ended)
		h.record(ctx, session.Event{Kind: session.EventRevoked, Policy: x.p.Key, User: s.User, Session: s.ID, By: session.BySystem, Reason: ended, Client: client})
		return "", "", s, session.ErrInvalid
	}
	access, err = issueAccess(x.p, s, roles, x.now)
	if err != nil {
		h.log.Error("cannot sign an access token", "policy", x.p.Key, "error", err)
		return "", "", s, err
	}
	h.o.Metrics.countMethod(x.p.Key, ResultRenewed, methodOf(s))
	h.record(ctx, session.Event{Kind: session.EventRefreshed, Policy: x.p.Key, User: s.User, Session: s.ID, By: session.ByUser, Client: client, Expires: s.Expires})
	return access, refresh, s, nil
}

// methodOf is the sign-in method a session began with.
func methodOf(s session.Session) string {
	if s.Origin.Method != "" {
		return s.Origin.Method
	}
	return MethodPassword
}
