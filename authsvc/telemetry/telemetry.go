// Package telemetry holds the Prometheus metrics that several parts of jwtgate
// feed: JWKS fetches and key-set age (authsvc/keys), policy compile errors and
// readiness (the controller and `jwtgate serve`), and API-server contact (the
// controller). They are registered on controller-runtime's metrics.Registry,
// which both `jwtgate serve` and `jwtgate controller` expose on
// --metrics-bind-address.
//
// Cardinality is bounded: labels are a policy (namespace/name), a fixed set of
// results and reasons, and the host of a jwksURL; never a user, a path, a token
// or a whole URL (which may carry credentials in its query).
package telemetry

import (
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a JWKS fetch, the values of jwtgate_jwks_fetches_total's result label.
const (
	FetchOK        = "ok"          // keys loaded (changed or not)
	FetchTimeout   = "timeout"     // no answer within the client timeout
	FetchNetwork   = "network"     // connection refused, DNS, TLS, reset
	FetchHTTPError = "http_status" // answered, but not 200
	FetchTooLarge  = "too_large"   // body over the size cap
	FetchInvalid   = "invalid"     // body is not a JWKS, or holds no usable key
)

var (
	jwksFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_jwks_fetches_total",
		Help: "Fetches of jwksURL key sets by result (ok, timeout, network, http_status, too_large, invalid). A failed fetch keeps the last good keys.",
	}, []string{"result"})

	compileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_policy_compile_errors_total",
		Help: "Versions of a policy (or of the Secrets it references) that did not compile, by policy and reason (the status condition reason). The last good version keeps serving.",
	}, []string{"policy", "reason"})

	policyReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jwtgate_policy_ready",
		Help: "1 when the policy's newest version is serving (Ready=True), 0 when it is not (see its status).",
	}, []string{"policy"})

	apiLastContact = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "jwtgate_apiserver_last_contact_timestamp_seconds",
		Help: "Unix time of the last successful call to the kube-apiserver by the controller's probe. Decisions serve the snapshot of that time while the API server is unreachable: alert on time() - this.",
	})

	apiProbes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "jwtgate_apiserver_probes_total",
		Help: "The controller's periodic kube-apiserver probes by result (ok, error).",
	}, []string{"result"})

	jwksAge = &ageCollector{
		desc: prometheus.NewDesc("jwtgate_jwks_age_seconds",
			"Age of the newest successfully fetched key set of the jwksURLs on a host (the oldest such age when several URLs share the host). Absent until a first fetch succeeds.",
			[]string{"host"}, nil),
		unloaded: prometheus.NewDesc("jwtgate_jwks_unloaded",
			"jwksURLs in use whose keys have never loaded: tokens they would verify are refused.",
			nil, nil),
		sources: map[*sourceEntry]struct{}{},
	}
)

func init() {
	ctrlmetrics.Registry.MustRegister(jwksFetches, compileErrors, policyReady, apiLastContact, apiProbes, jwksAge)
	for _, r := range []string{FetchOK, FetchTimeout, FetchNetwork, FetchHTTPError, FetchTooLarge, FetchInvalid} {
		jwksFetches.WithLabelValues(r)
	}
	apiProbes.WithLabelValues("ok")
	apiProbes.WithLabelValues("error")
}

// JWKSFetch counts one fetch of a jwksURL with its result (one of the Fetch
// constants).
func JWKSFetch(result string) { jwksFetches.WithLabelValues(result).Inc() }

// CompileError counts a policy version that did not compile. policy is
// "namespace/name"; reason is the Ready condition's reason (e.g. KeyInvalid,
// SecretNotFound, UsersInvalid), from policy.CompileError.Reason().
func CompileError(policy, reason string) {
	if reason == "" {
		reason = "Unknown"
	}
	compileErrors.WithLabelValues(policy, reason).Inc()
}

// PolicyReady sets jwtgate_policy_ready for a policy.
func PolicyReady(policy string, ready bool) {
	v := 0.0
	if ready {
		v = 1
	}
	policyReady.WithLabelValues(policy).Set(v)
}

// PolicyDeleted drops a deleted policy's series.
func PolicyDeleted(policy string) {
	policyReady.DeleteLabelValues(policy)
	compileErrors.DeletePartialMatch(prometheus.Labels{"policy": policy})
}

// APIServerContact records a probe of the API server: on success, its time.
func APIServerContact(ok bool, at time.Time) {
	if ok {
		apiProbes.WithLabelValues("ok").Inc()
		apiLastContact.Set(float64(at.UnixNano()) / 1e9)
		return
	}
	apiProbes.WithLabelValues("error").Inc()
}

// KeySetSource is a key set fetched from a URL: keys.Remote.
type KeySetSource interface {
	URL() string
	FetchedAt() time.Time
}

type sourceEntry struct {
	src  KeySetSource
	host string
}

type ageCollector struct {
	desc, unloaded *prometheus.Desc
	mu             sync.Mutex
	sources        map[*sourceEntry]struct{}
}

// TrackKeySet adds a fetched key set to jwtgate_jwks_age_seconds until the
// returned function is called.
func TrackKeySet(src KeySetSource) (untrack func()) {
	host := "invalid"
	if u, err := url.Parse(src.URL()); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	e := &sourceEntry{src: src, host: host}
	c := jwksAge
	c.mu.Lock()
	c.sources[e] = struct{}{}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.sources, e)
		c.mu.Unlock()
	}
}

func (c *ageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.unloaded
}

func (c *ageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	entries := make([]*sourceEntry, 0, len(c.sources))
	for e := range c.sources {
		entries = append(entries, e)
	}
	c.mu.Unlock()
	now := time.Now()
	ages := map[string]float64{}
	unloaded := 0
	for _, e := range entries {
		at := e.src.FetchedAt()
		if at.IsZero() {
			unloaded++
			continue
		}
		age := now.Sub(at).Seconds()
		if old, ok := ages[e.host]; !ok || age > old {
			ages[e.host] = age
		}
	}
	for host, age := range ages {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, age, host)
	}
	ch <- prometheus.MustNewConstMetric(c.unloaded, prometheus.GaugeValue, float64(unloaded))
}
