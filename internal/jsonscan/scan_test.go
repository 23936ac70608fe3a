package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestObjectMembers(t *testing.T) {
	data := []byte(` {"model":"gpt-4o","stream":true,"n":[1,{"a":"\u00e9"}], "x\"y": null} `)
	var keys, vals []string
	if err := Object(data, func(m Member) bool {
		keys = append(keys, string(m.Key(data)))
		vals = append(vals, string(m.Value(data)))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	wantK := []string{"model", "stream", "n", `x\"y`}
	wantV := []string{`"gpt-4o"`, "true", `[1,{"a":"\u00e9"}]`, "null"}
	for i := range wantK {
		if keys[i] != wantK[i] || vals[i] != wantV[i] {
			t.Fatalf("member %d: %q=%q, want %q=%q", i, keys[i], vals[i], wantK[i], wantV[i])
		}
	}
}

func TestObjectRejects(t *testing.T) {
	for _, in := range []string{``, `[]`, `"x"`, `{`, `{"a"}`, `{"a":1,}`, `{"a":1}x`, `{"a":01}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", `{"a":tru}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`} {
		if err := Object([]byte(in), func(Member) bool { return true }); err == nil {
			t.Errorf("%q: accepted", in)
		}
	}
}

func TestGetAndString(t *testing.T) {
	data := []byte(`{"a":1,"model":"caf\u00e9 \"x\" \ud83d\ude00"}`)
	raw, ok := Get(data, "model")
	if !ok {
		t.Fatal("not found")
	}
	s, ok := String(raw)
	var want string
	json.Unmarshal(raw, &want)
	if !ok || s != want {
		t.Fatalf("got %q want %q", s, want)
	}
	if _, ok := Get(data, "nope"); ok {
		t.Fatal("found missing key")
	}
}

func TestArray(t *testing.T) {
	data := []byte(`[ {"a":1}, 2 ,"x"]`)
	var got []string
	if err := Array(data, func(s, e int) bool { got = append(got, string(data[s:e])); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != `{"a":1}` || got[2] != `"x"` {
		t.Fatalf("%q", got)
	}
}

func TestObjectNoAlloc(t *testing.T) {
	data := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"stream":true,"max_tokens":100}`)
	n := testing.AllocsPerRun(100, func() {
		Object(data, func(m Member) bool { return true })
	})
	if n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// FuzzValid checks the scanner against encoding/json: the same verdict on validity, and for
// valid objects the same members.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,2,{"b":null}]}`, `[1,"x",true]`, `"\ud800"`, `{"a":1e5,"b":-0.5E-3}`, `{"a":"\u00zz"}`, `  {"k" : "v" }  `, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := json.Valid(data)
		if got := Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", data, got, want)
		}
		var m map[string]json.RawMessage
		isObj := json.Unmarshal(data, &m) == nil && m != nil
		err := Object(data, func(mem Member) bool {
			k, ok := String(data[mem.KeyStart:mem.KeyEnd])
			if !ok {
				t.Fatalf("key %q does not decode", data[mem.KeyStart:mem.KeyEnd])
			}
			if _, present := m[k]; isObj && !present {
				t.Fatalf("key %q unknown to encoding/json", k)
			}
			return true
		})
		if (err == nil) != isObj {
			t.Fatalf("Object(%q) err=%v, encoding/json object=%v", data, err, isObj)
		}
		// String must agree with encoding/json on any valid string value.
		if trimmed := bytes.TrimSpace(data); want && len(trimmed) > 0 && trimmed[0] == '"' {
			var ws string
			if json.Unmarshal(trimmed, &ws) == nil {
				if gs, ok := String(trimmed); !ok || gs != ws {
					t.Fatalf("String(%q) = %q,%v; want %q", data, gs, ok, ws)
				}
			}
		}
	})
}
