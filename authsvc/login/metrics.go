package login

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Sign-in results, the values of the result label.
const (
	ResultSuccess     = "success"      // password sign-in
	ResultFailure     = "failure"      // wrong user name or password
	ResultRateLimited = "rate_limited" // refused with 429 after repeated failures
	ResultBusy        = "busy"         // refused with 429: every bcrypt slot taken
	ResultRefused     = "refused"      // CSRF or Origin check failed, malformed request
	ResultRenewed     = "renewed"      // silent renewal or /jwtgate/refresh
	ResultRenewFailed = "renew_failed" // refresh token unknown, expired or reused
	ResultReused      = "reused"       // refresh token replayed: its session ended
	ResultUnavailable = "unavailable"  // sign-in or renewal refused with 503: the session store is unavailable
)

// Metrics of the sign-in pages. Labels are bounded: the policy and the fixed
// results above.
type Metrics struct {
	signins *prometheus.CounterVec
}

// NewMetrics registers jwtgate_signins_total with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtgate_signins_total",
			Help: "Sign-ins and renewals by policy, result (success, failure, rate_limited, busy, refused, renewed, renew_failed, reused, unavailable; at a provider also state_invalid, provider_error, token_invalid, forbidden, provider_unreachable) and method (password, oidc).",
		}, []string{"policy", "result", "method"}),
	}
	reg.MustRegister(m.signins)
	return m
}

// count counts a result of the password form (and of renewals).
func (m *Metrics) count(policyKey, result string) { m.countMethod(policyKey, result, MethodPassword) }

func (m *Metrics) countMethod(policyKey, result, method string) {
	if m == nil {
		return
	}
	m.signins.WithLabelValues(policyKey, result, method).Inc()
}

// Fail2banJSONRegex is the fail2ban failregex for jwtgate's JSON log
// (--log-format json, the default): it matches failed and throttled sign-ins.
// The client address comes before the user name in each line, and the user
// name is JSON-escaped, so a crafted name cannot supply the address.
const Fail2banJSONRegex = `^\{"time":"[^"]*","level":"WARN","msg":"sign-in (?:failed|throttled)","policy":"[^"]*","client":"<HOST>"`

// Fail2banTextRegex is the same for --log-format text.
const Fail2banTextRegex = `^time=\S+ level=WARN msg="sign-in (?:failed|throttled)" policy=\S+ client=<HOST> `
