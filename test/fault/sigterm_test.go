//go:build fault

package fault_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/jwtgate/jwtgate/internal/loadtest"
)

// nginxUpstreamConf is an nginx in front of two jwtgate processes, as in a
// cluster where ingress-nginx reaches the Service's endpoints: an upstream with
// keepalive, and proxy_next_upstream so that a request whose replica went away
// is sent to the other.
const nginxUpstreamConf = `{{.User}}
worker_processes 1;
pid {{.Dir}}/nginx.pid;
events { worker_connections 1024; }
http {
    access_log {{.Dir}}/access.log;
    client_body_temp_path {{.Dir}}/tmp/client_body;
    proxy_temp_path {{.Dir}}/tmp/proxy;
    fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
    uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
    scgi_temp_path {{.Dir}}/tmp/scgi;

    upstream jwtgate {
{{- range .Upstreams}}
        server {{.}};
{{- end}}
        keepalive 32;
    }
    server {
        listen {{.Listen}};
        location / {
            auth_request /_jwtgate_auth;
            empty_gif;
        }
        location = /_jwtgate_auth {
            internal;
            proxy_pass http://jwtgate/jwtgate/auth/default/shop;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_next_upstream error timeout http_502 http_503;
        }
    }
}
`

type nginxParams struct {
	User, Dir, Listen string
	Upstreams         []string
}

// startNginx starts nginx with nginxUpstreamConf in dir and returns its address.
func startNginx(t *testing.T, dir string, upstreams ...string) string {
	t.Helper()
	requireNginx(t)
	p := nginxParams{Dir: dir, Listen: freeAddr(t), Upstreams: upstreams}
	if os.Geteuid() == 0 {
		p.User = "user root;" // workers must enter the test's private folder
	}
	var b strings.Builder
	if err := template.Must(template.New("nginx").Parse(nginxUpstreamConf)).Execute(&b, p); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", dir + "/", "-c", conf, "-e", filepath.Join(dir, "error.log")}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, nginxBin, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	proc := startProcess(t, filepath.Join(dir, "nginx.out"), nginxBin, append(args, "-g", "daemon off;")...)
	waitFor(t, proc, "nginx to listen", func() bool {
		c, err := net.Dial("tcp", p.Listen)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("---- nginx error.log ----\n%s", b)
			}
		}
	})
	return p.Listen
}

// TestSIGTERMUnderLoad sends requests with valid tokens continuously through
// nginx to two jwtgate processes and sends SIGTERM to one of them: not one
// request may fail. It also checks the order of the shutdown: /readyz fails at
// once (so a Service stops sending), the decision port keeps answering for
// --shutdown-delay, then the listener closes, requests in its handlers finish
// (http.Server.Shutdown), and the process exits 0. A request nginx writes on a
// keepalive connection that the draining server is closing is not answered
// (Go's server drops requests whose headers complete after Shutdown began);
// proxy_next_upstream error sends it to the other replica, which is why the
// count of failed requests is the measure.
func TestSIGTERMUnderLoad(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	keysFile := filepath.Join(dir, "keys.yaml")
	key := newSigner(t)
	if err := os.WriteFile(policyFile, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keysFile, keysSecret(t, key), 0o600); err != nil {
		t.Fatal(err)
	}
	const delay = 1500 * time.Millisecond
	flags := []string{"--shutdown-delay", delay.String(), "--shutdown-timeout", "5s"}
	a := startJwtgate(t, dir, "jwtgate-a", flags, policyFile, keysFile)
	b := startJwtgate(t, dir, "jwtgate-b", flags, policyFile, keysFile)
	front := startNginx(t, dir, a.addr, b.addr)

	var toks []string
	for range 16 {
		toks = append(toks, key.token(t))
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	load := loadtest.Start(8, func(_, i int) error {
		req, _ := http.NewRequest(http.MethodGet, "http://"+front+"/orders/"+fmt.Sprint(i%5), nil)
		req.Host = "app.test"
		req.Header.Set("Authorization", "Bearer "+toks[i%len(toks)])
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	defer load.Stop()
	time.Sleep(time.Second)
	if load.Sent() == 0 || load.Failed() != 0 {
		t.Fatalf("before SIGTERM: %d sent, %d failed: %s", load.Sent(), load.Failed(), load.Failures())
	}

	sentAtTerm := load.Sent()
	termAt := time.Now()
	if err := a.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Readiness drops first, while decisions are still answered.
	waitUntil(t, "jwtgate-a's /readyz to fail", func() bool {
		resp, err := http.Get("http://" + a.probes + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	notReady := time.Since(termAt)
	if notReady > delay/2 {
		t.Errorf("/readyz failed only %s after SIGTERM", notReady)
	}
	if got := a.decide(nil, "/orders", toks[1]); got != http.StatusOK && time.Since(termAt) < delay {
		t.Errorf("during the shutdown delay, jwtgate-a answered %d; want 200", got)
	}
	// Past the delay the listener is closed: no new connection gets in.
	waitUntil(t, "jwtgate-a's listener to close", func() bool {
		c, err := net.DialTimeout("tcp", a.addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
	closedAfter := time.Since(termAt)
	select {
	case err := <-a.Done:
		a.Done <- err
		if err != nil {
			t.Errorf("jwtgate-a exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("jwtgate-a did not exit within 10 s of SIGTERM")
	}
	exitedAfter := time.Since(termAt)
	// One more second on the remaining replica alone.
	sentBefore := load.Sent()
	time.Sleep(time.Second)
	load.Stop()
	if load.Sent() == sentBefore {
		t.Error("no request went through after jwtgate-a exited")
	}
	if n := load.Failed(); n > 0 {
		t.Fatalf("%d of %d requests through nginx failed; kinds: %s", n, load.Sent(), load.Failures())
	}
	t.Logf("SIGTERM to one of two replicas: %d requests (%d after SIGTERM), none failed; /readyz 503 after %s, listener closed after %s, exit 0 after %s",
		load.Sent(), load.Sent()-sentAtTerm, notReady.Round(time.Millisecond), closedAfter.Round(time.Millisecond), exitedAfter.Round(time.Millisecond))
}
