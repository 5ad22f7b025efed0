package proxycheck

import (
	"slices"
	"strings"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// Policy is what the checker needs to know of an AuthPolicy.
type Policy struct {
	Namespace, Name string
	Hosts           []string
	// ForwardHeaders are the headers of spec.forwardClaims, as written.
	ForwardHeaders []string
	// SignsIn is true when the policy signs people in (spec.login).
	SignsIn bool
	// Cookies is true when tokens may come from a cookie: the policy signs
	// people in, or a token source names a cookie.
	Cookies bool
	// MethodRules is true when a rule is limited to some methods.
	MethodRules bool
	// RedirectHosts are the hosts a sign-in may send a browser back to.
	RedirectHosts []string
}

// PolicyFrom reads what the checker needs from an AuthPolicy.
func PolicyFrom(p *v1alpha1.AuthPolicy) Policy {
	out := Policy{Namespace: p.Namespace, Name: p.Name, Hosts: p.Spec.Hosts}
	for _, fc := range p.Spec.ForwardClaims {
		out.ForwardHeaders = append(out.ForwardHeaders, fc.Header)
	}
	if p.Spec.Login != nil {
		out.SignsIn, out.Cookies = true, true
		out.RedirectHosts = p.Spec.Login.AllowedRedirectHosts
	}
	if p.Spec.JWT != nil {
		for _, ts := range p.Spec.JWT.TokenSources {
			if ts.Cookie != "" {
				out.Cookies = true
			}
		}
	}
	for _, r := range p.Spec.Rules {
		if len(r.Methods) > 0 {
			out.MethodRules = true
		}
	}
	return out
}

// Key is "namespace/name".
func (p Policy) Key() string { return p.Namespace + "/" + p.Name }

// coversHost reports whether one of the policy's hosts matches host: exactly,
// or by a "*." pattern one label deep, as host routing matches.
func (p Policy) coversHost(host string) bool {
	return slices.ContainsFunc(p.Hosts, func(pattern string) bool { return hostMatches(pattern, host) })
}

func hostMatches(pattern, host string) bool {
	pattern, host = strings.ToLower(pattern), strings.ToLower(host)
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		label, rest, found := strings.Cut(host, ".")
		return found && label != "" && rest == suffix
	}
	return pattern == host
}

// hasHeader reports whether list names header, case-insensitively; "*" in
// list matches everything.
func hasHeader(list []string, header string) bool {
	header = strings.ToLower(header)
	return slices.ContainsFunc(list, func(h string) bool {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "*":
			return true
		case strings.HasSuffix(h, "*"): // Istio's "prefix*"
			return strings.HasPrefix(header, strings.TrimSuffix(h, "*"))
		case strings.HasPrefix(h, "*"): // and "*suffix"
			return strings.HasSuffix(header, strings.TrimPrefix(h, "*"))
		}
		return h == header
	})
}

// methodOverrideHeaders are the headers through which frameworks let a client
// change the method; jwtgate's decision holds for them too, if it sees them.
var methodOverrideHeaders = []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}
