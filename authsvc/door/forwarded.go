package door

import (
	"net/http"
	"strings"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// The headers forward-auth proxies (Traefik ForwardAuth, Caddy forward_auth,
// HAProxy) set on their check request, replacing any a client sent.
const (
	HeaderForwardedMethod = "X-Forwarded-Method"
	HeaderForwardedProto  = "X-Forwarded-Proto"
	HeaderForwardedHost   = "X-Forwarded-Host"
	HeaderForwardedURI    = "X-Forwarded-Uri"
)

// ReadError says which header of a check request a door could not read, and
// why; the door's log line names it.
type ReadError struct {
	Header  string
	Problem string // "is missing", "is not ..."
}

func (e *ReadError) Error() string { return e.Header + " " + e.Problem }

// ParseForwarded reads the original request from the four X-Forwarded-*
// headers of a forward-auth check: all are required. X-Forwarded-Uri is the
// path and query ("/a?b"), or an absolute URL whose host must be
// X-Forwarded-Host's; X-Forwarded-Host may carry a port or be an IPv6 address
// in brackets; X-Forwarded-Proto is http or https (ws and wss, which Traefik
// sends for WebSocket upgrades, read as http and https). A list (a, b) is read
// by its first element, as proxies append theirs.
func ParseForwarded(h http.Header) (Original, *ReadError) {
	var o Original
	method := strings.TrimSpace(firstValue(h, HeaderForwardedMethod))
	proto := firstElement(h, HeaderForwardedProto)
	authority := firstElement(h, HeaderForwardedHost)
	target := firstValue(h, HeaderForwardedURI)
	for _, v := range []struct{ name, value string }{
		{HeaderForwardedMethod, method}, {HeaderForwardedProto, proto}, {HeaderForwardedHost, authority}, {HeaderForwardedURI, target},
	} {
		if v.value == "" {
			return o, &ReadError{Header: v.name, Problem: "is missing"}
		}
	}
	if !ValidMethod(method) {
		return o, &ReadError{Header: HeaderForwardedMethod, Problem: "is not an HTTP method"}
	}
	o.Method = method
	switch strings.ToLower(proto) {
	case "http", "ws":
		o.Scheme = "http"
	case "https", "wss":
		o.Scheme = "https"
	default:
		return o, &ReadError{Header: HeaderForwardedProto, Problem: "is not http or https"}
	}
	name, ok := ParseAuthority(authority)
	if !ok {
		return o, &ReadError{Header: HeaderForwardedHost, Problem: "is not a host name with an optional port"}
	}
	o.Authority, o.HostName = authority, name
	if target[0] != '/' {
		// An absolute URL: its host must be the one X-Forwarded-Host names.
		abs, ok := policy.ParseOriginalURL(target)
		if !ok {
			return o, &ReadError{Header: HeaderForwardedURI, Problem: "is not a path or an absolute URL with a clean path"}
		}
		if abs.Host != name {
			return o, &ReadError{Header: HeaderForwardedURI, Problem: "names another host than X-Forwarded-Host"}
		}
		o.Path, o.Target = abs.Path, targetOf(target)
		return o, nil
	}
	path, ok := ParseTarget(target)
	if !ok {
		return o, &ReadError{Header: HeaderForwardedURI, Problem: "is not a clean path (encoded slash, backslash, NUL, ';', bad escape, or fragment)"}
	}
	o.Path, o.Target = path, target
	return o, nil
}

// targetOf is the path and query of an absolute URL that parsed.
func targetOf(abs string) string {
	_, rest, _ := strings.Cut(abs, "://")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		if rest[i] == '?' {
			return "/" + rest[i:]
		}
		return rest[i:]
	}
	return "/"
}

// firstValue is a header's first value; canonical is its canonical name.
func firstValue(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// firstElement is the first element of a header's first value, trimmed: the
// one the first proxy wrote when others appended theirs.
func firstElement(h http.Header, canonical string) string {
	s := firstValue(h, canonical)
	if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// ValidMethod reports whether m can be an HTTP method: a token (RFC 9110
// 5.6.2) of at most 32 bytes.
func ValidMethod(m string) bool {
	if m == "" || len(m) > 32 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
