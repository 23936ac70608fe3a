package ratelimit

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/redistest"
)

// TestRedisMatchesMemory drives both stores with the same random requests,
// settlements and clock, across a day and month boundary, and requires the
// same decisions, states and retry times: they share the arithmetic.
func TestRedisMatchesMemory(t *testing.T) {
	srv := redistest.Start(t)
	red := NewRedis(newTestClient(t, srv.Addr()), RedisOptions{Timeout: 10 * time.Second, Prefix: uniquePrefix()})
	mem := NewMemory(MemoryOptions{SweepInterval: -1})
	rules := []*Rule{
		rule("rps", Requests, 5, Second, 2),
		rule("tpm", Tokens, 2000, Minute, 1),
		rule("tp5m", Tokens, 5000, Minute, 5),
		rule("tph", Tokens, 20000, Hour, 1),
		rule("day", Tokens, 60000, Day, 1),
		rule("month", Tokens, 90000, Month, 1),
		{Name: "shadow", Limit: Limit{Unit: Tokens, Volume: 1000, Period: Minute, Count: 1}, Shadow: true},
	}
	keys := []string{"a", "b"}
	rng := rand.New(rand.NewPCG(1, 2))
	now := ts("2026-01-31T23:00:00Z")
	type pending struct{ mem, red Reservation }
	var open []pending
	admitted := 0
	for step := range 3000 {
		now = now.Add(time.Duration(rng.Int64N(int64(5 * time.Second))))
		if len(open) > 0 && rng.IntN(2) == 0 {
			i := rng.IntN(len(open))
			p := open[i]
			open = append(open[:i], open[i+1:]...)
			actual := rng.Int64N(p.mem.Cost()*3/2 + 1)
			settle(t, mem, now, &Result{Reservations: []Reservation{p.mem}}, actual)
			settle(t, red, now, &Result{Reservations: []Reservation{p.red}}, actual)
			continue
		}
		var items []Item
		for _, r := range rules {
			if rng.IntN(3) > 0 {
				cost := int64(1)
				if r.Limit.Unit != Requests {
					cost = rng.Int64N(800)
				}
				items = append(items, Item{Rule: r, Key: r.Name + "/" + keys[rng.IntN(len(keys))], Cost: cost})
			}
		}
		m := reserve(t, mem, now, items...)
		r := reserve(t, red, now, items...)
		if m.Allowed != r.Allowed || m.Denied != r.Denied || m.RetryAfter != r.RetryAfter || !reflect.DeepEqual(m.States, r.States) {
			t.Fatalf("step %d at %s: memory %v %d %s %+v, redis %v %d %s %+v", step, now.Format(time.RFC3339Nano),
				m.Allowed, m.Denied, m.RetryAfter, m.States, r.Allowed, r.Denied, r.RetryAfter, r.States)
		}
		if m.Allowed {
			admitted++
			for i := range items {
				open = append(open, pending{m.Reservations[i], r.Reservations[i]})
			}
		}
	}
	if admitted < 100 || admitted > 2900 {
		t.Errorf("%d admitted: the test does not exercise both outcomes", admitted)
	}
	t.Logf("%d admitted, ended at %s", admitted, now)
}
