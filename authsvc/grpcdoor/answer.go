package grpcdoor

import (
	"net/http"
	"strings"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jwtgate/jwtgate/authsvc/door"
)

// answer writes the core's answer as a CheckResponse.
//   - 200: OK with OkHttpResponse: each forwardClaims header that has a value
//     overwrites the request's, and each one whose claim is absent is in
//     headers_to_remove, so that a client's own copy never reaches the
//     upstream.
//   - 302 (sign-in redirect) and 401: UNAUTHENTICATED; 403: PERMISSION_DENIED;
//     with DeniedHttpResponse, the HTTP answer Envoy sends the client: the
//     status, location or www-authenticate, and a short plain-text body, as
//     the HTTP doors answer.
func answer(a door.Answer) *authv3.CheckResponse {
	if a.Status == http.StatusOK {
		ok := &authv3.OkHttpResponse{}
		n := 0
		for _, h := range a.Set {
			if h.Values[0] != "" {
				n++
			}
		}
		// One allocation for the options and one for their headers, not two
		// per header.
		opts, vals := make([]corev3.HeaderValueOption, n), make([]corev3.HeaderValue, n)
		ok.Headers = make([]*corev3.HeaderValueOption, 0, n)
		for _, h := range a.Set {
			if h.Values[0] == "" {
				ok.HeadersToRemove = append(ok.HeadersToRemove, h.Lower)
				continue
			}
			i := len(ok.Headers)
			ok.Headers = append(ok.Headers, setOverwrite(&opts[i], &vals[i], h.Lower, h.Values[0]))
		}
		return &authv3.CheckResponse{
			Status:       statusOK,
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
		}
	}
	code := codes.PermissionDenied
	status := http.StatusForbidden
	denied := &authv3.DeniedHttpResponse{}
	switch a.Status {
	case http.StatusFound:
		code, status = codes.Unauthenticated, http.StatusFound
		denied.Headers = append(denied.Headers, overwrite("location", a.Location))
	case http.StatusUnauthorized:
		code, status = codes.Unauthenticated, http.StatusUnauthorized
		denied.Headers = append(denied.Headers, overwrite("www-authenticate", a.WWWAuthenticate))
	}
	denied.Status = &typev3.HttpStatus{Code: typev3.StatusCode(status)}
	denied.Headers = append(denied.Headers, overwrite("cache-control", "no-store"), overwrite("content-type", "text/plain; charset=utf-8"))
	denied.Body = http.StatusText(status) + "\n"
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(code)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied},
	}
}

// overwrite is a header that replaces any copy the request (or answer)
// already has. Current Envoy reads append_action when append is unset, and
// its default (APPEND_IF_EXISTS_OR_ADD) would keep a client's forged
// X-Auth-User beside ours; older Envoy reads append. Both are set, so every
// version overwrites. name must be lower case, as HTTP/2 and Envoy want it.
func overwrite(name, value string) *corev3.HeaderValueOption {
	return setOverwrite(new(corev3.HeaderValueOption), new(corev3.HeaderValue), name, value)
}

// setOverwrite fills o and v as overwrite describes and returns o.
func setOverwrite(o *corev3.HeaderValueOption, v *corev3.HeaderValue, name, value string) *corev3.HeaderValueOption {
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	v.Key, v.Value = name, value
	o.Header = v
	o.Append = appendFalse //nolint:staticcheck // SA1019: older Envoy reads only Append (see above)
	o.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	return o
}

// Messages every answer shares: never modified (marshaling only reads them).
var (
	statusOK    = &rpcstatus.Status{Code: int32(codes.OK)}
	appendFalse = wrapperspb.Bool(false)
)
