package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/resource"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// Gateway API integration (Reconciler.GatewayAPI): ModelRoutes attach to Gateways of a
// GatewayClass naming GatewayControllerName through spec.parentRefs; the reconciler
// reports, per parent, a Gateway API RouteParentStatus on the ModelRoute, the Gateways'
// status (conditions, and per listener supportedKinds and attachedRoutes), and the status
// of HTTPRoutes attached to those Gateways (Accepted, and ResolvedRefs for their
// sluice.dev Backend refs).
//
// The HTTP and HTTPS listeners of those Gateways are published to the data path
// (Reconciler.OnListeners, see listeners.go), which opens their ports besides its own
// --listen port. Accepted HTTPRoutes go into the resource set (addHTTPRoutes): their
// host and path rules send requests to their sluice.dev Backends before any ModelRoute is
// looked up.

// EventParentRejected is the reason of the Warning event on a ModelRoute a parentRef
// does not accept.
const EventParentRejected = "ParentRejected"

// Route kinds a listener of a Sluice Gateway supports.
var (
	modelRouteKind = gatewayv1.RouteGroupKind{Group: ptr(gatewayv1.Group(v1alpha1.Group)), Kind: "ModelRoute"}
	httpRouteKind  = gatewayv1.RouteGroupKind{Group: ptr(gatewayv1.Group(gatewayv1.GroupName)), Kind: "HTTPRoute"}
)

// gatewayState is what was listed of the Gateway API.
type gatewayState struct {
	classes  map[string]*gatewayv1.GatewayClass
	gateways map[string]*gatewayv1.Gateway // "ns/name"
	routes   []*gatewayv1.HTTPRoute
	backends map[string]bool // "ns/name" of every sluice.dev Backend listed
}

// loadGatewayAPI lists GatewayClasses, Gateways and HTTPRoutes.
func (r *Reconciler) loadGatewayAPI(ctx context.Context, opts []client.ListOption, items []item) (*gatewayState, error) {
	gs := &gatewayState{classes: map[string]*gatewayv1.GatewayClass{}, gateways: map[string]*gatewayv1.Gateway{}, backends: map[string]bool{}}
	var classes gatewayv1.GatewayClassList
	if err := r.Client.List(ctx, &classes); err != nil {
		return nil, err
	}
	for i := range classes.Items {
		gs.classes[classes.Items[i].Name] = &classes.Items[i]
	}
	var gws gatewayv1.GatewayList
	if err := r.Client.List(ctx, &gws, opts...); err != nil {
		return nil, err
	}
	for i := range gws.Items {
		g := &gws.Items[i]
		gs.gateways[g.Namespace+"/"+g.Name] = g
	}
	var routes gatewayv1.HTTPRouteList
	if err := r.Client.List(ctx, &routes, opts...); err != nil {
		return nil, err
	}
	for i := range routes.Items {
		gs.routes = append(gs.routes, &routes.Items[i])
	}
	sort.Slice(gs.routes, func(a, b int) bool {
		return gs.routes[a].Namespace+"/"+gs.routes[a].Name < gs.routes[b].Namespace+"/"+gs.routes[b].Name
	})
	for _, it := range items {
		if it.kind.name == "Backend" {
			gs.backends[it.obj.GetNamespace()+"/"+it.obj.GetName()] = true
		}
	}
	return gs, nil
}

// ours reports whether g is of a GatewayClass Sluice manages (and has not rejected).
func (gs *gatewayState) ours(g *gatewayv1.Gateway) bool {
	gc := gs.classes[string(g.Spec.GatewayClassName)]
	if gc == nil || gc.Spec.ControllerName != GatewayControllerName {
		return false
	}
	c := meta.FindStatusCondition(gc.Status.Conditions, string(gatewayv1.GatewayClassConditionStatusAccepted))
	return c == nil || c.Status != metav1.ConditionFalse
}

// supportedProtocol reports whether Sluice serves routes on a listener of protocol p.
func supportedProtocol(p gatewayv1.ProtocolType) bool {
	return p == gatewayv1.HTTPProtocolType || p == gatewayv1.HTTPSProtocolType
}

// listenerKinds returns the route kinds l supports and whether it asks for a kind Sluice
// does not support.
func listenerKinds(l *gatewayv1.Listener) ([]gatewayv1.RouteGroupKind, bool) {
	if !supportedProtocol(l.Protocol) {
		return []gatewayv1.RouteGroupKind{}, false
	}
	if l.AllowedRoutes == nil || len(l.AllowedRoutes.Kinds) == 0 {
		return []gatewayv1.RouteGroupKind{modelRouteKind, httpRouteKind}, false
	}
	out := []gatewayv1.RouteGroupKind{}
	invalid := false
	for _, k := range l.AllowedRoutes.Kinds {
		switch {
		case sameKind(k, modelRouteKind):
			out = append(out, modelRouteKind)
		case sameKind(k, httpRouteKind):
			out = append(out, httpRouteKind)
		default:
			invalid = true
		}
	}
	return out, invalid
}

func sameKind(a, b gatewayv1.RouteGroupKind) bool {
	g := func(k gatewayv1.RouteGroupKind) string {
		if k.Group == nil {
			return gatewayv1.GroupName
		}
		return string(*k.Group)
	}
	return g(a) == g(b) && a.Kind == b.Kind
}

// attachment is the verdict of one parentRef of a route.
type attachment struct {
	ref       gatewayv1.ParentReference
	gateway   string   // "ns/name" of the Gateway, when it is one of ours
	listeners []string // the listeners the route attaches to (accepted only)
	accepted  bool
	reason    string
	message   string
}

// attach checks the parentRef p of a route of kind rk in namespace ns.
func (gs *gatewayState) attach(p gatewayv1.ParentReference, ns string, rk gatewayv1.RouteGroupKind) attachment {
	a := attachment{ref: p}
	reject := func(reason gatewayv1.RouteConditionReason, format string, args ...any) attachment {
		a.reason, a.message = string(reason), fmt.Sprintf(format, args...)
		return a
	}
	group, kind := gatewayv1.GroupName, "Gateway"
	if p.Group != nil {
		group = string(*p.Group)
	}
	if p.Kind != nil {
		kind = string(*p.Kind)
	}
	if group != gatewayv1.GroupName || kind != "Gateway" {
		return reject(gatewayv1.RouteReasonNoMatchingParent, "parent kind %s/%s is not supported: only Gateways (%s)", group, kind, gatewayv1.GroupName)
	}
	gns := ns
	if p.Namespace != nil && *p.Namespace != "" {
		gns = string(*p.Namespace)
	}
	key := gns + "/" + string(p.Name)
	g := gs.gateways[key]
	if g == nil {
		return reject(gatewayv1.RouteReasonNoMatchingParent, "Gateway %s not found", key)
	}
	if !gs.ours(g) {
		return reject(gatewayv1.RouteReasonNoMatchingParent, "Gateway %s is not of a GatewayClass of %s", key, GatewayControllerName)
	}
	a.gateway = key
	matched, allowed := 0, 0
	var why []string
	for i := range g.Spec.Listeners {
		l := &g.Spec.Listeners[i]
		if p.SectionName != nil && *p.SectionName != l.Name || p.Port != nil && *p.Port != l.Port {
			continue
		}
		kinds, _ := listenerKinds(l)
		if len(kinds) == 0 && !supportedProtocol(l.Protocol) {
			continue
		}
		matched++
		if !slicesContainsKind(kinds, rk) {
			why = append(why, fmt.Sprintf("listener %s does not allow kind %s", l.Name, rk.Kind))
			continue
		}
		if ok, reason := namespaceAllowed(l, g.Namespace, ns); !ok {
			why = append(why, fmt.Sprintf("listener %s: %s", l.Name, reason))
			continue
		}
		allowed++
		a.listeners = append(a.listeners, string(l.Name))
	}
	switch {
	case matched == 0:
		what := "no HTTP or HTTPS listener"
		if p.SectionName != nil || p.Port != nil {
			what = "no HTTP or HTTPS listener matches sectionName/port"
		}
		return reject(gatewayv1.RouteReasonNoMatchingParent, "Gateway %s: %s", key, what)
	case allowed == 0:
		return reject(gatewayv1.RouteReasonNotAllowedByListeners, "Gateway %s: %s", key, strings.Join(why, "; "))
	}
	a.accepted, a.reason, a.message = true, string(gatewayv1.RouteReasonAccepted), "accepted by Gateway "+key
	return a
}

func slicesContainsKind(ks []gatewayv1.RouteGroupKind, k gatewayv1.RouteGroupKind) bool {
	for _, x := range ks {
		if sameKind(x, k) {
			return true
		}
	}
	return false
}

// namespaceAllowed reports whether l admits routes of namespace ns (the Gateway's is
// gwNS). From Selector is not supported yet (Sluice does not read Namespaces).
func namespaceAllowed(l *gatewayv1.Listener, gwNS, ns string) (bool, string) {
	from := gatewayv1.NamespacesFromSame
	if l.AllowedRoutes != nil && l.AllowedRoutes.Namespaces != nil && l.AllowedRoutes.Namespaces.From != nil {
		from = *l.AllowedRoutes.Namespaces.From
	}
	switch from {
	case gatewayv1.NamespacesFromAll:
		return true, ""
	case gatewayv1.NamespacesFromSame:
		if ns == gwNS {
			return true, ""
		}
		return false, fmt.Sprintf("allowedRoutes admits namespace %s only, not %s", gwNS, ns)
	case gatewayv1.NamespacesFromSelector:
		return false, "allowedRoutes.namespaces.from Selector is not supported by Sluice yet"
	}
	return false, fmt.Sprintf("allowedRoutes.namespaces.from %s is not supported", from)
}

// routeAttachments are the parent verdicts of every ModelRoute with parentRefs, by Ref.
type routeAttachments map[string][]attachment

// attachModelRoutes checks the parentRefs of every ModelRoute of items.
func (gs *gatewayState) attachModelRoutes(items []item) routeAttachments {
	out := routeAttachments{}
	for _, it := range items {
		mr, ok := it.obj.(*v1alpha1.ModelRoute)
		if !ok || len(mr.Spec.ParentRefs) == 0 {
			continue
		}
		var as []attachment
		for _, p := range mr.Spec.ParentRefs {
			as = append(as, gs.attach(p, mr.Namespace, modelRouteKind))
		}
		out[it.ref] = as
	}
	return out
}

// detached returns the Refs of the routes no parent accepts, with the reason (of the
// first parent) and a message.
func (ra routeAttachments) detached() map[string][2]string {
	out := map[string][2]string{}
	for ref, as := range ra {
		accepted := false
		var msgs []string
		for _, a := range as {
			accepted = accepted || a.accepted
			msgs = append(msgs, a.message)
		}
		if !accepted && len(as) > 0 {
			out[ref] = [2]string{as[0].reason, "no parentRef accepts the route: " + strings.Join(msgs, "; ")}
		}
	}
	return out
}

// key is a stable text of the detached routes, for the fingerprint.
func detachedKey(d map[string][2]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, "\n")
}

// parentStatus builds the RouteParentStatus list of a route from its attachments;
// resolved is the route's ResolvedRefs condition toward every accepting parent.
func parentStatus(as []attachment, gen int64, resolved metav1.Condition, old []gatewayv1.RouteParentStatus, now metav1.Time) []gatewayv1.RouteParentStatus {
	if len(as) == 0 {
		return nil
	}
	out := make([]gatewayv1.RouteParentStatus, 0, len(as))
	for _, a := range as {
		acc := metav1.Condition{Type: string(gatewayv1.RouteConditionAccepted), Status: metav1.ConditionTrue, Reason: a.reason, Message: clip(a.message), ObservedGeneration: gen}
		if !a.accepted {
			acc.Status = metav1.ConditionFalse
		}
		rr := resolved
		rr.ObservedGeneration = gen
		conds := []metav1.Condition{acc, rr}
		var prev []metav1.Condition
		for _, o := range old {
			if reflect.DeepEqual(o.ParentRef, a.ref) && o.ControllerName == GatewayControllerName {
				prev = o.Conditions
			}
		}
		for i := range conds {
			conds[i].LastTransitionTime = now
			if o := meta.FindStatusCondition(prev, conds[i].Type); o != nil && o.Status == conds[i].Status {
				conds[i].LastTransitionTime = o.LastTransitionTime
			}
		}
		out = append(out, gatewayv1.RouteParentStatus{ParentRef: a.ref, ControllerName: GatewayControllerName, Conditions: conds})
	}
	return out
}

// unsupported are the errors that are not about a broken reference.
func unsupported(errs translate.Errors) translate.Errors {
	var out translate.Errors
	for _, e := range errs {
		if refReason(e) == "" {
			out = append(out, e)
		}
	}
	return out
}

// sameParents compares ignoring lastTransitionTime.
func sameParents(a, b []gatewayv1.RouteParentStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].ParentRef, b[i].ParentRef) || a[i].ControllerName != b[i].ControllerName || !sameConds(a[i].Conditions, b[i].Conditions) {
			return false
		}
	}
	return true
}

func sameConds(have, want []metav1.Condition) bool {
	if len(have) != len(want) {
		return false
	}
	for _, w := range want {
		h := meta.FindStatusCondition(have, w.Type)
		if h == nil || h.Status != w.Status || h.Reason != w.Reason || h.Message != w.Message || h.ObservedGeneration != w.ObservedGeneration {
			return false
		}
	}
	return true
}

// keepTimes sets the lastTransitionTime of every condition of next: old's when the
// status did not change, now otherwise.
func keepTimes(next, old []metav1.Condition, now metav1.Time) {
	for i := range next {
		next[i].LastTransitionTime = now
		if o := meta.FindStatusCondition(old, next[i].Type); o != nil && o.Status == next[i].Status {
			next[i].LastTransitionTime = o.LastTransitionTime
		}
	}
}

// routeEvents records a Warning for every parent of mr that rejects it, unless the same
// rejection was already reported.
func (r *Reconciler) routeEvents(obj client.Object, next, old []gatewayv1.RouteParentStatus) {
	if r.Recorder == nil {
		return
	}
	for _, p := range next {
		c := meta.FindStatusCondition(p.Conditions, string(gatewayv1.RouteConditionAccepted))
		if c == nil || c.Status != metav1.ConditionFalse {
			continue
		}
		seen := false
		for _, o := range old {
			if reflect.DeepEqual(o.ParentRef, p.ParentRef) {
				if oc := meta.FindStatusCondition(o.Conditions, c.Type); oc != nil && oc.Status == c.Status && oc.Reason == c.Reason && oc.Message == c.Message {
					seen = true
				}
			}
		}
		if !seen {
			r.Recorder.Eventf(obj, corev1.EventTypeWarning, EventParentRejected, "parentRef %s: %s: %s", p.ParentRef.Name, c.Reason, c.Message)
		}
	}
}

// writeGatewayStatus writes the status of the Gateways of our classes and of the
// HTTPRoutes attached to them; modelRoutes are the ModelRoute attachments (for
// attachedRoutes).
func (r *Reconciler) writeGatewayStatus(ctx context.Context, gs *gatewayState, modelRoutes routeAttachments, verdicts map[string]*listenerVerdict) error {
	var errs []error
	now := metav1.Now()
	attached := map[string]int32{} // "ns/name/listener"
	count := func(as []attachment) {
		for _, a := range as {
			if a.accepted {
				for _, l := range a.listeners {
					attached[a.gateway+"/"+l]++
				}
			}
		}
	}
	for _, as := range modelRoutes {
		count(as)
	}

	// HTTPRoutes.
	for _, hr := range gs.routes {
		var as []attachment
		for _, p := range hr.Spec.ParentRefs {
			if !gs.parentIsOurs(p, hr.Namespace) {
				continue
			}
			as = append(as, gs.attach(p, hr.Namespace, httpRouteKind))
		}
		// A route the translator left out for what it asks (not for a missing reference,
		// which ResolvedRefs reports) is not accepted, whatever its parents say.
		if errs := unsupported(r.out.rejected[resource.Ref("HTTPRoute", hr.Namespace, hr.Name)]); len(errs) > 0 {
			for i := range as {
				if as[i].accepted {
					as[i].accepted, as[i].listeners = false, nil
					as[i].reason, as[i].message = string(gatewayv1.RouteReasonUnsupportedValue), "not served: "+errs.Error()
				}
			}
		}
		count(as)
		resolved := gs.httpRouteRefs(hr)
		var others []gatewayv1.RouteParentStatus
		for _, p := range hr.Status.Parents {
			if p.ControllerName != GatewayControllerName {
				others = append(others, p)
			}
		}
		mine := parentStatus(as, hr.Generation, resolved, hr.Status.Parents, now)
		var old []gatewayv1.RouteParentStatus
		for _, p := range hr.Status.Parents {
			if p.ControllerName == GatewayControllerName {
				old = append(old, p)
			}
		}
		if sameParents(old, mine) {
			continue
		}
		before := hr.DeepCopy()
		hr.Status.Parents = append(others, mine...)
		if err := r.Client.Status().Patch(ctx, hr, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}

	// Gateways.
	keys := make([]string, 0, len(gs.gateways))
	for k := range gs.gateways {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		g := gs.gateways[key]
		if !gs.ours(g) {
			continue
		}
		want := gatewayStatus(g, attached, verdicts)
		if sameGatewayStatus(&g.Status, &want) {
			continue
		}
		keepTimes(want.Conditions, g.Status.Conditions, now)
		for i := range want.Listeners {
			var old []metav1.Condition
			for _, l := range g.Status.Listeners {
				if l.Name == want.Listeners[i].Name {
					old = l.Conditions
				}
			}
			keepTimes(want.Listeners[i].Conditions, old, now)
		}
		before := g.DeepCopy()
		g.Status.Conditions = want.Conditions
		g.Status.Listeners = want.Listeners
		if err := r.Client.Status().Patch(ctx, g, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parentIsOurs reports whether p names a Gateway of one of our classes.
func (gs *gatewayState) parentIsOurs(p gatewayv1.ParentReference, ns string) bool {
	if p.Group != nil && *p.Group != gatewayv1.GroupName || p.Kind != nil && *p.Kind != "Gateway" {
		return false
	}
	if p.Namespace != nil && *p.Namespace != "" {
		ns = string(*p.Namespace)
	}
	g := gs.gateways[ns+"/"+string(p.Name)]
	return g != nil && gs.ours(g)
}

// httpRouteRefs is the ResolvedRefs condition of hr: False BackendNotFound when a
// sluice.dev Backend it references does not exist. Other backend kinds are not checked.
func (gs *gatewayState) httpRouteRefs(hr *gatewayv1.HTTPRoute) metav1.Condition {
	var missing []string
	for _, rule := range hr.Spec.Rules {
		for _, b := range rule.BackendRefs {
			if b.Group == nil || string(*b.Group) != v1alpha1.Group || b.Kind == nil || *b.Kind != "Backend" {
				continue
			}
			ns := hr.Namespace
			if b.Namespace != nil && *b.Namespace != "" {
				ns = string(*b.Namespace)
			}
			if !gs.backends[ns+"/"+string(b.Name)] {
				missing = append(missing, resource.Ref("Backend", ns, string(b.Name)))
			}
		}
	}
	if len(missing) > 0 {
		return metav1.Condition{Type: string(gatewayv1.RouteConditionResolvedRefs), Status: metav1.ConditionFalse,
			Reason: string(gatewayv1.RouteReasonBackendNotFound), Message: clip("not found: " + strings.Join(missing, ", "))}
	}
	return metav1.Condition{Type: string(gatewayv1.RouteConditionResolvedRefs), Status: metav1.ConditionTrue,
		Reason: string(gatewayv1.RouteReasonResolvedRefs), Message: "every sluice.dev Backend reference resolved"}
}

// gatewayStatus is the status of our Gateway g (without lastTransitionTime);
// attached counts the routes by "ns/name/listener".
// verdicts are the listener verdicts by "ns/name/listener" (gatewayListeners).
func gatewayStatus(g *gatewayv1.Gateway, attached map[string]int32, verdicts map[string]*listenerVerdict) gatewayv1.GatewayStatus {
	gen := g.Generation
	cond := func(typ string, ok bool, reason, msg string) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
	}
	var st gatewayv1.GatewayStatus
	valid := 0
	for i := range g.Spec.Listeners {
		l := &g.Spec.Listeners[i]
		kinds, badKinds := listenerKinds(l)
		ls := gatewayv1.ListenerStatus{Name: l.Name, SupportedKinds: kinds, AttachedRoutes: attached[g.Namespace+"/"+g.Name+"/"+string(l.Name)]}
		switch {
		case !supportedProtocol(l.Protocol):
			msg := fmt.Sprintf("protocol %s is not supported: only HTTP and HTTPS", l.Protocol)
			ls.Conditions = []metav1.Condition{
				cond(string(gatewayv1.ListenerConditionAccepted), false, string(gatewayv1.ListenerReasonUnsupportedProtocol), msg),
				cond(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), msg),
				cond(string(gatewayv1.ListenerConditionResolvedRefs), true, string(gatewayv1.ListenerReasonResolvedRefs), "no references"),
			}
		default:
			v := verdicts[g.Namespace+"/"+g.Name+"/"+string(l.Name)]
			if v == nil {
				v = &listenerVerdict{}
			}
			rr := cond(string(gatewayv1.ListenerConditionResolvedRefs), true, string(gatewayv1.ListenerReasonResolvedRefs), "every reference resolved")
			switch {
			case v.refsReason != "":
				rr = cond(string(gatewayv1.ListenerConditionResolvedRefs), false, v.refsReason, v.refsMsg)
			case badKinds:
				rr = cond(string(gatewayv1.ListenerConditionResolvedRefs), false, string(gatewayv1.ListenerReasonInvalidRouteKinds), "allowedRoutes.kinds: only sluice.dev/ModelRoute and gateway.networking.k8s.io/HTTPRoute are supported")
			}
			acc := cond(string(gatewayv1.ListenerConditionAccepted), true, string(gatewayv1.ListenerReasonAccepted), "accepted by Sluice")
			conf := cond(string(gatewayv1.ListenerConditionConflicted), false, string(gatewayv1.ListenerReasonNoConflicts), "no conflict")
			prog := cond(string(gatewayv1.ListenerConditionProgrammed), true, string(gatewayv1.ListenerReasonProgrammed), fmt.Sprintf("handed to the data path: served on port %d", l.Port))
			switch {
			case v.conflict != "":
				acc = cond(string(gatewayv1.ListenerConditionAccepted), false, v.conflict, v.conflictMsg)
				conf = cond(string(gatewayv1.ListenerConditionConflicted), true, v.conflict, v.conflictMsg)
				prog = cond(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), v.conflictMsg)
			case v.refsReason != "":
				prog = cond(string(gatewayv1.ListenerConditionProgrammed), false, string(gatewayv1.ListenerReasonInvalid), "not served: "+v.refsMsg)
			default:
				valid++
			}
			ls.Conditions = []metav1.Condition{acc, prog, rr, conf}
		}
		st.Listeners = append(st.Listeners, ls)
	}
	if valid == 0 && len(g.Spec.Listeners) > 0 {
		st.Conditions = []metav1.Condition{
			cond(string(gatewayv1.GatewayConditionAccepted), false, string(gatewayv1.GatewayReasonListenersNotValid), "no listener is valid (protocol HTTP or HTTPS, references resolved, no conflict)"),
			cond(string(gatewayv1.GatewayConditionProgrammed), false, string(gatewayv1.GatewayReasonInvalid), "no listener is valid (protocol HTTP or HTTPS, references resolved, no conflict)"),
		}
		return st
	}
	acc := cond(string(gatewayv1.GatewayConditionAccepted), true, string(gatewayv1.GatewayReasonAccepted), "accepted by Sluice")
	if valid < len(g.Spec.Listeners) {
		acc.Reason, acc.Message = string(gatewayv1.GatewayReasonListenersNotValid), "some listeners are not valid: see their conditions"
	}
	st.Conditions = []metav1.Condition{acc,
		cond(string(gatewayv1.GatewayConditionProgrammed), true, string(gatewayv1.GatewayReasonProgrammed), "the valid listeners are handed to Sluice's data path"),
	}
	return st
}

func sameGatewayStatus(have, want *gatewayv1.GatewayStatus) bool {
	if !sameConds(have.Conditions, want.Conditions) || len(have.Listeners) != len(want.Listeners) {
		return false
	}
	for i := range want.Listeners {
		h, w := &have.Listeners[i], &want.Listeners[i]
		if h.Name != w.Name || h.AttachedRoutes != w.AttachedRoutes || !sameKinds(h.SupportedKinds, w.SupportedKinds) || !sameConds(h.Conditions, w.Conditions) {
			return false
		}
	}
	return true
}

func sameKinds(a, b []gatewayv1.RouteGroupKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameKind(a[i], b[i]) {
			return false
		}
	}
	return true
}

// addHTTPRoutes puts into set the HTTPRoutes that one of our Gateways accepts, for the
// translator to route by host and path (status and spec only as the route's own).
func (gs *gatewayState) addHTTPRoutes(set *resource.Set) {
	for _, hr := range gs.routes {
		accepted := false
		for _, p := range hr.Spec.ParentRefs {
			if gs.parentIsOurs(p, hr.Namespace) && gs.attach(p, hr.Namespace, httpRouteKind).accepted {
				accepted = true
			}
		}
		if !accepted {
			continue
		}
		c := hr.DeepCopy()
		c.ManagedFields = nil
		c.Status = gatewayv1.HTTPRouteStatus{}
		set.HTTPRoutes = append(set.HTTPRoutes, c)
		set.Origins[resource.Ref("HTTPRoute", hr.Namespace, hr.Name)] = resource.Source{File: Origin}
	}
}
