package v1alpha1

import (
	"net/url"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MCPRoute fronts Model Context Protocol servers (Backends with protocol MCP) as one MCP
// server at one path: their tools, resources and prompts merged, each tool name
// prefixed to keep it unique, and the gateway's access rules, rate limits and payload
// processors applied to every call.
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=sluice
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.spec.path`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MCPRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              MCPRouteSpec   `json:"spec"`
	Status            ResourceStatus `json:"status,omitempty"`
}

// MCPRouteSpec is where the route listens and which servers it fronts.
type MCPRouteSpec struct {
	// Path is the Streamable HTTP endpoint clients connect to. Default /mcp.
	// +kubebuilder:validation:Pattern=`^/[A-Za-z0-9._~/-]*$`
	Path string `json:"path,omitempty"`
	// BackendRefs are the MCP servers, in order: the first server's item wins when two
	// list the same resource URI.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	BackendRefs []MCPBackendRef `json:"backendRefs"`
	// SessionKeyRef names a Secret key (default key "sessionKey", at least 32 bytes) that
	// seals session ids: every replica with the same key continues every session. Without
	// it each gateway process draws its own key, and a session lives only on the replica
	// that started it.
	SessionKeyRef *SecretKeyRef `json:"sessionKeyRef,omitempty"`
	// SessionTTL is how long a session id stays valid after initialize. Default 24h.
	SessionTTL *metav1.Duration `json:"sessionTTL,omitempty"`
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose pages may call
	// the route; "*" allows any. A request with an Origin header not listed is refused
	// (MCP asks servers to check Origin, against DNS rebinding). Requests without Origin,
	// from programs rather than browsers, are not affected.
	// +kubebuilder:validation:items:MinLength=1
	AllowedOrigins []string `json:"allowedOrigins,omitempty"`
}

// MCPBackendRef is one MCP server behind the route.
type MCPBackendRef struct {
	// Name is a Backend with protocol MCP.
	// +kubebuilder:validation:MinLength=1
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// ToolPrefix is put before the server's tool and prompt names (ev_echo); the prefixes
	// of a route must not be prefixes of one another. Empty is allowed for one server.
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_.-]*$`
	// +kubebuilder:validation:MaxLength=64
	ToolPrefix string `json:"toolPrefix,omitempty"`
	// Tools selects the server's tools by their names without prefix.
	Tools *ToolSelector `json:"tools,omitempty"`
}

// ToolSelector keeps the tools that match include and not exclude (globs: * and ?).
type ToolSelector struct {
	// Include defaults to every tool.
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// MCPRouteList is a list of MCPRoutes.
// +kubebuilder:object:root=true
type MCPRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MCPRoute `json:"items"`
}

// DefaultMCPPath is where an MCPRoute listens when it names no path.
const DefaultMCPPath = "/mcp"

// DefaultMCPSessionTTL is how long an MCP session lasts when the route does not say.
const DefaultMCPSessionTTL = 24 * 60 * 60 // seconds

// Default fills empty fields.
func (r *MCPRoute) Default() {
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	s := &r.Spec
	if s.Path == "" {
		s.Path = DefaultMCPPath
	}
	if s.SessionTTL == nil {
		s.SessionTTL = &metav1.Duration{Duration: DefaultMCPSessionTTL * 1e9}
	}
	for i := range s.BackendRefs {
		if s.BackendRefs[i].Namespace == "" {
			s.BackendRefs[i].Namespace = r.Namespace
		}
	}
	if k := s.SessionKeyRef; k != nil && k.Key == "" {
		k.Key = "sessionKey"
	}
}

// inferencePaths are the gateway's own endpoints, which an MCPRoute cannot take.
var inferencePaths = []string{"/v1/", "/healthz", "/readyz"}

// Validate checks what can be checked on an MCPRoute alone. Call Default first.
func (r *MCPRoute) Validate() field.ErrorList {
	errs := validateMeta(r.Name, r.Namespace)
	s := &r.Spec
	p := field.NewPath("spec")
	if !strings.HasPrefix(s.Path, "/") || strings.ContainsAny(s.Path, "?#% \t\r\n") {
		errs = append(errs, field.Invalid(p.Child("path"), s.Path, "must be an absolute path without query, escapes or spaces"))
	}
	for _, reserved := range inferencePaths {
		if s.Path == strings.TrimSuffix(reserved, "/") || strings.HasPrefix(s.Path, reserved) {
			errs = append(errs, field.Invalid(p.Child("path"), s.Path, "is the gateway's own endpoint"))
		}
	}
	if len(s.BackendRefs) == 0 {
		errs = append(errs, field.Required(p.Child("backendRefs"), "name at least one MCP Backend"))
	}
	seen := map[string]bool{}
	for i, b := range s.BackendRefs {
		bp := p.Child("backendRefs").Index(i)
		if b.Name == "" {
			errs = append(errs, field.Required(bp.Child("name"), ""))
		}
		if seen[b.Namespace+"/"+b.Name] {
			errs = append(errs, field.Duplicate(bp.Child("name"), b.Name))
		}
		seen[b.Namespace+"/"+b.Name] = true
		for _, c := range b.ToolPrefix {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
				errs = append(errs, field.Invalid(bp.Child("toolPrefix"), b.ToolPrefix, "may hold only letters, digits, '_', '-' and '.'"))
				break
			}
		}
		for j, o := range s.BackendRefs[:i] {
			if strings.HasPrefix(b.ToolPrefix, o.ToolPrefix) || strings.HasPrefix(o.ToolPrefix, b.ToolPrefix) {
				errs = append(errs, field.Invalid(bp.Child("toolPrefix"), b.ToolPrefix,
					"is a prefix of, or prefixed by, backendRefs["+strconv.Itoa(j)+"].toolPrefix: a tool name must tell its server"))
			}
		}
		if t := b.Tools; t != nil {
			for _, l := range []struct {
				name  string
				globs []string
			}{{"include", t.Include}, {"exclude", t.Exclude}} {
				for j, g := range l.globs {
					if g == "" || strings.ContainsAny(g, "[]\\") {
						errs = append(errs, field.Invalid(bp.Child("tools", l.name).Index(j), g, "must be a non-empty glob of * and ?"))
					}
				}
			}
		}
	}
	for i, o := range s.AllowedOrigins {
		if u, err := url.Parse(o); o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil) {
			errs = append(errs, field.Invalid(p.Child("allowedOrigins").Index(i), o, `must be scheme://host[:port] or "*"`))
		}
	}
	if s.SessionTTL != nil && s.SessionTTL.Duration <= 0 {
		errs = append(errs, field.Invalid(p.Child("sessionTTL"), s.SessionTTL.Duration.String(), "must be > 0"))
	}
	return errs
}
