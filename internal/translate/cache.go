package translate

import (
	"strconv"

	"github.com/redis/go-redis/v9"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/cache"
	"github.com/sluice-gateway/sluice/internal/resource"
)

// cacheState keeps cache stores across snapshots, so a reload keeps the cached answers:
// Memory stores by policy and size, Redis clients by URL.
type cacheState struct {
	memory   map[string]*cache.Memory
	redis    map[string]redis.UniversalClient
	semantic map[string]*cache.SemanticIndex
}

// cachePolicies compiles the CachePolicies.
func (b *builder) cachePolicies(routes map[string]bool, snap *Snapshot) (*cache.Set, *cacheState) {
	st := &cacheState{memory: map[string]*cache.Memory{}, redis: map[string]redis.UniversalClient{}, semantic: map[string]*cache.SemanticIndex{}}
	var prev *cacheState
	if b.prev != nil {
		prev = b.prev.cache
	}
	set := &cache.Set{ByRoute: map[string]*cache.Policy{}}
	owner := map[string]string{}
	for _, cp := range b.set.CachePolicies {
		p := cp.DeepCopy()
		p.Default()
		errs := p.Validate()
		ref := resource.Ref("CachePolicy", p.Namespace, p.Name)
		var targets []string
		for i, t := range p.Spec.TargetRefs {
			tr := resource.Ref("ModelRoute", t.Namespace, t.Name)
			fp := field.NewPath("spec", "targetRefs").Index(i).Child("name")
			switch {
			case !routes[tr]:
				errs = append(errs, field.NotFound(fp, t.Namespace+"/"+t.Name))
			case owner[tr] != "":
				errs = append(errs, field.Duplicate(fp, t.Namespace+"/"+t.Name+" (already cached by "+owner[tr]+")"))
			}
			owner[tr] = ref
			targets = append(targets, tr)
		}
		if len(targets) == 0 && owner[""] != "" {
			errs = append(errs, field.Invalid(field.NewPath("spec", "targetRefs"), "[]", "another CachePolicy ("+owner[""]+") already applies to every route"))
		}
		if sc := p.Spec.Semantic; sc != nil && p.Spec.Mode == v1alpha1.CacheSemantic {
			bref := resource.Ref("Backend", sc.BackendRef.Namespace, sc.BackendRef.Name)
			fp := field.NewPath("spec", "semantic", "backendRef")
			if be, ok := snap.Backends[bref]; !ok {
				msg := "Backend not found"
				if _, exists := b.set.Origins[bref]; exists {
					msg = "the Backend is invalid"
				}
				errs = append(errs, field.Invalid(fp, sc.BackendRef.Namespace+"/"+sc.BackendRef.Name, msg))
			} else if !embeds(be.Schema) {
				errs = append(errs, field.Invalid(fp, sc.BackendRef.Namespace+"/"+sc.BackendRef.Name, "schema "+string(be.Schema)+" has no embeddings API here"))
			}
		}
		if len(errs) > 0 {
			b.fail("CachePolicy", p.Namespace, p.Name, errs...)
			continue
		}
		pol := &cache.Policy{Ref: ref, TTL: p.Spec.TTL.Duration}
		if sc := p.Spec.Semantic; sc != nil && p.Spec.Mode == v1alpha1.CacheSemantic {
			key := ref + "#" + strconv.Itoa(int(p.Spec.MaxEntries))
			x := st.semantic[key]
			if x == nil && prev != nil {
				x = prev.semantic[key]
			}
			if x == nil {
				x = cache.NewSemanticIndex(int(p.Spec.MaxEntries), nil)
			}
			st.semantic[key] = x
			pol.Semantic = &cache.Semantic{
				Backend: resource.Ref("Backend", sc.BackendRef.Namespace, sc.BackendRef.Name),
				Model:   sc.Model, Threshold: float32(*sc.Threshold), Timeout: sc.Timeout.Duration, Index: x,
			}
		}
		switch p.Spec.Scope {
		case v1alpha1.CacheScopeSubject:
			pol.Scope = cache.ScopeSubject
		case v1alpha1.CacheScopeGlobal:
			pol.Scope = cache.ScopeGlobal
		}
		if s := p.Spec.Storage; s.Type == v1alpha1.StorageRedis {
			url := s.Redis.URL
			client := st.redis[url]
			if client == nil && prev != nil {
				client = prev.redis[url]
			}
			if client == nil {
				opts, err := redis.ParseURL(url)
				if err != nil {
					b.fail("CachePolicy", p.Namespace, p.Name, field.Invalid(field.NewPath("spec", "storage", "redis", "url"), "(hidden)", "not a Redis URL"))
					continue
				}
				opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = RedisTimeout, RedisTimeout, RedisTimeout
				client = redis.NewClient(opts)
			}
			st.redis[url] = client
			pol.Store = cache.NewRedis(client, "sluice:cache:"+p.Namespace+"/"+p.Name+":")
		} else {
			key := ref + "#" + strconv.Itoa(int(p.Spec.MaxEntries))
			m := st.memory[key]
			if m == nil && prev != nil {
				m = prev.memory[key]
			}
			if m == nil {
				m = cache.NewMemory(int(p.Spec.MaxEntries))
			}
			st.memory[key] = m
			pol.Store = m
		}
		if len(targets) == 0 {
			owner[""] = ref
			set.All = pol
		}
		for _, t := range targets {
			set.ByRoute[t] = pol
		}
	}
	return set, st
}

// embeds reports whether the gateway can ask a Backend of schema s for embeddings.
func embeds(s v1alpha1.Schema) bool {
	switch s {
	case v1alpha1.SchemaOpenAI, v1alpha1.SchemaAzureOpenAI, v1alpha1.SchemaGCPVertexAI, v1alpha1.SchemaMock:
		return true
	}
	return false
}

// retire closes the Redis clients prev has and next does not.
func (c *cacheState) retire(next *cacheState) {
	if c == nil {
		return
	}
	for url, client := range c.redis {
		if next == nil || next.redis[url] != client {
			client.Close()
		}
	}
}
