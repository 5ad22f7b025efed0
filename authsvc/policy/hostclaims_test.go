package policy

import (
	"strings"
	"testing"
)

func TestParseHostClaims(t *testing.T) {
	good := []string{
		"",
		"shop=*.shop.example.com",
		"shop=*.shop.example.com;team-b=b.example.com",
		" shop = *.shop.example.com , shop.example.com ; team-b=b.example.com;",
		"shop=Shop.Example.com",
	}
	for _, s := range good {
		if _, err := ParseHostClaims(s); err != nil {
			t.Errorf("ParseHostClaims(%q): %v", s, err)
		}
	}
	bad := []struct{ in, want string }{
		{"shop", "namespace=pattern"},
		{"=a.example.com", "namespace"},
		{"Shop_1=a.example.com", "namespace"},
		{"shop=", "no host pattern"},
		{"shop=a.*.example.com", "*."},
		{"shop=*", "*."},
		{"shop=http://a.example.com", "host"},
		{"shop=a.example.com:443", "host"},
	}
	for _, tc := range bad {
		_, err := ParseHostClaims(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseHostClaims(%q) = %v, want an error mentioning %q", tc.in, err, tc.want)
		}
	}
}

func TestHostClaimsAllow(t *testing.T) {
	hc, err := ParseHostClaims("shop=*.shop.example.com,shop.example.com;team-b=b.example.com")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ns, host string
		want     bool
	}{
		{"shop", "shop.example.com", true},
		{"shop", "www.shop.example.com", true},
		{"shop", "a.b.shop.example.com", true}, // a pattern gives the whole subtree
		{"shop", "*.shop.example.com", true},
		{"shop", "*.x.shop.example.com", true},
		{"shop", "b.example.com", false},
		{"shop", "evilshop.example.com", false},
		{"shop", "*.example.com", false},
		{"team-b", "b.example.com", true},
		{"team-b", "x.b.example.com", false},
		{"team-b", "shop.example.com", false},
		{"other", "shop.example.com", false}, // namespaces not named may claim no host
		{"other", "other.example.com", false},
	}
	for _, tc := range tests {
		if got := hc.Allows(tc.ns, tc.host); got != tc.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tc.ns, tc.host, got, tc.want)
		}
	}
	var unset *HostClaims
	if !unset.Allows("any", "shop.example.com") {
		t.Error("without --host-claims every namespace may claim any host")
	}
}

// A namespace that may not claim a host gets no host routing at all (as a
// policy that lost a conflict), holds none of its hosts, and stays routable
// by path; an allowed policy that came later gets the host.
func TestStoreRefusesHostClaims(t *testing.T) {
	k := newTestKeys(t)
	mk := func(ns, name string, hosts ...string) *Policy {
		ap, secrets := shopPolicy(k)
		ap.Namespace, ap.Name, ap.Spec.Hosts = ns, name, hosts
		for _, s := range secrets {
			s.Namespace = ns
		}
		return mustCompile(t, ap, secrets)
	}
	hc, err := ParseHostClaims("shop=*.shop.example.com,shop.example.com")
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore()
	store.SetHostClaims(hc)
	squatter := mk("team-x", "web", "shop.example.com", "x.example.com")
	owner := mk("shop", "web", "shop.example.com", "www.shop.example.com")
	if conflicts := store.Replace([]*Policy{squatter, owner}); len(conflicts) != 0 {
		t.Errorf("conflicts %+v: a refused claim must not hold the host", conflicts)
	}
	snap := store.Load()
	for host, want := range map[string]string{"shop.example.com": "shop/web", "www.shop.example.com": "shop/web", "x.example.com": ""} {
		got := ""
		if p := snap.ForHost(host); p != nil {
			got = p.Key
		}
		if got != want {
			t.Errorf("ForHost(%q) = %q, want %q", host, got, want)
		}
	}
	if got := store.RefusedHosts("team-x/web"); strings.Join(got, ",") != "shop.example.com,x.example.com" {
		t.Errorf("RefusedHosts(team-x/web) = %v", got)
	}
	if got := store.RefusedHosts("shop/web"); len(got) != 0 {
		t.Errorf("RefusedHosts(shop/web) = %v, want none", got)
	}
	if snap.Policy("team-x", "web") == nil {
		t.Error("a refused policy stays routable by path")
	}
}
