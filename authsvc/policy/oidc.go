package policy

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
)

// Defaults and bounds of spec.login.oidc.
const (
	DefaultOIDCMaxSessionAge = 24 * time.Hour
	MinOIDCMaxSessionAge     = 5 * time.Minute
	MaxOIDCMaxSessionAge     = 90 * 24 * time.Hour
	DefaultOIDCUsernameClaim = "sub"
	DefaultOIDCDisplayName   = "Sign in with your identity provider"
	// OIDCCallbackPath is where the provider sends the browser back.
	OIDCCallbackPath = "/jwtgate/oidc/callback"
	// maxOIDCUsername bounds a user name taken from an ID token.
	maxOIDCUsername = 256
)

// DefaultOIDCScopes are the scopes asked for when spec.login.oidc.scopes is empty.
var DefaultOIDCScopes = []string{"openid", "email", "profile"}

// OIDC is the compiled spec.login.oidc: what the relying party needs to send
// people to the provider and to map the ID token it gets back.
type OIDC struct {
	IssuerURL     string
	ClientID      string
	ClientSecret  string // "" for a public client
	Scopes        []string
	UsernameClaim string
	RolesClaim    string // the ID token's claim; "" reads no roles
	DisplayName   string
	MaxSessionAge time.Duration
	// RedirectURL is the fixed callback URL, or "" for the callback on the
	// host where the flow started.
	RedirectURL string
	// Leeway is the clock skew allowed on the ID token's exp and iat
	// (spec.jwt.leeway, default 30s).
	Leeway time.Duration
	// FlowKey seals the flow cookie (state, nonce, PKCE verifier). It is
	// derived from the signing key, so every replica opens the cookies the
	// others set.
	FlowKey []byte

	allowed []claimCheck
	slots   claimSlots // claim paths of allowed, by slot
	users   func(string) bool
	apiKeys *apiKeyTable
}

// Mapped is who an ID token signs in.
type Mapped struct {
	User  string
	Roles []string
}

// Refusal says why a provider's user may not sign in (403). Its message is
// for the log and the audit line; the page says less.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

// Identify maps the verified claims of an ID token to a user and roles, or
// refuses the user: the username claim missing or unusable, an unverified
// email, an allowedValues condition that fails, or a name that the users
// Secret or an API key already holds (never merged).
func (o *OIDC) Identify(claims map[string]any) (Mapped, *Refusal) {
	raw, ok := resolveClaim(claims, o.UsernameClaim)
	name, isString := raw.(string)
	switch {
	case !ok || raw == nil:
		return Mapped{}, &Refusal{fmt.Sprintf("the ID token has no %q claim (spec.login.oidc.usernameClaim)", o.UsernameClaim)}
	case !isString || name == "":
		return Mapped{}, &Refusal{fmt.Sprintf("the ID token's %q claim is not a non-empty string", o.UsernameClaim)}
	case len(name) > maxOIDCUsername || strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }):
		return Mapped{}, &Refusal{fmt.Sprintf("the ID token's %q claim is too long or holds control characters", o.UsernameClaim)}
	}
	if o.UsernameClaim == "email" {
		v, _ := resolveClaim(claims, "email_verified")
		if !(v == true || v == "true") {
			return Mapped{}, &Refusal{"the email address is not verified (email_verified is not true)"}
		}
	}
	for i := range o.allowed {
		c := &o.allowed[i]
		v := newClaimValue(resolveClaim(claims, o.slots[c.slot]))
		if !c.holds(&v) {
			return Mapped{}, &Refusal{fmt.Sprintf("spec.login.oidc.allowedValues[%d] (claim %q) does not hold", i, o.slots[c.slot])}
		}
	}
	if o.users != nil && o.users(name) {
		return Mapped{}, &Refusal{fmt.Sprintf("%q is also a user of the users Secret: provider users are never merged with them", name)}
	}
	if o.apiKeys.hasName(name) {
		return Mapped{}, &Refusal{fmt.Sprintf("%q is also the name of an API key: provider users are never merged with them", name)}
	}
	m := Mapped{User: name}
	if o.RolesClaim != "" {
		v := newClaimValue(resolveClaim(claims, o.RolesClaim))
		for _, r := range v.elems {
			if r != "" && !slices.Contains(m.Roles, r) {
				m.Roles = append(m.Roles, r)
			}
		}
	}
	return m, nil
}

func (t *apiKeyTable) hasName(name string) bool {
	if t == nil {
		return false
	}
	for i := range t.keys {
		if t.keys[i].name == name {
			return true
		}
	}
	return false
}

// CheckProviderURL checks an OpenID provider URL: https, or http only to a
// loopback host (a provider in a test). field names it in the message.
func CheckProviderURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: write it as https://HOST[/PATH]", raw)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q has no host: write it as https://HOST[/PATH]", u.Redacted())
	}
	if u.User != nil {
		return fmt.Errorf("%q holds credentials: put secrets in a Secret, not in the URL", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q has a query or fragment: %s may not have one", u.Redacted(), field)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if loopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q uses http to a host that is not loopback: use https:// (http is allowed only to 127.0.0.1, ::1 and localhost, for tests)", u.Redacted())
	default:
		return fmt.Errorf("%q has scheme %q: use https://", u.Redacted(), u.Scheme)
	}
}

func loopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostCovered reports whether host is one of hosts, exactly or under a "*."
// wildcard one label deep.
func hostCovered(host string, hosts []string) bool {
	for _, h := range hosts {
		if h == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == suffix {
				return true
			}
		}
	}
	return false
}

func compileOIDC(p *Policy, spec *v1alpha1.AuthPolicySpec, out *Login, secrets secretReader, errs *problems) *OIDC {
	s := spec.Login.OIDC
	const f = "spec.login.oidc"
	o := &OIDC{
		IssuerURL:     s.IssuerURL,
		ClientID:      s.ClientID,
		UsernameClaim: s.UsernameClaim,
		RolesClaim:    s.RolesClaim,
		DisplayName:   s.DisplayName,
		MaxSessionAge: DefaultOIDCMaxSessionAge,
		RedirectURL:   s.RedirectURL,
		Leeway:        p.leeway,
		apiKeys:       p.apiKeys,
	}
	if o.IssuerURL == "" {
		errs.add(f+".issuerURL", v1alpha1.ReasonInvalidSpec, "the provider's issuer URL is required, e.g. https://idp.example.com/realms/main")
	} else if err := CheckProviderURL("issuerURL", o.IssuerURL); err != nil {
		errs.add(f+".issuerURL", v1alpha1.ReasonInvalidSpec, "%v", err)
	}
	if o.ClientID == "" {
		errs.add(f+".clientID", v1alpha1.ReasonInvalidSpec, "the client ID registered at the provider is required")
	}
	if ref := s.ClientSecretRef; ref != nil {
		if data, ok := secrets.key(f+".clientSecretRef", *ref); ok {
			o.ClientSecret = strings.TrimRight(string(data), "\r\n")
			p.trusts = append(p.trusts, trust{field: f + ".clientSecretRef", secret: ref.Name, key: ref.Key, sum: secretKeySum(data), kind: trustOIDCClient})
			if o.ClientSecret == "" {
				errs.add(f+".clientSecretRef", v1alpha1.ReasonInvalidSpec, "secret %s/%s key %q is empty: put the client secret there, or remove clientSecretRef for a public client", p.Namespace, ref.Name, ref.Key)
			}
		}
	}
	o.Scopes = []string{"openid"}
	scopes := s.Scopes
	if len(scopes) == 0 {
		scopes = DefaultOIDCScopes
	}
	for i, sc := range scopes {
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r > '~' }) {
			errs.add(fmt.Sprintf("%s.scopes[%d]", f, i), v1alpha1.ReasonInvalidSpec, "%q is not a scope: one word of printable ASCII, each scope its own item", sc)
			continue
		}
		if !slices.Contains(o.Scopes, sc) {
			o.Scopes = append(o.Scopes, sc)
		}
	}
	if o.UsernameClaim == "" {
		o.UsernameClaim = DefaultOIDCUsernameClaim
	}
	if o.DisplayName == "" {
		o.DisplayName = DefaultOIDCDisplayName
	}
	if s.MaxSessionAge != nil {
		if d := s.MaxSessionAge.Duration; d < MinOIDCMaxSessionAge || d > MaxOIDCMaxSessionAge {
			errs.add(f+".maxSessionAge", v1alpha1.ReasonInvalidSpec, "%s is out of range: use %s to %s", d, MinOIDCMaxSessionAge, MaxOIDCMaxSessionAge)
		} else {
			o.MaxSessionAge = d
		}
	}
	allWildcard := !slices.ContainsFunc(p.Hosts, func(h string) bool { return !strings.HasPrefix(h, "*.") })
	if o.RedirectURL == "" {
		if allWildcard && len(p.Hosts) > 0 {
			errs.add(f+".redirectURL", v1alpha1.ReasonInvalidSpec,
				"required when every host is a wildcard (%s): the provider can only send people back to a URL registered with it; set https://<one host>%s and register it at the provider",
				strings.Join(p.Hosts, ", "), OIDCCallbackPath)
		}
	} else {
		checkRedirectURL(o.RedirectURL, p.Hosts, out.Cookie.Domain, errs)
	}
	for i, cr := range s.AllowedValues {
		if c, ok := compileClaimCheck(cr, fmt.Sprintf("%s.allowedValues[%d]", f, i), o.slots.of, errs); ok {
			o.allowed = append(o.allowed, c)
		}
	}
	return o
}

func checkRedirectURL(raw string, hosts []string, cookieDomain string, errs *problems) {
	const field = "spec.login.oidc.redirectURL"
	if err := CheckProviderURL("redirectURL", raw); err != nil {
		errs.add(field, v1alpha1.ReasonInvalidSpec, "%v", err)
		return
	}
	u, _ := url.Parse(raw)
	if u.Path != OIDCCallbackPath {
		errs.add(field, v1alpha1.ReasonInvalidSpec, "the path of %q must be %s, where jwtgate answers the provider", raw, OIDCCallbackPath)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if !hostCovered(host, hosts) {
		errs.add(field, v1alpha1.ReasonInvalidSpec, "the host of %q is not one of spec.hosts (%s): the callback is routed to this policy by its host", raw, strings.Join(hosts, ", "))
		return
	}
	// People may start on any host of the policy; the callback sets the token
	// cookies on the redirectURL's host, so they must reach the other hosts.
	for _, h := range hosts {
		if h == host {
			continue
		}
		base := strings.TrimPrefix(h, "*.")
		if cookieDomain == "" || !(host == cookieDomain || strings.HasSuffix(host, "."+cookieDomain)) ||
			!(base == cookieDomain || strings.HasSuffix(base, "."+cookieDomain)) {
			errs.add(field, v1alpha1.ReasonInvalidSpec,
				"the callback host %s differs from host %s: set spec.login.cookie.domain to a parent domain of both, so that the cookies set at the callback reach %s", host, h, h)
			return
		}
	}
}

// deriveKey derives a 32-byte key for one purpose (info) from the private
// signing key with HKDF.
func deriveKey(s keys.Signer, info string) ([]byte, error) {
	var raw any
	if err := jwk.Export(s.Key, &raw); err != nil {
		return nil, fmt.Errorf("reading the signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("encoding the signing key: %w", err)
	}
	return hkdf.Key(sha256.New, der, nil, info, 32)
}
