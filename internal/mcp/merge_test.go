package mcp_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/mcp"
)

func TestNegotiate(t *testing.T) {
	for _, v := range mcp.Versions {
		if got := mcp.Negotiate(v); got != v {
			t.Errorf("Negotiate(%q) = %q", v, got)
		}
	}
	for _, v := range []string{"", "2099-01-01", "2025-06-18 ", "1.0"} {
		if got := mcp.Negotiate(v); got != mcp.Versions[0] {
			t.Errorf("Negotiate(%q) = %q, want the newest %q", v, got, mcp.Versions[0])
		}
	}
}

func initResult(t *testing.T, s string) *mcp.InitResult {
	t.Helper()
	var r mcp.InitResult
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return &r
}

func TestInitResultCaps(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mcp.Caps
	}{
		{`{}`, 0},
		{`{"capabilities":{}}`, 0},
		{`{"capabilities":{"tools":{}}}`, mcp.CapTools},
		{`{"capabilities":{"tools":{"listChanged":true}}}`, mcp.CapTools | mcp.CapToolsChanged},
		{`{"capabilities":{"tools":null,"prompts":null,"resources":null,"logging":null,"completions":null}}`, 0},
		{`{"capabilities":{"resources":{"subscribe":true}}}`, mcp.CapResources | mcp.CapResourceSubscribe},
		{`{"capabilities":{"resources":{"subscribe":true,"listChanged":true}}}`, mcp.CapResources | mcp.CapResourceSubscribe | mcp.CapResourcesChanged},
		{`{"capabilities":{"prompts":{"listChanged":true}}}`, mcp.CapPrompts | mcp.CapPromptsChanged},
		{`{"capabilities":{"logging":{},"completions":{}}}`, mcp.CapLogging | mcp.CapCompletions},
		{`{"capabilities":{"experimental":{"x":{}},"tools":{"listChanged":false}}}`, mcp.CapTools},
	} {
		if got := initResult(t, tc.in).Caps(); got != tc.want {
			t.Errorf("Caps(%s) = %b, want %b", tc.in, got, tc.want)
		}
	}
}

func TestMergedInit(t *testing.T) {
	servers := []*mcp.Server{{Name: "alpha"}, {Name: "beta"}, {Name: "gamma"}}
	results := []*mcp.InitResult{
		initResult(t, `{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true},"logging":{}},"instructions":"  Use alpha for sums.\n"}`),
		initResult(t, `{"protocolVersion":"2025-03-26","capabilities":{"tools":{},"resources":{"subscribe":true},"prompts":{}},"instructions":""}`),
		initResult(t, `{"capabilities":{"completions":{}},"instructions":"Gamma completes."}`),
	}
	raw := mcp.MergedInit("2025-06-18", "v1.2.3", servers, results)
	var got struct {
		ProtocolVersion string                     `json:"protocolVersion"`
		Capabilities    map[string]json.RawMessage `json:"capabilities"`
		ServerInfo      map[string]string          `json:"serverInfo"`
		Instructions    *string                    `json:"instructions"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if got.ProtocolVersion != "2025-06-18" || got.ServerInfo["name"] != "sluice" || got.ServerInfo["version"] != "v1.2.3" {
		t.Errorf("MergedInit = %s", raw)
	}
	wantCaps := map[string]string{
		"tools":       `{"listChanged":true}`,
		"resources":   `{"listChanged":false,"subscribe":true}`,
		"prompts":     `{"listChanged":false}`,
		"logging":     `{}`,
		"completions": `{}`,
	}
	gotCaps := map[string]string{}
	for k, v := range got.Capabilities {
		gotCaps[k] = string(v)
	}
	if !reflect.DeepEqual(gotCaps, wantCaps) {
		t.Errorf("capabilities = %v, want %v", gotCaps, wantCaps)
	}
	if got.Instructions == nil || *got.Instructions != "## alpha\nUse alpha for sums.\n\n## gamma\nGamma completes." {
		t.Errorf("instructions = %q", deref(got.Instructions))
	}

	// A server left out (nil result) adds nothing; no instructions, no member.
	raw = mcp.MergedInit("2024-11-05", "dev", servers[:2], []*mcp.InitResult{nil, results[1]})
	if strings.Contains(string(raw), "instructions") || strings.Contains(string(raw), "logging") || !strings.Contains(string(raw), `"tools":{"listChanged":false}`) {
		t.Errorf("MergedInit with a nil result = %s", raw)
	}
	raw = mcp.MergedInit("2024-11-05", "dev", nil, nil)
	if !json.Valid(raw) || !strings.Contains(string(raw), `"capabilities":{}`) {
		t.Errorf("MergedInit without servers = %s", raw)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestReadPage(t *testing.T) {
	p, err := mcp.ReadPage(json.RawMessage(`{"tools":[{"name":"a"},{"name":"b","x":1}],"nextCursor":"c2"}`), "tools")
	if err != nil || len(p.Items) != 2 || string(p.Items[1]) != `{"name":"b","x":1}` || p.NextCursor != "c2" {
		t.Errorf("ReadPage = %+v, %v", p, err)
	}
	for _, in := range []string{`{"tools":null}`, `{}`, `{"prompts":[{"name":"p"}]}`, `{"tools":[],"nextCursor":null}`, `null`} {
		p, err := mcp.ReadPage(json.RawMessage(in), "tools")
		if err != nil || len(p.Items) != 0 || p.NextCursor != "" {
			t.Errorf("ReadPage(%s) = %+v, %v", in, p, err)
		}
	}
	for _, in := range []string{`[]`, `{"tools":{}}`, `{"tools":"x"}`, `{`, ``} {
		if p, err := mcp.ReadPage(json.RawMessage(in), "tools"); err == nil {
			t.Errorf("ReadPage(%s) = %+v, want an error", in, p)
		}
	}
	p, err = mcp.ReadPage(json.RawMessage(`{"resourceTemplates":[{"uriTemplate":"x://{id}"}],"nextCursor":7}`), "resourceTemplates")
	if err != nil || len(p.Items) != 1 || p.NextCursor != "" {
		t.Errorf("ReadPage with a numeric cursor = %+v, %v", p, err)
	}
}

func TestRename(t *testing.T) {
	prefix := func(name string) (string, bool) { return "a_" + name, name != "hidden" }
	out, ok := mcp.Rename(json.RawMessage(`{"name":"echo","description":"Echoes.","inputSchema":{"type":"object"},"annotations":{"title":"E"}}`), prefix)
	if !ok {
		t.Fatal("Rename dropped a named item")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["name"]) != `"a_echo"` || string(m["description"]) != `"Echoes."` || string(m["inputSchema"]) != `{"type":"object"}` || string(m["annotations"]) != `{"title":"E"}` || len(m) != 4 {
		t.Errorf("Rename = %s", out)
	}
	for _, in := range []string{
		`{"name":"hidden"}`,
		`{"description":"no name"}`,
		`{"name":""}`,
		`{"name":null}`,
		`{"name":7}`,
		`{"Name":"echo"}`,
		`"echo"`, `[]`, `null`, `{`,
	} {
		if out, ok := mcp.Rename(json.RawMessage(in), prefix); ok {
			t.Errorf("Rename(%s) = %s, want dropped", in, out)
		}
	}
	// Special characters survive.
	out, ok = mcp.Rename(json.RawMessage(`{"name":"q\"<é>"}`), prefix)
	var back struct{ Name string }
	if !ok || json.Unmarshal(out, &back) != nil || back.Name != `a_q"<é>` {
		t.Errorf("Rename of an odd name = %s, %v", out, ok)
	}
}

func TestListResult(t *testing.T) {
	if got := string(mcp.ListResult("tools", nil)); got != `{"tools":[]}` {
		t.Errorf("ListResult(nil) = %s", got)
	}
	if got := string(mcp.ListResult("prompts", []json.RawMessage{})); got != `{"prompts":[]}` {
		t.Errorf("ListResult(empty) = %s", got)
	}
	got := mcp.ListResult("tools", []json.RawMessage{json.RawMessage(`{"name":"a"}`), json.RawMessage(`{"name":"b"}`)})
	if string(got) != `{"tools":[{"name":"a"},{"name":"b"}]}` {
		t.Errorf("ListResult = %s", got)
	}
	p, err := mcp.ReadPage(got, "tools")
	if err != nil || len(p.Items) != 2 {
		t.Errorf("ReadPage(ListResult) = %+v, %v", p, err)
	}
}
