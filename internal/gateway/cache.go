package gateway

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/cache"
	"github.com/sluice-gateway/sluice/internal/exchange"
)

// cacheFill is a miss whose answer is to be stored.
type cacheFill struct {
	policy *cache.Policy
	key    [32]byte
}

// cacheTimeout bounds a store's Get and Set; a slow cache is bypassed, never waited for.
const cacheTimeout = 250 * time.Millisecond

// cacheLookup serves ex from the cache when it can (true), or returns what to fill
// after the answer. Cache-Control: no-cache skips the lookup (the fresh answer is still
// stored), no-store skips the cache entirely. Streamed answers are not stored: a
// streaming client is served entries that non-streamed answers filled.
func (g *Gateway) cacheLookup(r *http.Request, w *recorder, ex *exchange.Exchange, cp *cache.Policy) (bool, *cacheFill) {
	if ex.IngressEndpoint == exchange.EndpointCountTokens {
		return false, nil
	}
	cc := strings.ToLower(r.Header.Get("Cache-Control"))
	if strings.Contains(cc, "no-store") {
		return false, nil
	}
	key, ok := cache.Key(ex.IngressEndpoint.String(), ex.Body, cp.ScopeKey(ex.Principal))
	if !ok {
		return false, nil
	}
	if !strings.Contains(cc, "no-cache") {
		ctx, cancel := context.WithTimeout(r.Context(), cacheTimeout)
		e, hit, err := cp.Store.Get(ctx, key)
		cancel()
		if err != nil {
			g.log.Warn("cache unavailable; bypassed", "request_id", ex.ID, "policy", cp.Ref, "error", err.Error())
		}
		if hit && g.serveCached(w, ex, e) {
			return true, nil
		}
	}
	ex.Cache = "miss"
	w.Header()["X-Sluice-Cache"] = cacheMiss
	if ex.Stream {
		return false, nil
	}
	w.capture = capturePool.Get().(*bytes.Buffer)
	return false, &cacheFill{policy: cp, key: key}
}

var (
	cacheHit  = []string{"hit"}
	cacheMiss = []string{"miss"}
)

// serveCached answers from an entry, replayed as a stream when the client asked for one.
// The upstream cost of a cached answer is zero: no usage is reported.
func (g *Gateway) serveCached(w *recorder, ex *exchange.Exchange, e *cache.Entry) bool {
	h := w.Header()
	if ex.Stream {
		var events [][]byte
		var err error
		switch ex.IngressEndpoint {
		case exchange.EndpointChat:
			events, err = cache.ReplayOpenAIChat(e.Body, ex.IncludeUsage)
		case exchange.EndpointCompletions:
			events, err = cache.ReplayOpenAICompletion(e.Body, ex.IncludeUsage)
		case exchange.EndpointMessages:
			events, err = cache.ReplayAnthropic(e.Body)
		default:
			return false
		}
		if err != nil {
			return false
		}
		h["Content-Type"] = eventStreamType
		h["Cache-Control"] = noCache
		h["X-Sluice-Cache"] = cacheHit
		ex.Status, ex.Cache, ex.Usage = e.Status, "hit", exchange.Usage{Reported: true}
		ex.FirstByte = time.Since(ex.Started)
		w.WriteHeader(e.Status)
		for _, ev := range events {
			w.Write(ev)
		}
		w.Flush()
		return true
	}
	for k, v := range e.Header {
		h.Set(k, v)
	}
	h["X-Sluice-Cache"] = cacheHit
	h["Content-Length"] = []string{itoa(len(e.Body))}
	ex.Status, ex.Cache, ex.Usage = e.Status, "hit", exchange.Usage{Reported: true}
	ex.FirstByte = time.Since(ex.Started)
	w.WriteHeader(e.Status)
	w.Write(e.Body)
	return true
}

// cacheStore keeps a successful answer. A Memory store is written inline; a remote one
// in the background, so the client does not wait for it.
func (g *Gateway) cacheStore(w *recorder, ex *exchange.Exchange, f *cacheFill) {
	buf := w.capture
	w.capture = nil
	defer releaseCapture(buf)
	if ex.Status != http.StatusOK || ex.Code != "" || w.overflow || buf.Len() == 0 {
		return
	}
	e := &cache.Entry{Status: http.StatusOK, Body: bytes.Clone(buf.Bytes()), Created: time.Now(),
		Header: map[string]string{"Content-Type": w.Header().Get("Content-Type")},
		Usage:  cache.Usage{Input: ex.Usage.InputTokens, Output: ex.Usage.OutputTokens, Cached: ex.Usage.CachedInputTokens}}
	set := func() {
		ctx, cancel := context.WithTimeout(context.Background(), cacheTimeout)
		defer cancel()
		if err := f.policy.Store.Set(ctx, f.key, e, f.policy.TTL); err != nil && err != cache.ErrTooLarge {
			g.log.Warn("cache store failed", "policy", f.policy.Ref, "error", err.Error())
		}
	}
	if _, local := f.policy.Store.(*cache.Memory); local {
		set()
		return
	}
	go set()
}

var capturePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func releaseCapture(b *bytes.Buffer) {
	if b == nil || b.Cap() > cache.MaxEntryBytes*2 {
		return
	}
	b.Reset()
	capturePool.Put(b)
}
