package proxycheck

import (
	"strings"
	"testing"
)

// signInRoute routes only jwtgate's public paths on shop.example.com to jwtgate.
const signInRoute = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: jwtgate-signin, namespace: shop}
spec:
  parentRefs: [{name: gateway, namespace: infra}]
  hostnames: [shop.example.com]
  rules:
    - matches:
        - path: {type: PathPrefix, value: /jwtgate/login}
        - path: {type: PathPrefix, value: /jwtgate/refresh}
        - path: {type: PathPrefix, value: /jwtgate/logout}
        - path: {type: PathPrefix, value: /jwtgate/jwks.json}
        - path: {type: PathPrefix, value: /jwtgate/oidc/}
      backendRefs: [{name: jwtgate, namespace: jwtgate, port: 8000}]
`

func shopRoute(externalAuth string) string {
	return `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{name: gateway, namespace: infra}]
  hostnames: [shop.example.com]
  rules:
    - filters:
        - type: ExternalAuth
          externalAuth:
` + externalAuth + `
      backendRefs: [{name: web, port: 80}]
`
}

const goodExternalAuth = `            protocol: HTTP
            backendRef: {name: jwtgate, namespace: jwtgate, port: 8000}
            http:
              path: /jwtgate/ext-authz/shop/shop
              allowedHeaders: [cookie, accept, x-forwarded-proto]`

func TestHTTPRoute(t *testing.T) {
	runCases(t, []struct {
		name    string
		objects string
		want    []want
	}{
		{name: "clean", objects: shopRoute(goodExternalAuth) + "\n---\n" + signInRoute},
		{name: "clean gRPC", objects: shopRoute(`            protocol: GRPC
            backendRef: {name: jwtgate, namespace: jwtgate, port: 9001}
            grpc: {}`) + "\n---\n" + signInRoute},
		{name: "forward-auth door behind Envoy", objects: shopRoute(strings.Replace(goodExternalAuth, "ext-authz", "forward-auth", 1)) + "\n---\n" + signInRoute,
			want: []want{{SeverityError, "spec.rules[0].filters[0].externalAuth.http.path", "forward_auth door, which does not fit Envoy"}}},
		{name: "no path", objects: shopRoute(`            protocol: HTTP
            backendRef: {name: jwtgate, namespace: jwtgate, port: 8000}
            http: {allowedHeaders: [cookie, accept]}`),
			want: []want{{SeverityError, "spec.rules[0].filters[0].externalAuth.http.path", "is empty"}}},
		{name: "response header left out", objects: shopRoute(goodExternalAuth+`
              allowedResponseHeaders: [X-Auth-User]`) + "\n---\n" + signInRoute,
			want: []want{{SeverityError, "spec.rules[0].filters[0].externalAuth.http.allowedResponseHeaders", "does not copy X-Auth-Roles"}}},
		{name: "cookie and accept not sent", objects: shopRoute(`            protocol: HTTP
            backendRef: {name: jwtgate, namespace: jwtgate, port: 8000}
            http: {path: /jwtgate/ext-authz/shop/shop}`) + "\n---\n" + signInRoute,
			want: []want{
				{SeverityWarning, "spec.rules[0].filters[0].externalAuth.http.allowedHeaders", "does not send the cookie header"},
				{SeverityWarning, "spec.rules[0].filters[0].externalAuth.http.allowedHeaders", "does not send accept"},
			}},
		{name: "method overrides not sent while rules limit methods", objects: `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: shop}
spec:
  hostnames: [api.example.com]
  rules:
    - filters:
        - type: ExternalAuth
          externalAuth:
            protocol: HTTP
            backendRef: {name: jwtgate, namespace: jwtgate, port: 8000}
            http: {path: /jwtgate/ext-authz/shop/api, allowedHeaders: [x-http-method-override]}`,
			want: []want{{SeverityWarning, "spec.rules[0].filters[0].externalAuth.http.allowedHeaders", "x-http-method, x-method-override"}}},
		{name: "no route to the sign-in page", objects: shopRoute(goodExternalAuth),
			want: []want{{SeverityWarning, "spec.rules[0].filters[0].externalAuth", "nothing routes /jwtgate/login on shop.example.com"}}},
		{name: "door routed from the internet", objects: `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: jwtgate, namespace: shop}
spec:
  hostnames: [shop.example.com]
  rules:
    - matches: [{path: {type: PathPrefix, value: /jwtgate/ext-authz}}]
      backendRefs: [{name: jwtgate, namespace: jwtgate, port: 8000}]`,
			want: []want{{SeverityError, "spec.rules[0]", "exposes /jwtgate/ext-authz"}}},
	})
}

func securityPolicy(extAuth string) string {
	return `
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: SecurityPolicy
metadata: {name: web, namespace: shop}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: web}]
  extAuth:
` + extAuth + `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  hostnames: [shop.example.com]
  rules: [{backendRefs: [{name: web, port: 80}]}]
`
}

const goodExtAuth = `    headersToExtAuth: [cookie, accept, x-forwarded-proto]
    http:
      backendRefs: [{name: jwtgate, namespace: jwtgate, port: 8000}]
      path: /jwtgate/ext-authz/shop/shop
      headersToBackend: [X-Auth-User, X-Auth-Roles]`

func TestSecurityPolicy(t *testing.T) {
	runCases(t, []struct {
		name    string
		objects string
		want    []want
	}{
		{name: "clean", objects: securityPolicy(goodExtAuth) + "\n---\n" + signInRoute},
		{name: "clean gRPC", objects: securityPolicy(`    grpc:
      backendRefs: [{name: jwtgate, namespace: jwtgate, port: 9001}]
    contextExtensions:
      - {name: jwtgate.dev/policy, type: Value, value: shop/shop}`) + "\n---\n" + signInRoute},
		{name: "failOpen", objects: securityPolicy(goodExtAuth+`
    failOpen: true`) + "\n---\n" + signInRoute,
			want: []want{{SeverityError, "spec.extAuth.failOpen", "lets every request through"}}},
		{name: "headers not copied to the backend", objects: securityPolicy(`    headersToExtAuth: [cookie, accept]
    http:
      backendRefs: [{name: jwtgate, namespace: jwtgate, port: 8000}]
      path: /jwtgate/ext-authz/shop/shop`) + "\n---\n" + signInRoute,
			want: []want{
				{SeverityError, "spec.extAuth.http.headersToBackend", "does not copy X-Auth-User"},
				{SeverityError, "spec.extAuth.http.headersToBackend", "does not copy X-Auth-Roles"},
			}},
		{name: "gRPC naming a policy that does not exist", objects: securityPolicy(`    grpc:
      backendRefs: [{name: jwtgate, namespace: jwtgate, port: 9001}]
    contextExtensions:
      - {name: jwtgate.dev/policy, type: Value, value: shop/nope}`) + "\n---\n" + signInRoute,
			want: []want{{SeverityError, "spec.extAuth.contextExtensions", "AuthPolicy shop/nope, which does not exist"}}},
		{name: "nginx door behind Envoy", objects: securityPolicy(strings.Replace(goodExtAuth, "ext-authz", "auth", 1)) + "\n---\n" + signInRoute,
			want: []want{{SeverityError, "spec.extAuth.http.path", "auth_request door, which does not fit Envoy"}}},
	})
}

func middleware(forwardAuth string) string {
	return `
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: jwtgate, namespace: shop}
spec:
  forwardAuth:
` + forwardAuth
}

func TestMiddleware(t *testing.T) {
	runCases(t, []struct {
		name    string
		objects string
		want    []want
	}{
		{name: "clean", objects: middleware(`    address: http://jwtgate.jwtgate.svc:8000/jwtgate/forward-auth/shop/shop
    authResponseHeaders: [X-Auth-User, X-Auth-Roles]`)},
		{name: "trustForwardHeader", objects: middleware(`    address: http://jwtgate.jwtgate.svc:8000/jwtgate/forward-auth/shop/shop
    trustForwardHeader: true
    authResponseHeaders: [X-Auth-User, X-Auth-Roles]`),
			want: []want{{SeverityError, "spec.forwardAuth.trustForwardHeader", "a client chooses the path"}}},
		{name: "nginx door", objects: middleware(`    address: http://jwtgate.jwtgate.svc:8000/jwtgate/auth/shop/shop
    authResponseHeaders: [X-Auth-User, X-Auth-Roles]`),
			want: []want{{SeverityError, "spec.forwardAuth.address", "use /jwtgate/forward-auth/shop/shop"}}},
		{name: "header not copied", objects: middleware(`    address: http://jwtgate.jwtgate.svc:8000/jwtgate/forward-auth/shop/shop
    authResponseHeaders: [X-Auth-User]`),
			want: []want{{SeverityError, "spec.forwardAuth.authResponseHeaders", "does not copy X-Auth-Roles"}}},
		{name: "only some headers sent", objects: middleware(`    address: http://jwtgate.jwtgate.svc:8000/jwtgate/forward-auth/shop/shop
    authRequestHeaders: [Authorization]
    authResponseHeaders: [X-Auth-User, X-Auth-Roles]`),
			want: []want{
				{SeverityWarning, "spec.forwardAuth.authRequestHeaders", "does not send the cookie header"},
				{SeverityWarning, "spec.forwardAuth.authRequestHeaders", "does not send accept"},
			}},
	})
}

func istio(provider string) string {
	return `
apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
      - name: jwtgate
` + provider + `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: web, namespace: shop}
spec:
  action: CUSTOM
  provider: {name: jwtgate}
  rules: [{to: [{operation: {hosts: [shop.example.com]}}]}]
`
}

func TestAuthorizationPolicy(t *testing.T) {
	runCases(t, []struct {
		name    string
		objects string
		want    []want
	}{
		{name: "clean", objects: istio(`        envoyExtAuthzHttp:
          service: jwtgate.jwtgate.svc.cluster.local
          port: 8000
          pathPrefix: /jwtgate/ext-authz/shop/shop
          includeRequestHeadersInCheck: [cookie, accept, x-forwarded-proto]
          headersToUpstreamOnAllow: [x-auth-user, x-auth-roles]`)},
		{name: "failOpen and no path", objects: istio(`        envoyExtAuthzHttp:
          service: jwtgate.jwtgate.svc.cluster.local
          port: 8000
          failOpen: true
          includeRequestHeadersInCheck: [cookie, accept]
          headersToUpstreamOnAllow: [x-auth-*]`),
			want: []want{
				{SeverityError, "spec.provider", "failOpen: true"},
				{SeverityError, "spec.provider", "pathPrefix of provider \"jwtgate\""},
			}},
		{name: "cookie not sent and header not copied", objects: istio(`        envoyExtAuthzHttp:
          service: jwtgate.jwtgate.svc.cluster.local
          port: 8000
          pathPrefix: /jwtgate/ext-authz/shop/shop
          includeRequestHeadersInCheck: [accept]
          headersToUpstreamOnAllow: [x-auth-user]`),
			want: []want{
				{SeverityError, "spec.provider", "does not copy X-Auth-Roles"},
				{SeverityWarning, "spec.provider", "does not send the cookie header"},
			}},
		// Host-routed (pathPrefix .../-, or gRPC): the policies are those whose
		// hosts cover the AuthorizationPolicy's operation hosts.
		{name: "host-routed provider, header not copied", objects: istio(`        envoyExtAuthzHttp:
          service: jwtgate.jwtgate.svc.cluster.local
          port: 8000
          pathPrefix: /jwtgate/ext-authz/-
          includeRequestHeadersInCheck: [cookie, accept, x-forwarded-proto]
          headersToUpstreamOnAllow: [x-auth-user]`),
			want: []want{{SeverityError, "spec.provider", "does not copy X-Auth-Roles"}}},
		{name: "host-routed gRPC provider, host without a policy", objects: strings.Replace(istio(`        envoyExtAuthzGrpc:
          service: jwtgate.jwtgate.svc.cluster.local
          port: 9001`), "hosts: [shop.example.com]", `hosts: ["shop.example.com:443", "other.example.com", "*"]`, 1),
			want: []want{{SeverityWarning, "spec.provider", `no AuthPolicy lists host "other.example.com"`}}},
		{name: "another provider", objects: istio(`        envoyExtAuthzHttp:
          service: oauth2-proxy.auth.svc.cluster.local
          port: 4180`)},
	})
}
