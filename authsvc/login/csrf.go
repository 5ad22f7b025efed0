package login

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"sync"

	"github.com/lestrrat-go/jwx/v3/jwk"

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

type csrfKeys struct {
	m sync.Map // signer kid -> []byte
}

func (c *csrfKeys) key(l *policy.Login) ([]byte, error) {
	if k, ok := c.m.Load(l.Signer.ID); ok {
		return k.([]byte), nil
	}
	var raw any
	if err := jwk.Export(l.Signer.Key, &raw); err != nil {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("encoding the signing key: %w", err)
	}
	k, err := hkdf.Key(sha256.New, der, nil, "jwtgate sign-in form CSRF v1", 32)
	if err != nil {
		return nil, err
	}
	c.m.Store(l.Signer.ID, k)
	return k, nil
}

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
	key, err := h.csrf.key(p.Login)
	if err != nil {
		return "", err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookieName(p), Value: nonce, Path: "/", MaxAge: csrfMaxAge,
		HttpOnly: true, Secure: p.Login.Cookie.Secure, SameSite: http.SameSiteLaxMode,
	})
	return csrfMAC(key, p.Key, nonce), nil
}

// checkCSRF reports whether the form's field matches its nonce cookie.
func (h *Handler) checkCSRF(r *http.Request, p *policy.Policy) bool {
	field := r.PostFormValue(csrfField)
	c, err := r.Cookie(csrfCookieName(p))
	if err != nil || c.Value == "" || field == "" {
		return false
	}
	key, err := h.csrf.key(p.Login)
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(field), []byte(csrfMAC(key, p.Key, c.Value)))
}
