package mock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-gateway/sluice/internal/tokens"
)

// maxPrompts bounds the batch of a completions request (OpenAI allows 2048 inputs).
const maxPrompts = 2048

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []inMessage    `json:"messages"`
	Stream              *bool          `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	MaxTokens           *int64         `json:"max_tokens"`
	MaxCompletionTokens *int64         `json:"max_completion_tokens"`
	N                   *int64         `json:"n"`
}

type inMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        *bool           `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	MaxTokens     *int64          `json:"max_tokens"`
	N             *int64          `json:"n"`
	Echo          *bool           `json:"echo"`
}

// usage is OpenAI's usage object; the details are only part of chat answers.
type usage struct {
	PromptTokens            int                `json:"prompt_tokens"`
	CompletionTokens        int                `json:"completion_tokens"`
	TotalTokens             int                `json:"total_tokens"`
	PromptTokensDetails     *promptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
	AudioTokens  int `json:"audio_tokens"`
}

type completionDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AudioTokens              int `json:"audio_tokens"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
}

// exchange is what both text endpoints produce: one answer per choice, and the
// request fields that shape the response.
type exchange struct {
	id, model    string
	created      int64
	stream       bool
	includeUsage bool
	promptTokens int
	answers      []answer
}

func (x *exchange) usage(details bool) usage {
	u := usage{PromptTokens: x.promptTokens}
	for _, a := range x.answers {
		u.CompletionTokens += a.tokens
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	if details {
		u.PromptTokensDetails = &promptDetails{}
		u.CompletionTokensDetails = &completionDetails{}
	}
	return u
}

// commonChecks validates what chat and completions share.
func commonChecks(model string, n *int64, stream *bool, opts *streamOptions) *apiError {
	if model == "" {
		return badParam("model", "missing_required_parameter", "You must provide a model parameter.")
	}
	if n != nil && *n != 1 {
		return badParam("n", "unsupported_value", "The mock backend only supports n=1, got %d.", *n)
	}
	if opts != nil && (stream == nil || !*stream) {
		return badParam("stream_options", "invalid_value", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	return nil
}

// tokenLimit validates a max_tokens-like field; 0 means no limit.
func tokenLimit(name string, v *int64) (int, *apiError) {
	if v == nil {
		return 0, nil
	}
	if *v < 1 {
		return 0, badParam(name, "integer_below_min_value", "Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", name, *v)
	}
	return int(min(*v, math.MaxInt32)), nil
}

func (h *handler) chat(body []byte) (reply, *apiError) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, decodeError(err)
	}
	if aerr := commonChecks(req.Model, req.N, req.Stream, req.StreamOptions); aerr != nil {
		return nil, aerr
	}
	// max_completion_tokens replaces the deprecated max_tokens when both are set.
	limit, aerr := tokenLimit("max_tokens", req.MaxTokens)
	if req.MaxCompletionTokens != nil {
		limit, aerr = tokenLimit("max_completion_tokens", req.MaxCompletionTokens)
	}
	if aerr != nil {
		return nil, aerr
	}
	if len(req.Messages) == 0 {
		return nil, badParam("messages", "empty_array", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	pt, err := tokens.PromptTokens(tokens.EndpointChat, req.Model, body)
	if err != nil {
		return nil, badParam("messages", "invalid_value", "Invalid 'messages': %v.", err)
	}
	x := &exchange{model: req.Model, promptTokens: pt, stream: req.Stream != nil && *req.Stream}
	x.includeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	prompt := lastUserText(req.Messages)
	x.id, x.created = identity("chatcmpl-mock-", "chat", req.Model, []string{prompt}, limit)
	x.answers = []answer{h.answers.get(req.Model, prompt, limit)}
	if x.stream {
		return func(w http.ResponseWriter, ctx context.Context) { h.streamChat(w, ctx, x) }, nil
	}
	return func(w http.ResponseWriter, _ context.Context) { writeChat(w, x) }, nil
}

// lastUserText is the text of the last user message: a string, or its text parts
// joined by spaces. PromptTokens has already checked the shape.
func lastUserText(msgs []inMessage) string {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != "user" {
			continue
		}
		var s string
		if json.Unmarshal(msgs[i].Content, &s) == nil {
			return s
		}
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		_ = json.Unmarshal(msgs[i].Content, &parts)
		texts := make([]string, 0, len(parts))
		for _, p := range parts {
			if p.Type == "text" || p.Type == "" {
				texts = append(texts, p.Text)
			}
		}
		return strings.Join(texts, " ")
	}
	return ""
}

type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   usage        `json:"usage"`
}

type chatChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Logprobs     *struct{}   `json:"logprobs"`
	FinishReason string      `json:"finish_reason"`
}

type chatMessage struct {
	Role        string     `json:"role"`
	Content     string     `json:"content"`
	Refusal     *string    `json:"refusal"`
	Annotations []struct{} `json:"annotations"`
}

func writeChat(w http.ResponseWriter, x *exchange) {
	c := chatCompletion{ID: x.id, Object: "chat.completion", Created: x.created, Model: x.model, Usage: x.usage(true)}
	for i, a := range x.answers {
		c.Choices = append(c.Choices, chatChoice{
			Index:        i,
			Message:      chatMessage{Role: "assistant", Content: a.text, Annotations: []struct{}{}},
			FinishReason: a.finish,
		})
	}
	writeJSON(w, http.StatusOK, c)
}

type chatChunk struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []chatChunkChoice `json:"choices"`
	// Usage is absent without include_usage, null on every chunk but the last with it.
	Usage json.RawMessage `json:"usage,omitempty"`
}

type chatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        delta     `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type delta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

var jsonNull = json.RawMessage("null")

func (h *handler) streamChat(w http.ResponseWriter, ctx context.Context, x *exchange) {
	s := startStream(w)
	chunk := func(choices []chatChunkChoice) chatChunk {
		c := chatChunk{ID: x.id, Object: "chat.completion.chunk", Created: x.created, Model: x.model, Choices: choices}
		if x.includeUsage {
			c.Usage = jsonNull
		}
		return c
	}
	for i, a := range x.answers {
		empty := ""
		if !s.send(chunk([]chatChunkChoice{{Index: i, Delta: delta{Role: "assistant", Content: &empty}}})) {
			return
		}
		parts, toks := a.pieces(h.chunks)
		for j, p := range parts {
			if !h.pace(ctx, toks[j]) || !s.send(chunk([]chatChunkChoice{{Index: i, Delta: delta{Content: &p}}})) {
				return
			}
		}
		if !s.send(chunk([]chatChunkChoice{{Index: i, FinishReason: &a.finish}})) {
			return
		}
	}
	if x.includeUsage {
		c := chunk([]chatChunkChoice{})
		c.Usage = marshal(x.usage(true))
		if !s.send(c) {
			return
		}
	}
	s.done()
}

// pace waits as long as generating toks tokens takes at the configured speed.
func (h *handler) pace(ctx context.Context, toks int) bool {
	if h.tps <= 0 {
		return ctx.Err() == nil
	}
	return wait(ctx, time.Duration(toks)*time.Second/time.Duration(h.tps))
}

func (h *handler) completions(body []byte) (reply, *apiError) {
	var req completionRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, decodeError(err)
	}
	if aerr := commonChecks(req.Model, req.N, req.Stream, req.StreamOptions); aerr != nil {
		return nil, aerr
	}
	limit, aerr := tokenLimit("max_tokens", req.MaxTokens)
	if aerr != nil {
		return nil, aerr
	}
	if req.Echo != nil && *req.Echo {
		return nil, badParam("echo", "unsupported_value", "The mock backend does not support echo.")
	}
	prompts, aerr := promptTexts(req.Prompt)
	if aerr != nil {
		return nil, aerr
	}
	pt, err := tokens.PromptTokens(tokens.EndpointCompletions, req.Model, body)
	if err != nil {
		return nil, badParam("prompt", "invalid_value", "Invalid 'prompt': %v.", err)
	}
	x := &exchange{model: req.Model, promptTokens: pt, stream: req.Stream != nil && *req.Stream}
	x.includeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	x.id, x.created = identity("cmpl-mock-", "completions", req.Model, prompts, limit)
	for _, p := range prompts {
		x.answers = append(x.answers, h.answers.get(req.Model, p, limit))
	}
	if x.stream {
		return func(w http.ResponseWriter, ctx context.Context) { h.streamCompletion(w, ctx, x) }, nil
	}
	return func(w http.ResponseWriter, _ context.Context) { writeCompletion(w, x) }, nil
}

// promptTexts returns the prompts of a completions request, one per choice: a string,
// an array of strings, a token array or an array of token arrays. A token array is
// answered as "<N tokens>", since the mock does not decode tokens.
func promptTexts(raw json.RawMessage) ([]string, *apiError) {
	invalid := func(why string) *apiError {
		return badParam("prompt", "invalid_value", "Invalid 'prompt': %s.", why)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && len(raw) > 0 && raw[0] == '"' {
		return []string{s}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, invalid("expected a string, an array of strings or an array of tokens")
	}
	if len(items) == 0 {
		return nil, invalid("empty array")
	}
	var ids []int64
	if json.Unmarshal(raw, &ids) == nil {
		return []string{fmt.Sprintf("<%d tokens>", len(ids))}, nil
	}
	if len(items) > maxPrompts {
		return nil, invalid(fmt.Sprintf("at most %d prompts", maxPrompts))
	}
	out := make([]string, len(items))
	for i, it := range items {
		if json.Unmarshal(it, &out[i]) == nil && it[0] == '"' {
			continue
		}
		if json.Unmarshal(it, &ids) != nil || len(ids) == 0 {
			return nil, invalid(fmt.Sprintf("item %d: expected a string or a non-empty array of tokens", i))
		}
		out[i] = fmt.Sprintf("<%d tokens>", len(ids))
	}
	return out, nil
}

type textCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []textChoice `json:"choices"`
	// Usage is a pointer in streamed chunks (absent or null), a value otherwise.
	Usage any `json:"usage,omitempty"`
}

type textChoice struct {
	Text         string    `json:"text"`
	Index        int       `json:"index"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

func writeCompletion(w http.ResponseWriter, x *exchange) {
	c := textCompletion{ID: x.id, Object: "text_completion", Created: x.created, Model: x.model, Choices: []textChoice{}, Usage: x.usage(false)}
	for i, a := range x.answers {
		c.Choices = append(c.Choices, textChoice{Text: a.text, Index: i, FinishReason: &a.finish})
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *handler) streamCompletion(w http.ResponseWriter, ctx context.Context, x *exchange) {
	s := startStream(w)
	chunk := func(choices []textChoice) textCompletion {
		c := textCompletion{ID: x.id, Object: "text_completion", Created: x.created, Model: x.model, Choices: choices}
		if x.includeUsage {
			c.Usage = jsonNull
		}
		return c
	}
	for i, a := range x.answers {
		parts, toks := a.pieces(h.chunks)
		for j, p := range parts {
			if !h.pace(ctx, toks[j]) || !s.send(chunk([]textChoice{{Text: p, Index: i}})) {
				return
			}
		}
		if !s.send(chunk([]textChoice{{Index: i, FinishReason: &a.finish}})) {
			return
		}
	}
	if x.includeUsage {
		c := chunk([]textChoice{})
		c.Usage = x.usage(false)
		if !s.send(c) {
			return
		}
	}
	s.done()
}

// stream writes server-sent events, one flushed write per event. After the first
// failed write (the client went away) every send reports false.
type stream struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
	buf []byte
}

func startStream(w http.ResponseWriter) *stream {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	s := &stream{w: w, rc: http.NewResponseController(w)}
	s.flush()
	return s
}

func (s *stream) send(v any) bool {
	s.buf = append(s.buf[:0], "data: "...)
	s.buf = append(s.buf, marshal(v)...)
	s.buf = append(s.buf, "\n\n"...)
	return s.write()
}

func (s *stream) done() {
	s.buf = append(s.buf[:0], "data: [DONE]\n\n"...)
	s.write()
}

func (s *stream) write() bool {
	if s.err != nil {
		return false
	}
	if _, s.err = s.w.Write(s.buf); s.err == nil {
		s.flush()
	}
	return s.err == nil
}

func (s *stream) flush() {
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
	}
}
