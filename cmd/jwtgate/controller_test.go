package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/grpcdoor"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

// TestControllerWiring runs `jwtgate controller`'s wiring (controllerMain, as
// runController calls it after parsing flags) against a real API server: probes,
// decision listener, and a clean stop.
func TestControllerWiring(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest (kube-apiserver + etcd): not with -short")
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		out, err := exec.Command(filepath.Join("..", "..", "hack", "envtest-bins.sh")).Output()
		if err != nil {
			t.Fatalf("envtest binaries: %v (run make envtest-bins, or go test -short)", err)
		}
		assets = strings.TrimSpace(string(out))
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ctx := context.Background()
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop-keys"},
			Data:       map[string][]byte{"key.pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})},
		},
		&v1alpha1.AuthPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "shop"},
			Spec: v1alpha1.AuthPolicySpec{JWT: &v1alpha1.JWTSpec{
				Algorithms: []v1alpha1.Algorithm{"ES256"},
				Keys:       []v1alpha1.KeySource{{SecretRef: &v1alpha1.SecretKeyRef{Name: "shop-keys", Key: "key.pem"}}},
			}},
		},
	} {
		if err := k8s.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	common := commonFlags{
		listen:          freeAddr(t),
		metricsAddr:     "0",
		probeAddr:       freeAddr(t),
		grpcAddr:        freeAddr(t),
		cacheSize:       128,
		shutdownTimeout: 5 * time.Second,
	}
	cf := controllerFlags{
		leaderElect:      true,
		leaderElectionID: "jwtgate-test",
		leaderElectionNS: "default",
		watchNamespaces:  "shop",
		replicas:         1,
		proxyCheck:       true,
		serviceName:      "jwtgate/jwtgate",
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- controllerMain(runCtx, cfg, slog.New(slog.DiscardHandler), common, cf) }()

	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string, hdr map[string]string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(20 * time.Second)
	for get("http://"+common.probeAddr+"/readyz", nil) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Ready means the policy that existed at start is serving.
	hdr := map[string]string{
		"X-Original-URL":    "https://shop.example.com/orders",
		"X-Original-Method": "GET",
		"Authorization":     "Bearer " + tok,
	}
	if got := get("http://"+common.listen+"/jwtgate/auth/shop/shop", hdr); got != http.StatusOK {
		t.Errorf("decision once ready: %d, want 200", got)
	}
	// The gRPC door (--grpc-bind-address) serves the same snapshot.
	checkGRPCDoor(t, common.grpcAddr, "shop/shop", tok)
	// --proxy-check: the checker runs, finds nothing pointing at the policy.
	for {
		var ap v1alpha1.AuthPolicy
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "shop"}, &ap); err == nil {
			if c := meta.FindStatusCondition(ap.Status.Conditions, v1alpha1.ConditionProxyConfigured); c != nil &&
				c.Status == metav1.ConditionTrue && c.Reason == v1alpha1.ReasonProxyConfigured {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no ProxyConfigured=True on shop/shop after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("controller stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("controller did not stop within 20s of SIGTERM")
	}
}

func freeAddr(t testing.TB) string { return testproc.FreeAddr(t) }

// checkGRPCDoor asks the gRPC door on addr, as Envoy's ext_authz filter does,
// for a decision with and without token; health must say SERVING.
func checkGRPCDoor(t *testing.T, addr, policyKey, tok string) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Readiness covers the HTTP listener only: wait for the gRPC one to listen.
	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: grpcdoor.ServiceName}, grpc.WaitForReady(true))
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health: %v %v, want SERVING", hr.GetStatus(), err)
	}
	for _, c := range []struct {
		auth string
		want codes.Code
	}{{"Bearer " + tok, codes.OK}, {"", codes.Unauthenticated}} {
		headers := map[string]string{":authority": "shop.example.com", ":path": "/orders", ":method": "GET"}
		if c.auth != "" {
			headers["authorization"] = c.auth
		}
		resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Host: "shop.example.com", Path: "/orders", Scheme: "https", Headers: headers,
			}},
			ContextExtensions: map[string]string{grpcdoor.PolicyExtension: policyKey},
		}}, grpc.WaitForReady(true))
		if err != nil {
			t.Errorf("gRPC Check: %v", err)
			continue
		}
		if got := codes.Code(resp.GetStatus().GetCode()); got != c.want {
			t.Errorf("gRPC Check with token %t: %v, want %v", c.auth != "", got, c.want)
		}
	}
}

func TestParseServiceName(t *testing.T) {
	for _, c := range []struct{ in, ns, name, err string }{
		{in: "jwtgate", name: "jwtgate"},
		{in: "jwtgate/jwtgate", ns: "jwtgate", name: "jwtgate"},
		{in: " auth/jwtgate-svc ", ns: "auth", name: "jwtgate-svc"},
		{in: "", err: "not valid"},
		{in: "/jwtgate", err: "namespace before / is empty"},
		{in: "jwtgate/", err: "Service name \"\" is not valid"},
		{in: "Jwtgate", err: "not valid"},
		{in: "a/b/c", err: "not valid"},
		{in: "jwtgate.jwtgate.svc", err: "not valid"},
	} {
		t.Run(c.in, func(t *testing.T) {
			svc, err := parseServiceName(c.in)
			switch {
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one with %q", err, c.err)
			case c.err == "" && (err != nil || svc.Namespace != c.ns || svc.Name != c.name):
				t.Errorf("got %+v, %v; want %s/%s", svc, err, c.ns, c.name)
			}
		})
	}
}
