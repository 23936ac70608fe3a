package cache

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

func TestQuestionSplitsTheLastUserMessage(t *testing.T) {
	chat := func(system, first, last string) []byte {
		return []byte(`{"model":"m","messages":[{"role":"system","content":"` + system + `"},` +
			`{"role":"user","content":"` + first + `"},{"role":"assistant","content":"ok"},` +
			`{"role":"user","content":[{"type":"text","text":"` + last + `"},{"type":"text","text":"please"}]}],"temperature":0}`)
	}
	c1, q1, ok := Question(exchange.EndpointChat, chat("be brief", "hi", "What is the capital of France?"), "team:a")
	if !ok || string(q1) != "What is the capital of France?\nplease" {
		t.Fatalf("question %q ok=%v", q1, ok)
	}
	c2, q2, ok := Question(exchange.EndpointChat, chat("be brief", "hi", "Capital of France?"), "team:a")
	if !ok || c1 != c2 || string(q2) == string(q1) {
		t.Fatalf("same context expected: %v %q", c1 == c2, q2)
	}
	for name, other := range map[string][]byte{
		"system":      chat("be verbose", "hi", "What is the capital of France?"),
		"earlier":     chat("be brief", "hello", "What is the capital of France?"),
		"temperature": []byte(strings.Replace(string(chat("be brief", "hi", "x")), `"temperature":0`, `"temperature":1`, 1)),
	} {
		if c, _, ok := Question(exchange.EndpointChat, other, "team:a"); !ok || c == c1 {
			t.Errorf("%s: the context must differ (ok=%v)", name, ok)
		}
	}
	if c, _, _ := Question(exchange.EndpointChat, chat("be brief", "hi", "What is the capital of France?"), "team:b"); c == c1 {
		t.Error("another scope must give another context")
	}
	// Ends with a tool result: nothing to compare by meaning.
	tool := []byte(`{"model":"m","messages":[{"role":"user","content":"weather?"},{"role":"tool","tool_call_id":"1","content":"sunny"}]}`)
	if _, _, ok := Question(exchange.EndpointChat, tool, "g"); ok {
		t.Error("a request ending in a tool result must not be matched semantically")
	}
	long := []byte(`{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", MaxQuestionBytes+1) + `"}]}`)
	if _, _, ok := Question(exchange.EndpointChat, long, "g"); ok {
		t.Error("an over-long question must not be matched semantically")
	}
	msgs := []byte(`{"model":"claude","max_tokens":10,"system":"s","messages":[{"role":"user","content":"Bonjour"}]}`)
	if _, q, ok := Question(exchange.EndpointMessages, msgs, "g"); !ok || string(q) != "Bonjour" {
		t.Errorf("messages: %q %v", q, ok)
	}
	if _, _, ok := Question(exchange.EndpointEmbeddings, []byte(`{"model":"e","input":"x"}`), "g"); ok {
		t.Error("embeddings are not cached semantically")
	}
}

func TestSemanticIndex(t *testing.T) {
	now := time.Unix(1000, 0)
	x := NewSemanticIndex(3, func() time.Time { return now })
	ctxA, ctxB := [32]byte{1}, [32]byte{2}
	k1, k2, k3, k4 := [32]byte{11}, [32]byte{12}, [32]byte{13}, [32]byte{14}
	x.Add(ctxA, []float32{1, 0, 0}, k1, time.Minute)
	x.Add(ctxA, []float32{0, 2, 0}, k2, time.Minute) // not unit length: normalised
	if k, s, ok := x.Search(ctxA, []float32{0.99, 0.1, 0}, 0.95); !ok || k != k1 || s < 0.99 {
		t.Errorf("near k1: %v %v %v", k, s, ok)
	}
	if _, s, ok := x.Search(ctxA, []float32{1, 1, 0}, 0.95); ok {
		t.Errorf("halfway (%.3f) must miss at 0.95", s)
	}
	if _, _, ok := x.Search(ctxB, []float32{1, 0, 0}, 0.5); ok {
		t.Error("another context must never match")
	}
	if _, _, ok := x.Search(ctxA, []float32{1, 0}, 0.5); ok {
		t.Error("another dimension must never match")
	}
	if _, _, ok := x.Search(ctxA, []float32{0, 0, 0}, 0.5); ok {
		t.Error("a zero vector must never match")
	}
	// LRU: touch k1, then two more adds evict k2 (least recently used) first.
	x.Search(ctxA, []float32{1, 0, 0}, 0.9)
	x.Add(ctxB, []float32{0, 0, 1}, k3, time.Minute)
	x.Add(ctxB, []float32{0, 1, 1}, k4, time.Minute)
	if x.Len() != 3 {
		t.Fatalf("len %d", x.Len())
	}
	if _, _, ok := x.Search(ctxA, []float32{0, 1, 0}, 0.99); ok {
		t.Error("k2 should have been evicted")
	}
	if k, _, ok := x.Search(ctxA, []float32{1, 0, 0}, 0.99); !ok || k != k1 {
		t.Error("k1 was used recently and must stay")
	}
	// Replacing under one key keeps one entry.
	x.Add(ctxB, []float32{0, 0, 1}, k3, time.Minute)
	if x.Len() != 3 {
		t.Errorf("re-adding a key must replace it: len %d", x.Len())
	}
	x.Forget(ctxB, k3)
	if _, _, ok := x.Search(ctxB, []float32{0, 0, 1}, 0.99); ok {
		t.Error("forgotten")
	}
	now = now.Add(2 * time.Minute)
	if _, _, ok := x.Search(ctxA, []float32{1, 0, 0}, 0.5); ok {
		t.Error("expired entries must not match")
	}
}

func BenchmarkSemanticSearch(b *testing.B) {
	// 1,000 cached questions of one context with 1,536-dimension embeddings
	// (text-embedding-3-small): the exhaustive search a lookup pays.
	r := rand.New(rand.NewPCG(1, 2))
	x := NewSemanticIndex(1000, nil)
	vec := func() []float32 {
		v := make([]float32, 1536)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	ctx := [32]byte{7}
	for i := 0; i < 1000; i++ {
		x.Add(ctx, vec(), [32]byte{byte(i), byte(i >> 8)}, time.Hour)
	}
	q := vec()
	b.ReportAllocs()
	for b.Loop() {
		x.Search(ctx, q, 0.95)
	}
}
