package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/redistest"
)

func benchItems(team string) []Item {
	return []Item{
		{Rule: rule("tpm", Tokens, 1<<50, Minute, 1), Key: "team-limits/tpm/" + team, Cost: 500},
		{Rule: rule("budget", Tokens, 1<<60, Month, 1), Key: "team-limits/budget/" + team, Cost: 500},
	}
}

// BenchmarkMemoryReserveSettle: admission plus settlement of a request under
// two rules, with the Memory store.
func BenchmarkMemoryReserveSettle(b *testing.B) {
	m := NewMemory(MemoryOptions{SweepInterval: -1})
	items := benchItems("research")
	var res Result
	ss := make([]Settlement, len(items))
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Reserve(ctx, now, items, &res); err != nil || !res.Allowed {
			b.Fatal("denied")
		}
		for i := range ss {
			ss[i] = Settlement{Reservation: res.Reservations[i], Actual: 321}
		}
		_ = m.Settle(ctx, now, ss)
	}
}

// BenchmarkMemoryReserveSettleParallel: the same from all Ps, over 256 teams.
func BenchmarkMemoryReserveSettleParallel(b *testing.B) {
	m := NewMemory(MemoryOptions{SweepInterval: -1})
	var teams [256][]Item
	for i := range teams {
		teams[i] = benchItems(strconv.Itoa(i))
	}
	var next atomic.Int64
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var res Result
		ss := make([]Settlement, 2)
		ctx := context.Background()
		i := int(next.Add(1))
		for pb.Next() {
			items := teams[i%len(teams)]
			i += 7
			if err := m.Reserve(ctx, now, items, &res); err != nil || !res.Allowed {
				b.Fatal("denied")
			}
			for j := range ss {
				ss[j] = Settlement{Reservation: res.Reservations[j], Actual: 321}
			}
			_ = m.Settle(ctx, now, ss)
		}
	})
}

// BenchmarkRedisReserveSettle: admission plus settlement of a request under
// two rules against a local redis-server; reports round trips per request.
func BenchmarkRedisReserveSettle(b *testing.B) {
	srv := redistest.Start(b)
	c := newTestClient(b, srv.Addr())
	h := &countHook{}
	c.AddHook(h)
	r := NewRedis(c, RedisOptions{Timeout: time.Second, Prefix: uniquePrefix()})
	items := benchItems("research")
	var res Result
	ss := make([]Settlement, len(items))
	ctx := context.Background()
	now := time.Now()
	run := func() {
		if err := r.Reserve(ctx, now, items, &res); err != nil || !res.Allowed {
			b.Fatal("denied", err)
		}
		for i := range ss {
			ss[i] = Settlement{Reservation: res.Reservations[i], Actual: 321}
		}
		if err := r.Settle(ctx, now, ss); err != nil {
			b.Fatal(err)
		}
	}
	run() // load the scripts
	h.take()
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
	b.ReportMetric(float64(h.take())/float64(b.N), "roundtrips/op")
}
