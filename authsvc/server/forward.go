package server

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/door"
)

// ForwardAuthPath is the forward-auth door (Traefik ForwardAuth and its
// ingress-nginx provider, Caddy forward_auth, HAProxy):
// /jwtgate/forward-auth/{namespace}/{name} names the policy, the path alone
// routes by X-Forwarded-Host.
const ForwardAuthPath = "/jwtgate/forward-auth"

// ForwardAuth answers forward-auth checks. The original request is read from
// X-Forwarded-Method, -Proto, -Host and -Uri, which these proxies set
// themselves (replacing a client's); all four are required. Answers: 200 with
// every forwardClaims header; a browser's page load that needs signing in 302
// to the sign-in page; 401 with WWW-Authenticate; 403.
type ForwardAuth struct {
	Checker    *door.Checker
	ClientAddr func(*http.Request) string
}

const msgForwardedMissing = "refusing forward-auth request: the proxy must set X-Forwarded-Method, X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri (Traefik ForwardAuth and Caddy forward_auth do; HAProxy's Lua script must)"

func (f *ForwardAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := door.Query{Door: door.ForwardAuth, Start: time.Now(), Header: r.Header}
	q.PolicyKey = policyKeyOf(requestPath(r), ForwardAuthPath)
	q.RequestID = firstValue(r.Header, "X-Request-Id")
	q.HTTP, q.ClientOf = r, f.ClientAddr
	var res door.Result
	o, err := door.ParseForwarded(r.Header)
	q.Original = o
	if err != nil {
		res = f.Checker.Refuse(r.Context(), &q, msgForwardedMissing, "problem", err.Error())
	} else {
		res = f.Checker.Check(r.Context(), &q)
	}
	writeHTTPAnswer(w, door.Respond(&q, res))
}

// requestPath is the path of the raw request target, undecoded: the doors
// read their own URL as the proxy wrote it, before any ServeMux cleans it.
func requestPath(r *http.Request) string {
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	if i := strings.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	return target
}

// policyKeyOf reads the policy a door's own path names: base alone (or with a
// trailing slash) routes by host (""), base/{namespace}/{name} names
// "namespace/name"; anything else is "-", which names no policy.
func policyKeyOf(path, base string) string {
	rest, ok := strings.CutPrefix(path, base)
	if !ok {
		return "-"
	}
	if rest == "" || rest == "/" {
		return ""
	}
	key, ok := strings.CutPrefix(rest, "/")
	if !ok {
		return "-"
	}
	ns, name, ok := strings.Cut(key, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return "-"
	}
	return key
}

var (
	textPlain = []string{"text/plain; charset=utf-8"}
)

// writeHTTPAnswer writes an answer for the forward-auth and Envoy HTTP doors.
// An allow is exactly 200 with the forwardClaims headers and nothing else a
// proxy copying the auth answer's headers upstream could pass on (Date,
// Content-Length and hop-by-hop headers aside); a denial has a short plain-text
// body, which the proxy shows the client.
func writeHTTPAnswer(w http.ResponseWriter, ans door.Answer) {
	h := w.Header()
	switch ans.Status {
	case http.StatusOK:
		for _, fh := range ans.Set {
			h[fh.Name] = fh.Values
		}
		h["Content-Length"] = zeroLength
		w.WriteHeader(http.StatusOK)
		return
	case http.StatusFound:
		h["Location"] = []string{ans.Location}
	case http.StatusUnauthorized:
		h["Www-Authenticate"] = []string{ans.WWWAuthenticate}
	}
	h["Cache-Control"] = noStore
	h["Content-Type"] = textPlain
	body := http.StatusText(ans.Status) + "\n"
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(ans.Status)
	_, _ = w.Write([]byte(body))
}
