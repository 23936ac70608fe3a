package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
)

// OpenAI's published accounting for chat prompts (the cookbook's
// num_tokens_from_messages, which matches the API's prompt_tokens): each message is
// framed by 3 tokens, a name costs 1 more, and the reply is primed with 3.
const (
	tokensPerMessage = 3
	tokensPerName    = 1
	tokensReplyPrime = 3
)

// Endpoints PromptTokens understands.
const (
	EndpointChat        = "chat"
	EndpointCompletions = "completions"
	EndpointEmbeddings  = "embeddings"
)

// PromptTokens estimates the prompt tokens of an OpenAI-format request body for
// endpoint "chat", "completions" or "embeddings".
//
// chat: per message, the role, the content (a string, or the "text" parts of an array
// of parts; images, audio and files are not counted), the name, and the name and
// arguments of tool and function calls, plus OpenAI's per-message overhead. Tool
// definitions and response formats are not counted, so requests that carry them are
// underestimated.
//
// completions and embeddings: the prompt or input, a string or an array of strings
// (summed); token arrays count their length.
//
// It returns an error for a body that is not valid JSON of that shape, or for an
// unknown endpoint.
func PromptTokens(endpoint, model string, body []byte) (int, error) {
	switch endpoint {
	case EndpointChat:
		return chatPromptTokens(model, body)
	case EndpointCompletions:
		var req struct {
			Prompt json.RawMessage `json:"prompt"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return 0, err
		}
		return inputTokens(model, "prompt", req.Prompt)
	case EndpointEmbeddings:
		var req struct {
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			return 0, err
		}
		return inputTokens(model, "input", req.Input)
	default:
		return 0, fmt.Errorf("tokens: unknown endpoint %q", endpoint)
	}
}

type chatRequest struct {
	Messages []chatMessage `json:"messages"`
}

type chatMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	Name         *string         `json:"name"`
	ToolCalls    []toolCall      `json:"tool_calls"`
	FunctionCall *functionCall   `json:"function_call"`
}

type toolCall struct {
	Function *functionCall `json:"function"`
	Custom   *struct {
		Name  string `json:"name"`
		Input string `json:"input"`
	} `json:"custom"`
}

type functionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type contentPart struct {
	Type string  `json:"type"`
	Text *string `json:"text"`
}

func chatPromptTokens(model string, body []byte) (int, error) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, err
	}
	if req.Messages == nil {
		return 0, errors.New("tokens: messages: required array")
	}
	n := tokensReplyPrime
	for i, m := range req.Messages {
		n += tokensPerMessage + CountString(model, m.Role)
		c, err := contentTokens(model, m.Content)
		if err != nil {
			return 0, fmt.Errorf("tokens: messages[%d].content: %w", i, err)
		}
		n += c
		if m.Name != nil {
			n += tokensPerName + CountString(model, *m.Name)
		}
		for _, tc := range m.ToolCalls {
			if tc.Function != nil {
				n += CountString(model, tc.Function.Name) + CountString(model, tc.Function.Arguments)
			}
			if tc.Custom != nil {
				n += CountString(model, tc.Custom.Name) + CountString(model, tc.Custom.Input)
			}
		}
		if f := m.FunctionCall; f != nil {
			n += CountString(model, f.Name) + CountString(model, f.Arguments)
		}
	}
	return n, nil
}

// contentTokens counts a message's content: null, a string, or an array of parts.
func contentTokens(model string, raw json.RawMessage) (int, error) {
	switch firstByte(raw) {
	case 0, 'n': // absent or null (the JSON is valid, so 'n' is null): tool-call-only messages
		return 0, nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return CountString(model, s), nil
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return 0, err
		}
		n := 0
		for i, p := range parts {
			if p.Type != "text" && p.Type != "" {
				continue
			}
			if p.Text == nil {
				return 0, fmt.Errorf("[%d]: text part without text", i)
			}
			n += CountString(model, *p.Text)
		}
		return n, nil
	default:
		return 0, errors.New("must be a string, an array of parts or null")
	}
}

// inputTokens counts a completions prompt or an embeddings input: a string, an array
// of strings, a token array, or an array of token arrays.
func inputTokens(model, field string, raw json.RawMessage) (int, error) {
	switch firstByte(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return CountString(model, s), nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return 0, err
		}
		if len(items) == 0 {
			return 0, nil
		}
		// The first element decides the shape; the rest must share it, as in OpenAI's
		// schema, where the four shapes are alternatives and never mixed.
		switch firstByte(items[0]) {
		case '"':
			var ss []string
			if err := json.Unmarshal(raw, &ss); err != nil {
				return 0, fmt.Errorf("tokens: %s: %w", field, err)
			}
			n := 0
			for _, s := range ss {
				n += CountString(model, s)
			}
			return n, nil
		case '[':
			var arrays [][]int64
			if err := json.Unmarshal(raw, &arrays); err != nil {
				return 0, fmt.Errorf("tokens: %s: %w", field, err)
			}
			n := 0
			for _, a := range arrays {
				n += len(a)
			}
			return n, nil
		default:
			var ids []int64
			if err := json.Unmarshal(raw, &ids); err != nil {
				return 0, fmt.Errorf("tokens: %s: %w", field, err)
			}
			return len(ids), nil
		}
	case 0, 'n':
		return 0, fmt.Errorf("tokens: %s: required", field)
	default:
		return 0, fmt.Errorf("tokens: %s: must be a string, an array of strings or token arrays", field)
	}
}

// firstByte returns the first non-space byte of raw, or 0 if there is none.
func firstByte(raw []byte) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}
