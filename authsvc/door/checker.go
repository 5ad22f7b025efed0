package door

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Checker decides for every door: it picks the policy, calls Decide, counts the
// decision and writes the audit line of a denial. Doors share one Checker (or
// several with the same Metrics).
type Checker struct {
	Store    *policy.Store
	Sessions policy.SessionChecker // for spec.login.revocation: strict; may be nil
	Metrics  *Metrics
	Log      *slog.Logger
	Now      func() time.Time // the decision clock, for tests; default time.Now

	// AuditPerSecond bounds the audit lines of denied decisions (a flood of bad
	// tokens must not flood the log); the metrics count every decision. 0: 100;
	// negative: no audit lines.
	AuditPerSecond float64

	lastWarn    sync.Map // message -> *atomic.Int64, unix nanoseconds of its last line
	auditLimit  *rate.Limiter
	initLimiter sync.Once
}

// Query is one question a door asks.
type Query struct {
	Door  Kind
	Start time.Time // when the door got the request: the duration metric
	// PolicyKey names the policy ("namespace/name", from the door's own URL or
	// the gRPC route's context extension); "" routes by Original.HostName.
	PolicyKey string
	Original  Original
	Header    http.Header // tokens, cookies, API keys, Accept, method overrides
	RequestID string      // the proxy's request id, for audit lines
	// Client is the client's address, for audit lines. An HTTP door leaves it
	// empty and sets HTTP and ClientOf instead: the address is worked out only
	// when an audit line needs it (most decisions write none).
	Client   string
	HTTP     *http.Request
	ClientOf func(*http.Request) string // nil: HTTP.RemoteAddr
}

// client is the client's address for an audit line.
func (q *Query) client() string {
	switch {
	case q.Client != "" || q.HTTP == nil:
		return q.Client
	case q.ClientOf != nil:
		return q.ClientOf(q.HTTP)
	}
	return q.HTTP.RemoteAddr
}

// Result is a decision and the policy that made it (nil when none answered or
// the request could not be read).
type Result struct {
	Policy   *policy.Policy
	Decision policy.Decision
}

// Check answers q: the policy named by q.PolicyKey, or the one whose hosts hold
// the original host, decides; no policy is 403 (a 401 would send browsers round
// a sign-in loop). It counts the decision and audits a denial.
func (c *Checker) Check(ctx context.Context, q *Query) Result {
	snap := c.Store.Load()
	var p *policy.Policy
	if q.PolicyKey != "" {
		p = snap.PolicyByKey(q.PolicyKey)
	} else if q.Original.HostName != "" {
		p = snap.ForHost(q.Original.HostName)
	}
	if p == nil {
		c.Warn("no policy answers this "+q.Door.String()+" request; refusing it",
			"door", q.Door.String(), "policy", Truncate(q.PolicyKey), "host", Truncate(q.Original.HostName))
		return c.finish(ctx, q, Result{Decision: policy.Decision{Status: http.StatusForbidden, Reason: policy.ReasonNoPolicy, Rule: -1}})
	}
	// The door's own clock reading serves the decision too (one reading
	// per decision, not two).
	now := q.Start
	if c.Now != nil {
		now = c.Now()
	} else if now.IsZero() {
		now = time.Now()
	}
	d := p.Decide(now, policy.Request{Method: q.Original.Method, Path: q.Original.Path, Header: q.Header}, c.Sessions)
	return c.finish(ctx, q, Result{Policy: p, Decision: d})
}

// Refuse answers a request the door could not read (a required header missing,
// a path that does not parse, headers that disagree): 403, with why in a
// warning line (at most one a second) that says how to fix the proxy's config.
func (c *Checker) Refuse(ctx context.Context, q *Query, why string, args ...any) Result {
	c.Warn(why, append([]any{"door", q.Door.String()}, args...)...)
	return c.finish(ctx, q, Result{Decision: policy.Decision{Status: http.StatusForbidden, Reason: policy.ReasonBadRequest, Rule: -1}})
}

func (c *Checker) finish(ctx context.Context, q *Query, r Result) Result {
	key := ""
	if r.Policy != nil {
		key = r.Policy.Key
	}
	var seconds float64
	if !q.Start.IsZero() {
		seconds = time.Since(q.Start).Seconds()
	}
	c.Metrics.observe(q.Door, r.Policy, key, r.Decision, seconds)
	if r.Decision.Status != http.StatusOK {
		c.audit(ctx, q, key, r.Decision)
	}
	return r
}

// audit writes one structured line per denied decision: policy, subject, client
// address, reason, door and the proxy's request id; never a token, an API key
// or the query. In a flood the lines are sampled (AuditPerSecond), and the drops
// are counted.
func (c *Checker) audit(ctx context.Context, q *Query, policyKey string, d policy.Decision) {
	if c.Log == nil || c.AuditPerSecond < 0 {
		return
	}
	c.initLimiter.Do(func() {
		perSecond := c.AuditPerSecond
		if perSecond == 0 {
			perSecond = 100
		}
		c.auditLimit = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond*2)))
	})
	if !c.auditLimit.Allow() {
		if c.Metrics != nil {
			c.Metrics.auditDrop.Inc()
		}
		return
	}
	sub := ""
	if d.Identity != nil {
		sub = d.Identity.Subject
	}
	c.Log.LogAttrs(ctx, slog.LevelInfo, "decision denied",
		slog.Bool("audit", true),
		slog.String("policy", policyKey),
		slog.String("result", d.Result()),
		slog.String("reason", string(d.Reason)),
		slog.String("sub", Truncate(sub)),
		slog.String("client", q.client()),
		slog.String("method", Truncate(q.Original.Method)),
		slog.String("path", Truncate(q.Original.Path)),
		slog.String("request_id", Truncate(q.RequestID)),
		slog.String("door", q.Door.String()),
	)
}

// Warn logs a misconfiguration at most once a second per message, so a flood
// of bad requests cannot flood the log, and a flood of one kind (no policy)
// cannot hide another (a forged X-Original-URL). Messages are constants of the
// doors, so the set is bounded.
func (c *Checker) Warn(msg string, args ...any) {
	if c.Log == nil {
		return
	}
	v, ok := c.lastWarn.Load(msg)
	if !ok {
		v, _ = c.lastWarn.LoadOrStore(msg, new(atomic.Int64))
	}
	lastWarn := v.(*atomic.Int64)
	now := time.Now().UnixNano()
	last := lastWarn.Load()
	if now-last < int64(time.Second) || !lastWarn.CompareAndSwap(last, now) {
		return
	}
	c.Log.Warn(msg, args...)
}

// Truncate bounds a value a client sent before it goes into a log line.
func Truncate(s string) string {
	if len(s) > 256 {
		return s[:256] + "..."
	}
	return s
}

// WithoutQuery drops the query of a URL for logs: it may hold secrets.
func WithoutQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
