// Package outbound is the one HTTP client jwtgate uses for every request it
// makes to a URL someone else wrote: the jwksURL key sets today, the OpenID
// provider's discovery document and JWKS tomorrow. Use NewClient for each of
// them; never http.DefaultClient.
//
// Whoever may write an AuthPolicy chooses these URLs, so the client refuses
// to connect where a policy author must never reach through jwtgate:
// link-local addresses (169.254.0.0/16, fe80::/10: cloud metadata services
// and the like), the unspecified address (0.0.0.0, ::, which reaches the
// local host) and multicast. The check runs at dial time, on the address
// the connection is about to use (after DNS), so a redirect or a host name
// that resolves there is refused as well.
//
// The environment's proxy settings (HTTPS_PROXY and the like) are ignored: a
// proxy would dial for us and hide the real address from the check. A proxy
// named explicitly (Options.Proxy, the --outbound-proxy flag) is used, and
// then the target host is resolved and checked before the request is sent
// (the proxy resolves it again; name servers that answer differently the
// second time are outside what this check can see).
//
// The package imports only the standard library.
package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// DefaultTimeout bounds a whole request (connect, TLS, headers, body).
const DefaultTimeout = 5 * time.Second

// Options configures NewClient. The zero value is a direct client with
// DefaultTimeout.
type Options struct {
	// Timeout bounds a whole request. Default DefaultTimeout.
	Timeout time.Duration
	// Proxy, when set, is the proxy every request goes through (except to
	// loopback hosts); the target host is resolved and checked before each
	// request is sent. Nil: direct connections, whatever the environment says.
	Proxy *url.URL
	// CheckRedirect is the caller's redirect policy (scheme rules, a limit),
	// as http.Client.CheckRedirect. The address check applies to redirects
	// anyway, at dial time.
	CheckRedirect func(req *http.Request, via []*http.Request) error
	// Resolver resolves target hosts in proxy mode. Default net.DefaultResolver.
	Resolver *net.Resolver
}

// BlockedError is returned (wrapped in the client's *url.Error) when a
// request would reach an address the client refuses. Its message says what
// kind of address it is, not which one.
type BlockedError struct {
	Kind string // "link-local", "unspecified", "multicast"
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("refused: the host resolves to a %s address, which jwtgate never connects to (link-local 169.254.0.0/16 and fe80::/10 hold cloud metadata services; unspecified and multicast addresses are never a key server)", e.Kind)
}

// Blocked reports why ip must not be connected to ("" when it may).
func Blocked(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsMulticast():
		return "multicast"
	}
	return ""
}

// NewClient returns the guarded client. Each call makes its own transport:
// one per consumer (key sets, OpenID provider) keeps their connection pools
// apart.
func NewClient(o Options) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	dialer := &net.Dialer{
		Timeout:   o.Timeout,
		KeepAlive: 30 * time.Second,
		Control:   controlAddress,
	}
	t := &http.Transport{
		Proxy:                 nil, // never from the environment
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	if o.Proxy != nil {
		proxy := *o.Proxy
		resolver := o.Resolver
		if resolver == nil {
			resolver = net.DefaultResolver
		}
		t.Proxy = func(req *http.Request) (*url.URL, error) {
			host := req.URL.Hostname()
			if isLoopbackName(host) {
				return nil, nil // straight to the local host; the dial check still runs
			}
			if err := checkHost(req.Context(), resolver, host); err != nil {
				return nil, err
			}
			return &proxy, nil
		}
	}
	return &http.Client{Timeout: o.Timeout, Transport: t, CheckRedirect: o.CheckRedirect}
}

// controlAddress runs after DNS, on the address about to be dialed.
func controlAddress(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("refused: cannot read the address to dial: %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("refused: cannot read the address to dial: %w", err)
	}
	if kind := Blocked(ip); kind != "" {
		return &BlockedError{Kind: kind}
	}
	return nil
}

// checkHost resolves host and refuses it when any of its addresses is one
// the client never connects to.
func checkHost(ctx context.Context, r *net.Resolver, host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		if kind := Blocked(ip); kind != "" {
			return &BlockedError{Kind: kind}
		}
		return nil
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return errors.New("the host name resolves to no address")
	}
	for _, a := range addrs {
		if kind := Blocked(a); kind != "" {
			return &BlockedError{Kind: kind}
		}
	}
	return nil
}

func isLoopbackName(host string) bool {
	if host == "localhost" || host == "localhost." {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Describe turns an error of a guarded request into a coarse result for
// status messages and logs: what kind of failure it was, never the bytes,
// size or type of an answer, nor the addresses a name resolved to.
func Describe(err error) string {
	var be *BlockedError
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &be):
		return be.Error()
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timed out"
	case errors.As(err, &dnsErr):
		return "the host name does not resolve"
	case isTLSError(err):
		return "the TLS handshake failed (is the server's certificate trusted?)"
	default:
		return "could not connect"
	}
}

func isTLSError(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		rh  tls.RecordHeaderError
		al  tls.AlertError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		inv x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &al) ||
		errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &inv)
}
