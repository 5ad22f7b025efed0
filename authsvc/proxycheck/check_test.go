package proxycheck

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// decode splits multi-document YAML into proxy objects and policies.
func decode(t *testing.T, docs string) ([]Object, []Policy) {
	t.Helper()
	var objects []Object
	var policies []Policy
	for i, doc := range bytes.Split([]byte(docs), []byte("\n---\n")) {
		var content map[string]any
		if err := yaml.Unmarshal(doc, &content); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		if content == nil {
			continue
		}
		if content["kind"] == "AuthPolicy" {
			var p v1alpha1.AuthPolicy
			if err := yaml.UnmarshalStrict(doc, &p); err != nil {
				t.Fatalf("document %d: %v", i+1, err)
			}
			policies = append(policies, PolicyFrom(&p))
			continue
		}
		objects = append(objects, NewObject(content, ""))
	}
	return objects, policies
}

func testPolicies(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// want is one finding a case expects: its severity, a field prefix and words of its message.
type want struct {
	sev   Severity
	field string
	words string
}

func runCases(t *testing.T, cases []struct {
	name    string
	objects string
	want    []want
}) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objects, policies := decode(t, testPolicies(t)+"\n---\n"+tc.objects)
			got := Check(Config{Service: Service{Namespace: "jwtgate", Name: "jwtgate"}}, objects, policies)
			used := make([]bool, len(got))
			for _, w := range tc.want {
				found := false
				for i, f := range got {
					if !used[i] && f.Severity == w.sev && strings.HasPrefix(f.Field, w.field) && strings.Contains(f.Message, w.words) {
						used[i], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("missing %s finding on %s saying %q", w.sev, w.field, w.words)
				}
			}
			for i, f := range got {
				if !used[i] {
					t.Errorf("unexpected finding: %s", f)
				}
			}
		})
	}
}

// TestFindingsAttachToPolicies: a finding about the object as a whole
// (failOpen) is shown on the policy the object answers with, so the
// controller can put it in that policy's status.
func TestFindingsAttachToPolicies(t *testing.T) {
	objects, policies := decode(t, testPolicies(t)+"\n---\n"+securityPolicy(goodExtAuth+"\n    failOpen: true"))
	for _, f := range Check(Config{}, objects, policies) {
		if f.Policy != "shop/shop" {
			t.Errorf("finding without its policy: %s (policy %q)", f, f.Policy)
		}
	}
}

// TestPointing: CheckAll says which objects answer with which policy, clean
// or not, so that the controller can tell "nothing wrong" from "nothing
// points here"; the sign-in route and an object naming a missing policy
// point at none.
func TestPointing(t *testing.T) {
	objects, policies := decode(t, testPolicies(t)+"\n---\n"+shopIngress(goodAnnotations)+"\n---\n"+signInIngress+"\n---\n"+
		securityPolicy(goodExtAuth)+"\n---\n"+strings.Replace(strings.ReplaceAll(shopIngress(goodAnnotations), "auth/shop/shop", "auth/shop/nope"), "name: web", "name: other", 1))
	got := CheckAll(Config{}, objects, policies).Pointing
	want := map[string][]string{"shop/shop": {"Ingress shop/web", "SecurityPolicy shop/web"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Pointing = %v, want %v", got, want)
	}
}
