package mock

import (
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/sluice-gateway/sluice/api/v1alpha1"
	"github.com/sluice-gateway/sluice/internal/tokens"
)

// TestOpenAIClient drives the mock with OpenAI's official Go SDK, which decodes
// strictly enough to catch wire-format mistakes.
func TestOpenAIClient(t *testing.T) {
	h := NewHandler(v1alpha1.MockSpec{Chunks: 6}, []string{"gpt-4o-mini"})
	c := openai.NewClient(
		option.WithHTTPClient(&http.Client{Transport: NewTransport(h)}),
		option.WithBaseURL("http://mock/v1/"),
		option.WithAPIKey("unused"),
		option.WithMaxRetries(0),
	)
	ctx := t.Context()
	const model = "gpt-4o-mini"
	params := openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("What is Sluice?")},
	}

	chat, err := c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	text := chat.Choices[0].Message.Content
	if chat.Object != "chat.completion" || chat.Model != model || chat.Choices[0].FinishReason != "stop" || !strings.Contains(text, `"What is Sluice?"`) {
		t.Errorf("chat: %+v", chat)
	}
	if chat.Usage.CompletionTokens != int64(tokens.CountString(model, text)) || chat.Usage.TotalTokens != chat.Usage.PromptTokens+chat.Usage.CompletionTokens {
		t.Errorf("chat usage %+v", chat.Usage)
	}

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks != 1+6+1+1 || acc.Choices[0].Message.Content != text || acc.Usage.CompletionTokens != chat.Usage.CompletionTokens || acc.Usage.PromptTokens != chat.Usage.PromptTokens {
		t.Errorf("stream: %d chunks, %q, usage %+v", chunks, acc.Choices[0].Message.Content, acc.Usage)
	}

	comp, err := c.Completions.New(ctx, openai.CompletionNewParams{
		Model:     "gpt-3.5-turbo-instruct",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("Say this is a test")},
		MaxTokens: openai.Int(7),
	})
	if err != nil {
		t.Fatal(err)
	}
	if comp.Choices[0].FinishReason != "length" || comp.Usage.CompletionTokens != int64(tokens.CountString("gpt-3.5-turbo-instruct", comp.Choices[0].Text)) || comp.Usage.CompletionTokens > 7 {
		t.Errorf("completion: %+v", comp)
	}

	for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
		emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
			Model:          "text-embedding-3-small",
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello world", "bye"}},
			Dimensions:     openai.Int(32),
			EncodingFormat: format,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(emb.Data) != 2 || len(emb.Data[1].Embedding) != 32 || emb.Usage.PromptTokens != 3 {
			t.Errorf("%s embeddings: %+v", format, emb)
		}
	}

	models, err := c.Models.List(ctx)
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != model {
		t.Errorf("models: %+v, %v", models, err)
	}

	// Errors come back as the SDK's typed API error.
	_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{}})
	if apiErr, ok := err.(*openai.Error); !ok || apiErr.StatusCode != 400 || apiErr.Param != "messages" {
		t.Errorf("error: %v", err)
	}
}
