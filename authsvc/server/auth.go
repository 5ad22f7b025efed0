// Package server holds jwtgate's HTTP doors (auth_request, forward auth,
// Envoy's HTTP ext_authz) and the mux that puts them beside the sign-in pages.
// What the doors share (the policy choice, Decide, the answer's rules, metrics
// and audit) is in authsvc/door.
package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/door"
	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// AuthPath is the auth_request door; /jwtgate/auth/{namespace}/{name} names
// the policy, /jwtgate/auth alone routes by the original request's host.
const AuthPath = "/jwtgate/auth"

// Auth answers auth_request subrequests: exactly 200, 401 or 403, always with an
// empty body, because nginx reads only the headers and any body costs it the
// keepalive connection.
type Auth struct {
	Checker *door.Checker
	// ClientAddr names the client of a subrequest in log lines (X-Real-IP or
	// X-Forwarded-For, believed only from trusted proxies); nil: the peer.
	ClientAddr func(*http.Request) string
}

var (
	zeroLength = []string{"0"}
	noStore    = []string{"no-store"}
)

// The messages of the auth_request door's refusals; each says how to fix the
// proxy's configuration.
const (
	msgOriginalMissing = "refusing auth request: X-Original-URL must be an absolute URL with a clean path and X-Original-Method must be set (proxy_set_header X-Original-URL $scheme://$http_host$request_uri; proxy_set_header X-Original-Method $request_method)"
	msgForwardAuthOnly = "refusing auth request: it carries X-Forwarded-Uri but no X-Original-URL, as Traefik (also its ingress-nginx provider) and Caddy send; point the auth-url annotation or the proxy's forward-auth address at /jwtgate/forward-auth/{namespace}/{name} instead of /jwtgate/auth"
	msgForwardedDiffer = "refusing auth request: X-Original-URL or X-Original-Method disagrees with the X-Forwarded-* header the proxy set, so a client may have forged X-Original-URL; a proxy that sets X-Forwarded-Uri/-Method/-Host and passes client headers through (Traefik, also its ingress-nginx provider; Caddy) must use the forward-auth door: point its auth address at /jwtgate/forward-auth/{namespace}/{name}"
)

func (a *Auth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := door.Query{Door: door.AuthRequest, Start: time.Now(), Header: r.Header}
	// net/http stores header names canonically ("X-Original-Url"): reading the
	// map directly spares Header.Get a canonicalization and an allocation.
	rawURL := firstValue(r.Header, "X-Original-Url")
	method := firstValue(r.Header, "X-Original-Method")
	orig, origOK := door.ParseURL(rawURL)
	q.Original = door.Original{Method: method, HostName: orig.Host, Path: orig.Path}
	q.PolicyKey = policyKeyOf(r.URL.Path, AuthPath)
	q.RequestID = firstValue(r.Header, "X-Request-Id")
	q.HTTP, q.ClientOf = r, a.ClientAddr

	var res door.Result
	switch {
	case rawURL == "" && firstValue(r.Header, door.HeaderForwardedURI) != "":
		res = a.Checker.Refuse(r.Context(), &q, msgForwardAuthOnly)
	case !origOK || method == "":
		res = a.Checker.Refuse(r.Context(), &q, msgOriginalMissing,
			"url", door.Truncate(door.WithoutQuery(rawURL)), "method", door.Truncate(method))
	default:
		if h := forwardedDisagrees(r.Header, orig, method); h != "" {
			res = a.Checker.Refuse(r.Context(), &q, msgForwardedDiffer, "header", h)
		} else {
			res = a.Checker.Check(r.Context(), &q)
		}
	}

	ans := door.Respond(&q, res)
	h := w.Header()
	h["Content-Length"] = zeroLength
	h["Cache-Control"] = noStore
	for _, fh := range ans.Set {
		h[fh.Name] = fh.Values
	}
	if ans.WWWAuthenticate != "" {
		h["Www-Authenticate"] = []string{ans.WWWAuthenticate}
	}
	w.WriteHeader(ans.Status)
}

// forwardedDisagrees names the X-Forwarded-* header that a forward-auth proxy
// (Traefik, Caddy) set and that disagrees with X-Original-URL or
// X-Original-Method: such a proxy passes a client's forged X-Original-URL
// through, so the auth_request door must not believe it. Paths compare
// normalized, methods and hosts case-insensitively, hosts without the port. An
// absent or empty header is no disagreement: nginx and ingress-nginx set none
// of them, so there they can only be the client's own, and a client can only
// refuse itself.
func forwardedDisagrees(h http.Header, orig policy.OriginalRequest, method string) string {
	if m := strings.TrimSpace(firstValue(h, door.HeaderForwardedMethod)); m != "" && !strings.EqualFold(m, method) {
		return door.HeaderForwardedMethod
	}
	if u := firstValue(h, door.HeaderForwardedURI); u != "" {
		var path string
		var ok bool
		if u[0] == '/' {
			path, ok = door.ParseTarget(u)
		} else {
			var abs policy.OriginalRequest
			abs, ok = policy.ParseOriginalURL(u)
			path = abs.Path
		}
		if !ok || path != orig.Path {
			return door.HeaderForwardedURI
		}
	}
	if v := firstValue(h, door.HeaderForwardedHost); v != "" {
		fh, _, _ := strings.Cut(v, ",")
		name, ok := door.ParseAuthority(strings.TrimSpace(fh))
		if !ok || name != orig.Host {
			return door.HeaderForwardedHost
		}
	}
	return ""
}

func firstValue(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}
