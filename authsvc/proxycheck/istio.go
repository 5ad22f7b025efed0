package proxycheck

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// meshProvider is one of Istio's extensionProviders, read from the mesh
// config (the `mesh` key of the istio ConfigMap).
type meshProvider struct {
	name   string
	source Object
	index  int
	http   map[string]any
	grpc   map[string]any
}

// meshProviders reads the extension providers of every ConfigMap that holds
// a mesh config.
func (c *checker) meshProviders() []meshProvider {
	var out []meshProvider
	for _, o := range c.objects {
		if o.Kind != "ConfigMap" {
			continue
		}
		raw := str(o.Content, "data", "mesh")
		if raw == "" {
			continue
		}
		var mesh map[string]any
		if err := yaml.Unmarshal([]byte(raw), &mesh); err != nil {
			c.add(SeverityWarning, o, "data.mesh", "", "is not valid YAML, so Istio's extension providers cannot be checked: %v", err)
			continue
		}
		for i, p := range objs(mesh, "extensionProviders") {
			out = append(out, meshProvider{name: str(p, "name"), source: o, index: i,
				http: obj(p, "envoyExtAuthzHttp"), grpc: obj(p, "envoyExtAuthzGrpc")})
		}
	}
	return out
}

// authorizationPolicy checks an Istio AuthorizationPolicy with action CUSTOM
// whose provider calls jwtgate.
func (c *checker) authorizationPolicy(o Object) {
	if str(o.Content, "spec", "action") != "CUSTOM" {
		return
	}
	name := str(o.Content, "spec", "provider", "name")
	for _, p := range c.mesh {
		if p.name == name {
			c.meshProvider(o, p)
		}
	}
}

func (c *checker) meshProvider(o Object, p meshProvider) {
	field := fmt.Sprintf("data.mesh: extensionProviders[%d]", p.index)
	cfg, door := p.http, DoorExtAuthzHTTP
	if cfg == nil {
		cfg, door = p.grpc, DoorExtAuthzGRPC
	}
	if cfg == nil {
		return
	}
	host := str(cfg, "service")
	if i := strings.LastIndex(host, "/"); i >= 0 { // "namespace/host" form
		host = host[i+1:]
	}
	if !c.svc.matchesHost(host, o.Namespace) {
		return
	}
	where := fmt.Sprintf("provider %q (%s %s)", p.name, p.source, field)
	if boolean(cfg, "failOpen") {
		c.add(SeverityError, o, "spec.provider", "",
			"%s has failOpen: true: when jwtgate cannot be reached, every request passes unauthenticated; remove it", where)
	}
	hosts := operationHosts(o)
	if door == DoorExtAuthzGRPC {
		t := target{door: door, known: true, path: "gRPC Check"}
		ps := c.resolve(o, "spec.provider", t, hosts)
		c.checkHosts(o, "spec.provider", t, hosts, ps)
		return
	}
	t := parseDoorPath(str(cfg, "pathPrefix"))
	if !c.extAuthzDoor(o, "spec.provider", t, "pathPrefix of "+where) {
		return
	}
	ps := c.resolve(o, "spec.provider", t, hosts)
	c.checkHosts(o, "spec.provider", t, hosts, ps)
	c.checkCopied(o, "spec.provider", strs(cfg, "headersToUpstreamOnAllow"), ps,
		"add it to headersToUpstreamOnAllow of "+where)
	sent := strs(cfg, "includeRequestHeadersInCheck")
	c.checkSent(o, "spec.provider", sent, ps, "add %s to includeRequestHeadersInCheck of "+where)
	c.checkBrowserHeaders(o, "spec.provider", sent, ps, "includeRequestHeadersInCheck of "+where)
}

// operationHosts lists the hosts of an AuthorizationPolicy's rules
// (spec.rules[].to[].operation.hosts), without ports, and without "*", which
// names no host in particular: a host-routed provider (gRPC, or pathPrefix
// /jwtgate/ext-authz/-) answers with the policies whose spec.hosts cover them.
func operationHosts(o Object) []string {
	var out []string
	for _, r := range objs(o.Content, "spec", "rules") {
		for _, to := range objs(r, "to") {
			for _, h := range strs(to, "operation", "hosts") {
				if host, _, err := net.SplitHostPort(h); err == nil {
					h = host
				}
				if h != "" && h != "*" && !slices.Contains(out, h) {
					out = append(out, h)
				}
			}
		}
	}
	return out
}
