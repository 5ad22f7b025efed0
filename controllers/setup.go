package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// SecretRefIndex indexes AuthPolicies by the names of the Secrets they reference
// (all in the policy's own namespace).
const SecretRefIndex = "jwtgate.dev/secretRefs"

// ControllerName names the controller, its events' reporting controller, and its
// log lines.
const ControllerName = "authpolicy"

type policyEvent = event.TypedGenericEvent[*v1alpha1.AuthPolicy]

// SetupWithManager registers the reconciler, its index and its watches.
//
// Secrets: the manager must cache Secrets as metadata only (this function watches
// them with WatchesMetadata, and cmd/jwtgate disables the typed Secret cache), and
// the reconciler reads the few Secrets a policy references straight from the API
// server. The trade-off, against a cache limited by a label selector:
//   - metadata only: the process never holds the data of Secrets it does not use
//     (ServiceAccount tokens, TLS keys, Helm releases), and users label nothing: a
//     Secret is found by the name the policy gives. It costs one GET per referenced
//     Secret per reconcile, and reconciles are rare (policy or Secret changes), and
//     the metadata of every Secret in the watched namespaces in memory (small: the
//     cache strips managedFields).
//   - label selector: no GETs, but every referenced Secret must carry the label,
//     and one that lacks it looks "not found" with nothing to say why: a confusing
//     failure for the person who made the Secret, on the path that rotates keys.
//
// A Secret change reaches decisions in one watch event plus one reconcile: the
// metadata watch sees the new resourceVersion, the index maps the Secret to the
// policies that reference it, and the reconcile re-reads and republishes.
func (r *AuthPolicyReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.AuthPolicy{}, SecretRefIndex, func(o client.Object) []string {
		return referencedSecrets(o.(*v1alpha1.AuthPolicy))
	}); err != nil {
		return fmt.Errorf("indexing AuthPolicies by Secret: %w", err)
	}
	r.retries = map[string]int{}
	r.announced = map[string]string{}
	r.requeue = make(chan policyEvent, 256)

	// Reconcile every policy each time this replica starts leading, so that
	// status computed while another replica led (or while no one could write:
	// an API-server outage), and dropped here, gets written.
	if n, ok := r.Leader.(ElectionNotifier); ok {
		if err := mgr.Add(&electionRequeue{r: r, elections: n.Elections(), cache: mgr.GetCache()}); err != nil {
			return err
		}
	}
	if err := mgr.Add(&readinessTracker{r: r, cache: mgr.GetCache()}); err != nil {
		return err
	}

	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(&v1alpha1.AuthPolicy{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, deletionPredicate()))).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.policiesForSecret),
			builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		WatchesRawSource(source.Channel(r.requeue, &handler.TypedEnqueueRequestForObject[*v1alpha1.AuthPolicy]{})).
		WithOptions(controller.Options{
			// Every replica feeds its own decision snapshot: the reconciler runs
			// without the lease, and patchStatus checks leadership instead.
			NeedLeaderElection:      ptr.To(false),
			MaxConcurrentReconciles: 2,
		}).
		Complete(r)
}

// CacheOptions limits the manager's cache to namespaces (all when empty) and
// strips managedFields from what it keeps.
func CacheOptions(namespaces []string) cache.Options {
	o := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if len(namespaces) > 0 {
		o.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return o
}

// ClientOptions keeps Secrets out of the manager client's cache: a typed Get of a
// Secret through it reads the API server instead of starting an informer that
// would hold every Secret's data.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}}
}

// deletionPredicate passes updates that start a deletion (a deletionTimestamp
// does not change the generation), so a policy stops at once.
func deletionPredicate() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectNew.GetDeletionTimestamp() != nil && e.ObjectOld.GetDeletionTimestamp() == nil
	}}
}

// policiesForSecret maps a Secret to the policies of its namespace that reference it.
func (r *AuthPolicyReconciler) policiesForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1alpha1.AuthPolicyList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{SecretRefIndex: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing the AuthPolicies that reference a Secret", "secret", o.GetNamespace()+"/"+o.GetName())
		return nil
	}
	out := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		out[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return out
}

// referencedSecrets lists the names of every Secret ap references, once each.
func referencedSecrets(ap *v1alpha1.AuthPolicy) []string {
	var names []string
	if j := ap.Spec.JWT; j != nil {
		for _, k := range j.Keys {
			if k.SecretRef != nil {
				names = append(names, k.SecretRef.Name)
			}
		}
	}
	if ap.Spec.APIKeys != nil {
		names = append(names, ap.Spec.APIKeys.SecretRef.Name)
	}
	if l := ap.Spec.Login; l != nil {
		names = append(names, l.UsersSecretRef.Name, l.SigningKeySecretRef.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// requeueHostNeighbours reconciles the other policies that claim any of hosts:
// when a policy takes or frees a host, their HostConflict may change.
func (r *AuthPolicyReconciler) requeueHostNeighbours(ctx context.Context, key string, hosts []string) {
	if len(hosts) == 0 || r.requeue == nil {
		return
	}
	for _, p := range r.Store.Load().Policies() {
		if p.Key == key || !slices.ContainsFunc(p.Hosts, func(h string) bool { return slices.Contains(hosts, h) }) {
			continue
		}
		r.enqueue(ctx, p.Namespace, p.Name)
	}
}

func (r *AuthPolicyReconciler) enqueue(ctx context.Context, namespace, name string) {
	ev := policyEvent{Object: &v1alpha1.AuthPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}
	select {
	case r.requeue <- ev:
	case <-ctx.Done():
	}
}

// electionRequeue reconciles every policy each time this replica starts leading.
type electionRequeue struct {
	r         *AuthPolicyReconciler
	elections <-chan struct{}
	cache     interface {
		client.Reader
		WaitForCacheSync(context.Context) bool
	}
}

func (e *electionRequeue) NeedLeaderElection() bool { return false }

func (e *electionRequeue) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx)
	for {
		select {
		case <-e.elections:
		case <-ctx.Done():
			return nil
		}
		if !e.cache.WaitForCacheSync(ctx) {
			return nil
		}
		var list v1alpha1.AuthPolicyList
		if err := e.cache.List(ctx, &list); err != nil {
			// Never end the manager for this: the next reconcile of each policy
			// writes its status anyway.
			log.Error(err, "listing AuthPolicies after winning the lease")
			continue
		}
		log.Info("leading: writing status of every policy", "policies", len(list.Items))
		for i := range list.Items {
			e.r.enqueue(ctx, list.Items[i].Namespace, list.Items[i].Name)
		}
	}
}

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

var _ manager.LeaderElectionRunnable = (*electionRequeue)(nil)
