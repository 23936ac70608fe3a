package jwtauth

import (
	"crypto/sha256"
	"sync"
)

// cache holds verified identities keyed by the SHA-256 of the token string,
// sharded to keep lock contention low. Hits take a read lock and allocate
// nothing.
type cache struct {
	shards   []cacheShard
	mask     uint8
	perShard int
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[[sha256.Size]byte]cacheEntry
	_  [40]byte // keep shards on separate cache lines
}

type cacheEntry struct {
	id    *Identity
	until int64 // unix nanoseconds; the entry is valid while now < until
}

func newCache(max int) *cache {
	n := 16
	for n > 1 && n > max {
		n /= 2
	}
	c := &cache{shards: make([]cacheShard, n), mask: uint8(n - 1), perShard: (max + n - 1) / n}
	if c.perShard*n > max { // keep the total at or under max
		c.perShard = max / n
	}
	for i := range c.shards {
		c.shards[i].m = make(map[[sha256.Size]byte]cacheEntry)
	}
	return c
}

func (c *cache) get(key *[sha256.Size]byte, now int64) *Identity {
	s := &c.shards[key[0]&c.mask]
	s.mu.RLock()
	e, ok := s.m[*key]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	if now < e.until {
		return e.id
	}
	s.mu.Lock()
	if cur, ok := s.m[*key]; ok && cur.until <= now {
		delete(s.m, *key)
	}
	s.mu.Unlock()
	return nil
}

func (c *cache) put(key *[sha256.Size]byte, id *Identity, until, now int64) {
	s := &c.shards[key[0]&c.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[*key]; !ok && len(s.m) >= c.perShard {
		s.evictOne(now)
	}
	s.m[*key] = cacheEntry{id: id, until: until}
}

// evictOne removes one entry: the first expired one among a few visited (map
// iteration starts at a random place), else the first visited.
func (s *cacheShard) evictOne(now int64) {
	var victim [sha256.Size]byte
	n := 0
	for k, e := range s.m {
		if n == 0 {
			victim = k
		}
		n++
		if e.until <= now {
			victim = k
			break
		}
		if n == 8 {
			break
		}
	}
	if n > 0 {
		delete(s.m, victim)
	}
}
