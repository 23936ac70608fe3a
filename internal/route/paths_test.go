package route

import (
	"net/http"
	"testing"
)

func TestMatchPath(t *testing.T) {
	a, b, c, d := &Route{Ref: "a"}, &Route{Ref: "b"}, &Route{Ref: "c"}, &Route{Ref: "d"}
	var tb Table
	if tb.MatchPath("x", "/v1/chat/completions", "POST", nil) != nil {
		t.Fatal("no rules, no match")
	}
	tb.SetPaths([]PathRule{
		{Path: "/", Route: a},
		{Path: "/v1/chat", Route: b},
		{Hosts: []string{"*.example.com"}, Path: "/v1", Route: c},
		{Hosts: []string{"team.example.com"}, Exact: true, Path: "/v1/embeddings", Route: d},
		{Path: "/v1/chat", Headers: []HeaderMatch{{Name: "X-Tier", Value: "gold"}}, Route: d},
	})
	for _, tc := range []struct {
		host, path string
		want       *Route
	}{
		{"gw", "/v1/models", a},
		{"gw", "/v1/chat/completions", b},
		{"gw", "/v1/chatter", a}, // a prefix matches whole segments only
		{"x.example.com:8443", "/v1/chat/completions", c},
		{"team.example.com", "/v1/embeddings", d},
		{"TEAM.example.com", "/v1/embeddings/x", c},
		{"example.com", "/v1/chat/completions", b}, // a wildcard needs a subdomain
	} {
		if got := tb.MatchPath(tc.host, tc.path, "POST", http.Header{}); got != tc.want {
			t.Errorf("MatchPath(%q, %q) = %v, want %v", tc.host, tc.path, got, tc.want.Ref)
		}
	}
	// A header match ranks above the same path without one.
	if got := tb.MatchPath("gw", "/v1/chat/completions", "POST", http.Header{"X-Tier": {"gold"}}); got != d {
		t.Errorf("header match: %v", got)
	}
}
