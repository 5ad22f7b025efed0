package door

import (
	"net/http"
	"net/url"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// LoginPath is the sign-in page the redirect of a browser's page load goes to.
const LoginPath = "/jwtgate/login"

// Answer is a decision in the shape every proxy understands; each door writes
// it in its own protocol.
type Answer struct {
	Status int // 200, 302, 401 or 403
	// Location is the absolute sign-in URL of a 302.
	Location string
	// WWWAuthenticate is the challenge of a 401 (RFC 6750).
	WWWAuthenticate string
	// Set are the headers of an allow: every forwardClaims header of the policy,
	// empty when the claim is absent, so that the proxy overwrites whatever the
	// client sent (a proxy that can delete a header, gRPC ext_authz with
	// headers_to_remove, deletes the empty ones). Nothing else is set on an
	// allow.
	Set []policy.Header
}

var (
	challengeMissing = `Bearer realm="jwtgate"`
)

// Challenge is the WWW-Authenticate value of a 401 decision.
func Challenge(d *policy.Decision) string {
	if d.TokenSent {
		return `Bearer realm="jwtgate", error="invalid_token", error_description="` + d.Description + `"`
	}
	return challengeMissing
}

// Respond turns a door's decision into its answer. p is the policy that
// decided (nil when none did). The rules, the same for every door:
//   - allow: 200 with every forwardClaims header (empty when the claim is
//     absent) and nothing else;
//   - unauthenticated: on a door that signs in (Kind.SignsIn), for a policy that
//     signs people in and a browser's page load (PageLoad), 302 to
//     <scheme>://<host>/jwtgate/login?rd=<original URL>, with the host as the
//     proxy sent it (port included) but only when that host is one of the
//     policy's hosts or allowedRedirectHosts, and the scheme https whenever the
//     policy's cookies are Secure; otherwise 401 with WWW-Authenticate;
//   - anything else: 403.
func Respond(q *Query, r Result) Answer {
	d := &r.Decision
	switch d.Status {
	case http.StatusOK:
		a := Answer{Status: http.StatusOK}
		if d.Identity != nil {
			a.Set = d.Identity.Headers
		} else if r.Policy != nil {
			a.Set = r.Policy.BlankForwardHeaders()
		}
		return a
	case http.StatusUnauthorized:
		if loc := signInURL(q, r.Policy); loc != "" {
			return Answer{Status: http.StatusFound, Location: loc}
		}
		return Answer{Status: http.StatusUnauthorized, WWWAuthenticate: Challenge(d)}
	default:
		return Answer{Status: http.StatusForbidden}
	}
}

// signInURL is the sign-in redirect for q, or "" when q gets a 401 instead.
func signInURL(q *Query, p *policy.Policy) string {
	o := &q.Original
	if !q.Door.SignsIn() || p == nil || p.Login == nil || o.Authority == "" || o.Target == "" || !PageLoad(o.Method, q.Header) {
		return ""
	}
	if !policy.HostMatches(o.HostName, p.Hosts) && !policy.HostMatches(o.HostName, p.Login.AllowedRedirectHosts) {
		return ""
	}
	scheme := "https"
	if !p.Login.Cookie.Secure && o.Scheme == "http" {
		// A Secure cookie cannot be set over http; a policy whose cookies are
		// not Secure may run on plain http, and then the proxy's word is used.
		scheme = "http"
	}
	return scheme + "://" + o.Authority + LoginPath + "?rd=" + url.QueryEscape(o.URL(scheme))
}
