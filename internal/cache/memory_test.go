package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func k(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func entry(body string) *Entry {
	return &Entry{Status: 200, Header: map[string]string{"content-type": "application/json"}, Body: []byte(body)}
}

type fakeClock struct{ t atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.t.Add(int64(d)) }

func has(t *testing.T, s Store, key string) bool {
	t.Helper()
	_, ok, err := s.Get(context.Background(), k(key))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func set(t *testing.T, s Store, key string, e *Entry, ttl time.Duration) {
	t.Helper()
	if err := s.Set(context.Background(), k(key), e, ttl); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryLRUOrder(t *testing.T) {
	m := NewMemory(3)
	if len(m.shards) != 1 {
		t.Fatalf("a small cache should have one shard, has %d", len(m.shards))
	}
	for _, key := range []string{"a", "b", "c"} {
		set(t, m, key, entry(key), time.Hour)
	}
	if !has(t, m, "a") { // a becomes most recent: b is now the oldest
		t.Fatal("a missing")
	}
	set(t, m, "d", entry("d"), time.Hour)
	if has(t, m, "b") {
		t.Error("b should have been evicted")
	}
	for _, key := range []string{"a", "c", "d"} {
		if !has(t, m, key) {
			t.Errorf("%s evicted", key)
		}
	}
	// Order now (most recent first): d c a. Replacing a refreshes it.
	set(t, m, "a", entry("a2"), time.Hour)
	set(t, m, "e", entry("e"), time.Hour)
	if has(t, m, "c") || !has(t, m, "a") || !has(t, m, "d") || !has(t, m, "e") {
		t.Error("replacement did not refresh recency")
	}
	if e, _, _ := m.Get(context.Background(), k("a")); string(e.Body) != "a2" {
		t.Errorf("a = %q", e.Body)
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d", m.Len())
	}
}

func TestMemoryByteBound(t *testing.T) {
	body := strings.Repeat("x", 1000)
	size := entry(body).size()
	m := NewMemory(100, WithMaxBytes(3*size+size/2))
	for i := range 3 {
		set(t, m, fmt.Sprint(i), entry(body), time.Hour)
	}
	if m.Len() != 3 || m.Bytes() != 3*size {
		t.Fatalf("Len %d Bytes %d", m.Len(), m.Bytes())
	}
	set(t, m, "3", entry(body), time.Hour)
	if has(t, m, "0") || m.Len() != 3 || m.Bytes() != 3*size {
		t.Errorf("byte bound not enforced: Len %d Bytes %d", m.Len(), m.Bytes())
	}
	// A bigger entry evicts as many as it needs.
	set(t, m, "big", entry(strings.Repeat("y", 3000)), time.Hour)
	if m.Len() != 1 || !has(t, m, "big") {
		t.Errorf("Len %d after big entry", m.Len())
	}
	// An entry over the bound is refused, and evicts nothing.
	if err := m.Set(context.Background(), k("huge"), entry(strings.Repeat("z", 4*size)), time.Hour); !errors.Is(err, ErrTooLarge) {
		t.Errorf("huge entry: %v", err)
	}
	if !has(t, m, "big") {
		t.Error("refused entry evicted another")
	}
	// So is one over MaxEntryBytes, whatever the bound.
	m2 := NewMemory(10)
	if err := m2.Set(context.Background(), k("x"), entry(strings.Repeat("z", MaxEntryBytes)), time.Hour); !errors.Is(err, ErrTooLarge) {
		t.Errorf("entry over MaxEntryBytes: %v", err)
	}
}

func TestMemoryTTL(t *testing.T) {
	clk := newClock()
	m := NewMemory(10, WithClock(clk.now))
	set(t, m, "a", entry("a"), 10*time.Second)
	set(t, m, "b", entry("b"), time.Minute)
	clk.advance(10*time.Second - 1)
	if !has(t, m, "a") {
		t.Fatal("a expired early")
	}
	clk.advance(1)
	if has(t, m, "a") {
		t.Fatal("a not expired")
	}
	if m.Len() != 1 {
		t.Errorf("expired entry not removed: Len %d", m.Len())
	}
	if !has(t, m, "b") {
		t.Error("b expired")
	}
	// A zero or negative TTL stores nothing.
	set(t, m, "c", entry("c"), 0)
	set(t, m, "d", entry("d"), -time.Second)
	if has(t, m, "c") || has(t, m, "d") {
		t.Error("stored with ttl ≤ 0")
	}
	// Set again with a new TTL extends it.
	set(t, m, "b", entry("b"), time.Hour)
	clk.advance(30 * time.Minute)
	if !has(t, m, "b") {
		t.Error("re-Set did not renew the TTL")
	}
}

func TestMemoryShards(t *testing.T) {
	if n := len(NewMemory(100_000).shards); n != 16 {
		t.Errorf("default shards %d", n)
	}
	if n := len(NewMemory(1000, WithShards(6)).shards); n != 4 {
		t.Errorf("WithShards(6) gave %d", n)
	}
	m := NewMemory(0)
	set(t, m, "a", entry("a"), time.Hour)
	set(t, m, "b", entry("b"), time.Hour)
	if m.Len() != 1 {
		t.Errorf("NewMemory(0) holds %d", m.Len())
	}
}

func TestMemoryConcurrent(t *testing.T) {
	clk := newClock()
	const max = 256
	m := NewMemory(max, WithShards(4), WithClock(clk.now), WithMaxBytes(64<<10))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			for i := range 2000 {
				key := k(fmt.Sprint((g*7919 + i) % 600))
				switch i % 4 {
				case 0:
					_ = m.Set(ctx, key, entry(strings.Repeat("x", i%300)), time.Duration(1+i%5)*time.Second)
				case 3:
					clk.advance(time.Millisecond)
					fallthrough
				default:
					if e, ok, _ := m.Get(ctx, key); ok && e.Status != 200 {
						t.Error("bad entry")
					}
				}
			}
		})
	}
	wg.Wait()
	if n := m.Len(); n > max {
		t.Errorf("Len %d over %d", n, max)
	}
	// The byte counters match the entries held.
	for i := range m.shards {
		s := &m.shards[i]
		sum, count := 0, 0
		for n := s.lru.next; n != &s.lru; n = n.next {
			sum += n.size
			count++
		}
		if sum != s.bytes || count != len(s.m) || s.bytes > s.maxBytes {
			t.Errorf("shard %d: bytes %d vs %d, list %d vs map %d, max %d", i, s.bytes, sum, count, len(s.m), s.maxBytes)
		}
	}
}

func BenchmarkMemoryGet(b *testing.B) {
	m := NewMemory(100_000)
	ctx := context.Background()
	keys := make([][32]byte, 10_000)
	for i := range keys {
		keys[i] = k(fmt.Sprint(i))
		_ = m.Set(ctx, keys[i], entry("answer"), time.Hour)
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := seq.Add(7919)
		for pb.Next() {
			i++
			if _, ok, _ := m.Get(ctx, keys[i%uint64(len(keys))]); !ok {
				b.Error("miss")
				return
			}
		}
	})
}

func BenchmarkMemorySet(b *testing.B) {
	m := NewMemory(10_000)
	ctx := context.Background()
	keys := make([][32]byte, 50_000)
	for i := range keys {
		keys[i] = k(fmt.Sprint(i))
	}
	e := entry("answer")
	var seq atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := seq.Add(7919)
		for pb.Next() {
			i++
			_ = m.Set(ctx, keys[i%uint64(len(keys))], e, time.Hour)
		}
	})
}
