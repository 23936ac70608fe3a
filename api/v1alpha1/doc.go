// Package v1alpha1 holds Sluice's resource types (API group sluice.dev, version v1alpha1):
// what an operator writes in YAML files or as Kubernetes objects. Each kind carries its
// defaults and its own validation; checks that need more than one resource (references,
// conflicts between routes) belong to the translator, not here.
//
// The types use the Kubernetes API machinery so that CRDs can be generated from them:
// `go generate ./api/...` writes zz_generated.deepcopy.go and, from the kubebuilder
// markers on the types, one CRD per kind into deploy/helm/sluice/crds
// (internal/crdtest fails when either is stale, and validates the examples against
// the CRDs' schemas and CEL rules).
//
//go:generate go tool controller-gen object:headerFile=../../hack/boilerplate.go.txt crd:allowDangerousTypes=true paths=./... output:crd:artifacts:config=../../deploy/helm/sluice/crds

// +kubebuilder:object:generate=true
// +groupName=sluice.dev
package v1alpha1

// Group and Version name this API.
const (
	Group      = "sluice.dev"
	Version    = "v1alpha1"
	APIVersion = Group + "/" + Version
)

// DefaultNamespace is where a resource without metadata.namespace lives.
const DefaultNamespace = "default"
