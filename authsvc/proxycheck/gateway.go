package proxycheck

import (
	"fmt"
	"strings"
)

// httpRouteRoutes lists the paths an HTTPRoute sends to jwtgate.
func (c *checker) httpRouteRoutes(o Object) []route {
	hosts := strs(o.Content, "spec", "hostnames")
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	var out []route
	for i, r := range objs(o.Content, "spec", "rules") {
		toJwtgate := false
		for _, b := range objs(r, "backendRefs") {
			if isService(b) && c.svc.matchesBackend(str(b, "name"), str(b, "namespace"), o.Namespace) {
				toJwtgate = true
			}
		}
		if !toJwtgate {
			continue
		}
		paths := []string{}
		for _, m := range objs(r, "matches") {
			p := str(m, "path", "value")
			if p == "" {
				p = "/"
			}
			paths = append(paths, p)
		}
		if len(paths) == 0 {
			paths = []string{"/"}
		}
		for _, h := range hosts {
			for _, p := range paths {
				out = append(out, route{host: h, path: p, field: fmt.Sprintf("spec.rules[%d]", i)})
			}
		}
	}
	return out
}

// isService reports whether a backend reference names a Service (the
// default group and kind).
func isService(b map[string]any) bool {
	g, k := str(b, "group"), str(b, "kind")
	return (g == "" || g == "core") && (k == "" || k == "Service")
}

// httpRoute checks an HTTPRoute: what it routes to jwtgate, and its
// ExternalAuth filters that call jwtgate.
func (c *checker) httpRoute(o Object) {
	for _, r := range c.httpRouteRoutes(o) {
		c.checkDoorRoute(o, r.field, r.path)
	}
	hosts := strs(o.Content, "spec", "hostnames")
	for i, r := range objs(o.Content, "spec", "rules") {
		for j, f := range objs(r, "filters") {
			if str(f, "type") != "ExternalAuth" {
				continue
			}
			ea := obj(f, "externalAuth")
			b := obj(ea, "backendRef")
			if b == nil || !isService(b) || !c.svc.matchesBackend(str(b, "name"), str(b, "namespace"), o.Namespace) {
				continue
			}
			field := fmt.Sprintf("spec.rules[%d].filters[%d].externalAuth", i, j)
			c.externalAuth(o, field, ea, hosts)
		}
	}
}

func (c *checker) externalAuth(o Object, field string, ea map[string]any, hosts []string) {
	if strings.EqualFold(str(ea, "protocol"), "GRPC") {
		t := target{door: DoorExtAuthzGRPC, known: true, path: "gRPC Check"}
		ps := c.resolve(o, field, t, hosts)
		c.checkHosts(o, field, t, hosts, ps)
		if sent := strs(ea, "grpc", "allowedHeaders"); len(sent) > 0 {
			c.checkSent(o, field+".grpc.allowedHeaders", sent, ps, "add %s to it, or leave it empty (all headers are sent)")
		}
		c.checkSignInRoute(o, field, hosts, ps)
		return
	}
	t := parseDoorPath(str(ea, "http", "path"))
	if !c.extAuthzDoor(o, field+".http.path", t, "http.path") {
		return
	}
	ps := c.resolve(o, field+".http.path", t, hosts)
	c.checkHosts(o, field+".http.path", t, hosts, ps)
	// With allowedResponseHeaders empty, every header of the answer is copied,
	// and jwtgate's allow carries only the forwardClaims headers.
	if copied := strs(ea, "http", "allowedResponseHeaders"); len(copied) > 0 {
		c.checkCopied(o, field+".http.allowedResponseHeaders", copied, ps, "add it to allowedResponseHeaders (or leave the list empty)")
	}
	c.checkSent(o, field+".http.allowedHeaders", strs(ea, "http", "allowedHeaders"), ps, "add %s to http.allowedHeaders")
	c.checkBrowserHeaders(o, field+".http.allowedHeaders", strs(ea, "http", "allowedHeaders"), ps, "http.allowedHeaders")
	c.checkSignInRoute(o, field, hosts, ps)
}

// extAuthzDoor checks that an Envoy-family HTTP ext_authz configuration
// calls the ext-authz door, and says what to write when it does not.
func (c *checker) extAuthzDoor(o Object, field string, t target, name string) bool {
	const fix = "/jwtgate/ext-authz/NAMESPACE/NAME (or /jwtgate/ext-authz/- to route by host)"
	switch {
	case t.path == "" || t.path == "/":
		c.add(SeverityError, o, field, "",
			"%s is empty: Envoy sends the check to the original path on jwtgate, which is no door; set it to %s", name, fix)
	case !t.known:
		c.add(SeverityError, o, field, "",
			"%s %q is not one of jwtgate's doors; set it to %s", name, t.path, fix)
	case t.door != DoorExtAuthzHTTP:
		c.add(SeverityError, o, field, t.policy,
			"%s %q is the %s door, which does not fit Envoy's ext_authz (Envoy appends the original path and sends no X-Forwarded-Uri or X-Original-URL): every request is answered 403; set it to %s",
			name, t.path, t.door, fix)
	default:
		return true
	}
	return false
}

// checkBrowserHeaders warns when an Envoy-family HTTP check does not send
// accept while a policy signs people in: jwtgate then cannot tell a page load
// and answers 401 instead of the sign-in redirect.
func (c *checker) checkBrowserHeaders(o Object, field string, sent []string, ps []Policy, name string) {
	for _, p := range ps {
		if p.SignsIn && !hasHeader(sent, "accept") {
			c.add(SeverityWarning, o, field, p.Key(),
				"does not send accept to jwtgate while AuthPolicy %s signs people in: browsers get 401 instead of the redirect to the sign-in page; add accept (and x-forwarded-proto) to %s",
				p.Key(), name)
			return
		}
	}
}
