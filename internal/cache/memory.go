package cache

import (
	"context"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultMaxBytes is a [Memory]'s byte bound unless [WithMaxBytes] says
// otherwise.
const DefaultMaxBytes = 256 << 20

// minShardEntries keeps shards big enough for per-shard LRU to approximate a
// global one; a small cache gets a single shard and an exact LRU order.
const minShardEntries = 64

// Memory is an in-process LRU store bounded by entry count and by (approximate)
// bytes, with a TTL per entry checked on Get. It is split into shards by key,
// each with its own mutex and LRU list, so that parallel Gets do not all queue
// on one lock; eviction is least-recently-used within a shard. Keys are
// SHA-256 sums, so shards fill evenly.
type Memory struct {
	shards []memShard
	mask   uint64
	now    func() time.Time
}

type memShard struct {
	mu         sync.Mutex
	m          map[[32]byte]*memNode
	lru        memNode // sentinel: lru.next is the most recently used
	bytes      int
	maxEntries int
	maxBytes   int
	_          [64]byte // keep neighbouring shards' locks off one cache line
}

type memNode struct {
	key        [32]byte
	e          *Entry
	expires    int64 // unix nanoseconds
	size       int
	prev, next *memNode
}

type memoryConfig struct {
	maxBytes int
	shards   int
	now      func() time.Time
}

// MemoryOption configures [NewMemory].
type MemoryOption func(*memoryConfig)

// WithMaxBytes bounds the total approximate size of the entries (body, headers
// and bookkeeping); default [DefaultMaxBytes].
func WithMaxBytes(n int) MemoryOption { return func(c *memoryConfig) { c.maxBytes = n } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) MemoryOption { return func(c *memoryConfig) { c.now = now } }

// WithShards sets the number of shards (rounded down to a power of two, at
// least 1). By default it is 16, fewer for a small cache.
func WithShards(n int) MemoryOption { return func(c *memoryConfig) { c.shards = n } }

// NewMemory returns an empty store holding at most maxEntries entries (at
// least 1).
func NewMemory(maxEntries int, opts ...MemoryOption) *Memory {
	cfg := memoryConfig{maxBytes: DefaultMaxBytes, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	maxEntries = max(maxEntries, 1)
	n := cfg.shards
	if n <= 0 {
		n = 16
		for n > 1 && maxEntries/n < minShardEntries {
			n /= 2
		}
	}
	for n&(n-1) != 0 {
		n &= n - 1
	}
	m := &Memory{shards: make([]memShard, n), mask: uint64(n - 1), now: cfg.now}
	for i := range m.shards {
		s := &m.shards[i]
		s.m = make(map[[32]byte]*memNode)
		s.lru.next, s.lru.prev = &s.lru, &s.lru
		s.maxEntries = max((maxEntries+n-1)/n, 1)
		s.maxBytes = max(cfg.maxBytes/n, 1)
	}
	return m
}

func (m *Memory) shard(key [32]byte) *memShard {
	return &m.shards[binary.LittleEndian.Uint64(key[:8])&m.mask]
}

// Get returns the entry under key. An expired entry is removed and reported
// missing. It never fails.
func (m *Memory) Get(_ context.Context, key [32]byte) (*Entry, bool, error) {
	now := m.now().UnixNano()
	s := m.shard(key)
	s.mu.Lock()
	n, ok := s.m[key]
	if !ok {
		s.mu.Unlock()
		return nil, false, nil
	}
	if now >= n.expires {
		s.remove(n)
		s.mu.Unlock()
		return nil, false, nil
	}
	if s.lru.next != n {
		n.unlink()
		s.pushFront(n)
	}
	e := n.e
	s.mu.Unlock()
	return e, true, nil
}

// Set stores e under key for ttl, evicting least recently used entries of the
// key's shard to make room. It only fails with [ErrTooLarge].
func (m *Memory) Set(_ context.Context, key [32]byte, e *Entry, ttl time.Duration) error {
	if ttl <= 0 || e == nil {
		return nil
	}
	size := e.size()
	s := m.shard(key)
	if size > MaxEntryBytes || size > s.maxBytes {
		return ErrTooLarge
	}
	expires := m.now().Add(ttl).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[key]; ok {
		s.remove(old)
	}
	for len(s.m) >= s.maxEntries || s.bytes+size > s.maxBytes {
		s.remove(s.lru.prev) // never the sentinel: the loop only runs on a non-empty shard
	}
	n := &memNode{key: key, e: e, expires: expires, size: size}
	s.m[key] = n
	s.bytes += size
	s.pushFront(n)
	return nil
}

// Len is the number of entries held, including expired ones not yet removed
// (expiry is checked lazily, on Get, and by eviction).
func (m *Memory) Len() int {
	total := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		total += len(s.m)
		s.mu.Unlock()
	}
	return total
}

// Bytes is the approximate total size of the entries held.
func (m *Memory) Bytes() int {
	total := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		total += s.bytes
		s.mu.Unlock()
	}
	return total
}

func (s *memShard) remove(n *memNode) {
	n.unlink()
	delete(s.m, n.key)
	s.bytes -= n.size
}

func (s *memShard) pushFront(n *memNode) {
	n.prev, n.next = &s.lru, s.lru.next
	s.lru.next.prev = n
	s.lru.next = n
}

func (n *memNode) unlink() {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}
