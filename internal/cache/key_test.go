package cache

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const chatEP = "/v1/chat/completions"

func mustKey(t *testing.T, endpoint, body, scope string) [32]byte {
	t.Helper()
	k, ok := Key(endpoint, []byte(body), scope)
	if !ok {
		t.Fatalf("Key(%s) refused", body)
	}
	return k
}

const baseChat = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100}`

func TestKeyEquivalent(t *testing.T) {
	base := mustKey(t, chatEP, baseChat, "global")
	for _, body := range []string{
		// field order and whitespace
		`{"max_tokens":100,"temperature":0.7,"messages":[{"content":"hi","role":"user"}],"model":"gpt-4o"}`,
		"{\n  \"model\": \"gpt-4o\",\n\t\"messages\": [ {\"role\": \"user\", \"content\": \"hi\"} ],\r\n \"temperature\": 0.7, \"max_tokens\": 100 }\n",
		// number spellings
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.70,"max_tokens":100.0}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":7e-1,"max_tokens":1E2}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.07e+1,"max_tokens":1000e-1}`,
		// string escapes that decode to the same text
		`{"model":"gpt\u002d4o","messages":[{"role":"user","content":"\u0068i"}],"temperature":0.7,"max_tokens":100}`,
		// dropped fields
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"user":"alice","metadata":{"user_id":"x"},"store":true,"service_tier":"flex","safety_identifier":"h","prompt_cache_key":"k"}`,
		// a duplicate key keeps the last value
		`{"model":"other","model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100}`,
	} {
		if k := mustKey(t, chatEP, body, "global"); k != base {
			t.Errorf("key differs for %s", body)
		}
	}
}

func TestKeyNumbers(t *testing.T) {
	canon := func(s string) string {
		b, ok := Canonical([]byte(s))
		if !ok {
			t.Fatalf("Canonical(%s) refused", s)
		}
		return string(b)
	}
	same := [][]string{
		{"1", "1.0", "1e0", "10e-1", "1.000E+0", "0.1e1"},
		{"0", "-0", "0.0", "0e10", "-0.000e-5"},
		{"100", "1e2", "100.00", "0.001e5"},
		{"-2.5", "-25e-1", "-0.25E1"},
		{"0.1", "0.10", "1e-1"},
		{"123456789012345678901234567890", "1.2345678901234567890123456789e29"},
	}
	for _, group := range same {
		want := canon(group[0])
		for _, s := range group[1:] {
			if got := canon(s); got != want {
				t.Errorf("%s → %s, %s → %s", group[0], want, s, got)
			}
		}
	}
	differ := []string{"1", "2", "-1", "0.1", "0.01", "0.10000000000000001", "1e300", "1e-300", "10", "11"}
	seen := map[string]string{}
	for _, s := range differ {
		c := canon(s)
		if prev, ok := seen[c]; ok {
			t.Errorf("%s and %s share canonical %s", prev, s, c)
		}
		seen[c] = s
	}
	if got := canon(`{"b":[1.50,true,null,"x\"\n"],"a":{"d":2,"c":-0}}`); got != `{"a":{"c":0,"d":2e0},"b":[1.5e0,true,null,"x\"\u000a"]}` {
		t.Errorf("canonical form %s", got)
	}
}

func TestKeyChanges(t *testing.T) {
	base := mustKey(t, chatEP, baseChat, "global")
	for _, body := range []string{
		`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi "}],"temperature":0.7,"max_tokens":100}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"temperature":0.7,"max_tokens":100}`,
		`{"model":"gpt-4o","messages":[{"role":"system","content":"hi"}],"temperature":0.7,"max_tokens":100}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"},{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.8,"max_tokens":100}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":100}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":101}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"top_p":0.9}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"stop":["\n"]}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"n":2}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"seed":1}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"tool_choice":"required"}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"response_format":{"type":"json_object"}}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"logprobs":true}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0.7,"max_tokens":100,"unknown_param":1}`,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi","user":"x"}],"temperature":0.7,"max_tokens":100}`, // only top-level user is dropped
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":"0.7","max_tokens":100}`,          // a string is not a number
	} {
		if k := mustKey(t, chatEP, body, "global"); k == base {
			t.Errorf("key unchanged for %s", body)
		}
	}
	// Tool schemas keep a property called "user".
	a := mustKey(t, chatEP, `{"tools":[{"parameters":{"properties":{"user":{"type":"string"}}}}]}`, "g")
	b := mustKey(t, chatEP, `{"tools":[{"parameters":{"properties":{}}}]}`, "g")
	if a == b {
		t.Error("nested user was dropped")
	}
}

func TestKeyScopeAndEndpoint(t *testing.T) {
	keys := map[[32]byte]string{}
	for _, ep := range []string{chatEP, "/v1/messages", "/v1/completions", "/v1/embeddings"} {
		for _, scope := range []string{"global", "team:research", "team:ops", "subject:alice", ""} {
			k := mustKey(t, ep, baseChat, scope)
			if prev, ok := keys[k]; ok {
				t.Errorf("%s %s collides with %s", ep, scope, prev)
			}
			keys[k] = ep + " " + scope
		}
	}
	// Length prefixes: moving bytes between endpoint and scope changes the key.
	if mustKey(t, "ab", "{}", "c") == mustKey(t, "a", "{}", "bc") {
		t.Error("endpoint/scope boundary is ambiguous")
	}
}

func TestKeyRefuses(t *testing.T) {
	big := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", MaxBodyBytes) + `"}]}`
	for name, body := range map[string]string{
		"empty":          ``,
		"invalid":        `{"model":`,
		"array":          `[1,2]`,
		"string":         `"x"`,
		"null":           `null`,
		"trailing":       `{"a":1} {"b":2}`,
		"trailing junk":  `{"a":1}x`,
		"invalid utf-8":  "{\"a\":\"\xff\"}",
		"huge exponent":  `{"a":1e99999999999}`,
		"over 1 MiB":     big,
		"leading zero":   `{"a":01}`,
		"bare NaN":       `{"a":NaN}`,
		"unquoted key":   `{a:1}`,
		"comment":        `{"a":1 /* x */}`,
		"single quotes":  `{'a':1}`,
		"trailing comma": `{"a":1,}`,
	} {
		if _, ok := Key(chatEP, []byte(body), "g"); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	// Exactly at the limit is fine.
	pad := MaxBodyBytes - len(`{"a":""}`)
	if _, ok := Key(chatEP, []byte(`{"a":"`+strings.Repeat("a", pad)+`"}`), "g"); !ok {
		t.Error("body of exactly MaxBodyBytes refused")
	}
	// Trailing whitespace is not trailing data.
	if _, ok := Key(chatEP, []byte("{}\n\n"), "g"); !ok {
		t.Error("trailing newline refused")
	}
}

// reserialise decodes body and encodes it again differently: Go's encoder
// (sorted keys, HTML escaping), then indented.
func reserialise(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = json.Indent(&out, b, " ", "\t")
	return out.Bytes(), err
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{
		baseChat, `{}`, `{"a":1.0e+2,"b":[-0,0.0]}`, `{"s":"\u00e9\ud83d\ude00<>&"}`, `[1]`, `{"stream":true}`,
		`{"a":{"b":{"c":[1,2,{"d":null}]}}}`, `{"n":123456789012345678901234567890}`, "{\"x\":\"\\ud800\"}",
	} {
		f.Add([]byte(s), "global")
	}
	f.Fuzz(func(t *testing.T, body []byte, scope string) {
		k1, ok := Key(chatEP, body, scope)
		if !ok {
			return
		}
		again, ok := Key(chatEP, body, scope)
		if !ok || again != k1 {
			t.Fatal("Key is not deterministic")
		}
		re, err := reserialise(body)
		if err != nil {
			t.Fatalf("accepted body does not re-serialise: %v", err)
		}
		if len(re) > MaxBodyBytes {
			return
		}
		k2, ok := Key(chatEP, re, scope)
		if !ok {
			t.Fatalf("re-serialised body refused: %s", re)
		}
		if k1 != k2 {
			t.Fatalf("key changed on re-serialisation:\n%s\n%s", body, re)
		}
		if k3, _ := Key(chatEP, body, scope+"x"); k3 == k1 {
			t.Fatal("scope not in key")
		}
	})
}

func BenchmarkKey(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"` +
		strings.Repeat("Tell me about caching. ", 40) + `"}],"temperature":0.2,"max_tokens":512,"stream":true}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Key(chatEP, body, "team:research")
	}
}
