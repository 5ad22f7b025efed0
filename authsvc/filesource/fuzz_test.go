package filesource

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

var reflectTypeOfPolicy = reflect.TypeOf(&v1alpha1.AuthPolicy{})

// FuzzLoad feeds arbitrary file contents to Load: it must never panic, and
// whatever it returns must be consistent.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		policyShop,
		policyShop + "---\n" + policyShop,
		"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: '!!'}\nstringData: {b: c}\n",
		"apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Secret, metadata: {name: s}}, 3, null]\n",
		"--- oops\n---\n--- # ok\n-----BEGIN\n",
		`{"apiVersion":"v1","kind":"Secret"}{"kind":`,
		"a: &a [*a]\n",
		"\uFEFFkey: value\r\n---\r\n",
		"apiVersion: jwtgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: a}\nspec: {jwt: {keys: [{secretRef: {nme: x}}]}, rules: [{claims: [{contain: 1}]}]}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		file := filepath.Join(t.TempDir(), "fuzz.yaml")
		if err := os.WriteFile(file, content, 0o600); err != nil {
			t.Fatal(err)
		}
		b, problems := Load([]string{file})
		for _, p := range problems {
			if p.Location.File != file || p.Message == "" {
				t.Errorf("problem without file or message: %+v", p)
			}
		}
		if len(b.Origin) != len(b.Policies)+len(b.Secrets) {
			t.Errorf("%d origins for %d objects", len(b.Origin), len(b.Policies)+len(b.Secrets))
		}
		for _, p := range b.Policies {
			if p.Name == "" || p.Namespace == "" {
				t.Errorf("policy without name or namespace: %+v", p.ObjectMeta)
			}
		}
	})
}
