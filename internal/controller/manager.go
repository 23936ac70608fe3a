package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrlcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/server"
	"github.com/sluice-gateway/sluice/internal/translate"
)

// Name is the controller's name: the manager's controller, the events' reporter.
const Name = "sluice-controller"

// DefaultLeaderElectionID is the Lease the replicas compete for.
const DefaultLeaderElectionID = "sluice-controller.sluice.dev"

// SetupWithManager registers r with mgr: a watch on every Sluice kind (spec changes,
// creations, deletions) and on the Secrets they reference, all enqueuing SnapshotKey
// after r.Debounce. The controller runs on every replica (each serves traffic); only
// the elected one writes status: when r.IsLeader is nil it is set from mgr.Elected, and
// winning the election triggers a reconcile so the new leader writes status at once.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Client == nil {
		r.Client = mgr.GetClient()
	}
	if r.IsLeader == nil {
		elected := mgr.Elected()
		r.IsLeader = func() bool {
			select {
			case <-elected:
				return true
			default:
				return false
			}
		}
	}
	debounce := r.Debounce
	if debounce <= 0 {
		debounce = 100 * time.Millisecond
	}
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) { q.AddAfter(SnapshotKey, debounce) }
	enqueue := handler.Funcs{
		CreateFunc: func(_ context.Context, _ event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		UpdateFunc: func(_ context.Context, _ event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		DeleteFunc: func(_ context.Context, _ event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		GenericFunc: func(_ context.Context, _ event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
	}
	wanted := predicate.NewPredicateFuncs(func(o client.Object) bool { return r.WantsSecret(o.GetNamespace(), o.GetName()) })

	elected := make(chan event.GenericEvent, 1)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		// A RunnableFunc runs on the leader only.
		elected <- event.GenericEvent{Object: &v1alpha1.Backend{}}
		<-ctx.Done()
		return nil
	})); err != nil {
		return err
	}

	b := builder.ControllerManagedBy(mgr).
		Named(Name).
		WithOptions(ctrlcontroller.Options{NeedLeaderElection: ptr(false), MaxConcurrentReconciles: 1})
	for i := range kinds {
		b = b.Watches(kinds[i].object(), enqueue, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	}
	b = b.Watches(&corev1.Secret{}, enqueue, builder.WithPredicates(predicate.ResourceVersionChangedPredicate{}, wanted))
	if r.GatewayAPI {
		for _, o := range []client.Object{&gatewayv1.GatewayClass{}, &gatewayv1.Gateway{}, &gatewayv1.HTTPRoute{}} {
			b = b.Watches(o, enqueue, builder.WithPredicates(predicate.GenerationChangedPredicate{}))
		}
	}
	b = b.WatchesRawSource(source.Channel(elected, enqueue))
	return b.Complete(r)
}

func ptr[T any](v T) *T { return &v }

// gatewayAPIInstalled reports whether the API server serves the Gateway API v1 kinds
// the reconciler reads.
func gatewayAPIInstalled(m apimeta.RESTMapper) (bool, error) {
	for _, k := range []string{"GatewayClass", "Gateway", "HTTPRoute"} {
		_, err := m.RESTMapping(schema.GroupKind{Group: gatewayv1.GroupName, Kind: k}, gatewayv1.GroupVersion.Version)
		if apimeta.IsNoMatchError(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// NewEventRecorder adapts an events.k8s.io recorder (a manager's GetEventRecorder).
func NewEventRecorder(r events.EventRecorder) EventRecorder { return eventsRecorder{r} }

type eventsRecorder struct{ r events.EventRecorder }

func (e eventsRecorder) Eventf(obj runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	e.r.Eventf(obj, nil, eventtype, reason, "Reconcile", messageFmt, args...)
}

// RESTConfig returns the configuration for kubeconfig, or when it is empty the usual
// search: $KUBECONFIG, in-cluster, ~/.kube/config.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return config.GetConfig()
}

// Options configure Run.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// Namespace, when set, is the only namespace watched; empty: all.
	Namespace string
	// LeaderElection makes replicas elect the one that writes status.
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease (default: Namespace, or the pod's own
	// namespace in a cluster).
	LeaderElectionNamespace string
	// LeaderElectionID names the Lease (default DefaultLeaderElectionID).
	LeaderElectionID string
	// MetricsBindAddress is controller-runtime's metrics listener; "" or "0": none.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz; "": none.
	HealthProbeBindAddress string
	// OnSnapshot receives every new snapshot.
	OnSnapshot func(*translate.Snapshot)
	// OnListeners receives the listeners of the Gateways of Sluice's class whenever they
	// change (Reconciler.OnListeners; a server.ListenerSet's Apply). Needs GatewayClass.
	OnListeners func([]server.Listener)
	// Logger; nil discards.
	Logger *slog.Logger
	// Debounce: see Reconciler.Debounce.
	Debounce time.Duration
	// GatewayClass accepts the GatewayClasses naming GatewayControllerName, and turns on
	// the Gateway API integration (Reconciler.GatewayAPI): Gateways, GatewayClasses and
	// HTTPRoutes are watched and get status. When the Gateway API CRDs are not installed
	// this is logged and skipped: the manager starts without it.
	GatewayClass bool
}

// New returns a manager with the reconciler registered, ready to Start.
func New(opts Options) (manager.Manager, *Reconciler, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	metrics := opts.MetricsBindAddress
	if metrics == "" {
		metrics = "0"
	}
	mo := manager.Options{
		Scheme:                  NewScheme(),
		Logger:                  logr.FromSlogHandler(log.Handler()),
		Metrics:                 metricsserver.Options{BindAddress: metrics},
		HealthProbeBindAddress:  opts.HealthProbeBindAddress,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        opts.LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// Hand the Lease over at once on a clean shutdown. Losing it otherwise makes
		// Start return an error ("leader election lost"): the process is expected to exit.
		LeaderElectionReleaseOnCancel: true,
	}
	if mo.LeaderElectionID == "" {
		mo.LeaderElectionID = DefaultLeaderElectionID
	}
	if mo.LeaderElectionNamespace == "" {
		mo.LeaderElectionNamespace = opts.Namespace
	}
	if opts.Namespace != "" {
		mo.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{opts.Namespace: {}}}
	}
	mgr, err := manager.New(opts.Config, mo)
	if err != nil {
		return nil, nil, fmt.Errorf("controller manager: %w", err)
	}
	gatewayAPI := false
	if opts.GatewayClass {
		if gatewayAPI, err = gatewayAPIInstalled(mgr.GetRESTMapper()); err != nil {
			return nil, nil, fmt.Errorf("looking for the Gateway API CRDs: %w", err)
		}
		if !gatewayAPI {
			log.Warn("the Gateway API CRDs (gateway.networking.k8s.io/v1 GatewayClass, Gateway, HTTPRoute) are not installed: GatewayClasses, Gateways and HTTPRoutes are not watched, ModelRoute parentRefs are not checked")
		}
	}
	r := &Reconciler{
		GatewayAPI:  gatewayAPI,
		Client:      mgr.GetClient(),
		Namespace:   opts.Namespace,
		OnSnapshot:  opts.OnSnapshot,
		OnListeners: opts.OnListeners,
		Recorder:    NewEventRecorder(mgr.GetEventRecorder(Name)),
		Logger:      log,
		Debounce:    opts.Debounce,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, nil, err
	}
	if gatewayAPI {
		if err := (&GatewayClassReconciler{}).SetupWithManager(mgr); err != nil {
			return nil, nil, err
		}
	}
	if opts.HealthProbeBindAddress != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, nil, err
		}
		// Ready once a snapshot is served.
		if err := mgr.AddReadyzCheck("snapshot", func(*http.Request) error {
			if r.Snapshot() == nil {
				return errors.New("no configuration published yet")
			}
			return nil
		}); err != nil {
			return nil, nil, err
		}
	}
	return mgr, r, nil
}
