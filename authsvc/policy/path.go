package policy

import (
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// OriginalRequest is what the decision needs from X-Original-URL: the host (for host
// routing, port removed, lower case) and the path rules act on.
type OriginalRequest struct {
	Host string
	Path string
}

// ParseOriginalURL reads an X-Original-URL value (an absolute URL, as ingress-nginx
// sets it: $scheme://$http_host$request_uri) and returns the host and the path that
// rules see: percent-decoded, dot segments removed and repeated slashes merged
// (RFC 3986 5.2.4), because that is what upstreams act on. ok is false for a value
// that does not parse, a path that does not decode, is not UTF-8 once decoded,
// or holds an encoded "/", a backslash or NUL, or an escape that survives the
// one decoding (double encoding): such requests are refused.
func ParseOriginalURL(raw string) (OriginalRequest, bool) {
	// A raw '#' is never sent by a browser (fragments stay client-side); in a
	// crafted request line it would hide the rest of the path from the rules.
	if raw == "" || len(raw) > maxURLLength || strings.IndexByte(raw, '#') >= 0 {
		return OriginalRequest{}, false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return OriginalRequest{}, false
	}
	p, ok := NormalizePath(u.EscapedPath())
	if !ok {
		return OriginalRequest{}, false
	}
	return OriginalRequest{Host: strings.ToLower(u.Hostname()), Path: p}, true
}

// maxURLLength bounds X-Original-URL; nginx's default large_client_header_buffers
// is 8k, so anything longer did not come from it.
const maxURLLength = 16 << 10

// NormalizePath turns an escaped request path into the form rules match: decoded,
// without dot segments or repeated slashes, keeping a trailing slash. It refuses
// encoded slashes (%2F), backslashes (plain or %5C), NUL (%00), path parameters
// (";", plain or %3B: Java servers strip them before resolving dot segments, so
// "/public/..;/admin" would reach /admin there) and bad escapes.
func NormalizePath(escaped string) (string, bool) {
	if escaped == "" {
		return "/", true
	}
	if escaped[0] != '/' {
		return "", false
	}
	if strings.IndexByte(escaped, '\\') >= 0 || strings.IndexByte(escaped, ';') >= 0 {
		return "", false
	}
	decoded := escaped
	if strings.IndexByte(escaped, '%') >= 0 {
		lower := strings.ToLower(escaped)
		if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") || strings.Contains(lower, "%3b") {
			return "", false
		}
		var err error
		decoded, err = url.PathUnescape(escaped)
		if err != nil {
			return "", false
		}
		// One decoding is what rules see. A path that is not UTF-8 once
		// decoded (overlong forms such as %c0%ae, lone bytes such as %ff) or
		// that still holds an escape (double encoding: %252f, %252e%252e)
		// means something else to an upstream that decodes differently or
		// once more: refuse it rather than guess.
		if holdsEscape(decoded) {
			return "", false
		}
	}
	if !utf8.ValidString(decoded) {
		return "", false
	}
	if !needsClean(decoded) {
		return decoded, true
	}
	for i := 0; i < len(decoded); i++ {
		if decoded[i] < 0x20 || decoded[i] == 0x7f {
			return "", false // control characters never reach an upstream intact
		}
	}
	cleaned := path.Clean(decoded)
	if strings.HasSuffix(decoded, "/") && cleaned != "/" {
		cleaned += "/"
	}
	return cleaned, true
}

// needsClean reports whether p has a dot segment, a repeated slash or a control
// character; most paths have none, and then no copy is made.
func needsClean(p string) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return true
		case c == '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return true
			}
			if i+1 < len(p) && p[i+1] == '.' {
				rest := p[i+1:]
				if rest == "." || rest == ".." || strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
					return true
				}
			}
		}
	}
	return false
}

// holdsEscape reports whether p holds a percent-escape ("%" and two hex
// digits) after decoding: an encoded "/", "\\", ".", NUL or "%" is a double
// encoding, and so is any other escape, which a second decoding would turn
// into a different path. A "%" not followed by two hex digits decodes to
// nothing else and is kept.
func holdsEscape(p string) bool {
	for i := strings.IndexByte(p, '%'); i >= 0 && i+2 < len(p); {
		if isHex(p[i+1]) && isHex(p[i+2]) {
			return true
		}
		j := strings.IndexByte(p[i+1:], '%')
		if j < 0 {
			return false
		}
		i += 1 + j
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
