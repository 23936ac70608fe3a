package ratelimit

import (
	"context"
	"hash/maphash"
	"math/bits"
	"sync"
	"time"
)

const numShards = 64 // a request's shards fit in one uint64 mask

// MemoryOptions configures a [Memory] store.
type MemoryOptions struct {
	// SweepInterval is how often the janitor sweeps every shard once (one
	// shard per SweepInterval/64). 0 means one minute; negative disables the
	// janitor (call [Memory.Sweep] yourself).
	SweepInterval time.Duration
	// Now is the janitor's clock; nil means time.Now. Tests with a fake clock
	// pass theirs.
	Now func() time.Time
}

// Memory is an in-process [Store], sharded 64 ways by key hash.
type Memory struct {
	seed   maphash.Seed
	shards [numShards]shard
	now    func() time.Time

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type shard struct {
	mu sync.Mutex
	m  map[string]*bucket
	_  [40]byte // keep shards on separate cache lines
}

// bucket holds the counters of one key: the current window and, for sliding
// limits, the previous one.
type bucket struct {
	start, end int64 // current window, Unix ns
	size       int64 // window length for sliding limits, 0 for calendar limits
	cur, prev  int64
	period     Period
	count      int64
}

// NewMemory returns a Memory store; with a janitor (the default) it must be
// closed with [Memory.Close].
func NewMemory(opts MemoryOptions) *Memory {
	m := &Memory{seed: maphash.MakeSeed(), now: opts.Now}
	if m.now == nil {
		m.now = time.Now
	}
	for i := range m.shards {
		m.shards[i].m = make(map[string]*bucket)
	}
	if opts.SweepInterval >= 0 {
		every := opts.SweepInterval
		if every == 0 {
			every = time.Minute
		}
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go m.janitor(max(every/numShards, time.Millisecond))
	}
	return m
}

// Close stops the janitor. The store remains usable.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		if m.stop != nil {
			close(m.stop)
			<-m.done
		}
	})
	return nil
}

func (m *Memory) janitor(every time.Duration) {
	defer close(m.done)
	t := time.NewTicker(every)
	defer t.Stop()
	next := 0
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweepShard(next, m.now().UnixNano())
			next = (next + 1) % numShards
		}
	}
}

// Sweep removes the buckets whose windows no longer count at now and returns
// how many buckets remain.
func (m *Memory) Sweep(now time.Time) int {
	n := 0
	for i := range m.shards {
		n += m.sweepShard(i, now.UnixNano())
	}
	return n
}

func (m *Memory) sweepShard(i int, now int64) int {
	s := &m.shards[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, b := range s.m {
		if now >= b.end+b.size { // a sliding window counts as previous for one more window
			delete(s.m, k)
		}
	}
	return len(s.m)
}

func (m *Memory) shardOf(key string) uint8 {
	return uint8(maphash.String(m.seed, key) >> (64 - 6))
}

func lockShards(m *Memory, mask uint64) {
	for mask != 0 {
		m.shards[bits.TrailingZeros64(mask)].mu.Lock()
		mask &= mask - 1
	}
}

func unlockShards(m *Memory, mask uint64) {
	for mask != 0 {
		m.shards[bits.TrailingZeros64(mask)].mu.Unlock()
		mask &= mask - 1
	}
}

// at brings b to the window of l containing now and returns the effective
// now: a request whose now is older than the bucket's window (a goroutine
// that read the clock before another one rolled the window) counts at the
// start of the current window.
func (b *bucket) at(l *Limit, now int64) int64 {
	if b.period != l.Period || b.count != l.count() {
		// New bucket, or the rule's window changed (configuration reload).
		b.period, b.count, b.size = l.Period, l.count(), l.size()
		b.start, b.end = l.window(now)
		b.cur, b.prev = 0, 0
		return now
	}
	if now < b.start {
		return b.start
	}
	if now < b.end {
		return now
	}
	s, e := l.window(now)
	if b.size > 0 && s == b.end {
		b.prev = b.cur
	} else {
		b.prev = 0
	}
	b.cur, b.start, b.end = 0, s, e
	return now
}

// Reserve implements [Store].
func (m *Memory) Reserve(_ context.Context, now time.Time, items []Item, res *Result) error {
	if err := checkItems(items); err != nil {
		return err
	}
	res.prepare(len(items))
	t := now.UnixNano()
	var mask uint64
	for i := range items {
		sh := m.shardOf(items[i].Key)
		res.scratch[i].shard = sh
		mask |= 1 << sh
	}
	denied := -1
	lockShards(m, mask)
	for i := range items {
		it, sc := &items[i], &res.scratch[i]
		s := &m.shards[sc.shard]
		b := s.m[it.Key]
		if b == nil {
			b = &bucket{period: 255}
			s.m[it.Key] = b
		}
		lim := &it.Rule.Limit
		sc.b = b
		sc.now = b.at(lim, t)
		sc.start, sc.end, sc.size = b.start, b.end, b.size
		sc.cur, sc.prev = b.cur, b.prev
		sc.cost = max(it.Cost, 0)
		sc.over = over(estimate(b.cur, b.prev, b.end-sc.now, b.size), sc.cost, lim.Volume)
		if sc.over && !it.Rule.Shadow && denied < 0 {
			denied = i
		}
		b.cur += sc.cost // tentative, so a bucket listed twice sees both costs
	}
	if denied >= 0 {
		for i := range items {
			res.scratch[i].b.cur -= res.scratch[i].cost
		}
	}
	unlockShards(m, mask)
	finish(res, items, denied)
	return nil
}

// Settle implements [Store].
func (m *Memory) Settle(_ context.Context, _ time.Time, settlements []Settlement) error {
	for i := range settlements {
		r := &settlements[i].Reservation
		if r.rule == nil {
			continue
		}
		d := max(settlements[i].Actual, 0) - r.cost
		if d == 0 {
			continue
		}
		sh := r.shard
		if r.b == nil {
			sh = m.shardOf(r.key)
		}
		s := &m.shards[sh]
		s.mu.Lock()
		b := r.b
		if b == nil {
			b = s.m[r.key]
		}
		// A bucket removed by Sweep only held windows that no longer count,
		// so settling it (or not finding it) drops the settlement, as intended.
		if b != nil {
			switch {
			case b.start == r.start:
				b.cur = max(b.cur+d, 0)
			case b.size > 0 && b.start-b.size == r.start:
				b.prev = max(b.prev+d, 0)
			}
		}
		s.mu.Unlock()
	}
	return nil
}

// Counters returns the raw counters of key's bucket under limit at now: the
// total of the window containing now and, for sliding limits, of the one
// before it. It does not change the bucket.
func (m *Memory) Counters(l Limit, key string, now time.Time) (cur, prev int64) {
	s := &m.shards[m.shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if !ok {
		return 0, 0
	}
	c := *b
	c.at(&l, now.UnixNano())
	return c.cur, c.prev
}
