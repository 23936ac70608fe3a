package controller

import (
	"context"
	"errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// Event reasons.
const (
	EventRejected     = "Rejected"
	EventResolvedRefs = "ResolvedRefs"
)

// maxMessage bounds a condition message (the API allows 32768 bytes).
const maxMessage = 4096

// writeStatus brings the status of every item up to date with out, writing only what
// changed, and records a Warning event when a resource becomes rejected or its
// references break (or the reason why changes).
func (r *Reconciler) writeStatus(ctx context.Context, items []item, out *outcome, attached routeAttachments) error {
	var errs []error
	now := metav1.Now()
	for _, it := range items {
		want := desired(it, out)
		st := it.kind.status(it.obj)
		// A ModelRoute's status per parent (spec.parentRefs, Gateway API enabled).
		mr, _ := it.obj.(*v1alpha1.ModelRoute)
		var parents, oldParents []gatewayv1.RouteParentStatus
		if mr != nil {
			oldParents = mr.Status.Parents
			resolved := *meta.FindStatusCondition(want.Conditions, v1alpha1.ConditionResolvedRefs)
			if _, ok := out.detached[it.ref]; ok {
				resolved = metav1.Condition{Type: v1alpha1.ConditionResolvedRefs, Status: metav1.ConditionUnknown, Reason: v1alpha1.ReasonPending, Message: "references are resolved once a parent accepts the route"}
			}
			parents = parentStatus(attached[it.ref], it.obj.GetGeneration(), resolved, oldParents, now)
		}
		if sameStatus(st, want) && (mr == nil || sameParents(oldParents, parents)) {
			continue
		}
		before := it.obj.DeepCopyObject().(client.Object)
		old := st.Conditions
		next := make([]metav1.Condition, len(want.Conditions))
		for i, c := range want.Conditions {
			c.LastTransitionTime = now
			if o := meta.FindStatusCondition(old, c.Type); o != nil && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
			next[i] = c
		}
		st.ObservedGeneration = want.ObservedGeneration
		st.Conditions = next
		if mr != nil {
			mr.Status.Parents = parents
		}
		if err := r.Client.Status().Patch(ctx, it.obj, client.MergeFrom(before)); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		if mr != nil {
			r.routeEvents(it.obj, parents, oldParents)
		}
		if r.Recorder == nil {
			continue
		}
		for _, ev := range []struct{ typ, reason string }{{v1alpha1.ConditionAccepted, EventRejected}, {v1alpha1.ConditionResolvedRefs, EventResolvedRefs}} {
			c := meta.FindStatusCondition(next, ev.typ)
			if c == nil || c.Status != metav1.ConditionFalse {
				continue
			}
			if o := meta.FindStatusCondition(old, ev.typ); o != nil && o.Status == c.Status && o.Reason == c.Reason && o.Message == c.Message {
				continue
			}
			r.Recorder.Eventf(it.obj, corev1.EventTypeWarning, ev.reason, "%s: %s", c.Reason, c.Message)
		}
	}
	return errors.Join(errs...)
}

// desired is the status out gives it (without lastTransitionTime).
func desired(it item, out *outcome) v1alpha1.ResourceStatus {
	gen := it.obj.GetGeneration()
	var invalid, broken []string
	brokenReason := ""
	if errs := out.rejected[it.ref]; len(errs) > 0 {
		own := map[string]bool{}
		for _, fe := range it.kind.validate(it.obj) {
			own[fe.Field+"\x00"+fe.ErrorBody()] = true
		}
		for _, e := range errs {
			text := e.Msg
			if e.Field != "" {
				text = e.Field + ": " + e.Msg
			}
			reason := ""
			if !own[e.Field+"\x00"+e.Msg] {
				reason = refReason(e)
			}
			if reason == "" {
				invalid = append(invalid, text)
				continue
			}
			if brokenReason == "" {
				brokenReason = reason
			}
			broken = append(broken, text)
		}
	}
	cond := func(typ string, ok bool, reason, msg string) metav1.Condition {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: clip(msg), ObservedGeneration: gen}
	}
	if d, ok := out.detached[it.ref]; ok {
		// Left out before the build: no parentRef accepts it.
		acc := cond(v1alpha1.ConditionAccepted, true, v1alpha1.ReasonAccepted, "the resource is valid")
		if errs := it.kind.validate(it.obj); len(errs) > 0 {
			acc = cond(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonInvalid, errs.ToAggregate().Error())
		}
		return v1alpha1.ResourceStatus{ObservedGeneration: gen, Conditions: []metav1.Condition{acc,
			cond(v1alpha1.ConditionResolvedRefs, false, d[0], d[1]),
			cond(v1alpha1.ConditionProgrammed, false, d[0], "not served: no parent Gateway accepts the route"),
		}}
	}
	var conds []metav1.Condition
	if len(invalid) > 0 {
		conds = append(conds, cond(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonInvalid, strings.Join(invalid, "; ")))
	} else {
		conds = append(conds, cond(v1alpha1.ConditionAccepted, true, v1alpha1.ReasonAccepted, "the resource is valid"))
	}
	switch {
	case len(broken) > 0:
		conds = append(conds, cond(v1alpha1.ConditionResolvedRefs, false, brokenReason, strings.Join(broken, "; ")))
	case len(invalid) > 0:
		c := cond(v1alpha1.ConditionResolvedRefs, false, v1alpha1.ReasonPending, "references are resolved once the resource is valid")
		c.Status = metav1.ConditionUnknown
		conds = append(conds, c)
	default:
		conds = append(conds, cond(v1alpha1.ConditionResolvedRefs, true, v1alpha1.ReasonResolvedRefs, "every reference resolved"))
	}
	switch {
	case out.served[it.ref]:
		conds = append(conds, cond(v1alpha1.ConditionProgrammed, true, v1alpha1.ReasonProgrammed, "served by the gateway"))
	case len(invalid) > 0:
		conds = append(conds, cond(v1alpha1.ConditionProgrammed, false, v1alpha1.ReasonInvalid, "not served: the resource is invalid"))
	default:
		conds = append(conds, cond(v1alpha1.ConditionProgrammed, false, brokenReason, "not served: a reference is broken"))
	}
	return v1alpha1.ResourceStatus{ObservedGeneration: gen, Conditions: conds}
}

// refReason says which broken reference e reports, or "" when it is not about one.
func refReason(e translate.Error) string {
	f, m := strings.ToLower(e.Field), e.Msg
	switch {
	case strings.Contains(m, "Secret not found"), strings.Contains(m, "Secret has no key"),
		strings.Contains(m, "Secret or key not found"), strings.Contains(m, "Secret value is empty"):
		return v1alpha1.ReasonSecretMissing
	case strings.Contains(f, "backendref"):
		if strings.HasPrefix(m, "Not found") || strings.Contains(m, "Backend not found") {
			return v1alpha1.ReasonRefNotFound
		}
		return v1alpha1.ReasonInvalidRef
	case strings.Contains(f, "targetref") && strings.HasPrefix(m, "Not found"):
		return v1alpha1.ReasonInvalidRef
	case isSecretKey(lastSegment(f)):
		return v1alpha1.ReasonInvalidRef
	}
	return ""
}

// lastSegment returns the last name of a field path, without an index:
// "spec.tls.caBundleRefs[0]" → "cabundlerefs".
func lastSegment(f string) string {
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		f = f[i+1:]
	}
	if i := strings.IndexByte(f, '['); i >= 0 {
		f = f[:i]
	}
	return f
}

// sameStatus compares ignoring lastTransitionTime.
func sameStatus(have *v1alpha1.ResourceStatus, want v1alpha1.ResourceStatus) bool {
	return have.ObservedGeneration == want.ObservedGeneration && sameConds(have.Conditions, want.Conditions)
}

func clip(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage - len(" …")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " …"
}
