package policy

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the metrics of publishing policies: whether each policy's
// newest version serves as written (jwtgate_policy_ready) and the versions
// that did not compile (jwtgate_policy_compile_errors_total). The Store they
// are given to (Store.UseMetrics) reports them, the same way whichever source
// publishes. Labels are a policy (namespace/name) and a fixed set of reasons.
// A nil *Metrics records nothing.
type Metrics struct {
	compileErrors *prometheus.CounterVec
	ready         *readyCollector
}

// NewMetrics registers the policy metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		compileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtgate_policy_compile_errors_total",
			Help: "Publications of a policy version (or of the Secrets it references) that did not compile, by policy and reason (the status condition reason). The last good version keeps serving, without the keys its Secrets no longer hold.",
		}, []string{"policy", "reason"}),
		ready: &readyCollector{desc: prometheus.NewDesc("jwtgate_policy_ready",
			"1 when the policy's newest version is serving as written (it compiled, holds its hosts, its jwksURL keys loaded), 0 when it is not (see its status). An OpenID provider that has not loaded shows only in the status (Ready=False, OIDCDiscoveryFailed): the policy still serves tokens and sessions.",
			[]string{"policy"}, nil)},
	}
	reg.MustRegister(m.compileErrors, m.ready)
	return m
}

func (m *Metrics) attach(s *Store) {
	if m != nil {
		m.ready.store.Store(s)
	}
}

func (m *Metrics) compileError(policy, reason string) {
	if m == nil {
		return
	}
	if reason == "" {
		reason = "Unknown"
	}
	m.compileErrors.WithLabelValues(policy, reason).Inc()
}

func (m *Metrics) deleted(policy string) {
	if m == nil {
		return
	}
	m.compileErrors.DeletePartialMatch(prometheus.Labels{"policy": policy})
}

// readyCollector computes jwtgate_policy_ready when scraped, from the same
// outcome the status is written from, so that a jwksURL that loads later or a
// host freed by another policy shows at once.
type readyCollector struct {
	desc  *prometheus.Desc
	store atomic.Pointer[Store]
}

func (c *readyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *readyCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.store.Load()
	if s == nil {
		return
	}
	s.mu.Lock()
	ready := make(map[string]bool, len(s.states))
	for key := range s.states {
		ready[key] = s.outcomeLocked(key).Ready
	}
	s.mu.Unlock()
	for key, ok := range ready {
		v := 0.0
		if ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, key)
	}
}
