package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/redistest"

	"github.com/redis/go-redis/v9"
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietLogger{}) } // go-redis logs every failed dial

func newTestClient(t testing.TB, addr string) *redis.Client {
	opt := &redis.UniversalOptions{Addrs: []string{addr}, PoolSize: 64}
	ConfigureRedisOptions(opt)
	c := redis.NewClient(opt.Simple())
	t.Cleanup(func() { c.Close() })
	return c
}

var prefixes atomic.Int64

func uniquePrefix() string { return fmt.Sprintf("t%d:", prefixes.Add(1)) }

// redisCounters reads a bucket's counters straight from Redis.
func redisCounters(t *testing.T, r *Redis) func(l Limit, key string, now time.Time) (int64, int64) {
	return func(l Limit, key string, now time.Time) (int64, int64) {
		start, _ := l.window(now.UnixNano())
		get := func(start int64) int64 {
			v, err := r.c.Get(context.Background(), string(r.counterKey(nil, key, &l, start))).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			return v
		}
		var prev int64
		if l.Sliding() {
			prev = get(start - l.size())
		}
		return get(start), prev
	}
}

func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, srv.Addr())
	suite(t, func(t *testing.T) harness {
		// A generous timeout: the suite runs 1,000 concurrent requests under -race.
		r := NewRedis(c, RedisOptions{Timeout: 10 * time.Second, Prefix: uniquePrefix()})
		return harness{s: r, counters: redisCounters(t, r)}
	})
}

// TestRedisKeys: key names, hash tags and TTLs.
func TestRedisKeys(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, srv.Addr())
	r := NewRedis(c, RedisOptions{})
	ctx := context.Background()
	now := ts("2026-03-04T05:06:30Z")
	items := []Item{
		{Rule: rule("m", Tokens, 100, Minute, 1), Key: "team-limits/tpm/research", Cost: 10},
		{Rule: rule("b", Tokens, 100, Month, 1), Key: "team-limits/budget/research", Cost: 10},
	}
	reserve(t, r, now, items...)
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{
		"sluice:rl:{team-limits/tpm/research}:1m:1772600760":     90*time.Second + keyMargin, // 30s left + one window as the previous one
		"sluice:rl:{team-limits/budget/research}:1mo:1772323200": ts("2026-04-01T00:00:00Z").Sub(now) + keyMargin,
	}
	if len(keys) != len(want) {
		t.Fatalf("keys %q, want %d", keys, len(want))
	}
	for k, ttl := range want {
		got, err := c.PTTL(ctx, k).Result()
		if err != nil || got <= 0 || got > ttl || got < ttl-5*time.Second {
			t.Errorf("PTTL %s = %s, %v, want about %s", k, got, err, ttl)
		}
		if keySlot(k) != keySlot("{"+hashTag(k)+"}") || !strings.HasPrefix(k, "sluice:rl:{") {
			t.Errorf("%s: hash tag %q", k, hashTag(k))
		}
	}
}

// countHook counts commands and pipelines sent: round trips.
type countHook struct{ cmds, pipelines atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.pipelines.Add(1)
		return next(ctx, cmds)
	}
}
func (h *countHook) take() int64 { return h.cmds.Swap(0) + h.pipelines.Swap(0) }

// TestRedisRoundTrips: one round trip per Reserve and per Settle, whatever
// the number of rules; none for a Settle that changes nothing; a flushed
// script cache costs one extra round trip, once.
func TestRedisRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	c := newTestClient(t, srv.Addr())
	h := &countHook{}
	c.AddHook(h)
	r := NewRedis(c, RedisOptions{Prefix: uniquePrefix()})
	ctx := context.Background()
	now := ts("2026-03-04T05:06:30Z")
	items := []Item{
		{Rule: rule("a", Requests, 100, Minute, 1), Key: "rt/a", Cost: 1},
		{Rule: rule("b", Tokens, 1000, Hour, 1), Key: "rt/b", Cost: 100},
		{Rule: rule("c", Tokens, 100000, Month, 1), Key: "rt/c", Cost: 100},
	}
	// Load the scripts (EVALSHA fails, then EVAL).
	settle(t, r, now, reserve(t, r, now, items...), 0, 0, 0)
	h.take()
	for range 5 {
		res := reserve(t, r, now, items...)
		if n := h.take(); n != 1 {
			t.Errorf("Reserve: %d round trips, want 1", n)
		}
		settle(t, r, now, res, 1, 100, 100)
		if n := h.take(); n != 0 {
			t.Errorf("Settle with nothing to change: %d round trips, want 0", n)
		}
		settle(t, r, now, res, 0, 50, 150)
		if n := h.take(); n != 1 {
			t.Errorf("Settle: %d round trips, want 1", n)
		}
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	h.take()
	res := reserve(t, r, now, items...)
	if !res.Allowed {
		t.Fatal("denied")
	}
	if n := h.take(); n != 2 {
		t.Errorf("Reserve after SCRIPT FLUSH: %d round trips, want 2 (EVALSHA, EVAL)", n)
	}
}

// TestRedisSharedLimit: three gateway instances (three clients, three
// stores) sharing a limit of N requests admit exactly N in total.
func TestRedisSharedLimit(t *testing.T) {
	srv := redistest.Start(t)
	const n, perInstance = 50, 100
	prefix := uniquePrefix()
	r := rule("rpm", Requests, n, Minute, 1)
	now := ts("2026-03-04T05:06:30Z")
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 3*perInstance)
	for range 3 {
		store := NewRedis(newTestClient(t, srv.Addr()), RedisOptions{Timeout: 10 * time.Second, Prefix: prefix})
		for range perInstance {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var res Result
				<-start
				if err := store.Reserve(context.Background(), now, []Item{{Rule: r, Key: "shared", Cost: 1}}, &res); err != nil {
					errs <- err
				} else if res.Allowed {
					admitted.Add(1)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := admitted.Load(); got != n {
		t.Errorf("three instances admitted %d, want exactly %d", got, n)
	}
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// TestRedisOutage: with Redis killed, FailOpen admits and FailClosed denies
// (both flagged Unavailable), within the timeout, with one log line per
// outage and no goroutine growth; when Redis is back on the same port,
// limits are enforced again.
func TestRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 100 * time.Millisecond
	store := NewRedis(newTestClient(t, srv.Addr()), RedisOptions{Timeout: timeout, Prefix: uniquePrefix()})
	var openLog, closedLog syncBuffer
	open := &Guard{Store: store, Mode: FailOpen, Logger: slog.New(slog.NewTextHandler(&openLog, nil))}
	closed := &Guard{Store: store, Mode: FailClosed, Logger: slog.New(slog.NewTextHandler(&closedLog, nil))}
	r := rule("rpm", Requests, 3, Minute, 1)
	now := ts("2026-03-04T05:06:30Z")
	item := func(k string) Item { return Item{Rule: r, Key: k, Cost: 1} }

	if n := admit(t, open, now, item("before"), 5); n != 3 {
		t.Fatalf("before the outage: admitted %d, want 3", n)
	}
	if n := admit(t, closed, now, item("before"), 1); n != 0 {
		t.Fatalf("before the outage: admitted %d over the limit", n)
	}
	reservation := reserve(t, open, now, item("settle-later"))

	srv.Stop()

	var goroutines int
	var slowest time.Duration
	timed := func(g *Guard) *Result {
		began := time.Now()
		res := reserve(t, g, now, item("before"))
		slowest = max(slowest, time.Since(began))
		return res
	}
	for i := range 200 {
		a, d := timed(open), timed(closed)
		if !a.Allowed || !a.Unavailable || a.Denied != -1 || a.Reservations[0].Valid() {
			t.Fatalf("FailOpen during the outage: %+v", a)
		}
		if d.Allowed || !d.Unavailable || d.Denied != -1 || d.RetryAfter <= 0 {
			t.Fatalf("FailClosed during the outage: %+v", d)
		}
		settle(t, open, now, reservation, 0) // dropped, logged as part of the outage
		settle(t, open, now, a, 1)           // a no-op
		if i == 20 {
			goroutines = runtime.NumGoroutine()
		}
	}
	if slowest > timeout+250*time.Millisecond { // slack for -race and loaded machines
		t.Errorf("slowest call during the outage took %s, timeout %s", slowest, timeout)
	}
	t.Logf("slowest call during the outage: %s", slowest)
	if g := runtime.NumGoroutine(); g > goroutines+2 {
		t.Errorf("goroutines grew during the outage: %d after 20 requests, %d after 200", goroutines, g)
	}
	var res Result
	err := store.Reserve(context.Background(), now, []Item{item("x")}, &res)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Reserve during the outage: %v, want ErrUnavailable", err)
	}
	if !open.Down() || !closed.Down() {
		t.Error("guards not down")
	}
	for name, l := range map[string]*syncBuffer{"FailOpen": &openLog, "FailClosed": &closedLog} {
		if n := l.count("rate limit store unavailable"); n != 1 {
			t.Errorf("%s logged the outage %d times, want once", name, n)
		}
	}

	srv.Restart()
	// go-redis reconnects on its own; poll the external process's return.
	deadline := time.Now().Add(20 * time.Second)
	for reserve(t, closed, now, item("probe")).Unavailable {
		if time.Now().After(deadline) {
			t.Fatal("the store did not recover")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if closed.Down() || closedLog.count("rate limit store available again") != 1 {
		t.Errorf("recovery not logged once: down %v\n%s", closed.Down(), closedLog.buf.String())
	}
	if n := admit(t, closed, now, item("after"), 5); n != 3 {
		t.Errorf("after the outage FailClosed admitted %d, want 3", n)
	}
	if n := admit(t, open, now, item("after"), 2); n != 0 {
		t.Errorf("after the outage FailOpen admitted %d over the limit", n)
	}
	if open.Down() {
		t.Error("FailOpen guard still down")
	}
	if n := openLog.count("rate limit store unavailable"); n != 1 {
		t.Errorf("FailOpen logged the outage %d times, want once", n)
	}
}

// TestRedisHang: a Redis that accepts connections and never answers costs
// one timeout per call, and the request's own cancellation is not an outage.
func TestRedisHang(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var open []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
	})
	opt := &redis.UniversalOptions{Addrs: []string{l.Addr().String()}, Protocol: 2}
	ConfigureRedisOptions(opt)
	c := redis.NewClient(opt.Simple())
	t.Cleanup(func() { c.Close() })
	const timeout = 50 * time.Millisecond
	store := NewRedis(c, RedisOptions{Timeout: timeout})
	items := []Item{{Rule: rule("r", Requests, 1, Minute, 1), Key: "k", Cost: 1}}
	for range 3 {
		var res Result
		began := time.Now()
		err := store.Reserve(context.Background(), time.Now(), items, &res)
		took := time.Since(began)
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Reserve against a hung Redis: %v, want ErrUnavailable", err)
		}
		if took < timeout || took > timeout+time.Second {
			t.Errorf("Reserve took %s, timeout %s", took, timeout)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var res Result
	if err := store.Reserve(ctx, time.Now(), items, &res); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("Reserve with a cancelled context: %v, want the context's error", err)
	}
}

func TestKeySlot(t *testing.T) {
	if got := crc16("123456789"); got != 0x31C3 {
		t.Errorf("crc16 = %#x, want 0x31c3", got)
	}
	for k, want := range map[string]string{
		"{user1000}.following": "user1000",
		"foo{}{bar}":           "foo{}{bar}",
		"foo{{bar}}zap":        "{bar",
		"foo{bar}{zap}":        "bar",
		"plain":                "plain",
	} {
		if got := hashTag(k); got != want {
			t.Errorf("hashTag(%q) = %q, want %q", k, got, want)
		}
	}
	if got := keySlot("foo"); got != 12182 {
		t.Errorf("keySlot(foo) = %d, want 12182", got)
	}
}

// TestRedisCluster: on a three-node Redis Cluster the buckets of a request
// live in different slots; reservations stay all or nothing (the admitting
// slot group is compensated), and instances share limits exactly.
func TestRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	redistest.SkipWithout(t)
	ports := redistest.FreePorts(t, 6) // three nodes and their cluster bus ports
	var nodes []*redistest.Server
	busPorts := ports[3:]
	for i := range 3 {
		nodes = append(nodes, redistest.StartOn(t, ports[i], "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--cluster-port", strconv.Itoa(busPorts[i])))
	}
	// Each server has its own dir (nodes.conf), so they can share the name.
	ctx := context.Background()
	var clients []*redis.Client
	for i, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
		lo, hi := i*16384/3, (i+1)*16384/3-1
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			t.Fatalf("ADDSLOTSRANGE: %v", err)
		}
	}
	for i, n := range nodes[1:] {
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", n.Port(), busPorts[i+1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for ready := false; !ready; {
		ready = true
		for _, c := range clients {
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				ready = false
			}
		}
		if !ready {
			if time.Now().After(deadline) {
				t.Fatal("the cluster did not form")
			}
			time.Sleep(50 * time.Millisecond) // waiting for other processes to gossip
		}
	}
	newStore := func() *Redis {
		opt := &redis.UniversalOptions{Addrs: []string{nodes[0].Addr()}, IsClusterMode: true}
		ConfigureRedisOptions(opt)
		c := redis.NewUniversalClient(opt)
		t.Cleanup(func() { c.Close() })
		return NewRedis(c, RedisOptions{Timeout: 10 * time.Second, Prefix: "c:"})
	}
	store := newStore()
	if store.group != groupSlot {
		t.Fatal("cluster client not detected")
	}
	// Two bucket keys whose slots are on different nodes.
	keyA, keyB := "tenant/a", ""
	for i := 0; keyB == ""; i++ {
		k := fmt.Sprintf("tenant/b%d", i)
		if keySlot(k)*3/16384 != keySlot(keyA)*3/16384 {
			keyB = k
		}
	}
	a := rule("a", Tokens, 100, Minute, 1)
	b := rule("b", Requests, 2, Minute, 1)
	now := ts("2026-03-04T05:06:30Z")
	req := []Item{{Rule: a, Key: keyA, Cost: 10}, {Rule: b, Key: keyB, Cost: 1}}
	h := &countHook{}
	store.c.AddHook(h)
	for range 2 {
		res := reserve(t, store, now, req...)
		if !res.Allowed {
			t.Fatal("denied")
		}
		settle(t, store, now, res, 20, 1)
	}
	h.take()
	res := reserve(t, store, now, req...)
	if res.Allowed || res.Denied != 1 {
		t.Fatalf("b full: Allowed %v Denied %d", res.Allowed, res.Denied)
	}
	counters := redisCounters(t, store)
	wantCounters(t, harness{counters: counters}, a.Limit, keyA, now, 40, 0) // compensated
	wantCounters(t, harness{counters: counters}, b.Limit, keyB, now, 2, 0)
	h.take()
	res = reserve(t, store, now, Item{Rule: a, Key: keyA, Cost: 10}, Item{Rule: a, Key: keyA + "/2", Cost: 10})
	if !res.Allowed {
		t.Fatal("denied")
	}
	if n := h.take(); n != 1 {
		t.Errorf("cluster Reserve: %d round trips, want 1", n)
	}

	// Three instances share a limit exactly.
	shared := rule("shared", Requests, 30, Minute, 1)
	roomy := rule("roomy", Tokens, 1_000_000, Minute, 1)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 3 {
		s := newStore()
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var res Result
				err := s.Reserve(ctx, now, []Item{{Rule: shared, Key: "shared", Cost: 1}, {Rule: roomy, Key: "other", Cost: 1}}, &res)
				if err != nil {
					t.Error(err)
				} else if res.Allowed {
					admitted.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if got := admitted.Load(); got != 30 {
		t.Errorf("cluster instances admitted %d, want 30", got)
	}
}
