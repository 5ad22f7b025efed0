package keys

import (
	"context"
	"crypto/sha256"
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

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/jwtgate/jwtgate/authsvc/outbound"
)

// Defaults of RemoteOptions.
const (
	DefaultRemoteTimeout     = 5 * time.Second
	DefaultRemoteInterval    = 5 * time.Minute
	DefaultRemoteMinInterval = 10 * time.Second
	DefaultRemoteMaxBytes    = 1 << 20
)

// RemoteOptions configures a Remote. The zero value is the documented
// default for every field.
type RemoteOptions struct {
	// Client makes the requests. Default: outbound.NewClient (a 5 s timeout,
	// no link-local, unspecified or multicast address at dial time, no proxy
	// from the environment: Proxy, when set), following redirects only to
	// URLs that CheckURL accepts and never from https to http.
	Client *http.Client
	// Proxy is the explicit proxy of the default client (--outbound-proxy);
	// nil: direct connections.
	Proxy *url.URL
	// Interval between refreshes. Default 5 minutes; each wait varies by
	// up to ±10 % so that replicas do not fetch in step.
	Interval time.Duration
	// MinInterval is the least time between a fetch and a refresh asked
	// for by RequestRefresh (a token with an unknown kid), so that tokens
	// with made-up kids cannot make us hammer the server. Default 10 s.
	MinInterval time.Duration
	// MaxBytes caps the response body; a bigger one is an error and the
	// last good set is kept. Default 1 MiB.
	MaxBytes int64
	// HTTPSOnly refuses http:// URLs even to loopback hosts. By default,
	// http:// is allowed to loopback hosts only (127.0.0.0/8, ::1,
	// localhost): an IdP sidecar, or a test server.
	HTTPSOnly bool
	// Logger receives fetch failures and key changes. Default slog.Default().
	Logger *slog.Logger
	// Metrics counts fetches and tracks key-set ages (NewMetrics); nil: none.
	Metrics *Metrics
}

func (o RemoteOptions) withDefaults() RemoteOptions {
	if o.Interval <= 0 {
		o.Interval = DefaultRemoteInterval
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultRemoteMinInterval
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultRemoteMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Client == nil {
		httpsOnly := o.HTTPSOnly
		o.Client = outbound.NewClient(outbound.Options{
			Timeout: DefaultRemoteTimeout,
			Proxy:   o.Proxy,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				// The redirect's target is the server's answer: the
				// messages say what is wrong with it, not what it is.
				if len(via) >= 5 {
					return &redirectError{"stopped after 5 redirects"}
				}
				if checkURL(req.URL, httpsOnly) != nil {
					return &redirectError{"refusing redirect to a URL that is not https (http only to loopback)"}
				}
				// Never downgrade: an https server may not send us to
				// plain http, not even on loopback.
				if !strings.EqualFold(req.URL.Scheme, "https") && strings.EqualFold(via[0].URL.Scheme, "https") {
					return &redirectError{"refusing redirect from https to http"}
				}
				return nil
			},
		})
	}
	return o
}

// CheckURL validates a jwksURL: https, or http only to a loopback host.
// The error says what is wrong and how to fix it.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("jwksURL is not a valid URL: %w", err)
	}
	return checkURL(u, false)
}

func checkURL(u *url.URL, httpsOnly bool) error {
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("jwksURL %q has no host: write it as https://HOST/PATH", u.Redacted())
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if httpsOnly {
			return fmt.Errorf("jwksURL %q uses http: use https://", u.Redacted())
		}
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("jwksURL %q uses http to a host that is not loopback: use https:// (http is allowed only to 127.0.0.1, ::1 and localhost)", u.Redacted())
		}
		return nil
	default:
		return fmt.Errorf("jwksURL %q has scheme %q: use https://", u.Redacted(), u.Scheme)
	}
}

// isLoopbackHost reports whether host (without port) is "localhost" or a
// loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Remote keeps the keys of one jwksURL current. Readers call Current, which
// is a lock-free atomic load; fetches replace the set only when they
// succeed, so a failing server leaves the last good keys in place.
type Remote struct {
	url       string // as configured, for requests
	redacted  string // for messages: no userinfo password
	opts      RemoteOptions
	set       atomic.Pointer[Set]
	gen       atomic.Uint64
	fetchedAt atomic.Int64 // unix nanoseconds of the last success, 0 before
	lastErr   atomic.Pointer[error]
	// lastAttempt is the start of the last fetch, or of the last accepted
	// RequestRefresh (unix nanoseconds): the base of the MinInterval limit.
	lastAttempt atomic.Int64

	fetchMu     sync.Mutex // one fetch at a time
	fingerprint [sha256.Size]byte
	kick        chan struct{} // RequestRefresh -> Run, capacity 1: coalesces
	ready       chan struct{} // closed after the first successful fetch
	readyOnce   sync.Once
}

// NewRemote returns a Remote for url. It checks the URL but does not fetch
// yet: call Run (or Refresh).
func NewRemote(rawURL string, opts RemoteOptions) (*Remote, error) {
	opts = opts.withDefaults()
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("jwksURL is not a valid URL: %w", err)
	}
	if err := checkURL(u, opts.HTTPSOnly); err != nil {
		return nil, err
	}
	return &Remote{
		url:      rawURL,
		redacted: u.Redacted(),
		opts:     opts,
		kick:     make(chan struct{}, 1),
		ready:    make(chan struct{}),
	}, nil
}

// URL returns the URL the keys are fetched from.
func (r *Remote) URL() string { return r.url }

// Current returns the last good set, or nil before the first successful
// fetch. It is an atomic load.
func (r *Remote) Current() *Set { return r.set.Load() }

// Generation increments every time the keys change; it is 0 before the
// first successful fetch. A refresh that returns the same keys leaves it.
func (r *Remote) Generation() uint64 { return r.gen.Load() }

// LastError returns the error of the last fetch, or nil when it succeeded.
// Its message never contains the response body.
func (r *Remote) LastError() error {
	if p := r.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// FetchedAt returns the time of the last successful fetch (zero before).
func (r *Remote) FetchedAt() time.Time {
	ns := r.fetchedAt.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Refresh fetches the keys now and waits for the answer. On failure the last
// good set stays current and the error is also kept for LastError.
func (r *Remote) Refresh(ctx context.Context) error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	r.lastAttempt.Store(time.Now().UnixNano())

	keys, ignored, err := r.fetch(ctx)
	r.opts.Metrics.fetched(fetchResult(err))
	if err != nil {
		err = fmt.Errorf("jwksURL %s: %w", r.redacted, err)
		r.lastErr.Store(&err)
		if ctx.Err() != nil {
			return err // shutting down (or the caller gave up): not worth a warning
		}
		r.opts.Logger.Warn("fetching JWKS failed; keeping the last good keys",
			"url", r.redacted, "error", err, "keys", r.Current().Len())
		return err
	}
	for _, e := range ignored {
		r.opts.Logger.Info("JWKS key ignored", "url", r.redacted, "reason", e.Error())
	}
	fp := fingerprintKeys(keys)
	if r.set.Load() == nil || fp != r.fingerprint {
		r.fingerprint = fp
		r.set.Store(NewSet(keys))
		gen := r.gen.Add(1)
		r.opts.Logger.Info("JWKS keys loaded", "url", r.redacted, "keys", len(keys), "generation", gen)
	}
	r.fetchedAt.Store(time.Now().UnixNano())
	r.lastErr.Store(nil)
	r.readyOnce.Do(func() { close(r.ready) })
	return nil
}

// redirectError is a redirect the client refused to follow.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// describeGetError is the coarse result of a failed request: a refused
// redirect, or outbound.Describe's kind of failure. Never an address the host
// resolved to, nor anything of an answer.
func describeGetError(err error) string {
	var re *redirectError
	if errors.As(err, &re) {
		return re.msg
	}
	return outbound.Describe(err)
}

// fetch GETs and parses the document. Errors (status, logs) keep a coarse
// result: never the body, its size or its type.
func (r *Remote) fetch(ctx context.Context) ([]Key, []error, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		return nil, nil, fetchFailure(networkOrTimeout(err), fmt.Errorf("GET: %s", describeGetError(err)))
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fetchFailure(FetchHTTPError, fmt.Errorf("GET: the server answered HTTP status %dxx, want 200", resp.StatusCode/100))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, r.opts.MaxBytes+1))
	if err != nil {
		return nil, nil, fetchFailure(networkOrTimeout(err), fmt.Errorf("reading the response: %s", outbound.Describe(err)))
	}
	if int64(len(body)) > r.opts.MaxBytes {
		return nil, nil, fetchFailure(FetchTooLarge, fmt.Errorf("response is larger than %d bytes (the cap)", r.opts.MaxBytes))
	}
	// Entries jwx cannot parse (a key type it does not know, an RSA key
	// that is too small) are kept as unsupported placeholders and then
	// ignored, instead of failing the whole document.
	set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(false))
	if err != nil {
		// jwx's errors quote the document: neither status nor logs get them.
		return nil, nil, fetchFailure(FetchInvalid, errors.New("the response is not a JWKS"))
	}
	keys, ignored, err := keysFromJWKSet(set, false)
	if err != nil {
		return nil, ignored, fetchFailure(FetchInvalid, fmt.Errorf("JWKS: %w", err))
	}
	return keys, ignored, nil
}

// fetchError carries the jwtgate_jwks_fetches_total result of a failed fetch;
// its message is the wrapped error's.
type fetchError struct {
	result string
	err    error
}

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

func fetchFailure(result string, err error) error { return &fetchError{result: result, err: err} }

// fetchResult is the metric result of a fetch's error (nil: ok).
func fetchResult(err error) string {
	if err == nil {
		return FetchOK
	}
	var fe *fetchError
	if errors.As(err, &fe) {
		return fe.result
	}
	return FetchNetwork
}

func networkOrTimeout(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return FetchTimeout
	}
	return FetchNetwork
}

// fingerprintKeys summarizes what a set of keys can verify, so that a
// refresh that returns the same keys (maybe reordered or reformatted) is
// not counted as a change.
func fingerprintKeys(keys []Key) [sha256.Size]byte {
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		tp := ""
		if k.Public != nil {
			tp, _ = thumbprint(k.Public)
		}
		lines = append(lines, fmt.Sprintf("%q %q %s %t", k.ID, tp, algNames(k.Algs), k.AnyKID))
	}
	slices.Sort(lines)
	return sha256.Sum256([]byte(strings.Join(lines, "\n")))
}

// RequestRefresh asks Run for a refresh soon (a token came with a kid the
// current set does not know). It never blocks; requests within MinInterval
// of the last fetch are dropped and pending ones are coalesced. It has an
// effect only while Run runs.
func (r *Remote) RequestRefresh() {
	now := time.Now().UnixNano()
	last := r.lastAttempt.Load()
	if now-last < int64(r.opts.MinInterval) {
		return
	}
	if !r.lastAttempt.CompareAndSwap(last, now) {
		return // another caller won this slot
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run fetches the keys now, then every Interval (with jitter) and when
// RequestRefresh asks, until ctx ends. After a failure it retries sooner,
// backing off from MinInterval up to Interval.
func (r *Remote) Run(ctx context.Context) {
	failures := 0
	next := func(err error) time.Duration {
		if err == nil {
			failures = 0
			return jitter(r.opts.Interval)
		}
		failures++
		d := r.opts.MinInterval
		for i := 1; i < failures && d < r.opts.Interval; i++ {
			d *= 2
		}
		return jitter(min(d, r.opts.Interval))
	}
	timer := time.NewTimer(next(r.Refresh(ctx)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
		}
		if ctx.Err() != nil {
			return
		}
		timer.Reset(next(r.Refresh(ctx)))
	}
}

// jitter spreads d by ±10 %.
func jitter(d time.Duration) time.Duration {
	spread := int64(d) / 10
	if spread <= 0 {
		return d
	}
	return d - time.Duration(spread) + time.Duration(rand.Int64N(2*spread+1)) //nolint:gosec // G404: refresh jitter, not a secret
}

// WaitReady waits until the first fetch succeeded or ctx ends; then it
// returns ctx's error together with the last fetch error.
func (r *Remote) WaitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
		if err := r.LastError(); err != nil {
			return fmt.Errorf("%w (last fetch: %w)", ctx.Err(), err)
		}
		return ctx.Err()
	}
}

// Remotes shares one Remote per URL across policies, each refreshed in the
// background until the context given to NewRemotes ends.
type Remotes struct {
	ctx  context.Context
	opts RemoteOptions
	mu   sync.Mutex
	m    map[string]*remoteEntry
	now  func() time.Time
}

type remoteEntry struct {
	r       *Remote
	stop    context.CancelFunc
	lastGet time.Time
}

// retainGrace keeps a Remote that a compile asked for recently, even when the
// snapshot given to Retain does not list it yet (the compile may not be
// published yet).
const retainGrace = time.Minute

// NewRemotes returns an empty Remotes whose Remotes run until ctx ends.
func NewRemotes(ctx context.Context, opts RemoteOptions) *Remotes {
	return &Remotes{ctx: ctx, opts: opts, m: make(map[string]*remoteEntry), now: time.Now}
}

// Retain stops the Remotes whose URL is not in inUse and that no compile asked
// for within the last minute: a jwksURL no policy lists any more is no longer
// fetched.
func (rs *Remotes) Retain(inUse map[string]bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	now := rs.now()
	for u, e := range rs.m {
		if !inUse[u] && now.Sub(e.lastGet) > retainGrace {
			e.stop()
			delete(rs.m, u)
		}
	}
}

// Len is the number of running Remotes.
func (rs *Remotes) Len() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.m)
}

// Get returns the Remote for url, creating it and starting its Run loop on
// first use.
func (rs *Remotes) Get(rawURL string) (*Remote, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if e, ok := rs.m[rawURL]; ok {
		e.lastGet = rs.now()
		return e.r, nil
	}
	r, err := NewRemote(rawURL, rs.opts)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(rs.ctx)
	rs.m[rawURL] = &remoteEntry{r: r, stop: stop, lastGet: rs.now()}
	untrack := rs.opts.Metrics.track(r) // jwtgate_jwks_age_seconds
	go func() {
		defer untrack()
		r.Run(ctx)
	}()
	return r, nil
}
