package controllers

import (
	"context"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

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
