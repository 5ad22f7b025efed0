package door

import (
	"net/netip"
	"strings"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// ParseURL is policy.ParseOriginalURL with a fast path for what proxies send
// ($scheme://$http_host$request_uri): "http://" or "https://", a host of
// letters, digits, dots and hyphens with an optional numeric port, and a path
// of characters url.Parse keeps as they are. For such a value url.Parse's
// result is known (EscapedPath is the path as sent, Hostname the host without
// the port), so the answer is the same without url.Parse's allocations.
// Anything else (userinfo, IPv6, percent-escapes, fragments, control
// characters, other schemes, long values) goes through policy.ParseOriginalURL.
func ParseURL(raw string) (policy.OriginalRequest, bool) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(raw, "https://"); !ok {
			return policy.ParseOriginalURL(raw)
		}
	}
	if len(raw) > 4096 {
		return policy.ParseOriginalURL(raw)
	}
	// Authority: up to the first '/', '?' or '#'.
	end := len(rest)
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c == '/' || c == '?' || c == '#' {
			end = i
			break
		}
	}
	host, port, hasPort := strings.Cut(rest[:end], ":")
	if host == "" || (hasPort && port == "") {
		return policy.ParseOriginalURL(raw)
	}
	lower := true
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '-':
		case 'A' <= c && c <= 'Z':
			lower = false
		default:
			return policy.ParseOriginalURL(raw)
		}
	}
	for i := 0; i < len(port); i++ {
		if c := port[i]; c < '0' || c > '9' {
			return policy.ParseOriginalURL(raw)
		}
	}
	path, ok := fastPath(rest[end:])
	if !ok {
		return policy.ParseOriginalURL(raw)
	}
	clean, ok := policy.NormalizePath(path)
	if !ok {
		return policy.OriginalRequest{}, false
	}
	if !lower {
		host = strings.ToLower(host)
	}
	return policy.OriginalRequest{Host: host, Path: clean}, true
}

// fastPath returns the path of a request target (path and query) when every
// byte of the path stands for itself and the query holds no control character
// and no '#'; ok is false for anything url.Parse would treat otherwise.
func fastPath(target string) (string, bool) {
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c == '?' {
			for _, q := range []byte(target[i:]) {
				if q < 0x20 || q == 0x7f || q == '#' {
					return "", false
				}
			}
			return target[:i], true
		}
		if !pathByte(c) {
			return "", false
		}
	}
	return target, true
}

// ParseTarget reads a request target as forward-auth proxies send it
// (X-Forwarded-Uri) and Envoy appends it to its path_prefix: a path with an
// optional query. It returns the normalized path the rules see, exactly as
// ParseURL would for the same target on any host, so every door decides the
// same request alike.
func ParseTarget(target string) (string, bool) {
	if target == "" || target[0] != '/' || len(target) > maxTarget {
		return "", false
	}
	if len(target) > 1 && target[1] == '/' {
		// "//host/path" would read as an authority: parse it as a path.
		return slowTarget(target)
	}
	if path, ok := fastPath(target); ok {
		return policy.NormalizePath(path)
	}
	return slowTarget(target)
}

func slowTarget(target string) (string, bool) {
	o, ok := policy.ParseOriginalURL("http://target.invalid" + target)
	return o.Path, ok
}

// maxTarget bounds a request target: nginx's and Envoy's default header limits
// are far below it.
const maxTarget = 16 << 10

// pathByte reports whether c stands for itself in a URL path: url.Parse keeps
// it, and (*url.URL).EscapedPath gives it back unescaped.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '/', '-', '_', '.', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

// ParseAuthority reads a host as a proxy sends it (Host, X-Forwarded-Host,
// :authority): a DNS name or IPv4 address, or an IPv6 address in brackets, with
// an optional port. It returns the name in lower case without the port (for
// IPv6, without the brackets). Anything else (user info, paths, white space,
// an empty or non-numeric port, a bare IPv6 address) is refused: the authority
// goes into a redirect.
func ParseAuthority(authority string) (string, bool) {
	if authority == "" || len(authority) > 255+7 {
		return "", false
	}
	host, port := authority, ""
	if authority[0] == '[' {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", false
		}
		host, port = authority[1:end], authority[end+1:]
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", false
		}
		if port != "" {
			p, ok := strings.CutPrefix(port, ":")
			if !ok || !validPort(p) {
				return "", false
			}
		}
		return strings.ToLower(host), true
	}
	if i := strings.IndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i+1:]
		if !validPort(port) {
			return "", false
		}
	}
	if host == "" {
		return "", false
	}
	lower := true
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '-', c == '_':
		case 'A' <= c && c <= 'Z':
			lower = false
		default:
			return "", false
		}
	}
	if !lower {
		host = strings.ToLower(host)
	}
	return host, true
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}
