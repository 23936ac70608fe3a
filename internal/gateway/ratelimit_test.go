package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/ratelimit"
	"github.com/sluice-gateway/sluice/internal/redistest"
)

const limitedMock = `
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: mock}
spec: {schema: Mock, mock: {chunks: 4}}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec: {models: [demo], backendRefs: [{name: mock}]}
---
`

// TestRateLimitSDK: over the limit the SDK gets 429 rate_limit_exceeded naming the rule,
// with Retry-After and OpenAI's x-ratelimit headers, and its own retry, honouring
// Retry-After, then succeeds.
func TestRateLimitSDK(t *testing.T) {
	gw := gatewaytest.Start(t, limitedMock+`
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: per-caller}
spec:
  targetRefs: [{kind: ModelRoute, name: chat}]
  emitRateLimitResponseHeaders: true
  rules:
  - name: two-per-second
    key: request.headers[?"x-user"].orValue("anonymous")
    limit: {volumeUnits: Requests, volume: 2, timeUnit: Second}
  - name: tokens-per-minute
    key: request.headers[?"x-user"].orValue("anonymous")
    limit: {volumeUnits: Tokens, volume: 100000, timeUnit: Minute}
`, nil, gateway.Options{})
	params := openai.ChatCompletionNewParams{Model: "demo", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(50)}
	c := openai.NewClient(option.WithBaseURL(gw.URL()+"/"), option.WithAPIKey("x"), option.WithMaxRetries(0), option.WithHeader("X-User", "u1"))
	var resp *http.Response
	for i := range 2 {
		if _, err := c.Chat.Completions.New(t.Context(), params, option.WithResponseInto(&resp)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if resp.Header.Get("X-Ratelimit-Limit-Requests") != "2" || resp.Header.Get("X-Ratelimit-Remaining-Requests") != "0" ||
		resp.Header.Get("X-Ratelimit-Limit-Tokens") != "100000" || resp.Header.Get("X-Ratelimit-Reset-Requests") == "" {
		t.Fatalf("headers %v", resp.Header)
	}
	_, err := c.Chat.Completions.New(t.Context(), params)
	var apiErr *openai.Error
	if !isAPIError(err, 429, "rate_limit_exceeded") {
		t.Fatalf("third request: %v", err)
	}
	apiErr = err.(*openai.Error)
	// A one-second sliding window frees capacity within two seconds.
	if ra := apiErr.Response.Header.Get("Retry-After"); (ra != "1" && ra != "2") || !strings.Contains(apiErr.Message, "two-per-second") {
		t.Fatalf("Retry-After %q, message %q", ra, apiErr.Message)
	}
	// Another caller has its own bucket.
	other := openai.NewClient(option.WithBaseURL(gw.URL()+"/"), option.WithAPIKey("x"), option.WithMaxRetries(0), option.WithHeader("X-User", "u2"))
	if _, err := other.Chat.Completions.New(t.Context(), params); err != nil {
		t.Fatalf("other caller: %v", err)
	}
	// The SDK's retry waits Retry-After and gets through.
	retrying := openai.NewClient(option.WithBaseURL(gw.URL()+"/"), option.WithAPIKey("x"), option.WithMaxRetries(3), option.WithHeader("X-User", "u1"))
	if _, err := retrying.Chat.Completions.New(t.Context(), params); err != nil {
		t.Fatalf("with retries: %v", err)
	}
}

// tokenStore returns the Memory store and rule of the only policy, to read its counters.
func tokenStore(t *testing.T, gw *gatewaytest.Gateway) (*ratelimit.Memory, ratelimit.Limit, string) {
	snap := gw.Snapshot()
	p := snap.Limits.Policies[0]
	m, ok := p.Store.Store.(*ratelimit.Memory)
	if !ok {
		t.Fatal("not a memory store")
	}
	return m, p.Rules[0].Limit, p.Rules[0].ID + "\x00team"
}

// TestRateLimitAccounting: under concurrency, with streams whose clients leave mid-way,
// the admitted cost never exceeds the limit and every reservation is settled: the bucket
// holds exactly the usage the access log reports.
func TestRateLimitAccounting(t *testing.T) {
	const volume = 10000
	gw := gatewaytest.Start(t, strings.Replace(limitedMock, "chunks: 4", "chunks: 16, tokensPerSecond: 2000", 1)+fmt.Sprintf(`
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: budget}
spec:
  rules:
  - name: team-tokens
    key: '"team"'
    limit: {volumeUnits: Tokens, volume: %d, timeUnit: Day}
`, volume), nil, gateway.Options{})
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := i%2 == 0
			body := fmt.Sprintf(`{"model":"demo","stream":%v,"max_tokens":80,"messages":[{"role":"user","content":"request %d asks something"}]}`, stream, i)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", gw.URL()+"/chat/completions", strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				admitted.Add(1)
				if stream && i%4 == 0 {
					buf := make([]byte, 64)
					resp.Body.Read(buf) // part of the stream, then leave
					cancel()
					return
				}
				io.Copy(io.Discard, resp.Body)
			case 429:
				refused.Add(1)
			default:
				t.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	gw.Log.Wait(t, "request", 200, 30*time.Second)
	var logged int64
	for _, r := range gw.Log.Records("request") {
		if r["status"].(float64) != 429 {
			logged += int64(r["input_tokens"].(float64) + r["output_tokens"].(float64))
		}
	}
	m, limit, key := tokenStore(t, gw)
	cur, _ := m.Counters(limit, key, time.Now())
	if cur != logged {
		t.Fatalf("bucket holds %d tokens, the access log accounts %d: reservations leaked (admitted %d, refused %d)", cur, logged, admitted.Load(), refused.Load())
	}
	// Reservations are estimates (prompt + max_tokens), so the bucket cannot be overrun
	// by more than one request's overshoot; here answers stay within max_tokens.
	if cur > volume {
		t.Fatalf("admitted %d tokens over a limit of %d", cur, volume)
	}
	if refused.Load() == 0 {
		t.Fatal("the limit never refused anything; the test proves nothing")
	}
}

// TestRateLimitRedisShared: three gateways sharing one Redis admit exactly N requests in
// total; with Redis down FailOpen admits and FailClosed refuses with 503; limits work again
// once Redis is back.
func TestRateLimitRedisShared(t *testing.T) {
	srv := redistest.Start(t)
	policy := func(name, mode string, n int) string {
		return fmt.Sprintf(`
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: %s}
spec:
  storage: {type: Redis, redis: {url: "%s"}}
  failureMode: %s
  rules:
  - name: shared
    key: '"all"'
    limit: {volumeUnits: Requests, volume: %d, timeUnit: Hour}
`, name, srv.URL(), mode, n)
	}
	const n = 25
	var gws []*gatewaytest.Gateway
	for range 3 {
		// FailClosed: a slow Redis must not pass for an admission here.
		gws = append(gws, gatewaytest.Start(t, limitedMock+policy("shared", "FailClosed", n), nil, gateway.Options{}))
	}
	var ok, limited, unavailable atomic.Int64
	var wg sync.WaitGroup
	for i := range 90 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, gws[i%3].URL()+"/chat/completions", `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`)
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 429:
				limited.Add(1)
			case 503:
				unavailable.Add(1)
			}
		}()
	}
	wg.Wait()
	// A Redis round trip over its 250ms bound (a loaded machine running -race) fails
	// closed with 503; such a request may or may not have been counted in Redis. Exactness
	// is then: never more than n admitted, and no request lost.
	if u := unavailable.Load(); u > 0 {
		t.Logf("%d requests found Redis too slow (503)", u)
	}
	if ok.Load() > n || ok.Load()+unavailable.Load() < n || ok.Load()+limited.Load()+unavailable.Load() != 90 {
		t.Fatalf("admitted %d, limited %d, unavailable %d; want exactly %d admitted", ok.Load(), limited.Load(), unavailable.Load(), n)
	}

	open := gatewaytest.Start(t, limitedMock+policy("open", "FailOpen", 1000), nil, gateway.Options{})
	closed := gatewaytest.Start(t, limitedMock+policy("closed", "FailClosed", 1000), nil, gateway.Options{})
	srv.Stop()
	body := `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`
	if resp, _ := post(t, open.URL()+"/chat/completions", body); resp.StatusCode != 200 {
		t.Fatalf("FailOpen with Redis down: %d", resp.StatusCode)
	}
	if resp, e := post(t, closed.URL()+"/chat/completions", body); resp.StatusCode != 503 || e.Error.Code != "rate_limit_unavailable" {
		t.Fatalf("FailClosed with Redis down: %d %s", resp.StatusCode, e.Error.Code)
	}
	srv.Restart()
	// Back: the shared limit of a fresh policy is enforced again (the restarted Redis has
	// no counters).
	again := gatewaytest.Start(t, limitedMock+policy("again", "FailClosed", 1), nil, gateway.Options{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _ := post(t, again.URL()+"/chat/completions", body)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis back, still %d", resp.StatusCode)
		}
		time.Sleep(50 * time.Millisecond) // the client's reconnect probe runs on its own schedule
	}
	if resp, _ := post(t, again.URL()+"/chat/completions", body); resp.StatusCode != 429 {
		t.Fatalf("limit after recovery: %d", resp.StatusCode)
	}
}
