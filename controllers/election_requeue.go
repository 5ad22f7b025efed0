package controllers

import (
	"context"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

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

var _ manager.LeaderElectionRunnable = (*electionRequeue)(nil)
