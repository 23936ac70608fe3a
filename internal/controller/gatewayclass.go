package controller

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// GatewayControllerName is the spec.controllerName of the GatewayClasses Sluice accepts.
const GatewayControllerName = "sluice.dev/gateway-controller"

// GatewayClassReconciler marks every GatewayClass naming GatewayControllerName
// Accepted. Gateways and HTTPRoutes are not served yet: this only claims the class.
// It runs on the leader.
type GatewayClassReconciler struct {
	Client client.Client
}

// Reconcile sets the Accepted condition of the GatewayClass req names, when it is ours
// and the condition is not already current.
func (r *GatewayClassReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var gc gatewayv1.GatewayClass
	if err := r.Client.Get(ctx, req.NamespacedName, &gc); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if gc.Spec.ControllerName != GatewayControllerName {
		return reconcile.Result{}, nil
	}
	want := metav1.Condition{
		Type:               string(gatewayv1.GatewayClassConditionStatusAccepted),
		Status:             metav1.ConditionTrue,
		Reason:             string(gatewayv1.GatewayClassReasonAccepted),
		Message:            "accepted by Sluice",
		ObservedGeneration: gc.Generation,
	}
	if c := meta.FindStatusCondition(gc.Status.Conditions, want.Type); c != nil &&
		c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message && c.ObservedGeneration == want.ObservedGeneration {
		return reconcile.Result{}, nil
	}
	before := gc.DeepCopy()
	meta.SetStatusCondition(&gc.Status.Conditions, want)
	err := r.Client.Status().Patch(ctx, &gc, client.MergeFrom(before))
	if apierrors.IsNotFound(err) {
		err = nil
	}
	return reconcile.Result{}, err
}

// SetupWithManager watches GatewayClasses (the Gateway API CRDs must be installed).
func (r *GatewayClassReconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		gc, ok := o.(*gatewayv1.GatewayClass)
		return ok && gc.Spec.ControllerName == GatewayControllerName
	})
	return builder.ControllerManagedBy(mgr).
		Named("sluice-gatewayclass").
		For(&gatewayv1.GatewayClass{}, builder.WithPredicates(ours)).
		Complete(r)
}
