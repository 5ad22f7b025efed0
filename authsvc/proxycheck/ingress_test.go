package proxycheck

import "testing"

// signInIngress routes only jwtgate's public paths on shop.example.com to jwtgate.
const signInIngress = `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: jwtgate-signin, namespace: jwtgate}
spec:
  ingressClassName: nginx
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /jwtgate/login, pathType: Exact, backend: {service: {name: jwtgate, port: {number: 8000}}}}
          - {path: /jwtgate/refresh, pathType: Exact, backend: {service: {name: jwtgate, port: {number: 8000}}}}
          - {path: /jwtgate/logout, pathType: Exact, backend: {service: {name: jwtgate, port: {number: 8000}}}}
          - {path: /jwtgate/jwks.json, pathType: Exact, backend: {service: {name: jwtgate, port: {number: 8000}}}}
          - {path: /jwtgate/oidc/, pathType: Prefix, backend: {service: {name: jwtgate, port: {number: 8000}}}}
`

func shopIngress(annotations string) string {
	return `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: shop
  annotations:
` + annotations + `
spec:
  ingressClassName: nginx
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`
}

const goodAnnotations = `    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc.cluster.local:8000/jwtgate/auth/shop/shop
    nginx.ingress.kubernetes.io/auth-signin: https://$host/jwtgate/login
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User,X-Auth-Roles`

func TestIngress(t *testing.T) {
	runCases(t, []struct {
		name    string
		objects string
		want    []want
	}{
		{name: "clean", objects: shopIngress(goodAnnotations) + "\n---\n" + signInIngress},
		{name: "not pointing at jwtgate", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://oauth2-proxy.auth.svc.cluster.local/oauth2/auth`)},
		{name: "jwtgate in another namespace is not ours", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.other.svc.cluster.local:8000/oauth2/auth`)},
		{name: "policy that does not exist", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth/shop/nope
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User`),
			want: []want{{SeverityError, annField("auth-url"), "AuthPolicy shop/nope, which does not exist"}}},
		{name: "forwarded header not copied", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth/shop/shop
    nginx.ingress.kubernetes.io/auth-signin: https://$host/jwtgate/login
    nginx.ingress.kubernetes.io/auth-response-headers: x-auth-user`) + "\n---\n" + signInIngress,
			want: []want{{SeverityError, annField("auth-response-headers"), "does not copy X-Auth-Roles"}}},
		{name: "sign-in policy without auth-signin", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth/shop/shop
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User,X-Auth-Roles`),
			want: []want{{SeverityWarning, annField("auth-signin"), "browsers get a bare 401"}}},
		{name: "auth-signin without a route to the sign-in page", objects: shopIngress(goodAnnotations),
			want: []want{{SeverityWarning, annField("auth-signin"), "nothing routes /jwtgate/login on shop.example.com"}}},
		{name: "host routing for a host no policy lists", objects: `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: other
  namespace: shop
  annotations:
    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth
spec:
  rules: [{host: other.example.com}]`,
			want: []want{{SeverityWarning, annField("auth-url"), `no AuthPolicy lists host "other.example.com"`}}},
		{name: "named policy whose hosts leave the Ingress host out", objects: `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: other
  namespace: shop
  annotations:
    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/auth/shop/api
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User
spec:
  rules: [{host: other.example.com}]`,
			want: []want{{SeverityWarning, annField("auth-url"), `host "other.example.com" is not in spec.hosts of AuthPolicy shop/api`}}},
		{name: "cache key without the token", objects: shopIngress(goodAnnotations+`
    nginx.ingress.kubernetes.io/auth-cache-key: $remote_user$http_host`) + "\n---\n" + signInIngress,
			want: []want{{SeverityInfo, annField("auth-cache-key"), "$http_authorization and $cookie_jwtgate_access"}}},
		{name: "cache key with the token", objects: shopIngress(goodAnnotations+`
    nginx.ingress.kubernetes.io/auth-cache-key: $http_authorization$cookie_jwtgate_access`) + "\n---\n" + signInIngress},
		{name: "Envoy door on an Ingress", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/ext-authz/shop/shop`),
			want: []want{{SeverityError, annField("auth-url"), "Envoy door"}}},
		{name: "a public page as the auth-url", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/login`),
			want: []want{{SeverityError, annField("auth-url"), "is not one of jwtgate's doors"}}},
		{name: "forward-auth door on an Ingress", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/forward-auth/shop/api
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User`),
			want: []want{
				{SeverityInfo, annField("auth-url"), "fits Traefik's ingress-nginx provider only"},
				{SeverityWarning, annField("auth-url"), `host "shop.example.com" is not in spec.hosts of AuthPolicy shop/api`},
			}},
		// Traefik's ingress-nginx provider ignores auth-signin; the
		// forward-auth door sends page loads to /jwtgate/login itself, which
		// needs a route on the host.
		{name: "forward-auth door for a sign-in policy, sign-in pages routed", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/forward-auth/shop/shop
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User,X-Auth-Roles`) + "\n---\n" + signInIngress,
			want: []want{{SeverityInfo, annField("auth-url"), "fits Traefik's ingress-nginx provider only"}}},
		{name: "forward-auth door for a sign-in policy, no route to the sign-in page", objects: shopIngress(
			`    nginx.ingress.kubernetes.io/auth-url: http://jwtgate.jwtgate.svc:8000/jwtgate/forward-auth/shop/shop
    nginx.ingress.kubernetes.io/auth-response-headers: X-Auth-User,X-Auth-Roles`),
			want: []want{
				{SeverityInfo, annField("auth-url"), "fits Traefik's ingress-nginx provider only"},
				{SeverityWarning, annField("auth-url"), "nothing routes /jwtgate/login on shop.example.com"},
			}},
		{name: "everything under /jwtgate/ routed from the internet", objects: `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: jwtgate, namespace: jwtgate}
spec:
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /jwtgate/, pathType: Prefix, backend: {service: {name: jwtgate, port: {number: 8000}}}}`,
			want: []want{{SeverityError, "spec.rules[0].http.paths[0]", "exposes /jwtgate/auth"}}},
		{name: "a door routed from the internet", objects: `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: jwtgate, namespace: jwtgate}
spec:
  defaultBackend: {service: {name: web, port: {number: 80}}}
  rules:
    - http:
        paths:
          - {path: /jwtgate/forward-auth, pathType: Prefix, backend: {service: {name: jwtgate, port: {number: 8000}}}}`,
			want: []want{{SeverityError, "spec.rules[0].http.paths[0]", "exposes /jwtgate/forward-auth"}}},
		{name: "jwtgate as the default backend", objects: `
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: jwtgate, namespace: jwtgate}
spec:
  defaultBackend: {service: {name: jwtgate, port: {number: 8000}}}`,
			want: []want{{SeverityError, "spec.defaultBackend", "exposes /jwtgate/auth"}}},
	})
}
