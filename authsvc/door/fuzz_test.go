package door

import (
	"net/http"
	"testing"
)

// The forward-auth door reads the same path as auth_request would from the
// same request: ParseForwarded's path is ParseURL's for the absolute URL made
// of the same host and target, and neither panics on any input.
func FuzzParseForwarded(f *testing.F) {
	for _, s := range [][4]string{
		{"GET", "https", "shop.example.com", "/app?a=1"},
		{"get", "http", "SHOP.example.com:8443", "/public/%2e%2e/admin/"},
		{"POST", "wss", "[2001:db8::1]:443", "https://[2001:db8::1]/x//y/../z?q#f"},
		{"DELETE", "https, http", "a.example.com, b", "/a%2Fb"},
		{"GET", "https", "h", "//evil.example.com/x"},
		{"GET", "https", "h", "/%c0%ae/x;y"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, method, proto, host, uri string) {
		h := http.Header{}
		h.Set(HeaderForwardedMethod, method)
		h.Set(HeaderForwardedProto, proto)
		h.Set(HeaderForwardedHost, host)
		h.Set(HeaderForwardedURI, uri)
		o, err := ParseForwarded(h)
		if err != nil {
			return
		}
		if o.Scheme != "http" && o.Scheme != "https" {
			t.Fatalf("scheme %q", o.Scheme)
		}
		if o.Path == "" || o.Path[0] != '/' {
			t.Fatalf("path %q", o.Path)
		}
		if uri[0] == '/' {
			ref, ok := ParseURL("http://h.invalid" + uri)
			if !ok || ref.Path != o.Path {
				t.Fatalf("forward-auth reads %q as %q; auth_request reads it as %q (ok %v)", uri, o.Path, ref.Path, ok)
			}
		}
		if _, ok := ParseAuthority(o.Authority); !ok {
			t.Fatalf("authority %q kept but does not parse", o.Authority)
		}
	})
}

// ParseTarget and ParseURL agree on every target.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"/", "/a?b", "/a%41/./b//c/", "/%zz", "/a#b", "//x/y", "/\x00", "/public/..;/admin", "/a?\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got, ok := ParseTarget(target)
		if target == "" || target[0] != '/' {
			if ok {
				t.Fatalf("%q accepted", target)
			}
			return
		}
		ref, refOK := ParseURL("https://shop.example.com" + target)
		if ok != refOK || (ok && got != ref.Path) {
			t.Fatalf("ParseTarget(%q) = %q, %v; ParseURL = %q, %v", target, got, ok, ref.Path, refOK)
		}
	})
}
