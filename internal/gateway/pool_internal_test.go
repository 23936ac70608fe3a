package gateway

import (
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/exchange"
)

func TestPrefixHash(t *testing.T) {
	hash := func(body string, n int) uint64 {
		t.Helper()
		h, ok := prefixHash(exchange.EndpointChat, []byte(body), n)
		if !ok {
			t.Fatalf("no prefix in %s", body)
		}
		return h
	}
	turn1 := `{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]}`
	turn2 := `{"messages":[{"content":"Be brief.","role":"system"},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"Bye"}], "model":"m"}`
	if hash(turn1, 512) != hash(turn2, 512) {
		t.Error("a conversation's later turn, in another field order, must keep its prefix")
	}
	other := `{"model":"m","messages":[{"role":"system","content":"Be verbose."},{"role":"user","content":"Hi"}]}`
	asUser := `{"model":"m","messages":[{"role":"user","content":"Be brief."},{"role":"user","content":"Hi"}]}`
	if hash(turn1, 512) == hash(other, 512) || hash(turn1, 512) == hash(asUser, 512) {
		t.Error("another system prompt, or the same text in another role, must differ")
	}
	long := strings.Repeat("x", 100)
	a := `{"model":"m","messages":[{"role":"system","content":"` + long + `"},{"role":"user","content":"one"}]}`
	b := `{"model":"m","messages":[{"role":"system","content":"` + long + `"},{"role":"user","content":"two"}]}`
	if hash(a, 64) != hash(b, 64) || hash(a, 512) == hash(b, 512) {
		t.Error("prefixBytes must cap what is hashed")
	}
	if _, ok := prefixHash(exchange.EndpointChat, []byte(`{"model":"m","messages":[]}`), 64); ok {
		t.Error("no text, no prefix")
	}
}

// BenchmarkPrefixHash: the prefix a PrefixAffinity pool hashes per attempt, on a
// conversation with a 2 KB system prompt and a few turns.
func BenchmarkPrefixHash(b *testing.B) {
	body := []byte(`{"model":"m","messages":[{"role":"system","content":"` + strings.Repeat("You are a careful assistant. ", 70) +
		`"},{"role":"user","content":"What is the capital of France?"},{"role":"assistant","content":"Paris."},{"role":"user","content":"And of Italy?"}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		prefixHash(exchange.EndpointChat, body, 512)
	}
}
