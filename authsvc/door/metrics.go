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
	decisions *prometheus.Desc
	duration  [numKinds]prometheus.Observer
	apiKeys   *prometheus.CounterVec
	cache     *prometheus.CounterVec
	cacheHit  prometheus.Counter
	cacheMiss prometheus.Counter
	auditDrop prometheus.Counter

	// byKey holds the decision counts of each policy key ("" for requests no
	// policy answered), *decisionCounts; they outlive recompiles, as a
	// Prometheus counter must.
	byKey sync.Map
}

// decisionCounts are the decisions of one policy key by outcome: plain atomic
// counts (a few dozen bytes each, where a Prometheus series of its own costs
// about 800), exported as jwtgate_decisions_total when scraped. A compiled
// policy's Slot points at its key's counts, so a decision finds them with a
// pointer load and a scan of the outcomes that key has had (at most doors ×
// reasons), hashing nothing.
type decisionCounts struct {
	key  string
	mu   sync.Mutex // serializes additions to list
	list atomic.Pointer[[]*outcomeCount]
}

// outcomeCount is one exported series: door, result and reason (two
// statuses of one result would otherwise export the same series twice, which
// fails the scrape).
type outcomeCount struct {
	door   Kind
	result string
	reason policy.Reason
	n      atomic.Uint64
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewDesc("jwtgate_decisions_total",
			"Decisions by door (auth_request, forward_auth, ext_authz_http, ext_authz_grpc), policy, result (allow, unauthenticated, forbidden) and reason.",
			[]string{"door", "policy", "result", "reason"}, nil),
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
	reg.MustRegister(decisionsCollector{m}, duration, m.apiKeys, m.cache, m.auditDrop)
	return m
}

func (m *Metrics) observe(door Kind, p *policy.Policy, policyKey string, d policy.Decision, seconds float64) {
	if m == nil {
		return
	}
	if door >= numKinds {
		door = AuthRequest
	}
	m.countsOf(p, policyKey).outcome(door, &d).n.Add(1)
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

// countsOf returns the decision counts of a policy key: through the policy's
// Slot when a compiled policy decided, else from byKey.
func (m *Metrics) countsOf(p *policy.Policy, key string) *decisionCounts {
	var slot *policy.Slot
	if p != nil {
		slot = p.Slot()
	}
	if slot != nil {
		if dc, ok := slot.Load().(*decisionCounts); ok {
			return dc
		}
	}
	v, ok := m.byKey.Load(key)
	if !ok {
		v, _ = m.byKey.LoadOrStore(key, &decisionCounts{key: key})
	}
	dc := v.(*decisionCounts)
	if slot != nil {
		slot.Store(dc)
	}
	return dc
}

// outcome returns the count of one door, status and reason, adding it on
// first use.
func (dc *decisionCounts) outcome(door Kind, d *policy.Decision) *outcomeCount {
	if o := dc.find(door, d); o != nil {
		return o
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if o := dc.find(door, d); o != nil {
		return o
	}
	o := &outcomeCount{door: door, result: d.Result(), reason: d.Reason}
	var list []*outcomeCount
	if old := dc.list.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, o)
	dc.list.Store(&list)
	return o
}

func (dc *decisionCounts) find(door Kind, d *policy.Decision) *outcomeCount {
	list := dc.list.Load()
	if list == nil {
		return nil
	}
	result := d.Result()
	for _, o := range *list {
		if o.door == door && o.result == result && o.reason == d.Reason {
			return o
		}
	}
	return nil
}

// decisionsCollector exports the decision counts as jwtgate_decisions_total.
type decisionsCollector struct{ m *Metrics }

func (c decisionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.decisions }

func (c decisionsCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.byKey.Range(func(_, v any) bool {
		dc := v.(*decisionCounts)
		if list := dc.list.Load(); list != nil {
			for _, o := range *list {
				ch <- prometheus.MustNewConstMetric(c.m.decisions, prometheus.CounterValue, float64(o.n.Load()),
					o.door.String(), dc.key, o.result, string(o.reason))
			}
		}
		return true
	})
}

// Decisions is the decisions count of one door, policy, result and reason,
// as a collector of that one series (for tests and the doors' own checks).
func (m *Metrics) Decisions(door Kind, policyKey, result string, reason policy.Reason) prometheus.Collector {
	return seriesCollector{m: m, door: door, key: policyKey, result: result, reason: reason}
}

type seriesCollector struct {
	m      *Metrics
	door   Kind
	key    string
	result string
	reason policy.Reason
}

func (c seriesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.decisions }

func (c seriesCollector) Collect(ch chan<- prometheus.Metric) {
	var n uint64
	if v, ok := c.m.byKey.Load(c.key); ok {
		if list := v.(*decisionCounts).list.Load(); list != nil {
			for _, o := range *list {
				if o.door == c.door && o.reason == c.reason && o.result == c.result {
					n += o.n.Load()
				}
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.m.decisions, prometheus.CounterValue, float64(n), c.door.String(), c.key, c.result, string(c.reason))
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
