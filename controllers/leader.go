package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Defaults of LeaderElectorOptions: controller-runtime's.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

const inClusterNamespacePath = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Leader says whether this replica leads: the reconciler writes status and events
// only while Leading is true.
type Leader interface {
	Leading() bool
}

// LeaderFunc adapts a func to Leader (tests).
type LeaderFunc func() bool

func (f LeaderFunc) Leading() bool { return f() }

// ElectionNotifier is a Leader that also says when this replica starts leading:
// the channel receives (at least) once after each election won. The reconciler
// then reconciles every policy, so that status computed while it followed gets
// written.
type ElectionNotifier interface {
	Leader
	Elections() <-chan struct{}
}

// LeaderElectorOptions configure a LeaderElector.
type LeaderElectorOptions struct {
	// Namespace and Name of the Lease. Namespace empty: the pod's namespace.
	Namespace, Name string
	// Identity written into the Lease. Default: hostname + "_" + random suffix.
	Identity string
	// LeaseDuration, RenewDeadline, RetryPeriod as in client-go's
	// leaderelection; defaults DefaultLeaseDuration, DefaultRenewDeadline,
	// DefaultRetryPeriod.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Backoff is the pause before campaigning again after losing the lease.
	// Default RetryPeriod.
	Backoff time.Duration
	// Log; default ctrl.Log.WithName("leader-election").
	Log logr.Logger
}

// LeaderElector elects a leader among the replicas with a coordination.k8s.io
// Lease. It is a manager Runnable that does not need leader election itself:
// controller-runtime's own election ends the process when a renewal fails (an
// API-server outage longer than RenewDeadline), and a process that restarts
// while the API server is down never becomes ready. This one only flips
// Leading: a replica that loses the lease keeps serving decisions from its
// snapshot, stops writing status, and campaigns again until ctx ends.
type LeaderElector struct {
	o    LeaderElectorOptions
	lock *renewTrackingLock

	leading atomic.Bool

	mu   sync.Mutex
	subs []chan struct{}
}

var (
	_ manager.Runnable               = (*LeaderElector)(nil)
	_ manager.LeaderElectionRunnable = (*LeaderElector)(nil)
	_ ElectionNotifier               = (*LeaderElector)(nil)
)

// NewLeaderElector returns an elector for the Lease o names, talking to the API
// server of cfg.
func NewLeaderElector(cfg *rest.Config, o LeaderElectorOptions) (*LeaderElector, error) {
	if o.Name == "" {
		return nil, errors.New("leader election: no Lease name")
	}
	if o.Namespace == "" {
		b, err := os.ReadFile(inClusterNamespacePath)
		if err != nil {
			return nil, fmt.Errorf("leader election: no Lease namespace given and not in a cluster (%w); pass --leader-election-namespace", err)
		}
		o.Namespace = strings.TrimSpace(string(b))
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline <= 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
	if o.Backoff <= 0 {
		o.Backoff = o.RetryPeriod
	}
	if o.Log.GetSink() == nil {
		o.Log = ctrl.Log.WithName("leader-election")
	}
	if o.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("leader election identity: %w", err)
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		o.Identity = host + "_" + hex.EncodeToString(b[:])
	}

	c := rest.AddUserAgent(rest.CopyConfig(cfg), "leader-election")
	// One hung request must not use up the whole renew deadline
	// (controller-runtime's heuristic).
	c.Timeout = max(o.RenewDeadline/2, time.Second)
	client, err := coordinationv1client.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("leader election client: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: o.Namespace, Name: o.Name},
		Client:     client,
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
	}
	e := &LeaderElector{o: o}
	e.lock = &renewTrackingLock{Interface: lock, gap: o.RenewDeadline, resumed: e.resumed}
	return e, nil
}

// NeedLeaderElection: the elector runs on every replica.
func (e *LeaderElector) NeedLeaderElection() bool { return false }

// Identity is the holder identity this replica writes into the Lease.
func (e *LeaderElector) Identity() string { return e.o.Identity }

// Leading is true while this replica holds the lease: it has won an election,
// and its last successful write of the Lease is less than RenewDeadline old
// (client-go notices a failed renewal only at the end of RenewDeadline, and
// then may spend up to RenewDeadline more trying to release; the others may
// take the lease after LeaseDuration).
func (e *LeaderElector) Leading() bool {
	if !e.leading.Load() {
		return false
	}
	return time.Since(e.lock.lastWrite()) < e.o.RenewDeadline
}

// Elections returns a channel that receives once (coalesced) each time this
// replica starts leading.
func (e *LeaderElector) Elections() <-chan struct{} {
	ch := make(chan struct{}, 1)
	e.mu.Lock()
	e.subs = append(e.subs, ch)
	e.mu.Unlock()
	return ch
}

func (e *LeaderElector) notify() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ch := range e.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// resumed: a renewal succeeded after Leading had already turned false for want
// of one (client-go's own deadline counts from a later start). Status dropped
// meanwhile gets written as after an election.
func (e *LeaderElector) resumed() {
	if e.leading.Load() {
		e.o.Log.Info("lease renewed after a gap: writing status again")
		e.notify()
	}
}

// Start campaigns, leads until a renewal fails, and campaigns again, until ctx
// ends; then it releases the lease if it holds it. It returns nil: losing the
// lease is not a reason to end the process.
func (e *LeaderElector) Start(ctx context.Context) error {
	log := e.o.Log.WithValues("lease", e.o.Namespace+"/"+e.o.Name, "identity", e.o.Identity)
	ctx = klog.NewContext(ctx, log)
	for ctx.Err() == nil {
		var mu sync.Mutex
		stopped := false
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            e.lock,
			LeaseDuration:   e.o.LeaseDuration,
			RenewDeadline:   e.o.RenewDeadline,
			RetryPeriod:     e.o.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            e.o.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				// Called in a goroutine: it may run after OnStoppedLeading.
				OnStartedLeading: func(context.Context) {
					mu.Lock()
					defer mu.Unlock()
					if stopped {
						return
					}
					e.leading.Store(true)
					log.Info("leading: this replica writes status")
					e.notify()
				},
				OnStoppedLeading: func() {
					mu.Lock()
					defer mu.Unlock()
					stopped = true
					if e.leading.Swap(false) {
						log.Info("stopped leading: status writes stop, decisions go on; campaigning again")
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		le.Run(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(e.o.Backoff):
		}
	}
	return nil
}

// renewTrackingLock remembers when this replica last wrote the Lease as its
// holder, so that Leading turns false as soon as the lease may have lapsed.
type renewTrackingLock struct {
	resourcelock.Interface
	gap     time.Duration // a successful write this long after the last one calls resumed
	resumed func()
	last    atomic.Int64 // unix nanoseconds, taken before the write started
}

func (l *renewTrackingLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.track(ler, func() error { return l.Interface.Create(ctx, ler) })
}

func (l *renewTrackingLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	return l.track(ler, func() error { return l.Interface.Update(ctx, ler) })
}

func (l *renewTrackingLock) track(ler resourcelock.LeaderElectionRecord, write func() error) error {
	start := time.Now()
	err := write()
	if err == nil && ler.HolderIdentity == l.Identity() {
		prev := l.last.Swap(start.UnixNano())
		if prev != 0 && start.Sub(time.Unix(0, prev)) >= l.gap && l.resumed != nil {
			l.resumed()
		}
	}
	return err
}

func (l *renewTrackingLock) lastWrite() time.Time { return time.Unix(0, l.last.Load()) }
