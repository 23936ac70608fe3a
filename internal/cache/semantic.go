package cache

import (
	"math"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload/content"
)

// MaxQuestionBytes bounds the question a semantic lookup embeds. A longer one is matched
// exactly only: embedding models truncate long inputs, and two questions that differ past
// the cut would look identical.
const MaxQuestionBytes = 8 << 10

// Question splits a request for semantic matching into the text of its last user message
// (what is compared by meaning) and the key of everything else, scope included (what
// must be equal for a cached answer to apply: system prompt, earlier turns, tools,
// parameters, model). ok is false when the request has no trailing user text (it ends
// with a tool result, say), is too long, or cannot be keyed.
func Question(ep exchange.Endpoint, body []byte, scope string) (context [32]byte, question []byte, ok bool) {
	if ep != exchange.EndpointChat && ep != exchange.EndpointMessages && ep != exchange.EndpointCompletions {
		return context, nil, false
	}
	segs, err := content.Request(ep, body, nil)
	if err != nil || len(segs) == 0 {
		return context, nil, false
	}
	first := len(segs)
	for first > 0 && segs[first-1].Part == content.User {
		first--
	}
	if first == len(segs) {
		return context, nil, false
	}
	edits := make([]content.Edit, 0, len(segs)-first)
	for i, s := range segs[first:] {
		if i > 0 {
			question = append(question, '\n')
		}
		question = content.Text(question, body, s)
		edits = append(edits, content.Edit{Segment: s})
	}
	if len(question) == 0 || len(question) > MaxQuestionBytes {
		return context, nil, false
	}
	context, ok = Key(ep.String(), content.Rewrite(body, edits), "semantic\x00"+scope)
	return context, question, ok
}

// SemanticIndex finds the cached answer to a question close in meaning to one asked
// before. Questions are grouped by context (see [Question]): only questions with equal
// contexts, and so equal scopes, are ever compared. Each entry points at an exact key
// whose answer lives in the policy's [Store]. It is in memory, per gateway replica,
// bounded by entry count (least recently used evicted) and TTL. The search is exhaustive
// within one context, which keeps it exact; contexts keep the groups small.
type SemanticIndex struct {
	mu    sync.RWMutex
	byCtx map[[32]byte][]*vecNode
	lru   vecNode // sentinel: lru.next is the most recently used
	n     int
	max   int
	now   func() time.Time
}

type vecNode struct {
	ctx, key   [32]byte
	vec        []float32 // unit length
	expires    int64     // unix nanoseconds
	prev, next *vecNode
}

// NewSemanticIndex returns an empty index of at most maxEntries questions; now is the
// clock (nil: time.Now).
func NewSemanticIndex(maxEntries int, now func() time.Time) *SemanticIndex {
	if now == nil {
		now = time.Now
	}
	x := &SemanticIndex{byCtx: map[[32]byte][]*vecNode{}, max: max(maxEntries, 1), now: now}
	x.lru.next, x.lru.prev = &x.lru, &x.lru
	return x
}

// Search returns the exact key of the most similar live question in context ctx whose
// cosine similarity with vec is at least threshold.
func (x *SemanticIndex) Search(ctx [32]byte, vec []float32, threshold float32) (key [32]byte, score float32, ok bool) {
	norm := norm(vec)
	if norm == 0 {
		return key, 0, false
	}
	now := x.now().UnixNano()
	var best *vecNode
	score = -2
	x.mu.RLock()
	for _, n := range x.byCtx[ctx] {
		if n.expires <= now || len(n.vec) != len(vec) {
			continue
		}
		if s := dot(n.vec, vec) / norm; s > score {
			best, score = n, s
		}
	}
	if best == nil || score < threshold {
		x.mu.RUnlock()
		return key, score, false
	}
	key = best.key
	x.mu.RUnlock()
	x.mu.Lock()
	if best.prev != nil { // still indexed
		best.unlink()
		x.pushFront(best)
	}
	x.mu.Unlock()
	return key, score, true
}

// Add indexes the question vec of context ctx as answered under key, for ttl. A question
// already indexed under the same key is replaced.
func (x *SemanticIndex) Add(ctx [32]byte, vec []float32, key [32]byte, ttl time.Duration) {
	norm := norm(vec)
	if norm == 0 || ttl <= 0 {
		return
	}
	unit := make([]float32, len(vec))
	for i, v := range vec {
		unit[i] = v / norm
	}
	n := &vecNode{ctx: ctx, key: key, vec: unit, expires: x.now().Add(ttl).UnixNano()}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeKey(ctx, key)
	x.byCtx[ctx] = append(x.byCtx[ctx], n)
	x.pushFront(n)
	x.n++
	for x.n > x.max {
		x.remove(x.lru.prev)
	}
}

// Forget removes the question answered under key in context ctx (its answer left the
// store).
func (x *SemanticIndex) Forget(ctx, key [32]byte) {
	x.mu.Lock()
	x.removeKey(ctx, key)
	x.mu.Unlock()
}

// Len is the number of indexed questions, expired ones included until evicted.
func (x *SemanticIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.n
}

func (x *SemanticIndex) removeKey(ctx, key [32]byte) {
	for _, n := range x.byCtx[ctx] {
		if n.key == key {
			x.remove(n)
			return
		}
	}
}

func (x *SemanticIndex) remove(n *vecNode) {
	list := x.byCtx[n.ctx]
	for i, m := range list {
		if m == n {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(x.byCtx, n.ctx)
	} else {
		x.byCtx[n.ctx] = list
	}
	n.unlink()
	x.n--
}

func (x *SemanticIndex) pushFront(n *vecNode) {
	n.prev, n.next = &x.lru, x.lru.next
	x.lru.next.prev = n
	x.lru.next = n
}

func (n *vecNode) unlink() {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func norm(v []float32) float32 {
	return float32(math.Sqrt(float64(dot(v, v))))
}

// dot is the inner product, four lanes at a time.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}
