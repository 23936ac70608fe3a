package translate

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-gateway/sluice/internal/mcp"
	"github.com/sluice-gateway/sluice/internal/resource"
)

// mcpRoutes compiles the MCPRoutes. A route without a session key keeps the key it drew
// on an earlier build, so a reload does not end its sessions.
func (b *builder) mcpRoutes(snap *Snapshot) *mcp.Set {
	routes := append(b.set.MCPRoutes[:0:0], b.set.MCPRoutes...)
	sort.Slice(routes, func(i, j int) bool {
		return resource.Ref("", routes[i].Namespace, routes[i].Name) < resource.Ref("", routes[j].Namespace, routes[j].Name)
	})
	paths := map[string]string{}
	var out []*mcp.Route
	for _, r := range routes {
		r = r.DeepCopy()
		r.Default()
		errs := r.Validate()
		ref := resource.Ref("MCPRoute", r.Namespace, r.Name)
		rt := &mcp.Route{Ref: ref, Path: r.Spec.Path, TTL: r.Spec.SessionTTL.Duration}
		for _, o := range r.Spec.AllowedOrigins {
			if o == "*" {
				rt.AnyOrigin = true
				continue
			}
			if rt.Origins == nil {
				rt.Origins = map[string]bool{}
			}
			rt.Origins[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
		}
		if other, taken := paths[r.Spec.Path]; taken {
			errs = append(errs, field.Duplicate(field.NewPath("spec", "path"), r.Spec.Path+" (already served by "+other+")"))
		}
		paths[r.Spec.Path] = ref
		for i, br := range r.Spec.BackendRefs {
			p := field.NewPath("spec", "backendRefs").Index(i)
			bref := resource.Ref("Backend", br.Namespace, br.Name)
			be, ok := snap.Backends[bref]
			switch {
			case !ok:
				if _, exists := b.set.Origins[bref]; exists {
					errs = append(errs, field.Invalid(p.Child("name"), br.Name, "Backend "+br.Namespace+"/"+br.Name+" is invalid"))
				} else {
					errs = append(errs, field.NotFound(p.Child("name"), br.Namespace+"/"+br.Name))
				}
				continue
			case !be.MCP:
				errs = append(errs, field.Invalid(p.Child("name"), br.Name, "Backend "+br.Namespace+"/"+br.Name+" does not have protocol MCP"))
				continue
			}
			s := &mcp.Server{Ref: bref, Name: br.Name, Prefix: br.ToolPrefix, URL: be.Upstream.BaseURL.String(), Upstream: be.Upstream}
			if t := br.Tools; t != nil {
				if len(t.Include) > 0 {
					s.Include = t.Include
				}
				s.Exclude = t.Exclude
			}
			rt.Servers = append(rt.Servers, s)
		}
		if k := r.Spec.SessionKeyRef; k != nil {
			ns := k.Namespace
			if ns == "" {
				ns = r.Namespace
			}
			kp := field.NewPath("spec", "sessionKeyRef")
			data, ok := b.secrets[ns+"/"+k.Name]
			switch key, has := data[k.Key]; {
			case !ok:
				errs = append(errs, field.NotFound(kp, ns+"/"+k.Name))
			case !has:
				errs = append(errs, field.Invalid(kp.Child("key"), k.Key, "Secret "+ns+"/"+k.Name+" has no such key"))
			default:
				sealer, err := mcp.NewSealer(key)
				if err != nil {
					errs = append(errs, field.Invalid(kp, ns+"/"+k.Name+"["+k.Key+"]", err.Error()))
				}
				rt.Sealer = sealer
			}
		} else {
			if b.prev != nil && b.prev.mcpSealers[ref] != nil {
				rt.Sealer = b.prev.mcpSealers[ref]
			} else {
				rt.Sealer = mcp.RandomSealer()
			}
			if snap.mcpSealers == nil {
				snap.mcpSealers = map[string]*mcp.Sealer{}
			}
			snap.mcpSealers[ref] = rt.Sealer
		}
		if len(errs) > 0 {
			b.fail("MCPRoute", r.Namespace, r.Name, errs...)
			continue
		}
		out = append(out, rt)
	}
	return mcp.NewSet(out)
}
