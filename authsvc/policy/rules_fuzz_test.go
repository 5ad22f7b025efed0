package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// refRules is the rule table as it was before issue 17 made it compact: maps
// from path to rules, one for Exact rules, one for Prefix rules, and the set
// of slashed paths. FuzzRuleTable holds the compact table to its answers.
type refRules struct {
	exact, prefix map[string][]int // rule indexes, in match order
	slashed       map[string]bool
	methods       [][]string
}

func newRefRules(specs []v1alpha1.Rule) *refRules {
	t := &refRules{exact: map[string][]int{}, prefix: map[string][]int{}, slashed: map[string]bool{}, methods: make([][]string, len(specs))}
	for i, s := range specs {
		p := strings.ToLower(s.Path)
		if len(p) > 1 && strings.HasSuffix(p, "/") {
			t.slashed[p] = true
		}
		t.methods[i] = slices.Clone(s.Methods)
		if slices.Contains(s.Methods, "GET") && !slices.Contains(s.Methods, "HEAD") {
			t.methods[i] = append(t.methods[i], "HEAD")
		}
		if s.PathType == v1alpha1.PathTypeExact {
			t.exact[p] = append(t.exact[p], i)
		} else {
			t.prefix[trimTrailingSlash(p)] = append(t.prefix[trimTrailingSlash(p)], i)
		}
	}
	for _, m := range []map[string][]int{t.exact, t.prefix} {
		for _, rs := range m {
			slices.SortStableFunc(rs, func(a, b int) int {
				return boolRank(len(t.methods[a]) == 0) - boolRank(len(t.methods[b]) == 0)
			})
		}
	}
	return t
}

func (t *refRules) first(rs []int, m string) int {
	for _, i := range rs {
		if len(t.methods[i]) == 0 || slices.Contains(t.methods[i], m) {
			return i
		}
	}
	return -1
}

func (t *refRules) match(p, m string) int {
	p = strings.ToLower(p)
	if i := t.first(t.exact[p], m); i >= 0 {
		return i
	}
	if len(p) > 1 && p[len(p)-1] == '/' && !t.slashed[p] {
		if i := t.first(t.exact[p[:len(p)-1]], m); i >= 0 {
			return i
		}
	}
	candidate := trimTrailingSlash(p)
	for {
		if i := t.first(t.prefix[candidate], m); i >= 0 {
			return i
		}
		if candidate == "/" {
			return -1
		}
		if i := strings.LastIndexByte(candidate, '/'); i <= 0 {
			candidate = "/"
		} else {
			candidate = candidate[:i]
		}
	}
}

var (
	fuzzRulePaths   = []string{"/", "/a", "/a/", "/a/b", "/a/b/", "/A/b", "/b", "/b/", "/a/bc", "/ab", "/a/b/c", "/c/", "/c/d", "/x/y/z/", "/é/"}
	fuzzRuleMethods = []string{"GET", "POST", "HEAD", "DELETE", "PROPFIND"}
)

// FuzzRuleTable compiles up to 20 rules of a small set of paths, kinds and
// methods (3 bytes each) and checks that the compact table, scanned and
// indexed, picks the rule the maps of before picked, for any path and method.
func FuzzRuleTable(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 1, 2, 0, 2, 3, 1, 0}, "/a/b/c", "GET")
	f.Add([]byte{2, 1, 0, 1, 1, 0, 4, 0, 4, 3, 0, 1, 11, 1, 0}, "/a/", "HEAD")
	f.Add([]byte{5, 1, 16, 6, 0, 3, 7, 0, 8, 9, 0, 0, 10, 1, 2, 11, 0, 0, 12, 0, 0, 13, 1, 0, 14, 0, 0}, "/A/B/", "PROPFIND")
	f.Fuzz(func(t *testing.T, spec []byte, reqPath, method string) {
		var specs []v1alpha1.Rule
		for i := 0; i+2 < len(spec) && len(specs) < 20; i += 3 {
			r := v1alpha1.Rule{Path: fuzzRulePaths[int(spec[i])%len(fuzzRulePaths)]}
			if spec[i+1]&1 == 1 {
				r.PathType = v1alpha1.PathTypeExact
			}
			for j, m := range fuzzRuleMethods {
				if spec[i+2]&(1<<j) != 0 {
					r.Methods = append(r.Methods, m)
				}
			}
			specs = append(specs, r)
		}
		var errs problems
		table := compileRules(specs, func(string) int { return 0 }, &errs)
		if len(errs) > 0 {
			t.Fatalf("rules %+v: %v (every path of fuzzRulePaths is normalized)", specs, errs)
		}
		p, ok := NormalizePath(reqPath)
		if !ok {
			return
		}
		method = strings.ToUpper(method)
		want := newRefRules(specs).match(p, method)
		scanned, indexed := table, table
		scanned.index = [2]map[string]int32{}
		indexed.buildIndex()
		for name, tb := range map[string]ruleTable{"compiled": table, "scanned": scanned, "indexed": indexed} {
			got := -1
			if r := tb.match(p, method); r != nil {
				got = r.index
			}
			if got != want {
				t.Fatalf("%s table: %s %s matched rule %d, the maps rule %d (rules %+v)", name, method, p, got, want, specs)
			}
		}
	})
}
