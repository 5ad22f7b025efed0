// Package grpcdoor is the Envoy ext_authz gRPC door:
// envoy.service.auth.v3.Authorization/Check on its own listener
// (--grpc-bind-address), with grpc.health.v1 beside it. It reads a
// CheckRequest into the door core's Query and writes the core's Answer as a
// CheckResponse; the policy choice, the decision, the sign-in redirect rules,
// metrics and audit lines are the core's (authsvc/door), the same as on every
// other door.
package grpcdoor

import (
	"context"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/jwtgate/jwtgate/authsvc/door"
)

// Door answers Check calls.
type Door struct {
	authv3.UnimplementedAuthorizationServer

	Checker *door.Checker
}

const msgUnreadable = "refusing ext_authz gRPC check: attributes.request.http must carry a method, a host name (with an optional port) and a path starting with / that parses; is this Envoy's ext_authz filter?"

// Check answers one CheckRequest. It never returns an error: whatever the
// request holds, the answer is a CheckResponse that allows, or denies with
// the HTTP answer the client gets. (Envoy treats an error as a failure of the
// service, which failure_mode_allow would let through.)
func (d *Door) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	q := door.Query{Door: door.ExtAuthzGRPC, Start: time.Now()}
	in := readCheck(req)
	q.Header, q.Client, q.RequestID = in.header, in.client, in.requestID
	q.PolicyKey = in.policyKey
	var res door.Result
	switch {
	case in.named && in.policyKey == "":
		res = d.Checker.Refuse(ctx, &q, "refusing ext_authz gRPC check: the context extension "+PolicyExtension+" is empty; set it to namespace/name or leave it out to route by host")
	default:
		o, problem := readOriginal(in)
		q.Original = o
		if problem != "" {
			res = d.Checker.Refuse(ctx, &q, msgUnreadable, "problem", problem)
		} else {
			res = d.Checker.Check(ctx, &q)
		}
	}
	return answer(door.Respond(&q, res)), nil
}

// readOriginal reads the original request the way every door does: the
// method as sent, the authority parsed (port kept for the redirect), the
// target (path and query, undecoded) normalized exactly as the other doors
// normalize theirs. problem names what could not be read.
func readOriginal(in checkInput) (door.Original, string) {
	o := door.Original{Method: in.method, Authority: in.host, Target: in.path}
	switch strings.ToLower(in.scheme) {
	case "http":
		o.Scheme = "http"
	default:
		// Envoy sets the scheme of the downstream connection; https is the
		// safe reading of anything else (the sign-in redirect's scheme).
		o.Scheme = "https"
	}
	if !door.ValidMethod(in.method) {
		return o, "method is not an HTTP method"
	}
	name, ok := door.ParseAuthority(in.host)
	if !ok {
		return o, "host is not a host name with an optional port"
	}
	o.HostName = name
	path, ok := door.ParseTarget(in.path)
	if !ok {
		return o, "path is refused (not absolute, or an encoded slash, backslash, NUL or ';', or a bad escape)"
	}
	o.Path = path
	return o, ""
}
