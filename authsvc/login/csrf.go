package login

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// CSRF protection of the sign-in form: a per-form random nonce in a cookie, and
// in the form HMAC(key, policy, nonce), where the key is derived (HKDF) from the
// policy's private signing key. A forged cross-site POST lacks the cookie (it is
// SameSite=Lax, and __Host- when the policy's cookies are Secure, so a sibling
// subdomain cannot plant one); a page that plants its own nonce cookie cannot
// compute the matching field without the key. Every replica holding the same
// signing key accepts the same forms, so no extra shared secret is needed.
const (
	csrfField      = "jwtgate_csrf"
	csrfCookie     = "jwtgate_csrf"
	csrfHostCookie = "__Host-jwtgate_csrf"
	csrfMaxAge     = 3600
)

func csrfCookieName(p *policy.Policy) string {
	if p.Login.Cookie.Secure {
		return csrfHostCookie
	}
	return csrfCookie
}

func csrfMAC(key []byte, policyKey, nonce string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(policyKey))
	m.Write([]byte{0})
	m.Write([]byte(nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issueCSRF sets a fresh nonce cookie and returns the form field's value.
func (h *Handler) issueCSRF(w http.ResponseWriter, p *policy.Policy) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookieName(p), Value: nonce, Path: "/", MaxAge: csrfMaxAge,
		HttpOnly: true, Secure: p.Login.Cookie.Secure, SameSite: http.SameSiteLaxMode,
	})
	return csrfMAC(p.Login.CSRFKey, p.Key, nonce), nil
}

// checkCSRF reports whether the form's field matches its nonce cookie.
func (h *Handler) checkCSRF(r *http.Request, p *policy.Policy) bool {
	field := r.PostFormValue(csrfField)
	c, err := r.Cookie(csrfCookieName(p))
	if err != nil || c.Value == "" || field == "" {
		return false
	}
	return hmac.Equal([]byte(field), []byte(csrfMAC(p.Login.CSRFKey, p.Key, c.Value)))
}
