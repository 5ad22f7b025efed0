package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Defaults of APIServerProbe.
const (
	DefaultAPIProbeInterval = 10 * time.Second
	DefaultAPIProbeTimeout  = 5 * time.Second
)

// APIServerProbe calls the kube-apiserver every Interval with a cheap request
// (GET /version, which every client may read) and records the last success in
// jwtgate_apiserver_last_contact_timestamp_seconds. While the API server is
// unreachable, each failed probe logs a warning with the age of the snapshot
// the decisions are served from; the first success after an outage logs how
// long it lasted.
//
// It is an observer only: it never changes readiness. An API-server outage
// must not take every replica out of its Service at once; decisions go on from
// the last snapshot, and the informers reconnect by themselves.
type APIServerProbe struct {
	client   rest.Interface
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	lastContact atomic.Int64 // unix nanoseconds; 0 before the first success
	failing     atomic.Bool

	contactGauge prometheus.Gauge       // nil: no metrics
	probes       *prometheus.CounterVec // by result: ok, error
}

// NewAPIServerProbe returns a probe of the API server cfg points at. interval 0
// means DefaultAPIProbeInterval. Its metrics
// (jwtgate_apiserver_last_contact_timestamp_seconds,
// jwtgate_apiserver_probes_total) are registered with reg; nil: none.
func NewAPIServerProbe(cfg *rest.Config, interval time.Duration, log *slog.Logger, reg prometheus.Registerer) (*APIServerProbe, error) {
	c := rest.CopyConfig(cfg)
	c.Timeout = DefaultAPIProbeTimeout
	// The probe reads raw bytes; the REST client still wants these.
	c.GroupVersion = &schema.GroupVersion{}
	c.NegotiatedSerializer = serializer.NewCodecFactory(runtime.NewScheme()).WithoutConversion()
	client, err := rest.UnversionedRESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("API server probe: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	if interval <= 0 {
		interval = DefaultAPIProbeInterval
	}
	p := &APIServerProbe{client: client, interval: interval, timeout: DefaultAPIProbeTimeout, log: log}
	if reg != nil {
		p.contactGauge = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "jwtgate_apiserver_last_contact_timestamp_seconds",
			Help: "Unix time of the last successful call to the kube-apiserver by the controller's probe. Decisions serve the snapshot of that time while the API server is unreachable: alert on time() - this.",
		})
		p.probes = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jwtgate_apiserver_probes_total",
			Help: "The controller's periodic kube-apiserver probes by result (ok, error).",
		}, []string{"result"})
		p.probes.WithLabelValues("ok")
		p.probes.WithLabelValues("error")
		if err := reg.Register(p.contactGauge); err != nil {
			return nil, fmt.Errorf("API server probe: %w", err)
		}
		if err := reg.Register(p.probes); err != nil {
			return nil, fmt.Errorf("API server probe: %w", err)
		}
	}
	return p, nil
}

// contact records a probe in the metrics: on success, its time.
func (p *APIServerProbe) contact(ok bool, at time.Time) {
	if p.probes == nil {
		return
	}
	if ok {
		p.probes.WithLabelValues("ok").Inc()
		p.contactGauge.Set(float64(at.UnixNano()) / 1e9)
		return
	}
	p.probes.WithLabelValues("error").Inc()
}

// NeedLeaderElection: every replica serves decisions, so every replica probes.
func (p *APIServerProbe) NeedLeaderElection() bool { return false }

// LastContact is the time of the last successful probe (zero before).
func (p *APIServerProbe) LastContact() time.Time {
	if ns := p.lastContact.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Start probes until ctx ends.
func (p *APIServerProbe) Start(ctx context.Context) error {
	started := time.Now()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.probe(ctx, started)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *APIServerProbe) probe(ctx context.Context, started time.Time) {
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	err := p.client.Get().AbsPath("/version").Do(pctx).Error()
	if ctx.Err() != nil {
		return // shutting down
	}
	now := time.Now()
	if err == nil {
		prev := p.LastContact()
		p.lastContact.Store(now.UnixNano())
		p.contact(true, now)
		if p.failing.Swap(false) {
			p.log.Info("kube-apiserver reachable again; informers resync and policies catch up",
				"outage_at_least", now.Sub(prev).Round(time.Second).String())
		}
		return
	}
	p.contact(false, now)
	p.failing.Store(true)
	last := p.LastContact()
	if last.IsZero() {
		p.log.Warn("kube-apiserver unreachable, no contact yet; decisions serve what has loaded (policies not yet loaded answer 403)",
			"since_start", now.Sub(started).Round(time.Second).String(), "error", err.Error())
		return
	}
	p.log.Warn("kube-apiserver unreachable; decisions continue from the last snapshot, readiness unchanged",
		"snapshot_age", now.Sub(last).Round(time.Second).String(),
		"snapshot_age_seconds", int64(now.Sub(last).Seconds()),
		"last_contact", last.UTC().Format(time.RFC3339), "error", err.Error())
}
