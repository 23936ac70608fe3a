package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a store in Redis (standalone, Sentinel or Cluster): one string key
// per entry, prefix + hex(key), holding the entry's binary encoding, with the
// TTL set by Redis (SET … PX/EX) so expiry and eviction are Redis's job
// (configure maxmemory-policy allkeys-lru or volatile-lru for a cache).
type Redis struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedis returns a store using client, with every key starting with prefix
// (for example "sluice:cache:").
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{c: client, prefix: prefix}
}

func (r *Redis) key(k [32]byte) string { return r.prefix + hex.EncodeToString(k[:]) }

// Get fetches and decodes the entry under key. Redis errors are returned; an
// entry that does not decode (written by an incompatible version, or
// corrupted) is reported as a miss, so the next Set replaces it.
func (r *Redis) Get(ctx context.Context, key [32]byte) (*Entry, bool, error) {
	b, err := r.c.Get(ctx, r.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var e Entry
	if e.UnmarshalBinary(b) != nil {
		return nil, false, nil
	}
	return &e, true, nil
}

// Set stores e for ttl, rounded up to a whole millisecond (Redis's unit; go-redis
// then sends PX, or EX for whole seconds). An entry encoding to over [MaxEntryBytes] is not sent:
// [ErrTooLarge].
func (r *Redis) Set(ctx context.Context, key [32]byte, e *Entry, ttl time.Duration) error {
	if ttl <= 0 || e == nil {
		return nil
	}
	b, _ := e.MarshalBinary()
	if len(b) > MaxEntryBytes {
		return ErrTooLarge
	}
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
	return r.c.Set(ctx, r.key(key), b, ttl).Err()
}

// lenTimeout bounds Len, which has no context of its own.
const lenTimeout = time.Second

// Len is an approximation: DBSIZE, the number of keys in the Redis database
// (summed over the masters of a Cluster). It counts other keys too when the
// database is shared (the prefix is not consulted: counting by prefix would
// mean a SCAN of the whole keyspace), and it returns -1 when Redis cannot be
// reached. Use it for metrics, not decisions.
func (r *Redis) Len() int {
	ctx, cancel := context.WithTimeout(context.Background(), lenTimeout)
	defer cancel()
	n, err := r.c.DBSize(ctx).Result()
	if err != nil {
		return -1
	}
	return int(n)
}
