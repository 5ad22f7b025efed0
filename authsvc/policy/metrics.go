package policy

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the metrics of publishing policies: whether each policy's
// newest version serves (jwtgate_policy_ready) and the versions that did not
// compile (jwtgate_policy_compile_errors_total). Labels are a policy
// (namespace/name) and a fixed set of reasons. A nil *Metrics records nothing.
type Metrics struct {
	compileErrors *prometheus.CounterVec
	ready         *prometheus.GaugeVec
}

// NewMetrics registers the policy metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		compileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtgate_policy_compile_errors_total",
			Help: "Versions of a policy (or of the Secrets it references) that did not compile, by policy and reason (the status condition reason). The last good version keeps serving.",
		}, []string{"policy", "reason"}),
		ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jwtgate_policy_ready",
			Help: "1 when the policy's newest version is serving (Ready=True), 0 when it is not (see its status).",
		}, []string{"policy"}),
	}
	reg.MustRegister(m.compileErrors, m.ready)
	return m
}

// CompileError counts a policy version that did not compile. policy is
// "namespace/name"; reason is the Ready condition's reason (CompileError.Reason).
func (m *Metrics) CompileError(policy, reason string) {
	if m == nil {
		return
	}
	if reason == "" {
		reason = "Unknown"
	}
	m.compileErrors.WithLabelValues(policy, reason).Inc()
}

// Ready sets jwtgate_policy_ready for a policy.
func (m *Metrics) Ready(policy string, ready bool) {
	if m == nil {
		return
	}
	v := 0.0
	if ready {
		v = 1
	}
	m.ready.WithLabelValues(policy).Set(v)
}

// Deleted drops a deleted policy's series.
func (m *Metrics) Deleted(policy string) {
	if m == nil {
		return
	}
	m.ready.DeleteLabelValues(policy)
	m.compileErrors.DeletePartialMatch(prometheus.Labels{"policy": policy})
}
