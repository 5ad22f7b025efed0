//go:build egctl

package guides

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The xDS that Envoy Gateway itself makes from docs/proxies/envoy-gateway.md
// (egctl experimental translate, Envoy Gateway v1.9.1 built from its module by
// hack/egctl-bin.sh): the ext_authz filter points at the door, path, port and
// headers the guide promises, and never fails open. `make egctl-translate`.
func TestEnvoyGatewayTranslatesTheGuide(t *testing.T) {
	bin := os.Getenv("JWTGATE_EGCTL")
	if bin == "" {
		out, err := exec.Command(filepath.Join("..", "..", "hack", "egctl-bin.sh")).Output()
		if err != nil {
			t.Fatalf("egctl is missing and hack/egctl-bin.sh could not build it: %v", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	b := blocks(t, "envoy-gateway.md")
	for _, mode := range []string{"grpc", "http"} {
		t.Run(mode, func(t *testing.T) {
			docs := append(slices.Clone(egctlScene), b["envoy-gateway-"+mode]...)
			docs = append(docs, b["envoy-gateway-signin"]...)
			if mode == "http" {
				// The HTTP example leans on the gRPC one's ReferenceGrant.
				docs = append(docs, kind(b["envoy-gateway-grpc"], "ReferenceGrant"))
			}
			var in strings.Builder
			for _, d := range docs {
				y, err := yaml.Marshal(d)
				if err != nil {
					t.Fatal(err)
				}
				in.WriteString("---\n")
				in.Write(y)
			}
			file := filepath.Join(t.TempDir(), "in.yaml")
			if err := os.WriteFile(file, []byte(in.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "x", "translate", "--from", "gateway-api", "--to", "xds", "-t", "all", "-o", "json", "-f", file).CombinedOutput() //nolint:gosec // bin is hack/egctl-bin.sh's build or $JWTGATE_EGCTL, which make sets
			if err != nil {
				t.Fatalf("egctl x translate: %v\n%s", err, out)
			}
			var xds any
			if err := json.Unmarshal(out, &xds); err != nil {
				t.Fatalf("egctl's output is not JSON: %v\n%.2000s", err, out)
			}
			authz := find(xds, func(m map[string]any) bool {
				return strings.HasSuffix(str(m, "@type"), "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz")
			})
			if len(authz) != 1 {
				t.Fatalf("%d ext_authz filters in the xDS Envoy Gateway makes from the guide, want 1:\n%.4000s", len(authz), out)
			}
			a := authz[0]
			if v, _ := a["failureModeAllow"].(bool); v {
				t.Errorf("ext_authz fails open: %v", a)
			}
			switch mode {
			case "grpc":
				wantEndpoint(t, xds, str(a, "grpcService", "envoyGrpc", "clusterName"), grpcPort)
			case "http":
				if p := str(a, "httpService", "pathPrefix"); p != "/jwtgate/ext-authz/shop/shop" {
					t.Errorf("HTTP ext_authz pathPrefix %q, want /jwtgate/ext-authz/shop/shop", p)
				}
				wantEndpoint(t, xds, str(a, "httpService", "serverUri", "cluster"), httpPort)
				allowed := matchers(get(a, "allowedHeaders", "patterns"))
				for _, h := range mustSend {
					if !slices.Contains(allowed, h) {
						t.Errorf("Envoy would not send %q to jwtgate (it sends %v)", h, allowed)
					}
				}
				upstream := matchers(get(a, "httpService", "authorizationResponse", "allowedUpstreamHeaders", "patterns"))
				for _, h := range forwarded {
					if !slices.Contains(upstream, h) {
						t.Errorf("Envoy would not copy %q upstream (it copies %v)", h, upstream)
					}
				}
			}

			// The app's route is checked (in gRPC mode naming the policy); the
			// sign-in pages' routes are not (jwtgate does not check its own
			// sign-in page).
			routes := find(xds, func(m map[string]any) bool { return m["match"] != nil && m["route"] != nil })
			var app, signin int
			for _, r := range routes {
				cluster := str(r, "route", "cluster")
				var settings map[string]any
				for k, v := range asMap(r["typedPerFilterConfig"]) {
					if strings.HasPrefix(k, "envoy.filters.http.ext_authz") {
						settings = asMap(v)
					}
				}
				switch {
				case strings.HasPrefix(cluster, "httproute/shop/shop/"):
					app++
					if settings == nil {
						t.Errorf("the app's route %v is not checked by jwtgate", r["match"])
					} else if mode == "grpc" && str(settings, "checkSettings", "contextExtensions", "jwtgate.dev/policy") != guidePolicy {
						t.Errorf("the app's route names no policy jwtgate.dev/policy=%s: %v", guidePolicy, settings)
					}
				case strings.HasPrefix(cluster, "httproute/shop/shop-signin/"):
					signin++
					if settings != nil {
						t.Errorf("the sign-in route %v is checked by jwtgate too", r["match"])
					}
				}
			}
			if app == 0 || signin != len(publicExact)+1 {
				t.Errorf("%d app routes and %d sign-in routes in the xDS, want some and %d", app, signin, len(publicExact)+1)
			}
		})
	}
}

// egctlScene is what the guide assumes exists: Envoy Gateway's GatewayClass
// and Gateway, the app's HTTPRoute and Service, jwtgate's Service.
var egctlScene = func() []map[string]any {
	var out []map[string]any
	for _, doc := range strings.Split(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: envoy-gateway-system}
spec:
  gatewayClassName: eg
  listeners:
    - {name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: All}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: shop}
spec:
  parentRefs: [{name: eg, namespace: envoy-gateway-system}]
  hostnames: ["shop.example.com"]
  rules:
    - backendRefs: [{name: app, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: jwtgate, namespace: jwtgate}
spec:
  clusterIP: 10.96.0.20
  ports:
    - {name: http, port: 8000, targetPort: 8000}
    - {name: grpc, port: 9001, targetPort: 9001, appProtocol: kubernetes.io/h2c}`, "\n---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			panic(err)
		}
		out = append(out, m)
	}
	return out
}()

// wantEndpoint checks that cluster's endpoints are the jwtgate Service's
// port (its clusterIP in egctlScene).
func wantEndpoint(t *testing.T, xds any, cluster string, port int64) {
	t.Helper()
	las := find(xds, func(m map[string]any) bool {
		return strings.HasSuffix(str(m, "@type"), "ClusterLoadAssignment") && str(m, "clusterName") == cluster
	})
	if cluster == "" || len(las) != 1 {
		t.Errorf("ext_authz cluster %q has %d endpoint configs, want 1", cluster, len(las))
		return
	}
	addr := get(las[0], "endpoints", 0, "lbEndpoints", 0, "endpoint", "address", "socketAddress")
	if str(addr, "address") != "10.96.0.20" || num(addr, "portValue") != port {
		t.Errorf("ext_authz cluster %q reaches %v, want the jwtgate Service 10.96.0.20:%d", cluster, addr, port)
	}
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// find returns every map in v (depth first) for which match holds.
func find(v any, match func(map[string]any) bool) []map[string]any {
	var out []map[string]any
	switch x := v.(type) {
	case map[string]any:
		if match(x) {
			out = append(out, x)
		}
		for _, e := range x {
			out = append(out, find(e, match)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, find(e, match)...)
		}
	}
	return out
}

// matchers lists the exact (or prefix) values of a list of string matchers.
func matchers(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		for _, k := range []string{"exact", "prefix"} {
			if s := str(m[k]); s != "" {
				out = append(out, strings.ToLower(s))
			}
		}
	}
	return out
}
