package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/door"
)

// ExtAuthzPath is the Envoy HTTP ext_authz door. Envoy's path_prefix is
// /jwtgate/ext-authz/{namespace}/{name} (or /jwtgate/ext-authz/- to route by
// host), and Envoy appends the original path and query to it.
const ExtAuthzPath = "/jwtgate/ext-authz"

// ExtAuthz answers Envoy's HTTP ext_authz checks: the check request carries the
// original method, the prefix plus the original path and query, and Host = the
// original authority; X-Forwarded-Proto (default https), cookies, Accept and
// method overrides arrive only when allowed_headers lists them. It reads the raw
// request target, so nothing cleans or decodes the original path first. Allow
// is exactly 200 (Envoy denies on any other status, 202 and 204 included).
type ExtAuthz struct {
	Checker    *door.Checker
	ClientAddr func(*http.Request) string
}

const (
	msgExtAuthzPath = "refusing ext_authz request: the path_prefix must be /jwtgate/ext-authz/{namespace}/{name} or /jwtgate/ext-authz/- (host routing), followed by the original path"
	msgExtAuthzHost = "refusing ext_authz request: Host must be the original authority (a host name with an optional port)"
	msgExtAuthzURI  = "refusing ext_authz request: the original path after the prefix is not a clean path (encoded slash, backslash, NUL, ';', bad escape, or fragment)"
)

func (e *ExtAuthz) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := door.Query{Door: door.ExtAuthzHTTP, Start: time.Now(), Header: r.Header}
	q.RequestID = firstValue(r.Header, "X-Request-Id")
	q.HTTP, q.ClientOf = r, e.ClientAddr
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	key, original, ok := splitExtAuthz(target)
	q.PolicyKey = key
	q.Original.Method = r.Method
	var res door.Result
	switch {
	case !ok:
		res = e.Checker.Refuse(r.Context(), &q, msgExtAuthzPath, "path", door.Truncate(door.WithoutQuery(target)))
	default:
		q.Original.Target = original
		name, hostOK := door.ParseAuthority(r.Host)
		path, pathOK := door.ParseTarget(original)
		q.Original.Authority, q.Original.HostName, q.Original.Path = r.Host, name, path
		q.Original.Scheme = "https"
		if p := strings.ToLower(firstElement(r.Header, door.HeaderForwardedProto)); p == "http" || p == "ws" {
			q.Original.Scheme = "http"
		}
		switch {
		case !hostOK:
			res = e.Checker.Refuse(r.Context(), &q, msgExtAuthzHost, "host", door.Truncate(r.Host))
		case !pathOK:
			res = e.Checker.Refuse(r.Context(), &q, msgExtAuthzURI, "path", door.Truncate(door.WithoutQuery(original)))
		default:
			res = e.Checker.Check(r.Context(), &q)
		}
	}
	writeHTTPAnswer(w, door.Respond(&q, res))
}

// splitExtAuthz splits an ext_authz check's raw target into the policy key
// ("" for host routing) and the original request's path and query. Nothing
// after {name} is the path "/" (a query alone keeps its "?").
func splitExtAuthz(target string) (key, original string, ok bool) {
	rest, found := strings.CutPrefix(target, ExtAuthzPath+"/")
	if !found {
		return "-", "", false
	}
	if after, isHost := strings.CutPrefix(rest, "-"); isHost {
		key, rest = "", after
	} else {
		ns, afterNS, found := strings.Cut(rest, "/")
		if !found || ns == "" {
			return "-", "", false
		}
		end := strings.IndexAny(afterNS, "/?")
		if end < 0 {
			end = len(afterNS)
		}
		if end == 0 {
			return "-", "", false
		}
		key, rest = ns+"/"+afterNS[:end], afterNS[end:]
	}
	switch {
	case rest == "":
		return key, "/", true
	case rest[0] == '?':
		return key, "/" + rest, true
	case rest[0] == '/':
		return key, rest, true
	}
	return "-", "", false
}

// firstElement is the first element of a header's first value, trimmed.
func firstElement(h http.Header, canonical string) string {
	s, _, _ := strings.Cut(firstValue(h, canonical), ",")
	return strings.TrimSpace(s)
}
