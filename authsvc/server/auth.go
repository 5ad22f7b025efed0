// Package server holds jwtgate's HTTP handlers: the auth_request decision
// endpoint, and the mux that puts it beside the sign-in pages.
package server

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// AuthPath is the decision endpoint; /jwtgate/auth/{namespace}/{name} names the
// policy, /jwtgate/auth alone routes by the original request's host.
const AuthPath = "/jwtgate/auth"

// Auth answers auth_request subrequests: exactly 200, 401 or 403, always with an
// empty body, because nginx reads only the headers and any body costs it the
// keepalive connection.
type Auth struct {
	Store    *policy.Store
	Sessions policy.SessionChecker
	Metrics  *Metrics
	Log      *slog.Logger
	Now      func() time.Time // for tests; default time.Now
	// ClientAddr names the client of a subrequest in log lines (X-Real-IP or
	// X-Forwarded-For, believed only from trusted proxies); nil: the peer.
	ClientAddr func(*http.Request) string

	// AuditPerSecond bounds the audit lines of denied decisions (a flood of bad
	// tokens must not flood the log); the metrics count every decision. 0: 100;
	// negative: no audit lines.
	AuditPerSecond float64

	lastWarn    atomic.Int64
	auditLimit  *rate.Limiter
	initLimiter sync.Once
}

var (
	zeroLength       = []string{"0"}
	noStore          = []string{"no-store"}
	challengeMissing = []string{`Bearer realm="jwtgate"`}
)

func (a *Auth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	now := start
	if a.Now != nil {
		now = a.Now()
	}
	snap := a.Store.Load()
	var p *policy.Policy
	// net/http stores header names canonically ("X-Original-Url"): reading the
	// map directly spares Header.Get a canonicalization and an allocation.
	rawURL := firstValue(r.Header, "X-Original-Url")
	method := firstValue(r.Header, "X-Original-Method")
	orig, origOK := parseOriginalURL(rawURL)

	rest := strings.TrimPrefix(r.URL.Path, AuthPath)
	switch {
	case rest == "" || rest == "/":
		if origOK {
			p = snap.ForHost(orig.Host)
		}
	case rest[0] == '/':
		key := rest[1:] // "namespace/name", as the snapshot keys it: no concatenation
		ns, name, ok := strings.Cut(key, "/")
		if ok && ns != "" && name != "" && !strings.Contains(name, "/") {
			p = snap.PolicyByKey(key)
		}
	}

	var d policy.Decision
	key := ""
	switch {
	case !origOK || method == "":
		d = policy.Decision{Status: http.StatusForbidden, Reason: policy.ReasonBadRequest, Rule: -1}
		a.warn("refusing auth request: X-Original-URL must be an absolute URL with a clean path and X-Original-Method must be set (proxy_set_header X-Original-URL $scheme://$http_host$request_uri; proxy_set_header X-Original-Method $request_method)",
			"url", truncate(withoutQuery(rawURL)), "method", truncate(method))
	case p == nil:
		d = policy.Decision{Status: http.StatusForbidden, Reason: policy.ReasonNoPolicy, Rule: -1}
		a.warn("no policy answers this auth request; refusing it", "auth_path", truncate(r.URL.Path), "host", orig.Host)
	default:
		key = p.Key
		d = p.Decide(now, policy.Request{Method: method, Path: orig.Path, Header: r.Header}, a.Sessions)
	}

	h := w.Header()
	h["Content-Length"] = zeroLength
	h["Cache-Control"] = noStore
	switch d.Status {
	case http.StatusOK:
		if d.Identity != nil {
			for _, fh := range d.Identity.Headers {
				h[fh.Name] = fh.Values
			}
		}
	case http.StatusUnauthorized:
		if d.TokenSent {
			h["Www-Authenticate"] = []string{`Bearer realm="jwtgate", error="invalid_token", error_description="` + d.Description + `"`}
		} else {
			h["Www-Authenticate"] = challengeMissing
		}
	}
	w.WriteHeader(d.Status)
	a.Metrics.observe(key, d, time.Since(start).Seconds())
	switch d.Reason {
	case policy.ReasonAPIKey:
		a.Metrics.apiKeyUse(key, d.Identity.Subject)
	case policy.ReasonBadAPIKey:
		a.Metrics.apiKeyUse(key, "")
	}
	if d.Status != http.StatusOK {
		a.audit(r, key, method, orig.Path, d)
	}
}

// audit writes one structured line per denied decision: policy, subject, client
// address, reason and ingress-nginx's request id; never a token or API key. In a
// flood the lines are sampled (AuditPerSecond), and the drops are counted.
func (a *Auth) audit(r *http.Request, policyKey, method, path string, d policy.Decision) {
	if a.Log == nil || a.AuditPerSecond < 0 {
		return
	}
	a.initLimiter.Do(func() {
		perSecond := a.AuditPerSecond
		if perSecond == 0 {
			perSecond = 100
		}
		a.auditLimit = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond*2)))
	})
	if !a.auditLimit.Allow() {
		if a.Metrics != nil {
			a.Metrics.auditDrop.Inc()
		}
		return
	}
	client := r.RemoteAddr
	if a.ClientAddr != nil {
		client = a.ClientAddr(r)
	}
	sub := ""
	if d.Identity != nil {
		sub = d.Identity.Subject
	}
	a.Log.LogAttrs(r.Context(), slog.LevelInfo, "decision denied",
		slog.Bool("audit", true),
		slog.String("policy", policyKey),
		slog.String("result", d.Result()),
		slog.String("reason", string(d.Reason)),
		slog.String("sub", truncate(sub)),
		slog.String("client", client),
		slog.String("method", truncate(method)),
		slog.String("path", truncate(path)),
		slog.String("request_id", truncate(firstValue(r.Header, "X-Request-Id"))),
	)
}

func firstValue(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseOriginalURL is policy.ParseOriginalURL with a fast path for what nginx
// sends ($scheme://$http_host$request_uri): "http://" or "https://", a host of
// letters, digits, dots and hyphens with an optional numeric port, and a path
// of characters url.Parse keeps as they are. For such a value url.Parse's
// result is known (EscapedPath is the path as sent, Hostname the host without
// the port), so the answer is the same without url.Parse's allocations.
// Anything else (userinfo, IPv6, percent-escapes, fragments, control
// characters, other schemes, long values) goes through policy.ParseOriginalURL.
func parseOriginalURL(raw string) (policy.OriginalRequest, bool) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(raw, "https://"); !ok {
			return policy.ParseOriginalURL(raw)
		}
	}
	if len(raw) > 4096 {
		return policy.ParseOriginalURL(raw)
	}
	// Authority: up to the first '/', '?' or '#'.
	end := len(rest)
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c == '/' || c == '?' || c == '#' {
			end = i
			break
		}
	}
	host, port, hasPort := strings.Cut(rest[:end], ":")
	if host == "" || (hasPort && port == "") {
		return policy.ParseOriginalURL(raw)
	}
	lower := true
	for i := 0; i < len(host); i++ {
		switch c := host[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '-':
		case 'A' <= c && c <= 'Z':
			lower = false
		default:
			return policy.ParseOriginalURL(raw)
		}
	}
	for i := 0; i < len(port); i++ {
		if c := port[i]; c < '0' || c > '9' {
			return policy.ParseOriginalURL(raw)
		}
	}
	// Path: up to '?'; the query must hold no control character (url.Parse
	// refuses those anywhere) and no '#'.
	path := rest[end:]
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '?' {
			for _, q := range []byte(path[i:]) {
				if q < 0x20 || q == 0x7f || q == '#' {
					return policy.ParseOriginalURL(raw)
				}
			}
			path = path[:i]
			break
		}
		if !pathByte(c) {
			return policy.ParseOriginalURL(raw)
		}
	}
	clean, ok := policy.NormalizePath(path)
	if !ok {
		return policy.OriginalRequest{}, false
	}
	if !lower {
		host = strings.ToLower(host)
	}
	return policy.OriginalRequest{Host: host, Path: clean}, true
}

// pathByte reports whether c stands for itself in a URL path: url.Parse keeps
// it, and (*url.URL).EscapedPath gives it back unescaped.
func pathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '/', '-', '_', '.', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

// warn logs a misconfiguration at most once a second, so a flood of bad requests
// cannot flood the log.
func (a *Auth) warn(msg string, args ...any) {
	if a.Log == nil {
		return
	}
	now := time.Now().UnixNano()
	last := a.lastWarn.Load()
	if now-last < int64(time.Second) || !a.lastWarn.CompareAndSwap(last, now) {
		return
	}
	a.Log.Warn(msg, args...)
}

// withoutQuery drops the query of a URL for logs: it may hold secrets.
func withoutQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

func truncate(s string) string {
	if len(s) > 256 {
		return s[:256] + "..."
	}
	return s
}
