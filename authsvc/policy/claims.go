package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// claimValue is one claim of a verified token, resolved once at verification time
// into the forms rules compare against, so a cached decision compares strings only.
type claimValue struct {
	present bool
	scalar  bool     // a string, number or boolean
	str     string   // the scalar as text (numbers as written in the token)
	elems   []string // array elements as text, or the words of a space-separated string
}

func (v *claimValue) has(elem string) bool {
	return slices.Contains(v.elems, elem)
}

// resolveClaim finds a claim by dotted path in a decoded payload. A key that
// itself holds dots (Auth0's "https://example.com/roles") is found as written
// before the path is split.
func resolveClaim(m map[string]any, p string) (any, bool) {
	if v, ok := m[p]; ok {
		return v, true
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '.' {
			continue
		}
		if sub, ok := m[p[:i]].(map[string]any); ok {
			if v, ok := resolveClaim(sub, p[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

func newClaimValue(v any, ok bool) claimValue {
	if !ok || v == nil {
		return claimValue{}
	}
	cv := claimValue{present: true}
	switch x := v.(type) {
	case string:
		cv.scalar, cv.str = true, x
		cv.elems = strings.Fields(x)
	case json.Number:
		cv.scalar, cv.str = true, x.String()
		cv.elems = []string{cv.str}
	case bool:
		cv.scalar, cv.str = true, fmt.Sprint(x)
		cv.elems = []string{cv.str}
	case []any:
		for _, e := range x {
			if s, ok := scalarText(e); ok {
				cv.elems = append(cv.elems, s)
			}
		}
	}
	return cv
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return fmt.Sprint(x), true
	}
	return "", false
}

// headerValue renders a claim for a forwarded header: strings as they are, arrays
// joined with commas, anything else as JSON; CR, LF and other control characters
// are removed so a claim can never add a header. An array element that holds a
// comma is left out: "user,admin" must never reach the upstream as two roles
// (format: json forwards it exactly).
func headerValue(v any, ok bool) string {
	if !ok || v == nil {
		return ""
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			t, ok := scalarText(e)
			if !ok {
				b, _ := json.Marshal(e)
				t = string(b)
			}
			if strings.IndexByte(t, ',') >= 0 {
				continue
			}
			parts = append(parts, t)
		}
		s = strings.Join(parts, ",")
	default:
		if t, ok := scalarText(v); ok {
			s = t
		} else {
			b, _ := json.Marshal(v)
			s = string(b)
		}
	}
	return sanitizeHeader(s)
}

// headerJSON renders a claim as compact JSON (format: json). A value too long
// for a header is left out rather than cut, which would make it invalid JSON.
func headerJSON(v any, ok bool) string {
	if !ok {
		return ""
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return ""
	}
	s := strings.TrimSuffix(b.String(), "\n")
	// Encode escapes control characters in strings; JSON holds no raw ones.
	if len(s) > maxHeaderValue {
		return ""
	}
	return s
}

// maxHeaderValue bounds a forwarded header; nginx refuses larger upstream headers
// (proxy_buffer_size, 4k or 8k by default) with a 502.
const maxHeaderValue = 2048

func sanitizeHeader(s string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(clean) > maxHeaderValue {
		clean = strings.ToValidUTF8(clean[:maxHeaderValue], "")
	}
	return clean
}

type claimOp int

const (
	opEquals claimOp = iota
	opIn
	opContains
	opExists
	opAbsent
)

// claimCheck is a compiled spec.rules[].claims entry.
type claimCheck struct {
	slot   int
	op     claimOp
	value  string
	values []string
}

func (c *claimCheck) holds(v *claimValue) bool {
	switch c.op {
	case opEquals:
		return v.present && v.scalar && v.str == c.value
	case opIn:
		return v.present && v.scalar && slices.Contains(c.values, v.str)
	case opContains:
		return v.present && v.has(c.value)
	case opExists:
		return v.present
	case opAbsent:
		return !v.present
	}
	return false
}

func compileClaimCheck(s v1alpha1.ClaimRequirement, field string, claimIndex func(string) int, errs *problems) (claimCheck, bool) {
	if s.Name == "" {
		errs.add(field+".name", v1alpha1.ReasonInvalidSpec, "a claim name is required")
		return claimCheck{}, false
	}
	set := 0
	c := claimCheck{slot: claimIndex(s.Name)}
	if s.Equals != nil {
		set++
		c.op, c.value = opEquals, *s.Equals
	}
	if s.In != nil {
		set++
		c.op, c.values = opIn, slices.Clone(s.In)
		if len(s.In) == 0 {
			errs.add(field+".in", v1alpha1.ReasonInvalidSpec, "in needs at least one value")
			return claimCheck{}, false
		}
	}
	if s.Contains != nil {
		set++
		c.op, c.value = opContains, *s.Contains
	}
	if s.Exists != nil {
		set++
		c.op = opExists
		if !*s.Exists {
			c.op = opAbsent
		}
	}
	if set != 1 {
		errs.add(field, v1alpha1.ReasonInvalidSpec, "set exactly one of equals, in, contains or exists (found %d)", set)
		return claimCheck{}, false
	}
	return c, true
}
