package login

import "testing"

func TestSafeRedirect(t *testing.T) {
	allowed := []string{"shop.example.com", "*.shop.example.com"}
	for _, tc := range []struct{ rd, want string }{
		{"", "/"},
		{"/", "/"},
		{"/orders/7?x=1#top", "/orders/7?x=1#top"},
		{"https://shop.example.com/orders", "https://shop.example.com/orders"},
		{"http://shop.example.com:8080/a", "http://shop.example.com:8080/a"},
		{"https://app.shop.example.com/", "https://app.shop.example.com/"},
		{"HTTPS://SHOP.EXAMPLE.COM/x", "https://SHOP.EXAMPLE.COM/x"},
		// Everything else lands on /.
		{"https://evil.example/", "/"},
		{"https://shop.example.com.evil.example/", "/"},
		{"https://evilshop.example.com/", "/"},
		{"https://a.b.shop.example.com/", "/"}, // wildcards are one label deep
		{"https://example.com/", "/"},
		{"//evil.example/", "/"},
		{"///evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"\\\\evil.example/", "/"},
		{"\\/evil.example/", "/"},
		{"https:\\\\evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"JavaScript:alert(1)//https://shop.example.com/", "/"},
		{"data:text/html,<script>alert(1)</script>", "/"},
		{"https://shop.example.com@evil.example/", "/"},
		{"https://shop.example.com:pw@evil.example/", "/"},
		{"https://evil.example/?x=https://shop.example.com/", "/"},
		{"https://evil.example/#shop.example.com", "/"},
		{"https://evil.example\\@shop.example.com/", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"https://shop.example.com/\r\nSet-Cookie:x=1", "/"},
		{"\x00/x", "/"},
		{" /x", "/"},
		{"https:/shop.example.com/", "/"},
		{"https:shop.example.com", "/"},
		{"ftp://shop.example.com/", "/"},
		{"shop.example.com/x", "/"},
		{"https://shop.example.com:x/", "/"},
		{"https://[::1]/", "/"},
	} {
		if got := SafeRedirect(tc.rd, allowed); got != tc.want {
			t.Errorf("SafeRedirect(%q) = %q, want %q", tc.rd, got, tc.want)
		}
	}
}

func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/a", "//x", "https://shop.example.com/", "https://a@b/", "/\\x"} {
		f.Add(s)
	}
	allowed := []string{"shop.example.com", "*.shop.example.com"}
	f.Fuzz(func(t *testing.T, rd string) {
		got := SafeRedirect(rd, allowed)
		if got == "/" {
			return
		}
		if got[0] == '/' {
			if len(got) > 1 && (got[1] == '/' || got[1] == '\\') {
				t.Fatalf("%q -> %q: protocol-relative", rd, got)
			}
			return
		}
		if SafeRedirect(got, allowed) != got {
			t.Fatalf("%q -> %q is not stable", rd, got)
		}
	})
}

func TestRedirectParam(t *testing.T) {
	for _, tc := range []struct{ query, want string }{
		{"", ""},
		{"x=1", ""},
		{"rd=%2Fafter", "/after"},
		{"rd=/after", "/after"},
		// ingress-nginx: $scheme://$http_host$escaped_request_uri (set_escape_uri).
		{"rd=https://shop.example.com%2Fa%20b%3Fx%3D1%26y%3D2", "https://shop.example.com/a b?x=1&y=2"},
		{"rd=https%3A%2F%2Fshop.example.com%2Fp", "https://shop.example.com/p"},
		{"foo=bar&rd=https://shop.example.com:8443%2Fp%3Fq%3D1", "https://shop.example.com:8443/p?q=1"},
		// plain nginx: $scheme://$http_host$request_uri, as the browser sent it.
		{"rd=https://shop.example.com/p?x=1&y=a%20b+c", "https://shop.example.com/p?x=1&y=a%20b+c"},
		{"rd=http://shop.example.com:8080/a%2Fb", "http://shop.example.com:8080/a%2Fb"},
		{"a=1&rd=/p?x=1&y=2", "/p?x=1&y=2"},
		{"rd=HTTPS://shop.example.com/p&q", "HTTPS://shop.example.com/p&q"},
		// Not a raw URL: decoded as a query parameter, and cut at '&'.
		{"rd=https://shop.example.com?x=1&y=2", "https://shop.example.com?x=1"},
		{"rd=javascript:alert(1)&x=/", "javascript:alert(1)"},
		{"rd=%zz", ""},
	} {
		if got := RedirectParam(tc.query); got != tc.want {
			t.Errorf("RedirectParam(%q) = %q, want %q", tc.query, got, tc.want)
		}
	}
	// Whatever RedirectParam picks, SafeRedirect still decides where it may go.
	allowed := []string{"shop.example.com"}
	for _, q := range []string{
		"rd=https://evil.example/&rd=https://shop.example.com/",
		"rd=https://shop.example.com@evil.example/x",
		"rd=//evil.example/x",
		"rd=/\\evil.example/",
		"rd=https://evil.example%2F",
	} {
		if got := SafeRedirect(RedirectParam(q), allowed); got != "/" {
			t.Errorf("SafeRedirect(RedirectParam(%q)) = %q, want /", q, got)
		}
	}
}
