package login

import (
	"net/url"
	"strings"
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
	if !hostAllowed(strings.ToLower(u.Hostname()), allowed) {
		return "/"
	}
	if p := u.Port(); p != "" && strings.Trim(p, "0123456789") != "" {
		return "/"
	}
	// Re-serialized, so that the browser reads exactly what was checked.
	return u.String()
}

// hostAllowed matches a lower-case host name against hosts that are exact or
// "*." wildcards one label deep, as spec.hosts are.
func hostAllowed(host string, allowed []string) bool {
	if host == "" {
		return false
	}
	for _, a := range allowed {
		if rest, ok := strings.CutPrefix(a, "*."); ok {
			label, parent, found := strings.Cut(host, ".")
			if found && label != "" && parent == rest {
				return true
			}
			continue
		}
		if host == a {
			return true
		}
	}
	return false
}
