package controller

import (
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/resource"
)

// kind is what the reconciler needs to know about one Sluice kind.
type kind struct {
	name   string
	object func() client.Object
	list   func() client.ObjectList
	items  func(client.ObjectList) []client.Object
	add    func(*resource.Set, client.Object)
	status func(client.Object) *v1alpha1.ResourceStatus
	// validate runs the kind's own defaults and validation on a copy.
	validate func(client.Object) field.ErrorList
}

// kinds are the Sluice kinds, in the order they are listed and reported.
var kinds = []kind{
	{
		name:   "Backend",
		object: func() client.Object { return &v1alpha1.Backend{} },
		list:   func() client.ObjectList { return &v1alpha1.BackendList{} },
		items: func(l client.ObjectList) []client.Object {
			return ptrs(l.(*v1alpha1.BackendList).Items)
		},
		add:    func(s *resource.Set, o client.Object) { s.Backends = append(s.Backends, o.(*v1alpha1.Backend)) },
		status: func(o client.Object) *v1alpha1.ResourceStatus { return &o.(*v1alpha1.Backend).Status },
		validate: func(o client.Object) field.ErrorList {
			c := o.(*v1alpha1.Backend).DeepCopy()
			c.Default()
			return c.Validate()
		},
	},
	{
		name:   "ModelRoute",
		object: func() client.Object { return &v1alpha1.ModelRoute{} },
		list:   func() client.ObjectList { return &v1alpha1.ModelRouteList{} },
		items: func(l client.ObjectList) []client.Object {
			return ptrs(l.(*v1alpha1.ModelRouteList).Items)
		},
		add: func(s *resource.Set, o client.Object) {
			s.ModelRoutes = append(s.ModelRoutes, o.(*v1alpha1.ModelRoute))
		},
		status: func(o client.Object) *v1alpha1.ResourceStatus { return &o.(*v1alpha1.ModelRoute).Status.ResourceStatus },
		validate: func(o client.Object) field.ErrorList {
			c := o.(*v1alpha1.ModelRoute).DeepCopy()
			c.Default()
			return c.Validate()
		},
	},
	{
		name:   "APIKey",
		object: func() client.Object { return &v1alpha1.APIKey{} },
		list:   func() client.ObjectList { return &v1alpha1.APIKeyList{} },
		items: func(l client.ObjectList) []client.Object {
			return ptrs(l.(*v1alpha1.APIKeyList).Items)
		},
		add:    func(s *resource.Set, o client.Object) { s.APIKeys = append(s.APIKeys, o.(*v1alpha1.APIKey)) },
		status: func(o client.Object) *v1alpha1.ResourceStatus { return &o.(*v1alpha1.APIKey).Status },
		validate: func(o client.Object) field.ErrorList {
			c := o.(*v1alpha1.APIKey).DeepCopy()
			c.Default()
			return c.Validate()
		},
	},
	{
		name:   "AccessPolicy",
		object: func() client.Object { return &v1alpha1.AccessPolicy{} },
		list:   func() client.ObjectList { return &v1alpha1.AccessPolicyList{} },
		items: func(l client.ObjectList) []client.Object {
			return ptrs(l.(*v1alpha1.AccessPolicyList).Items)
		},
		add: func(s *resource.Set, o client.Object) {
			s.AccessPolicies = append(s.AccessPolicies, o.(*v1alpha1.AccessPolicy))
		},
		status: func(o client.Object) *v1alpha1.ResourceStatus { return &o.(*v1alpha1.AccessPolicy).Status },
		validate: func(o client.Object) field.ErrorList {
			c := o.(*v1alpha1.AccessPolicy).DeepCopy()
			c.Default()
			return c.Validate()
		},
	},
	{
		name:   "RateLimitPolicy",
		object: func() client.Object { return &v1alpha1.RateLimitPolicy{} },
		list:   func() client.ObjectList { return &v1alpha1.RateLimitPolicyList{} },
		items: func(l client.ObjectList) []client.Object {
			return ptrs(l.(*v1alpha1.RateLimitPolicyList).Items)
		},
		add: func(s *resource.Set, o client.Object) {
			s.RateLimitPolicies = append(s.RateLimitPolicies, o.(*v1alpha1.RateLimitPolicy))
		},
		status: func(o client.Object) *v1alpha1.ResourceStatus { return &o.(*v1alpha1.RateLimitPolicy).Status },
		validate: func(o client.Object) field.ErrorList {
			c := o.(*v1alpha1.RateLimitPolicy).DeepCopy()
			c.Default()
			return c.Validate()
		},
	},
	{
		name:   "PayloadProcessor",
		object: func() client.Object { return &v1alpha1.PayloadProcessor{} },
		list:   func() client.ObjectList { return &v1alpha1.PayloadProcessorList{} },
		items: func(l client.ObjectList) []client.Object {
			return ptrs(l.(*v1alpha1.PayloadProcessorList).Items)
		},
		add: func(s *resource.Set, o client.Object) {
			s.PayloadProcessors = append(s.PayloadProcessors, o.(*v1alpha1.PayloadProcessor))
		},
		status: func(o client.Object) *v1alpha1.ResourceStatus { return &o.(*v1alpha1.PayloadProcessor).Status },
		validate: func(o client.Object) field.ErrorList {
			c := o.(*v1alpha1.PayloadProcessor).DeepCopy()
			c.Default()
			return c.Validate()
		},
	},
	{
		name:   "CachePolicy",
		object: func() client.Object { return &v1alpha1.CachePolicy{} },
		list:   func() client.ObjectList { return &v1alpha1.CachePolicyList{} },
		items: func(l client.ObjectList) []client.Object {
			return ptrs(l.(*v1alpha1.CachePolicyList).Items)
		},
		add: func(s *resource.Set, o client.Object) {
			s.CachePolicies = append(s.CachePolicies, o.(*v1alpha1.CachePolicy))
		},
		status: func(o client.Object) *v1alpha1.ResourceStatus { return &o.(*v1alpha1.CachePolicy).Status },
		validate: func(o client.Object) field.ErrorList {
			c := o.(*v1alpha1.CachePolicy).DeepCopy()
			c.Default()
			return c.Validate()
		},
	},
	{
		name:   "MCPRoute",
		object: func() client.Object { return &v1alpha1.MCPRoute{} },
		list:   func() client.ObjectList { return &v1alpha1.MCPRouteList{} },
		items: func(l client.ObjectList) []client.Object {
			return ptrs(l.(*v1alpha1.MCPRouteList).Items)
		},
		add: func(s *resource.Set, o client.Object) {
			s.MCPRoutes = append(s.MCPRoutes, o.(*v1alpha1.MCPRoute))
		},
		status: func(o client.Object) *v1alpha1.ResourceStatus { return &o.(*v1alpha1.MCPRoute).Status },
		validate: func(o client.Object) field.ErrorList {
			c := o.(*v1alpha1.MCPRoute).DeepCopy()
			c.Default()
			return c.Validate()
		},
	},
}

// ptrs returns pointers to the items of a list, as client.Objects.
func ptrs[T any, PT interface {
	*T
	client.Object
}](items []T) []client.Object {
	out := make([]client.Object, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	return out
}
