package proxycheck

import (
	"fmt"
	"strings"
)

const nginxAnnotation = "nginx.ingress.kubernetes.io/"

func annField(name string) string {
	return "metadata.annotations[" + nginxAnnotation + name + "]"
}

// route is one path a proxy object sends to jwtgate's Service.
type route struct {
	host, path, field string
}

// jwtgateRoutes lists the paths an Ingress or HTTPRoute sends to jwtgate.
func (c *checker) jwtgateRoutes(o Object) []route {
	switch o.Kind {
	case "Ingress":
		return c.ingressRoutes(o)
	case "HTTPRoute":
		return c.httpRouteRoutes(o)
	}
	return nil
}

func (c *checker) ingressRoutes(o Object) []route {
	var out []route
	if b := obj(o.Content, "spec", "defaultBackend", "service"); b != nil && c.svc.matchesBackend(str(b, "name"), "", o.Namespace) {
		out = append(out, route{path: "/", field: "spec.defaultBackend"})
	}
	for i, r := range objs(o.Content, "spec", "rules") {
		host := str(r, "host")
		for j, p := range objs(r, "http", "paths") {
			if !c.svc.matchesBackend(str(p, "backend", "service", "name"), "", o.Namespace) {
				continue
			}
			path := str(p, "path")
			if path == "" {
				path = "/"
			}
			out = append(out, route{host: host, path: path, field: fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)})
		}
	}
	return out
}

func ingressHosts(o Object) []string {
	var hosts []string
	for _, r := range objs(o.Content, "spec", "rules") {
		if h := str(r, "host"); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ingress checks an Ingress: the routes it sends to jwtgate, and the
// auth-url annotations of ingress-nginx (also read by Traefik's
// ingress-nginx provider).
func (c *checker) ingress(o Object) {
	for _, r := range c.ingressRoutes(o) {
		c.checkDoorRoute(o, r.field, r.path)
	}
	ann := obj(o.Content, "metadata", "annotations")
	authURL, _ := ann[nginxAnnotation+"auth-url"].(string)
	if authURL == "" {
		return
	}
	t, ok := c.svc.urlTarget(authURL, o.Namespace)
	if !ok {
		return
	}
	field := annField("auth-url")
	switch {
	case !t.known:
		c.add(SeverityError, o, field, "",
			"%q is not one of jwtgate's doors: ingress-nginx needs /jwtgate/auth/NAMESPACE/NAME (or /jwtgate/auth to route by host)", t.path)
		return
	case t.door == DoorExtAuthzHTTP:
		c.add(SeverityError, o, field, t.policy,
			"points at the Envoy door (%s), which reads the original path from its own path: ingress-nginx calls the auth-url as written, so every decision is about the wrong path; use /jwtgate/auth/NAMESPACE/NAME", t.path)
		return
	case t.door == DoorForwardAuth:
		c.add(SeverityInfo, o, field, t.policy,
			"points at the forward-auth door (%s), which fits Traefik's ingress-nginx provider only: under ingress-nginx (no X-Forwarded-Uri) every request is answered 403; with ingress-nginx use /jwtgate/auth/NAMESPACE/NAME", t.path)
	}
	hosts := ingressHosts(o)
	ps := c.resolve(o, field, t, hosts)
	c.checkHosts(o, field, t, hosts, ps)

	copied := splitList(str(ann, nginxAnnotation+"auth-response-headers"))
	c.checkCopied(o, annField("auth-response-headers"), copied, ps,
		"add it to "+nginxAnnotation+"auth-response-headers")

	if t.door == DoorForwardAuth {
		// Traefik's ingress-nginx provider ignores auth-signin: the door
		// itself sends page loads to /jwtgate/login on the host.
		c.checkSignInRoute(o, field, hosts, ps)
	} else {
		c.checkAuthSignIn(o, ann, hosts, ps)
	}

	if key, _ := ann[nginxAnnotation+"auth-cache-key"].(string); key != "" {
		c.checkCacheKey(o, key, ps)
	}
}

// checkAuthSignIn: ingress-nginx sends a browser that gets 401 to
// auth-signin, which a policy that signs people in needs.
func (c *checker) checkAuthSignIn(o Object, ann map[string]any, hosts []string, ps []Policy) {
	signIn, _ := ann[nginxAnnotation+"auth-signin"].(string)
	for _, p := range ps {
		if p.SignsIn && signIn == "" {
			c.add(SeverityWarning, o, annField("auth-signin"), p.Key(),
				"is missing while AuthPolicy %s signs people in: browsers get a bare 401 instead of the sign-in page; set it to https://$host/jwtgate/login", p.Key())
		}
	}
	if signIn != "" && strings.Contains(signIn, "$host") {
		c.checkSignInRoute(o, annField("auth-signin"), hosts, ps)
	}
}

// checkCacheKey: ingress-nginx caches the auth answer under auth-cache-key;
// a key without the token serves one user's decision to another.
func (c *checker) checkCacheKey(o Object, key string, ps []Policy) {
	cookies := false
	for _, p := range ps {
		cookies = cookies || p.Cookies
	}
	var missing []string
	if !strings.Contains(key, "$http_authorization") {
		missing = append(missing, "$http_authorization")
	}
	if cookies && !strings.Contains(key, "$http_cookie") && !strings.Contains(key, "$cookie_") {
		missing = append(missing, "$cookie_jwtgate_access")
	}
	if len(missing) > 0 {
		c.add(SeverityInfo, o, annField("auth-cache-key"), "",
			"%q does not hold %s: ingress-nginx would serve one user's cached decision to another (and cache 401s for 5 minutes); put the token in the key, e.g. $http_authorization$cookie_jwtgate_access, or drop the cache",
			key, strings.Join(missing, " and "))
	}
}
