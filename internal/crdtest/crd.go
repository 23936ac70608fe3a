// Package crdtest checks the CustomResourceDefinitions generated from api/v1alpha1 (in
// deploy/helm/sluice/crds): that they are up to date with the Go types, that the API
// server would accept them (structural schemas, CEL rules that compile within the cost
// budget), and that they accept every example and reject invalid resources, offline,
// with the API server's own schema and CEL validators.
package crdtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

// CRD is one loaded CustomResourceDefinition with the validators the API server would
// build for its (single) version.
type CRD struct {
	File     string
	V1       *apiextensionsv1.CustomResourceDefinition
	Internal *apiextensions.CustomResourceDefinition

	structural *schema.Structural
	schema     apiservervalidation.SchemaValidator
	cel        *cel.Validator // nil when the schema has no x-kubernetes-validations
}

// LoadDir reads every *.yaml file of dir as a CRD, keyed by kind.
func LoadDir(dir string) (map[string]*CRD, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRDs in %s", dir)
	}
	out := map[string]*CRD{}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			return nil, err
		}
		kind := c.V1.Spec.Names.Kind
		if prev, dup := out[kind]; dup {
			return nil, fmt.Errorf("kind %s in both %s and %s", kind, prev.File, f)
		}
		out[kind] = c
	}
	return out, nil
}

// Load reads one CRD file.
func Load(file string) (*CRD, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	v1 := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, v1); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	// The API server defaults a CRD before it converts and validates it.
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(v1)
	internal := &apiextensions.CustomResourceDefinition{}
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(v1, internal, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(internal.Spec.Versions) != 1 {
		return nil, fmt.Errorf("%s: want exactly one version, have %d", file, len(internal.Spec.Versions))
	}
	ver := internal.Spec.Versions[0]
	props := internal.Spec.Validation
	if ver.Schema != nil {
		props = ver.Schema
	}
	if props == nil || props.OpenAPIV3Schema == nil {
		return nil, fmt.Errorf("%s: no openAPIV3Schema", file)
	}
	ss, err := schema.NewStructural(props.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("%s: structural schema: %w", file, err)
	}
	sv, _, err := apiservervalidation.NewSchemaValidator(props.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("%s: schema validator: %w", file, err)
	}
	return &CRD{
		File:       file,
		V1:         v1,
		Internal:   internal,
		structural: ss,
		schema:     sv,
		cel:        cel.NewValidator(ss, true, celconfig.PerCallLimit),
	}, nil
}

// ValidateDefinition runs the API server's validation of the CRD itself: names,
// versions, subresources, structural schema, and the compilation and estimated cost of
// every CEL rule.
func (c *CRD) ValidateDefinition(ctx context.Context) field.ErrorList {
	return crdvalidation.ValidateCustomResourceDefinition(ctx, c.Internal)
}

// Validate checks obj (a custom resource decoded from JSON, numbers as int64 or
// float64) the way the API server does on create: the OpenAPI schema, list-type
// invariants (sets and maps), then, if those passed, the CEL rules. Fields the schema
// does not know, which the API server would drop (prune), are reported as errors.
func (c *CRD) Validate(ctx context.Context, obj map[string]any) field.ErrorList {
	var errs field.ErrorList
	if unknown := pruning.PruneWithOptions(deepCopy(obj), c.structural, true, schema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}); len(unknown) > 0 {
		sort.Strings(unknown)
		for _, p := range unknown {
			errs = append(errs, field.Forbidden(field.NewPath(p), "unknown field (the API server would drop it)"))
		}
	}
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj, c.schema)...)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, c.structural, obj)...)
	if len(errs) > 0 || c.cel == nil {
		// The API server skips CEL when the schema already failed (types may be wrong).
		return errs
	}
	celErrs, _ := c.cel.Validate(ctx, nil, c.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...)
}

// ErrString joins errs one per line.
func ErrString(errs field.ErrorList) string {
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
