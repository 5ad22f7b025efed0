package login

import (
	"net/url"
	"strings"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// maxRedirect bounds rd; nginx's own URLs are far shorter.
const maxRedirect = 4096

// SafeRedirect returns where to send the browser after signing in or out: rd when
// it is a path on this host ("/..." but not "//...") or an absolute http(s) URL
// whose host is one of allowed (exact, or "*.example.com": one label deep), and
// "/" for anything else: other hosts, "//host", backslashes (browsers read
// "/\host" as "//host"), "javascript:" and other schemes, user info
// ("https://allowed@evil"), control characters and white space.
func SafeRedirect(rd string, allowed []string) string {
	if rd == "" || len(rd) > maxRedirect {
		return "/"
	}
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	if rd[0] == '/' {
		if len(rd) > 1 && rd[1] == '/' {
			return "/"
		}
		u, err := url.Parse(rd)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
			return "/"
		}
		return rd
	}
	u, err := url.Parse(rd)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "/"
	}
	if !policy.HostMatches(strings.ToLower(u.Hostname()), allowed) {
		return "/"
	}
	if p := u.Port(); p != "" && strings.Trim(p, "0123456789") != "" {
		return "/"
	}
	// Re-serialized, so that the browser reads exactly what was checked.
	return u.String()
}

// RedirectParam returns the rd parameter of a sign-in or sign-out URL's query.
//
// nginx writes that URL in its auth-signin redirect, with the original request
// last. ingress-nginx escapes the original request with set_misc's
// set_escape_uri (rd=https://host%2Fpath%3Fa%3D1%26b%3D2); a plain nginx has no
// escaping function, so its config appends the request as it came
// (rd=https://host/path?a=1&b=2), which a query parser would cut at the first
// '&', and whose escapes ("%20", "+") it would decode into characters
// SafeRedirect refuses. So when rd's value is a raw URL — "http://" or
// "https://", an authority without escapes, then a literal '/', which
// set_escape_uri never leaves — or a raw path ("/..."), the rest of the raw
// query is taken verbatim; any other value is decoded as usual. Either way the
// caller passes the result through SafeRedirect, so this only chooses which URL
// on an allowed host the browser goes back to.
func RedirectParam(rawQuery string) string {
	for rest := rawQuery; rest != ""; {
		var param string
		param, rest, _ = strings.Cut(rest, "&")
		v, ok := strings.CutPrefix(param, "rd=")
		if !ok {
			continue
		}
		whole := v
		if rest != "" {
			whole = v + "&" + rest
		}
		if rawURLPrefix(whole) {
			return whole
		}
		d, err := url.QueryUnescape(v)
		if err != nil {
			return ""
		}
		return d
	}
	return ""
}

// rawURLPrefix reports whether s starts like an unescaped absolute http(s) URL
// with a path, or like an unescaped path.
func rawURLPrefix(s string) bool {
	if strings.HasPrefix(s, "/") {
		return true
	}
	lower := strings.ToLower(s)
	rest, ok := strings.CutPrefix(lower, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(lower, "http://"); !ok {
			return false
		}
	}
	i := strings.IndexAny(rest, "/?#%&")
	return i > 0 && rest[i] == '/'
}
