package keys

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
)

// Issue 12 item 9: a jwksURL (written by whoever may write a policy) must not
// reach link-local (cloud metadata), unspecified or multicast addresses,
// neither directly nor through a redirect, with the default client.
func TestRemoteRefusesForbiddenAddresses(t *testing.T) {
	m := testKeys()
	good := newJWKSServer(t, true, serveBody(200, jwksJSON(t, jwkJSON(t, m.ed.Public(), nil))))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(good.URL, "https://"))
	redirector := newJWKSServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	tests := []struct {
		name, url, want string
	}{
		// 0.0.0.0 reaches the local host on Linux: the test server answers there.
		{"unspecified IPv4", "https://0.0.0.0:" + port + "/", "unspecified"},
		{"unspecified IPv6", "https://[::]:" + port + "/", "unspecified"},
		{"link-local metadata", "https://169.254.169.254/latest/meta-data/", "link-local"},
		{"link-local IPv6", "https://[fe80::1]/jwks", "link-local"},
		{"IPv4-mapped link-local", "https://[::ffff:169.254.169.254]/", "link-local"},
		{"multicast", "https://224.0.0.1/jwks", "multicast"},
		{"redirect to metadata", redirector.URL + "/jwks", "link-local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testRemote(t, tc.url, RemoteOptions{})
			// The test CA, but the default transport's guard: swap only the
			// TLS trust in.
			setTestRoots(t, r, good)
			err := r.Refresh(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Refresh = %v, want it refused as %s", err, tc.want)
			}
		})
	}
	if good.requests.Load() != 0 {
		t.Fatalf("the server behind 0.0.0.0 was reached %d times", good.requests.Load())
	}
}

// setTestRoots makes r's default (guarded) client trust srv's test CA.
func setTestRoots(t *testing.T, r *Remote, srv *jwksServer) {
	t.Helper()
	tr, ok := r.opts.Client.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("default transport is %T", r.opts.Client.Transport)
	}
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

// Issue 12 item 9: status and logs keep a coarse result, never the size or
// type of an answer (an oracle on internal services a policy author points
// jwksURL at).
func TestRemoteErrorsAreCoarse(t *testing.T) {
	srv := newJWKSServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/x-internal-service")
		w.WriteHeader(200)
		_, _ = w.Write([]byte("<html>internal admin console</html>"))
	})
	r := testRemote(t, srv.URL, RemoteOptions{})
	err := r.Refresh(context.Background())
	if err == nil {
		t.Fatal("want an error")
	}
	for _, leak := range []string{"text/x-internal-service", "35 bytes", "bytes", "Content-Type", "internal admin"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q tells %q about the answer", err, leak)
		}
	}
	srv.set(serveBody(404, []byte("nope")))
	err = r.Refresh(context.Background())
	if err == nil || strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "4xx") {
		t.Errorf("error %v: want the status class only", err)
	}
}
