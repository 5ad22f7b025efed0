package policy

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// HostClaims says which namespaces may claim which hosts in spec.hosts (the
// controller's --host-claims). A nil *HostClaims allows every namespace every
// host: then the first policy to claim a host keeps it.
type HostClaims struct {
	byNamespace map[string][]string // lower-case patterns: "a.example.com" or "*.example.com"
}

// ParseHostClaims reads "ns=pattern[,pattern];ns2=pattern". A pattern is a
// host name, or "*." and a domain, which allows every host under that domain
// at any depth (wildcards under it included), never the domain itself. A
// namespace that is not named may claim no host. "" returns nil: any
// namespace, any host.
func ParseHostClaims(s string) (*HostClaims, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	hc := &HostClaims{byNamespace: map[string][]string{}}
	for _, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		ns, patterns, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("host claim %q: want namespace=pattern[,pattern], e.g. shop=*.shop.example.com;team-b=b.example.com", entry)
		}
		ns = strings.TrimSpace(ns)
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("host claim %q: namespace %q: %s", entry, ns, strings.Join(errs, "; "))
		}
		n := 0
		for _, p := range strings.Split(patterns, ",") {
			p = strings.ToLower(strings.TrimSpace(p))
			if p == "" {
				continue
			}
			if err := checkHostPattern(p); err != nil {
				return nil, fmt.Errorf("host claim %q: %w", entry, err)
			}
			hc.byNamespace[ns] = append(hc.byNamespace[ns], p)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("host claim %q: no host pattern after %q", entry, ns+"=")
		}
	}
	return hc, nil
}

func checkHostPattern(p string) error {
	name := strings.TrimPrefix(p, "*.")
	if strings.Contains(name, "*") {
		return fmt.Errorf("pattern %q: a wildcard is only allowed as a leading \"*.\" (e.g. *.shop.example.com)", p)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("pattern %q is not a host name (no scheme, port or path): %s", p, strings.Join(errs, "; "))
	}
	return nil
}

// Allows reports whether namespace may claim host (as spec.hosts holds it:
// exact, or "*." one label deep).
func (hc *HostClaims) Allows(namespace, host string) bool {
	if hc == nil {
		return true
	}
	host = strings.ToLower(host)
	return slices.ContainsFunc(hc.byNamespace[namespace], func(p string) bool {
		if domain, ok := strings.CutPrefix(p, "*."); ok {
			return strings.HasSuffix(host, "."+domain)
		}
		return host == p
	})
}

// Patterns returns what namespace may claim, for messages.
func (hc *HostClaims) Patterns(namespace string) []string {
	if hc == nil {
		return nil
	}
	return slices.Clone(hc.byNamespace[namespace])
}
