package mcp

import (
	"strings"
	"time"
)

// Route is a compiled MCPRoute.
type Route struct {
	// Ref is "MCPRoute/namespace/name"; Path where it listens.
	Ref, Path string
	// Servers are the route's servers in order.
	Servers []*Server
	// Sealer seals the route's session ids; TTL is how long one lives.
	Sealer *Sealer
	TTL    time.Duration
	// Origins are the allowed browser origins; AnyOrigin allows every one.
	Origins   map[string]bool
	AnyOrigin bool
}

// AllowsOrigin reports whether a request with this Origin header ("" when absent) may
// call the route.
func (r *Route) AllowsOrigin(origin string) bool {
	return origin == "" || r.AnyOrigin || r.Origins[strings.ToLower(origin)]
}

// ToolServer finds the server of a prefixed tool or prompt name and returns the name
// without its prefix. Prefixes of one route are never prefixes of one another, so at
// most one server matches.
func (r *Route) ToolServer(name string) (*Server, string) {
	for _, s := range r.Servers {
		if rest, ok := strings.CutPrefix(name, s.Prefix); ok && rest != "" {
			return s, rest
		}
	}
	return nil, ""
}

// Server returns the route's server with Backend ref, or nil.
func (r *Route) Server(ref string) *Server {
	for _, s := range r.Servers {
		if s.Ref == ref {
			return s
		}
	}
	return nil
}

// Set is a snapshot's MCPRoutes by path.
type Set struct {
	byPath map[string]*Route
}

// NewSet indexes routes by path (the translator has refused duplicate paths).
func NewSet(routes []*Route) *Set {
	s := &Set{byPath: make(map[string]*Route, len(routes))}
	for _, r := range routes {
		s.byPath[r.Path] = r
	}
	return s
}

// Route returns the route listening at path, or nil.
func (s *Set) Route(path string) *Route {
	if s == nil {
		return nil
	}
	return s.byPath[path]
}
