package grpcdoor

import (
	"net/http"
	"net/textproto"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// PolicyExtension is the context extension that names the policy of a route:
// "namespace/name". Envoy sets context extensions from its own configuration
// (Envoy Gateway's contextExtensions, a route's per-filter config); a client
// cannot send them. Without it the policy is chosen by the request's host.
const PolicyExtension = "jwtgate.dev/policy"

// checkInput is what the door reads from a CheckRequest.
type checkInput struct {
	// policyKey is the PolicyExtension's value; named reports whether the
	// extension was present at all (then the host never chooses).
	policyKey string
	named     bool

	method, scheme, host, path string
	header                     http.Header
	client                     string // the downstream address Envoy reports, for audit lines
	requestID                  string
}

// readCheck turns a CheckRequest into the door's input. It never fails: a
// field that is missing stays empty, and the core refuses what it cannot read.
func readCheck(req *authv3.CheckRequest) checkInput {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	in := checkInput{
		method:    h.GetMethod(),
		scheme:    h.GetScheme(),
		host:      h.GetHost(),
		path:      h.GetPath(),
		requestID: h.GetId(),
	}
	in.policyKey, in.named = attrs.GetContextExtensions()[PolicyExtension]
	if sa := attrs.GetSource().GetAddress().GetSocketAddress(); sa != nil {
		in.client = sa.GetAddress()
	}
	in.header = readHeaders(h)
	return in
}

// readHeaders turns Envoy's lower-case header map (or, with Envoy's
// encode_raw_headers, its list of raw headers) into an http.Header with
// canonical names, as net/http would have made it, so the core reads tokens,
// cookies, Accept and method overrides the same way on every door. HTTP/2
// pseudo-headers (":authority", ":path"...) are left out: the fields method,
// host and path carry them.
func readHeaders(h *authv3.AttributeContext_HttpRequest) http.Header {
	headers, raw := h.GetHeaders(), h.GetHeaderMap().GetHeaders()
	n := len(raw)
	for k := range headers {
		if k != "" && k[0] != ':' {
			n++
		}
	}
	// Sized for the headers without the pseudo-headers, with one backing
	// array for the values of them all.
	out := make(http.Header, n)
	values := make([]string, 0, n)
	add := func(key, v string) {
		if old, ok := out[key]; ok {
			out[key] = append(old, v)
			return
		}
		values = append(values, v)
		out[key] = values[len(values)-1 : len(values) : len(values)]
	}
	for k, v := range headers {
		if k == "" || k[0] == ':' {
			continue
		}
		add(textproto.CanonicalMIMEHeaderKey(k), v)
	}
	for _, hv := range raw {
		k := hv.GetKey()
		if k == "" || k[0] == ':' {
			continue
		}
		v := hv.GetValue()
		if len(hv.GetRawValue()) > 0 {
			v = string(hv.GetRawValue())
		}
		add(textproto.CanonicalMIMEHeaderKey(strings.ToLower(k)), v)
	}
	return out
}
