package policy

import (
	"testing"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

func TestParseOriginalURL(t *testing.T) {
	tests := []struct {
		raw, host, path string
		ok              bool
	}{
		{"https://shop.example.com/api/orders?x=1", "shop.example.com", "/api/orders", true},
		{"https://Shop.Example.com:8443/", "shop.example.com", "/", true},
		{"http://shop.example.com", "shop.example.com", "/", true},
		{"https://shop.example.com/public/../admin/", "shop.example.com", "/admin/", true},
		{"https://shop.example.com/public/%2e%2e/admin/", "shop.example.com", "/admin/", true},
		{"https://shop.example.com/public/%2E%2E/admin", "shop.example.com", "/admin", true},
		{"https://shop.example.com//admin/", "shop.example.com", "/admin/", true},
		{"https://shop.example.com/a/./b//c/", "shop.example.com", "/a/b/c/", true},
		{"https://shop.example.com/%61dmin/", "shop.example.com", "/admin/", true},
		{"https://shop.example.com/../../admin", "shop.example.com", "/admin", true},
		{"https://shop.example.com/admin%2F", "", "", false},
		{"https://shop.example.com/admin%2fx", "", "", false},
		{"https://shop.example.com/admin%5cx", "", "", false},
		{"https://shop.example.com/admin\\x", "", "", false},
		{"https://shop.example.com/admin%00", "", "", false},
		{"https://shop.example.com/bad%zz", "", "", false},
		{"https://shop.example.com/ctl%0a", "", "", false},
		{"", "", "", false},
		{"not a url at all", "", "", false},
		{"mailto:x@example.com", "", "", false},
		// Java servers strip ;params before resolving dot segments: refuse them.
		{"https://shop.example.com/public/..;/admin/users", "", "", false},
		{"https://shop.example.com/admin;jsessionid=x/users", "", "", false},
		{"https://shop.example.com/admin%3Bx/users", "", "", false},
		// A raw '#' never comes from a browser: only a crafted request line.
		{"https://shop.example.com/public/#/../../admin", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.raw, func(t *testing.T) {
			got, ok := ParseOriginalURL(tc.raw)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (got %+v)", ok, tc.ok, got)
			}
			if ok && (got.Host != tc.host || got.Path != tc.path) {
				t.Fatalf("got host %q path %q, want %q %q", got.Host, got.Path, tc.host, tc.path)
			}
		})
	}
}

func TestRuleMatching(t *testing.T) {
	var errs problems
	rules := []v1alpha1.Rule{
		{Path: "/public/", Public: true},
		{Path: "/admin/", Methods: []string{"GET", "POST"}, Roles: []string{"admin"}},
		{Path: "/admin/", Roles: []string{"root"}},
		{Path: "/api/orders"},
		{Path: "/api/orders/export", PathType: v1alpha1.PathTypeExact},
		{Path: "/", Roles: []string{"user"}},
	}
	table := compileRules(rules, func(string) int { return 0 }, &errs)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	tests := []struct {
		method, path string
		want         int // rule index, -1 none
	}{
		{"GET", "/public/", 0},
		{"GET", "/public", 0},
		{"GET", "/public/a/b", 0},
		{"GET", "/publicx", 5},
		{"GET", "/admin/", 1},
		{"POST", "/admin/users", 1},
		{"DELETE", "/admin/users", 2}, // methods leave DELETE out: the next rule at that path
		{"GET", "/api/orders", 3},
		{"GET", "/api/orders/", 3},
		{"GET", "/api/orders/7", 3},
		{"GET", "/api/ordersX", 5},
		{"GET", "/api/orders/export", 4},
		{"GET", "/api/orders/export/", 3}, // Exact does not match a trailing slash
		{"GET", "/", 5},
		{"GET", "/x/y/z", 5},
		// Many upstreams route case-insensitively (Express, ASP.NET, IIS).
		{"GET", "/ADMIN/users", 1},
		{"GET", "/Api/Orders/7", 3},
		// A rule for GET also covers HEAD, which frameworks answer with GET's handler.
		{"HEAD", "/admin/users", 1},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := table.match(tc.path, tc.method)
			got := -1
			if r != nil {
				got = r.index
			}
			if got != tc.want {
				t.Fatalf("rule %d, want %d", got, tc.want)
			}
		})
	}
}

// The path tricks of the issue, end to end through Decide: a request must never
// reach /admin/ through a path an upstream would normalize there.
func TestPathTricksThroughDecide(t *testing.T) {
	k := newTestKeys(t)
	ap, secrets := shopPolicy(k)
	p := mustCompile(t, ap, secrets)
	tests := []struct {
		url    string
		status int
	}{
		{"https://shop.example.com/public/../admin/", 401},
		{"https://shop.example.com/public/%2e%2e/admin/", 401},
		{"https://shop.example.com//admin/", 401},
		{"https://shop.example.com/public//../admin/", 401},
		{"https://shop.example.com/admin%2F", 403},
		{"https://shop.example.com/public%2F..%2Fadmin/", 403},
		{"https://shop.example.com/public/", 200},
		{"https://shop.example.com/public/..;/admin/users", 403},
		{"https://shop.example.com/public/#/../../admin", 403},
		{"https://shop.example.com/ADMIN/", 401},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			orig, ok := ParseOriginalURL(tc.url)
			status := 403 // what the handler answers for a refused path
			if ok {
				status = p.Decide(testNow, Request{Method: "GET", Path: orig.Path, Header: bearer("")}, nil).Status
			}
			if status != tc.status {
				t.Fatalf("got %d, want %d", status, tc.status)
			}
		})
	}
}
