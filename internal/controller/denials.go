package controller

import (
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-gateway/sluice/internal/gateway"
)

// EventDenied is the reason of the Warning event recorded for a denied request.
const EventDenied = "Denied"

// DefaultDenialInterval is how often at most a Denied event is recorded per object and
// reason (Reconciler.DenialInterval).
const DefaultDenialInterval = 10 * time.Second

// denialState is what RecordDenial reads, kept apart from the reconciler's lock (held
// for a whole reconcile) so that the request path never waits on the API server.
type denialState struct {
	mu      sync.Mutex
	objects map[string]client.Object // by Ref: a bare copy (kind, namespace, name, uid)
	policy  string                   // Ref of the AccessPolicy in force; "" when none
	limiter *denialLimiter
}

// rememberDenialTargets records the objects of the last load and the AccessPolicy the published
// snapshot serves.
func (r *Reconciler) rememberDenialTargets(items []item, out *outcome) {
	objs := make(map[string]client.Object, len(items))
	for _, it := range items {
		o := it.kind.object()
		o.GetObjectKind().SetGroupVersionKind(GroupVersion.WithKind(it.kind.name))
		o.SetNamespace(it.obj.GetNamespace())
		o.SetName(it.obj.GetName())
		o.SetUID(it.obj.GetUID())
		objs[it.ref] = o
	}
	d := &r.denials
	d.mu.Lock()
	defer d.mu.Unlock()
	d.objects = objs
	if out == nil || out.snap == nil {
		return // nothing was built: the running configuration stays, and its policy
	}
	d.policy = ""
	if out.snap.Policy != nil {
		for ref := range out.served {
			if strings.HasPrefix(ref, "AccessPolicy/") {
				d.policy = ref
			}
		}
	}
}

// RecordDenial records a Warning event, reason Denied, for a request the data path
// refused (wire it as gateway.Options.OnDenial): on the ModelRoute of d.Route when the
// request was routed, else on the AccessPolicy in force. Every replica records the
// denials it served (only status is the leader's: a follower's denials would otherwise be
// lost); each replica limits its own rate. At
// most one event per DenialInterval is recorded per object and reason; the denials
// held back meanwhile are counted, and the next event (recorded when the interval ends,
// even if no denial follows) says "and N more". It never blocks on the API server: the
// client-go recorders queue events (and drop them when their queue is full).
func (r *Reconciler) RecordDenial(d gateway.Denial) {
	if r.Recorder == nil {
		return
	}
	ds := &r.denials
	ds.mu.Lock()
	obj := ds.target(d.Route)
	if ds.limiter == nil {
		every := r.DenialInterval
		if every <= 0 {
			every = DefaultDenialInterval
		}
		ds.limiter = newDenialLimiter(every)
	}
	l := ds.limiter
	ds.mu.Unlock()
	if obj == nil {
		return
	}
	key := obj.GetObjectKind().GroupVersionKind().Kind + "/" + obj.GetNamespace() + "/" + obj.GetName() + "\x00" + d.Reason
	msg := denialMessage(d)
	emit, more := l.admit(key, msg, func(msg string, more int) {
		// The interval is over and denials were held back: record the last one.
		r.Recorder.Eventf(obj, corev1.EventTypeWarning, EventDenied, "%s", withMore(msg, more))
	})
	if emit {
		r.Recorder.Eventf(obj, corev1.EventTypeWarning, EventDenied, "%s", withMore(msg, more))
	}
}

// target is the object a denial of route is recorded on; nil when there is none.
func (ds *denialState) target(route string) client.Object {
	ref := ds.policy
	if parts := strings.Split(route, "/"); len(parts) == 3 && (parts[0] == "ModelRoute" || parts[0] == "MCPRoute") && parts[2] != "" {
		ref = route
	}
	if ref == "" {
		return nil
	}
	if o := ds.objects[ref]; o != nil {
		return o
	}
	// Not listed (yet, or any more): a bare reference still names it.
	parts := strings.Split(ref, "/")
	for i := range kinds {
		if k := &kinds[i]; k.name == parts[0] {
			o := k.object()
			o.GetObjectKind().SetGroupVersionKind(GroupVersion.WithKind(k.name))
			o.SetNamespace(parts[1])
			o.SetName(parts[2])
			return o
		}
	}
	return nil
}

// denialMessage is "denied model M for subject S (team T): REASON", leaving out what is
// not known (an unauthenticated caller has no subject; its model is not read yet).
func denialMessage(d gateway.Denial) string {
	var b strings.Builder
	b.WriteString("denied ")
	if d.Model != "" {
		fmt.Fprintf(&b, "model %s", d.Model)
	} else {
		b.WriteString("request")
	}
	if d.Subject != "" {
		fmt.Fprintf(&b, " for subject %s", d.Subject)
		if d.Team != "" {
			fmt.Fprintf(&b, " (team %s)", d.Team)
		}
	}
	if d.Backend != "" {
		fmt.Fprintf(&b, " on %s", d.Backend)
	}
	b.WriteString(": ")
	if d.Code == "" || strings.HasPrefix(d.Reason, d.Code) {
		b.WriteString(d.Reason)
	} else {
		fmt.Fprintf(&b, "%s (%s)", d.Code, d.Reason)
	}
	return b.String()
}

func withMore(msg string, more int) string {
	if more <= 0 {
		return msg
	}
	return fmt.Sprintf("%s (and %d more)", msg, more)
}

// denialLimiter is a token bucket per key (one token, refilled every interval): a
// denial that finds the token is recorded at once; one that does not is counted, and
// when the token is back the last one held back is recorded with the count of the
// others ("and N more"), so no denial goes unreported and a key records at most one
// event per interval.
type denialLimiter struct {
	mu    sync.Mutex
	every time.Duration
	now   func() time.Time
	// after runs f after d (time.AfterFunc); tests replace it.
	after func(d time.Duration, f func())
	keys  map[string]*denialBucket
}

type denialBucket struct {
	next    time.Time // when the token is back
	held    int       // denials held back since the last event
	last    string    // the message of the last one held back
	pending bool      // a flush is scheduled
	flush   func(msg string, more int)
}

func newDenialLimiter(every time.Duration) *denialLimiter {
	return &denialLimiter{
		every: every,
		now:   time.Now,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		keys:  map[string]*denialBucket{},
	}
}

// maxIdleBuckets bounds the buckets kept: idle ones are swept when it is reached, and a
// denial of a new key finding as many busy ones is not recorded.
const maxIdleBuckets = 1024

// admit decides for one denial of key with message msg. emit: record it now, saying
// more others were held back since the last event. Otherwise it is held back, and
// flush will be called with the last message held back and the count of the others
// once the token is back.
func (l *denialLimiter) admit(key, msg string, flush func(msg string, more int)) (emit bool, more int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.keys[key]
	if b == nil {
		if len(l.keys) >= maxIdleBuckets {
			if l.sweep(now); len(l.keys) >= maxIdleBuckets {
				return false, 0 // too many keys busy at once: not recorded
			}
		}
		b = &denialBucket{}
		l.keys[key] = b
	}
	if !now.Before(b.next) {
		more = b.held
		b.held, b.last, b.next = 0, "", now.Add(l.every)
		return true, more
	}
	b.held++
	b.last, b.flush = msg, flush
	if !b.pending {
		b.pending = true
		l.after(b.next.Sub(now), func() { l.fire(key) })
	}
	return false, 0
}

// fire records what key held back, when its token is back.
func (l *denialLimiter) fire(key string) {
	l.mu.Lock()
	b := l.keys[key]
	if b == nil {
		l.mu.Unlock()
		return
	}
	b.pending = false
	if b.held == 0 {
		l.mu.Unlock()
		return
	}
	now := l.now()
	if now.Before(b.next) { // a denial took the token meanwhile
		b.pending = true
		l.after(b.next.Sub(now), func() { l.fire(key) })
		l.mu.Unlock()
		return
	}
	msg, more, flush := b.last, b.held-1, b.flush
	b.held, b.last, b.flush, b.next = 0, "", nil, now.Add(l.every)
	l.mu.Unlock()
	flush(msg, more)
}

// sweep forgets the buckets with nothing held back whose token is back.
func (l *denialLimiter) sweep(now time.Time) {
	for k, b := range l.keys {
		if b.held == 0 && !b.pending && !now.Before(b.next) {
			delete(l.keys, k)
		}
	}
}
