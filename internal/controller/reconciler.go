// Package controller is Sluice's cluster mode: it watches the sluice.dev/v1alpha1 kinds
// and the Secrets they reference, builds the same resource.Set the file loader builds,
// compiles it with translate.Build and publishes the Snapshot to the data path. A
// resource that does not compile is left out, and what depends on it with it, so that an
// invalid resource never takes the valid ones down. The leader writes every resource's
// status (observedGeneration; Accepted, ResolvedRefs and Programmed conditions) and
// Warning events for rejected resources and broken references.
//
// Every watch enqueues the same key, so a burst of changes is one rebuild.
package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/server"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// SnapshotKey is the one reconcile key every watch enqueues.
var SnapshotKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "snapshot"}}

// Origin is the Source file name resources read from the cluster carry in a
// resource.Set (and so in translate errors: "cluster: Backend/ns/name: spec.url: ...").
const Origin = "cluster"

// EventRecorder is the part of an event recorder the reconciler uses. A
// k8s.io/client-go/tools/record.EventRecorder is one; NewEventRecorder adapts the
// events.k8s.io recorder a manager's GetEventRecorder returns.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Reconciler rebuilds the snapshot from every resource on each reconcile.
type Reconciler struct {
	// Client lists the resources (a manager's cached client) and writes status.
	Client client.Client
	// Namespace, when set, is the only namespace read.
	Namespace string
	// OnSnapshot receives every new snapshot (gateway.Swap). Once it returns, the
	// previous snapshot's retired upstreams and stores are closed.
	OnSnapshot func(*translate.Snapshot)
	// Recorder, when set, receives Warning events (leader only).
	Recorder EventRecorder
	// IsLeader says whether this replica writes status and events; nil: always.
	IsLeader func() bool
	// Logger; nil discards.
	Logger *slog.Logger
	// GatewayAPI makes the reconciler read GatewayClasses, Gateways and HTTPRoutes
	// (the Gateway API CRDs must be installed): ModelRoutes with spec.parentRefs are
	// served only when a Gateway of Sluice's class accepts them, and the Gateways and
	// their HTTPRoutes get status. Without it parentRefs are not checked.
	GatewayAPI bool
	// OnListeners, with GatewayAPI, receives the listeners of the Gateways of Sluice's
	// class the data path should serve (server.ListenerSet.Apply) whenever they change:
	// see gatewayListeners. Every replica publishes them, leader or not.
	OnListeners func([]server.Listener)
	// Debounce is how long a watch event waits before the rebuild, so that a burst is
	// one rebuild (SetupWithManager; default 100ms).
	Debounce time.Duration
	// DenialInterval is how often at most RecordDenial records an event per object and
	// reason (default DefaultDenialInterval).
	DenialInterval time.Duration

	mu   sync.Mutex
	prev *translate.Snapshot // the published snapshot
	out  *outcome            // the last build
	sum  string              // fingerprint of the input of out

	listenersPublished bool
	listenersKey       string // fingerprint of the listeners last published

	refsMu  sync.RWMutex
	secrets map[string]bool // "ns/name" of every Secret referenced, found or not

	denials denialState // what RecordDenial reads
}

// outcome is the result of one build.
type outcome struct {
	snap *translate.Snapshot // nil: nothing could be built (err says why)
	err  error
	// rejected holds the errors of every resource left out, by Ref.
	rejected map[string]translate.Errors
	// served are the Refs in snap.
	served map[string]bool
	// detached are the ModelRoutes left out because no parentRef accepts them:
	// reason and message.
	detached map[string][2]string
}

// item is one listed Sluice object.
type item struct {
	kind *kind
	obj  client.Object
	ref  string
}

// Snapshot returns the last published snapshot (nil before the first).
func (r *Reconciler) Snapshot() *translate.Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prev
}

func (r *Reconciler) log() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// Reconcile lists everything, rebuilds the snapshot when the input changed, publishes it
// and (on the leader) brings every resource's status up to date. The request is ignored:
// there is one key.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	items, set, err := r.load(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	var gs *gatewayState
	var attached routeAttachments
	var ls *listenerSet
	detached := map[string][2]string{}
	if r.GatewayAPI {
		var opts []client.ListOption
		if r.Namespace != "" {
			opts = append(opts, client.InNamespace(r.Namespace))
		}
		if gs, err = r.loadGatewayAPI(ctx, opts, items); err != nil {
			return reconcile.Result{}, err
		}
		if ls, err = r.gatewayListeners(ctx, gs); err != nil {
			return reconcile.Result{}, err
		}
		r.refsMu.Lock()
		for k := range ls.secrets {
			r.secrets[k] = true // the Secret watch enqueues certificate changes too
		}
		r.refsMu.Unlock()
		r.publishListeners(ls)
		attached = gs.attachModelRoutes(items)
		detached = attached.detached()
		gs.addHTTPRoutes(set)
	}
	if sum := fingerprint(set) + "\n" + detachedKey(detached); r.out == nil || sum != r.sum {
		drop := map[string]bool{}
		for ref := range detached {
			drop[ref] = true
		}
		r.out, r.sum = r.build(without(set, drop), items), sum
		r.out.detached = detached
		if r.out.snap != nil {
			r.publish(r.out.snap)
		}
	}
	r.rememberDenialTargets(items, r.out)
	if r.out.snap == nil || r.IsLeader != nil && !r.IsLeader() {
		return reconcile.Result{}, nil
	}
	err = r.writeStatus(ctx, items, r.out, attached)
	if gs != nil {
		err = errors.Join(err, r.writeGatewayStatus(ctx, gs, attached, ls.verdicts))
	}
	return reconcile.Result{}, err
}

// load lists every resource and makes the Set the translator reads.
func (r *Reconciler) load(ctx context.Context) ([]item, *resource.Set, error) {
	var opts []client.ListOption
	if r.Namespace != "" {
		opts = append(opts, client.InNamespace(r.Namespace))
	}
	set := &resource.Set{Origins: map[string]resource.Source{}}
	var items []item
	refs := map[string]bool{}
	for i := range kinds {
		k := &kinds[i]
		list := k.list()
		if err := r.Client.List(ctx, list, opts...); err != nil {
			return nil, nil, err
		}
		objs := k.items(list)
		sort.Slice(objs, func(a, b int) bool {
			return objs[a].GetNamespace()+"/"+objs[a].GetName() < objs[b].GetNamespace()+"/"+objs[b].GetName()
		})
		for _, o := range objs {
			ref := resource.Ref(k.name, o.GetNamespace(), o.GetName())
			items = append(items, item{kind: k, obj: o, ref: ref})
			c := o.DeepCopyObject().(client.Object)
			c.SetManagedFields(nil)
			*k.status(c) = v1alpha1.ResourceStatus{}
			if mr, ok := c.(*v1alpha1.ModelRoute); ok {
				mr.Status.Parents = nil
			}
			k.add(set, c)
			set.Origins[ref] = resource.Source{File: Origin}
			secretRefs(c, refs)
		}
	}
	r.refsMu.Lock()
	r.secrets = refs
	r.refsMu.Unlock()

	var secrets corev1.SecretList
	if err := r.Client.List(ctx, &secrets, opts...); err != nil {
		return nil, nil, err
	}
	sort.Slice(secrets.Items, func(a, b int) bool {
		x, y := &secrets.Items[a], &secrets.Items[b]
		return x.Namespace+"/"+x.Name < y.Namespace+"/"+y.Name
	})
	for i := range secrets.Items {
		s := &secrets.Items[i]
		if !refs[s.Namespace+"/"+s.Name] {
			continue
		}
		c := &corev1.Secret{TypeMeta: s.TypeMeta, ObjectMeta: *s.ObjectMeta.DeepCopy(), Type: s.Type, Data: map[string][]byte{}}
		c.ManagedFields = nil
		for k, v := range s.Data {
			c.Data[k] = v
		}
		for k, v := range s.StringData { // the API server merges these; a fake client does not
			c.Data[k] = []byte(v)
		}
		set.Secrets = append(set.Secrets, c)
		set.Origins[resource.Ref("Secret", s.Namespace, s.Name)] = resource.Source{File: Origin}
	}
	return items, set, nil
}

// WantsSecret reports whether the Secret ns/name is referenced by a resource (found or
// not) as of the last reconcile: the Secret watch enqueues only those.
func (r *Reconciler) WantsSecret(ns, name string) bool {
	r.refsMu.RLock()
	defer r.refsMu.RUnlock()
	return r.secrets == nil || r.secrets[ns+"/"+name]
}

// build compiles set, leaving out what does not compile: every round removes the
// resources the errors name, until Build succeeds. Resources that referenced a removed
// one fail in the next round and are removed in turn. At most one round per resource.
func (r *Reconciler) build(set *resource.Set, items []item) *outcome {
	out := &outcome{rejected: map[string]translate.Errors{}, served: map[string]bool{}}
	cur := set
	for range len(items) + 1 {
		snap, err := translate.Build(cur, r.prev)
		if err == nil {
			out.snap = snap
			break
		}
		var errs translate.Errors
		if !errors.As(err, &errs) {
			out.err = err
			break
		}
		present := refsOf(cur)
		drop := map[string]bool{}
		var stray translate.Errors
		for _, e := range errs {
			if present[e.Ref] {
				drop[e.Ref] = true
				out.rejected[e.Ref] = append(out.rejected[e.Ref], e)
			} else {
				stray = append(stray, e)
			}
		}
		if len(drop) == 0 {
			out.err = stray
			break
		}
		cur = without(cur, drop)
	}
	log := r.log()
	if out.snap == nil {
		if out.err == nil {
			out.err = errors.New("no snapshot after removing every rejected resource")
		}
		log.Error("configuration could not be built; the running configuration stays", "errors", out.err.Error())
		return out
	}
	for ref := range refsOf(cur) {
		out.served[ref] = true
	}
	for _, it := range items {
		if errs := out.rejected[it.ref]; len(errs) > 0 {
			log.Warn("resource left out of the configuration", "resource", it.ref, "errors", errs.Error())
		}
	}
	return out
}

// publish hands snap to the data path and retires what the previous one used alone.
func (r *Reconciler) publish(snap *translate.Snapshot) {
	prev := r.prev
	if r.OnSnapshot != nil {
		r.OnSnapshot(snap)
	}
	r.prev = snap
	translate.Retire(prev, snap)
	r.log().Info("configuration published", "summary", snap.Summary.String())
}

// refsOf returns the Refs of the Sluice resources of set.
func refsOf(set *resource.Set) map[string]bool {
	out := map[string]bool{}
	each(set, func(kind string, o client.Object) { out[resource.Ref(kind, o.GetNamespace(), o.GetName())] = true })
	return out
}

func each(set *resource.Set, f func(kind string, o client.Object)) {
	for _, o := range set.Backends {
		f("Backend", o)
	}
	for _, o := range set.ModelRoutes {
		f("ModelRoute", o)
	}
	for _, o := range set.APIKeys {
		f("APIKey", o)
	}
	for _, o := range set.AccessPolicies {
		f("AccessPolicy", o)
	}
	for _, o := range set.RateLimitPolicies {
		f("RateLimitPolicy", o)
	}
	for _, o := range set.PayloadProcessors {
		f("PayloadProcessor", o)
	}
	for _, o := range set.CachePolicies {
		f("CachePolicy", o)
	}
	for _, o := range set.MCPRoutes {
		f("MCPRoute", o)
	}
	for _, o := range set.HTTPRoutes {
		f("HTTPRoute", o)
	}
}

// without returns set less the resources named in drop. Origins are kept whole, so that
// a reference to a removed resource reads "is invalid" rather than "not found".
func without(set *resource.Set, drop map[string]bool) *resource.Set {
	keep := func(kind string, o client.Object) bool {
		return !drop[resource.Ref(kind, o.GetNamespace(), o.GetName())]
	}
	out := &resource.Set{Secrets: set.Secrets, Origins: set.Origins}
	out.Backends = filter(set.Backends, "Backend", keep)
	out.ModelRoutes = filter(set.ModelRoutes, "ModelRoute", keep)
	out.APIKeys = filter(set.APIKeys, "APIKey", keep)
	out.AccessPolicies = filter(set.AccessPolicies, "AccessPolicy", keep)
	out.RateLimitPolicies = filter(set.RateLimitPolicies, "RateLimitPolicy", keep)
	out.PayloadProcessors = filter(set.PayloadProcessors, "PayloadProcessor", keep)
	out.CachePolicies = filter(set.CachePolicies, "CachePolicy", keep)
	out.MCPRoutes = filter(set.MCPRoutes, "MCPRoute", keep)
	out.HTTPRoutes = filter(set.HTTPRoutes, "HTTPRoute", keep)
	return out
}

func filter[T client.Object](in []T, kind string, keep func(string, client.Object) bool) []T {
	var out []T
	for _, o := range in {
		if keep(kind, o) {
			out = append(out, o)
		}
	}
	return out
}

// fingerprint hashes what Build reads from set: every resource without its
// resourceVersion, generation and status, and the Secrets' data. A status write or a
// resync does not change it.
func fingerprint(set *resource.Set) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	each(set, func(kind string, o client.Object) {
		rv, gen := o.GetResourceVersion(), o.GetGeneration()
		o.SetResourceVersion("")
		o.SetGeneration(0)
		enc.Encode(kind)
		enc.Encode(o)
		o.SetResourceVersion(rv)
		o.SetGeneration(gen)
	})
	for _, s := range set.Secrets {
		enc.Encode([]any{s.Namespace, s.Name, s.Data})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// secretRefs adds "ns/name" of every Secret o's spec references to into: any object
// under a key ending in secretRef, and the TLS caBundleRefs and clientCertificateRef.
// Reading the JSON rather than the Go types keeps new references from being missed.
func secretRefs(o client.Object, into map[string]bool) {
	js, err := json.Marshal(o)
	if err != nil {
		return
	}
	var doc struct {
		Spec any `json:"spec"`
	}
	if json.Unmarshal(js, &doc) != nil {
		return
	}
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch v := v.(type) {
		case map[string]any:
			if isSecretKey(key) {
				if name, _ := v["name"].(string); name != "" {
					ns, _ := v["namespace"].(string)
					if ns == "" {
						ns = o.GetNamespace()
					}
					into[ns+"/"+name] = true
				}
			}
			for k, c := range v {
				walk(c, k)
			}
		case []any:
			for _, c := range v {
				walk(c, key)
			}
		}
	}
	walk(doc.Spec, "")
}

func isSecretKey(key string) bool {
	k := strings.ToLower(key)
	return strings.HasSuffix(k, "secretref") || k == "sessionkeyref" || k == "cabundlerefs" || k == "clientcertificateref"
}
