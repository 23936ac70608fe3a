package route

import (
	"net/http"
	"sort"
	"strings"
)

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PathRule sends requests by host and path (a Gateway API HTTPRoute rule) to a route,
// whatever model they ask for.
type PathRule struct {
	// Hosts are the HTTPRoute's hostnames: exact names or "*.example.com"; empty: any.
	Hosts []string
	// Exact: Path must equal the request path; else it is a prefix on a segment boundary.
	Exact bool
	Path  string
	// Method, when set, must equal the request's method; every header must match exactly
	// (names case-insensitively).
	Method  string
	Headers []HeaderMatch
	Route   *Route
}

// HeaderMatch is one exact header match of a rule (Name canonical).
type HeaderMatch struct{ Name, Value string }

// SetPaths installs the rules, ordered as the Gateway API ranks matches: an exact host
// before a wildcard before none, an exact path before a prefix, longer prefixes first,
// then a method match, then more header matches.
func (t *Table) SetPaths(rules []PathRule) {
	t.paths = append([]PathRule(nil), rules...)
	rank := func(r PathRule) (int, int, int) {
		h := 0
		for _, host := range r.Hosts {
			if strings.HasPrefix(host, "*.") {
				h = max(h, 1)
			} else {
				h = 2
			}
		}
		e := 0
		if r.Exact {
			e = 1
		}
		return h, e, len(r.Path)*1024 + btoi(r.Method != "")*512 + len(r.Headers)
	}
	sort.SliceStable(t.paths, func(i, j int) bool {
		hi, ei, li := rank(t.paths[i])
		hj, ej, lj := rank(t.paths[j])
		if hi != hj {
			return hi > hj
		}
		if ei != ej {
			return ei > ej
		}
		return li > lj
	})
}

// MatchPath returns the route of the first rule the request matches, or nil.
func (t *Table) MatchPath(host, path, method string, header http.Header) *Route {
	if len(t.paths) == 0 {
		return nil
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.ToLower(host)
	for i := range t.paths {
		r := &t.paths[i]
		if len(r.Hosts) > 0 && !hostMatch(r.Hosts, host) {
			continue
		}
		if !(r.Exact && path == r.Path || !r.Exact && prefixMatch(r.Path, path)) {
			continue
		}
		if r.Method != "" && r.Method != method {
			continue
		}
		if headersMatch(r.Headers, header) {
			return r.Route
		}
	}
	return nil
}

func headersMatch(want []HeaderMatch, h http.Header) bool {
	for _, m := range want {
		if v := h[m.Name]; len(v) == 0 || v[0] != m.Value {
			return false
		}
	}
	return true
}

func hostMatch(hosts []string, host string) bool {
	for _, h := range hosts {
		if w, ok := strings.CutPrefix(h, "*"); ok {
			if strings.HasSuffix(host, w) && len(host) > len(w) {
				return true
			}
		} else if h == host {
			return true
		}
	}
	return false
}

// prefixMatch is the Gateway API's PathPrefix: element-wise, so /v1 matches /v1 and
// /v1/chat but not /v10.
func prefixMatch(prefix, path string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
