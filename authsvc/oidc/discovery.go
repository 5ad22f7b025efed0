// Package oidc is the OpenID Connect relying party of policies whose
// spec.login.oidc is set: the provider's discovery document, kept current in
// the background (a compile or a request never waits on the provider); the
// flow cookie that binds state, nonce and PKCE verifier to the browser; the
// code exchange (golang.org/x/oauth2); and the ID token checks (jwx).
//
// It knows nothing of HTTP handlers, policies or Kubernetes: the sign-in pages
// (authsvc/login) drive it, and map the verified claims with the policy.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtgate/jwtgate/authsvc/keys"
	"github.com/jwtgate/jwtgate/authsvc/outbound"
)

// Defaults of Options.
const (
	DefaultInterval    = time.Hour
	DefaultMinInterval = 10 * time.Second
	DefaultMaxBytes    = 1 << 20
	DefaultTimeout     = 5 * time.Second
	// retainGrace keeps a provider that was asked for recently, even when the
	// issuers given to Retain do not list it yet.
	retainGrace = time.Minute
)

// ErrNotLoaded: the provider's discovery document has never loaded (503).
var ErrNotLoaded = errors.New("the identity provider's discovery document has not been loaded yet")

// Discovery is what the relying party reads of the provider's
// /.well-known/openid-configuration.
type Discovery struct {
	Issuer                string   `json:"issuer"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	TokenEndpoint         string   `json:"token_endpoint"`
	JWKSURI               string   `json:"jwks_uri"`
	EndSessionEndpoint    string   `json:"end_session_endpoint,omitempty"`
	TokenAuthMethods      []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	IDTokenAlgs           []string `json:"id_token_signing_alg_values_supported,omitempty"`
	CodeChallengeMethods  []string `json:"code_challenge_methods_supported,omitempty"`
}

// check validates a document fetched for issuer (OpenID Connect Discovery
// 1.0, section 4.3: its issuer must be exactly the one asked for).
func (d *Discovery) check(issuer string) error {
	if d.Issuer != issuer {
		return fmt.Errorf("the document names issuer %.100q, not %q: set issuerURL to exactly the provider's issuer (mind the trailing slash)", d.Issuer, issuer)
	}
	for _, e := range []struct{ name, v string }{
		{"authorization_endpoint", d.AuthorizationEndpoint},
		{"token_endpoint", d.TokenEndpoint},
		{"jwks_uri", d.JWKSURI},
	} {
		if e.v == "" {
			return fmt.Errorf("the document has no %s", e.name)
		}
		if err := checkEndpoint(e.v); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	if d.EndSessionEndpoint != "" {
		if err := checkEndpoint(d.EndSessionEndpoint); err != nil {
			d.EndSessionEndpoint = "" // not offered, rather than a broken button
		}
	}
	if len(d.CodeChallengeMethods) > 0 && !slices.Contains(d.CodeChallengeMethods, "S256") {
		return errors.New("the provider does not offer PKCE with S256 (code_challenge_methods_supported)")
	}
	return nil
}

// checkEndpoint: https, or http only to loopback.
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch {
	case strings.EqualFold(u.Scheme, "https"):
		return nil
	case strings.EqualFold(u.Scheme, "http") && isLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%q is not https", u.Redacted())
}

func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Options configure Providers. The zero value is the documented default of
// every field.
type Options struct {
	// Client makes every request to the provider: discovery, token exchange.
	// Default: the guarded outbound client (authsvc/outbound, as jwksURL
	// uses), through Proxy when set, with a 5 s timeout and CheckRedirect.
	Client *http.Client
	// Proxy is --outbound-proxy, for the default Client.
	Proxy *url.URL
	// Remotes fetch the provider's JWKS (the remote-JWKS machinery of
	// jwksURL). Required for sign-ins; nil in tests of discovery alone.
	Remotes *keys.Remotes
	// Interval between discovery refreshes (default 1h, ±10 %); after a
	// failure, retries back off from MinInterval (default 10 s).
	Interval, MinInterval time.Duration
	// MaxBytes caps the discovery document (default 1 MiB).
	MaxBytes int64
	Logger   *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultMinInterval
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		o.Client = outbound.NewClient(outbound.Options{Timeout: DefaultTimeout, Proxy: o.Proxy, CheckRedirect: CheckRedirect})
	}
	return o
}

// CheckRedirect is the redirect rule of every request to a provider: at most 5
// redirects, only to https or loopback http, never from https down to http.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if err := checkEndpoint(req.URL.String()); err != nil {
		return fmt.Errorf("refusing redirect: %w", err)
	}
	if !strings.EqualFold(req.URL.Scheme, "https") && strings.EqualFold(via[0].URL.Scheme, "https") {
		return errors.New("refusing redirect from https to http")
	}
	return nil
}

// Provider keeps one issuer's discovery document current. Readers never
// block: they get the last good document, or nil before the first.
type Provider struct {
	issuer string
	opts   Options

	// notify tells the Providers' subscribers that Loaded or Failure changed.
	notify func(issuer string)

	doc     atomic.Pointer[Discovery]
	jwks    atomic.Pointer[keys.Remote]
	lastErr atomic.Pointer[error]
	mu      sync.Mutex // one fetch at a time
}

// Issuer is the issuer URL as configured.
func (p *Provider) Issuer() string { return p.issuer }

// Discovery returns the last good document, or nil before the first.
func (p *Provider) Discovery() *Discovery { return p.doc.Load() }

// Keys returns the provider's JWKS, or nil before discovery loaded.
func (p *Provider) Keys() *keys.Remote { return p.jwks.Load() }

// Client is the outbound client every request to the provider goes through.
func (p *Provider) Client() *http.Client { return p.opts.Client }

// Loaded reports whether the provider can sign people in: its discovery
// document and its keys have loaded (a later failure keeps both, so it stays
// true while the provider blinks).
func (p *Provider) Loaded() bool {
	r := p.Keys()
	return p.Discovery() != nil && (p.opts.Remotes == nil || (r != nil && r.Current() != nil))
}

// Failure is the last failure of discovery or of the provider's keys, or nil
// when none is known (loaded, or no answer yet). It never quotes a response
// body.
func (p *Provider) Failure() error {
	if e := p.lastErr.Load(); e != nil {
		return *e
	}
	if r := p.Keys(); r != nil {
		if err := r.LastError(); err != nil {
			return fmt.Errorf("the provider's keys: %w", err)
		}
	}
	return nil
}

// WaitReady waits until Loaded, or until ctx ends: then it returns ctx's
// error with the last failure, if any. It polls (every 50 ms): the controller
// waits this way only briefly, for a provider it has not heard from yet.
func (p *Provider) WaitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !p.Loaded() {
		select {
		case <-ctx.Done():
			if err := p.Failure(); err != nil {
				return fmt.Errorf("%w (last failure: %w)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Refresh fetches the document now. On failure the last good one stays.
func (p *Provider) Refresh(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	wasLoaded, hadFailed := p.Loaded(), p.Failure() != nil
	d, err := p.fetch(ctx)
	if err == nil {
		err = d.check(p.issuer)
	}
	if err != nil {
		err = fmt.Errorf("discovery of %s: %w", p.issuer, err)
		p.lastErr.Store(&err)
		if ctx.Err() == nil {
			p.opts.Logger.Warn("OpenID discovery failed; keeping the last good document", "issuer", p.issuer, "error", err, "loaded", p.Discovery() != nil)
		}
	} else {
		if old := p.doc.Load(); old == nil || old.JWKSURI != d.JWKSURI {
			if p.opts.Remotes != nil {
				r, rerr := p.opts.Remotes.Get(d.JWKSURI)
				if rerr != nil {
					err = fmt.Errorf("discovery of %s: jwks_uri: %w", p.issuer, rerr)
					p.lastErr.Store(&err)
					return err
				}
				p.jwks.Store(r)
				if r.Current() == nil && p.notify != nil {
					// The keys load in their own goroutine: Loaded turns
					// true then, not here.
					go func() {
						if r.WaitReady(ctx) == nil {
							p.notify(p.issuer)
						}
					}()
				}
			}
			p.opts.Logger.Info("OpenID provider discovered", "issuer", p.issuer, "jwks_uri", d.JWKSURI, "end_session", d.EndSessionEndpoint != "")
		}
		p.doc.Store(d)
		p.lastErr.Store(nil)
	}
	if p.notify != nil && (p.Loaded() != wasLoaded || (p.Failure() != nil) != hadFailed) {
		p.notify(p.issuer)
	}
	return err
}

func (p *Provider) fetch(ctx context.Context) (*Discovery, error) {
	u := strings.TrimSuffix(p.issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d %s, want 200", u, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.opts.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the response: %w", u, err)
	}
	if int64(len(body)) > p.opts.MaxBytes {
		return nil, fmt.Errorf("GET %s: the response is larger than %d bytes", u, p.opts.MaxBytes)
	}
	var d Discovery
	if err := json.Unmarshal(body, &d); err != nil {
		// Never quote the body: status messages are read by many.
		return nil, fmt.Errorf("GET %s: the response (%d bytes, Content-Type %q) is not a JSON discovery document", u, len(body), resp.Header.Get("Content-Type"))
	}
	return &d, nil
}

// Run refreshes until ctx ends: now, then every Interval; after a failure
// sooner, backing off from MinInterval.
func (p *Provider) Run(ctx context.Context) {
	failures := 0
	for {
		wait := jitter(p.opts.Interval)
		if err := p.Refresh(ctx); err != nil {
			failures++
			d := p.opts.MinInterval
			for i := 1; i < failures && d < p.opts.Interval; i++ {
				d *= 2
			}
			wait = jitter(min(d, p.opts.Interval))
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 10
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread+1)) //nolint:gosec // G404: refresh jitter, not a secret
}

// Providers shares one Provider per issuer URL across policies and replicas
// of a policy, each refreshed in the background until the context given to
// NewProviders ends.
type Providers struct {
	ctx  context.Context
	opts Options
	mu   sync.Mutex
	m    map[string]*providerEntry
	subs []func(issuer string)
}

type providerEntry struct {
	p       *Provider
	stop    context.CancelFunc
	lastGet time.Time
}

// NewProviders returns an empty registry.
func NewProviders(ctx context.Context, opts Options) *Providers {
	return &Providers{ctx: ctx, opts: opts.withDefaults(), m: map[string]*providerEntry{}}
}

// Get returns the Provider of issuer, starting its discovery on first use.
// It never waits for the provider.
func (ps *Providers) Get(issuer string) *Provider {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if e, ok := ps.m[issuer]; ok {
		e.lastGet = time.Now()
		return e.p
	}
	p := &Provider{issuer: issuer, opts: ps.opts, notify: ps.notify}
	ctx, stop := context.WithCancel(ps.ctx)
	ps.m[issuer] = &providerEntry{p: p, stop: stop, lastGet: time.Now()}
	go p.Run(ctx)
	return p
}

// Subscribe calls f (from a background goroutine; f must not block) each
// time a provider's Loaded or Failure changes: first load (discovery and
// keys), a failure, a recovery. The controller requeues the policies of that
// issuer, to report or clear OIDCDiscoveryFailed.
func (ps *Providers) Subscribe(f func(issuer string)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.subs = append(ps.subs, f)
}

func (ps *Providers) notify(issuer string) {
	ps.mu.Lock()
	subs := slices.Clone(ps.subs)
	ps.mu.Unlock()
	for _, f := range subs {
		f(issuer)
	}
}

// Retain starts the providers of issuers and stops those no longer listed
// (and not asked for within a minute).
func (ps *Providers) Retain(issuers map[string]bool) {
	for iss := range issuers {
		ps.Get(iss)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for iss, e := range ps.m {
		if !issuers[iss] && time.Since(e.lastGet) > retainGrace {
			e.stop()
			delete(ps.m, iss)
		}
	}
}

// JWKSURLs are the jwks_uri of every running provider, for keys.Remotes.Retain.
func (ps *Providers) JWKSURLs() map[string]bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := map[string]bool{}
	for _, e := range ps.m {
		if d := e.p.Discovery(); d != nil {
			out[d.JWKSURI] = true
		}
	}
	return out
}
