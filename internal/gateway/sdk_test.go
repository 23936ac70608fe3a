package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/provider/mock"
)

// recordingUpstream serves an OpenAI-compatible API (the Mock backend's handler, behind a
// real HTTP server) and remembers what reached it.
type recordingUpstream struct {
	*httptest.Server
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	handler http.Handler
}

func newRecordingUpstream(t *testing.T, models ...string) *recordingUpstream {
	u := &recordingUpstream{handler: mock.NewHandler(v1alpha1.MockSpec{Chunks: 5}, models)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, b)
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		u.handler.ServeHTTP(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) last() ([]byte, http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bodies[len(u.bodies)-1], u.headers[len(u.headers)-1]
}

const openAIBackend = `
apiVersion: v1
kind: Secret
metadata: {name: upstream-key}
stringData: {apiKey: sk-upstream-secret}
---
apiVersion: sluice.dev/v1alpha1
kind: Backend
metadata: {name: upstream}
spec:
  schema: OpenAI
  url: ${UPSTREAM}/v1
  credentials: {apiKey: {secretRef: {name: upstream-key}}}
---
apiVersion: sluice.dev/v1alpha1
kind: ModelRoute
metadata: {name: chat}
spec:
  models: [gpt-4o-mini, text-embedding-3-small, gpt-3.5-turbo-instruct]
  backendRefs: [{name: upstream}]
`

func clients(t *testing.T, gwURL, upURL string) (viaGateway, direct openai.Client) {
	mk := func(base string) openai.Client {
		return openai.NewClient(option.WithBaseURL(base+"/"), option.WithAPIKey("sk-client-credential"), option.WithMaxRetries(0))
	}
	return mk(gwURL), mk(upURL)
}

// TestSDKSameAnswers drives the gateway with OpenAI's official Go client and checks that
// every endpoint answers exactly as the upstream does when called directly.
func TestSDKSameAnswers(t *testing.T) {
	up := newRecordingUpstream(t, "gpt-4o-mini", "text-embedding-3-small", "gpt-3.5-turbo-instruct")
	gw := gatewaytest.Start(t, openAIBackend, map[string]string{"UPSTREAM": up.URL}, gateway.Options{})
	via, direct := clients(t, gw.URL(), up.URL+"/v1")
	ctx := t.Context()

	chat := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("What does a gateway do?")},
	}
	t.Run("chat", func(t *testing.T) {
		a, err := via.Chat.Completions.New(ctx, chat)
		if err != nil {
			t.Fatal(err)
		}
		if _, h := up.last(); h.Get("Authorization") != "Bearer sk-upstream-secret" {
			t.Fatalf("upstream saw Authorization %q", h.Get("Authorization"))
		}
		assertUsageLogged(t, gw, 1, false)
		b, err := direct.Chat.Completions.New(ctx, chat)
		if err != nil {
			t.Fatal(err)
		}
		if a.RawJSON() != b.RawJSON() {
			t.Fatalf("via gateway:\n%s\ndirect:\n%s", a.RawJSON(), b.RawJSON())
		}
	})

	streamChunks := func(c openai.Client, p openai.ChatCompletionNewParams) []string {
		t.Helper()
		s := c.Chat.Completions.NewStreaming(ctx, p)
		var out []string
		for s.Next() {
			out = append(out, s.Current().RawJSON())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Run("stream", func(t *testing.T) {
		a := streamChunks(via, chat)
		upBody, _ := up.last()
		b := streamChunks(direct, chat)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("via gateway:\n%s\ndirect:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
		if strings.Contains(strings.Join(a, ""), `"usage"`) {
			t.Fatal("client that did not ask for usage got usage")
		}
		// The gateway asked upstream for usage the client did not ask for ...
		var sent struct {
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		json.Unmarshal(upBody, &sent)
		if !sent.StreamOptions.IncludeUsage {
			t.Fatalf("upstream body without include_usage: %s", upBody)
		}
		// ... and recorded it.
		assertUsageLogged(t, gw, 2, false)
	})
	t.Run("stream-include-usage", func(t *testing.T) {
		p := chat
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		a := streamChunks(via, p)
		b := streamChunks(direct, p)
		if strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Fatalf("via gateway:\n%s\ndirect:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
		if !strings.Contains(a[len(a)-1], `"completion_tokens"`) {
			t.Fatalf("last chunk has no usage: %s", a[len(a)-1])
		}
	})
	t.Run("completions", func(t *testing.T) {
		p := openai.CompletionNewParams{Model: "gpt-3.5-turbo-instruct", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say this is a test")}, MaxTokens: openai.Int(16)}
		a, err := via.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := direct.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if a.RawJSON() != b.RawJSON() {
			t.Fatalf("via gateway:\n%s\ndirect:\n%s", a.RawJSON(), b.RawJSON())
		}
		sa := via.Completions.NewStreaming(ctx, p)
		sb := direct.Completions.NewStreaming(ctx, p)
		var ga, gb []string
		for sa.Next() {
			ga = append(ga, sa.Current().RawJSON())
		}
		for sb.Next() {
			gb = append(gb, sb.Current().RawJSON())
		}
		if sa.Err() != nil || sb.Err() != nil || strings.Join(ga, "\n") != strings.Join(gb, "\n") || len(ga) < 2 {
			t.Fatalf("streamed completions differ (%v, %v):\n%s\n%s", sa.Err(), sb.Err(), ga, gb)
		}
	})
	t.Run("embeddings", func(t *testing.T) {
		for _, f := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
			p := openai.EmbeddingNewParams{Model: "text-embedding-3-small", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello", "world"}}, EncodingFormat: f}
			a, err := via.Embeddings.New(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			b, err := direct.Embeddings.New(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if a.RawJSON() != b.RawJSON() || len(a.Data) != 2 {
				t.Fatalf("%s: via gateway:\n%s\ndirect:\n%s", f, a.RawJSON(), b.RawJSON())
			}
		}
	})
	t.Run("models", func(t *testing.T) {
		a, err := via.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := direct.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := func(p []openai.Model) (out []string) {
			for _, m := range p {
				out = append(out, m.ID)
			}
			return out
		}
		// The gateway lists its routes' exact names; here they are the upstream's models.
		ia, ib := ids(a.Data), ids(b.Data)
		slices.Sort(ib)
		if !slices.Equal(ia, ib) || len(ia) != 3 {
			t.Fatalf("via gateway %v, direct %v", ids(a.Data), ids(b.Data))
		}
		m, err := via.Models.Get(ctx, "gpt-4o-mini")
		if err != nil || m.ID != "gpt-4o-mini" {
			t.Fatalf("get model: %v %v", m, err)
		}
		if _, err := via.Models.Get(ctx, "nope"); !isAPIError(err, 404, "model_not_found") {
			t.Fatalf("get missing model: %v", err)
		}
	})

	// The client's own credential never went upstream, on any request.
	// (Requests through the gateway carry its X-Request-Id; direct SDK calls do not.)
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, h := range up.headers {
		if h.Get("X-Request-Id") != "" && strings.Contains(h.Get("Authorization"), "sk-client-credential") {
			t.Fatal("a request through the gateway carried the client's credential upstream")
		}
	}
}

func isAPIError(err error, status int, code string) bool {
	e, ok := err.(*openai.Error)
	return ok && e.StatusCode == status && e.Code == code
}

// assertUsageLogged checks the last access-log record, once there are n, carries reported
// (or estimated) usage. The line is written as the request finishes, which may be just
// after the client has read the whole answer.
func assertUsageLogged(t *testing.T, gw *gatewaytest.Gateway, n int, estimated bool) map[string]any {
	t.Helper()
	gw.Log.Wait(t, "request", n, 5*time.Second)
	recs := gw.Log.Records("request")
	if len(recs) == 0 {
		t.Fatal("no access log record")
	}
	rec := recs[len(recs)-1]
	if rec["input_tokens"].(float64) <= 0 || rec["output_tokens"].(float64) <= 0 || rec["usage_estimated"] != estimated {
		t.Fatalf("access log usage: %v", rec)
	}
	return rec
}
