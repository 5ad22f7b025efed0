package filesource

import (
	"reflect"
	"strings"
)

// suggestField returns the known field name closest to the unknown field at
// path (as sigs.k8s.io/json writes it: "spec.jwt.keys[0].secretRef.nam") in
// values of type root, or "" when none is close enough to be a likely typo.
func suggestField(root reflect.Type, path string) string {
	segments := strings.Split(path, ".")
	t := root
	for _, seg := range segments[:len(segments)-1] {
		name, _, _ := strings.Cut(seg, "[")
		if t = fieldType(t, name); t == nil {
			return ""
		}
		for range strings.Count(seg, "[") { // one per index: "keys[0]"
			if t = deref(t); t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				return ""
			}
			t = t.Elem()
		}
	}
	unknown := segments[len(segments)-1]
	best, bestDist := "", len(unknown)/3+1 // allow about one edit in three letters
	for _, name := range jsonFieldNames(t) {
		if strings.EqualFold(name, unknown) {
			return name // wrong case: the API is case-sensitive
		}
		if d := editDistance(name, unknown); d <= bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// fieldType returns the type of the JSON field name of struct type t (or of
// the values of map type t), or nil.
func fieldType(t reflect.Type, name string) reflect.Type {
	t = deref(t)
	switch t.Kind() {
	case reflect.Map:
		return t.Elem()
	case reflect.Struct:
	default:
		return nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tagName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tagName == "-" || !f.IsExported():
		case tagName == "" && f.Anonymous:
			if ft := fieldType(f.Type, name); ft != nil {
				return ft
			}
		case tagName == name || (tagName == "" && f.Name == name):
			return f.Type
		}
	}
	return nil
}

// jsonFieldNames lists the JSON field names of struct type t, with those of
// inlined structs (TypeMeta, ObjectMeta).
func jsonFieldNames(t reflect.Type) []string {
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tagName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tagName == "-" || !f.IsExported():
		case tagName == "" && f.Anonymous:
			names = append(names, jsonFieldNames(f.Type)...)
		case tagName == "":
			names = append(names, f.Name)
		default:
			names = append(names, tagName)
		}
	}
	return names
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
