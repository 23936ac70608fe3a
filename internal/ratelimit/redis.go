package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// reserveScript checks and reserves the buckets of one request (or of one
// Redis Cluster slot group of it), all or nothing.
//
// KEYS: per item i, KEYS[2i-1] is the counter of the current window and
// KEYS[2i] the counter of the previous one (the same key for calendar limits).
// ARGV: per item i, at b = 6(i-1): cost, volume, shadow (1/0), nanoseconds
// left in the window, window size in nanoseconds (0: calendar window, no
// previous window), TTL in milliseconds for the current counter.
// Returns {denied, cur_1, prev_1, ..., cur_n, prev_n}: the 1-based index of
// the first non-shadow item over its limit (0: admitted and reserved) and the
// counters before the request. The estimate is the same float64 expression as
// estimate() in Go, so both stores decide identically.
const reserveLua = `
local n = #KEYS / 2
local out = {0}
local pending = {}
local denied = 0
for i = 1, n do
  local b = (i - 1) * 6
  local cost = tonumber(ARGV[b + 1])
  local volume = tonumber(ARGV[b + 2])
  local size = tonumber(ARGV[b + 5])
  local ck = KEYS[2 * i - 1]
  local cur = tonumber(redis.call('GET', ck) or '0')
  local prev = 0
  if size > 0 then prev = tonumber(redis.call('GET', KEYS[2 * i]) or '0') end
  out[2 * i] = cur
  out[2 * i + 1] = prev
  local used = cur + (pending[ck] or 0)
  if prev > 0 then used = used + math.ceil(prev * tonumber(ARGV[b + 4]) / size) end
  local c = cost
  if c < 1 then c = 1 end
  if used > volume - c and denied == 0 and ARGV[b + 3] ~= '1' then denied = i end
  pending[ck] = (pending[ck] or 0) + cost
end
out[1] = denied
if denied == 0 then
  for i = 1, n do
    local b = (i - 1) * 6
    local cost = tonumber(ARGV[b + 1])
    if cost > 0 then
      redis.call('INCRBY', KEYS[2 * i - 1], cost)
      redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[b + 6])
    end
  end
end
return out
`

// settleLua adds deltas to window counters. ARGV: per key i, the delta and
// the TTL in milliseconds to give a counter that has none (a window whose
// reservation was 0). Counters never go below 0.
const settleLua = `
for i = 1, #KEYS do
  local k = KEYS[i]
  local v = redis.call('INCRBY', k, ARGV[2 * i - 1])
  if v < 0 then redis.call('INCRBY', k, -v) end
  if redis.call('PTTL', k) < 0 then redis.call('PEXPIRE', k, ARGV[2 * i]) end
end
return 0
`

var (
	reserveScript = redis.NewScript(reserveLua)
	settleScript  = redis.NewScript(settleLua)
)

// keyMargin is added to counter TTLs; it covers clock skew between gateway
// instances and settlements that arrive shortly after a window ends.
const keyMargin = 5 * time.Second

// RedisOptions configures a [Redis] store.
type RedisOptions struct {
	// Timeout bounds each Reserve and Settle call (one round trip); 0 means
	// 50ms. It only bounds socket reads and writes when the client was
	// created with ContextTimeoutEnabled (see [ConfigureRedisOptions]).
	Timeout time.Duration
	// Logger receives the few things the store reports itself (a client
	// without ContextTimeoutEnabled, a failed compensation on Redis Cluster).
	// nil means slog.Default(). Outages are logged by [Guard].
	Logger *slog.Logger
	// Prefix starts every key; "" means "sluice:rl:". A '{' in it would make
	// the prefix the hash tag and put every bucket in one Cluster slot.
	Prefix string
}

// Redis is a [Store] on Redis through go-redis/v9: a single node, Sentinel,
// Redis Cluster or a Ring.
//
// Keys. One counter per bucket and window, a string holding an integer:
//
//	<prefix>{<bucket key>}:<Count><s|m|h|d|mo>:<window start, Unix seconds>
//
// e.g. "sluice:rl:{team-limits/tokens/research}:1m:1767225600". A counter
// expires 2 windows plus a margin after its window starts for sliding limits
// (it is the previous window for one more window), and at the end of its
// window plus a margin for calendar limits, so idle buckets cost nothing.
// The window shape in the name keeps buckets apart when a rule's window
// changes.
//
// Round trips. Reserve runs one script (EVALSHA, EVAL once after the script
// cache was flushed) that reads every bucket of the request, decides, and
// increments all of them or none; Settle runs one script that applies all the
// deltas, and none when no settlement differs from its reservation.
//
// Redis Cluster. A script may only touch keys of one hash slot. The bucket
// key is the hash tag, so the current and previous counters of a bucket share
// a slot and buckets spread over the cluster; the buckets of one request
// generally do not share a slot. On a ClusterClient, Reserve therefore groups
// the request's buckets by slot and sends one script per group in one
// pipeline (one round trip; go-redis sends the groups to their nodes in
// parallel). Each group is atomic; a request is admitted only when every
// group admits it, and when some group denies, the groups that reserved are
// compensated in a second round trip, only on that path. This never admits
// over a limit; while a compensation is in flight a concurrent request may see
// the transient reservation and be denied (conservative), and a compensation
// that fails leaves the reservation until its window expires (also
// conservative, and logged). With a single node or Sentinel all buckets are
// one group and Reserve is atomic across them. A Ring groups by hash tag.
// (A fixed hash tag shared by all keys would make every request atomic on
// Cluster but put all rate-limit traffic in one slot, on one node; per-bucket
// tags were chosen to scale.)
//
// Clocks. Windows are computed from the now the gateway passes in, not from
// Redis TIME, so tests can use a fake clock and both stores agree. Gateway
// instances sharing a Redis are assumed to be NTP-synchronised: a skew of d
// shifts window boundaries by up to d between instances, which misweighs at
// most a fraction d/W of the previous window's count of a sliding limit and
// can put a request at the edge of a calendar window into its neighbour. The
// TTL margin (5s) covers such skews.
type Redis struct {
	c       redis.UniversalClient
	timeout time.Duration
	prefix  string
	log     *slog.Logger
	group   int
}

const (
	groupNone = iota // all keys in one script
	groupSlot        // Redis Cluster: one script per hash slot
	groupTag         // Ring: one script per hash tag
)

// NewRedis returns a Redis store on client. The client should be created
// with [ConfigureRedisOptions] applied (at least ContextTimeoutEnabled), so
// that Timeout bounds a call when Redis hangs.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	r := &Redis{c: client, timeout: opts.Timeout, prefix: opts.Prefix, log: opts.Logger}
	if r.timeout <= 0 {
		r.timeout = 50 * time.Millisecond
	}
	if r.prefix == "" {
		r.prefix = "sluice:rl:"
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	ctxTimeout := true
	switch c := client.(type) {
	case *redis.Client:
		ctxTimeout = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		r.group = groupSlot
		ctxTimeout = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		r.group = groupTag
		ctxTimeout = c.Options().ContextTimeoutEnabled
	}
	if !ctxTimeout {
		r.log.Warn("rate limit: Redis client without ContextTimeoutEnabled; a hung Redis blocks requests for the client's read timeout instead of the limiter timeout",
			"timeout", r.timeout)
	}
	return r
}

// ConfigureRedisOptions sets the go-redis options the limiter relies on:
// ContextTimeoutEnabled, so that the per-call timeout bounds socket reads and
// writes, and neither command retries (MaxRetries -1) nor dial retries
// (DialerRetries 1), so that a failing Redis costs at most one timeout per
// call and the failure mode applies instead. Once PoolSize dials in a row
// have failed, go-redis fails calls at once and probes the server from one
// goroutine (once a second) until it answers.
func ConfigureRedisOptions(o *redis.UniversalOptions) {
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1
}

// counterKey appends the key of bucket's counter for the window starting at
// start (Unix ns) under l.
func (r *Redis) counterKey(buf []byte, bucket string, l *Limit, start int64) []byte {
	buf = append(buf[:0], r.prefix...)
	buf = append(buf, '{')
	buf = append(buf, bucket...)
	buf = append(buf, '}', ':')
	buf = strconv.AppendInt(buf, l.count(), 10)
	buf = append(buf, periodCodes[l.Period]...)
	buf = append(buf, ':')
	return strconv.AppendInt(buf, floorDiv(start, int64(time.Second)), 10)
}

var periodCodes = [...]string{Second: "s", Minute: "m", Hour: "h", Day: "d", Month: "mo"}

func floorDiv(a, b int64) int64 { return (a - floorMod(a, b)) / b }

// ttlMillis is the TTL of a counter of window [start, end) at now.
func ttlMillis(end, size, now int64) int64 {
	return (end + size + int64(keyMargin) - now + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// group is the part of a request sent in one script.
type group struct {
	slot  int // hash slot, or index into tags
	items []int
	keys  []string
	args  []any
	cmd   *redis.Cmd
}

// Reserve implements [Store].
func (r *Redis) Reserve(ctx context.Context, now time.Time, items []Item, res *Result) error {
	if err := checkItems(items); err != nil {
		return err
	}
	res.prepare(len(items))
	if len(items) == 0 {
		res.Allowed = true
		return nil
	}
	t := now.UnixNano()
	var buf []byte
	var groups []*group
	var tags []string
	for i := range items {
		it, sc := &items[i], &res.scratch[i]
		lim := &it.Rule.Limit
		sc.now = t
		sc.start, sc.end = lim.window(t)
		sc.size = lim.size()
		sc.cost = max(it.Cost, 0)
		buf = r.counterKey(buf, it.Key, lim, sc.start)
		cur := string(buf)
		prev := cur
		if sc.size > 0 {
			buf = r.counterKey(buf, it.Key, lim, sc.start-sc.size)
			prev = string(buf)
		}
		shadow := 0
		if it.Rule.Shadow {
			shadow = 1
		}
		g := r.groupFor(&groups, &tags, cur)
		g.items = append(g.items, i)
		g.keys = append(g.keys, cur, prev)
		g.args = append(g.args, sc.cost, lim.Volume, shadow, sc.end-t, sc.size, ttlMillis(sc.end, sc.size, t))
	}

	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.run(cctx, reserveScript, groups); err != nil {
		return r.fail(ctx, "reserve", err)
	}
	denied := -1
	admitted := 0
	for _, g := range groups {
		vals, err := g.cmd.Int64Slice()
		if err != nil || len(vals) != 1+2*len(g.items) {
			return r.fail(ctx, "reserve", fmt.Errorf("unexpected script reply %v: %w", vals, err))
		}
		if d := vals[0]; d > 0 {
			if i := g.items[d-1]; denied < 0 || i < denied {
				denied = i
			}
		} else {
			admitted++
		}
		for j, i := range g.items {
			sc := &res.scratch[i]
			sc.cur, sc.prev = vals[1+2*j], vals[2+2*j]
		}
	}
	// Recompute every item's verdict for States (the script reports only the
	// first denial of each group), with the script's arithmetic.
	for i := range items {
		sc := &res.scratch[i]
		sc.over = over(estimate(sc.cur, sc.prev, sc.end-sc.now, sc.size), sc.cost, items[i].Rule.Limit.Volume)
	}
	if denied >= 0 && admitted > 0 {
		r.compensate(ctx, now, items, res, groups)
	}
	finish(res, items, denied)
	return nil
}

// compensate releases what the admitting groups of a denied request reserved.
func (r *Redis) compensate(ctx context.Context, now time.Time, items []Item, res *Result, groups []*group) {
	var ss []Settlement
	for _, g := range groups {
		if v, _ := g.cmd.Int64Slice(); len(v) > 0 && v[0] == 0 {
			for _, i := range g.items {
				sc := &res.scratch[i]
				ss = append(ss, Settlement{Reservation: Reservation{
					rule: items[i].Rule, key: items[i].Key, start: sc.start, end: sc.end, cost: sc.cost,
				}})
			}
		}
	}
	if err := r.Settle(context.WithoutCancel(ctx), now, ss); err != nil {
		r.log.Warn("rate limit: could not release the reservations of a request denied by another slot; they expire with their window",
			"error", err)
	}
}

// Settle implements [Store].
func (r *Redis) Settle(ctx context.Context, now time.Time, settlements []Settlement) error {
	t := now.UnixNano()
	var buf []byte
	var groups []*group
	var tags []string
	for i := range settlements {
		rv := &settlements[i].Reservation
		if rv.rule == nil {
			continue
		}
		d := max(settlements[i].Actual, 0) - rv.cost
		if d == 0 {
			continue
		}
		lim := &rv.rule.Limit
		size := lim.size()
		if t >= rv.end+size {
			continue // the window no longer counts
		}
		buf = r.counterKey(buf, rv.key, lim, rv.start)
		k := string(buf)
		g := r.groupFor(&groups, &tags, k)
		g.keys = append(g.keys, k)
		g.args = append(g.args, d, ttlMillis(rv.end, size, t))
	}
	if len(groups) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := r.run(cctx, settleScript, groups); err != nil {
		return r.fail(ctx, "settle", err)
	}
	return nil
}

// groupFor returns the group the script for key belongs to.
func (r *Redis) groupFor(groups *[]*group, tags *[]string, key string) *group {
	slot := 0
	switch r.group {
	case groupSlot:
		slot = keySlot(key)
	case groupTag:
		tag := hashTag(key)
		slot = -1
		for i, t := range *tags {
			if t == tag {
				slot = i
			}
		}
		if slot < 0 {
			slot = len(*tags)
			*tags = append(*tags, tag)
		}
	}
	for _, g := range *groups {
		if g.slot == slot {
			return g
		}
	}
	g := &group{slot: slot}
	*groups = append(*groups, g)
	return g
}

// run runs script once per group: directly for one group, in one pipeline
// for several. EVALSHA first; groups whose node lost the script are re-run
// with EVAL, which also loads it.
func (r *Redis) run(ctx context.Context, script *redis.Script, groups []*group) error {
	if len(groups) == 1 {
		g := groups[0]
		g.cmd = script.Run(ctx, r.c, g.keys, g.args...)
		return cmdErr(g.cmd)
	}
	pipe := r.c.Pipeline()
	for _, g := range groups {
		g.cmd = script.EvalSha(ctx, pipe, g.keys, g.args...)
	}
	_, _ = pipe.Exec(ctx)
	var again []*group
	for _, g := range groups {
		if redis.HasErrorPrefix(g.cmd.Err(), "NOSCRIPT") {
			again = append(again, g)
		}
	}
	if len(again) > 0 {
		pipe = r.c.Pipeline()
		for _, g := range again {
			g.cmd = script.Eval(ctx, pipe, g.keys, g.args...)
		}
		_, _ = pipe.Exec(ctx)
	}
	for _, g := range groups {
		if err := cmdErr(g.cmd); err != nil {
			return err
		}
	}
	return nil
}

func cmdErr(c *redis.Cmd) error {
	if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}

// fail classifies an error: the caller's own cancellation is returned as is,
// anything else means Redis did not answer in time.
func (r *Redis) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("ratelimit: redis %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("%w: redis %s: %w", ErrUnavailable, op, err)
}
