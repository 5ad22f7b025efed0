// Package controllers turns AuthPolicy objects and the Secrets they reference into
// the decision service's snapshot, and reports status.
package controllers

// The controller reads policies and the Secrets they reference, writes policy status
// and events, and never creates, changes or deletes a Secret: cluster-wide create on
// Secrets would let it mint ServiceAccount tokens.
//
// +kubebuilder:rbac:groups=jwtgate.dev,resources=authpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=jwtgate.dev,resources=authpolicies/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
//
// Leader election needs a Lease in the controller's own namespace only: a
// namespaced Role, never cluster-wide. The chart renders it in the release
// namespace; "jwtgate" here is the namespace the README's Service address
// (jwtgate.jwtgate.svc.cluster.local) uses.
//
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=jwtgate
