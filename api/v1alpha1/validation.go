package v1alpha1

import (
	"crypto/sha256"
	"encoding/base64"
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
	schema := s.Schema
	switch s.Protocol {
	case "", ProtocolHTTP:
	case ProtocolMCP:
		if s.Schema != "" {
			errs = append(errs, field.Forbidden(p.Child("schema"), "an MCP Backend speaks MCP and takes no schema"))
		}
		if s.Pool != nil {
			errs = append(errs, field.Forbidden(p.Child("pool"), "an MCP Backend takes no pool"))
		}
		if c := s.Credentials; c != nil && c.APIKey == nil {
			errs = append(errs, field.Forbidden(p.Child("credentials"), "an MCP Backend takes only credentials.apiKey"))
		}
		schema = SchemaOpenAI // checked like a remote HTTP API: url or destination
	default:
		errs = append(errs, field.NotSupported(p.Child("protocol"), s.Protocol, []string{string(ProtocolHTTP), string(ProtocolMCP)}))
	}
	switch schema {
	case SchemaOpenAI, SchemaAzureOpenAI, SchemaAnthropic, SchemaGCPVertexAI, SchemaAWSBedrock:
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
		errs = append(errs, field.Required(p.Child("schema"), "one of "+strings.Join(schemaNames(), ", ")))
	default:
		errs = append(errs, field.NotSupported(p.Child("schema"), s.Schema, schemaNames()))
	}
	errs = append(errs, s.validateCredentials(p.Child("credentials"))...)
	if s.TLS != nil {
		errs = append(errs, s.TLS.validate(p.Child("tls"))...)
	}
	if s.Region != "" {
		for _, msg := range validation.IsDNS1123Label(s.Region) {
			errs = append(errs, field.Invalid(p.Child("region"), s.Region, msg))
		}
	}
	if h := s.RequestHeaders; h != nil {
		errs = append(errs, h.validate(p.Child("requestHeaders"))...)
	}
	if s.Azure != nil && s.Schema != SchemaAzureOpenAI {
		errs = append(errs, field.Forbidden(p.Child("azure"), "only for schema AzureOpenAI"))
	}
	if s.Anthropic != nil && s.Schema != SchemaAnthropic && s.Schema != SchemaGCPVertexAI {
		errs = append(errs, field.Forbidden(p.Child("anthropic"), "only for schemas Anthropic and GCPVertexAI"))
	}
	if a := s.Anthropic; a != nil && a.DefaultMaxTokens < 0 {
		errs = append(errs, field.Invalid(p.Child("anthropic", "defaultMaxTokens"), a.DefaultMaxTokens, "must be >= 0"))
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
	if s.MaxQueuedRequests < 0 {
		errs = append(errs, field.Invalid(p.Child("maxQueuedRequests"), s.MaxQueuedRequests, "must be >= 0"))
	}
	if s.MaxQueuedRequests > 0 && s.MaxConcurrentRequests == 0 {
		errs = append(errs, field.Invalid(p.Child("maxQueuedRequests"), s.MaxQueuedRequests, "needs maxConcurrentRequests: without a limit nothing waits"))
	}
	if t := s.Timeouts; t != nil {
		errs = append(errs, positive(p.Child("timeouts", "queue"), t.Queue)...)
	}
	if h := s.HealthCheck; h != nil {
		hp := p.Child("healthCheck")
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, "?#\r\n") {
			errs = append(errs, field.Invalid(hp.Child("path"), h.Path, "must start with / and have no query"))
		}
		errs = append(errs, positive(hp.Child("interval"), h.Interval)...)
		errs = append(errs, positive(hp.Child("timeout"), h.Timeout)...)
		if h.UnhealthyThreshold < 1 || h.HealthyThreshold < 1 {
			errs = append(errs, field.Invalid(hp, "", "thresholds must be >= 1"))
		}
		if s.Schema == SchemaMock {
			errs = append(errs, field.Forbidden(hp, "a Mock backend has nothing to check"))
		}
		if o := s.OutlierDetection; o != nil && o.Disabled {
			errs = append(errs, field.Forbidden(hp, "needs outlierDetection (a failed check ejects the Backend)"))
		}
	}
	if s.Pool != nil {
		errs = append(errs, s.Pool.validate(s, p.Child("pool"))...)
	}
	if s.Pricing != nil {
		errs = append(errs, s.Pricing.validate(p.Child("pricing"))...)
	}
	if o := s.OutlierDetection; o != nil {
		op := p.Child("outlierDetection")
		if o.ConsecutiveFailures < 0 {
			errs = append(errs, field.Invalid(op.Child("consecutiveFailures"), o.ConsecutiveFailures, "must be >= 0"))
		}
		if o.FailureRatePercent < 0 || o.FailureRatePercent > 100 {
			errs = append(errs, field.Invalid(op.Child("failureRatePercent"), o.FailureRatePercent, "must be between 0 and 100"))
		}
		errs = append(errs, positive(op.Child("baseEjectionTime"), o.BaseEjectionTime)...)
		errs = append(errs, positive(op.Child("maxEjectionTime"), o.MaxEjectionTime)...)
	}
	return errs
}

func schemaNames() []string {
	out := make([]string, len(Schemas))
	for i, s := range Schemas {
		out[i] = string(s)
	}
	return out
}

// validateCredentials checks that exactly one kind is set and that it fits the schema.
func (s *BackendSpec) validateCredentials(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	c := s.Credentials
	if c == nil {
		switch s.Schema {
		case SchemaAWSBedrock:
			errs = append(errs, field.Required(p.Child("awsSigV4"), "AWSBedrock requests must be signed"))
		case SchemaGCPVertexAI:
			errs = append(errs, field.Required(p.Child("gcpServiceAccount"), "GCPVertexAI needs a service account (and its project and location)"))
		}
		return errs
	}
	n := 0
	for _, set := range []bool{c.APIKey != nil, c.AWSSigV4 != nil, c.GCPServiceAccount != nil, c.Azure != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		errs = append(errs, field.Invalid(p, "", "set exactly one of apiKey, awsSigV4, gcpServiceAccount, azure"))
	}
	if c.APIKey != nil && c.APIKey.SecretRef.Name == "" {
		errs = append(errs, field.Required(p.Child("apiKey", "secretRef", "name"), ""))
	}
	if c.APIKey != nil && (s.Schema == SchemaAWSBedrock || s.Schema == SchemaGCPVertexAI) {
		errs = append(errs, field.Forbidden(p.Child("apiKey"), "not for schema "+string(s.Schema)))
	}
	if a := c.AWSSigV4; a != nil {
		if s.Schema != SchemaAWSBedrock {
			errs = append(errs, field.Forbidden(p.Child("awsSigV4"), "only for schema AWSBedrock"))
		}
		if a.SecretRef.Name == "" {
			errs = append(errs, field.Required(p.Child("awsSigV4", "secretRef", "name"), ""))
		}
	} else if s.Schema == SchemaAWSBedrock {
		errs = append(errs, field.Required(p.Child("awsSigV4"), "AWSBedrock requests must be signed"))
	}
	if g := c.GCPServiceAccount; g != nil {
		gp := p.Child("gcpServiceAccount")
		if s.Schema != SchemaGCPVertexAI {
			errs = append(errs, field.Forbidden(gp, "only for schema GCPVertexAI"))
		}
		if g.SecretRef.Name == "" {
			errs = append(errs, field.Required(gp.Child("secretRef", "name"), ""))
		}
		if !pathSegment(g.Project) {
			errs = append(errs, field.Invalid(gp.Child("project"), g.Project, "must be a Google Cloud project id"))
		}
		if !pathSegment(g.Location) {
			errs = append(errs, field.Invalid(gp.Child("location"), g.Location, "must be a Google Cloud location (europe-west4, us-central1, global)"))
		}
	} else if s.Schema == SchemaGCPVertexAI {
		errs = append(errs, field.Required(p.Child("gcpServiceAccount"), "GCPVertexAI needs a service account (and its project and location)"))
	}
	if az := c.Azure; az != nil {
		ap := p.Child("azure")
		if s.Schema != SchemaAzureOpenAI {
			errs = append(errs, field.Forbidden(ap, "only for schema AzureOpenAI"))
		}
		if (az.APIKey == nil) == (az.ClientCredentials == nil) {
			errs = append(errs, field.Invalid(ap, "", "set exactly one of apiKey, clientCredentials"))
		}
		if cc := az.ClientCredentials; cc != nil {
			cp := ap.Child("clientCredentials")
			if !pathSegment(cc.TenantID) {
				errs = append(errs, field.Invalid(cp.Child("tenantID"), cc.TenantID, "must be a tenant id or domain"))
			}
			if cc.ClientID == "" {
				errs = append(errs, field.Required(cp.Child("clientID"), ""))
			}
			if cc.SecretRef.Name == "" {
				errs = append(errs, field.Required(cp.Child("secretRef", "name"), ""))
			}
			if cc.AuthorityHost != "" {
				errs = append(errs, validateURL(cp.Child("authorityHost"), cc.AuthorityHost)...)
			}
		}
	}
	return errs
}

// pathSegment accepts identifiers that go into a URL path unescaped: letters, digits,
// '-', '_' and '.', and not "." or "..".
func pathSegment(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 128 && identChars(s)
}

// identChars reports whether s has only letters, digits, '-', '_' and '.'.
func identChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func (t *BackendTLS) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		errs = append(errs, field.NotSupported(p.Child("minVersion"), t.MinVersion, []string{"1.2", "1.3"}))
	}
	for i, r := range t.CABundleRefs {
		if r.Name == "" {
			errs = append(errs, field.Required(p.Child("caBundleRefs").Index(i).Child("name"), ""))
		}
	}
	if r := t.ClientCertificateRef; r != nil && r.Name == "" {
		errs = append(errs, field.Required(p.Child("clientCertificateRef", "name"), ""))
	}
	for i, pin := range t.PinnedSHA256 {
		if b, err := base64.StdEncoding.DecodeString(pin); err != nil || len(b) != sha256.Size {
			errs = append(errs, field.Invalid(p.Child("pinnedSHA256").Index(i), pin, "must be the base64 of a SHA-256 digest (44 characters)"))
		}
	}
	if t.SNI != "" {
		for _, msg := range validation.IsDNS1123Subdomain(t.SNI) {
			errs = append(errs, field.Invalid(p.Child("sni"), t.SNI, msg))
		}
	}
	return errs
}

// credentialHeaders may not be set by a header policy: credentials belong in credentials.
var credentialHeaders = map[string]bool{"authorization": true, "x-api-key": true, "api-key": true, "x-goog-api-key": true, "cookie": true, "proxy-authorization": true, "host": true, "content-length": true}

func (h *HeaderPolicy) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	check := func(fp *field.Path, name string) {
		if !validHeaderName(name) {
			errs = append(errs, field.Invalid(fp, name, "not a valid header name"))
		}
	}
	for i, n := range h.Allow {
		check(p.Child("allow").Index(i), n)
	}
	for i, n := range h.Remove {
		check(p.Child("remove").Index(i), n)
	}
	for i, hv := range h.Set {
		fp := p.Child("set").Index(i)
		check(fp.Child("name"), hv.Name)
		if credentialHeaders[strings.ToLower(hv.Name)] {
			errs = append(errs, field.Forbidden(fp.Child("name"), "credentials are set with spec.credentials"))
		}
		if strings.ContainsAny(hv.Value, "\r\n\x00") {
			errs = append(errs, field.Invalid(fp.Child("value"), "", "must not contain line breaks"))
		}
	}
	return errs
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
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
	for i, reg := range r.Spec.Regions {
		for _, msg := range validation.IsDNS1123Label(reg) {
			errs = append(errs, field.Invalid(p.Child("regions").Index(i), reg, msg))
		}
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
		if ref.Pricing != nil {
			errs = append(errs, ref.Pricing.validate(rp.Child("pricing"))...)
		}
	}
	if t := r.Spec.Timeouts; t != nil {
		tp := p.Child("timeouts")
		errs = append(errs, positive(tp.Child("request"), t.Request)...)
		errs = append(errs, positive(tp.Child("firstToken"), t.FirstToken)...)
	}
	if rp := r.Spec.Retry; rp != nil {
		pp := p.Child("retry")
		if rp.Attempts < 1 || rp.Attempts > 10 {
			errs = append(errs, field.Invalid(pp.Child("attempts"), rp.Attempts, "must be between 1 and 10"))
		}
		for i, on := range rp.RetryOn {
			switch on {
			case RetryOn5xx, RetryOn429, RetryOnConnectFailure, RetryOnTimeout:
			default:
				errs = append(errs, field.NotSupported(pp.Child("retryOn").Index(i), on, []string{"5xx", "429", "connect-failure", "timeout"}))
			}
		}
		if b := rp.Backoff; b != nil {
			errs = append(errs, positive(pp.Child("backoff", "base"), b.Base)...)
			errs = append(errs, positive(pp.Child("backoff", "max"), b.Max)...)
			if b.Base != nil && b.Max != nil && b.Max.Duration < b.Base.Duration {
				errs = append(errs, field.Invalid(pp.Child("backoff", "max"), b.Max.Duration.String(), "must be at least base"))
			}
		}
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
