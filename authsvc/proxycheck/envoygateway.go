package proxycheck

import "fmt"

// contextPolicyKey is the context extension that names the policy on the gRPC door.
const contextPolicyKey = "jwtgate.dev/policy"

// backends lists the backend references of an extAuth http or grpc block
// (backendRefs, or the older single backendRef).
func backends(m map[string]any) []map[string]any {
	out := objs(m, "backendRefs")
	if b := obj(m, "backendRef"); b != nil {
		out = append(out, b)
	}
	return out
}

func (c *checker) pointsAtJwtgate(o Object, m map[string]any) bool {
	for _, b := range backends(m) {
		if isService(b) && c.svc.matchesBackend(str(b, "name"), str(b, "namespace"), o.Namespace) {
			return true
		}
	}
	return false
}

// targetHosts lists the hostnames of the HTTPRoutes a policy attachment
// targets, as far as the objects at hand hold them.
func (c *checker) targetHosts(o Object) []string {
	refs := objs(o.Content, "spec", "targetRefs")
	if r := obj(o.Content, "spec", "targetRef"); r != nil {
		refs = append(refs, r)
	}
	var hosts []string
	for _, r := range refs {
		if str(r, "kind") != "HTTPRoute" {
			continue
		}
		for _, other := range c.objects {
			if other.Kind == "HTTPRoute" && other.Namespace == o.Namespace && other.Name == str(r, "name") {
				hosts = append(hosts, strs(other.Content, "spec", "hostnames")...)
			}
		}
	}
	return hosts
}

// contextPolicy reads the jwtgate.dev/policy context extension, given as a
// list of {name, value} or as a map.
func contextPolicy(ext map[string]any) string {
	for _, e := range objs(ext, "contextExtensions") {
		if str(e, "name") == contextPolicyKey {
			return str(e, "value")
		}
	}
	return str(ext, "contextExtensions", contextPolicyKey)
}

// securityPolicy checks an Envoy Gateway SecurityPolicy whose extAuth calls jwtgate.
func (c *checker) securityPolicy(o Object) {
	ext := obj(o.Content, "spec", "extAuth")
	httpCfg, grpcCfg := obj(ext, "http"), obj(ext, "grpc")
	isHTTP := httpCfg != nil && c.pointsAtJwtgate(o, httpCfg)
	isGRPC := grpcCfg != nil && c.pointsAtJwtgate(o, grpcCfg)
	if !isHTTP && !isGRPC {
		return
	}
	if boolean(ext, "failOpen") {
		c.add(SeverityError, o, "spec.extAuth.failOpen", "",
			"is true: when jwtgate cannot be reached or answers an error, Envoy lets every request through unauthenticated; remove it (the default is false)")
	}
	hosts := c.targetHosts(o)
	sent := strs(ext, "headersToExtAuth")
	if isGRPC {
		t := target{door: DoorExtAuthzGRPC, known: true, path: "gRPC Check", policy: contextPolicy(ext)}
		ps := c.resolve(o, "spec.extAuth.contextExtensions", t, hosts)
		c.checkHosts(o, "spec.extAuth.grpc", t, hosts, ps)
		if len(sent) > 0 {
			c.checkSent(o, "spec.extAuth.headersToExtAuth", sent, ps, "add %s to it, or leave it empty (gRPC sends all headers)")
		}
		c.checkSignInRoute(o, "spec.extAuth", hosts, ps)
		return
	}
	t := parseDoorPath(str(httpCfg, "path"))
	if !c.extAuthzDoor(o, "spec.extAuth.http.path", t, "spec.extAuth.http.path") {
		return
	}
	ps := c.resolve(o, "spec.extAuth.http.path", t, hosts)
	c.checkHosts(o, "spec.extAuth.http.path", t, hosts, ps)
	c.checkCopied(o, "spec.extAuth.http.headersToBackend", strs(httpCfg, "headersToBackend"), ps,
		"add it to spec.extAuth.http.headersToBackend")
	c.checkSent(o, "spec.extAuth.headersToExtAuth", sent, ps, "add %s to spec.extAuth.headersToExtAuth")
	c.checkBrowserHeaders(o, "spec.extAuth.headersToExtAuth", sent, ps, "spec.extAuth.headersToExtAuth")
	c.checkSignInRoute(o, "spec.extAuth", hosts, ps)
}

// middleware checks a Traefik Middleware whose forwardAuth calls jwtgate.
func (c *checker) middleware(o Object) {
	fa := obj(o.Content, "spec", "forwardAuth")
	if fa == nil {
		return
	}
	t, ok := c.svc.urlTarget(str(fa, "address"), o.Namespace)
	if !ok {
		return
	}
	const field = "spec.forwardAuth"
	if boolean(fa, "trustForwardHeader") {
		c.add(SeverityError, o, field+".trustForwardHeader", "",
			"is true: Traefik then passes the client's own X-Forwarded-Uri and -Method to jwtgate, so a client chooses the path and method that are checked; remove it")
	}
	switch {
	case !t.known:
		c.add(SeverityError, o, field+".address", "",
			"%q is not one of jwtgate's doors: Traefik needs /jwtgate/forward-auth/NAMESPACE/NAME", t.path)
		return
	case t.door == DoorAuthRequest:
		c.add(SeverityError, o, field+".address", t.policy,
			"points at the nginx door (%s): Traefik sends X-Forwarded-* and no X-Original-URL, so every request is answered 403 (and a client's forged X-Original-URL would pass through); use /jwtgate/forward-auth%s",
			t.path, policySuffix(t.policy))
		return
	case t.door == DoorExtAuthzHTTP:
		c.add(SeverityError, o, field+".address", t.policy,
			"points at the Envoy door (%s): Traefik calls the address as written, so every decision is about the wrong path; use /jwtgate/forward-auth%s",
			t.path, policySuffix(t.policy))
		return
	}
	ps := c.resolve(o, field+".address", t, nil)
	c.checkCopied(o, field+".authResponseHeaders", strs(fa, "authResponseHeaders"), ps,
		"add it to spec.forwardAuth.authResponseHeaders")
	if sent := strs(fa, "authRequestHeaders"); len(sent) > 0 {
		c.checkSent(o, field+".authRequestHeaders", sent, ps, "add %s to it, or leave it empty (all headers are sent)")
		c.checkBrowserHeaders(o, field+".authRequestHeaders", sent, ps, "spec.forwardAuth.authRequestHeaders")
	}
}

func policySuffix(policy string) string {
	if policy == "" {
		return ""
	}
	return fmt.Sprintf("/%s", policy)
}
