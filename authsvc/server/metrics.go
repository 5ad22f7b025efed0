package server

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Metrics are the decision service's Prometheus metrics. Labels are bounded: the
// policy and a fixed set of results and reasons, never a user or a path.
type Metrics struct {
	decisions *prometheus.CounterVec
	duration  prometheus.Histogram
	apiKeys   *prometheus.CounterVec
	cache     *prometheus.CounterVec
	cacheHit  prometheus.Counter
	cacheMiss prometheus.Counter
	auditDrop prometheus.Counter

	counters sync.Map // decisionKey -> prometheus.Counter, so the hot path skips label hashing
}

type decisionKey struct {
	policy string
	reason policy.Reason
	status int
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtgate_decisions_total",
			Help: "Decisions by policy, result (allow, unauthenticated, forbidden) and reason.",
		}, []string{"policy", "result", "reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "jwtgate_decision_duration_seconds",
			Help:    "Time to answer /jwtgate/auth, from request to answer.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05},
		}),
	}
	m.apiKeys = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_api_key_requests_total",
		Help: "Decisions on API keys by policy and key name (the names the apiKeys Secret lists; \"\" for a key that matched none).",
	}, []string{"policy", "key"})
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_token_cache_requests_total",
		Help: "Token verifications by result: hit (answered from the cache of verified tokens) or miss (signature verified).",
	}, []string{"result"})
	m.cacheHit, m.cacheMiss = m.cache.WithLabelValues("hit"), m.cache.WithLabelValues("miss")
	m.auditDrop = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "jwtgate_audit_lines_dropped_total",
		Help: "Audit lines of denied decisions left out because they came faster than --audit-denied-rate.",
	})
	reg.MustRegister(m.decisions, m.duration, m.apiKeys, m.cache, m.auditDrop)
	return m
}

func (m *Metrics) observe(policyKey string, d policy.Decision, seconds float64) {
	if m == nil {
		return
	}
	k := decisionKey{policy: policyKey, reason: d.Reason, status: d.Status}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.decisions.WithLabelValues(policyKey, d.Result(), string(d.Reason)))
	}
	c.(prometheus.Counter).Inc()
	m.duration.Observe(seconds)
	if d.TokenSent && d.Identity != nil && !d.Identity.APIKey {
		if d.Cached {
			m.cacheHit.Inc()
		} else {
			m.cacheMiss.Inc()
		}
	}
}

func (m *Metrics) apiKeyUse(policyKey, name string) {
	if m == nil {
		return
	}
	m.apiKeys.WithLabelValues(policyKey, name).Inc()
}
