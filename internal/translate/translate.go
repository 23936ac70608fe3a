// Package translate compiles a resource set into the runtime Snapshot the data path reads:
// defaults applied, every resource validated, references resolved, routing tables and
// upstream transports built. It is pure in the sense that matters: resources in, a Snapshot
// or the complete list of errors out; nothing half-applies. It never serves traffic.
package translate

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/auth"
	"github.com/sluice-gateway/sluice/internal/cache"
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/limits"
	"github.com/sluice-gateway/sluice/internal/mcp"
	"github.com/sluice-gateway/sluice/internal/payload"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/route"
)

// Snapshot is everything the data path needs, compiled. Immutable once built.
type Snapshot struct {
	Routes   *route.Table
	Backends map[string]*route.Backend // by Ref
	// Models are the exact model names clients may ask for, sorted.
	Models []string
	// Policy is the compiled access policy; nil lets every caller in.
	Policy *auth.Policy
	// Limits are the compiled rate-limit policies.
	Limits *limits.Set
	stores *stores
	// Payload is the compiled PayloadProcessors.
	Payload *payload.Set
	payload *payloadState
	// Cache is the compiled CachePolicies.
	Cache *cache.Set
	// MCP is the compiled MCPRoutes.
	MCP   *mcp.Set
	cache *cacheState
	// Summary counts what was loaded, for logs and `sluice validate`.
	Summary Summary
	// Source is the resource set the snapshot was built from (the admin API lists it,
	// without Secret values). Read-only.
	Source *resource.Set

	fingerprints map[string]string      // Backend ref → what its Upstream was built from
	mcpSealers   map[string]*mcp.Sealer // MCPRoute ref → the key it drew (routes without sessionKeyRef)
}

// Summary counts a snapshot's resources.
type Summary struct {
	Backends, ModelRoutes, Secrets, Models, APIKeys, AccessPolicies, PayloadProcessors, MCPRoutes int
}

func (s Summary) String() string {
	out := fmt.Sprintf("%d backends, %d model routes, %d secrets, %d models", s.Backends, s.ModelRoutes, s.Secrets, s.Models)
	if s.AccessPolicies > 0 {
		out += fmt.Sprintf(", %d access policy, %d API keys", s.AccessPolicies, s.APIKeys)
	}
	if s.PayloadProcessors > 0 {
		out += fmt.Sprintf(", %d payload processors", s.PayloadProcessors)
	}
	if s.MCPRoutes > 0 {
		out += fmt.Sprintf(", %d MCP routes", s.MCPRoutes)
	}
	return out
}

// Error is one problem, named by resource and field path.
type Error struct {
	Ref    string // Kind/namespace/name
	Source string // file#doc, when known
	Field  string
	Msg    string

	origin resource.Source // for ordering
}

func (e Error) String() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	b.WriteString(e.Ref)
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem of a resource set.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.String()
	}
	return strings.Join(lines, "\n")
}

// Build compiles set. prev, when not nil, is the running snapshot: Backends whose
// configuration did not change keep their Upstream (and so their connection pools).
func Build(set *resource.Set, prev *Snapshot) (*Snapshot, error) {
	b := builder{set: set, prev: prev, secrets: map[string]map[string][]byte{}}
	snap := b.build()
	if len(b.errs) > 0 {
		sort.SliceStable(b.errs, func(i, j int) bool {
			a, c := b.errs[i].origin, b.errs[j].origin
			if a.File != c.File {
				return a.File < c.File
			}
			return a.Doc < c.Doc
		})
		return nil, b.errs
	}
	return snap, nil
}

type builder struct {
	log     *slog.Logger
	set     *resource.Set
	prev    *Snapshot
	secrets map[string]map[string][]byte
	errs    Errors
}

func (b *builder) fail(kind, ns, name string, errs ...*field.Error) {
	ref := resource.Ref(kind, ns, name)
	origin, known := b.set.Origins[ref]
	src := ""
	if known {
		src = origin.String()
	}
	for _, e := range errs {
		b.errs = append(b.errs, Error{Ref: ref, Source: src, Field: e.Field, Msg: e.ErrorBody(), origin: origin})
	}
}

func (b *builder) build() *Snapshot {
	snap := &Snapshot{Backends: map[string]*route.Backend{}, fingerprints: map[string]string{}, Source: b.set}
	for _, s := range b.set.Secrets {
		ns := s.Namespace
		if ns == "" {
			ns = v1alpha1.DefaultNamespace
		}
		b.secrets[ns+"/"+s.Name] = s.Data
	}
	// Backends first: routes refer to them.
	routedModels := map[string][]string{}
	for _, r := range b.set.ModelRoutes {
		for _, ref := range r.Spec.BackendRefs {
			ns := ref.Namespace
			if ns == "" {
				ns = orDefault(r.Namespace)
			}
			key := resource.Ref("Backend", ns, ref.Name)
			for _, m := range r.Spec.Models {
				if !route.IsGlob(m) {
					routedModels[key] = append(routedModels[key], m)
				}
			}
		}
	}
	for _, be := range b.set.Backends {
		be = be.DeepCopy()
		be.Default()
		if errs := be.Validate(); len(errs) > 0 {
			b.fail("Backend", be.Namespace, be.Name, errs...)
			continue
		}
		ref := resource.Ref("Backend", be.Namespace, be.Name)
		rb, fp, errs := b.backend(be, ref, routedModels[ref])
		if len(errs) > 0 {
			b.fail("Backend", be.Namespace, be.Name, errs...)
			continue
		}
		snap.Backends[ref] = rb
		snap.fingerprints[ref] = fp
	}

	exact := map[string]*route.Route{}
	globs := map[string]*route.Route{}
	owner := map[string]string{} // model or glob → route ref that claimed it
	routes := slices.Clone(b.set.ModelRoutes)
	sort.Slice(routes, func(i, j int) bool {
		return resource.Ref("", routes[i].Namespace, routes[i].Name) < resource.Ref("", routes[j].Namespace, routes[j].Name)
	})
	for _, mr := range routes {
		mr = mr.DeepCopy()
		mr.Default()
		errs := mr.Validate()
		ref := resource.Ref("ModelRoute", mr.Namespace, mr.Name)
		rt := &route.Route{Ref: ref}
		if t := mr.Spec.Timeouts; t != nil {
			if t.Request != nil {
				rt.RequestTimeout = t.Request.Duration
			}
			if t.FirstToken != nil {
				rt.FirstTokenTimeout = t.FirstToken.Duration
			}
		}
		if rp := mr.Spec.Retry; rp != nil {
			rt.Retry = &route.Retry{Attempts: int(rp.Attempts), Base: rp.Backoff.Base.Duration, Max: rp.Backoff.Max.Duration}
			for _, on := range rp.RetryOn {
				switch on {
				case v1alpha1.RetryOn5xx:
					rt.Retry.On5xx = true
				case v1alpha1.RetryOn429:
					rt.Retry.On429 = true
				case v1alpha1.RetryOnConnectFailure:
					rt.Retry.OnConnect = true
				case v1alpha1.RetryOnTimeout:
					rt.Retry.OnTimeout = true
				}
			}
		}
		if len(mr.Spec.Regions) > 0 {
			rt.Regions = map[string]bool{}
			for _, reg := range mr.Spec.Regions {
				rt.Regions[reg] = true
			}
		}
		tiers := map[int32]*route.Tier{}
		for i, r := range mr.Spec.BackendRefs {
			p := field.NewPath("spec", "backendRefs").Index(i)
			be, ok := snap.Backends[resource.Ref("Backend", r.Namespace, r.Name)]
			if !ok {
				if _, exists := b.set.Origins[resource.Ref("Backend", r.Namespace, r.Name)]; exists {
					errs = append(errs, field.Invalid(p.Child("name"), r.Name, "Backend "+r.Namespace+"/"+r.Name+" is invalid"))
				} else {
					errs = append(errs, field.NotFound(p.Child("name"), r.Namespace+"/"+r.Name))
				}
				continue
			}
			if be.MCP {
				errs = append(errs, field.Invalid(p.Child("name"), r.Name, "Backend "+r.Namespace+"/"+r.Name+" is an MCP server: an MCPRoute fronts it"))
				continue
			}
			if r.Model != "" {
				if msg := validModelName(r.Model); msg != "" {
					errs = append(errs, field.Invalid(p.Child("model"), r.Model, msg))
				}
			}
			t := tiers[r.Priority]
			if t == nil {
				t = &route.Tier{Priority: r.Priority}
				tiers[r.Priority] = t
			}
			t.Refs = append(t.Refs, route.Ref{Backend: be, Model: r.Model, Weight: int(*r.Weight), Price: price(r.Pricing)})
		}
		if rt.Regions != nil {
			inRegion := false
			for _, t := range tiers {
				for _, r := range t.Refs {
					inRegion = inRegion || rt.Regions[r.Backend.Region]
				}
			}
			if !inRegion && len(errs) == 0 {
				errs = append(errs, field.Invalid(field.NewPath("spec", "regions"), mr.Spec.Regions, "no backendRef is in these regions"))
			}
		}
		for i, m := range mr.Spec.Models {
			if other, taken := owner[m]; taken {
				errs = append(errs, field.Duplicate(field.NewPath("spec", "models").Index(i), m+" (already claimed by "+other+")"))
			}
		}
		if len(errs) > 0 {
			b.fail("ModelRoute", mr.Namespace, mr.Name, errs...)
			// still claim the models, so a second route is not blamed for the first's error
			for _, m := range mr.Spec.Models {
				if _, taken := owner[m]; !taken {
					owner[m] = ref
				}
			}
			continue
		}
		for _, t := range tiers {
			rt.Tiers = append(rt.Tiers, *t)
		}
		sort.Slice(rt.Tiers, func(i, j int) bool { return rt.Tiers[i].Priority < rt.Tiers[j].Priority })
		for _, m := range mr.Spec.Models {
			owner[m] = ref
			if route.IsGlob(m) {
				globs[m] = rt
			} else {
				exact[m] = rt
				snap.Models = append(snap.Models, m)
			}
		}
	}
	snap.Policy = b.accessPolicy()
	routeRefs := map[string]bool{}
	for _, mr := range b.set.ModelRoutes {
		routeRefs[resource.Ref("ModelRoute", orDefault(mr.Namespace), mr.Name)] = true
	}
	snap.MCP = b.mcpRoutes(snap)
	for _, r := range b.set.MCPRoutes {
		routeRefs[resource.Ref("MCPRoute", orDefault(r.Namespace), r.Name)] = true
	}
	snap.Limits, snap.stores = b.rateLimits(routeRefs)
	snap.Payload, snap.payload = b.payloadProcessors(routeRefs, snap)
	snap.Cache, snap.cache = b.cachePolicies(routeRefs, snap)
	sort.Strings(snap.Models)
	snap.Routes = route.NewTable(exact, globs)
	snap.Routes.SetPaths(b.httpRoutes(snap))
	snap.Summary = Summary{Backends: len(snap.Backends), ModelRoutes: len(b.set.ModelRoutes), Secrets: len(b.set.Secrets), Models: len(snap.Models), APIKeys: len(b.set.APIKeys), AccessPolicies: len(b.set.AccessPolicies), PayloadProcessors: snap.Payload.Resources, MCPRoutes: len(b.set.MCPRoutes)}
	return snap
}

// validModelName keeps model names that end up in URLs or bodies sane.
func validModelName(m string) string {
	if strings.ContainsAny(m, "?#\r\n\x00") || strings.Contains(m, "..") {
		return "must not contain ?, #, .., or control characters"
	}
	return ""
}

func orDefault(ns string) string {
	if ns == "" {
		return v1alpha1.DefaultNamespace
	}
	return ns
}

// baseURL builds a Backend's base URL from url or destination.
func baseURL(be *v1alpha1.Backend) (*url.URL, error) {
	s := &be.Spec
	if s.URL != "" {
		u, err := url.Parse(s.URL)
		if err != nil {
			return nil, err
		}
		u.Path = strings.TrimRight(u.Path, "/")
		return u, nil
	}
	d := s.Destination
	var host string
	switch d.Type {
	case v1alpha1.DestinationFqdn:
		host = d.Fqdn.Hostname
	case v1alpha1.DestinationIP:
		host = d.IP.Address
	case v1alpha1.DestinationKubernetesService:
		ns := d.KubernetesService.Namespace
		if ns == "" {
			ns = be.Namespace
		}
		host = d.KubernetesService.Name + "." + ns + ".svc"
	}
	port := d.Ports[0].Number
	scheme := d.Scheme
	if scheme == "" {
		scheme = "https"
		if d.Type == v1alpha1.DestinationKubernetesService || (d.Type == v1alpha1.DestinationIP && port != 443) {
			scheme = "http"
		}
	}
	hostport := host
	if !(scheme == "https" && port == 443) && !(scheme == "http" && port == 80) {
		hostport = net.JoinHostPort(host, strconv.Itoa(int(port)))
	} else if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	return &url.URL{Scheme: scheme, Host: hostport, Path: strings.TrimRight(d.PathPrefix, "/")}, nil
}

// Retire releases what prev used and next does not, once next is in force: the retired
// Upstreams' idle connections and probes, and the stores and clients RetireStores stops.
func Retire(prev, next *Snapshot) {
	for _, up := range Retired(prev, next) {
		up.CloseIdle()
	}
	RetireStores(prev, next)
}

// RetireStores stops the rate-limit stores prev used and next does not (a removed policy's
// memory counters, a Redis URL no longer named) and closes the external processors' clients
// next no longer uses. Call it once next is in force.
func RetireStores(prev, next *Snapshot) {
	if prev == nil {
		return
	}
	var ns *stores
	if next != nil {
		ns = next.stores
	}
	prev.stores.retire(ns)
	var np *payloadState
	if next != nil {
		np = next.payload
	}
	prev.payload.retire(np)
	var nc *cacheState
	if next != nil {
		nc = next.cache
	}
	prev.cache.retire(nc)
}

// Retired returns the Upstreams of prev that next no longer uses, so their idle
// connections can be closed once next is in force.
func Retired(prev, next *Snapshot) []*egress.Upstream {
	if prev == nil {
		return nil
	}
	var out []*egress.Upstream
	for ref, b := range prev.Backends {
		if nb, ok := next.Backends[ref]; !ok || nb != b {
			out = append(out, b.Upstream)
		}
	}
	return out
}

// price compiles a Pricing (nil stays nil).
func price(p *v1alpha1.Pricing) *exchange.Price {
	if p == nil {
		return nil
	}
	out := &exchange.Price{Input: p.Input, Output: p.Output, CachedInput: p.Input}
	if p.CachedInput != nil {
		out.CachedInput = *p.CachedInput
	}
	return out
}
