package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// SecretRefIndex indexes AuthPolicies by the names of the Secrets they reference
// (all in the policy's own namespace).
const SecretRefIndex = "jwtgate.dev/secretRefs" //nolint:gosec // G101: an index name, not a credential

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
	if r.Providers != nil {
		// A provider that loads (or fails, or recovers) requeues its policies
		// at once, rather than at their next backoff.
		r.Providers.Subscribe(r.providerChanged)
	}

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
