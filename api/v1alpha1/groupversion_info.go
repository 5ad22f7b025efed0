// Package v1alpha1 holds the AuthPolicy API of jwtgate (group jwtgate.dev).
//
// It imports apimachinery only (no controller-runtime, no client-go and
// nothing else of jwtgate), so that the decision core can depend on it.
//
// +kubebuilder:object:generate=true
// +groupName=jwtgate.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the AuthPolicy API.
	GroupVersion = schema.GroupVersion{Group: "jwtgate.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the API types to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the API types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers AuthPolicy and AuthPolicyList under GroupVersion.
func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &AuthPolicy{}, &AuthPolicyList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
