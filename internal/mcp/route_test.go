package mcp_test

import (
	"testing"

	"github.com/sluice-gateway/sluice/internal/mcp"
)

func TestServerExposes(t *testing.T) {
	for _, tc := range []struct {
		include, exclude []string
		yes, no          []string
	}{
		{nil, nil, []string{"echo", "", "read-env"}, nil},
		{nil, []string{"read-env"}, []string{"echo", "read-env2"}, []string{"read-env"}},
		{nil, []string{"read-*", "*secret*"}, []string{"echo", "reader"}, []string{"read-env", "read-", "my-secret-tool"}},
		{[]string{"echo", "add"}, nil, []string{"echo", "add"}, []string{"fetch-page", "echo2", "Echo", ""}},
		{[]string{"e?ho"}, nil, []string{"echo", "eXho"}, []string{"eho", "ecccho"}},
		{[]string{"*"}, []string{"add"}, []string{"echo", ""}, []string{"add"}},
		{[]string{}, nil, nil, []string{"echo", ""}}, // an empty include list shows nothing
		{[]string{"echo"}, []string{"echo"}, nil, []string{"echo"}},
	} {
		s := &mcp.Server{Include: tc.include, Exclude: tc.exclude}
		for _, n := range tc.yes {
			if !s.Exposes(n) {
				t.Errorf("include %q exclude %q: %q hidden", tc.include, tc.exclude, n)
			}
		}
		for _, n := range tc.no {
			if s.Exposes(n) {
				t.Errorf("include %q exclude %q: %q shown", tc.include, tc.exclude, n)
			}
		}
	}
}

func TestRouteToolServer(t *testing.T) {
	a := &mcp.Server{Ref: "Backend/default/alpha", Prefix: "a_"}
	b := &mcp.Server{Ref: "Backend/default/beta", Prefix: "b_"}
	r := &mcp.Route{Servers: []*mcp.Server{a, b}}
	for _, tc := range []struct {
		name string
		s    *mcp.Server
		bare string
	}{
		{"a_echo", a, "echo"},
		{"b_echo", b, "echo"},
		{"a_a_echo", a, "a_echo"},
		{"b_", nil, ""}, // the prefix alone names no tool
		{"a_", nil, ""},
		{"c_echo", nil, ""},
		{"echo", nil, ""},
		{"A_echo", nil, ""},
		{"", nil, ""},
	} {
		s, bare := r.ToolServer(tc.name)
		if s != tc.s || bare != tc.bare {
			t.Errorf("ToolServer(%q) = %v, %q; want %v, %q", tc.name, s, bare, tc.s, tc.bare)
		}
	}
	if s := r.Server("Backend/default/beta"); s != b {
		t.Errorf("Server(beta) = %v", s)
	}
	if s := r.Server("Backend/default/gamma"); s != nil {
		t.Errorf("Server(gamma) = %v", s)
	}
	if s, bare := (&mcp.Route{}).ToolServer("a_echo"); s != nil || bare != "" {
		t.Errorf("empty route: %v, %q", s, bare)
	}
}

func TestSetRoute(t *testing.T) {
	var nilSet *mcp.Set
	if r := nilSet.Route("/mcp"); r != nil {
		t.Errorf("nil set: %v", r)
	}
	r1 := &mcp.Route{Ref: "MCPRoute/default/a", Path: "/mcp"}
	r2 := &mcp.Route{Ref: "MCPRoute/default/b", Path: "/tools/mcp"}
	s := mcp.NewSet([]*mcp.Route{r1, r2})
	if s.Route("/mcp") != r1 || s.Route("/tools/mcp") != r2 || s.Route("/mcp/") != nil || s.Route("") != nil {
		t.Errorf("Set.Route: %v %v %v", s.Route("/mcp"), s.Route("/tools/mcp"), s.Route("/mcp/"))
	}
	if r := mcp.NewSet(nil).Route("/mcp"); r != nil {
		t.Errorf("empty set: %v", r)
	}
}
