package translate

import (
	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"net/http"

	"k8s.io/apimachinery/pkg/util/validation/field"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/route"
)

// httpRoutes compiles the HTTPRoutes attached to Sluice's Gateways (cluster mode) into path
// rules: each rule's matches (path Exact or PathPrefix; the route's hostnames) send
// requests, whatever model they ask for, to the rule's sluice.dev Backends by weight. The
// request still goes through access control, rate limits and processors like any other.
func (b *builder) httpRoutes(snap *Snapshot) []route.PathRule {
	var out []route.PathRule
	for _, hr := range b.set.HTTPRoutes {
		ref := resource.Ref("HTTPRoute", hr.Namespace, hr.Name)
		var errs field.ErrorList
		var rules []route.PathRule
		hosts := make([]string, 0, len(hr.Spec.Hostnames))
		for _, h := range hr.Spec.Hostnames {
			hosts = append(hosts, string(h))
		}
		for i, rule := range hr.Spec.Rules {
			rp := field.NewPath("spec", "rules").Index(i)
			rt := &route.Route{Ref: ref}
			tier := route.Tier{}
			if len(rule.Filters) > 0 {
				errs = append(errs, field.Forbidden(rp.Child("filters"), "filters are not supported"))
			}
			for j, br := range rule.BackendRefs {
				bp := rp.Child("backendRefs").Index(j)
				if len(br.Filters) > 0 {
					errs = append(errs, field.Forbidden(bp.Child("filters"), "filters are not supported"))
				}
				if br.Group == nil || *br.Group != v1alpha1.Group || br.Kind == nil || *br.Kind != "Backend" {
					errs = append(errs, field.NotSupported(bp, "", []string{"sluice.dev/Backend"}))
					continue
				}
				ns := hr.Namespace
				if br.Namespace != nil {
					ns = string(*br.Namespace)
				}
				be, ok := snap.Backends[resource.Ref("Backend", ns, string(br.Name))]
				if !ok {
					errs = append(errs, field.NotFound(bp.Child("name"), ns+"/"+string(br.Name)))
					continue
				}
				if be.MCP {
					errs = append(errs, field.Invalid(bp.Child("name"), string(br.Name), "Backend "+ns+"/"+string(br.Name)+" is an MCP server: an MCPRoute fronts it"))
					continue
				}
				w := 1
				if br.Weight != nil {
					w = int(*br.Weight)
				}
				tier.Refs = append(tier.Refs, route.Ref{Backend: be, Weight: w})
			}
			rt.Tiers = []route.Tier{tier}
			matches := rule.Matches
			if len(matches) == 0 {
				matches = []gatewayv1.HTTPRouteMatch{{}}
			}
			for k, m := range matches {
				pr := route.PathRule{Hosts: hosts, Path: "/", Route: rt}
				if m.Path != nil {
					if m.Path.Value != nil {
						pr.Path = *m.Path.Value
					}
					if m.Path.Type != nil {
						switch *m.Path.Type {
						case gatewayv1.PathMatchExact:
							pr.Exact = true
						case gatewayv1.PathMatchPathPrefix:
						default:
							errs = append(errs, field.NotSupported(rp.Child("matches").Index(k).Child("path", "type"), *m.Path.Type, []string{"Exact", "PathPrefix"}))
						}
					}
				}
				if m.Method != nil {
					pr.Method = string(*m.Method)
				}
				for h, hm := range m.Headers {
					if hm.Type != nil && *hm.Type != gatewayv1.HeaderMatchExact {
						errs = append(errs, field.NotSupported(rp.Child("matches").Index(k).Child("headers").Index(h).Child("type"), *hm.Type, []string{"Exact"}))
						continue
					}
					pr.Headers = append(pr.Headers, route.HeaderMatch{Name: http.CanonicalHeaderKey(string(hm.Name)), Value: hm.Value})
				}
				if len(m.QueryParams) > 0 {
					errs = append(errs, field.Forbidden(rp.Child("matches").Index(k).Child("queryParams"), "query matches are not supported"))
				}
				rules = append(rules, pr)
			}
		}
		if len(errs) > 0 {
			b.fail("HTTPRoute", hr.Namespace, hr.Name, errs...)
			continue
		}
		out = append(out, rules...)
	}
	return out
}
