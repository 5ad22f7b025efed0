package grpcdoor

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"

	"github.com/jwtgate/jwtgate/authsvc/door"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/server"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

// conformance is the gRPC door on a real grpc server on loopback, called
// with the client go-control-plane generates: what Envoy's ext_authz filter
// in gRPC mode is built from.
type conformance struct {
	client  authv3.AuthorizationClient
	store   *policy.Store
	reg     *prometheus.Registry
	metrics *door.Metrics
	log     *testproc.SyncBuffer
}

func newConformance(t *testing.T) *conformance {
	t.Helper()
	c := &conformance{store: newStore(t), reg: prometheus.NewRegistry(), log: &testproc.SyncBuffer{}}
	c.metrics = door.NewMetrics(c.reg)
	checker := &door.Checker{Store: c.store, Metrics: c.metrics, Log: slog.New(slog.NewJSONHandler(c.log, nil))}
	conn, _ := serve(t, NewServer(&Door{Checker: checker}, nil))
	c.client = authv3.NewAuthorizationClient(conn)
	return c
}

func (c *conformance) check(t *testing.T, req *authv3.CheckRequest) *authv3.CheckResponse {
	t.Helper()
	resp, err := c.client.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check returned an RPC error (Envoy would apply failure_mode_allow): %v", err)
	}
	return resp
}

// verdict is what Envoy does with a CheckResponse, flattened for tables.
type verdict struct {
	code    codes.Code
	status  int               // the HTTP status of a denial; 200 for OK
	set     map[string]string // headers set (OK: upstream; denied: to the client)
	remove  []string          // OK: headers_to_remove
	body    string
	appends []string // headers that would append instead of overwrite
}

func read(t *testing.T, resp *authv3.CheckResponse) verdict {
	t.Helper()
	if err := resp.ValidateAll(); err != nil {
		t.Errorf("the CheckResponse breaks ext_authz.proto's constraints: %v", err)
	}
	v := verdict{code: codes.Code(resp.GetStatus().GetCode()), set: map[string]string{}}
	var hs []*corev3.HeaderValueOption
	switch r := resp.GetHttpResponse().(type) {
	case *authv3.CheckResponse_OkResponse:
		v.status = http.StatusOK
		hs = r.OkResponse.GetHeaders()
		v.remove = r.OkResponse.GetHeadersToRemove()
		if len(r.OkResponse.GetResponseHeadersToAdd()) > 0 || len(r.OkResponse.GetQueryParametersToSet()) > 0 || len(r.OkResponse.GetQueryParametersToRemove()) > 0 {
			t.Errorf("OK response changes more than the request's headers: %v", r.OkResponse)
		}
	case *authv3.CheckResponse_DeniedResponse:
		v.status = int(r.DeniedResponse.GetStatus().GetCode())
		hs = r.DeniedResponse.GetHeaders()
		v.body = r.DeniedResponse.GetBody()
	default:
		t.Fatalf("CheckResponse without an http_response (%T): Envoy would answer with defaults", r)
	}
	for _, h := range hs {
		k := h.GetHeader().GetKey()
		if k != strings.ToLower(k) {
			t.Errorf("header %q is not lower case", k)
		}
		if h.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD || h.GetAppend() == nil || h.GetAppend().GetValue() { //nolint:staticcheck // SA1019: older Envoy reads Append; the door sets both
			v.appends = append(v.appends, k)
		}
		v.set[k] = h.GetHeader().GetValue()
	}
	if (v.code == codes.OK) != (v.status == http.StatusOK) {
		t.Errorf("gRPC code %v with HTTP status %d", v.code, v.status)
	}
	return v
}

func TestCheckConformance(t *testing.T) {
	c := newConformance(t)
	alice := token(t, gojwt.MapClaims{"sub": "alice", "roles": []string{"user", "dev"}})
	mail := token(t, gojwt.MapClaims{"sub": "bob", "roles": "admin", "email": "bob@example.com"})
	expired := token(t, gojwt.MapClaims{"sub": "alice", "exp": int64(1)})
	bearer := func(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }
	browser := map[string]string{"accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"}
	with := func(a, b map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	shop := map[string]string{PolicyExtension: "shop/web"}
	tests := []struct {
		name               string
		method, host, path string
		headers, ext       map[string]string
		code               codes.Code
		status             int
		set                map[string]string
		remove             []string
	}{
		{"allow: claims overwrite, the absent one is removed", "GET", "shop.example.com", "/app?a=1", bearer(alice), shop, codes.OK, 200,
			map[string]string{"x-auth-user": "alice", "x-auth-roles": "user,dev"}, []string{"x-auth-email"}},
		{"allow: every claim present, nothing removed", "POST", "shop.example.com", "/admin/users", bearer(mail), shop, codes.OK, 200,
			map[string]string{"x-auth-user": "bob", "x-auth-roles": "admin", "x-auth-email": "bob@example.com"}, nil},
		{"allow: a client's forged header is overwritten, not kept", "GET", "shop.example.com", "/app", with(bearer(alice), map[string]string{"x-auth-user": "root"}), shop, codes.OK, 200,
			map[string]string{"x-auth-user": "alice", "x-auth-roles": "user,dev"}, []string{"x-auth-email"}},
		{"public path: every forwarded header removed", "GET", "shop.example.com", "/public/a.css", nil, shop, codes.OK, 200,
			map[string]string{}, []string{"x-auth-user", "x-auth-roles", "x-auth-email"}},
		{"token from the cookie", "GET", "shop.example.com", "/app", map[string]string{"cookie": "other=1; jwtgate_access=" + alice}, shop, codes.OK, 200,
			map[string]string{"x-auth-user": "alice", "x-auth-roles": "user,dev"}, []string{"x-auth-email"}},
		{"API call without a token: 401", "GET", "shop.example.com", "/app", map[string]string{"accept": "application/json"}, shop, codes.Unauthenticated, 401,
			map[string]string{"www-authenticate": `Bearer realm="jwtgate"`}, nil},
		{"expired token: 401 invalid_token", "GET", "api.example.com", "/v1", bearer(expired), nil, codes.Unauthenticated, 401,
			map[string]string{"www-authenticate": `Bearer realm="jwtgate", error="invalid_token", error_description="token is expired"`}, nil},
		{"role missing: 403", "GET", "shop.example.com", "/admin/", bearer(alice), shop, codes.PermissionDenied, 403, map[string]string{}, nil},
		{"page load: 302 to sign-in, host and port as sent", "GET", "shop.example.com:8443", "/app/x?a=1&b=%2F", browser, shop, codes.Unauthenticated, 302,
			map[string]string{"location": "https://shop.example.com:8443/jwtgate/login?rd=" + url.QueryEscape("https://shop.example.com:8443/app/x?a=1&b=%2F")}, nil},
		{"page load over http still redirects to https (Secure cookies)", "HEAD", "shop.example.com", "/", with(browser, map[string]string{":scheme": "http"}), shop, codes.Unauthenticated, 302,
			map[string]string{"location": "https://shop.example.com/jwtgate/login?rd=" + url.QueryEscape("https://shop.example.com/")}, nil},
		{"page load of a policy without sign-in: 401", "GET", "api.example.com", "/", browser, nil, codes.Unauthenticated, 401,
			map[string]string{"www-authenticate": `Bearer realm="jwtgate"`}, nil},
		{"POST from a browser: 401, not a redirect", "POST", "shop.example.com", "/app", browser, shop, codes.Unauthenticated, 401,
			map[string]string{"www-authenticate": `Bearer realm="jwtgate"`}, nil},
		{"page load on a host the policy does not hold: 401, no redirect there", "GET", "evil.example.net", "/app", browser, shop, codes.Unauthenticated, 401,
			map[string]string{"www-authenticate": `Bearer realm="jwtgate"`}, nil},
		{"context extension chooses the policy over the host", "GET", "api.example.com", "/admin/", bearer(alice), shop, codes.PermissionDenied, 403, map[string]string{}, nil},
		{"context extension naming no policy: 403, the host does not choose", "GET", "shop.example.com", "/app", bearer(alice), map[string]string{PolicyExtension: "shop/nope"}, codes.PermissionDenied, 403, map[string]string{}, nil},
		{"empty context extension: 403", "GET", "shop.example.com", "/app", bearer(alice), map[string]string{PolicyExtension: ""}, codes.PermissionDenied, 403, map[string]string{}, nil},
		{"other context extensions are ignored", "GET", "api.example.com", "/v1", bearer(alice), map[string]string{"team": "shop/web"}, codes.OK, 200,
			map[string]string{"x-auth-user": "alice", "x-auth-roles": "user,dev"}, []string{"x-auth-email"}},
		{"host routing, case and port ignored", "GET", "API.Example.COM:443", "/v1", bearer(alice), nil, codes.OK, 200,
			map[string]string{"x-auth-user": "alice", "x-auth-roles": "user,dev"}, []string{"x-auth-email"}},
		{"no policy for the host: 403", "GET", "other.example.com", "/", bearer(alice), nil, codes.PermissionDenied, 403, map[string]string{}, nil},
		{"x-forwarded-host never routes", "GET", "other.example.com", "/", with(bearer(alice), map[string]string{"x-forwarded-host": "api.example.com"}), nil, codes.PermissionDenied, 403, map[string]string{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := checkRequest(tc.method, tc.host, tc.path, tc.headers, tc.ext)
			if tc.headers[":scheme"] != "" {
				req.Attributes.Request.Http.Scheme = tc.headers[":scheme"]
			}
			v := read(t, c.check(t, req))
			if v.code != tc.code || v.status != tc.status {
				t.Fatalf("got %v %d, want %v %d (%+v)", v.code, v.status, tc.code, tc.status, v)
			}
			if len(v.appends) > 0 {
				t.Errorf("headers %v would be appended beside a client's copy; want OVERWRITE_IF_EXISTS_OR_ADD with append false", v.appends)
			}
			for k, want := range tc.set {
				if v.set[k] != want {
					t.Errorf("header %s = %q, want %q", k, v.set[k], want)
				}
			}
			if tc.status == 200 && len(v.set) != len(tc.set) {
				t.Errorf("an allow sets %v, want exactly %v", v.set, tc.set)
			}
			if tc.status != 200 {
				if v.set["cache-control"] != "no-store" {
					t.Errorf("a denial without cache-control: no-store: %v", v.set)
				}
				if tc.status != 302 && v.set["location"] != "" {
					t.Errorf("a %d carries location %q", tc.status, v.set["location"])
				}
			}
			slices.Sort(v.remove)
			want := slices.Clone(tc.remove)
			slices.Sort(want)
			if !slices.Equal(v.remove, want) {
				t.Errorf("headers_to_remove %v, want %v", v.remove, want)
			}
		})
	}

	// The decisions are counted under the door's own label, and a denial's
	// audit line names the door and the client Envoy reported.
	if n := testutil.ToFloat64(c.metricsCounter(t, "shop/web", "allow", "allowed")); n < 3 {
		t.Errorf("jwtgate_decisions_total{door=ext_authz_grpc, policy=shop/web, result=allow} = %v", n)
	}
	logs := c.log.String()
	if !strings.Contains(logs, `"door":"ext_authz_grpc"`) || !strings.Contains(logs, `"client":"203.0.113.7"`) || !strings.Contains(logs, `"request_id":"req-1"`) {
		t.Errorf("audit lines lack the door, client or request id:\n%s", logs)
	}
	if strings.Contains(logs, alice) {
		t.Error("a token reached the log")
	}
}

func (c *conformance) metricsCounter(t *testing.T, policyKey, result, reason string) prometheus.Collector {
	t.Helper()
	mfs, err := c.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "found"})
	for _, mf := range mfs {
		if mf.GetName() != "jwtgate_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["door"] == "ext_authz_grpc" && labels["policy"] == policyKey && labels["result"] == result && labels["reason"] == reason {
				g.Set(m.GetCounter().GetValue())
			}
		}
	}
	return g
}

// Whatever a CheckRequest holds, the answer is a CheckResponse that denies
// with an HTTP answer: never an RPC error or an error_response, which Envoy
// hands to failure_mode_allow.
func TestBadInputIsDeniedNeverAnError(t *testing.T) {
	c := newConformance(t)
	alice := token(t, gojwt.MapClaims{"sub": "alice"})
	auth := map[string]string{"authorization": "Bearer " + alice}
	shop := map[string]string{PolicyExtension: "shop/web"}
	tests := []struct {
		name string
		req  *authv3.CheckRequest
	}{
		{"empty request", &authv3.CheckRequest{}},
		{"no http attributes", &authv3.CheckRequest{Attributes: &authv3.AttributeContext{ContextExtensions: shop}}},
		{"no method", checkRequest("", "shop.example.com", "/app", auth, shop)},
		{"method with a space", checkRequest("GE T", "shop.example.com", "/app", auth, shop)},
		{"no host", checkRequest("GET", "", "/app", auth, nil)},
		{"host with user info", checkRequest("GET", "alice@shop.example.com", "/app", auth, shop)},
		{"host with a path", checkRequest("GET", "shop.example.com/x", "/app", auth, shop)},
		{"bare IPv6 host", checkRequest("GET", "::1", "/app", auth, shop)},
		{"no path", checkRequest("GET", "shop.example.com", "", auth, shop)},
		{"relative path", checkRequest("GET", "shop.example.com", "app", auth, shop)},
		{"absolute URL as path", checkRequest("GET", "shop.example.com", "https://shop.example.com/app", auth, shop)},
		{"encoded slash", checkRequest("GET", "shop.example.com", "/public%2F..%2Fadmin", auth, shop)},
		{"backslash", checkRequest("GET", "shop.example.com", "/public\\..\\admin", auth, shop)},
		{"NUL", checkRequest("GET", "shop.example.com", "/app%00", auth, shop)},
		{"bad escape", checkRequest("GET", "shop.example.com", "/app%zz", auth, shop)},
		{"path parameter", checkRequest("GET", "shop.example.com", "/public/..;/admin", auth, shop)},
		{"fragment", checkRequest("GET", "shop.example.com", "/public#/../admin", auth, shop)},
		{"control character", checkRequest("GET", "shop.example.com", "/app\r\nx: y", auth, shop)},
		{"very long path", checkRequest("GET", "shop.example.com", "/"+strings.Repeat("a", 50<<10), auth, shop)},
		{"non-ASCII host", checkRequest("GET", "shöp.example.com", "/app", auth, nil)},
		{"non-ASCII method", checkRequest("GÉT", "shop.example.com", "/app", auth, shop)},
		{"non-ASCII policy", checkRequest("GET", "shop.example.com", "/app", auth, map[string]string{PolicyExtension: "shöp/wéb"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.client.Check(context.Background(), tc.req)
			if err != nil {
				t.Fatalf("RPC error: %v", err)
			}
			v := read(t, resp)
			if v.code != codes.PermissionDenied || v.status != http.StatusForbidden {
				t.Fatalf("got %v %d, want PERMISSION_DENIED with 403", v.code, v.status)
			}
		})
	}
}

// Method-override headers reach the core's request as they came, like every
// other header, so that its override check sees them.
func TestHeadersReachTheCore(t *testing.T) {
	req := checkRequest("POST", "shop.example.com", "/app", map[string]string{
		"x-http-method-override": "DELETE", "x-method-override": "PUT", "x-http-method": "PATCH",
		"cookie": "a=1; jwtgate_access=t", "accept": "text/html", "x-forwarded-proto": "https",
	}, nil)
	in := readCheck(req)
	for k, want := range map[string]string{
		"X-Http-Method-Override": "DELETE", "X-Method-Override": "PUT", "X-Http-Method": "PATCH",
		"Cookie": "a=1; jwtgate_access=t", "Accept": "text/html", "X-Forwarded-Proto": "https",
	} {
		if got := in.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for k := range in.header {
		if strings.HasPrefix(k, ":") {
			t.Errorf("pseudo-header %s reached the core", k)
		}
	}
	// Envoy's encode_raw_headers sends a list with raw values instead.
	raw := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Method: "GET", Host: "shop.example.com", Path: "/",
		HeaderMap: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":path", RawValue: []byte("/")},
			{Key: "authorization", RawValue: []byte("Bearer x")},
			{Key: "x-http-method-override", RawValue: []byte("DELETE")},
		}},
	}}}}
	in = readCheck(raw)
	if in.header.Get("Authorization") != "Bearer x" || in.header.Get("X-Http-Method-Override") != "DELETE" || len(in.header) != 2 {
		t.Errorf("raw headers read as %v", in.header)
	}
}

// The same request gets the same decision through the gRPC door as through
// auth_request (X-Original-URL), whatever its path's encoding.
func TestEncodedPathsDecideAsAuthRequest(t *testing.T) {
	c := newConformance(t)
	alice := token(t, gojwt.MapClaims{"sub": "alice", "roles": "user"})
	admin := token(t, gojwt.MapClaims{"sub": "root", "roles": "admin"})
	mux := server.NewMux(server.Options{Store: c.store})
	paths := []string{
		"/", "/app", "/public/a", "/public/../admin", "/public/%2e%2e/admin", "/public/%2E%2E/admin/", "/public%2F..%2Fadmin",
		"/public/..%2fadmin", "//admin", "/./admin", "/admin/", "/ADMIN", "/%61dmin", "/adm%69n/x", "/public/%252e%252e/admin",
		"/admin%00", "/public\\..\\admin", "/public/..;/admin", "/public/x?../../admin", "/p%75blic/x", "/public%20/x",
		"/%", "/%zz", "/admin/../public/x", "/public/.%2e/admin", "/%C3%A9", "/%ff",
	}
	for _, tok := range []string{"", alice, admin} {
		for _, p := range paths {
			h := map[string]string{}
			if tok != "" {
				h["authorization"] = "Bearer " + tok
			}
			v := read(t, c.check(t, checkRequest("GET", "shop.example.com", p, h, map[string]string{PolicyExtension: "shop/web"})))

			r := httptest.NewRequest("GET", "/jwtgate/auth/shop/web", nil)
			r.Header.Set("X-Original-URL", "https://shop.example.com"+p)
			r.Header.Set("X-Original-Method", "GET")
			if tok != "" {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			if v.status != w.Code {
				t.Errorf("path %q (token %t): gRPC %d, auth_request %d", p, tok != "", v.status, w.Code)
			}
		}
	}
}
