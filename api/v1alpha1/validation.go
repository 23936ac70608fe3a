package v1alpha1

import (
	"net"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks what can be checked on a Backend alone. Call Default first.
func (b *Backend) Validate() field.ErrorList {
	errs := validateMeta(b.Name, b.Namespace)
	s := &b.Spec
	p := field.NewPath("spec")
	switch s.Schema {
	case SchemaOpenAI:
		switch {
		case s.URL == "" && s.Destination == nil:
			errs = append(errs, field.Required(p.Child("url"), "url or destination is required"))
		case s.URL != "" && s.Destination != nil:
			errs = append(errs, field.Invalid(p.Child("destination"), "", "set url or destination, not both"))
		case s.URL != "":
			errs = append(errs, validateURL(p.Child("url"), s.URL)...)
		default:
			errs = append(errs, s.Destination.validate(p.Child("destination"))...)
		}
		if s.Mock != nil {
			errs = append(errs, field.Forbidden(p.Child("mock"), "only for schema Mock"))
		}
	case SchemaMock:
		if s.URL != "" || s.Destination != nil {
			errs = append(errs, field.Forbidden(p.Child("url"), "schema Mock answers in-process and takes no url or destination"))
		}
		if s.Credentials != nil {
			errs = append(errs, field.Forbidden(p.Child("credentials"), "schema Mock needs no credentials"))
		}
		if m := s.Mock; m != nil {
			mp := p.Child("mock")
			if m.Latency != nil && m.Latency.Duration < 0 {
				errs = append(errs, field.Invalid(mp.Child("latency"), m.Latency.Duration.String(), "must be >= 0"))
			}
			if m.TokensPerSecond < 0 {
				errs = append(errs, field.Invalid(mp.Child("tokensPerSecond"), m.TokensPerSecond, "must be >= 0"))
			}
			if m.Chunks < 1 || m.Chunks > 4096 {
				errs = append(errs, field.Invalid(mp.Child("chunks"), m.Chunks, "must be between 1 and 4096"))
			}
		}
	case "":
		errs = append(errs, field.Required(p.Child("schema"), "one of OpenAI, Mock"))
	default:
		errs = append(errs, field.NotSupported(p.Child("schema"), s.Schema, []string{string(SchemaOpenAI), string(SchemaMock)}))
	}
	if t := s.Timeouts; t != nil {
		tp := p.Child("timeouts")
		errs = append(errs, positive(tp.Child("connect"), t.Connect)...)
		errs = append(errs, positive(tp.Child("firstByte"), t.FirstByte)...)
		errs = append(errs, positive(tp.Child("idle"), t.Idle)...)
	}
	if s.MaxConcurrentRequests < 0 {
		errs = append(errs, field.Invalid(p.Child("maxConcurrentRequests"), s.MaxConcurrentRequests, "must be >= 0"))
	}
	if c := s.Credentials; c != nil && c.APIKey != nil {
		rp := p.Child("credentials", "apiKey", "secretRef")
		if c.APIKey.SecretRef.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
	}
	return errs
}

func validateURL(p *field.Path, raw string) field.ErrorList {
	u, err := url.Parse(raw)
	if err != nil {
		return field.ErrorList{field.Invalid(p, raw, "not a URL")}
	}
	var errs field.ErrorList
	if u.Scheme != "http" && u.Scheme != "https" {
		errs = append(errs, field.Invalid(p, raw, "scheme must be http or https"))
	}
	if u.Hostname() == "" {
		errs = append(errs, field.Invalid(p, raw, "must name a host"))
	}
	if u.User != nil {
		errs = append(errs, field.Invalid(p, "(redacted)", "must not carry user information; use credentials"))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, field.Invalid(p, raw, "must not have a query or fragment"))
	}
	return errs
}

func (d *Destination) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	set := 0
	for _, ok := range []bool{d.Fqdn != nil, d.IP != nil, d.KubernetesService != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		errs = append(errs, field.Invalid(p, string(d.Type), "exactly one of fqdn, ip, kubernetesService must be set, matching type"))
	}
	switch d.Type {
	case DestinationFqdn:
		if d.Fqdn == nil {
			errs = append(errs, field.Required(p.Child("fqdn"), "for type Fqdn"))
		} else {
			for _, msg := range validation.IsDNS1123Subdomain(d.Fqdn.Hostname) {
				errs = append(errs, field.Invalid(p.Child("fqdn", "hostname"), d.Fqdn.Hostname, msg))
			}
		}
	case DestinationIP:
		if d.IP == nil {
			errs = append(errs, field.Required(p.Child("ip"), "for type Ip"))
		} else if net.ParseIP(d.IP.Address) == nil {
			errs = append(errs, field.Invalid(p.Child("ip", "address"), d.IP.Address, "not an IP address"))
		}
	case DestinationKubernetesService:
		if d.KubernetesService == nil {
			errs = append(errs, field.Required(p.Child("kubernetesService"), "for type KubernetesService"))
		} else {
			for _, msg := range validation.IsDNS1123Label(d.KubernetesService.Name) {
				errs = append(errs, field.Invalid(p.Child("kubernetesService", "name"), d.KubernetesService.Name, msg))
			}
			if ns := d.KubernetesService.Namespace; ns != "" {
				for _, msg := range validation.IsDNS1123Label(ns) {
					errs = append(errs, field.Invalid(p.Child("kubernetesService", "namespace"), ns, msg))
				}
			}
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("type"), d.Type, []string{string(DestinationFqdn), string(DestinationIP), string(DestinationKubernetesService)}))
	}
	for i, port := range d.Ports {
		if port.Number < 1 || port.Number > 65535 {
			errs = append(errs, field.Invalid(p.Child("ports").Index(i).Child("number"), port.Number, "must be between 1 and 65535"))
		}
	}
	if d.Scheme != "" && d.Scheme != "http" && d.Scheme != "https" {
		errs = append(errs, field.NotSupported(p.Child("scheme"), d.Scheme, []string{"http", "https"}))
	}
	if d.PathPrefix != "" && (!strings.HasPrefix(d.PathPrefix, "/") || strings.ContainsAny(d.PathPrefix, "?#")) {
		errs = append(errs, field.Invalid(p.Child("pathPrefix"), d.PathPrefix, "must start with / and have no query or fragment"))
	}
	return errs
}

// Validate checks what can be checked on a ModelRoute alone. Call Default first.
func (r *ModelRoute) Validate() field.ErrorList {
	errs := validateMeta(r.Name, r.Namespace)
	p := field.NewPath("spec")
	if len(r.Spec.Models) == 0 {
		errs = append(errs, field.Required(p.Child("models"), "at least one model name or glob"))
	}
	seen := map[string]bool{}
	for i, m := range r.Spec.Models {
		mp := p.Child("models").Index(i)
		switch {
		case m == "":
			errs = append(errs, field.Required(mp, "empty model name"))
		case seen[m]:
			errs = append(errs, field.Duplicate(mp, m))
		case strings.ContainsAny(m, "[]\\"):
			errs = append(errs, field.Invalid(mp, m, "only * and ? are glob characters; [, ] and \\ are not allowed"))
		}
		seen[m] = true
	}
	if len(r.Spec.BackendRefs) == 0 {
		errs = append(errs, field.Required(p.Child("backendRefs"), "at least one backend"))
	}
	if len(r.Spec.BackendRefs) > MaxBackendRefs {
		errs = append(errs, field.TooMany(p.Child("backendRefs"), len(r.Spec.BackendRefs), MaxBackendRefs))
	}
	for i, ref := range r.Spec.BackendRefs {
		rp := p.Child("backendRefs").Index(i)
		if ref.Name == "" {
			errs = append(errs, field.Required(rp.Child("name"), ""))
		}
		if ref.Weight != nil && *ref.Weight < 0 {
			errs = append(errs, field.Invalid(rp.Child("weight"), *ref.Weight, "must be >= 0"))
		}
		if ref.Priority < 0 {
			errs = append(errs, field.Invalid(rp.Child("priority"), ref.Priority, "must be >= 0"))
		}
	}
	if t := r.Spec.Timeouts; t != nil {
		tp := p.Child("timeouts")
		errs = append(errs, positive(tp.Child("request"), t.Request)...)
		errs = append(errs, positive(tp.Child("firstToken"), t.FirstToken)...)
	}
	return errs
}

func validateMeta(name, namespace string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), name, msg))
	}
	for _, msg := range validation.IsDNS1123Label(namespace) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "namespace"), namespace, msg))
	}
	return errs
}

func positive(p *field.Path, d *metav1.Duration) field.ErrorList {
	if d != nil && d.Duration <= 0 {
		return field.ErrorList{field.Invalid(p, d.Duration.String(), "must be > 0")}
	}
	return nil
}
