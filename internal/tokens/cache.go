package tokens

import (
	"hash/maphash"
	"sync"

	"github.com/tiktoken-go/tokenizer"
)

// countCache remembers the token counts of texts seen recently. Prompts repeat a great
// deal (system prompts, few-shot examples, every earlier turn of a conversation), so
// counting each distinct text once makes the exact count cheap for the rate limiter. Keys
// are 64-bit hashes of the encoding and the text; a collision (one in 2^64 per pair)
// would only skew one estimate that is settled against the real usage anyway.
type countCache struct {
	seed   maphash.Seed
	shards [16]countShard
}

type countShard struct {
	mu sync.Mutex
	m  map[uint64]int32
}

// cacheShardEntries bounds each shard; a full shard is cleared (cheap, and the texts that
// matter come back at once).
const cacheShardEntries = 4096

// minCachedBytes: shorter texts are counted directly, as fast as a lookup.
const minCachedBytes = 64

var counts = func() *countCache {
	c := &countCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]int32)
	}
	return c
}()

// CountCached is Count, remembering the counts of recent texts longer than 64 bytes.
func CountCached(model string, text []byte) int {
	if len(text) < minCachedBytes {
		return Count(model, text)
	}
	enc := EncodingFor(model)
	var h maphash.Hash
	h.SetSeed(counts.seed)
	if enc == tokenizer.O200kBase {
		h.WriteByte(1)
	}
	h.Write(text)
	key := h.Sum64()
	s := &counts.shards[key%uint64(len(counts.shards))]
	s.mu.Lock()
	n, ok := s.m[key]
	s.mu.Unlock()
	if ok {
		return int(n)
	}
	k := Count(model, text)
	s.mu.Lock()
	if len(s.m) >= cacheShardEntries {
		clear(s.m)
	}
	s.m[key] = int32(k)
	s.mu.Unlock()
	return k
}
