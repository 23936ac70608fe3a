package v1alpha1

import (
	"net"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// EndpointPool makes a Backend a pool of interchangeable model servers (self-hosted vLLM,
// SGLang, TGI) that serve the same models. The Backend's url (or destination) still gives
// the scheme, the base path and, for https, the name certificates are verified against;
// each request goes to one endpoint the picker chooses.
// +kubebuilder:validation:XValidation:rule="!has(self.prefixAffinity) || (has(self.picker) && self.picker == 'PrefixAffinity')",message="prefixAffinity is only for picker PrefixAffinity"
type EndpointPool struct {
	// Endpoints are the servers, as host:port (an IPv6 address in brackets). At most 256.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +listType=set
	// +kubebuilder:validation:items:Pattern=`^(\[[^\[\]/?#@\s]+\]|[^\[\]:/?#@\s]+):\+?0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$`
	Endpoints []string `json:"endpoints"`
	// Picker chooses the endpoint: LeastOutstanding, LoadAware (default) or PrefixAffinity.
	Picker PickerType `json:"picker,omitempty"`
	// Metrics, when set, scrapes each endpoint's Prometheus metrics (vLLM's queue depth
	// and KV-cache use) for LoadAware and PrefixAffinity. Off unless set.
	Metrics *PoolMetrics `json:"metrics,omitempty"`
	// KVCacheThresholdPercent (default 90) and QueueThreshold (waiting requests; 0, the
	// default, is off): an endpoint whose fresh metrics reach either is avoided while
	// another is below both.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	KVCacheThresholdPercent int32 `json:"kvCacheThresholdPercent,omitempty"`
	// +kubebuilder:validation:Minimum=0
	QueueThreshold int32 `json:"queueThreshold,omitempty"`
	// PrefixAffinity tunes picker PrefixAffinity.
	PrefixAffinity *PrefixAffinity `json:"prefixAffinity,omitempty"`
	// DestinationHeader is Ignore (default) or Honor: whether a request's
	// x-gateway-destination-endpoint header (the Gateway API Inference Extension's
	// endpoint-picker protocol) chooses the endpoint. Only the pool's own endpoints are
	// ever used. Honor it only when a trusted picker in front sets it: a client that
	// chooses its server can probe another tenant's prompt cache.
	DestinationHeader DestinationHeaderMode `json:"destinationHeader,omitempty"`
}

// PickerType names an endpoint-picking strategy.
// +kubebuilder:validation:Enum=LeastOutstanding;LoadAware;PrefixAffinity
type PickerType string

// Pickers.
const (
	PickerLeastOutstanding PickerType = "LeastOutstanding"
	PickerLoadAware        PickerType = "LoadAware"
	PickerPrefixAffinity   PickerType = "PrefixAffinity"
)

// DestinationHeaderMode says what to do with x-gateway-destination-endpoint.
// +kubebuilder:validation:Enum=Ignore;Honor
type DestinationHeaderMode string

// Destination header modes.
const (
	DestinationHeaderIgnore DestinationHeaderMode = "Ignore"
	DestinationHeaderHonor  DestinationHeaderMode = "Honor"
)

// PoolMetrics is how endpoint metrics are scraped.
// +kubebuilder:validation:XValidation:rule="duration(has(self.staleAfter) ? self.staleAfter : '5s') >= duration(has(self.interval) ? self.interval : '1s')",message="staleAfter (default 5s) must be at least the interval (default 1s)"
type PoolMetrics struct {
	// Path is requested on each endpoint. Default /metrics.
	// +kubebuilder:validation:Pattern=`^/[^?#\r\n ]*$`
	Path string `json:"path,omitempty"`
	// Interval between scrapes (default 1s); metrics older than StaleAfter (default 5s)
	// are ignored; Timeout bounds one scrape (default 1s).
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Interval *metav1.Duration `json:"interval,omitempty"`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	StaleAfter *metav1.Duration `json:"staleAfter,omitempty"`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be > 0"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// PrefixAffinity keeps requests that share a prompt prefix on one endpoint, so its KV
// cache serves them, while bounding any endpoint's load.
type PrefixAffinity struct {
	// PrefixBytes is how much of the prompt's start is hashed: its texts up to and
	// including the first user message (a conversation's later turns repeat them, so the
	// whole conversation stays on one server). Default 512.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1048576
	// +kubebuilder:validation:XValidation:rule="self == 0 || self >= 16",message="must be between 16 and 1048576"
	PrefixBytes int32 `json:"prefixBytes,omitempty"`
	// LoadFactorPercent bounds an endpoint's requests in flight to this share of the
	// pool's average (plus one) before its prefixes spill to the next endpoint on the
	// ring. Default 125; at least 100.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +kubebuilder:validation:XValidation:rule="self == 0 || self >= 100",message="must be between 100 and 1000"
	LoadFactorPercent int32 `json:"loadFactorPercent,omitempty"`
}

// Pool defaults.
const (
	DefaultPoolPrefixBytes       = 512
	DefaultPoolLoadFactorPercent = 125
	DefaultPoolKVCachePercent    = 90
	MaxPoolEndpoints             = 256
)

func (p *EndpointPool) defaults() {
	if p.Picker == "" {
		p.Picker = PickerLoadAware
	}
	if p.DestinationHeader == "" {
		p.DestinationHeader = DestinationHeaderIgnore
	}
	if p.KVCacheThresholdPercent == 0 {
		p.KVCacheThresholdPercent = DefaultPoolKVCachePercent
	}
	if m := p.Metrics; m != nil {
		if m.Path == "" {
			m.Path = "/metrics"
		}
		defaultDuration(&m.Interval, time.Second)
		defaultDuration(&m.StaleAfter, 5*time.Second)
		defaultDuration(&m.Timeout, time.Second)
	}
	if p.Picker == PickerPrefixAffinity && p.PrefixAffinity == nil {
		p.PrefixAffinity = &PrefixAffinity{}
	}
	if a := p.PrefixAffinity; a != nil {
		if a.PrefixBytes == 0 {
			a.PrefixBytes = DefaultPoolPrefixBytes
		}
		if a.LoadFactorPercent == 0 {
			a.LoadFactorPercent = DefaultPoolLoadFactorPercent
		}
	}
}

func (p *EndpointPool) validate(s *BackendSpec, fp *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case len(p.Endpoints) == 0:
		errs = append(errs, field.Required(fp.Child("endpoints"), "at least one host:port"))
	case len(p.Endpoints) > MaxPoolEndpoints:
		errs = append(errs, field.TooMany(fp.Child("endpoints"), len(p.Endpoints), MaxPoolEndpoints))
	}
	seen := map[string]bool{}
	for i, e := range p.Endpoints {
		if msg := checkHostPort(e); msg != "" {
			errs = append(errs, field.Invalid(fp.Child("endpoints").Index(i), e, msg))
		} else if seen[e] {
			errs = append(errs, field.Duplicate(fp.Child("endpoints").Index(i), e))
		}
		seen[e] = true
	}
	switch p.Picker {
	case PickerLeastOutstanding, PickerLoadAware, PickerPrefixAffinity:
	default:
		errs = append(errs, field.NotSupported(fp.Child("picker"), p.Picker, []string{"LeastOutstanding", "LoadAware", "PrefixAffinity"}))
	}
	switch p.DestinationHeader {
	case DestinationHeaderIgnore, DestinationHeaderHonor:
	default:
		errs = append(errs, field.NotSupported(fp.Child("destinationHeader"), p.DestinationHeader, []string{"Ignore", "Honor"}))
	}
	if p.KVCacheThresholdPercent < 1 || p.KVCacheThresholdPercent > 100 {
		errs = append(errs, field.Invalid(fp.Child("kvCacheThresholdPercent"), p.KVCacheThresholdPercent, "must be between 1 and 100"))
	}
	if p.QueueThreshold < 0 {
		errs = append(errs, field.Invalid(fp.Child("queueThreshold"), p.QueueThreshold, "must be >= 0"))
	}
	if m := p.Metrics; m != nil {
		mp := fp.Child("metrics")
		if !strings.HasPrefix(m.Path, "/") || strings.ContainsAny(m.Path, "?#\r\n ") {
			errs = append(errs, field.Invalid(mp.Child("path"), m.Path, "must start with / and have no query"))
		}
		errs = append(errs, positive(mp.Child("interval"), m.Interval)...)
		errs = append(errs, positive(mp.Child("staleAfter"), m.StaleAfter)...)
		errs = append(errs, positive(mp.Child("timeout"), m.Timeout)...)
		if m.Interval != nil && m.StaleAfter != nil && m.StaleAfter.Duration < m.Interval.Duration {
			errs = append(errs, field.Invalid(mp.Child("staleAfter"), m.StaleAfter.Duration.String(), "must be at least the interval"))
		}
	}
	if a := p.PrefixAffinity; a != nil {
		ap := fp.Child("prefixAffinity")
		if p.Picker != PickerPrefixAffinity {
			errs = append(errs, field.Forbidden(ap, "only for picker PrefixAffinity"))
		}
		if a.PrefixBytes < 16 || a.PrefixBytes > 1<<20 {
			errs = append(errs, field.Invalid(ap.Child("prefixBytes"), a.PrefixBytes, "must be between 16 and 1048576"))
		}
		if a.LoadFactorPercent < 100 || a.LoadFactorPercent > 1000 {
			errs = append(errs, field.Invalid(ap.Child("loadFactorPercent"), a.LoadFactorPercent, "must be between 100 and 1000"))
		}
	}
	if s.Schema == SchemaMock {
		errs = append(errs, field.Forbidden(fp, "a Mock backend answers in-process"))
	}
	return errs
}

// checkHostPort returns why addr is not host:port, or "".
func checkHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "must be host:port (an IPv6 address in brackets)"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "port must be between 1 and 65535"
	}
	if host == "" || strings.ContainsAny(host, "/?#@ \r\n") {
		return "host must be a name or an IP address"
	}
	return ""
}
