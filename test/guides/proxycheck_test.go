package guides

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/proxycheck"
)

// TestGuidesPassTheProxyCheck: the YAML of each guide, every block of the
// page together (as one would apply them), gets no error and no warning from
// the proxy check that `jwtgate check` and the controller run, for the
// guides' policy and Service (jwtgate/jwtgate); infos are logged (Traefik's
// page is told that its forward-auth auth-url fits Traefik only, which is
// what it says too). Istio's extensionProviders block goes in as the
// mesh ConfigMap istio-system/istio that holds it.
func TestGuidesPassTheProxyCheck(t *testing.T) {
	// The Traefik page's policy is default/shop, the others' shop/shop.
	traefikPolicy := guideAuthPolicy()
	traefikPolicy.Namespace = "default"
	policies := []proxycheck.Policy{proxycheck.PolicyFrom(guideAuthPolicy()), proxycheck.PolicyFrom(traefikPolicy)}
	for _, page := range []string{"envoy-gateway.md", "gateway-api.md", "istio.md", "traefik.md"} {
		t.Run(page, func(t *testing.T) {
			var b map[string][]map[string]any
			if page == "traefik.md" {
				b = fences(t, page) // a page without guide markers
			} else {
				b = blocks(t, page)
			}
			names := make([]string, 0, len(b))
			for name := range b {
				names = append(names, name)
			}
			slices.Sort(names)
			var objects []proxycheck.Object
			for _, name := range names {
				for i, doc := range b[name] {
					if _, ok := doc["extensionProviders"]; ok {
						mesh, err := yaml.Marshal(doc)
						if err != nil {
							t.Fatal(err)
						}
						doc = map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
							"metadata": map[string]any{"name": "istio", "namespace": "istio-system"},
							"data":     map[string]any{"mesh": string(mesh)}}
					}
					apiVersion, _ := doc["apiVersion"].(string)
					kind, _ := doc["kind"].(string)
					if !proxycheck.Supported(apiVersion, kind) {
						continue // ReferenceGrant, VirtualService: not read by the check
					}
					objects = append(objects, proxycheck.NewObject(doc, fmt.Sprintf("%s block %s document %d", page, name, i)))
				}
			}
			if len(objects) == 0 {
				t.Fatal("no object of the page is one the proxy check reads")
			}
			var errs, others []string
			for _, f := range proxycheck.Check(proxycheck.Config{Service: proxycheck.ParseService("jwtgate/jwtgate")}, objects, policies) {
				if f.Severity != proxycheck.SeverityInfo {
					errs = append(errs, f.String())
				} else {
					others = append(others, f.String())
				}
			}
			if len(errs) > 0 {
				t.Errorf("%d object(s) checked; errors and warnings:\n%s", len(objects), strings.Join(errs, "\n"))
			}
			if len(others) > 0 {
				t.Logf("infos:\n%s", strings.Join(others, "\n"))
			}

			// The check does read these objects as pointing at the policy: a
			// header the policy would forward and no guide copies is an error
			// (in HTTP mode: Istio's guide policy uses the gRPC provider, where
			// jwtgate sets the headers itself, so the control uses the page's
			// HTTP provider).
			for i, o := range objects {
				if o.Kind == "AuthorizationPolicy" {
					spec := o.Content["spec"].(map[string]any)
					spec["provider"] = map[string]any{"name": "jwtgate-http"}
					objects[i] = proxycheck.NewObject(o.Content, o.Source)
				}
			}
			ap := guideAuthPolicy()
			if page == "traefik.md" {
				ap = traefikPolicy.DeepCopy()
			}
			ap.Spec.ForwardClaims = append(ap.Spec.ForwardClaims, v1alpha1.ForwardClaim{Claim: "email", Header: "X-Auth-Email"})
			caught := false
			for _, f := range proxycheck.Check(proxycheck.Config{Service: proxycheck.ParseService("jwtgate/jwtgate")}, objects,
				[]proxycheck.Policy{proxycheck.PolicyFrom(ap)}) {
				caught = caught || (f.Severity == proxycheck.SeverityError && strings.Contains(f.Message, "X-Auth-Email"))
			}
			if !caught {
				t.Error("a forwardClaims header the page does not copy (X-Auth-Email) gave no error: the check did not read the page's objects")
			}
		})
	}
}

// fences reads every ```yaml fence of a page, by its position ("yaml-1", ...).
func fences(t *testing.T, page string) map[string][]map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "proxies", page))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]map[string]any{}
	rest := string(b)
	for n := 1; ; n++ {
		i := strings.Index(rest, "```yaml\n")
		if i < 0 {
			break
		}
		rest = rest[i+len("```yaml\n"):]
		body, tail, ok := strings.Cut(rest, "```")
		if !ok {
			t.Fatalf("%s: a ```yaml fence without its end", page)
		}
		rest = tail
		if docs := yamlDocs(t, fmt.Sprintf("%s: fence %d", page, n), body, yaml.Unmarshal); len(docs) > 0 {
			out[fmt.Sprintf("yaml-%d", n)] = docs
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no yaml fence", page)
	}
	return out
}
