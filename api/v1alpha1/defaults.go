package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults for fields left empty.
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultFirstByteTimeout = 60 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultQueueTimeout     = 5 * time.Second
	DefaultMockChunks       = 8
	DefaultWeight           = 1
	DefaultRetryBase        = 100 * time.Millisecond
	DefaultRetryMax         = 2 * time.Second
	// MaxBackendRefs bounds the candidates of one route.
	MaxBackendRefs = 64
)

func defaultDuration(d **metav1.Duration, v time.Duration) {
	if *d == nil {
		*d = &metav1.Duration{Duration: v}
	}
}

// Default fills every empty field that has a default.
func (b *Backend) Default() {
	if b.Namespace == "" {
		b.Namespace = DefaultNamespace
	}
	s := &b.Spec
	if s.Protocol == "" {
		s.Protocol = ProtocolHTTP
	}
	if s.Timeouts == nil {
		s.Timeouts = &BackendTimeouts{}
	}
	defaultDuration(&s.Timeouts.Connect, DefaultConnectTimeout)
	defaultDuration(&s.Timeouts.FirstByte, DefaultFirstByteTimeout)
	defaultDuration(&s.Timeouts.Idle, DefaultIdleTimeout)
	defaultDuration(&s.Timeouts.Queue, DefaultQueueTimeout)
	if h := s.HealthCheck; h != nil {
		if h.Path == "" {
			h.Path = "/models"
		}
		defaultDuration(&h.Interval, 10*time.Second)
		defaultDuration(&h.Timeout, 2*time.Second)
		if h.UnhealthyThreshold == 0 {
			h.UnhealthyThreshold = 2
		}
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = 1
		}
	}
	if s.Pool != nil {
		s.Pool.defaults()
	}
	if s.Schema == SchemaMock {
		if s.Mock == nil {
			s.Mock = &MockSpec{}
		}
		if s.Mock.Chunks == 0 {
			s.Mock.Chunks = DefaultMockChunks
		}
	}
	if d := s.Destination; d != nil && len(d.Ports) == 0 {
		port := int32(443)
		if d.Scheme == "http" || (d.Scheme == "" && d.Type == DestinationKubernetesService) {
			port = 80
		}
		d.Ports = []DestinationPort{{Number: port}}
	}
	if c := s.Credentials; c != nil && c.APIKey != nil && c.APIKey.SecretRef.Namespace == "" {
		c.APIKey.SecretRef.Namespace = b.Namespace
	}
}

// Default fills every empty field that has a default.
func (r *ModelRoute) Default() {
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	for i := range r.Spec.BackendRefs {
		ref := &r.Spec.BackendRefs[i]
		if ref.Namespace == "" {
			ref.Namespace = r.Namespace
		}
		if ref.Weight == nil {
			w := int32(DefaultWeight)
			ref.Weight = &w
		}
	}
	if rp := r.Spec.Retry; rp != nil {
		if len(rp.RetryOn) == 0 {
			rp.RetryOn = []RetryOn{RetryOn5xx, RetryOnConnectFailure}
		}
		if rp.Backoff == nil {
			rp.Backoff = &RetryBackoff{}
		}
		defaultDuration(&rp.Backoff.Base, DefaultRetryBase)
		defaultDuration(&rp.Backoff.Max, max(DefaultRetryMax, rp.Backoff.Base.Duration))
	}
}
