//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// traefikVersion is the Traefik that hack/traefik-bin.sh builds: the newest
// that builds from the Go module proxy here.
const traefikVersion = "3.6.12"

// kube is the API server the Traefik walks run against (TestTraefikGuideFlow).
var kube struct {
	c          client.Client
	kubeconfig string
	traefik    string // the binary
}

// The walk of the nginx test, through a real Traefik reading the objects of
// docs/proxies/traefik.md from a real kube-apiserver: first the ingress-nginx
// provider with the page's Ingresses (the migration path of ingress-nginx
// users), then the CRD provider with its Middleware and IngressRoute.
func TestTraefikGuideFlow(t *testing.T) {
	kube.traefik = traefikBinary(t)
	crds := traefikCRDs(t)
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		out, err := exec.Command(filepath.Join(repoRoot, "hack", "envtest-bins.sh")).Output()
		if err != nil {
			t.Fatalf("envtest binaries: %v (run make envtest-bins)", err)
		}
		assets = strings.TrimSpace(string(out))
	}
	env := &envtest.Environment{CRDInstallOptions: envtest.CRDInstallOptions{Paths: []string{crds}, ErrorIfPathMissing: true}, BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kube.c, err = client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	user, err := env.AddUser(envtest.User{Name: "traefik", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kube.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kube.kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	kubeCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "jwtgate"}})
	kubeCreate(t, &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx"}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}})
	certPEM, _ := os.ReadFile(certFile)
	keyPEM, _ := os.ReadFile(keyFile)
	kubeCreate(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "shop-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}})

	for _, config := range []nginxConfig{traefikIngressNGINX, traefikMiddleware} {
		t.Run(strings.ReplaceAll(config.String(), " ", "_"), func(t *testing.T) {
			s := newStack(t, config)
			walk(t, s)
			if config == traefikIngressNGINX {
				forgedOriginalURL(t, s)
			}
		})
	}
}

// traefikBinary is $JWTGATE_TRAEFIK (make test sets it), or the cached build
// of hack/traefik-bin.sh, built now when missing. Never a skip.
func traefikBinary(t *testing.T) string {
	if b := os.Getenv("JWTGATE_TRAEFIK"); b != "" {
		return b
	}
	out, err := exec.Command(filepath.Join(repoRoot, "hack", "traefik-bin.sh")).Output()
	if err != nil {
		t.Fatalf("Traefik is missing and hack/traefik-bin.sh could not build it: %v (run make traefik)", err)
	}
	return strings.TrimSpace(string(out))
}

// traefikCRDs is Traefik's own CRD file, from the module hack/traefik-bin.sh
// downloaded.
func traefikCRDs(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(strings.TrimSpace(string(out)), "github.com", "traefik", "traefik", "v3@v"+traefikVersion,
		"docs", "content", "reference", "dynamic-configuration", "kubernetes-crd-definition-v1.yml")
	if _, err := os.Stat(f); err != nil {
		t.Fatalf("Traefik's CRDs: %v (hack/traefik-bin.sh downloads the module; run make traefik)", err)
	}
	return f
}

func kubeCreate(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := kube.c.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err)
		}
	}
}

// startTraefik creates the page's objects for the stack's config (with the
// Services and EndpointSlices a cluster would have) and runs Traefik.
func (s *stack) startTraefik(authAddr string) {
	t := s.t
	_, jwtgatePort, _ := strings.Cut(s.jwtgate, ":")
	_, appPort, _ := strings.Cut(s.app.addr, ":")
	s.service("jwtgate", "jwtgate", 8000, jwtgatePort)
	s.service("default", "app", 8080, appPort)

	block := 0
	args := []string{
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
		"--entryPoints.websecure.address=127.0.0.1:" + strconv.Itoa(s.port),
		"--log.level=INFO",
	}
	if s.config == traefikMiddleware {
		block = 1
		args = append(args, "--providers.kubernetesCRD=true", "--providers.kubernetesCRD.allowCrossNamespace=true")
	} else {
		args = append(args, "--providers.kubernetesIngressNGINX=true")
	}
	yml := guideBlocks(t, "docs/proxies/traefik.md", "yaml")[block]
	for _, r := range []struct{ old, new string }{
		{"shop.example.com", appHost},
		{"http://jwtgate.jwtgate.svc.cluster.local:8000/jwtgate/forward-auth/", "http://" + authAddr + "/jwtgate/forward-auth/"},
	} {
		if !strings.Contains(yml, r.old) {
			t.Fatalf("docs/proxies/traefik.md's block %d must hold %q (the test replaces it)", block+1, r.old)
		}
		yml = strings.ReplaceAll(yml, r.old, r.new)
	}
	for _, o := range decodeObjects(t, yml) {
		kubeCreate(t, o)
		t.Cleanup(func() { _ = kube.c.Delete(context.Background(), o) })
	}

	t.Setenv("KUBECONFIG", kube.kubeconfig)
	p := startProcess(t, filepath.Join(s.dir, "traefik.log"), kube.traefik, args...)
	// Ready when the route holds: a page load gets jwtgate's redirect, not
	// Traefik's 404 of a host it does not know yet.
	waitFor(t, p, "Traefik to route "+appHost+" through jwtgate", func() bool {
		resp, err := s.client().Do(s.request(http.MethodGet, s.origin+"/", nil, http.Header{"Accept": {pageAccept}}))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusFound
	})
}

// service creates a Service and, since no kubelet or endpoint controller
// runs, its EndpointSlice by hand: an FQDN slice whose address is 127.0.0.1
// (the API server refuses loopback in an IPv4 slice; Traefik uses this one).
func (s *stack) service(ns, name string, port int32, target string) {
	t := s.t
	port64, err := strconv.ParseInt(target, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	targetPort := int32(port64)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: port, TargetPort: intstr.FromInt32(targetPort)}}},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(targetPort)}},
	}
	for _, o := range []client.Object{svc, slice} {
		kubeCreate(t, o)
		t.Cleanup(func() {
			if err := kube.c.Delete(context.Background(), o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s: %v", o.GetName(), err)
			}
		})
	}
}

// decodeObjects reads a multi-document YAML block into objects.
func decodeObjects(t *testing.T, yml string) []client.Object {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(yml), 4096)
	var out []client.Object
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("docs/proxies/traefik.md: %v", err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// forgedOriginalURL is issue 12's item 14 through a real Traefik: an Ingress
// whose auth-url wrongly names the nginx door (/jwtgate/auth), and a signed-in
// user with a forged X-Original-URL of a page they may see, asking for an
// admin page. jwtgate refuses, the upstream never sees it, and the log names
// the forward-auth door.
func forgedOriginalURL(t *testing.T, s *stack) {
	_, authPort, _ := strings.Cut(s.authAddr, ":")
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "shop-admin-wrong-door", Annotations: map[string]string{
			"nginx.ingress.kubernetes.io/auth-url":              "http://127.0.0.1:" + authPort + "/jwtgate/auth/default/shop",
			"nginx.ingress.kubernetes.io/auth-response-headers": "X-Auth-User,X-Auth-Roles",
		}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			TLS:              []networkingv1.IngressTLS{{Hosts: []string{appHost}, SecretName: "shop-tls"}},
			Rules: []networkingv1.IngressRule{{Host: appHost, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/admin/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "app", Port: networkingv1.ServiceBackendPort{Number: 8080}},
				}}},
			}}}},
		},
	}
	kubeCreate(t, ing)
	t.Cleanup(func() { _ = kube.c.Delete(context.Background(), ing) })

	// alice (role user) signs in with the JSON API.
	api := s.client()
	resp, body := s.do(api, http.MethodPost, s.origin+"/jwtgate/login", strings.NewReader(`{"username":"alice","password":"`+alicePassword+`"}`),
		http.Header{"Accept": {"application/json"}, "Content-Type": {"application/json"}})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &tok) != nil || tok.AccessToken == "" {
		t.Fatalf("JSON sign-in as alice: %d\n%s", resp.StatusCode, body)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tok.AccessToken}}
	// Traefik has the new route once /admin/ answers through the nginx door:
	// it sends no X-Original-URL, so even a valid token gets 403 there, and
	// jwtgate's log says why.
	deadline := time.Now().Add(30 * time.Second)
	for !logHas(s, "carries X-Forwarded-Uri but no X-Original-URL") {
		if time.Now().After(deadline) {
			t.Fatal("Traefik did not route /admin/ through the Ingress with the wrong door within 30 s")
		}
		s.do(api, http.MethodGet, s.origin+"/admin/users", nil, bearer)
		time.Sleep(200 * time.Millisecond)
	}

	hits := s.app.hits.Load()
	forged := http.Header{"Authorization": bearer["Authorization"], "X-Original-URL": {s.origin + "/some/page"}, "X-Original-Method": {"GET"}}
	resp, body = s.do(api, http.MethodGet, s.origin+"/admin/users", nil, forged)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a user's token on /admin/ with a forged X-Original-URL of a page they may see, through Traefik's ingress-nginx provider at /jwtgate/auth: %d, want 403\n%s", resp.StatusCode, body)
	}
	if s.app.hits.Load() != hits {
		t.Error("the upstream saw the request with the forged X-Original-URL")
	}
	if !logHas(s, "disagrees with the X-Forwarded-* header the proxy set") {
		t.Error("jwtgate's log does not say that X-Original-URL disagrees with Traefik's X-Forwarded-* and which door to use")
	}
}

// logHas reports whether jwtgate's log holds s.
func logHas(s *stack, text string) bool {
	b, err := os.ReadFile(filepath.Join(s.dir, "jwtgate.log"))
	return err == nil && bytes.Contains(b, []byte(text))
}

// guideBlocks returns every fenced block of the given language in a page of docs/.
func guideBlocks(t *testing.T, page, lang string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, page))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	rest := string(b)
	for {
		_, after, ok := strings.Cut(rest, "```"+lang+"\n")
		if !ok {
			break
		}
		block, tail, ok := strings.Cut(after, "```")
		if !ok {
			t.Fatalf("%s: an unterminated ```%s block", page, lang)
		}
		out = append(out, block)
		rest = tail
	}
	if len(out) == 0 {
		t.Fatalf("%s: no ```%s block", page, lang)
	}
	return out
}
