package mock

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/tokens"
)

// failAfter bounds waits that only a bug would make long; tests never sleep to
// synchronise.
const failAfter = 10 * time.Second

func client(spec v1alpha1.MockSpec) *http.Client {
	return &http.Client{Transport: NewTransport(NewHandler(spec, []string{"gpt-4o-mini", "text-embedding-3-small"}))}
}

func do(t *testing.T, c *http.Client, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://mock"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, out
}

func post(t *testing.T, c *http.Client, path, body string) []byte {
	t.Helper()
	resp, out := do(t, c, http.MethodPost, path, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: %s %s", path, body, resp.Status, out)
	}
	return out
}

// events parses a server-sent event stream, checking that every event is exactly
// "data: <payload>\n\n" and that it ends with [DONE].
func events(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	rest := string(body)
	for rest != "" {
		ev, after, ok := strings.Cut(rest, "\n\n")
		if !ok || !strings.HasPrefix(ev, "data: ") || strings.Contains(ev, "\n") {
			t.Fatalf("malformed event %q in %s", ev, body)
		}
		rest = after
		payload := strings.TrimPrefix(ev, "data: ")
		if payload == "[DONE]" {
			if rest != "" {
				t.Fatalf("data after [DONE]: %q", rest)
			}
			return out
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(payload), &m); err != nil {
			t.Fatalf("event %q: %v", payload, err)
		}
		out = append(out, m)
	}
	t.Fatalf("stream does not end with [DONE]: %s", body)
	return nil
}

func obj(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return m
}

func num(v any) int { f, _ := v.(float64); return int(f) }

func choice0(m map[string]any) map[string]any {
	return m["choices"].([]any)[0].(map[string]any)
}

func checkUsage(t *testing.T, u any, prompt, completion int) {
	t.Helper()
	m, ok := u.(map[string]any)
	if !ok {
		t.Fatalf("usage is %v", u)
	}
	if num(m["prompt_tokens"]) != prompt || num(m["completion_tokens"]) != completion || num(m["total_tokens"]) != prompt+completion {
		t.Errorf("usage %v, want prompt %d completion %d", m, prompt, completion)
	}
}

func promptTokens(t *testing.T, endpoint, model, body string) int {
	t.Helper()
	n, err := tokens.PromptTokens(endpoint, model, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello there, how are you today?"}]}`

func TestChat(t *testing.T) {
	c := client(v1alpha1.MockSpec{})
	resp, out := do(t, c, http.MethodPost, "/v1/chat/completions", chatBody)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != int64(len(out)) {
		t.Fatalf("%s %v %d", resp.Status, resp.Header, resp.ContentLength)
	}
	m := obj(t, out)
	if m["object"] != "chat.completion" || !strings.HasPrefix(m["id"].(string), "chatcmpl-mock-") || m["model"] != "gpt-4o-mini" || num(m["created"]) == 0 {
		t.Errorf("envelope: %s", out)
	}
	if _, ok := m["system_fingerprint"]; ok {
		t.Errorf("system_fingerprint present: %s", out)
	}
	ch := choice0(m)
	msg := ch["message"].(map[string]any)
	text := msg["content"].(string)
	if msg["role"] != "assistant" || ch["finish_reason"] != "stop" || num(ch["index"]) != 0 {
		t.Errorf("choice: %v", ch)
	}
	if !strings.Contains(text, `answering gpt-4o-mini. You said: "Hello there, how are you today?".`) {
		t.Errorf("text: %q", text)
	}
	n := tokens.CountString("gpt-4o-mini", text)
	if n < 40 || n > 60 {
		t.Errorf("answer has %d tokens, want 40-60: %q", n, text)
	}
	checkUsage(t, m["usage"], promptTokens(t, "chat", "gpt-4o-mini", chatBody), n)
}

func TestChatMultipartPrompt(t *testing.T) {
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":[{"type":"text","text":"look at"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}},{"type":"text","text":"this picture please"}]}]}`
	m := obj(t, post(t, client(v1alpha1.MockSpec{}), "/v1/chat/completions", body))
	text := choice0(m)["message"].(map[string]any)["content"].(string)
	if !strings.Contains(text, `You said: "look at this picture please".`) {
		t.Errorf("text: %q", text)
	}
	checkUsage(t, m["usage"], promptTokens(t, "chat", "gpt-4o", body), tokens.CountString("gpt-4o", text))
}

func TestChatStream(t *testing.T) {
	c := client(v1alpha1.MockSpec{Chunks: 5})
	full := choice0(obj(t, post(t, c, "/v1/chat/completions", chatBody)))["message"].(map[string]any)["content"].(string)

	body := strings.Replace(chatBody, `{"model"`, `{"stream":true,"model"`, 1)
	resp, out := do(t, c, http.MethodPost, "/chat/completions", body) // without the /v1 prefix
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" || resp.ContentLength != -1 {
		t.Fatalf("content-type %q, length %d", ct, resp.ContentLength)
	}
	evs := events(t, out)
	if len(evs) != 1+5+1 {
		t.Fatalf("%d events, want 7: %s", len(evs), out)
	}
	var text strings.Builder
	for i, ev := range evs {
		if _, ok := ev["usage"]; ok {
			t.Errorf("event %d has usage without include_usage", i)
		}
		if ev["object"] != "chat.completion.chunk" || ev["model"] != "gpt-4o-mini" || !strings.HasPrefix(ev["id"].(string), "chatcmpl-mock-") {
			t.Errorf("event %d envelope: %v", i, ev)
		}
		ch := choice0(ev)
		d := ch["delta"].(map[string]any)
		switch {
		case i == 0:
			if len(d) != 2 || d["role"] != "assistant" || d["content"] != "" || ch["finish_reason"] != nil {
				t.Errorf("first chunk: %v", ch)
			}
		case i == len(evs)-1:
			if len(d) != 0 || ch["finish_reason"] != "stop" {
				t.Errorf("last chunk: %v", ch)
			}
		default:
			s, _ := d["content"].(string)
			if len(d) != 1 || s == "" || ch["finish_reason"] != nil {
				t.Errorf("content chunk %d: %v", i, ch)
			}
			text.WriteString(s)
		}
	}
	if text.String() != full {
		t.Errorf("streamed %q, non-streamed %q", text.String(), full)
	}
}

func TestChatStreamIncludeUsage(t *testing.T) {
	c := client(v1alpha1.MockSpec{})
	body := `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count me"}]}`
	evs := events(t, post(t, c, "/v1/chat/completions", body))
	last := evs[len(evs)-1]
	var text strings.Builder
	for i, ev := range evs[:len(evs)-1] {
		if u, ok := ev["usage"]; !ok || u != nil {
			t.Errorf("event %d: usage %v, want null", i, ev["usage"])
		}
		if s, ok := choice0(ev)["delta"].(map[string]any)["content"].(string); ok {
			text.WriteString(s)
		}
	}
	if ch := last["choices"].([]any); len(ch) != 0 {
		t.Errorf("usage chunk has choices: %v", ch)
	}
	if last["object"] != "chat.completion.chunk" {
		t.Errorf("usage chunk: %v", last)
	}
	checkUsage(t, last["usage"], promptTokens(t, "chat", "gpt-4o-mini", body), tokens.CountString("gpt-4o-mini", text.String()))
}

func TestMaxTokens(t *testing.T) {
	c := client(v1alpha1.MockSpec{Chunks: 3})
	const model = "gpt-4o-mini"
	full := choice0(obj(t, post(t, c, "/v1/chat/completions", chatBody)))["message"].(map[string]any)["content"].(string)
	total := tokens.CountString(model, full)
	for limit := 1; limit <= total+1; limit++ {
		for _, field := range []string{"max_tokens", "max_completion_tokens"} {
			body := fmt.Sprintf(`{"model":%q,"%s":%d,"messages":[{"role":"user","content":"Hello there, how are you today?"}]}`, model, field, limit)
			m := obj(t, post(t, c, "/v1/chat/completions", body))
			ch := choice0(m)
			text := ch["message"].(map[string]any)["content"].(string)
			n := tokens.CountString(model, text)
			want := "length"
			if limit >= total {
				want = "stop"
			}
			if n > limit || ch["finish_reason"] != want || !strings.HasPrefix(full, text) || (want == "length" && n < limit-1) {
				t.Fatalf("%s=%d: %d tokens, finish %v, text %q", field, limit, n, ch["finish_reason"], text)
			}
			checkUsage(t, m["usage"], promptTokens(t, "chat", model, body), n)
		}
		// Streamed, the same cut and the same usage.
		body := fmt.Sprintf(`{"model":%q,"max_tokens":%d,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hello there, how are you today?"}]}`, model, limit)
		evs := events(t, post(t, c, "/v1/chat/completions", body))
		var text strings.Builder
		finish := ""
		for _, ev := range evs[:len(evs)-1] {
			ch := choice0(ev)
			if s, ok := ch["delta"].(map[string]any)["content"].(string); ok {
				text.WriteString(s)
			}
			if f, ok := ch["finish_reason"].(string); ok {
				finish = f
			}
		}
		if n := tokens.CountString(model, text.String()); n > limit || (limit < total) != (finish == "length") {
			t.Fatalf("streamed max_tokens=%d: %d tokens, finish %q", limit, n, finish)
		}
		checkUsage(t, evs[len(evs)-1]["usage"], promptTokens(t, "chat", model, body), tokens.CountString(model, text.String()))
	}
}

func TestAnswerPiecesMultibyte(t *testing.T) {
	// Tokens of emoji and CJK end inside characters; chunks must not.
	for _, prompt := range []string{"🦀🦀🦀 蟹 déjà vu", strings.Repeat("世界", 30), "\xff\xfe bad bytes"} {
		for limit := 0; limit < 60; limit += 7 {
			a := newAnswer("gpt-4", prompt, limit)
			if !utf8.ValidString(a.text) {
				t.Fatalf("invalid UTF-8 answer %q", a.text)
			}
			if a.tokens != tokens.CountString("gpt-4", a.text) || (limit > 0 && a.tokens > limit) {
				t.Fatalf("limit %d: tokens %d for %q", limit, a.tokens, a.text)
			}
			for _, n := range []int{1, 3, 8, 1000} {
				parts, toks := a.pieces(n)
				if len(parts) > n || len(parts) != len(toks) {
					t.Fatalf("%d pieces (%d counts) for n=%d", len(parts), len(toks), n)
				}
				if strings.Join(parts, "") != a.text {
					t.Fatalf("pieces %q do not add up to %q", parts, a.text)
				}
				for _, p := range parts {
					if p == "" || !utf8.ValidString(p) {
						t.Fatalf("bad piece %q", p)
					}
				}
			}
		}
	}
}

func TestCompletions(t *testing.T) {
	c := client(v1alpha1.MockSpec{Chunks: 4})
	const model = "gpt-3.5-turbo-instruct"
	body := `{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test"}`
	m := obj(t, post(t, c, "/v1/completions", body))
	ch := choice0(m)
	text := ch["text"].(string)
	if m["object"] != "text_completion" || !strings.HasPrefix(m["id"].(string), "cmpl-mock-") || ch["finish_reason"] != "stop" || ch["logprobs"] != nil {
		t.Errorf("completion: %v", m)
	}
	if !strings.Contains(text, `You said: "Say this is a test".`) {
		t.Errorf("text %q", text)
	}
	checkUsage(t, m["usage"], promptTokens(t, "completions", model, body), tokens.CountString(model, text))

	// A batch of prompts gets one choice each, in order.
	batch := `{"model":"gpt-3.5-turbo-instruct","max_tokens":9,"prompt":["one","two","three"]}`
	m = obj(t, post(t, c, "/v1/completions", batch))
	chs := m["choices"].([]any)
	completion := 0
	for i, x := range chs {
		ch := x.(map[string]any)
		completion += tokens.CountString(model, ch["text"].(string))
		if num(ch["index"]) != i || ch["finish_reason"] != "length" {
			t.Errorf("choice %d: %v", i, ch)
		}
	}
	if len(chs) != 3 {
		t.Fatalf("%d choices", len(chs))
	}
	checkUsage(t, m["usage"], promptTokens(t, "completions", model, batch), completion)
	if m := obj(t, post(t, c, "/v1/completions", `{"model":"m","prompt":[[1,2],[3]]}`)); len(m["choices"].([]any)) != 2 {
		t.Errorf("token arrays: %v", m)
	}

	// Streamed, with and without usage.
	for _, include := range []bool{false, true} {
		sb := fmt.Sprintf(`{"model":%q,"prompt":"Say this is a test","stream":true,"stream_options":{"include_usage":%v}}`, model, include)
		evs := events(t, post(t, c, "/v1/completions", sb))
		var streamed strings.Builder
		content := evs
		if include {
			content = evs[:len(evs)-1]
		}
		for i, ev := range content {
			u, has := ev["usage"]
			if has != include || u != nil {
				t.Errorf("event %d usage %v (present %v)", i, u, has)
			}
			ch := choice0(ev)
			streamed.WriteString(ch["text"].(string))
			if (i == len(content)-1) != (ch["finish_reason"] != nil) {
				t.Errorf("event %d finish_reason %v", i, ch["finish_reason"])
			}
		}
		if len(content) != 4+1 || streamed.String() != text {
			t.Errorf("streamed %d events %q, want 5 events %q", len(content), streamed.String(), text)
		}
		if include {
			last := evs[len(evs)-1]
			if len(last["choices"].([]any)) != 0 || last["object"] != "text_completion" {
				t.Errorf("usage chunk %v", last)
			}
			checkUsage(t, last["usage"], promptTokens(t, "completions", model, sb), tokens.CountString(model, text))
		}
	}
}

func TestEmbeddings(t *testing.T) {
	c := client(v1alpha1.MockSpec{})
	const model = "text-embedding-3-small"
	decode := func(b []byte) [][]float32 {
		var r struct {
			Object string `json:"object"`
			Model  string `json:"model"`
			Data   []struct {
				Object    string          `json:"object"`
				Index     int             `json:"index"`
				Embedding json.RawMessage `json:"embedding"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Object != "list" || r.Model != model {
			t.Fatalf("%s: %v", b, err)
		}
		var out [][]float32
		for i, d := range r.Data {
			if d.Object != "embedding" || d.Index != i {
				t.Fatalf("item %d: %+v", i, d)
			}
			var v []float32
			var s string
			if json.Unmarshal(d.Embedding, &s) == nil {
				raw, err := base64.StdEncoding.DecodeString(s)
				if err != nil || len(raw)%4 != 0 {
					t.Fatalf("base64 %q: %v", s, err)
				}
				for j := 0; j < len(raw); j += 4 {
					v = append(v, math.Float32frombits(binary.LittleEndian.Uint32(raw[j:])))
				}
			} else if err := json.Unmarshal(d.Embedding, &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}

	body := `{"model":"text-embedding-3-small","input":["hello world","The quick brown fox"]}`
	out := post(t, c, "/v1/embeddings", body)
	floats := decode(out)
	if len(floats) != 2 || len(floats[0]) != 16 {
		t.Fatalf("shape: %d x %d", len(floats), len(floats[0]))
	}
	u := obj(t, out)["usage"].(map[string]any)
	if want := promptTokens(t, "embeddings", model, body); num(u["prompt_tokens"]) != want || num(u["total_tokens"]) != want || len(u) != 2 {
		t.Errorf("usage %v, want %d", u, want)
	}
	for _, v := range floats {
		norm := 0.0
		for _, x := range v {
			norm += float64(x) * float64(x)
		}
		if math.Abs(norm-1) > 1e-5 {
			t.Errorf("norm² %v", norm)
		}
	}
	if fmt.Sprint(floats[0]) == fmt.Sprint(floats[1]) {
		t.Error("different inputs, same vector")
	}

	// base64 carries exactly the float vector; a single string gets the same vector
	// as the same string in an array.
	b64 := decode(post(t, c, "/v1/embeddings", `{"model":"text-embedding-3-small","input":["hello world","The quick brown fox"],"encoding_format":"base64"}`))
	if fmt.Sprint(b64) != fmt.Sprint(floats) {
		t.Errorf("base64 %v != float %v", b64, floats)
	}
	single := decode(post(t, c, "/v1/embeddings", `{"model":"text-embedding-3-small","input":"hello world"}`))
	if fmt.Sprint(single[0]) != fmt.Sprint(floats[0]) {
		t.Error("same text, different vector")
	}

	dims := decode(post(t, c, "/v1/embeddings", `{"model":"text-embedding-3-small","input":[[1,2,3],[4]],"dimensions":1000}`))
	if len(dims) != 2 || len(dims[0]) != 1000 {
		t.Errorf("token arrays with dimensions: %d x %d", len(dims), len(dims[0]))
	}
}

func TestModels(t *testing.T) {
	c := client(v1alpha1.MockSpec{})
	resp, out := do(t, c, http.MethodGet, "/v1/models", "")
	want := `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":0,"owned_by":"sluice-mock"},{"id":"text-embedding-3-small","object":"model","created":0,"owned_by":"sluice-mock"}]}`
	if resp.StatusCode != 200 || string(out) != want {
		t.Errorf("%s %s", resp.Status, out)
	}
	if _, out := do(t, c, http.MethodGet, "/models/gpt-4o-mini", ""); string(out) != `{"id":"gpt-4o-mini","object":"model","created":0,"owned_by":"sluice-mock"}` {
		t.Errorf("get model: %s", out)
	}
	if resp, _ := do(t, c, http.MethodGet, "/v1/models/nope", ""); resp.StatusCode != 404 {
		t.Errorf("unknown model: %s", resp.Status)
	}
	empty := &http.Client{Transport: NewTransport(NewHandler(v1alpha1.MockSpec{}, nil))}
	if _, out := do(t, empty, http.MethodGet, "/v1/models", ""); string(out) != `{"object":"list","data":[]}` {
		t.Errorf("no models: %s", out)
	}
}

func TestErrors(t *testing.T) {
	c := client(v1alpha1.MockSpec{})
	cases := []struct {
		method, path, body string
		status             int
		param              any
	}{
		{"POST", "/v1/nope", `{}`, 404, nil},
		{"POST", "/v1/chat/completions/", `{}`, 404, nil},
		{"POST", "/v2/chat/completions", `{}`, 404, nil},
		{"GET", "/v1/chat/completions", ``, 405, nil},
		{"POST", "/v1/models", ``, 405, nil},
		{"POST", "/v1/chat/completions", `not json`, 400, nil},
		{"POST", "/v1/chat/completions", `{"model":"m","messages":"hi"}`, 400, "messages"},
		{"POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":"yes"}`, 400, "stream"},
		{"POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "model"},
		{"POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, 400, "messages"},
		{"POST", "/v1/chat/completions", `{"model":"m"}`, 400, "messages"},
		{"POST", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":7}]}`, 400, "messages"},
		{"POST", "/v1/chat/completions", `{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`, 400, "max_tokens"},
		{"POST", "/v1/chat/completions", `{"model":"m","max_completion_tokens":-1,"messages":[{"role":"user","content":"hi"}]}`, 400, "max_completion_tokens"},
		{"POST", "/v1/chat/completions", `{"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]}`, 400, "n"},
		{"POST", "/v1/chat/completions", `{"model":"m","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, 400, "stream_options"},
		{"POST", "/v1/completions", `{"model":"m"}`, 400, "prompt"},
		{"POST", "/v1/completions", `{"model":"m","prompt":{}}`, 400, "prompt"},
		{"POST", "/v1/completions", `{"model":"m","prompt":["a",[]]}`, 400, "prompt"},
		{"POST", "/v1/completions", `{"model":"m","prompt":"a","echo":true}`, 400, "echo"},
		{"POST", "/v1/embeddings", `{"model":"m","input":""}`, 400, "input"},
		{"POST", "/v1/embeddings", `{"model":"m","input":[]}`, 400, "input"},
		{"POST", "/v1/embeddings", `{"model":"m","input":["a",""]}`, 400, "input"},
		{"POST", "/v1/embeddings", `{"model":"m","input":[1.5]}`, 400, "input"},
		{"POST", "/v1/embeddings", `{"input":"a"}`, 400, "model"},
		{"POST", "/v1/embeddings", `{"model":"m","input":"a","dimensions":0}`, 400, "dimensions"},
		{"POST", "/v1/embeddings", `{"model":"m","input":"a","dimensions":4097}`, 400, "dimensions"},
		{"POST", "/v1/embeddings", `{"model":"m","input":"a","encoding_format":"hex"}`, 400, "encoding_format"},
	}
	for _, tc := range cases {
		resp, out := do(t, c, tc.method, tc.path, tc.body)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s %s: %s, want %d", tc.method, tc.path, tc.body, resp.Status, tc.status)
			continue
		}
		var e struct {
			Error map[string]any `json:"error"`
		}
		if err := json.Unmarshal(out, &e); err != nil || len(e.Error) != 4 {
			t.Errorf("%s %s: error body %s", tc.method, tc.path, out)
			continue
		}
		if msg, _ := e.Error["message"].(string); msg == "" || e.Error["type"] != "invalid_request_error" || e.Error["param"] != tc.param {
			t.Errorf("%s %s %s: error %v, want param %v", tc.method, tc.path, tc.body, e.Error, tc.param)
		}
	}
}

func TestDeterministic(t *testing.T) {
	c := client(v1alpha1.MockSpec{})
	for _, r := range []struct{ path, body string }{
		{"/v1/chat/completions", chatBody},
		{"/v1/chat/completions", strings.Replace(chatBody, `{"model"`, `{"stream":true,"stream_options":{"include_usage":true},"model"`, 1)},
		{"/v1/completions", `{"model":"m","prompt":["a","b"],"stream":true}`},
		{"/v1/completions", `{"model":"m","prompt":"a"}`},
		{"/v1/embeddings", `{"model":"m","input":["a","b"],"encoding_format":"base64"}`},
	} {
		a, b := post(t, c, r.path, r.body), post(t, c, r.path, r.body)
		if !bytes.Equal(a, b) {
			t.Errorf("%s %s: answers differ:\n%s\n%s", r.path, r.body, a, b)
		}
	}
	// Fields that do not change the answer do not change its id either, so a gateway
	// that adds stream_options upstream hands its client the same chunks.
	plain := events(t, post(t, c, "/v1/chat/completions", strings.Replace(chatBody, `{"model"`, `{"stream":true,"model"`, 1)))
	withUsage := events(t, post(t, c, "/v1/chat/completions", strings.Replace(chatBody, `{"model"`, `{"stream":true,"stream_options":{"include_usage":true},"temperature":0.5,"model"`, 1)))
	if plain[0]["id"] != withUsage[0]["id"] || plain[0]["created"] != withUsage[0]["created"] {
		t.Errorf("ids differ: %v %v", plain[0]["id"], withUsage[0]["id"])
	}
	// A different prompt or model gets a different answer.
	x := post(t, c, "/v1/completions", `{"model":"m","prompt":"a"}`)
	for _, body := range []string{`{"model":"m","prompt":"b"}`, `{"model":"n","prompt":"a"}`} {
		if bytes.Equal(x, post(t, c, "/v1/completions", body)) {
			t.Errorf("%s: same answer as for prompt a, model m", body)
		}
	}
}

// tracked wraps a handler so a test can see it return.
func tracked(h http.Handler) (http.Handler, <-chan struct{}) {
	done := make(chan struct{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		h.ServeHTTP(w, r)
	}), done
}

func waitDone(t *testing.T, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(failAfter):
		t.Fatalf("%s: the handler did not return", what)
	}
}

// slowStream starts a chat stream that would take minutes (1 token per second) and
// returns it once the first event has arrived.
func slowStream(t *testing.T, ctx context.Context) (*http.Response, *bufio.Reader, <-chan struct{}) {
	t.Helper()
	h, done := tracked(NewHandler(v1alpha1.MockSpec{TokensPerSecond: 1, Chunks: 4}, nil))
	c := &http.Client{Transport: NewTransport(h)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://mock/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"take your time"}]}`))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, `"role":"assistant"`) {
		t.Fatalf("first event %q: %v", line, err)
	}
	return resp, br, done
}

func TestCancelEndsStream(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	resp, br, done := slowStream(t, ctx)
	defer resp.Body.Close()
	start := time.Now()
	cancel()
	waitDone(t, done, "cancel")
	if _, err := io.ReadAll(br); err == nil {
		t.Error("reading a cancelled stream succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the handler took %v to stop", d)
	}
}

func TestEarlyBodyClose(t *testing.T) {
	resp, _, done := slowStream(t, t.Context())
	resp.Body.Close()
	waitDone(t, done, "body close")
}

func TestLatencyCancelled(t *testing.T) {
	h, done := tracked(NewHandler(v1alpha1.MockSpec{Latency: &metav1.Duration{Duration: time.Hour}}, nil))
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mock/v1/models", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := NewTransport(h).RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("RoundTrip succeeded during an hour of latency")
		}
	case <-time.After(failAfter):
		t.Fatal("RoundTrip did not return")
	}
	waitDone(t, done, "latency")
}

func TestLatencyAndPacing(t *testing.T) {
	// Small real waits: 30ms latency plus 5 chunks of a ~45-token answer at 2000
	// tokens/s (~22ms) must take at least their sum.
	c := client(v1alpha1.MockSpec{Latency: &metav1.Duration{Duration: 30 * time.Millisecond}, TokensPerSecond: 2000, Chunks: 5})
	start := time.Now()
	out := post(t, c, "/v1/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	var text strings.Builder
	for _, ev := range events(t, out) {
		if s, ok := choice0(ev)["delta"].(map[string]any)["content"].(string); ok {
			text.WriteString(s)
		}
	}
	want := 30*time.Millisecond + time.Duration(tokens.CountString("gpt-4o", text.String()))*time.Second/2000
	if d := time.Since(start); d < want-2*time.Millisecond {
		t.Errorf("took %v, want at least %v", d, want)
	}
}

func BenchmarkChat(b *testing.B) {
	h := NewHandler(v1alpha1.MockSpec{}, nil)
	for _, stream := range []bool{false, true} {
		body := []byte(fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%v,"messages":[{"role":"user","content":"Hello there, how are you today?"}]}`, stream))
		b.Run(fmt.Sprintf("stream=%v", stream), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body)))
				if w.Code != 200 {
					b.Fatal(w.Body.String())
				}
			}
		})
	}
}
