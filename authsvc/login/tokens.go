package login

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/session"
)

// issueAccess signs an access token for a session: sub, iss, aud, iat, exp, jti,
// sid and the roles under the policy's rolesClaim (a dotted path is nested:
// "realm_access.roles" becomes {"realm_access":{"roles":[...]}}). The kid header
// comes from the signing key.
func issueAccess(p *policy.Policy, s session.Session, roles []string, now time.Time) (string, error) {
	l := p.Login
	jti, err := session.NewID()
	if err != nil {
		return "", err
	}
	tok, err := jwt.NewBuilder().
		Subject(s.User).
		Issuer(l.Issuer).
		Audience(l.Audience).
		IssuedAt(now).
		Expiration(now.Add(l.AccessTTL)).
		JwtID(jti).
		Claim("sid", s.ID).
		Build()
	if err != nil {
		return "", fmt.Errorf("building the access token: %w", err)
	}
	if roles == nil {
		roles = []string{}
	}
	name, value := nestClaim(l.RolesClaim, roles)
	if err := tok.Set(name, value); err != nil {
		return "", fmt.Errorf("setting %s: %w", l.RolesClaim, err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(l.Signer.Alg, l.Signer.Key))
	if err != nil {
		return "", fmt.Errorf("signing the access token: %w", err)
	}
	return string(signed), nil
}

// nestClaim turns a dotted claim path into its top-level name and nested value.
func nestClaim(path string, v any) (string, any) {
	parts := strings.Split(path, ".")
	for i := len(parts) - 1; i > 0; i-- {
		v = map[string]any{parts[i]: v}
	}
	return parts[0], v
}

// refreshCookiePath scopes the refresh cookie to jwtgate's own pages, so that
// browsers never send it to the applications behind the proxy.
const refreshCookiePath = "/jwtgate/"

func setTokenCookies(w http.ResponseWriter, l *policy.Login, access, refresh string) {
	http.SetCookie(w, &http.Cookie{
		Name: policy.AccessCookie, Value: access, Path: "/", Domain: l.Cookie.Domain,
		MaxAge: int(l.AccessTTL / time.Second), HttpOnly: true, Secure: l.Cookie.Secure, SameSite: l.Cookie.SameSite,
	})
	http.SetCookie(w, &http.Cookie{
		Name: policy.RefreshCookie, Value: refresh, Path: refreshCookiePath, Domain: l.Cookie.Domain,
		MaxAge: int(l.RefreshTTL / time.Second), HttpOnly: true, Secure: l.Cookie.Secure, SameSite: l.Cookie.SameSite,
	})
}

func clearTokenCookies(w http.ResponseWriter, l *policy.Login) {
	for _, c := range []struct{ name, path string }{{policy.AccessCookie, "/"}, {policy.RefreshCookie, refreshCookiePath}} {
		http.SetCookie(w, &http.Cookie{
			Name: c.name, Value: "", Path: c.path, Domain: l.Cookie.Domain, MaxAge: -1,
			HttpOnly: true, Secure: l.Cookie.Secure, SameSite: l.Cookie.SameSite,
		})
	}
}
