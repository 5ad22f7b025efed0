package proxycheck

import (
	"fmt"
	"strings"
)

// Object is one proxy-side object as decoded from YAML or JSON: an Ingress,
// HTTPRoute, SecurityPolicy, Traefik Middleware, Istio AuthorizationPolicy,
// or the ConfigMap holding Istio's mesh config.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// Content is the whole object, as encoding/json decodes it into any.
	Content map[string]any
	// Source says where the object was read from ("ingress.yaml:3"), for
	// messages; empty when it came from the API server.
	Source string
}

// NewObject wraps a decoded object. A missing namespace is "default", as
// kubectl would apply it.
func NewObject(content map[string]any, source string) Object {
	o := Object{Content: content, Source: source}
	o.APIVersion, _ = content["apiVersion"].(string)
	o.Kind, _ = content["kind"].(string)
	o.Name = str(content, "metadata", "name")
	o.Namespace = str(content, "metadata", "namespace")
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	return o
}

// String names the object as "Ingress shop/web".
func (o Object) String() string {
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
}

// Supported reports whether the checker reads objects of this apiVersion and
// kind, so that a file loader can keep them instead of refusing them.
func Supported(apiVersion, kind string) bool {
	g, _, _ := strings.Cut(apiVersion, "/")
	if !strings.Contains(apiVersion, "/") {
		g = ""
	}
	switch kind {
	case "Ingress":
		return g == "networking.k8s.io"
	case "HTTPRoute":
		return g == "gateway.networking.k8s.io"
	case "SecurityPolicy":
		return g == "gateway.envoyproxy.io"
	case "Middleware":
		return g == "traefik.io" || g == "traefik.containo.us"
	case "AuthorizationPolicy":
		return g == "security.istio.io"
	case "ConfigMap":
		return g == ""
	}
	return false
}

// get walks a path of map keys.
func get(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}

func str(m map[string]any, path ...string) string {
	s, _ := get(m, path...).(string)
	return s
}

func boolean(m map[string]any, path ...string) bool {
	b, _ := get(m, path...).(bool)
	return b
}

func obj(m map[string]any, path ...string) map[string]any {
	o, _ := get(m, path...).(map[string]any)
	return o
}

func list(m map[string]any, path ...string) []any {
	l, _ := get(m, path...).([]any)
	return l
}

// objs is list keeping only the mappings.
func objs(m map[string]any, path ...string) []map[string]any {
	var out []map[string]any
	for _, v := range list(m, path...) {
		if o, ok := v.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

// strs is list keeping only the strings.
func strs(m map[string]any, path ...string) []string {
	var out []string
	for _, v := range list(m, path...) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
