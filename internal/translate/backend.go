package translate

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/egress"
	"github.com/sluice-gateway/sluice/internal/outlier"
	"github.com/sluice-gateway/sluice/internal/picker"
	"github.com/sluice-gateway/sluice/internal/provider"
	"github.com/sluice-gateway/sluice/internal/provider/anthropic"
	"github.com/sluice-gateway/sluice/internal/provider/azure"
	"github.com/sluice-gateway/sluice/internal/provider/bedrock"
	"github.com/sluice-gateway/sluice/internal/provider/mock"
	"github.com/sluice-gateway/sluice/internal/provider/openai"
	"github.com/sluice-gateway/sluice/internal/provider/vertex"
	"github.com/sluice-gateway/sluice/internal/route"
)

// backendBuild collects what one Backend compiles into.
type backendBuild struct {
	b    *builder
	be   *v1alpha1.Backend
	errs field.ErrorList
	// secrets hashes every secret value used, so the fingerprint changes when one does
	// without the fingerprint holding it.
	secrets []byte
}

func (bb *backendBuild) fail(p *field.Path, value any, msg string) {
	bb.errs = append(bb.errs, field.Invalid(p, value, msg))
}

// secret reads key of the named Secret (namespace defaults to the Backend's).
func (bb *backendBuild) secret(p *field.Path, ns, name, key string) []byte {
	if ns == "" {
		ns = bb.be.Namespace
	}
	data, ok := bb.b.secrets[ns+"/"+name]
	if !ok {
		bb.fail(p, ns+"/"+name+"["+key+"]", "Secret not found")
		return nil
	}
	v, ok := data[key]
	if !ok {
		bb.fail(p, ns+"/"+name+"["+key+"]", "Secret has no key "+strconv.Quote(key))
		return nil
	}
	sum := sha256.Sum256(v)
	bb.secrets = append(bb.secrets, sum[:]...)
	return v
}

// token reads a secret that must be one line of text.
func (bb *backendBuild) token(p *field.Path, ns, name, key string) string {
	v := bb.secret(p, ns, name, key)
	if v == nil {
		return ""
	}
	val := strings.TrimSpace(string(v))
	if val == "" || strings.ContainsAny(val, "\r\n") {
		bb.fail(p, ns+"/"+name+"["+key+"]", "Secret value is empty or spans lines")
		return ""
	}
	return val
}

func orKey(key, def string) string {
	if key == "" {
		return def
	}
	return key
}

// backend compiles one Backend. The fingerprint captures everything its Upstream is built
// from, secrets included (hashed), so a reload reuses an Upstream only when nothing changed.
func (b *builder) backend(be *v1alpha1.Backend, ref string, models []string) (*route.Backend, string, field.ErrorList) {
	bb := &backendBuild{b: b, be: be}
	s := &be.Spec
	spec := field.NewPath("spec")
	opts := egress.Options{
		Timeouts: egress.Timeouts{
			Connect:   s.Timeouts.Connect.Duration,
			FirstByte: s.Timeouts.FirstByte.Duration,
			Idle:      s.Timeouts.Idle.Duration,
		},
		MaxConcurrent: int(s.MaxConcurrentRequests),
		MaxQueued:     int(s.MaxQueuedRequests),
		QueueTimeout:  s.Timeouts.Queue.Duration,
	}
	if o := s.OutlierDetection; o == nil || !o.Disabled {
		cfg := outlier.Config{}
		if o != nil {
			cfg.ConsecutiveFailures = int(o.ConsecutiveFailures)
			cfg.FailureRate = float64(o.FailureRatePercent) / 100
			if o.BaseEjectionTime != nil {
				cfg.BaseEjection = o.BaseEjectionTime.Duration
			}
			if o.MaxEjectionTime != nil {
				cfg.MaxEjection = o.MaxEjectionTime.Duration
			}
		}
		opts.Outlier = &cfg
		if h := s.HealthCheck; h != nil {
			opts.HealthCheck = &egress.HealthCheck{Path: h.Path, Interval: h.Interval.Duration, Timeout: h.Timeout.Duration,
				UnhealthyThreshold: int(h.UnhealthyThreshold), HealthyThreshold: int(h.HealthyThreshold)}
		}
	}
	if s.Schema == v1alpha1.SchemaMock {
		opts.BaseURL = &url.URL{Scheme: "http", Host: "mock.sluice.invalid", Path: "/v1"}
		sort.Strings(models)
		opts.Base = mock.NewTransport(mock.NewHandler(*s.Mock, slices.Compact(models)))
	} else {
		u, err := baseURL(be)
		if err != nil {
			bb.fail(spec.Child("destination"), "", err.Error())
		}
		opts.BaseURL = u
		models = nil // only the Mock's answers depend on the models routed to it
	}
	var adapter provider.Adapter
	if s.Protocol != v1alpha1.ProtocolMCP {
		adapter = bb.adapter(&opts)
	}
	opts.Signer = bb.signer(opts.BaseURL)
	if s.TLS != nil {
		if opts.BaseURL != nil && opts.BaseURL.Scheme != "https" {
			bb.fail(spec.Child("tls"), "", "applies to https destinations only")
		}
		opts.TLS = bb.tlsConfig(spec.Child("tls"), s.TLS)
	}
	opts.Headers = headerPolicy(s.RequestHeaders)
	if len(bb.errs) > 0 {
		return nil, "", bb.errs
	}
	fpBytes, _ := json.Marshal(struct {
		Spec    v1alpha1.BackendSpec
		Secrets string
		Models  []string
	}{*s, hex.EncodeToString(bb.secrets), models})
	fp := string(fpBytes)
	if b.prev != nil && b.prev.fingerprints[ref] == fp {
		if old := b.prev.Backends[ref]; old != nil {
			return old, fp, nil
		}
	}
	poolOutlier := opts.Outlier
	if s.Pool != nil {
		opts.Outlier = nil // a pool ejects its endpoints one by one
		if opts.BaseURL.Scheme == "https" {
			opts.TLS = poolTLS(opts.TLS, opts.BaseURL.Hostname())
		}
	}
	up := egress.NewUpstream(opts)
	if p := s.Pool; p != nil {
		if err := up.UsePool(poolConfig(p, opts.BaseURL.Scheme, poolOutlier)); err != nil {
			return nil, "", field.ErrorList{field.Invalid(spec.Child("pool"), "", err.Error())}
		}
		up.HonorDestination = p.DestinationHeader == v1alpha1.DestinationHeaderHonor
		if a := p.PrefixAffinity; a != nil {
			up.PrefixBytes = int(a.PrefixBytes)
		}
	}
	return &route.Backend{Ref: ref, Schema: s.Schema, MCP: s.Protocol == v1alpha1.ProtocolMCP, Region: s.Region, Adapter: adapter, Upstream: up, Price: price(s.Pricing)}, fp, nil
}

// poolConfig compiles an EndpointPool for the picker.
func poolConfig(p *v1alpha1.EndpointPool, scheme string, out *outlier.Config) picker.Config {
	cfg := picker.Config{
		Addresses:        p.Endpoints,
		KVCacheThreshold: float64(p.KVCacheThresholdPercent) / 100,
		QueueThreshold:   int(p.QueueThreshold),
		Outlier:          out,
	}
	switch p.Picker {
	case v1alpha1.PickerLeastOutstanding:
		cfg.Strategy = picker.LeastOutstanding
	case v1alpha1.PickerPrefixAffinity:
		cfg.Strategy = picker.PrefixAffinity
		cfg.LoadFactor = float64(p.PrefixAffinity.LoadFactorPercent) / 100
	default:
		cfg.Strategy = picker.LoadAware
	}
	if m := p.Metrics; m != nil {
		cfg.Metrics = &picker.MetricsConfig{Scheme: scheme, Path: m.Path,
			Interval: m.Interval.Duration, StaleAfter: m.StaleAfter.Duration, Timeout: m.Timeout.Duration}
	}
	return cfg
}

// poolTLS makes sure certificates are verified against the Backend's host name, not the
// endpoint address a pool dials.
func poolTLS(cfg *tls.Config, host string) *tls.Config {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		cfg = cfg.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

// adapter picks the wire adapter of the schema.
func (bb *backendBuild) adapter(opts *egress.Options) provider.Adapter {
	s := &bb.be.Spec
	anthropicOptions := func() anthropic.Options {
		var o anthropic.Options
		if a := s.Anthropic; a != nil {
			o.Version, o.DefaultMaxTokens = a.Version, a.DefaultMaxTokens
		}
		return o
	}
	switch s.Schema {
	case v1alpha1.SchemaAzureOpenAI:
		v := ""
		if s.Azure != nil {
			v = s.Azure.APIVersion
		}
		return azure.New(v)
	case v1alpha1.SchemaAnthropic:
		return anthropic.New(anthropicOptions())
	case v1alpha1.SchemaGCPVertexAI:
		g := s.Credentials.GCPServiceAccount // required by validation
		claude := anthropicOptions()
		claude.Vertex = &anthropic.VertexOptions{Project: g.Project, Location: g.Location}
		return vertex.NewBackend(vertex.Options{Project: g.Project, Location: g.Location}, anthropic.New(claude))
	case v1alpha1.SchemaAWSBedrock:
		return bedrock.New()
	}
	return openai.Adapter{}
}

// signer builds the credential injection of the Backend.
func (bb *backendBuild) signer(base *url.URL) egress.Signer {
	s := &bb.be.Spec
	c := s.Credentials
	if c == nil {
		return nil
	}
	p := field.NewPath("spec", "credentials")
	switch {
	case c.APIKey != nil:
		r := c.APIKey.SecretRef
		key := bb.token(p.Child("apiKey", "secretRef"), r.Namespace, r.Name, orKey(r.Key, "apiKey"))
		switch s.Schema {
		case v1alpha1.SchemaAnthropic:
			return egress.NewHeaderSigner("X-Api-Key", key)
		case v1alpha1.SchemaAzureOpenAI:
			return egress.NewHeaderSigner("Api-Key", key)
		}
		return egress.NewHeaderSigner("Authorization", "Bearer "+key)
	case c.Azure != nil && c.Azure.APIKey != nil:
		r := c.Azure.APIKey.SecretRef
		return egress.NewHeaderSigner("Api-Key", bb.token(p.Child("azure", "apiKey", "secretRef"), r.Namespace, r.Name, orKey(r.Key, "apiKey")))
	case c.Azure != nil && c.Azure.ClientCredentials != nil:
		cc := c.Azure.ClientCredentials
		secret := bb.token(p.Child("azure", "clientCredentials", "secretRef"), cc.SecretRef.Namespace, cc.SecretRef.Name, orKey(cc.SecretRef.Key, "clientSecret"))
		host := strings.TrimRight(cc.AuthorityHost, "/")
		if host == "" {
			host = "https://login.microsoftonline.com"
		}
		scope := cc.Scope
		if scope == "" {
			scope = "https://cognitiveservices.azure.com/.default"
		}
		return egress.NewAzureClientCredentials(host, cc.TenantID, cc.ClientID, secret, scope)
	case c.GCPServiceAccount != nil:
		g := c.GCPServiceAccount
		keyJSON := bb.secret(p.Child("gcpServiceAccount", "secretRef"), g.SecretRef.Namespace, g.SecretRef.Name, orKey(g.SecretRef.Key, "credentials.json"))
		if keyJSON == nil {
			return nil
		}
		sig, err := egress.NewGoogleServiceAccount(keyJSON)
		if err != nil {
			bb.fail(p.Child("gcpServiceAccount", "secretRef"), g.SecretRef.Name, "the Secret does not hold a service-account JSON key")
			return nil
		}
		return sig
	case c.AWSSigV4 != nil:
		a := c.AWSSigV4
		rp := p.Child("awsSigV4", "secretRef")
		id := bb.token(rp, a.SecretRef.Namespace, a.SecretRef.Name, "accessKeyId")
		secret := bb.token(rp, a.SecretRef.Namespace, a.SecretRef.Name, "secretAccessKey")
		var session string
		ns := a.SecretRef.Namespace
		if ns == "" {
			ns = bb.be.Namespace
		}
		if _, ok := bb.b.secrets[ns+"/"+a.SecretRef.Name]["sessionToken"]; ok {
			session = bb.token(rp, a.SecretRef.Namespace, a.SecretRef.Name, "sessionToken")
		}
		region := a.Region
		if region == "" && base != nil {
			region = awsRegionFromHost(base.Hostname())
		}
		if region == "" {
			bb.fail(p.Child("awsSigV4", "region"), "", "required when the host is not bedrock-runtime.REGION.amazonaws.com")
		}
		return egress.NewSigV4(id, secret, session, region, "bedrock")
	}
	return nil
}

// awsRegionFromHost reads REGION from bedrock-runtime[-fips].REGION.amazonaws.com.
func awsRegionFromHost(host string) string {
	parts := strings.Split(host, ".")
	if len(parts) >= 4 && strings.HasPrefix(parts[0], "bedrock-runtime") && strings.HasSuffix(host, ".amazonaws.com") {
		return parts[1]
	}
	return ""
}

// tlsConfig compiles the TLS policy, reading CA bundles and the client certificate.
func (bb *backendBuild) tlsConfig(p *field.Path, t *v1alpha1.BackendTLS) *tls.Config {
	pol := egress.TLSPolicy{ServerName: t.SNI, SubjectAltNames: t.SubjectAltNames}
	if t.MinVersion == "1.3" {
		pol.MinVersion = tls.VersionTLS13
	}
	if len(t.CABundleRefs) > 0 {
		pool := x509.NewCertPool()
		for i, r := range t.CABundleRefs {
			pem := bb.secret(p.Child("caBundleRefs").Index(i), r.Namespace, r.Name, "ca.crt")
			if pem != nil && !pool.AppendCertsFromPEM(pem) {
				bb.fail(p.Child("caBundleRefs").Index(i), r.Name, "ca.crt holds no PEM certificate")
			}
		}
		pol.RootCAs = pool
	}
	if r := t.ClientCertificateRef; r != nil {
		cp := p.Child("clientCertificateRef")
		crt := bb.secret(cp, r.Namespace, r.Name, "tls.crt")
		key := bb.secret(cp, r.Namespace, r.Name, "tls.key")
		if crt != nil && key != nil {
			cert, err := tls.X509KeyPair(crt, key)
			if err != nil {
				bb.fail(cp, r.Name, "tls.crt and tls.key are not a matching PEM certificate and key")
			} else {
				pol.ClientCert = &cert
			}
		}
	}
	for _, pin := range t.PinnedSHA256 {
		raw, _ := base64.StdEncoding.DecodeString(pin) // validated already
		var sum [sha256.Size]byte
		copy(sum[:], raw)
		pol.Pins = append(pol.Pins, sum)
	}
	return pol.Config()
}

func headerPolicy(h *v1alpha1.HeaderPolicy) *egress.HeaderPolicy {
	if h == nil {
		return nil
	}
	p := &egress.HeaderPolicy{}
	if len(h.Allow) > 0 {
		p.Allow = map[string]bool{}
		for _, n := range h.Allow {
			p.Allow[http.CanonicalHeaderKey(n)] = true
		}
	}
	for _, n := range h.Remove {
		p.Remove = append(p.Remove, http.CanonicalHeaderKey(n))
	}
	if len(h.Set) > 0 {
		p.Set = http.Header{}
		for _, hv := range h.Set {
			p.Set[http.CanonicalHeaderKey(hv.Name)] = []string{hv.Value}
		}
	}
	return p
}
