package keys

import (
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// Metrics are the metrics of jwksURL key sets: fetches by result and the age
// of the newest keys per host. Labels are bounded: a fixed set of results and
// the host of a jwksURL, never a whole URL (which may carry credentials in its
// query). A nil *Metrics records nothing.
type Metrics struct {
	fetches *prometheus.CounterVec
	age     *ageCollector
}

// NewMetrics registers jwtgate_jwks_fetches_total, jwtgate_jwks_age_seconds
// and jwtgate_jwks_unloaded with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtgate_jwks_fetches_total",
			Help: "Fetches of jwksURL key sets by result (ok, timeout, network, http_status, too_large, invalid). A failed fetch keeps the last good keys.",
		}, []string{"result"}),
		age: &ageCollector{
			desc: prometheus.NewDesc("jwtgate_jwks_age_seconds",
				"Age of the newest successfully fetched key set of the jwksURLs on a host (the oldest such age when several URLs share the host). Absent until a first fetch succeeds.",
				[]string{"host"}, nil),
			unloaded: prometheus.NewDesc("jwtgate_jwks_unloaded",
				"jwksURLs in use whose keys have never loaded: tokens they would verify are refused.",
				nil, nil),
			sources: map[*sourceEntry]struct{}{},
		},
	}
	for _, r := range []string{FetchOK, FetchTimeout, FetchNetwork, FetchHTTPError, FetchTooLarge, FetchInvalid} {
		m.fetches.WithLabelValues(r)
	}
	reg.MustRegister(m.fetches, m.age)
	return m
}

// fetched counts one fetch of a jwksURL with its result (a Fetch constant).
func (m *Metrics) fetched(result string) {
	if m == nil {
		return
	}
	m.fetches.WithLabelValues(result).Inc()
}

// track adds a fetched key set to jwtgate_jwks_age_seconds until the returned
// function is called.
func (m *Metrics) track(src *Remote) (untrack func()) {
	if m == nil {
		return func() {}
	}
	host := "invalid"
	if u, err := url.Parse(src.URL()); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	e := &sourceEntry{src: src, host: host}
	c := m.age
	c.mu.Lock()
	c.sources[e] = struct{}{}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.sources, e)
		c.mu.Unlock()
	}
}

type sourceEntry struct {
	src  *Remote
	host string
}

type ageCollector struct {
	desc, unloaded *prometheus.Desc
	mu             sync.Mutex
	sources        map[*sourceEntry]struct{}
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
