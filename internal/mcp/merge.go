package mcp

import (
	"encoding/json"
	"strings"
)

// Versions are the protocol versions the gateway speaks, newest first.
var Versions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// Negotiate answers a client's requested version: the same when the gateway knows it,
// else the newest it knows (the client then decides whether to go on).
func Negotiate(requested string) string {
	for _, v := range Versions {
		if v == requested {
			return v
		}
	}
	return Versions[0]
}

// InitResult is what the gateway keeps of a server's initialize result.
type InitResult struct {
	ProtocolVersion string `json:"protocolVersion"`
	Capabilities    struct {
		Tools       *listCap `json:"tools"`
		Resources   *listCap `json:"resources"`
		Prompts     *listCap `json:"prompts"`
		Logging     any      `json:"logging"`
		Completions any      `json:"completions"`
	} `json:"capabilities"`
	ServerInfo struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"serverInfo"`
	Instructions string `json:"instructions"`
}

type listCap struct {
	ListChanged bool `json:"listChanged"`
	Subscribe   bool `json:"subscribe"`
}

// Caps returns the capabilities as bits.
func (r *InitResult) Caps() Caps {
	var c Caps
	k := &r.Capabilities
	if k.Tools != nil {
		c |= CapTools
		if k.Tools.ListChanged {
			c |= CapToolsChanged
		}
	}
	if k.Resources != nil {
		c |= CapResources
		if k.Resources.Subscribe {
			c |= CapResourceSubscribe
		}
		if k.Resources.ListChanged {
			c |= CapResourcesChanged
		}
	}
	if k.Prompts != nil {
		c |= CapPrompts
		if k.Prompts.ListChanged {
			c |= CapPromptsChanged
		}
	}
	if k.Logging != nil {
		c |= CapLogging
	}
	if k.Completions != nil {
		c |= CapCompletions
	}
	return c
}

// MergedInit is the gateway's own initialize result for a session with these servers:
// a capability is offered when any server offers it; the servers' instructions are
// joined, each under its server's name.
func MergedInit(protocol, version string, servers []*Server, results []*InitResult) json.RawMessage {
	var all Caps
	var instr []string
	for i, r := range results {
		if r == nil {
			continue
		}
		all |= r.Caps()
		if s := strings.TrimSpace(r.Instructions); s != "" {
			instr = append(instr, "## "+servers[i].Name+"\n"+s)
		}
	}
	caps := map[string]any{}
	if all&CapTools != 0 {
		caps["tools"] = map[string]bool{"listChanged": all&CapToolsChanged != 0}
	}
	if all&CapResources != 0 {
		caps["resources"] = map[string]bool{"listChanged": all&CapResourcesChanged != 0, "subscribe": all&CapResourceSubscribe != 0}
	}
	if all&CapPrompts != 0 {
		caps["prompts"] = map[string]bool{"listChanged": all&CapPromptsChanged != 0}
	}
	if all&CapLogging != 0 {
		caps["logging"] = struct{}{}
	}
	if all&CapCompletions != 0 {
		caps["completions"] = struct{}{}
	}
	out := map[string]any{
		"protocolVersion": protocol,
		"capabilities":    caps,
		"serverInfo":      map[string]string{"name": "sluice", "version": version},
	}
	if len(instr) > 0 {
		out["instructions"] = strings.Join(instr, "\n\n")
	}
	b, _ := json.Marshal(out)
	return b
}

// Page is one page of a list result: its items and the cursor of the next.
type Page struct {
	Items      []json.RawMessage
	NextCursor string
}

// ReadPage reads result's list under key (tools, prompts, resources, resourceTemplates).
func ReadPage(result json.RawMessage, key string) (Page, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(result, &m); err != nil {
		return Page{}, err
	}
	var p Page
	if raw, ok := m[key]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &p.Items); err != nil {
			return Page{}, err
		}
	}
	if raw, ok := m["nextCursor"]; ok {
		json.Unmarshal(raw, &p.NextCursor)
	}
	return p, nil
}

// Rename returns item (an object with a string "name") with its name changed by f; f
// returns false to drop the item. Items without a name are dropped.
func Rename(item json.RawMessage, f func(name string) (string, bool)) (json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(item, &m) != nil {
		return nil, false
	}
	var name string
	if json.Unmarshal(m["name"], &name) != nil || name == "" {
		return nil, false
	}
	name, ok := f(name)
	if !ok {
		return nil, false
	}
	m["name"], _ = json.Marshal(name)
	out, err := json.Marshal(m)
	return out, err == nil
}

// ListResult renders a list result holding items under key.
func ListResult(key string, items []json.RawMessage) json.RawMessage {
	if items == nil {
		items = []json.RawMessage{}
	}
	b, _ := json.Marshal(map[string][]json.RawMessage{key: items})
	return b
}
