package translate

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/limits"
	"github.com/sluice-gateway/sluice/internal/ratelimit"
	"github.com/sluice-gateway/sluice/internal/resource"
)

// go-redis logs every failed dial; during an outage that is a line per request. The
// Guard logs the outage once instead.
func init() { redis.SetLogger(quietRedis{}) }

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// RedisTimeout bounds each rate-limit round trip to Redis; past it the policy's failure
// mode decides. Generous enough for a loaded Redis, short enough not to stall requests.
const RedisTimeout = 250 * time.Millisecond

// stores keeps rate-limit stores across snapshots, so a reload never resets counters:
// Memory stores by policy, Redis stores by URL.
type stores struct {
	memory map[string]*ratelimit.Memory
	redis  map[string]*redisStore
}

type redisStore struct {
	client redis.UniversalClient
	store  *ratelimit.Redis
}

// rateLimits compiles the RateLimitPolicies.
func (b *builder) rateLimits(routes map[string]bool) (*limits.Set, *stores) {
	st := &stores{memory: map[string]*ratelimit.Memory{}, redis: map[string]*redisStore{}}
	var prev *stores
	if b.prev != nil {
		prev = b.prev.stores
	}
	set := &limits.Set{}
	for _, rp := range b.set.RateLimitPolicies {
		p := rp.DeepCopy()
		p.Default()
		errs := p.Validate()
		ref := resource.Ref("RateLimitPolicy", p.Namespace, p.Name)
		pol := &limits.Policy{Ref: ref, Headers: p.Spec.EmitRateLimitResponseHeaders, OutputEstimate: p.Spec.OutputTokenEstimate}
		for i, t := range p.Spec.TargetRefs {
			tr := resource.Ref(t.Kind, t.Namespace, t.Name) // a ModelRoute or an MCPRoute
			if !routes[tr] {
				errs = append(errs, field.NotFound(field.NewPath("spec", "targetRefs").Index(i).Child("name"), t.Namespace+"/"+t.Name))
			}
			if pol.Targets == nil {
				pol.Targets = map[string]bool{}
			}
			pol.Targets[tr] = true
		}
		for i, r := range p.Spec.Rules {
			path := field.NewPath("spec", "rules").Index(i)
			unit, err1 := ratelimit.ParseUnit(string(r.Limit.VolumeUnits))
			period, err2 := ratelimit.ParsePeriod(string(r.Limit.TimeUnit))
			if err1 != nil || err2 != nil {
				continue // reported by Validate
			}
			matcher := ""
			if r.TrafficMatcher != nil {
				matcher = r.TrafficMatcher.CELMatcher
			}
			rule, cerrs := limits.NewRule(ref+"/"+r.Name, ratelimit.Rule{
				Name:   r.Name,
				Limit:  ratelimit.Limit{Unit: unit, Volume: r.Limit.Volume, Period: period, Count: int(r.Limit.TimeValue)},
				Shadow: r.ShadowMode,
			}, r.Key, r.CostExpression, matcher)
			for _, f := range []string{"key", "costExpression", "trafficMatcher.celMatcher"} {
				if err := cerrs[f]; err != nil {
					expr := map[string]string{"key": r.Key, "costExpression": r.CostExpression, "trafficMatcher.celMatcher": matcher}[f]
					parts := strings.Split(f, ".")
					errs = append(errs, field.Invalid(path.Child(parts[0], parts[1:]...), expr, "CEL: "+strings.ReplaceAll(err.Error(), "\n", " ")))
				}
			}
			pol.Rules = append(pol.Rules, rule)
		}
		if len(errs) > 0 {
			b.fail("RateLimitPolicy", p.Namespace, p.Name, errs...)
			continue
		}
		mode := ratelimit.FailOpen
		if p.Spec.FailureMode == v1alpha1.FailClosed {
			mode = ratelimit.FailClosed
		}
		var store ratelimit.Store
		switch p.Spec.Storage.Type {
		case v1alpha1.StorageRedis:
			u := p.Spec.Storage.Redis.URL
			rs := st.redis[u]
			if rs == nil && prev != nil {
				rs = prev.redis[u]
			}
			if rs == nil {
				opts, err := redis.ParseURL(u)
				if err != nil {
					b.fail("RateLimitPolicy", p.Namespace, p.Name, field.Invalid(field.NewPath("spec", "storage", "redis", "url"), "(hidden)", "not a Redis URL"))
					continue
				}
				uo := &redis.UniversalOptions{Addrs: []string{opts.Addr}, DB: opts.DB, Username: opts.Username, Password: opts.Password, TLSConfig: opts.TLSConfig}
				ratelimit.ConfigureRedisOptions(uo)
				client := redis.NewUniversalClient(uo)
				rs = &redisStore{client: client, store: ratelimit.NewRedis(client, ratelimit.RedisOptions{Logger: b.logger(), Timeout: RedisTimeout})}
			}
			st.redis[u] = rs
			store = rs.store
		default:
			m := st.memory[ref]
			if m == nil && prev != nil {
				m = prev.memory[ref]
			}
			if m == nil {
				m = ratelimit.NewMemory(ratelimit.MemoryOptions{})
			}
			st.memory[ref] = m
			store = m
		}
		pol.Store = &ratelimit.Guard{Store: store, Mode: mode, Logger: b.logger()}
		set.Policies = append(set.Policies, pol)
	}
	return set, st
}

func (b *builder) logger() *slog.Logger {
	if b.log != nil {
		return b.log
	}
	return slog.Default()
}

// retire closes the stores prev used that next does not.
func (s *stores) retire(next *stores) {
	if s == nil {
		return
	}
	for ref, m := range s.memory {
		if next == nil || next.memory[ref] != m {
			m.Close()
		}
	}
	for u, r := range s.redis {
		if next == nil || next.redis[u] != r {
			r.client.Close()
		}
	}
}
