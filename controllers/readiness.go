package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// readiness tracks the first reconcile of the policies that existed when the
// caches synced: a replica is ready once it serves all of them, so that a new
// replica in a rolling update does not answer "no policy" for a moment.
type readiness struct {
	mu      sync.Mutex
	done    map[string]bool // reconciled at least once
	pending map[string]bool // listed at sync, not yet reconciled; nil before sync
	ready   atomic.Bool     // latched
}

func (rd *readiness) reconciled(key string) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.done == nil {
		rd.done = map[string]bool{}
	}
	rd.done[key] = true
	if rd.pending != nil {
		delete(rd.pending, key)
		rd.latchLocked()
	}
}

func (rd *readiness) synced(keys []string) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.pending = map[string]bool{}
	for _, k := range keys {
		if !rd.done[k] {
			rd.pending[k] = true
		}
	}
	rd.latchLocked()
}

func (rd *readiness) latchLocked() {
	if len(rd.pending) == 0 {
		rd.ready.Store(true)
		rd.done = nil // not needed any more
	}
}

type readinessTracker struct {
	r     *AuthPolicyReconciler
	cache interface {
		client.Reader
		WaitForCacheSync(context.Context) bool
	}
}

func (t *readinessTracker) NeedLeaderElection() bool { return false }

func (t *readinessTracker) Start(ctx context.Context) error {
	if !t.cache.WaitForCacheSync(ctx) {
		return nil
	}
	var list v1alpha1.AuthPolicyList
	if err := t.cache.List(ctx, &list); err != nil {
		return fmt.Errorf("listing AuthPolicies for readiness: %w", err)
	}
	keys := make([]string, len(list.Items))
	for i := range list.Items {
		keys[i] = list.Items[i].Namespace + "/" + list.Items[i].Name
	}
	t.r.ready.synced(keys)
	return nil
}

// ReadyCheck is a readyz check: it passes once the caches synced and every policy
// that existed then has been compiled (or found invalid) and published.
func (r *AuthPolicyReconciler) ReadyCheck(*http.Request) error {
	if r.ready.ready.Load() {
		return nil
	}
	return errors.New("policies not yet loaded")
}
