package controllers_test

// Fault behavior of the controller: the kube-apiserver going away,
// jwksURL servers failing in every way, and Secret rotation under load. Each
// test runs against the suite's envtest API server.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/internal/loadtest"
	"github.com/jwtgate/jwtgate/internal/testproc"
)

// ---- kube-apiserver unreachable ----

// TestAPIServerOutage cuts the TCP path between the controller and the API
// server (a loopback proxy the controller's rest.Config points at): decisions
// go on from the last snapshot, /readyz stays 200, the probe's metric stops
// advancing and a warning names the snapshot's age. A Secret rotated during the
// outage reaches decisions once the path is back.
func TestAPIServerOutage(t *testing.T) {
	ns := newNamespace(t)
	apiURL, err := url.Parse(restCfg.Host)
	if err != nil || apiURL.Host == "" {
		t.Fatalf("envtest host %q: %v", restCfg.Host, err)
	}
	proxy := newCutProxy(t, apiURL.Host)
	cfg := rest.CopyConfig(restCfg)
	cfg.Host = "https://" + proxy.addr
	logs := &syncBuffer{}
	healthAddr := freeAddr(t)
	r := startReplica(t, ns, replicaOptions{
		cfg:           cfg,
		probeInterval: 500 * time.Millisecond,
		probeLog:      slog.New(slog.NewTextHandler(logs, nil)),
		healthAddr:    healthAddr,
	})
	old := newSigner(t)
	secret := keySecret(t, ns, "shop-keys", old)
	create(t, secret, jwtPolicy(ns, "shop", "shop-keys"))
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	oldTok := old.token(t)
	if got := r.decide(ns, "shop", "/orders", oldTok); got != http.StatusOK {
		t.Fatalf("before the outage: decision %d, want 200", got)
	}
	eventually(t, "a first successful API-server probe", func() (bool, string) {
		return !r.probe.LastContact().IsZero(), "no contact yet"
	})
	if code := httpStatus(t, "http://"+healthAddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("before the outage: /readyz %d, want 200", code)
	}

	proxy.cut()
	cutAt := time.Now()
	lastContact := r.probe.LastContact()
	// During the outage the Secret changes: the controller cannot see it.
	next := newSigner(t)
	update(t, secret, func(s *corev1.Secret) { s.Data = map[string][]byte{"key.pem": next.publicPEM(t)} })

	// 4 s without the API server (8 probes, client-go's watches retrying).
	var decisions, readyChecks int
	for time.Since(cutAt) < 4*time.Second {
		if got := r.decide(ns, "shop", "/orders", oldTok); got != http.StatusOK {
			t.Fatalf("%s into the outage: decision %d, want 200 from the last snapshot", time.Since(cutAt).Round(time.Millisecond), got)
		}
		if got := r.decide(ns, "shop", "/admin/x", oldTok); got != http.StatusForbidden {
			t.Fatalf("%s into the outage: /admin/ without the role gave %d, want 403", time.Since(cutAt).Round(time.Millisecond), got)
		}
		decisions += 2
		if readyChecks%5 == 0 {
			if code := httpStatus(t, "http://"+healthAddr+"/readyz"); code != http.StatusOK {
				t.Fatalf("%s into the outage: /readyz %d, want 200 (an API outage must not take replicas out of the Service)", time.Since(cutAt).Round(time.Millisecond), code)
			}
		}
		readyChecks++
		time.Sleep(20 * time.Millisecond)
	}
	if got := r.probe.LastContact(); !got.Equal(lastContact) {
		t.Errorf("last contact moved during the outage: %s -> %s", lastContact, got)
	}
	ts := gaugeValue(t, r.reg, "jwtgate_apiserver_last_contact_timestamp_seconds", nil)
	if age := time.Since(time.Unix(0, int64(ts*1e9))); age < 3*time.Second {
		t.Errorf("jwtgate_apiserver_last_contact_timestamp_seconds is %s old after 4 s of outage", age)
	}
	if !strings.Contains(logs.String(), "kube-apiserver unreachable") || !strings.Contains(logs.String(), "snapshot_age=") {
		t.Errorf("no warning with the snapshot age in the probe's log:\n%s", logs.String())
	}
	t.Logf("outage: %d decisions from the snapshot, all as before; /readyz 200 throughout", decisions)

	proxy.restore()
	restored := time.Now()
	nextTok := next.token(t)
	eventually(t, "the Secret rotated during the outage to reach decisions", func() (bool, string) {
		got := r.decide(ns, "shop", "/orders", nextTok)
		return got == http.StatusOK, fmt.Sprintf("new key: %d", got)
	})
	recovered := time.Since(restored)
	eventually(t, "the probe to see the API server again", func() (bool, string) {
		return r.probe.LastContact().After(restored), "last contact " + r.probe.LastContact().String()
	})
	if got := r.decide(ns, "shop", "/orders", oldTok); got != http.StatusUnauthorized {
		t.Errorf("after recovery: the old key gives %d, want 401", got)
	}
	if !strings.Contains(logs.String(), "reachable again") {
		t.Errorf("no recovery line in the probe's log:\n%s", logs.String())
	}
	t.Logf("API server back -> the Secret changed during the outage serves after %s", recovered.Round(time.Millisecond))
}

// TestLeaderSurvivesAPIServerOutage runs a replica WITH leader election through
// the cut proxy and cuts it for longer than the lease: controller-runtime's own
// election would end the process there ("leader election lost"), and a
// restarted process could not get ready while the API server is away. Here the
// manager keeps running, decisions and /readyz keep answering, the replica
// stops counting itself leader within the renew deadline (before anyone else
// could take the lease), and once the API server is back it leads again and
// writes the status of a change made during the outage.
func TestLeaderSurvivesAPIServerOutage(t *testing.T) {
	ns := newNamespace(t)
	apiURL, err := url.Parse(restCfg.Host)
	if err != nil || apiURL.Host == "" {
		t.Fatalf("envtest host %q: %v", restCfg.Host, err)
	}
	proxy := newCutProxy(t, apiURL.Host)
	cfg := rest.CopyConfig(restCfg)
	cfg.Host = "https://" + proxy.addr
	healthAddr := freeAddr(t)
	const (
		leaseDuration = 3 * time.Second
		renewDeadline = 2 * time.Second
		retryPeriod   = 500 * time.Millisecond
	)
	r := startReplica(t, ns, replicaOptions{
		name:          "solo",
		cfg:           cfg,
		leaderElect:   true,
		leaseDuration: leaseDuration,
		renewDeadline: renewDeadline,
		retryPeriod:   retryPeriod,
		healthAddr:    healthAddr,
	})
	running := func(when string) {
		t.Helper()
		select {
		case err := <-r.done:
			r.done <- err // for stop
			t.Fatalf("%s: the manager's Start returned (%v); the process would exit", when, err)
		default:
		}
	}
	key := newSigner(t)
	ap := jwtPolicy(ns, "shop", "shop-keys")
	create(t, keySecret(t, ns, "shop-keys", key), ap)
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	eventually(t, "the replica to lead", func() (bool, string) { return r.leading(), "not leading" })
	tok := key.token(t)
	if got := r.decide(ns, "shop", "/orders", tok); got != http.StatusOK {
		t.Fatalf("before the outage: decision %d, want 200", got)
	}

	proxy.cut()
	cutAt := time.Now()
	// A change the replica cannot see until the API server is back: its status
	// must be written then.
	update(t, ap, func(ap *v1alpha1.AuthPolicy) { ap.Spec.JWT.Keys[0].SecretRef.Key = "missing.pem" })

	// Well past the renew deadline and the lease duration.
	outage := leaseDuration + renewDeadline + 2*time.Second
	var lostAfter time.Duration
	var decisions int
	for i := 0; time.Since(cutAt) < outage; i++ {
		running(fmt.Sprintf("%s into the outage", time.Since(cutAt).Round(time.Millisecond)))
		if got := r.decide(ns, "shop", "/orders", tok); got != http.StatusOK {
			t.Fatalf("%s into the outage: decision %d, want 200 from the last snapshot", time.Since(cutAt).Round(time.Millisecond), got)
		}
		if got := r.decide(ns, "shop", "/admin/x", tok); got != http.StatusForbidden {
			t.Fatalf("%s into the outage: /admin/ without the role gave %d, want 403", time.Since(cutAt).Round(time.Millisecond), got)
		}
		decisions += 2
		if i%5 == 0 {
			if code := httpStatus(t, "http://"+healthAddr+"/readyz"); code != http.StatusOK {
				t.Fatalf("%s into the outage: /readyz %d, want 200", time.Since(cutAt).Round(time.Millisecond), code)
			}
		}
		if lostAfter == 0 && !r.leading() {
			lostAfter = time.Since(cutAt)
		}
		time.Sleep(20 * time.Millisecond)
	}
	switch {
	case lostAfter == 0:
		t.Errorf("still leading %s into the outage: status writes would go on after the lease may have passed to another replica", outage)
	case lostAfter >= leaseDuration:
		t.Errorf("stopped leading %s into the outage, not before the lease duration %s", lostAfter.Round(time.Millisecond), leaseDuration)
	}
	running("at the end of the outage")
	t.Logf("outage of %s: stopped leading after %s, %d decisions from the snapshot, /readyz 200 throughout",
		outage, lostAfter.Round(time.Millisecond), decisions)

	patches := r.rec.StatusPatches()
	proxy.restore()
	restored := time.Now()
	eventually(t, "the replica to lead again", func() (bool, string) { return r.leading(), "not leading" })
	releadAfter := time.Since(restored)
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSecretKeyNotFound)
	eventually(t, "the replica to count its status write", func() (bool, string) {
		n := r.rec.StatusPatches()
		return n > patches, fmt.Sprintf("%d status patches, %d before the API server came back", n, patches)
	})
	var lease coordinationv1.Lease
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "jwtgate-test"}, &lease); err != nil {
		t.Fatalf("reading the Lease: %v", err)
	}
	if h := ptr.Deref(lease.Spec.HolderIdentity, ""); h != r.elect.Identity() {
		t.Errorf("Lease held by %q, want %q", h, r.elect.Identity())
	}
	if got := r.decide(ns, "shop", "/orders", tok); got != http.StatusOK {
		t.Errorf("after recovery: last good version gives %d, want 200", got)
	}
	running("after recovery")
	t.Logf("API server back -> leading again after %s, status of the change made during the outage written", releadAfter.Round(time.Millisecond))
}

// cutProxy forwards TCP connections to target until cut, which closes its
// listener and every connection (the API server is "gone": connection
// refused); restore listens again on the same address.
type cutProxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	p := &cutProxy{t: t, target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	p.restore()
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) restore() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger for a moment after cut
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.addr = ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.pipe(c)
			}()
		}
	}()
}

func (p *cutProxy) pipe(c net.Conn) {
	u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c, u) {
		return
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(u, c)
		_ = u.Close()
		close(done)
	}()
	_, _ = io.Copy(c, u)
	_ = c.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

// track records an open pair, or closes it when the proxy was cut meanwhile.
func (p *cutProxy) track(c, u net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		_ = c.Close()
		_ = u.Close()
		return false
	}
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	return true
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// ---- jwksURL down, slow, serving garbage ----

// TestJWKSFaultsKeepLastGood serves a policy's keys from a JWKS server that
// then fails every way it can: decisions keep using the last good keys, every
// fetch ends within the client's timeout, and each failure is counted by
// result. A brand-new policy whose JWKS never loaded denies a token signed by
// the very same key (fails closed) and says JWKSUnreachable in status.
func TestJWKSFaultsKeepLastGood(t *testing.T) {
	ns := newNamespace(t)
	key := newSigner(t)
	jwks := jwksDocument(t, key, "k1")
	var mode atomic.Value
	mode.Store("ok")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load().(string) {
		case "ok":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(jwks)
		case "garbage":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>502 Bad Gateway</html>")
		case "empty-set":
			_, _ = io.WriteString(w, `{"keys":[]}`)
		case "status":
			http.Error(w, "", http.StatusServiceUnavailable)
		case "slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		case "reset":
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = c.Close()
			}
		}
	}))
	const clientTimeout = 400 * time.Millisecond
	r := startReplica(t, ns, replicaOptions{remotes: keys.RemoteOptions{
		Interval:    200 * time.Millisecond,
		MinInterval: 100 * time.Millisecond,
		Client:      &http.Client{Timeout: clientTimeout},
		Logger:      slog.New(slog.DiscardHandler),
	}})
	ap := jwksPolicy(ns, "idp", srv.URL+"/jwks.json")
	create(t, ap)
	waitCondition(t, ns, "idp", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)
	tok := key.tokenWithKID(t, "k1")
	if got := r.decide(ns, "idp", "/orders", tok); got != http.StatusOK {
		t.Fatalf("with the JWKS served: decision %d, want 200", got)
	}
	if v := gaugeValue(t, r.reg, "jwtgate_policy_ready", map[string]string{"policy": ns + "/idp"}); v != 1 {
		t.Errorf("jwtgate_policy_ready{policy=%s/idp} = %v, want 1", ns, v)
	}

	for _, tc := range []struct{ mode, result string }{
		{"garbage", "invalid"},
		{"empty-set", "invalid"},
		{"status", "http_status"},
		{"slow", "timeout"},
		{"reset", "network"},
	} {
		mode.Store(tc.mode)
		before := counterValue(t, r.reg, "jwtgate_jwks_fetches_total", map[string]string{"result": tc.result})
		start := time.Now()
		// Two failed fetches of this kind, decisions checked all along.
		for counterValue(t, r.reg, "jwtgate_jwks_fetches_total", map[string]string{"result": tc.result}) < before+2 {
			if got := r.decide(ns, "idp", "/orders", tok); got != http.StatusOK {
				t.Fatalf("JWKS server %s: decision %d, want 200 from the last good keys", tc.mode, got)
			}
			if time.Since(start) > timeout {
				t.Fatalf("JWKS server %s: no two %q fetches after %s", tc.mode, tc.result, timeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(start)
		if tc.mode == "slow" && took > 4*clientTimeout+2*time.Second {
			t.Errorf("two fetches of a slow server took %s; each should end after %s", took, clientTimeout)
		}
		t.Logf("JWKS server %-9s: 2 fetches counted as %-11s in %s, decisions 200 throughout", tc.mode, tc.result, took.Round(time.Millisecond))
		mode.Store("ok")
		okBefore := counterValue(t, r.reg, "jwtgate_jwks_fetches_total", map[string]string{"result": "ok"})
		eventually(t, "a good fetch after "+tc.mode, func() (bool, string) {
			return counterValue(t, r.reg, "jwtgate_jwks_fetches_total", map[string]string{"result": "ok"}) > okBefore, "no ok fetch"
		})
	}
	if age := gaugeValue(t, r.reg, "jwtgate_jwks_age_seconds", map[string]string{"host": "127.0.0.1"}); age < 0 || age > 5 {
		t.Errorf("jwtgate_jwks_age_seconds{host=127.0.0.1} = %v after a good fetch", age)
	}

	// The server goes away: connection refused. The old policy keeps its keys.
	srv.Close()
	time.Sleep(500 * time.Millisecond) // a few failed fetches
	if got := r.decide(ns, "idp", "/orders", tok); got != http.StatusOK {
		t.Errorf("JWKS server stopped: decision %d, want 200 from the last good keys", got)
	}
	// A new policy on a URL that never answered: fails closed, says so.
	create(t, jwksPolicy(ns, "fresh", srv.URL+"/other/jwks.json"))
	c := waitCondition(t, ns, "fresh", v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonJWKSUnreachable)
	if !strings.Contains(c.Message, "spec.jwt.keys[0].jwksURL") || !strings.Contains(c.Message, "refuses tokens") {
		t.Errorf("JWKSUnreachable message %q does not name the field and the consequence", c.Message)
	}
	if got := r.decide(ns, "fresh", "/orders", tok); got != http.StatusUnauthorized {
		t.Errorf("policy whose JWKS never loaded: decision %d, want 401 (fail closed)", got)
	}
	if v := gaugeValue(t, r.reg, "jwtgate_policy_ready", map[string]string{"policy": ns + "/fresh"}); v != 0 {
		t.Errorf("jwtgate_policy_ready{policy=%s/fresh} = %v, want 0", ns, v)
	}
	if v := gaugeValue(t, r.reg, "jwtgate_jwks_unloaded", nil); v < 1 {
		t.Errorf("jwtgate_jwks_unloaded = %v, want at least 1", v)
	}
}

func jwksPolicy(ns, name, url string) *v1alpha1.AuthPolicy {
	return &v1alpha1.AuthPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.AuthPolicySpec{JWT: &v1alpha1.JWTSpec{
			Algorithms: []v1alpha1.Algorithm{"ES256"},
			Keys:       []v1alpha1.KeySource{{JWKSURL: url}},
		}},
	}
}

// jwksDocument is a JWKS holding s's public key under kid.
func jwksDocument(t *testing.T, s signer, kid string) []byte {
	t.Helper()
	k, err := jwk.Import(&s.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(k); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s signer) tokenWithKID(t *testing.T, kid string) string {
	t.Helper()
	now := time.Now()
	tk := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"sub": "alice", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"jti": fmt.Sprint(tokenSeq.Add(1)),
	})
	tk.Header["kid"] = kid
	out, err := tk.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ---- key rotation under load ----

// TestSecretRotationUnderLoad replaces the keys Secret {A} -> {A,B} -> {B}
// while four clients decide continuously with a token of a key that is in the
// Secret at that moment: not one of them may fail. The window that matters is
// {A} -> {A,B}: the republished policy (and the token cache, dropped on key
// change) must never lose A.
func TestSecretRotationUnderLoad(t *testing.T) {
	ns := newNamespace(t)
	r := startReplica(t, ns, replicaOptions{})
	a, b := newSigner(t), newSigner(t)
	secret := keySecret(t, ns, "shop-keys", a)
	create(t, secret, jwtPolicy(ns, "shop", "shop-keys"))
	waitCondition(t, ns, "shop", v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady)

	// A few tokens per key, so that both the token cache and full verification
	// are exercised.
	var toks [2][]string
	for i, s := range []signer{a, b} {
		for range 8 {
			toks[i] = append(toks[i], s.token(t))
		}
	}
	var use atomic.Int32 // 0: A's tokens, 1: B's
	load := loadtest.Start(4, func(_, i int) error {
		k := use.Load()
		if got := r.decide(ns, "shop", "/orders", toks[k][i%len(toks[k])]); got != http.StatusOK {
			return fmt.Errorf("key %c: %d", 'A'+k, got)
		}
		return nil
	})
	defer load.Stop()
	time.Sleep(300 * time.Millisecond)
	update(t, secret, func(s *corev1.Secret) {
		s.Data = map[string][]byte{"key.pem": append(a.publicPEM(t), b.publicPEM(t)...)}
	})
	eventually(t, "B to be accepted", func() (bool, string) {
		got := r.decide(ns, "shop", "/orders", toks[1][0])
		return got == http.StatusOK, fmt.Sprint(got)
	})
	time.Sleep(300 * time.Millisecond)
	use.Store(1)
	time.Sleep(100 * time.Millisecond)
	update(t, secret, func(s *corev1.Secret) { s.Data = map[string][]byte{"key.pem": b.publicPEM(t)} })
	eventually(t, "A to be refused", func() (bool, string) {
		got := r.decide(ns, "shop", "/orders", a.token(t))
		return got == http.StatusUnauthorized, fmt.Sprint(got)
	})
	time.Sleep(300 * time.Millisecond)
	load.Stop()
	if n := load.Failed(); n > 0 {
		t.Fatalf("%d of %d decisions for a token of a key in the Secret failed: %s", n, load.Sent(), load.Failures())
	}
	t.Logf("{A} -> {A,B} -> {B}: %d decisions, none failed", load.Sent())
}

// ---- helpers ----

type syncBuffer = testproc.SyncBuffer

func freeAddr(t *testing.T) string { return testproc.FreeAddr(t) }

func httpStatus(t *testing.T, u string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// metric finds one series in a replica's registry by name and labels; nil
// when absent.
func metric(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func counterValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	if m := metric(t, reg, name, labels); m != nil {
		return m.GetCounter().GetValue()
	}
	return 0
}

func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := metric(t, reg, name, labels)
	if m == nil {
		t.Fatalf("no %s%v in the registry", name, labels)
	}
	return m.GetGauge().GetValue()
}
