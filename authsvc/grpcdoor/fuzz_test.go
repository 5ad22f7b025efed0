package grpcdoor

import (
	"context"
	"net/http"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	gojwt "github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/jwtgate/jwtgate/authsvc/door"
)

// FuzzCheck feeds the door CheckRequests with arbitrary method, scheme, host,
// path, one header and the policy extension. Whatever comes, Check answers
// without an error, with exactly one http_response that Envoy accepts
// (ext_authz.proto's constraints hold), its gRPC code agreeing with its HTTP
// status, and a denial is 302, 401 or 403.
func FuzzCheck(f *testing.F) {
	store := newStore(f)
	d := &Door{Checker: &door.Checker{Store: store}}
	tok := token(f, gojwt.MapClaims{"sub": "alice", "roles": "admin"})
	f.Add("GET", "https", "shop.example.com", "/app?a=1", "authorization", "Bearer "+tok, "shop/web", true)
	f.Add("GET", "https", "shop.example.com:8443", "/app", "accept", "text/html", "", false)
	f.Add("POST", "http", "api.example.com", "/public/%2e%2e/admin", "x-http-method-override", "DELETE", "", false)
	f.Add("GET", "", "[::1]:8080", "//admin", "cookie", "jwtgate_access="+tok, "api/api", true)
	f.Add("", "", "", "", "", "", "", true)
	f.Add("G\xffT", "h\x00", "a@b", "/%zz\\", ":authority", "x", "shop/", true)
	f.Fuzz(func(t *testing.T, method, scheme, host, path, hk, hv, policyKey string, named bool) {
		var ext map[string]string
		if named {
			ext = map[string]string{PolicyExtension: policyKey}
		}
		req := checkRequest(method, host, path, map[string]string{hk: hv}, ext)
		req.Attributes.Request.Http.Scheme = scheme
		resp, err := d.Check(context.Background(), req)
		if err != nil {
			t.Fatalf("error: %v", err)
		}
		if err := resp.ValidateAll(); err != nil {
			t.Fatalf("invalid CheckResponse: %v", err)
		}
		// grpc must be able to send it (proto3 strings are UTF-8).
		if _, err := proto.Marshal(resp); err != nil {
			t.Fatalf("the CheckResponse does not marshal: %v", err)
		}
		code := codes.Code(resp.GetStatus().GetCode())
		switch r := resp.GetHttpResponse().(type) {
		case *authv3.CheckResponse_OkResponse:
			if code != codes.OK {
				t.Fatalf("OkHttpResponse with code %v", code)
			}
		case *authv3.CheckResponse_DeniedResponse:
			s := int(r.DeniedResponse.GetStatus().GetCode())
			switch {
			case s == http.StatusForbidden && code == codes.PermissionDenied:
			case (s == http.StatusUnauthorized || s == http.StatusFound) && code == codes.Unauthenticated:
			default:
				t.Fatalf("denial %d with code %v", s, code)
			}
		default:
			t.Fatalf("no http_response: %T", r)
		}
	})
}
