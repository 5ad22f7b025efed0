package policy

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// Reason says why a decision came out as it did. The set is small and fixed: it is
// a metrics label.
type Reason string

const (
	ReasonAllowed      Reason = "allowed"
	ReasonPublic       Reason = "public"
	ReasonAPIKey       Reason = "api_key"
	ReasonMissingToken Reason = "missing_token"
	ReasonTooLarge     Reason = "too_large"
	ReasonMalformed    Reason = "malformed"
	ReasonAlgorithm    Reason = "algorithm"
	ReasonUnknownKey   Reason = "unknown_key"
	ReasonBadSignature Reason = "bad_signature"
	ReasonNoExpiry     Reason = "no_exp"
	ReasonExpired      Reason = "expired"
	ReasonNotYetValid  Reason = "not_yet_valid"
	ReasonIssuer       Reason = "issuer"
	ReasonAudience     Reason = "audience"
	ReasonBadAPIKey    Reason = "bad_api_key"
	ReasonRevoked      Reason = "revoked"
	ReasonRole         Reason = "role"
	ReasonClaim        Reason = "claim"
	ReasonBadRequest   Reason = "bad_request" // X-Original-URL / X-Original-Method missing or refused
	ReasonNoPolicy     Reason = "no_policy"
)

// Result is the class of a decision, as the metrics name it.
func (d Decision) Result() string {
	switch d.Status {
	case http.StatusOK:
		return "allow"
	case http.StatusUnauthorized:
		return "unauthenticated"
	default:
		return "forbidden"
	}
}

// Request is what a decision reads: the original method and normalized path, and
// the subrequest's headers (tokens, cookies, API keys, and the method override
// headers, see OverrideMethods). Doors fill it from what the proxy sent; the
// decision itself reads the override headers, so that every door gets them.
type Request struct {
	Method string // any case: methods compare case-insensitively
	Path   string // normalized, see ParseOriginalURL
	Header http.Header
}

// The method override headers many frameworks honor (Rails, Laravel,
// Express's method-override, ASP.NET, Spring's filter): a request decided for
// its method must also pass for the method these name.
var overrideHeaders = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// maxOverrides bounds the override methods a request may name: each one costs
// a rule match.
const maxOverrides = 8

// OverrideMethods returns the methods named by the method override headers
// of h (canonical names, as net/http and the doors store them), upper-cased,
// without duplicates or the request's own method. ok is false when they
// name more than maxOverrides: such a request is refused.
func OverrideMethods(h http.Header, method string) (out []string, ok bool) {
	for _, name := range overrideHeaders {
		for _, v := range h[name] {
			for part := range strings.SplitSeq(v, ",") {
				m := strings.ToUpper(strings.TrimSpace(part))
				if m == "" || m == method || slices.Contains(out, m) {
					continue
				}
				if len(out) == maxOverrides {
					return nil, false
				}
				out = append(out, m)
			}
		}
	}
	return out, true
}

// Decision is the answer: exactly 200, 401 or 403.
type Decision struct {
	Status      int
	Reason      Reason
	Description string    // for WWW-Authenticate's error_description (401 only)
	TokenSent   bool      // a token or API key came (selects the 401 form)
	Identity    *Identity // set when a token or API key verified
	Cached      bool      // the token's verification came from the cache
	Rule        int       // index in spec.rules of the rule that applied, or -1
}

// SessionChecker says whether a session of a policy is still alive; used for
// policies with spec.login.revocation: strict.
type SessionChecker interface {
	SessionAlive(policy, session string) bool
}

// Decide answers one request. It reads only the compiled policy and, on a cache
// miss, verifies the token; it never fails open. Methods compare
// case-insensitively, and a request whose override headers name other
// methods must pass for each of them too: the strictest answer is returned.
func (p *Policy) Decide(now time.Time, req Request, sessions SessionChecker) Decision {
	method := strings.ToUpper(req.Method) // no copy when already upper case
	d := p.decide(now, method, req, sessions)
	if !hasOverride(req.Header) {
		return d
	}
	others, ok := OverrideMethods(req.Header, method)
	if !ok {
		return Decision{Status: http.StatusForbidden, Reason: ReasonBadRequest, Rule: -1}
	}
	for _, m := range others {
		if o := p.decide(now, m, req, sessions); strictness(o.Status) > strictness(d.Status) {
			d = o
		}
	}
	return d
}

func hasOverride(h http.Header) bool {
	for _, name := range overrideHeaders {
		if len(h[name]) > 0 {
			return true
		}
	}
	return false
}

// strictness orders answers: a refusal beats a challenge beats an allow.
func strictness(status int) int {
	switch status {
	case http.StatusOK:
		return 0
	case http.StatusUnauthorized:
		return 1
	default:
		return 2
	}
}

// decide answers for one upper-case method.
func (p *Policy) decide(now time.Time, method string, req Request, sessions SessionChecker) Decision {
	r := p.shape.rules.match(req.Path, method)
	d := Decision{Rule: -1}
	if r != nil {
		d.Rule = r.index
		if r.public {
			d.Status, d.Reason = http.StatusOK, ReasonPublic
			return d
		}
	}
	token := p.findToken(req.Header)
	var id *Identity
	switch {
	case token != "":
		d.TokenSent = true
		var verr *verifyError
		id, d.Cached, verr = p.identify(token, now)
		if verr != nil {
			d.Status, d.Reason, d.Description = http.StatusUnauthorized, verr.reason, verr.desc
			return d
		}
		// Only the policy's own tokens name its sessions: an IdP's token may carry
		// a sid of its own, which means nothing to our store.
		if id.Own && p.Login.Revocation == v1alpha1.RevocationStrict && (id.Session == "" || sessions == nil || !sessions.SessionAlive(p.Key, id.Session)) {
			d.Status, d.Reason, d.Description = http.StatusUnauthorized, ReasonRevoked, "session has ended"
			return d
		}
	case p.apiKeys != nil && req.Header.Get(p.apiKeys.header) != "":
		d.TokenSent = true
		id = p.apiKeys.lookup(req.Header.Get(p.apiKeys.header))
		if id == nil {
			d.Status, d.Reason, d.Description = http.StatusUnauthorized, ReasonBadAPIKey, "API key is not valid"
			return d
		}
	default:
		d.Status, d.Reason = http.StatusUnauthorized, ReasonMissingToken
		return d
	}
	d.Identity = id
	if r != nil {
		if len(r.roles) > 0 && !hasAnyRole(id, r.roles) {
			d.Status, d.Reason = http.StatusForbidden, ReasonRole
			return d
		}
		for i := range r.claims {
			c := &r.claims[i]
			if !c.holds(&id.claims[c.slot]) {
				d.Status, d.Reason = http.StatusForbidden, ReasonClaim
				return d
			}
		}
	}
	d.Status, d.Reason = http.StatusOK, ReasonAllowed
	if id.APIKey {
		d.Reason = ReasonAPIKey
	}
	return d
}

// identify returns the identity of a token, from the cache or by verifying it.
func (p *Policy) identify(token string, now time.Time) (*Identity, bool, *verifyError) {
	if p.cache == nil {
		id, err := p.verify(token, now)
		return id, false, err
	}
	k := tokenKey(token, p.id)
	if id := p.cache.get(k, now); id != nil {
		return id, true, nil
	}
	id, err := p.verify(token, now)
	if err == nil {
		p.cache.put(k, id)
	}
	return id, false, err
}

func hasAnyRole(id *Identity, want []string) bool {
	have := id.claims[rolesSlot].elems
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}

// findToken returns the token of the first source that holds one.
func (p *Policy) findToken(h http.Header) string {
	for _, s := range p.shape.sources {
		if s.header != "" {
			v := headerValueOf(h, s.header)
			if v == "" {
				continue
			}
			if s.prefix != "" {
				if len(v) < len(s.prefix) || !strings.EqualFold(v[:len(s.prefix)], s.prefix) {
					continue
				}
				v = v[len(s.prefix):]
			}
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
			continue
		}
		if c := cookieValue(h, s.cookie); c != "" {
			return c
		}
	}
	return ""
}

// headerValueOf reads a header whose name is already canonical without the
// allocation http.Header.Get may make.
func headerValueOf(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// cookieValue reads one cookie with net/http's own lenient parser, which skips
// malformed cookies of other applications instead of failing the whole header.
func cookieValue(h http.Header, name string) string {
	if len(h["Cookie"]) == 0 {
		return ""
	}
	c, err := (&http.Request{Header: h}).Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
