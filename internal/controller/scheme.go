package controller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
)

// GroupVersion is sluice.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: v1alpha1.Group, Version: v1alpha1.Version}

var schemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&v1alpha1.Backend{}, &v1alpha1.BackendList{},
		&v1alpha1.ModelRoute{}, &v1alpha1.ModelRouteList{},
		&v1alpha1.APIKey{}, &v1alpha1.APIKeyList{},
		&v1alpha1.AccessPolicy{}, &v1alpha1.AccessPolicyList{},
		&v1alpha1.RateLimitPolicy{}, &v1alpha1.RateLimitPolicyList{},
		&v1alpha1.PayloadProcessor{}, &v1alpha1.PayloadProcessorList{},
		&v1alpha1.CachePolicy{}, &v1alpha1.CachePolicyList{},
		&v1alpha1.MCPRoute{}, &v1alpha1.MCPRouteList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
})

// AddToScheme registers the sluice.dev/v1alpha1 kinds.
var AddToScheme = schemeBuilder.AddToScheme

// NewScheme returns a scheme with the Sluice kinds, the core/v1 kinds (Secrets, Events)
// and the Gateway API's v1 kinds.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, AddToScheme, gatewayv1.Install} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}
