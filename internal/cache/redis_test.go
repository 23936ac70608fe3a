package cache

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-gateway/sluice/internal/redistest"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietLogger{}) } // go-redis logs every failed dial

func newRedis(t *testing.T) (*Redis, *redis.Client, *redistest.Server) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return NewRedis(c, "sluice:cache:"), c, srv
}

func TestRedisRoundTrip(t *testing.T) {
	r, c, _ := newRedis(t)
	ctx := context.Background()
	if _, ok, err := r.Get(ctx, k("a")); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	e := &Entry{
		Status:  200,
		Header:  map[string]string{"content-type": "application/json", "openai-model": "gpt-4o"},
		Body:    []byte(`{"id":"x","choices":[]}`),
		Usage:   Usage{Input: 12, Output: 34, Cached: 5},
		Created: time.Date(2026, 11, 27, 18, 0, 0, 123, time.UTC),
	}
	if err := r.Set(ctx, k("a"), e, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	got, ok, err := r.Get(ctx, k("a"))
	if err != nil || !ok {
		t.Fatalf("Get: %v %v", ok, err)
	}
	if got.Status != e.Status || string(got.Body) != string(e.Body) || got.Usage != e.Usage ||
		!got.Created.Equal(e.Created) || len(got.Header) != 2 || got.Header["openai-model"] != "gpt-4o" {
		t.Errorf("round trip: %+v", got)
	}
	// The key is prefix + hex, and Redis holds the TTL.
	key := r.key(k("a"))
	if !strings.HasPrefix(key, "sluice:cache:") || len(key) != len("sluice:cache:")+64 {
		t.Errorf("key %q", key)
	}
	pttl, err := c.PTTL(ctx, key).Result()
	if err != nil || pttl <= 89*time.Second || pttl > 90*time.Second {
		t.Errorf("PTTL %v %v", pttl, err)
	}
	// Sub-second TTLs go as milliseconds.
	if err := r.Set(ctx, k("b"), e, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if pttl, _ := c.PTTL(ctx, r.key(k("b"))).Result(); pttl <= time.Second || pttl > 1500*time.Millisecond {
		t.Errorf("PTTL %v, want ≤ 1.5s", pttl)
	}
	// A TTL under a millisecond rounds up to one.
	if err := r.Set(ctx, k("d"), e, time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if pttl, _ := c.PTTL(ctx, r.key(k("d"))).Result(); pttl > time.Millisecond {
		t.Errorf("PTTL %v, want ≤ 1ms", pttl)
	}
	c.Del(ctx, r.key(k("d")))
	// ttl ≤ 0 stores nothing.
	if err := r.Set(ctx, k("c"), e, 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Exists(ctx, r.key(k("c"))).Result(); n != 0 {
		t.Error("stored with ttl 0")
	}
	if n := r.Len(); n != 2 {
		t.Errorf("Len %d", n)
	}
}

func TestRedisExpiry(t *testing.T) {
	r, c, _ := newRedis(t)
	ctx := context.Background()
	if err := r.Set(ctx, k("a"), entry("a"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Expire it in Redis rather than sleeping: an expiry in the past deletes
	// the key at once, and the store must then report a miss.
	if err := c.PExpireAt(ctx, r.key(k("a")), time.Unix(1, 0)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Get(ctx, k("a")); ok || err != nil {
		t.Errorf("expired entry: %v %v", ok, err)
	}
}

func TestRedisLimitsAndErrors(t *testing.T) {
	r, c, srv := newRedis(t)
	ctx := context.Background()
	if err := r.Set(ctx, k("big"), entry(strings.Repeat("x", MaxEntryBytes)), time.Hour); !errors.Is(err, ErrTooLarge) {
		t.Errorf("big entry: %v", err)
	}
	if n, _ := c.DBSize(ctx).Result(); n != 0 {
		t.Error("big entry was stored")
	}
	// A value that does not decode is a miss, not an error.
	if err := c.Set(ctx, r.key(k("junk")), "not an entry", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Get(ctx, k("junk")); ok || err != nil {
		t.Errorf("junk: %v %v", ok, err)
	}
	// With Redis gone, errors are returned for the caller to bypass the cache.
	srv.Stop()
	if _, _, err := r.Get(ctx, k("a")); err == nil {
		t.Error("Get without Redis: no error")
	}
	if err := r.Set(ctx, k("a"), entry("a"), time.Hour); err == nil {
		t.Error("Set without Redis: no error")
	}
	if n := r.Len(); n != -1 {
		t.Errorf("Len without Redis = %d", n)
	}
}

func TestEntryEncoding(t *testing.T) {
	for _, e := range []*Entry{
		{},
		{Status: 200, Body: []byte("x")},
		{Status: 201, Header: map[string]string{"a": "1", "b": ""}, Body: []byte{0, 1, 2}, Usage: Usage{-1, 1 << 40, 3}, Created: time.Unix(1, 2)},
	} {
		b, _ := e.MarshalBinary()
		var got Entry
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		b2, _ := got.MarshalBinary()
		if string(b) != string(b2) || got.Status != e.Status || got.Usage != e.Usage || !got.Created.Equal(e.Created) {
			t.Errorf("round trip of %+v gave %+v", e, got)
		}
		// Every truncation and a trailing byte are rejected.
		for i := range len(b) {
			if (&Entry{}).UnmarshalBinary(b[:i]) == nil {
				t.Errorf("truncated at %d accepted", i)
			}
		}
		if (&Entry{}).UnmarshalBinary(append(b, 0)) == nil {
			t.Error("trailing byte accepted")
		}
	}
}

func FuzzEntryUnmarshal(f *testing.F) {
	b, _ := (&Entry{Status: 200, Header: map[string]string{"a": "b"}, Body: []byte("x")}).MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Entry
		if e.UnmarshalBinary(data) != nil {
			return
		}
		again, _ := e.MarshalBinary()
		var e2 Entry
		if err := e2.UnmarshalBinary(again); err != nil {
			t.Fatal(err)
		}
	})
}
