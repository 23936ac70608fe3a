package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-gateway/sluice/internal/cache"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/payload/content"
	"github.com/sluice-gateway/sluice/internal/route"
)

// cacheFill is a miss whose answer is to be stored.
type cacheFill struct {
	policy *cache.Policy
	key    [32]byte
	// For a semantic policy: the question's context and embedding, indexed once the
	// answer is stored (vec is nil when the question could not be embedded).
	semCtx [32]byte
	vec    []float32
}

// cacheTimeout bounds a store's Get and Set; a slow cache is bypassed, never waited for.
const cacheTimeout = 250 * time.Millisecond

// cacheLookup serves ex from the cache when it can (true), or returns what to fill
// after the answer. Cache-Control: no-cache skips the lookup (the fresh answer is still
// stored), no-store skips the cache entirely. A streamed chat or Messages answer is
// captured as the client received it and stored as the equivalent whole answer.
//
// A semantic policy, when the exact lookup misses, embeds the request's last user message
// and looks for a close enough question asked in the same context (see cache.Question);
// the embedding is kept to index the answer this request gets.
func (g *Gateway) cacheLookup(r *http.Request, w *recorder, ex *exchange.Exchange, cp *cache.Policy, backends map[string]*route.Backend) (bool, *cacheFill) {
	if ex.IngressEndpoint == exchange.EndpointCountTokens {
		return false, nil
	}
	cc := strings.ToLower(r.Header.Get("Cache-Control"))
	if strings.Contains(cc, "no-store") {
		return false, nil
	}
	scope := cp.ScopeKey(ex.Principal)
	ex.CachePolicy = cp.Ref
	key, ok := cache.Key(ex.IngressEndpoint.String(), ex.Body, scope)
	if !ok {
		return false, nil
	}
	fill := &cacheFill{policy: cp, key: key}
	lookup := !strings.Contains(cc, "no-cache")
	if lookup {
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
	if sem := cp.Semantic; sem != nil {
		if g.semanticLookup(r.Context(), w, ex, cp, backends[sem.Backend], scope, lookup, fill) {
			return true, nil
		}
	}
	ex.Cache = "miss"
	w.Header()["X-Sluice-Cache"] = cacheMiss
	if ex.Stream && ex.IngressEndpoint != exchange.EndpointChat && ex.IngressEndpoint != exchange.EndpointMessages {
		return false, nil
	}
	w.capture = capturePool.Get().(*bytes.Buffer)
	return false, fill
}

// semanticLookup embeds the request's question and serves the answer of the closest
// question of its context at or above the threshold (true). It records the embedding in
// fill either way. An embeddings failure only costs the lookup: the request goes on.
func (g *Gateway) semanticLookup(ctx context.Context, w *recorder, ex *exchange.Exchange, cp *cache.Policy, be *route.Backend, scope string, lookup bool, fill *cacheFill) bool {
	sem := cp.Semantic
	semCtx, question, ok := cache.Question(ex.IngressEndpoint, ex.Body, scope)
	if !ok || be == nil {
		return false
	}
	vec, tokens, err := g.embed(ctx, be, sem, question)
	ex.CacheTokens += tokens
	if err != nil {
		g.log.Warn("semantic cache: no embedding; exact match only", "request_id", ex.ID, "policy", cp.Ref, "backend", sem.Backend, "error", err.Error())
		return false
	}
	fill.semCtx, fill.vec = semCtx, vec
	if !lookup {
		return false
	}
	k, score, found := sem.Index.Search(semCtx, vec, sem.Threshold)
	if !found {
		return false
	}
	gctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	e, hit, err := cp.Store.Get(gctx, k)
	cancel()
	if err != nil || !hit {
		if err == nil {
			sem.Index.Forget(semCtx, k) // the answer expired or was evicted
		}
		return false
	}
	w.Header()["X-Sluice-Cache-Similarity"] = []string{strconv.FormatFloat(float64(score), 'f', 3, 32)}
	if !g.serveCached(w, ex, e) {
		delete(w.Header(), "X-Sluice-Cache-Similarity")
		return false
	}
	ex.Cache = "semantic_hit"
	return true
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
		ex.CacheSaved = exchange.Usage{InputTokens: e.Usage.Input, OutputTokens: e.Usage.Output, CachedInputTokens: e.Usage.Cached}
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
	ex.CacheSaved = exchange.Usage{InputTokens: e.Usage.Input, OutputTokens: e.Usage.Output, CachedInputTokens: e.Usage.Cached}
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
	body, contentType := bytes.Clone(buf.Bytes()), w.Header().Get("Content-Type")
	if ex.Stream {
		var ok bool
		if body, ok = assembleStream(ex, body); !ok {
			return
		}
		contentType = "application/json"
	}
	e := &cache.Entry{Status: http.StatusOK, Body: body, Created: time.Now(),
		Header: map[string]string{"Content-Type": contentType},
		Usage:  cache.Usage{Input: ex.Usage.InputTokens, Output: ex.Usage.OutputTokens, Cached: ex.Usage.CachedInputTokens}}
	set := func() {
		ctx, cancel := context.WithTimeout(context.Background(), cacheTimeout)
		defer cancel()
		if err := f.policy.Store.Set(ctx, f.key, e, f.policy.TTL); err != nil {
			if err != cache.ErrTooLarge {
				g.log.Warn("cache store failed", "policy", f.policy.Ref, "error", err.Error())
			}
			return
		}
		if f.vec != nil {
			f.policy.Semantic.Index.Add(f.semCtx, f.vec, f.key, f.policy.TTL)
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

// assembleStream turns a streamed answer, as the client received it (after the response
// processors), into the whole answer it stands for: an OpenAI chat.completion or an
// Anthropic message. Only text answers are assembled: a stream with tool calls, several
// choices or an error is not cached.
func assembleStream(ex *exchange.Exchange, sse []byte) ([]byte, bool) {
	if bytes.Contains(sse, []byte(`"tool_calls"`)) || bytes.Contains(sse, []byte(`"tool_use"`)) ||
		bytes.Contains(sse, []byte(`"error"`)) {
		return nil, false
	}
	var text []byte
	finish, id, model := "", "", ex.Model
	for _, ev := range bytes.SplitAfter(sse, []byte("\n\n")) {
		if len(bytes.TrimSpace(ev)) == 0 {
			continue
		}
		idx, seg, ok, multi := content.Delta(ev)
		if multi {
			return nil, false
		}
		if ok {
			if idx != 0 && ex.IngressEndpoint == exchange.EndpointChat {
				return nil, false // n > 1
			}
			text = content.Text(text, ev, seg)
		}
		if v := jsonField(ev, "finish_reason"); v != "" {
			finish = v
		}
		if v := jsonField(ev, "stop_reason"); v != "" {
			finish = v
		}
		if id == "" {
			id = jsonField(ev, "id")
		}
		if v := jsonField(ev, "model"); v != "" {
			model = v
		}
	}
	if finish == "" {
		return nil, false // the stream did not end normally
	}
	u := ex.Usage
	if ex.IngressEndpoint == exchange.EndpointMessages {
		b, err := json.Marshal(map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": model,
			"content":     []map[string]any{{"type": "text", "text": string(text)}},
			"stop_reason": finish, "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens},
		})
		return b, err == nil
	}
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": model,
		"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": string(text)}, "finish_reason": finish}},
		"usage":   map[string]any{"prompt_tokens": u.InputTokens, "completion_tokens": u.OutputTokens, "total_tokens": u.InputTokens + u.OutputTokens},
	})
	return b, err == nil
}

// jsonField finds "name":"value" in an event and returns the value (first occurrence;
// these are short, unescaped identifiers).
func jsonField(ev []byte, name string) string {
	key := []byte(`"` + name + `":"`)
	i := bytes.Index(ev, key)
	if i < 0 {
		return ""
	}
	rest := ev[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || j > 256 {
		return ""
	}
	return string(rest[:j])
}
