package proxycheck

import (
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzCheck feeds arbitrary documents to the checker as proxy objects: any
// shape of field (a list where a mapping belongs, numbers for strings, a
// mesh config that is not YAML) must give findings or none, never a panic.
func FuzzCheck(f *testing.F) {
	for _, seed := range []string{
		shopIngress(goodAnnotations), signInIngress, shopRoute(goodExternalAuth), securityPolicy(goodExtAuth),
		middleware("    address: http://jwtgate:8000/jwtgate/forward-auth/shop/shop\n    trustForwardHeader: true"),
		istio("        envoyExtAuthzHttp: {service: jwtgate.jwtgate.svc, pathPrefix: /jwtgate/ext-authz/-}"),
		`{"kind":"Ingress","metadata":{"annotations":{"nginx.ingress.kubernetes.io/auth-url":"http://[::1]:8000/jwtgate/auth/a/b/c"}},"spec":{"rules":[{"host":7}]}}`,
		`{"kind":"ConfigMap","data":{"mesh":"extensionProviders: [{name: x, envoyExtAuthzGrpc: {service: 3}}]"}}`,
	} {
		f.Add([]byte(seed))
	}
	policies := []Policy{{Namespace: "shop", Name: "shop", Hosts: []string{"shop.example.com", "*.example.com"},
		ForwardHeaders: []string{"X-Auth-User"}, SignsIn: true, Cookies: true, MethodRules: true}}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var content map[string]any
		if yaml.Unmarshal(doc, &content) != nil || content == nil {
			return
		}
		o := NewObject(content, "fuzz.yaml:1")
		for _, kind := range []string{"Ingress", "HTTPRoute", "SecurityPolicy", "Middleware", "AuthorizationPolicy"} {
			o.Kind = kind
			mesh := NewObject(content, "")
			mesh.Kind = "ConfigMap"
			for _, fd := range Check(Config{}, []Object{o, mesh}, policies) {
				if fd.Message == "" || fd.Severity == "" {
					t.Fatalf("finding without a message or severity: %+v", fd)
				}
			}
		}
	})
}
