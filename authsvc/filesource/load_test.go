package filesource

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const policyShop = `apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicy
metadata:
  name: shop
  namespace: shop
spec:
  jwt:
    algorithms: [RS256]
`

// policy returns an AuthPolicy document named ns/name.
func policy(ns, name string) string {
	meta := "  name: " + name + "\n"
	if ns != "" {
		meta += "  namespace: " + ns + "\n"
	}
	return "apiVersion: jwtgate.dev/v1alpha1\nkind: AuthPolicy\nmetadata:\n" + meta +
		"spec:\n  jwt:\n    algorithms: [RS256]\n"
}

// writeFiles writes files (relative name -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// mountedVolume lays out dir the way the kubelet mounts a ConfigMap or Secret
// volume: the data in a timestamped hidden folder, "..data" pointing at it, and
// each key a symlink through "..data".
func mountedVolume(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	writeFiles(t, filepath.Join(dir, "..2026_11_23"), files)
	if err := os.Symlink("..2026_11_23", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// wantProblem matches one Problem. File is relative to the test folder.
type wantProblem struct {
	file     string
	document int
	line     int // 0: not checked
	object   string
	field    string
	contains []string // substrings of Error()
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// setup, when set, lays out the folder instead of files.
		setup func(t *testing.T, dir string)
		paths []string // relative to the test folder; default "."

		wantPolicies []string                     // ns/name, in order
		wantSecrets  map[string]map[string]string // ns/name -> data
		wantOrigin   map[Ref]Location             // File relative to the test folder
		wantFiles    []string
		wantProblems []wantProblem
	}{
		{
			name: "multi-document file with policies and secrets",
			files: map[string]string{"all.yaml": policyShop + `---
# keys for shop
apiVersion: v1
kind: Secret
metadata: {name: shop-keys, namespace: shop}
data:
  secret: b2xk        # "old"
  other: eA==         # "x"
stringData:
  secret: new
  users: "alice:$2a$10$abc"
---
` + policy("shop", "admin")},
			wantPolicies: []string{"shop/shop", "shop/admin"},
			wantSecrets: map[string]map[string]string{
				"shop/shop-keys": {"secret": "new", "other": "x", "users": "alice:$2a$10$abc"},
			},
			wantOrigin: map[Ref]Location{
				{"AuthPolicy", "shop", "shop"}:  {File: "all.yaml", Document: 1, Line: 1},
				{"Secret", "shop", "shop-keys"}: {File: "all.yaml", Document: 2, Line: 11},
				{"AuthPolicy", "shop", "admin"}: {File: "all.yaml", Document: 3, Line: 21},
			},
		},
		{
			// The last document is found in the file although YAMLReader
			// hands it over with the newline the file lacks.
			name:         "last document without a final newline",
			files:        map[string]string{"two.yaml": policyShop + "---\n" + strings.TrimSuffix(policy("shop", "admin"), "\n")},
			wantPolicies: []string{"shop/shop", "shop/admin"},
			wantOrigin: map[Ref]Location{
				{"AuthPolicy", "shop", "shop"}:  {File: "two.yaml", Document: 1, Line: 1},
				{"AuthPolicy", "shop", "admin"}: {File: "two.yaml", Document: 2, Line: 10},
			},
		},
		{
			name: "List, AuthPolicyList and SecretList",
			files: map[string]string{"list.yaml": `apiVersion: v1
kind: List
items:
- apiVersion: jwtgate.dev/v1alpha1
  kind: AuthPolicy
  metadata: {name: a, namespace: x}
  spec: {jwt: {algorithms: [ES256]}}
- apiVersion: v1
  kind: Secret
  metadata: {name: s, namespace: x}
  stringData: {k: v}
---
apiVersion: jwtgate.dev/v1alpha1
kind: AuthPolicyList
items:
- metadata: {name: b, namespace: x}
  spec: {jwt: {algorithms: [ES256]}}
---
apiVersion: v1
kind: SecretList
items:
- metadata: {name: t, namespace: x}
  data: {k: dg==}
`},
			wantPolicies: []string{"x/a", "x/b"},
			wantSecrets:  map[string]map[string]string{"x/s": {"k": "v"}, "x/t": {"k": "v"}},
		},
		{
			name: "missing namespace is default",
			files: map[string]string{"p.yaml": policy("", "shop") + `---
apiVersion: v1
kind: Secret
metadata: {name: keys}
`},
			wantPolicies: []string{"default/shop"},
			wantSecrets:  map[string]map[string]string{"default/keys": {}},
		},
		{
			name:         "empty documents and comments are skipped",
			files:        map[string]string{"p.yaml": "# nothing here\n---\n---\n\n---\n" + policy("a", "a") + "---\n# trailing\n"},
			wantPolicies: []string{"a/a"},
		},
		{
			name: "JSON file and JSON stream",
			files: map[string]string{
				"a.json": `{"apiVersion":"jwtgate.dev/v1alpha1","kind":"AuthPolicy","metadata":{"name":"a"},"spec":{"jwt":{"algorithms":["RS256"]}}}`,
				"b.json": "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"s\"},\"data\":{\"k\":\"dg==\"}}\n" +
					"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"t\"},\"stringData\":{\"k\":\"w\"}}\n",
				"c.yaml": "{apiVersion: v1, kind: Secret, metadata: {name: u}}\n", // YAML flow style, not JSON
			},
			wantPolicies: []string{"default/a"},
			wantSecrets: map[string]map[string]string{
				"default/s": {"k": "v"}, "default/t": {"k": "w"}, "default/u": {},
			},
			wantOrigin: map[Ref]Location{{"Secret", "default", "t"}: {File: "b.json", Document: 2, Line: 2}},
		},
		{
			name: "folder: recursive, sorted by name, hidden and other files skipped",
			files: map[string]string{
				"b.yml":            policy("x", "b"),
				"a.yaml":           policy("x", "a"),
				"c.JSON":           `{"apiVersion":"jwtgate.dev/v1alpha1","kind":"AuthPolicy","metadata":{"name":"c","namespace":"x"},"spec":{}}`,
				"sub/d.yaml":       policy("x", "d"),
				"e.yaml":           policy("x", "e"),
				".hidden.yaml":     policy("x", "hidden"),
				".git/config.yaml": policy("x", "git"),
				"notes.txt":        policy("x", "txt"),
				"sub/.swp/z.yaml":  policy("x", "swp"),
				"sub/README.md":    "# not config",
			},
			wantPolicies: []string{"x/a", "x/b", "x/c", "x/e", "x/d"},
			wantFiles:    []string{"a.yaml", "b.yml", "c.JSON", "e.yaml", "sub/d.yaml"},
		},
		{
			name: "paths in the order given; a file given twice is read once",
			files: map[string]string{
				"z.yaml": policy("x", "z"), "a/a.yaml": policy("x", "a"), "other.txt": policy("x", "txt"),
			},
			paths:        []string{"z.yaml", "a", "z.yaml", "a/a.yaml", "other.txt"},
			wantPolicies: []string{"x/z", "x/a", "x/txt"},
			wantFiles:    []string{"z.yaml", "a/a.yaml", "other.txt"},
		},
		{
			name: "mounted ConfigMap volume loads each object once",
			setup: func(t *testing.T, dir string) {
				mountedVolume(t, dir, map[string]string{
					"policy.yaml":  policy("shop", "shop"),
					"secrets.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: k, namespace: shop}\nstringData: {a: b}\n",
				})
			},
			wantPolicies: []string{"shop/shop"},
			wantSecrets:  map[string]map[string]string{"shop/k": {"a": "b"}},
			wantFiles:    []string{"policy.yaml", "secrets.yaml"},
			wantOrigin: map[Ref]Location{
				{"AuthPolicy", "shop", "shop"}: {File: "policy.yaml", Document: 1, Line: 1},
			},
		},
		{
			name: "mounted volume given as folder and as file",
			setup: func(t *testing.T, dir string) {
				mountedVolume(t, filepath.Join(dir, "vol"), map[string]string{"policy.yaml": policy("shop", "shop")})
			},
			paths:        []string{"vol", "vol/policy.yaml", "vol/..data/policy.yaml"},
			wantPolicies: []string{"shop/shop"},
			wantFiles:    []string{"vol/policy.yaml"},
		},
		{
			name:         "unknown field names file, document, field and a suggestion",
			files:        map[string]string{"p.yaml": policy("x", "ok") + "---\n" + strings.Replace(policyShop, "algorithms", "algoritms", 1)}, //nolint:misspell // the misspelled field is the test
			wantPolicies: []string{"x/ok"},
			wantProblems: []wantProblem{{
				file: "p.yaml", document: 2, line: 10, object: "AuthPolicy shop/shop", field: "spec.jwt.algoritms",
				contains: []string{"p.yaml:10 (document 2)", `did you mean "algorithms"`},
			}},
		},
		{
			name: "unknown fields inside lists and list items, wrong case",
			files: map[string]string{"l.yaml": `apiVersion: v1
kind: List
items:
- apiVersion: jwtgate.dev/v1alpha1
  kind: AuthPolicy
  metadata: {name: a}
  spec:
    jwt:
      algorithms: [RS256]
      keys:
      - secretRef: {name: k, kye: x}
    Hosts: [a.example.com]
`},
			wantProblems: []wantProblem{
				// In the order of the JSON that sigs.k8s.io/yaml writes: keys sorted.
				{file: "l.yaml", document: 1, object: "AuthPolicy default/a", field: "items[0].spec.Hosts", contains: []string{`did you mean "hosts"`}},
				{file: "l.yaml", document: 1, object: "AuthPolicy default/a", field: "items[0].spec.jwt.keys[0].secretRef.kye", contains: []string{`did you mean "key"`}},
			},
		},
		{
			name:  "wrong type names the field",
			files: map[string]string{"p.yaml": strings.Replace(policyShop, "[RS256]", "RS256", 1)},
			wantProblems: []wantProblem{{
				file: "p.yaml", document: 1, object: "AuthPolicy shop/shop", field: "spec.jwt.algorithms",
				contains: []string{"expected a list, found string"},
			}},
		},
		{
			name: "unknown kind and wrong apiVersion say what is supported",
			files: map[string]string{"k.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\n" +
				strings.Replace(policyShop, "v1alpha1", "v1", 1) + "---\nkind: Secret\nmetadata: {name: s}\n---\n- a list\n"},
			wantProblems: []wantProblem{
				{file: "k.yaml", document: 1, object: "Deployment default/web", contains: []string{`kind "Deployment"`, "AuthPolicy (apiVersion jwtgate.dev/v1alpha1)"}},
				{file: "k.yaml", document: 2, object: "AuthPolicy shop/shop", field: "apiVersion", contains: []string{`"jwtgate.dev/v1" is not supported`, "use jwtgate.dev/v1alpha1"}},
				{file: "k.yaml", document: 3, object: "Secret default/s", field: "apiVersion", contains: []string{"is required"}},
				{file: "k.yaml", document: 4, contains: []string{"expected an object", "found a list"}},
			},
		},
		{
			name: "invalid YAML gives the line in the file",
			files: map[string]string{"bad.yaml": policy("x", "a") + "---\n" + // lines 1-8, separator 9
				"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n   namespace: x\n"}, // error at line 14
			wantPolicies: []string{"x/a"},
			wantProblems: []wantProblem{{file: "bad.yaml", document: 2, line: 10, contains: []string{"invalid YAML", "line 14"}}},
		},
		{
			name:         "a key set twice in one mapping",
			files:        map[string]string{"dup.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\nstringData: {c: d}\n"},
			wantProblems: []wantProblem{{file: "dup.yaml", document: 1, contains: []string{"invalid YAML", "line 5", `"stringData" already set`}}},
		},
		{
			name:         "bad document separator",
			files:        map[string]string{"sep.yaml": policy("x", "a") + "--- oops\n" + policy("x", "b")},
			wantPolicies: []string{"x/b"},
			wantProblems: []wantProblem{{file: "sep.yaml", document: 1, line: 9, contains: []string{"invalid document separator at line 9"}}},
		},
		{
			name: "duplicate objects name both places",
			files: map[string]string{
				"a.yaml": policy("x", "p"),
				"b.yaml": "# again\n" + policy("x", "p") + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: p, namespace: x}\n",
			},
			wantPolicies: []string{"x/p"},
			wantSecrets:  map[string]map[string]string{"x/p": {}}, // same name, other kind: not a duplicate
			wantOrigin:   map[Ref]Location{{"AuthPolicy", "x", "p"}: {File: "a.yaml", Document: 1, Line: 1}},
			wantProblems: []wantProblem{{
				file: "b.yaml", document: 1, line: 2, object: "AuthPolicy x/p",
				contains: []string{"defined twice", "first at a.yaml:1 (document 1)"},
			}},
		},
		{
			name: "bad base64 in Secret data names the file and key",
			files: map[string]string{"s.yaml": `apiVersion: v1
kind: Secret
metadata: {name: s, namespace: x}
data:
  good: dg==
  token: not base64!
`},
			wantProblems: []wantProblem{{
				file: "s.yaml", document: 1, object: "Secret x/s", field: "data[token]",
				contains: []string{"s.yaml:1 (document 1)", "not valid base64", "stringData"},
			}},
		},
		{
			name:  "invalid names",
			files: map[string]string{"n.yaml": policy("Bad_NS", "Shop") + "---\napiVersion: v1\nkind: Secret\nmetadata: {namespace: x}\n"},
			wantProblems: []wantProblem{
				{file: "n.yaml", document: 1, object: "AuthPolicy Bad_NS/Shop", field: "metadata.name", contains: []string{"invalid name"}},
				{file: "n.yaml", document: 1, object: "AuthPolicy Bad_NS/Shop", field: "metadata.namespace", contains: []string{"invalid namespace"}},
				{file: "n.yaml", document: 2, field: "metadata.name", contains: []string{"is required"}},
			},
		},
		{
			name: "nothing lost: bad documents do not stop good ones",
			files: map[string]string{
				"a.yaml": policy("x", "one") + "---\nkey: [unclosed\n---\n" +
					"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n" +
					strings.Replace(policy("x", "typo"), "spec:", "spek:", 1) + "---\n" + policy("x", "two"),
				"b.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '%%%'}\n---\n" + policy("x", "three"),
				"c.yaml": policy("x", "four"),
			},
			paths:        []string{".", "missing.yaml"},
			wantPolicies: []string{"x/one", "x/two", "x/three", "x/four"},
			wantProblems: []wantProblem{
				{file: "a.yaml", document: 2, contains: []string{"invalid YAML"}},
				{file: "a.yaml", document: 3, object: "ConfigMap default/c", contains: []string{`kind "ConfigMap"`}},
				{file: "a.yaml", document: 4, object: "AuthPolicy x/typo", field: "spek", contains: []string{`did you mean "spec"`}},
				{file: "b.yaml", document: 1, object: "Secret default/s", field: "data[k]", contains: []string{"base64"}},
				{file: "missing.yaml", contains: []string{"missing.yaml: cannot read: no such file or directory"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			// Paths relative to the test folder keep messages short and
			// comparable; chdir is process-wide, so these subtests are not parallel.
			t.Chdir(dir)
			paths := tt.paths
			if paths == nil {
				paths = []string{"."}
			}

			b, problems := Load(paths)

			for _, p := range problems {
				t.Logf("problem: %v", p)
			}
			if len(problems) != len(tt.wantProblems) {
				t.Fatalf("got %d problems, want %d", len(problems), len(tt.wantProblems))
			}
			for i, want := range tt.wantProblems {
				got := problems[i]
				if filepath.Clean(got.Location.File) != want.file || got.Location.Document != want.document ||
					(want.line != 0 && got.Location.Line != want.line) {
					t.Errorf("problem %d at %+v, want file %s document %d line %d", i, got.Location, want.file, want.document, want.line)
				}
				if got.Object != want.object || got.Field != want.field {
					t.Errorf("problem %d: object %q field %q, want %q %q", i, got.Object, got.Field, want.object, want.field)
				}
				for _, s := range want.contains {
					if !strings.Contains(got.Error(), s) {
						t.Errorf("problem %d %q does not contain %q", i, got.Error(), s)
					}
				}
			}

			var gotPolicies []string
			for _, p := range b.Policies {
				gotPolicies = append(gotPolicies, p.Namespace+"/"+p.Name)
				if p.APIVersion != "jwtgate.dev/v1alpha1" || p.Kind != "AuthPolicy" {
					t.Errorf("policy %s has TypeMeta %v", p.Name, p.TypeMeta)
				}
			}
			if !slices.Equal(gotPolicies, tt.wantPolicies) {
				t.Errorf("policies %v, want %v", gotPolicies, tt.wantPolicies)
			}

			gotSecrets := map[string]map[string]string{}
			for _, s := range b.Secrets {
				data := map[string]string{}
				for k, v := range s.Data {
					data[k] = string(v)
				}
				gotSecrets[s.Namespace+"/"+s.Name] = data
				if s.StringData != nil {
					t.Errorf("secret %s still has stringData", s.Name)
				}
				if s.Type != "Opaque" {
					t.Errorf("secret %s has type %q, want Opaque", s.Name, s.Type)
				}
			}
			if len(gotSecrets) != len(tt.wantSecrets) {
				t.Errorf("secrets %v, want %v", gotSecrets, tt.wantSecrets)
			}
			for name, want := range tt.wantSecrets {
				got, ok := gotSecrets[name]
				if !ok {
					t.Errorf("secret %s missing", name)
					continue
				}
				if len(got) != len(want) {
					t.Errorf("secret %s data %v, want %v", name, got, want)
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("secret %s data[%s] = %q, want %q", name, k, got[k], v)
					}
				}
			}

			if n := len(b.Policies) + len(b.Secrets); len(b.Origin) != n {
				t.Errorf("%d origins for %d objects", len(b.Origin), n)
			}
			for ref, want := range tt.wantOrigin {
				got := b.Origin[ref]
				got.File = filepath.Clean(got.File)
				if got != want {
					t.Errorf("origin of %v = %+v, want %+v", ref, got, want)
				}
			}
			if tt.wantFiles != nil {
				var files []string
				for _, f := range b.Files {
					files = append(files, filepath.Clean(f))
				}
				if !slices.Equal(files, tt.wantFiles) {
					t.Errorf("files %v, want %v", files, tt.wantFiles)
				}
			}
		})
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		problem Problem
		want    string
	}{
		{
			Problem{Location{"policies/shop.yaml", 2, 0}, "AuthPolicy shop/shop", "spec.jwt.algorithms[0]", "bad"},
			"policies/shop.yaml (document 2): AuthPolicy shop/shop: spec.jwt.algorithms[0]: bad",
		},
		{Problem{Location{"p.yaml", 2, 12}, "", "", "invalid YAML"}, "p.yaml:12 (document 2): invalid YAML"},
		{Problem{Location{"p.yaml", 0, 0}, "", "", "cannot read"}, "p.yaml: cannot read"},
		{Problem{Message: "alone"}, "alone"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.problem.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSuggestField(t *testing.T) {
	tests := []struct{ path, want string }{
		{"spec.jwt.algoritms", "algorithms"},
		{"spec.jwt.keys[0].secretRef.nme", "name"},
		{"spec.rules[3].claims[1].contain", "contains"},
		{"metadata.namspace", "namespace"},
		{"kindd", "kind"},
		{"spec.Hosts", "hosts"},
		{"spec.whatever", ""},
		{"spec.nosuch.field", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := suggestField(reflectTypeOfPolicy, tt.path); got != tt.want {
				t.Errorf("suggestField(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
