// Package ratelimit is the core of Sluice's RateLimitPolicy: token- and
// request-based limits, quotas and budgets with reserve-then-settle
// accounting, over an in-process store ([Memory]) or Redis ([Redis]).
//
// # Reserve, then settle
//
// At admission the gateway calls [Store.Reserve] once per request with one
// [Item] per matching rule and bucket key. The store checks every bucket and
// reserves the item's estimated cost in all of them, atomically and all or
// nothing: if any non-shadow bucket would go over its limit, nothing is
// reserved and the [Result] names the denying item and the time to retry.
// After the answer (or on an aborted stream, a client disconnect, an upstream
// error or a panic) the gateway calls [Store.Settle] once with the actual cost
// of each reservation. Settlement replaces the reservation by the actual cost
// (0 releases it; more than the estimate charges the excess, even over the
// limit, because those tokens were spent), in the window the reservation was
// made in, so nothing leaks: reserved == settled + released. Each reservation
// must be settled exactly once.
//
// # Windows and algorithm
//
// Second, Minute and Hour limits use a sliding window approximated by two
// fixed windows (the sliding-window-counter algorithm). Windows of length
// W = Count × period are aligned to the Unix epoch. At time t, a fraction f of
// the way through the current window, a bucket's use is estimated as
//
//	used = cur + ceil(prev × (1 − f))
//
// where cur and prev are the totals of the current and previous fixed windows,
// and a request of cost c is admitted when used + max(c, 1) ≤ Volume.
//
// Error bound. The estimate is exact when the previous window's traffic was
// spread uniformly over it, and the ceiling makes it err by less than one unit
// towards denial. Because cur is always counted in full, a fixed window never
// admits more than Volume. Over an arbitrary interval of length W ending a
// fraction f into a window, the admitted total is at most Volume + prev × f,
// which is below 2 × Volume; the worst case needs the previous window's whole
// volume to arrive in its last instant, followed by a burst late in the
// current window. In the other direction, traffic early in the previous window
// is over-counted, so the limiter may deny up to prev × (1 − f) units early; it
// never admits more than the worst case above.
//
// Day and Month limits are budgets over fixed UTC calendar windows and are
// exact: Count days aligned to the epoch day (reset at 00:00 UTC), Count
// calendar months aligned to months since January 1970 (reset on the 1st,
// 00:00 UTC). See [Limit.Window].
//
// Token estimates. What a window admits is the sum of reserved estimates, so
// the bounds above hold for settled cost whenever actual costs do not exceed
// their estimates (for example an estimate from max_tokens). When a
// settlement exceeds its estimate the excess is charged after the fact, and
// the window may end over Volume by at most the sum of those excesses; later
// requests are then denied until the window frees capacity.
//
// # Stores
//
// [Memory] is sharded 64 ways by key hash, each shard a mutex and a map, so
// there is no global lock; a request locks only the shards of its buckets, in
// a fixed order. Expired windows roll lazily when a bucket is touched; idle
// buckets are removed by [Memory.Sweep], which one optional janitor goroutine
// runs one shard at a time until [Memory.Close]. With a reused [Result] and
// settlement slice, admission plus settlement allocates nothing.
//
// [Redis] runs one Lua script per request for admission and one for
// settlement (EVALSHA, falling back to EVAL when the script cache is empty).
// See [Redis] for the key layout, Redis Cluster and clock assumptions, and
// [Guard] for failure modes when the store is unreachable.
package ratelimit
