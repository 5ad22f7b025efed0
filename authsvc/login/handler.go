// Package login serves the pages of policies that sign people in:
// /jwtgate/login (form, sign-in, silent renewal), /jwtgate/refresh,
// /jwtgate/logout and /jwtgate/jwks.json, each for the policy chosen by the
// request's Host.
package login

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jwtgate/jwtgate/authsvc/oidc"
	"github.com/jwtgate/jwtgate/authsvc/policy"
	"github.com/jwtgate/jwtgate/authsvc/session"
)

// The paths this handler answers.
const (
	LoginPath   = "/jwtgate/login"
	RefreshPath = "/jwtgate/refresh"
	LogoutPath  = "/jwtgate/logout"
	JWKSPath    = "/jwtgate/jwks.json"
)

const (
	maxBody     = 16 << 10
	maxUsername = 256
	maxPassword = 1024
	// defaultDummyCost is the cost of the hash unknown users are compared
	// against when a policy has no users at all.
	defaultDummyCost = 12
	// retryAfterUnavailable is the Retry-After, in seconds, of the 503 answered
	// while the session store cannot be reached.
	retryAfterUnavailable = 5
)

// Options wire the sign-in pages.
type Options struct {
	Store    *policy.Store
	Sessions session.Store
	// Records keeps the token records (issued, refreshed, revoked, refused) and
	// writes their audit lines; nil: none are kept or written.
	Records session.Records
	Metrics *Metrics     // may be nil
	Log     *slog.Logger // may be nil
	// TrustedProxies are the peers whose X-Forwarded-For / X-Real-IP name the
	// client (--trusted-proxies).
	TrustedProxies []netip.Prefix
	// MaxConcurrentHashes bounds the bcrypt comparisons running at once
	// (0: runtime.NumCPU()); a sign-in past it is answered 429 at once.
	MaxConcurrentHashes int
	// Limits slow repeated failures; the zero value means DefaultLimits.
	Limits Limits
	// Providers keep the discovery documents of the OpenID providers that
	// policies sign people in at; nil: sign-in at a provider answers 503.
	Providers *oidc.Providers
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Handler serves the sign-in pages. Mount it at /jwtgate/ (server.Options.Pages).
type Handler struct {
	o       Options
	log     *slog.Logger
	sem     chan struct{}
	limiter *limiter

	dummyMu sync.Mutex
	dummies map[int][]byte // bcrypt cost -> hash of a random password

	beforeCompare func() // tests: runs before each password comparison
}

// New returns the handler.
func New(o Options) *Handler {
	if o.MaxConcurrentHashes <= 0 {
		o.MaxConcurrentHashes = runtime.NumCPU()
	}
	if o.Limits == (Limits{}) {
		o.Limits = DefaultLimits
	}
	if o.Limits.MaxEntries <= 0 {
		o.Limits.MaxEntries = DefaultLimits.MaxEntries
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		o:       o,
		log:     log,
		sem:     make(chan struct{}, o.MaxConcurrentHashes),
		limiter: newLimiter(o.Limits),
		dummies: map[int][]byte{},
	}
}

func (h *Handler) now() time.Time {
	if h.o.Now != nil {
		return h.o.Now()
	}
	return time.Now()
}

// exchange is one request in progress.
type exchange struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	p    *policy.Policy
	host string
	ans  answers // HTML pages or JSON, chosen once from Accept
	now  time.Time
	// ended is the session a sign-out ended (its provider may be signed out of too).
	ended session.Session
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case LoginPath, RefreshPath, LogoutPath, JWKSPath, OIDCStartPath, OIDCCallbackPath:
	default:
		setPageHeaders(w.Header())
		http.NotFound(w, r)
		return
	}
	x := &exchange{h: h, w: w, r: r, host: requestHost(r.Host), ans: h.answersFor(r), now: h.now()}
	x.p = h.o.Store.Load().ForHost(x.host)
	if x.p == nil || x.p.Login == nil {
		x.ans.noSignInPolicy(x)
		return
	}
	switch r.URL.Path {
	case OIDCStartPath, OIDCCallbackPath:
		if x.p.Login.OIDC == nil {
			setPageHeaders(w.Header())
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		if r.URL.Path == OIDCStartPath {
			h.oidcStart(x)
		} else {
			h.oidcCallback(x)
		}
	case LoginPath:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.loginPage(x)
		case http.MethodPost:
			h.signIn(x)
		default:
			methodNotAllowed(w, "GET, HEAD, POST")
		}
	case RefreshPath:
		if r.Method != http.MethodPost {
			methodNotAllowed(w, "POST")
			return
		}
		h.refresh(x)
	case LogoutPath:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.logoutPage(x)
		case http.MethodPost:
			h.logout(x)
		default:
			methodNotAllowed(w, "GET, HEAD, POST")
		}
	case JWKSPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.jwks(x)
	}
}

// requestHost is the Host header's name, lower case, without port or final dot.
func requestHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

func wantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
				return true
			}
		}
	}
	return false
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	setPageHeaders(w.Header())
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// originAllowed checks Origin when the browser sent one: it must be this host or
// one of the policy's allowed redirect hosts. A cross-site page posting here is
// refused even where SameSite would not stop it.
func originAllowed(x *exchange) bool {
	o := x.r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false // including "null"
	}
	host := strings.ToLower(u.Hostname())
	return host == x.host || policy.HostMatches(host, x.p.Login.AllowedRedirectHosts)
}

// answersFor chooses how the exchange answers: JSON when the client accepts
// application/json, HTML pages otherwise.
func (h *Handler) answersFor(r *http.Request) answers {
	if wantsJSON(r) {
		return jsonAnswers{}
	}
	return pageAnswers{}
}

// refuse answers a request that fails a check before any password is looked at.
func (h *Handler) refuse(x *exchange, what, desc string) {
	h.o.Metrics.count(x.p.Key, ResultRefused)
	x.ans.refused(x, what, desc)
}

// record keeps a token record, which also writes its audit line (the Records
// implementations write it; the handler does not). A record that cannot be
// kept is logged and does not fail the request; neither does a client that
// went away meanwhile.
func (h *Handler) record(ctx context.Context, e session.Event) {
	if h.o.Records == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = h.now()
	}
	if err := h.o.Records.Record(context.WithoutCancel(ctx), e); err != nil {
		h.log.Warn("cannot keep a token record", "event", e.Kind, "policy", e.Policy, "user", e.User, "session", e.Session, "error", err)
	}
}

// storeTrouble tells the errors that say the session store cannot serve now
// (unreachable, full), not that a token is bad: nobody is signed out for them.
func storeTrouble(err error) bool {
	return errors.Is(err, session.ErrUnavailable) || errors.Is(err, session.ErrFull)
}

// printable makes a user name safe to log and to show: valid UTF-8, no control
// characters, at most 64 characters.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "..."
	}
	return s
}
