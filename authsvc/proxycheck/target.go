package proxycheck

import (
	"net"
	"net/url"
	"strings"
)

// Door is one of jwtgate's front doors, as the path a proxy calls names it.
type Door string

// The doors, named as the `door` label of the metrics names them.
const (
	DoorAuthRequest  Door = "auth_request"
	DoorForwardAuth  Door = "forward_auth"
	DoorExtAuthzHTTP Door = "ext_authz_http"
	DoorExtAuthzGRPC Door = "ext_authz_grpc"
)

// The paths of the doors, and the only paths a proxy may route from the
// internet to jwtgate.
const (
	authRequestPath = "/jwtgate/auth"
	forwardAuthPath = "/jwtgate/forward-auth"
	extAuthzPath    = "/jwtgate/ext-authz"
)

var publicPaths = []string{"/jwtgate/login", "/jwtgate/refresh", "/jwtgate/logout", "/jwtgate/jwks.json", "/jwtgate/oidc/"}

// doorPaths are the proxy-only paths, for the "door routed from the internet" check.
var doorPaths = []string{authRequestPath, forwardAuthPath, extAuthzPath}

// target is what a proxy object's auth configuration calls.
type target struct {
	door Door
	// policy is "namespace/name", or "" when the door routes by host.
	policy string
	// path is the path as configured, for messages.
	path string
	// known is false for a /jwtgate/ path that is no door at all.
	known bool
}

// parseDoorPath reads a door path: /jwtgate/auth[/ns/name],
// /jwtgate/forward-auth[/ns/name], /jwtgate/ext-authz/{ns/name|-}. The query,
// if any, is ignored.
func parseDoorPath(p string) target {
	p, _, _ = strings.Cut(p, "?")
	t := target{path: p}
	var rest string
	switch {
	case hasPathPrefix(p, authRequestPath):
		t.door, rest = DoorAuthRequest, strings.TrimPrefix(p, authRequestPath)
	case hasPathPrefix(p, forwardAuthPath):
		t.door, rest = DoorForwardAuth, strings.TrimPrefix(p, forwardAuthPath)
	case hasPathPrefix(p, extAuthzPath):
		t.door, rest = DoorExtAuthzHTTP, strings.TrimPrefix(p, extAuthzPath)
	default:
		return t
	}
	t.known = true
	rest = strings.Trim(rest, "/")
	if rest == "" || rest == "-" {
		return t
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) >= 2 {
		t.policy = parts[0] + "/" + parts[1]
	}
	return t
}

// hasPathPrefix is a prefix match by path segment.
func hasPathPrefix(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// Service names jwtgate's Service: Namespace may be empty (any namespace).
type Service struct {
	Namespace string
	Name      string
}

// ParseService reads "NAMESPACE/NAME" or "NAME".
func ParseService(s string) Service {
	if ns, name, ok := strings.Cut(s, "/"); ok {
		return Service{Namespace: ns, Name: name}
	}
	return Service{Name: s}
}

// String is "namespace/name", or the name alone.
func (s Service) String() string {
	if s.Namespace == "" {
		return s.Name
	}
	return s.Namespace + "/" + s.Name
}

// matchesHost reports whether a URL host (without port) names the Service
// from a pod in namespace from: name (same namespace), name.ns, name.ns.svc,
// name.ns.svc.<cluster domain>.
func (s Service) matchesHost(host, from string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	labels := strings.Split(host, ".")
	if labels[0] != s.Name {
		return false
	}
	ns := from
	if len(labels) >= 2 {
		ns = labels[1]
		if len(labels) >= 3 && labels[2] != "svc" {
			return false
		}
	}
	return s.Namespace == "" || s.Namespace == ns
}

// matchesBackend reports whether a backend reference (name, namespace
// defaulting to the referring object's) names the Service.
func (s Service) matchesBackend(name, namespace, from string) bool {
	if namespace == "" {
		namespace = from
	}
	return name == s.Name && (s.Namespace == "" || s.Namespace == namespace)
}

// urlTarget reads an auth URL (auth-url, forwardAuth.address). It returns
// whether the URL points at jwtgate: its host names the Service, or its path
// is under /jwtgate/.
func (s Service) urlTarget(raw, from string) (target, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return target{}, false
	}
	host := u.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	t := parseDoorPath(u.EscapedPath())
	if !s.matchesHost(host, from) && !strings.HasPrefix(u.Path, "/jwtgate/") {
		return t, false
	}
	return t, true
}
