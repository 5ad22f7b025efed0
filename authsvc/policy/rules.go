package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// rule is a compiled spec.rules entry.
type rule struct {
	index   int // position in spec.rules, for logs
	path    string
	exact   bool
	methods []string // empty: every method
	public  bool
	roles   []string
	claims  []claimCheck
}

func (r *rule) allowsMethod(m string) bool {
	if len(r.methods) == 0 {
		return true
	}
	for _, x := range r.methods {
		if x == m {
			return true
		}
	}
	return false
}

// ruleTable finds the most specific rule for a path and method in time that grows
// with the depth of the path, never with the number of rules: an Exact rule first,
// then the longest Prefix, by path segment, as Ingress matches.
type ruleTable struct {
	exact  map[string][]*rule
	prefix map[string][]*rule
	// slashed holds the paths with a trailing slash that some rule names as
	// written: an Exact rule covers its path plus one slash unless another
	// rule names that slashed path.
	slashed map[string]bool
}

// match returns the rule for path p (normalized) and method m, or nil. Paths
// match case-insensitively: many upstreams (Express, ASP.NET, IIS) serve
// /ADMIN/ as /admin/, and a rule must not be bypassed by changing case.
func (t *ruleTable) match(p, m string) *rule {
	p = strings.ToLower(p) // no copy when p has no upper case
	if len(t.exact) > 0 {
		for _, r := range t.exact[p] {
			if r.allowsMethod(m) {
				return r
			}
		}
		// Most frameworks serve /x/ as /x: an Exact rule for /x covers /x/.
		if len(p) > 1 && p[len(p)-1] == '/' && !t.slashed[p] {
			for _, r := range t.exact[p[:len(p)-1]] {
				if r.allowsMethod(m) {
					return r
				}
			}
		}
	}
	if len(t.prefix) == 0 {
		return nil
	}
	candidate := trimTrailingSlash(p)
	for {
		for _, r := range t.prefix[candidate] {
			if r.allowsMethod(m) {
				return r
			}
		}
		if candidate == "/" {
			return nil
		}
		i := strings.LastIndexByte(candidate, '/')
		if i <= 0 {
			candidate = "/"
		} else {
			candidate = candidate[:i]
		}
	}
}

func trimTrailingSlash(p string) string {
	if len(p) > 1 && p[len(p)-1] == '/' {
		return p[:len(p)-1]
	}
	return p
}

// compileRules builds the rule table. claimIndex resolves claim names to the
// policy's claim slots.
func compileRules(specs []v1alpha1.Rule, claimIndex func(string) int, errs *problems) ruleTable {
	t := ruleTable{exact: map[string][]*rule{}, prefix: map[string][]*rule{}, slashed: map[string]bool{}}
	for i, s := range specs {
		field := fmt.Sprintf("spec.rules[%d]", i)
		r := &rule{index: i, public: s.Public}
		switch s.PathType {
		case "", v1alpha1.PathTypePrefix:
		case v1alpha1.PathTypeExact:
			r.exact = true
		default:
			errs.add(field+".pathType", v1alpha1.ReasonInvalidSpec, "%q is not a path type: use Prefix or Exact", s.PathType)
		}
		p, ok := normalRulePath(s.Path)
		if !ok {
			errs.add(field+".path", v1alpha1.ReasonInvalidSpec, "%q is not a normalized absolute path: it must start with \"/\" and hold no \"..\", \".\", \"//\", \"\\\", \"?\", \"#\", \";\", \"%%\" or control characters (write it decoded)", s.Path)
			continue
		}
		p = strings.ToLower(p)
		if len(p) > 1 && strings.HasSuffix(p, "/") {
			t.slashed[p] = true
		}
		if r.exact {
			r.path = p
		} else {
			r.path = trimTrailingSlash(p)
		}
		for j, m := range s.Methods {
			if m == "" || strings.ToUpper(m) != m || strings.ContainsFunc(m, func(c rune) bool { return c < 'A' || c > 'Z' }) {
				errs.add(fmt.Sprintf("%s.methods[%d]", field, j), v1alpha1.ReasonInvalidSpec, "%q is not an HTTP method: use upper case, e.g. GET", m)
				continue
			}
			r.methods = append(r.methods, m)
		}
		// Frameworks answer HEAD with the GET handler: a rule for GET covers it.
		if slices.Contains(r.methods, "GET") && !slices.Contains(r.methods, "HEAD") {
			r.methods = append(r.methods, "HEAD")
		}
		if s.Public && (len(s.Roles) > 0 || len(s.Claims) > 0) {
			errs.add(field, v1alpha1.ReasonInvalidSpec, "a public rule cannot also require roles or claims")
		}
		r.roles = slices.Clone(s.Roles)
		for j, c := range s.Claims {
			cc, ok := compileClaimCheck(c, fmt.Sprintf("%s.claims[%d]", field, j), claimIndex, errs)
			if ok {
				r.claims = append(r.claims, cc)
			}
		}
		if r.exact {
			t.exact[r.path] = append(t.exact[r.path], r)
		} else {
			t.prefix[r.path] = append(t.prefix[r.path], r)
		}
	}
	// At one path, a rule naming methods is more specific than one that does not;
	// otherwise the order of spec.rules decides.
	for _, m := range []map[string][]*rule{t.exact, t.prefix} {
		for _, rs := range m {
			slices.SortStableFunc(rs, func(a, b *rule) int {
				return boolRank(len(a.methods) == 0) - boolRank(len(b.methods) == 0)
			})
		}
	}
	return t
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// normalRulePath accepts rule paths that are already in the form requests are
// normalized to, so that what a rule says is what it matches.
func normalRulePath(p string) (string, bool) {
	if p == "" || p[0] != '/' || strings.ContainsAny(p, "\\?#%;") {
		return "", false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return "", false
		}
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean, clean == p
}

// otherMethod stands for "a method no rule names" when fallThrough asks the
// table where such a request lands.
const otherMethod = "\x00other"

// fallThrough warns about each rule whose path has no rule without methods:
// the methods it leaves out are decided by a less specific rule, or by "any
// valid token" when none matches (the README's "How a decision is made", and the hole of
// `/admin/` with methods [GET, POST]: DELETE /admin/users/1 passes with any
// token). Each warning names the rule and where the other methods land.
func (t *ruleTable) fallThrough(specs []v1alpha1.Rule) []Problem {
	var out []Problem
	check := func(group []*rule, probe string) {
		for _, r := range group {
			if len(r.methods) == 0 {
				return // this path decides every method itself
			}
		}
		landing := "no rule, so any valid token passes"
		// otherMethod matches no rule of group (they all name methods).
		if l := t.match(probe, otherMethod); l != nil {
			landing = describeRule(l, specs)
		}
		for _, r := range group {
			out = append(out, Problem{
				Field:  fmt.Sprintf("spec.rules[%d].methods", r.index),
				Reason: v1alpha1.ReasonMethodsFallThrough,
				Message: fmt.Sprintf("methods other than %s at %s fall through to %s: add a rule for the same path without methods (it decides the other methods), or drop methods",
					strings.Join(specs[r.index].Methods, ", "), specs[r.index].Path, landing),
			})
		}
	}
	for path, group := range t.exact {
		check(group, path)
	}
	for path, group := range t.prefix {
		// A path below the prefix that no other rule names.
		check(group, strings.TrimSuffix(path, "/")+"/\x00below")
	}
	slices.SortFunc(out, func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
	return out
}

// describeRule names a rule for a warning: its index, path and what it asks.
func describeRule(r *rule, specs []v1alpha1.Rule) string {
	s := specs[r.index]
	switch {
	case r.public:
		return fmt.Sprintf("spec.rules[%d] (%s), which is public: no token at all", r.index, s.Path)
	case len(s.Roles) > 0:
		return fmt.Sprintf("spec.rules[%d] (%s, roles %s)", r.index, s.Path, strings.Join(s.Roles, ", "))
	case len(s.Claims) > 0:
		return fmt.Sprintf("spec.rules[%d] (%s, claims)", r.index, s.Path)
	default:
		return fmt.Sprintf("spec.rules[%d] (%s, any valid token)", r.index, s.Path)
	}
}
