package policy

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// rule is a compiled spec.rules entry. Its path and kind are its group's
// (ruleTable.groups).
type rule struct {
	index   int // position in spec.rules, for logs
	public  bool
	methods methodSet
	roles   []string
	claims  []claimCheck
}

// methodSet is the methods a rule names: the common ones as bits, any other
// in a list. Empty: every method.
type methodSet struct {
	mask  uint16
	other []string
}

// methodBit is the bit of a common method, 0 for any other.
func methodBit(m string) uint16 {
	switch m {
	case "GET":
		return 1 << 0
	case "HEAD":
		return 1 << 1
	case "POST":
		return 1 << 2
	case "PUT":
		return 1 << 3
	case "DELETE":
		return 1 << 4
	case "PATCH":
		return 1 << 5
	case "OPTIONS":
		return 1 << 6
	case "CONNECT":
		return 1 << 7
	case "TRACE":
		return 1 << 8
	}
	return 0
}

func (s *methodSet) add(m string) {
	if b := methodBit(m); b != 0 {
		s.mask |= b
	} else if !slices.Contains(s.other, m) {
		s.other = append(s.other, m)
	}
}

func (s *methodSet) has(m string) bool {
	if b := methodBit(m); b != 0 {
		return s.mask&b != 0
	}
	return slices.Contains(s.other, m)
}

// all reports whether the set names no method, so the rule covers every one.
func (s *methodSet) all() bool { return s.mask == 0 && len(s.other) == 0 }

func (r *rule) allowsMethod(m string) bool {
	return r.methods.all() || r.methods.has(m)
}

// groupKind tells the groups of a rule table apart: the Exact rules of a
// path and its Prefix rules.
type groupKind uint8

const (
	kindExact groupKind = iota
	kindPrefix
)

// ruleGroup is the rules of one path and kind, rules[lo:hi] of the table.
type ruleGroup struct {
	path string
	kind groupKind
	// slashed: a Prefix rule of the group names its path with a trailing
	// slash (an Exact group's path holds it when written so).
	slashed bool
	lo, hi  int32
}

type groupKey struct {
	path string
	kind groupKind
}

// ruleTable finds the most specific rule for a path and method in time that grows
// with the depth of the path, never with the number of rules: an Exact rule first,
// then the longest Prefix, by path segment, as Ingress matches. It is compact,
// because every policy holds one and a decision reads it cold: the rules in one
// slice, grouped by path and kind; the groups in another, searched in place
// when they are few and through an index when there are many.
type ruleTable struct {
	rules  []rule
	groups []ruleGroup // the Exact groups (groups[:exact]), then the Prefix ones
	exact  int
	// index finds a group by kind and path when there are more than
	// smallRuleTable groups; nil maps otherwise.
	index [2]map[string]int32
}

// smallRuleTable is the number of groups up to which a lookup scans them:
// a few string comparisons in one or two cache lines beat a map lookup.
const smallRuleTable = 8

// groupIndex returns the index of the group of path p and kind, or -1.
func (t *ruleTable) groupIndex(p string, kind groupKind) int {
	if m := t.index[kind]; m != nil {
		if i, ok := m[p]; ok {
			return int(i)
		}
		return -1
	}
	lo, hi := 0, t.exact
	if kind == kindPrefix {
		lo, hi = t.exact, len(t.groups)
	}
	for i := lo; i < hi; i++ {
		if t.groups[i].path == p {
			return i
		}
	}
	return -1
}

// group returns the rules of path p and kind (nil when there are none).
func (t *ruleTable) group(p string, kind groupKind) []rule {
	if i := t.groupIndex(p, kind); i >= 0 {
		g := &t.groups[i]
		return t.rules[g.lo:g.hi]
	}
	return nil
}

// slashed reports whether a rule names the path p (with a trailing slash) as
// written: an Exact rule covers its path plus one slash unless another rule
// names that slashed path.
func (t *ruleTable) slashed(p string) bool {
	if t.groupIndex(p, kindExact) >= 0 {
		return true
	}
	i := t.groupIndex(p[:len(p)-1], kindPrefix)
	return i >= 0 && t.groups[i].slashed
}

func firstAllowing(rs []rule, m string) *rule {
	for i := range rs {
		if rs[i].allowsMethod(m) {
			return &rs[i]
		}
	}
	return nil
}

// match returns the rule for path p (normalized) and method m, or nil. Paths
// match case-insensitively: many upstreams (Express, ASP.NET, IIS) serve
// /ADMIN/ as /admin/, and a rule must not be bypassed by changing case.
func (t *ruleTable) match(p, m string) *rule {
	p = strings.ToLower(p) // no copy when p has no upper case
	if t.exact > 0 {
		if r := firstAllowing(t.group(p, kindExact), m); r != nil {
			return r
		}
		// Most frameworks serve /x/ as /x: an Exact rule for /x covers /x/.
		if len(p) > 1 && p[len(p)-1] == '/' && !t.slashed(p) {
			if r := firstAllowing(t.group(p[:len(p)-1], kindExact), m); r != nil {
				return r
			}
		}
	}
	if t.exact == len(t.groups) {
		return nil
	}
	candidate := trimTrailingSlash(p)
	for {
		if r := firstAllowing(t.group(candidate, kindPrefix), m); r != nil {
			return r
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
	type keyed struct {
		key     groupKey
		slashed bool // written with a trailing slash
		r       rule
	}
	all := make([]keyed, 0, len(specs))
	for i, s := range specs {
		field := fmt.Sprintf("spec.rules[%d]", i)
		r := rule{index: i, public: s.Public}
		kind := kindPrefix
		switch s.PathType {
		case "", v1alpha1.PathTypePrefix:
		case v1alpha1.PathTypeExact:
			kind = kindExact
		default:
			errs.add(field+".pathType", v1alpha1.ReasonInvalidSpec, "%q is not a path type: use Prefix or Exact", s.PathType)
		}
		p, ok := normalRulePath(s.Path)
		if !ok {
			errs.add(field+".path", v1alpha1.ReasonInvalidSpec, "%q is not a normalized absolute path: it must start with \"/\" and hold no \"..\", \".\", \"//\", \"\\\", \"?\", \"#\", \";\", \"%%\" or control characters (write it decoded)", s.Path)
			continue
		}
		p = strings.ToLower(p)
		slashed := len(p) > 1 && strings.HasSuffix(p, "/")
		if kind == kindPrefix {
			p = trimTrailingSlash(p)
		}
		r.methods = compileMethods(s.Methods, field, errs)
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
		r.claims = slices.Clip(r.claims)
		all = append(all, keyed{groupKey{p, kind}, slashed, r})
	}
	// At one path, a rule naming methods is more specific than one that does not;
	// otherwise the order of spec.rules decides (the sort is stable).
	slices.SortStableFunc(all, func(a, b keyed) int {
		return cmp.Or(cmp.Compare(a.key.kind, b.key.kind), strings.Compare(a.key.path, b.key.path),
			boolRank(a.r.methods.all())-boolRank(b.r.methods.all()))
	})
	groups := 0
	for i := range all {
		if i == 0 || all[i].key != all[i-1].key {
			groups++
		}
	}
	t := ruleTable{rules: make([]rule, len(all)), groups: make([]ruleGroup, 0, groups)}
	for i, k := range all {
		t.rules[i] = k.r
		if i == 0 || k.key != all[i-1].key {
			t.groups = append(t.groups, ruleGroup{path: k.key.path, kind: k.key.kind, lo: int32(i)})
			if k.key.kind == kindExact {
				t.exact++
			}
		}
		g := &t.groups[len(t.groups)-1]
		g.hi = int32(i) + 1
		g.slashed = g.slashed || k.slashed
	}
	if len(t.groups) > smallRuleTable {
		t.buildIndex()
	}
	return t
}

// buildIndex makes the index of a table's groups.
func (t *ruleTable) buildIndex() {
	t.index = [2]map[string]int32{make(map[string]int32, t.exact), make(map[string]int32, len(t.groups)-t.exact)}
	for i, g := range t.groups {
		t.index[g.kind][g.path] = int32(i)
	}
}

// compileMethods checks the methods of a rule. A rule for GET also covers
// HEAD: frameworks answer HEAD with the GET handler.
func compileMethods(methods []string, field string, errs *problems) methodSet {
	var s methodSet
	for j, m := range methods {
		if m == "" || strings.ToUpper(m) != m || strings.ContainsFunc(m, func(c rune) bool { return c < 'A' || c > 'Z' }) {
			errs.add(fmt.Sprintf("%s.methods[%d]", field, j), v1alpha1.ReasonInvalidSpec, "%q is not an HTTP method: use upper case, e.g. GET", m)
			continue
		}
		s.add(m)
	}
	if s.has("GET") {
		s.add("HEAD")
	}
	s.other = slices.Clip(s.other)
	return s
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
	check := func(group []rule, probe string) {
		for i := range group {
			if group[i].methods.all() {
				return // this path decides every method itself
			}
		}
		landing := "no rule, so any valid token passes"
		// otherMethod matches no rule of group (they all name methods).
		if l := t.match(probe, otherMethod); l != nil {
			landing = describeRule(l, specs)
		}
		for i := range group {
			r := &group[i]
			out = append(out, Problem{
				Field:  fmt.Sprintf("spec.rules[%d].methods", r.index),
				Reason: v1alpha1.ReasonMethodsFallThrough,
				Message: fmt.Sprintf("methods other than %s at %s fall through to %s: add a rule for the same path without methods (it decides the other methods), or drop methods",
					strings.Join(specs[r.index].Methods, ", "), specs[r.index].Path, landing),
			})
		}
	}
	for _, g := range t.groups {
		switch g.kind {
		case kindExact:
			check(t.rules[g.lo:g.hi], g.path)
		case kindPrefix:
			// A path below the prefix that no other rule names.
			check(t.rules[g.lo:g.hi], strings.TrimSuffix(g.path, "/")+"/\x00below")
		}
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
