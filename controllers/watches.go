package controllers

import (
	"context"
	"slices"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/jwtgate/jwtgate/api/v1alpha1"
)

// The watches of SetupWithManager and the Secret index they map through.

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
		names = append(names, l.SigningKeySecretRef.Name)
		if l.UsersSecretRef != nil {
			names = append(names, l.UsersSecretRef.Name)
		}
		if o := l.OIDC; o != nil && o.ClientSecretRef != nil {
			names = append(names, o.ClientSecretRef.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
