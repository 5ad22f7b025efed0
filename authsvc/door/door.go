// Package door is what every front door of the decision service shares: the
// original request as a door read it (Original), the one policy choice and
// Decide call (Checker), and the rules that turn a Decision into an answer any
// proxy understands (Respond): the sign-in redirect, the challenge, the
// forwarded headers to set and to remove. The doors themselves (auth_request,
// forward auth and Envoy's HTTP ext_authz in authsvc/server, Envoy's gRPC
// ext_authz beside it) only read their proxy's request into a Query and write
// the Answer in their proxy's shape.
package door

import (
	"net/http"
	"strings"
)

// Kind names a door. It is a metrics label and an audit field: the set is
// fixed.
type Kind uint8

const (
	AuthRequest  Kind = iota // nginx, ingress-nginx: /jwtgate/auth
	ForwardAuth              // Traefik, Caddy, HAProxy: /jwtgate/forward-auth
	ExtAuthzHTTP             // Envoy ext_authz in HTTP mode: /jwtgate/ext-authz
	ExtAuthzGRPC             // Envoy ext_authz in gRPC mode: envoy.service.auth.v3.Authorization/Check
	numKinds
)

var kindNames = [numKinds]string{"auth_request", "forward_auth", "ext_authz_http", "ext_authz_grpc"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "unknown"
}

// SignsIn reports whether the door answers a browser's page load with the
// sign-in redirect itself. auth_request does not: nginx's auth-signin turns its
// 401 into the redirect (and nginx turns any 3xx from the auth service into a
// 500).
func (k Kind) SignsIn() bool { return k != AuthRequest }

// Original is the request a proxy asks about, as the door read it.
type Original struct {
	Method string // as the proxy sent it
	Scheme string // "http" or "https"
	// Authority is the host as the proxy sent it, port included (the sign-in
	// redirect keeps it); HostName is the same host in lower case without the
	// port (policy routing, the redirect's allow-list).
	Authority string
	HostName  string
	// Target is the path and query as sent (the sign-in redirect's rd); Path is
	// the normalized path the rules see (policy.NormalizePath).
	Target string
	Path   string
}

// URL is the original URL as the browser asked for it: scheme, authority,
// target. The sign-in page sends the browser back to it.
func (o *Original) URL(scheme string) string {
	return scheme + "://" + o.Authority + o.Target
}

// PageLoad reports whether the request is a browser's page load: GET or HEAD
// with text/html among the media types of Accept. Only those are sent to the
// sign-in page; an API call or a script's fetch gets 401.
func PageLoad(method string, h http.Header) bool {
	if !strings.EqualFold(method, http.MethodGet) && !strings.EqualFold(method, http.MethodHead) {
		return false
	}
	for _, v := range h["Accept"] {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}
