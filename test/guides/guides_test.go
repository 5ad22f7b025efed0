package guides

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/door"
	"github.com/jwtgate/jwtgate/authsvc/grpcdoor"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/server"
)

// What every guide promises (the README's "Which door your proxy must use"): the headers an
// HTTP-mode proxy must send beyond Host, method, path and Authorization; the
// forwardClaims headers of the guides' policy, copied upstream; the only
// paths routed from the internet to jwtgate.
var (
	mustSend      = []string{"cookie", "accept", "x-forwarded-proto", "x-http-method-override", "x-http-method", "x-method-override"}
	forwarded     = []string{"x-auth-user", "x-auth-roles"}
	publicExact   = []string{"/jwtgate/login", "/jwtgate/refresh", "/jwtgate/logout", "/jwtgate/jwks.json"}
	publicPrefix  = "/jwtgate/oidc/"
	jwtgateHost   = "jwtgate.jwtgate.svc.cluster.local"
	httpPort      = int64(8000)
	grpcPort      = int64(9001)
	guidePolicy   = "shop/shop"
	guideHostname = "shop.example.com"
)

// --- the pages ----------------------------------------------------------------

// blocks reads the YAML blocks of a guide page by name, each as its documents.
func blocks(t *testing.T, page string) map[string][]map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "proxies", page))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	out := map[string][]map[string]any{}
	for rest := text; ; {
		i := strings.Index(rest, "<!-- guide: ")
		if i < 0 {
			break
		}
		rest = rest[i+len("<!-- guide: "):]
		name, tail, ok := strings.Cut(rest, " begin -->")
		if !ok || strings.ContainsAny(name, " \n") {
			t.Fatalf("%s: a guide marker without \"NAME begin -->\" near %.60q", page, rest)
		}
		end := "<!-- guide: " + name + " end -->"
		j := strings.Index(tail, end)
		if j < 0 {
			t.Fatalf("%s: block %s has no end marker", page, name)
		}
		body := strings.TrimSpace(tail[:j])
		body, ok1 := strings.CutPrefix(body, "```yaml\n")
		body, ok2 := strings.CutSuffix(body, "```")
		if !ok1 || !ok2 {
			t.Fatalf("%s: block %s is not one ```yaml fence", page, name)
		}
		out[name] = yamlDocs(t, page+": block "+name, body, yaml.UnmarshalStrict)
		rest = tail[j+len(end):]
	}
	if len(out) == 0 {
		t.Fatalf("%s: no guide blocks", page)
	}
	return out
}

// yamlDocs parses the YAML documents of body, where names it in a failure,
// with unmarshal (yaml.Unmarshal or yaml.UnmarshalStrict); empty documents
// are left out.
func yamlDocs(t *testing.T, where, body string, unmarshal func([]byte, any, ...yaml.JSONOpt) error) []map[string]any {
	t.Helper()
	var out []map[string]any
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(body)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var m map[string]any
		if err := unmarshal(doc, &m); err != nil {
			t.Fatalf("%s does not parse: %v", where, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

// get walks a parsed document: keys for maps, ints for lists.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

func num(v any, path ...any) int64 {
	switch n := get(v, path...).(type) {
	case float64:
		return int64(n)
	case int64:
		return n
	}
	return -1
}

func strs(v any, path ...any) []string {
	var out []string
	for _, e := range asList(get(v, path...)) {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

func kind(docs []map[string]any, k string) map[string]any {
	for _, d := range docs {
		if d["kind"] == k {
			return d
		}
	}
	return nil
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(lower(a)), slices.Clone(lower(b))
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func checkSends(t *testing.T, where string, listed []string) {
	t.Helper()
	for _, h := range mustSend {
		if !slices.Contains(lower(listed), h) {
			t.Errorf("%s: %s is not sent to jwtgate (listed: %v)", where, h, listed)
		}
	}
}

func checkFailClosed(t *testing.T, where string, v any) {
	t.Helper()
	if fo, ok := v.(bool); ok && fo {
		t.Errorf("%s: failOpen: true lets every request through while jwtgate is unreachable", where)
	}
}

// checkSignInRoute: exactly the README's public paths go to jwtgate's HTTP
// port, and no match is a prefix that would also expose the doors.
func checkSignInRoute(t *testing.T, where string, matches []any, exactKey, prefixKey func(any) (string, bool)) {
	t.Helper()
	var exact, prefix []string
	for _, m := range matches {
		if p, ok := exactKey(m); ok {
			exact = append(exact, p)
		} else if p, ok := prefixKey(m); ok {
			prefix = append(prefix, p)
		} else {
			t.Errorf("%s: a match that is neither exact nor prefix: %v", where, m)
		}
	}
	if !sameSet(exact, publicExact) || !slices.Equal(prefix, []string{publicPrefix}) {
		t.Errorf("%s: routes exact %v and prefixes %v to jwtgate, want exactly %v and %s", where, exact, prefix, publicExact, publicPrefix)
	}
}

// --- jwtgate under test ----------------------------------------------------------

type jwtgate struct {
	httpURL string
	grpc    authv3.AuthorizationClient
	key     *ecdsa.PrivateKey

	mu       sync.Mutex
	lastHTTP http.Header          // the last check request's headers (HTTP door)
	lastGRPC *authv3.CheckRequest // the last CheckRequest (gRPC door)
}

type recordingDoor struct {
	authv3.UnimplementedAuthorizationServer
	door *grpcdoor.Door
	j    *jwtgate
}

func (r *recordingDoor) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r.j.mu.Lock()
	r.j.lastGRPC = req
	r.j.mu.Unlock()
	return r.door.Check(ctx, req)
}

// guideAuthPolicy is the guides' policy shop/shop: shop.example.com, signs
// people in, /admin needs the role admin, forwards sub and roles.
func guideAuthPolicy() *v1alpha1.AuthPolicy {
	return &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
		Spec: v1alpha1.AuthPolicySpec{
			Hosts: []string{guideHostname},
			JWT: &v1alpha1.JWTSpec{
				Algorithms: []v1alpha1.Algorithm{"ES256"},
				Keys:       []v1alpha1.KeySource{{SecretRef: &v1alpha1.SecretKeyRef{Name: "keys", Key: "pub.pem"}}},
			},
			Rules:         []v1alpha1.Rule{{Path: "/admin", Roles: []string{"admin"}}},
			ForwardClaims: []v1alpha1.ForwardClaim{{Claim: "sub", Header: "X-Auth-User"}, {Claim: "roles", Header: "X-Auth-Roles"}},
			Login: &v1alpha1.LoginSpec{
				UsersSecretRef:      &v1alpha1.SecretKeyRef{Name: "users", Key: "users"},
				SigningKeySecretRef: v1alpha1.SecretRef{Name: "sign"},
			},
		},
	}
}

// startJwtgate serves the guides' policy shop/shop (shop.example.com, signs
// people in, /admin/ needs the role admin, forwards sub and roles) on the HTTP
// doors and the gRPC door, both on loopback.
func startJwtgate(t *testing.T) *jwtgate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	signPEM, err := keys.Generate("ES256")
	if err != nil {
		t.Fatal(err)
	}
	secret := func(name string, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name}, Data: data}
	}
	ap := guideAuthPolicy()
	p, err := policy.Compile(policy.Input{Policy: ap, Secrets: map[string]*corev1.Secret{
		"keys":  secret("keys", map[string][]byte{"pub.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}),
		"sign":  secret("sign", map[string][]byte{"private.pem": signPEM}),
		"users": secret("users", map[string][]byte{"users": nil}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	store := policy.NewStore()
	store.Replace([]*policy.Policy{p})
	metrics := door.NewMetrics(prometheus.NewRegistry())
	j := &jwtgate{key: key}

	mux := server.NewMux(server.Options{Store: store, Metrics: metrics})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		j.lastHTTP = r.Header.Clone()
		j.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	j.httpURL = hs.URL

	gs := grpcdoor.NewServer(&recordingDoor{door: &grpcdoor.Door{Checker: &door.Checker{Store: store, Metrics: metrics}}, j: j}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gs.Run(ctx, ln, 0, 5*time.Second) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("grpc door: %v", err)
		}
	})
	j.grpc = authv3.NewAuthorizationClient(conn)
	return j
}

func (j *jwtgate) token(t *testing.T, claims gojwt.MapClaims) string {
	t.Helper()
	claims["exp"] = time.Now().Add(time.Minute).Unix()
	s, err := gojwt.NewWithClaims(gojwt.SigningMethodES256, claims).SignedString(j.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// --- the proxies, emulated ---------------------------------------------------------

// original is the client's request to the proxy.
type original struct {
	method, target string // target: path and query as sent
	header         http.Header
}

// outcome is what the proxy does with it.
type outcome struct {
	allowed  bool
	upstream http.Header // the request's headers as the upstream gets them (allowed)
	status   int         // the client's answer (denied)
	client   http.Header // its headers (denied)
	checked  http.Header // the headers jwtgate got in the check
}

type proxy interface {
	check(t *testing.T, o original) outcome
}

// envoyHTTP is Envoy's ext_authz filter in HTTP mode.
type envoyHTTP struct {
	j          *jwtgate
	pathPrefix string
	allowed    []string // allowed_headers (exact, case-insensitive); Authorization is always sent
	upstream   []string // allowed_upstream_headers
	onDeny     []string // allowed_client_headers; empty: every header but Host
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e envoyHTTP) check(t *testing.T, o original) outcome {
	t.Helper()
	u, err := url.Parse(e.j.httpURL)
	if err != nil {
		t.Fatal(err)
	}
	// path_prefix and the original :path are concatenated as strings, query
	// and escapes as the client sent them.
	u.Opaque = e.pathPrefix + o.target
	req := &http.Request{Method: o.method, URL: u, Host: guideHostname, Header: http.Header{}, ContentLength: 0}
	for k, v := range o.header {
		lk := strings.ToLower(k)
		if lk == "authorization" || slices.Contains(lower(e.allowed), lk) {
			req.Header[k] = v
		}
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("check request to jwtgate: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	e.j.mu.Lock()
	out := outcome{checked: e.j.lastHTTP}
	e.j.mu.Unlock()
	switch {
	case resp.StatusCode == http.StatusOK: // exactly 200; 2xx others deny
		out.allowed = true
		out.upstream = o.header.Clone()
		for _, h := range e.upstream {
			if v, ok := resp.Header[textproto.CanonicalMIMEHeaderKey(h)]; ok {
				out.upstream[textproto.CanonicalMIMEHeaderKey(h)] = v
			}
		}
		for _, h := range strings.Split(resp.Header.Get("X-Envoy-Auth-Headers-To-Remove"), ",") {
			if h = strings.TrimSpace(h); h != "" {
				out.upstream.Del(h)
			}
		}
	case resp.StatusCode >= 500: // status_on_error
		out.status, out.client = http.StatusForbidden, http.Header{}
	default:
		out.status, out.client = resp.StatusCode, http.Header{}
		for k, v := range resp.Header {
			if k == "Host" || (len(e.onDeny) > 0 && !slices.Contains(lower(e.onDeny), strings.ToLower(k))) {
				continue
			}
			out.client[k] = v
		}
	}
	return out
}

// envoyGRPC is Envoy's ext_authz filter in gRPC mode.
type envoyGRPC struct {
	j          *jwtgate
	extensions map[string]string
	allowed    []string // allowed_headers; empty: every header
}

func (e envoyGRPC) check(t *testing.T, o original) outcome {
	t.Helper()
	headers := map[string]string{":authority": guideHostname, ":method": o.method, ":path": o.target, ":scheme": "https"}
	for k, v := range o.header {
		lk := strings.ToLower(k)
		if len(e.allowed) > 0 && lk != "authorization" && !slices.Contains(lower(e.allowed), lk) {
			continue
		}
		sep := ","
		if lk == "cookie" {
			sep = "; "
		}
		headers[lk] = strings.Join(v, sep)
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "198.51.100.7", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: o.method, Host: guideHostname, Path: o.target, Scheme: "https", Protocol: "HTTP/1.1", Headers: headers,
		}},
		ContextExtensions: e.extensions,
	}}
	resp, err := e.j.grpc.Check(context.Background(), req)
	if err != nil {
		t.Fatalf("Check: %v (Envoy would apply failure_mode_allow)", err)
	}
	out := outcome{checked: http.Header{}}
	for k, v := range headers {
		if !strings.HasPrefix(k, ":") {
			out.checked[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
		}
	}
	switch r := resp.GetHttpResponse().(type) {
	case *authv3.CheckResponse_OkResponse:
		if resp.GetStatus().GetCode() != 0 {
			t.Fatalf("OkResponse with status %v", resp.GetStatus())
		}
		out.allowed = true
		out.upstream = o.header.Clone()
		for _, h := range r.OkResponse.GetHeaders() {
			k := textproto.CanonicalMIMEHeaderKey(h.GetHeader().GetKey())
			switch {
			case h.GetAppend() != nil && !h.GetAppend().GetValue(), h.GetAppendAction() == corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD: //nolint:staticcheck // SA1019: an older Envoy reads Append
				out.upstream[k] = []string{h.GetHeader().GetValue()}
			default:
				out.upstream[k] = append(out.upstream[k], h.GetHeader().GetValue())
			}
		}
		for _, h := range r.OkResponse.GetHeadersToRemove() {
			out.upstream.Del(h)
		}
	case *authv3.CheckResponse_DeniedResponse:
		out.status = int(r.DeniedResponse.GetStatus().GetCode())
		out.client = http.Header{}
		for _, h := range r.DeniedResponse.GetHeaders() {
			out.client.Set(h.GetHeader().GetKey(), h.GetHeader().GetValue())
		}
	default:
		t.Fatalf("CheckResponse without an http_response: %v", resp)
	}
	return out
}

// --- what each configuration must do ---------------------------------------------

// walk plays the requests a proxy configured by a guide sends to jwtgate.
func walk(t *testing.T, j *jwtgate, p proxy) {
	alice := j.token(t, gojwt.MapClaims{"sub": "alice", "roles": []string{"user"}})
	noRoles := j.token(t, gojwt.MapClaims{"sub": "bob"})
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	t.Run("browser page load is sent to sign in", func(t *testing.T) {
		o := p.check(t, original{"GET", "/app/x?a=1&b=%2F", h("Accept", "text/html,application/xhtml+xml", "X-Forwarded-Proto", "https")})
		want := "https://" + guideHostname + "/jwtgate/login?rd=" + url.QueryEscape("https://"+guideHostname+"/app/x?a=1&b=%2F")
		if o.allowed || o.status != http.StatusFound || o.client.Get("Location") != want {
			t.Errorf("got allowed=%t %d Location %q, want 302 to %s", o.allowed, o.status, o.client.Get("Location"), want)
		}
	})
	t.Run("API call without a token gets 401", func(t *testing.T) {
		o := p.check(t, original{"GET", "/api/orders", h("Accept", "application/json")})
		if o.allowed || o.status != http.StatusUnauthorized || !strings.HasPrefix(o.client.Get("Www-Authenticate"), "Bearer ") {
			t.Errorf("got allowed=%t %d %v, want 401 with WWW-Authenticate", o.allowed, o.status, o.client)
		}
	})
	t.Run("session cookie allows; claims replace the client's headers", func(t *testing.T) {
		o := p.check(t, original{"GET", "/app", h("Cookie", "theme=dark; jwtgate_access="+alice, "Accept", "text/html", "X-Auth-User", "root", "X-Auth-Roles", "admin")})
		if !o.allowed {
			t.Fatalf("denied with %d %v", o.status, o.client)
		}
		if got := o.upstream.Values("X-Auth-User"); !slices.Equal(got, []string{"alice"}) {
			t.Errorf("upstream X-Auth-User %v, want [alice]", got)
		}
		if got := o.upstream.Values("X-Auth-Roles"); !slices.Equal(got, []string{"user"}) {
			t.Errorf("upstream X-Auth-Roles %v, want [user]", got)
		}
	})
	t.Run("a claim the token lacks leaves no client copy upstream", func(t *testing.T) {
		o := p.check(t, original{"GET", "/app", h("Authorization", "Bearer "+noRoles, "X-Auth-Roles", "admin")})
		if !o.allowed {
			t.Fatalf("denied with %d", o.status)
		}
		if got := o.upstream.Get("X-Auth-Roles"); got != "" {
			t.Errorf("upstream X-Auth-Roles %q: the client's copy passed", got)
		}
	})
	t.Run("missing role is 403", func(t *testing.T) {
		o := p.check(t, original{"GET", "/admin/users", h("Authorization", "Bearer "+alice)})
		if o.allowed || o.status != http.StatusForbidden {
			t.Errorf("got allowed=%t %d, want 403", o.allowed, o.status)
		}
	})
	t.Run("method-override headers and X-Forwarded-Proto reach jwtgate", func(t *testing.T) {
		o := p.check(t, original{"POST", "/app", h("Authorization", "Bearer "+alice, "X-HTTP-Method-Override", "DELETE",
			"X-HTTP-Method", "DELETE", "X-Method-Override", "DELETE", "X-Forwarded-Proto", "https")})
		for _, k := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Forwarded-Proto"} {
			if o.checked.Get(k) == "" {
				t.Errorf("%s never reached jwtgate (checked headers: %v)", k, keysOf(o.checked))
			}
		}
	})
}

func keysOf(h http.Header) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// --- the guides ----------------------------------------------------------------------

func TestEnvoyGatewayGuide(t *testing.T) {
	b := blocks(t, "envoy-gateway.md")
	j := startJwtgate(t)

	t.Run("grpc", func(t *testing.T) {
		sp := kind(b["envoy-gateway-grpc"], "SecurityPolicy")
		ea := get(sp, "spec", "extAuth")
		ref := get(ea, "grpc", "backendRefs", 0)
		if str(ref, "name") != "jwtgate" || str(ref, "namespace") != "jwtgate" || num(ref, "port") != grpcPort {
			t.Errorf("extAuth.grpc.backendRefs[0] = %v, want jwtgate/jwtgate port %d", ref, grpcPort)
		}
		checkFailClosed(t, "extAuth", get(ea, "failOpen"))
		if hs := strs(ea, "headersToExtAuth"); len(hs) > 0 {
			checkSends(t, "extAuth.headersToExtAuth", hs)
		}
		ext := map[string]string{}
		for _, ce := range asList(get(ea, "contextExtensions")) {
			if str(ce, "type") != "Value" {
				t.Errorf("context extension %v is not of type Value", ce)
			}
			ext[str(ce, "name")] = str(ce, "value")
		}
		if ext[grpcdoor.PolicyExtension] != guidePolicy {
			t.Errorf("contextExtensions %v do not name %s as %s", ext, guidePolicy, grpcdoor.PolicyExtension)
		}
		rg := kind(b["envoy-gateway-grpc"], "ReferenceGrant")
		var fromSP bool
		for _, f := range asList(get(rg, "spec", "from")) {
			fromSP = fromSP || (str(f, "kind") == "SecurityPolicy" && str(f, "namespace") == "shop")
		}
		if !fromSP || str(rg, "metadata", "namespace") != "jwtgate" || str(rg, "spec", "to", 0, "name") != "jwtgate" {
			t.Errorf("the ReferenceGrant %v does not let SecurityPolicies of shop use Service jwtgate/jwtgate", get(rg, "spec"))
		}
		walk(t, j, envoyGRPC{j: j, extensions: ext, allowed: strs(ea, "headersToExtAuth")})
	})

	t.Run("http", func(t *testing.T) {
		sp := kind(b["envoy-gateway-http"], "SecurityPolicy")
		ea := get(sp, "spec", "extAuth")
		ref := get(ea, "http", "backendRefs", 0)
		if str(ref, "name") != "jwtgate" || str(ref, "namespace") != "jwtgate" || num(ref, "port") != httpPort {
			t.Errorf("extAuth.http.backendRefs[0] = %v, want jwtgate/jwtgate port %d", ref, httpPort)
		}
		if p := str(ea, "http", "path"); p != "/jwtgate/ext-authz/"+guidePolicy {
			t.Errorf("extAuth.http.path %q, want /jwtgate/ext-authz/%s", p, guidePolicy)
		}
		if hb := strs(ea, "http", "headersToBackend"); !sameSet(hb, forwarded) {
			t.Errorf("headersToBackend %v, want the forwardClaims headers %v", hb, forwarded)
		}
		checkSends(t, "extAuth.headersToExtAuth", strs(ea, "headersToExtAuth"))
		checkFailClosed(t, "extAuth", get(ea, "failOpen"))
		walk(t, j, envoyHTTP{j: j, pathPrefix: str(ea, "http", "path"), allowed: strs(ea, "headersToExtAuth"), upstream: strs(ea, "http", "headersToBackend")})
	})

	t.Run("sign-in route", func(t *testing.T) {
		route := kind(b["envoy-gateway-signin"], "HTTPRoute")
		checkGatewayAPISignIn(t, route)
	})
}

func checkGatewayAPISignIn(t *testing.T, route map[string]any) {
	t.Helper()
	rules := asList(get(route, "spec", "rules"))
	if len(rules) != 1 {
		t.Fatalf("sign-in HTTPRoute has %d rules, want 1", len(rules))
	}
	if f := asList(get(rules[0], "filters")); len(f) > 0 {
		t.Errorf("the sign-in rule has filters %v", f)
	}
	ref := get(rules[0], "backendRefs", 0)
	if str(ref, "name") != "jwtgate" || num(ref, "port") != httpPort {
		t.Errorf("the sign-in rule goes to %v, want jwtgate port %d", ref, httpPort)
	}
	typed := func(want string) func(any) (string, bool) {
		return func(m any) (string, bool) { return str(m, "path", "value"), str(m, "path", "type") == want }
	}
	checkSignInRoute(t, "sign-in HTTPRoute", asList(get(rules[0], "matches")), typed("Exact"), typed("PathPrefix"))
	if hn := strs(route, "spec", "hostnames"); !slices.Equal(hn, []string{guideHostname}) {
		t.Errorf("sign-in hostnames %v, want the app's %s", hn, guideHostname)
	}
}

func TestIstioGuide(t *testing.T) {
	b := blocks(t, "istio.md")
	j := startJwtgate(t)
	mesh := b["istio-mesh"][0]
	providers := map[string]any{}
	for _, p := range asList(mesh["extensionProviders"]) {
		providers[str(p, "name")] = p
	}

	t.Run("grpc", func(t *testing.T) {
		g := get(providers["jwtgate-grpc"], "envoyExtAuthzGrpc")
		if str(g, "service") != jwtgateHost || num(g, "port") != grpcPort {
			t.Errorf("envoyExtAuthzGrpc %v, want %s:%d", g, jwtgateHost, grpcPort)
		}
		checkFailClosed(t, "envoyExtAuthzGrpc", get(g, "failOpen"))
		walk(t, j, envoyGRPC{j: j})
	})

	t.Run("http", func(t *testing.T) {
		h := get(providers["jwtgate-http"], "envoyExtAuthzHttp")
		if str(h, "service") != jwtgateHost || num(h, "port") != httpPort {
			t.Errorf("envoyExtAuthzHttp %v, want %s:%d", h, jwtgateHost, httpPort)
		}
		if p := str(h, "pathPrefix"); p != "/jwtgate/ext-authz/-" && p != "/jwtgate/ext-authz/"+guidePolicy {
			t.Errorf("pathPrefix %q is not an ext-authz door", p)
		}
		checkSends(t, "includeRequestHeadersInCheck", strs(h, "includeRequestHeadersInCheck"))
		if up := strs(h, "headersToUpstreamOnAllow"); !sameSet(up, forwarded) {
			t.Errorf("headersToUpstreamOnAllow %v, want the forwardClaims headers %v", up, forwarded)
		}
		deny := lower(strs(h, "headersToDownstreamOnDeny"))
		for _, want := range []string{"location", "www-authenticate"} {
			if !slices.Contains(deny, want) {
				t.Errorf("headersToDownstreamOnDeny %v lacks %s", deny, want)
			}
		}
		checkFailClosed(t, "envoyExtAuthzHttp", get(h, "failOpen"))
		walk(t, j, envoyHTTP{j: j, pathPrefix: str(h, "pathPrefix"), allowed: strs(h, "includeRequestHeadersInCheck"),
			upstream: strs(h, "headersToUpstreamOnAllow"), onDeny: deny})
	})

	t.Run("authorization policy checks everything but the sign-in pages", func(t *testing.T) {
		ap := kind(b["istio-policy"], "AuthorizationPolicy")
		if str(ap, "spec", "action") != "CUSTOM" || providers[str(ap, "spec", "provider", "name")] == nil {
			t.Errorf("AuthorizationPolicy action %q provider %q, want CUSTOM with a jwtgate provider", str(ap, "spec", "action"), str(ap, "spec", "provider", "name"))
		}
		rules := asList(get(ap, "spec", "rules"))
		if len(rules) != 1 || len(asList(get(rules[0], "to"))) != 1 || get(rules[0], "from") != nil || get(rules[0], "when") != nil {
			t.Fatalf("want one rule with one `to` and no from/when (each narrows what is checked): %v", rules)
		}
		op := get(rules[0], "to", 0, "operation")
		if !slices.Equal(strs(op, "hosts"), []string{guideHostname}) || get(op, "paths") != nil || get(op, "methods") != nil {
			t.Errorf("operation %v narrows the checked requests beyond the host", op)
		}
		var exact, prefix []string
		for _, p := range strs(op, "notPaths") {
			if s, ok := strings.CutSuffix(p, "*"); ok {
				prefix = append(prefix, s)
			} else {
				exact = append(exact, p)
			}
		}
		if !sameSet(exact, publicExact) || !slices.Equal(prefix, []string{publicPrefix}) {
			t.Errorf("notPaths %v, want exactly the public sign-in paths", strs(op, "notPaths"))
		}
	})

	t.Run("sign-in route", func(t *testing.T) {
		vs := kind(b["istio-signin"], "VirtualService")
		first := get(vs, "spec", "http", 0)
		dest := get(first, "route", 0, "destination")
		if str(dest, "host") != jwtgateHost || num(dest, "port", "number") != httpPort {
			t.Errorf("the sign-in route goes to %v, want %s:%d", dest, jwtgateHost, httpPort)
		}
		checkSignInRoute(t, "VirtualService", asList(get(first, "match")),
			func(m any) (string, bool) { s := str(m, "uri", "exact"); return s, s != "" },
			func(m any) (string, bool) { s := str(m, "uri", "prefix"); return s, s != "" })
		for i, r := range asList(get(vs, "spec", "http"))[1:] {
			if str(r, "route", 0, "destination", "host") == jwtgateHost {
				t.Errorf("http[%d] also routes to jwtgate: %v", i+1, r)
			}
		}
	})
}

func TestGatewayAPIGuide(t *testing.T) {
	b := blocks(t, "gateway-api.md")
	j := startJwtgate(t)
	filter := func(t *testing.T, block string) any {
		t.Helper()
		route := kind(b[block], "HTTPRoute")
		rules := asList(get(route, "spec", "rules"))
		if len(rules) == 0 {
			t.Fatalf("%s: no rules", block)
		}
		for i, r := range rules {
			f := get(r, "filters", 0)
			if str(f, "type") != "ExternalAuth" {
				t.Fatalf("%s: rule %d has no ExternalAuth filter: every rule of the app must be checked", block, i)
			}
		}
		return get(rules[0], "filters", 0, "externalAuth")
	}

	t.Run("http", func(t *testing.T) {
		ea := filter(t, "gateway-api-http")
		if str(ea, "protocol") != "HTTP" || str(ea, "backendRef", "name") != "jwtgate" || str(ea, "backendRef", "namespace") != "jwtgate" || num(ea, "backendRef", "port") != httpPort {
			t.Errorf("externalAuth %v, want HTTP to jwtgate/jwtgate port %d", ea, httpPort)
		}
		if p := str(ea, "http", "path"); p != "/jwtgate/ext-authz/"+guidePolicy {
			t.Errorf("http.path %q, want /jwtgate/ext-authz/%s", p, guidePolicy)
		}
		checkSends(t, "http.allowedHeaders", strs(ea, "http", "allowedHeaders"))
		if rh := strs(ea, "http", "allowedResponseHeaders"); !sameSet(rh, forwarded) {
			t.Errorf("allowedResponseHeaders %v, want the forwardClaims headers %v", rh, forwarded)
		}
		walk(t, j, envoyHTTP{j: j, pathPrefix: str(ea, "http", "path"), allowed: strs(ea, "http", "allowedHeaders"), upstream: strs(ea, "http", "allowedResponseHeaders")})
	})

	t.Run("grpc", func(t *testing.T) {
		ea := filter(t, "gateway-api-grpc")
		if str(ea, "protocol") != "GRPC" || str(ea, "backendRef", "name") != "jwtgate" || num(ea, "backendRef", "port") != grpcPort {
			t.Errorf("externalAuth %v, want GRPC to jwtgate port %d", ea, grpcPort)
		}
		allowed := strs(ea, "grpc", "allowedHeaders")
		if len(allowed) > 0 {
			checkSends(t, "grpc.allowedHeaders", allowed)
		}
		walk(t, j, envoyGRPC{j: j, allowed: allowed})
	})

	t.Run("reference grant", func(t *testing.T) {
		rg := kind(b["gateway-api-grant"], "ReferenceGrant")
		if str(rg, "metadata", "namespace") != "jwtgate" || str(rg, "spec", "from", 0, "kind") != "HTTPRoute" || str(rg, "spec", "to", 0, "name") != "jwtgate" {
			t.Errorf("ReferenceGrant %v", rg)
		}
	})

	t.Run("sign-in route", func(t *testing.T) {
		checkGatewayAPISignIn(t, kind(b["gateway-api-signin"], "HTTPRoute"))
	})
}

// No page routes the doors themselves from the internet.
func TestNoGuideExposesTheDoors(t *testing.T) {
	pages, _ := filepath.Glob(filepath.Join("..", "..", "docs", "proxies", "*.md"))
	for _, page := range pages {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"value: /jwtgate/\n", "value: /jwtgate\n", "prefix: /jwtgate/\n", "prefix: /jwtgate}", "value: /jwtgate/}", "failOpen: true\n"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s holds %q", filepath.Base(page), strings.TrimSpace(bad))
			}
		}
	}
}
