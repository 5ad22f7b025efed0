// Package v1alpha1 holds the AuthPolicy API of jwtgate (group jwtgate.dev).
//
// +kubebuilder:object:generate=true
// +groupName=jwtgate.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the AuthPolicy API.
	GroupVersion = schema.GroupVersion{Group: "jwtgate.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the API types to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
