package door

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jwtgate/jwtgate/authsvc/policy"
)

// Metrics are the decision service's Prometheus metrics, shared by every door.
// Labels are bounded: the door, the policy and a fixed set of results and
// reasons, never a user or a path.
type Metrics struct {
	decisions *prometheus.CounterVec
	duration  [numKinds]prometheus.Observer
	apiKeys   *prometheus.CounterVec
	cache     *prometheus.CounterVec
	cacheHit  prometheus.Counter
	cacheMiss prometheus.Counter
	auditDrop prometheus.Counter

	// counters are the decision counters of requests no policy answered,
	// by decisionKey; a policy's own are in its Slot (policyCounters).
	counters sync.Map
}

// policyCounters are one compiled policy's decision counters, kept in its
// policy.Slot: a decision finds its counter in a short list (the outcomes
// that policy has had, at most doors × reasons) without hashing a label.
type policyCounters struct {
	mu   sync.Mutex // serializes additions to list
	list atomic.Pointer[[]outcomeCounter]
}

type outcomeCounter struct {
	door    Kind
	status  int
	reason  policy.Reason
	counter prometheus.Counter
}

type decisionKey struct {
	door   Kind
	policy string
	reason policy.Reason
	status int
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtgate_decisions_total",
			Help: "Decisions by door (auth_request, forward_auth, ext_authz_http, ext_authz_grpc), policy, result (allow, unauthenticated, forbidden) and reason.",
		}, []string{"door", "policy", "result", "reason"}),
	}
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "jwtgate_decision_duration_seconds",
		Help:    "Time to answer a decision, from request to answer, by door.",
		Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05},
	}, []string{"door"})
	for k := range numKinds {
		m.duration[k] = duration.WithLabelValues(k.String())
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
	reg.MustRegister(m.decisions, duration, m.apiKeys, m.cache, m.auditDrop)
	return m
}

func (m *Metrics) observe(door Kind, p *policy.Policy, policyKey string, d policy.Decision, seconds float64) {
	if m == nil {
		return
	}
	if door >= numKinds {
		door = AuthRequest
	}
	m.decisionCounter(door, p, policyKey, &d).Inc()
	m.duration[door].Observe(seconds)
	if d.TokenSent && d.Identity != nil && !d.Identity.APIKey {
		if d.Cached {
			m.cacheHit.Inc()
		} else {
			m.cacheMiss.Inc()
		}
	}
	switch d.Reason {
	case policy.ReasonAPIKey:
		m.apiKeys.WithLabelValues(policyKey, d.Identity.Subject).Inc()
	case policy.ReasonBadAPIKey:
		m.apiKeys.WithLabelValues(policyKey, "").Inc()
	}
}

// decisionCounter is the counter of one decision's door, policy, result and
// reason: from the policy's Slot when a compiled policy decided, else from
// the shared map.
func (m *Metrics) decisionCounter(door Kind, p *policy.Policy, policyKey string, d *policy.Decision) prometheus.Counter {
	var slot *policy.Slot
	if p != nil {
		slot = p.Slot()
	}
	if slot == nil {
		k := decisionKey{door: door, policy: policyKey, reason: d.Reason, status: d.Status}
		c, ok := m.counters.Load(k)
		if !ok {
			c, _ = m.counters.LoadOrStore(k, m.decisions.WithLabelValues(door.String(), policyKey, d.Result(), string(d.Reason)))
		}
		return c.(prometheus.Counter)
	}
	pc, _ := slot.Load().(*policyCounters)
	if pc == nil {
		slot.CompareAndSwap(nil, &policyCounters{})
		pc = slot.Load().(*policyCounters)
	}
	if c := pc.find(door, d); c != nil {
		return c
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c := pc.find(door, d); c != nil {
		return c
	}
	c := m.decisions.WithLabelValues(door.String(), policyKey, d.Result(), string(d.Reason))
	var list []outcomeCounter
	if old := pc.list.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, outcomeCounter{door: door, status: d.Status, reason: d.Reason, counter: c})
	pc.list.Store(&list)
	return c
}

func (pc *policyCounters) find(door Kind, d *policy.Decision) prometheus.Counter {
	list := pc.list.Load()
	if list == nil {
		return nil
	}
	for i := range *list {
		if e := &(*list)[i]; e.door == door && e.status == d.Status && e.reason == d.Reason {
			return e.counter
		}
	}
	return nil
}

// Decisions is the decisions counter of one door, policy, result and reason
// (for tests and the doors' own checks).
func (m *Metrics) Decisions(door Kind, policyKey, result string, reason policy.Reason) prometheus.Counter {
	return m.decisions.WithLabelValues(door.String(), policyKey, result, string(reason))
}

// APIKeyUses is the counter of one policy's API key (name "" for keys that
// matched none).
func (m *Metrics) APIKeyUses(policyKey, name string) prometheus.Counter {
	return m.apiKeys.WithLabelValues(policyKey, name)
}

// CacheHits counts decisions answered from the token cache.
func (m *Metrics) CacheHits() prometheus.Counter { return m.cacheHit }

// AuditDropped counts audit lines left out in a flood.
func (m *Metrics) AuditDropped() prometheus.Counter { return m.auditDrop }
