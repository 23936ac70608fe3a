package bedrock

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// The Converse request, as far as the adapter fills it.
type converseRequest struct {
	Messages        []message        `json:"messages"`
	System          []systemBlock    `json:"system,omitempty"`
	InferenceConfig *inferenceConfig `json:"inferenceConfig,omitempty"`
	ToolConfig      *toolConfig      `json:"toolConfig,omitempty"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is one content block; exactly one member is set.
type block struct {
	Text       string      `json:"text,omitempty"`
	Image      *imageBlock `json:"image,omitempty"`
	ToolUse    *toolUse    `json:"toolUse,omitempty"`
	ToolResult *toolResult `json:"toolResult,omitempty"`
}

type imageBlock struct {
	Format string      `json:"format"`
	Source imageSource `json:"source"`
}

type imageSource struct {
	// Bytes is the image, base64-encoded: JSON carries Converse's blob type that way.
	Bytes string `json:"bytes"`
}

type toolUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

type toolResult struct {
	ToolUseID string              `json:"toolUseId"`
	Content   []toolResultContent `json:"content"`
}

type toolResultContent struct {
	Text string `json:"text"`
}

type systemBlock struct {
	Text string `json:"text"`
}

type inferenceConfig struct {
	MaxTokens     *int64   `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
}

type toolConfig struct {
	Tools      []tool      `json:"tools"`
	ToolChoice *toolChoice `json:"toolChoice,omitempty"`
}

type tool struct {
	ToolSpec toolSpec `json:"toolSpec"`
}

type toolSpec struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	InputSchema inputSchema `json:"inputSchema"`
}

type inputSchema struct {
	JSON json.RawMessage `json:"json"`
}

type toolChoice struct {
	Auto *struct{}     `json:"auto,omitempty"`
	Any  *struct{}     `json:"any,omitempty"`
	Tool *specificTool `json:"tool,omitempty"`
}

type specificTool struct {
	Name string `json:"name"`
}

var (
	emptyObjectSchema = json.RawMessage(`{"type":"object","properties":{}}`)
	emptyObject       = json.RawMessage(`{}`)
)

// placeholderTools stands in for the tools when the conversation holds tool calls but the
// model must not call any (tool_choice "none", or no tools): Converse refuses toolUse and
// toolResult blocks without a toolConfig, and has no way to say "none".
var placeholderTools = &toolConfig{Tools: []tool{{ToolSpec: toolSpec{
	Name:        "no_tools_available",
	Description: "No tools are available in this turn. Never call this tool.",
	InputSchema: inputSchema{JSON: emptyObjectSchema},
}}}}

// defaultJSONTool names the forced tool when the json_schema has no usable name.
const defaultJSONTool = "json_response"

// translate turns an OpenAI chat request into a Converse request.
func translate(r *chat.Request) (*converseRequest, error) {
	cr := &converseRequest{}
	hasToolBlocks := false
	for i, m := range r.Messages {
		param := "messages[" + strconv.Itoa(i) + "]"
		switch m.Role {
		case "system", "developer":
			text, err := textOnly(m.Content, param, false)
			if err != nil {
				return nil, err
			}
			if !blank(text) {
				cr.System = append(cr.System, systemBlock{Text: text})
			}
		case "user":
			blocks, err := userBlocks(m.Content, param)
			if err != nil {
				return nil, err
			}
			cr.add("user", blocks)
		case "assistant":
			text, err := textOnly(m.Content, param, true)
			if err != nil {
				return nil, err
			}
			var blocks []block
			if !blank(text) {
				blocks = append(blocks, block{Text: text})
			}
			for j, tc := range m.ToolCalls {
				input := json.RawMessage(strings.TrimSpace(tc.Function.Arguments))
				if len(input) == 0 {
					input = emptyObject
				} else if !json.Valid(input) {
					return nil, badRequest(param+".tool_calls["+strconv.Itoa(j)+"].function.arguments", "Tool call arguments must be JSON.")
				}
				blocks = append(blocks, block{ToolUse: &toolUse{ToolUseID: tc.ID, Name: tc.Function.Name, Input: input}})
				hasToolBlocks = true
			}
			cr.add("assistant", blocks)
		case "tool":
			text, err := textOnly(m.Content, param, false)
			if err != nil {
				return nil, err
			}
			cr.add("user", []block{{ToolResult: &toolResult{ToolUseID: m.ToolCallID, Content: []toolResultContent{{Text: text}}}}})
			hasToolBlocks = true
		default:
			return nil, badRequest(param+".role", "The role "+strconv.Quote(m.Role)+" is not supported by Bedrock.")
		}
	}
	if len(cr.Messages) == 0 {
		return nil, badRequest("messages", "Bedrock needs at least one user message.")
	}
	if cr.Messages[0].Role != "user" {
		return nil, badRequest("messages", "Bedrock needs the conversation to start with a user message.")
	}
	for i := range cr.Messages {
		toolResultsFirst(cr.Messages[i].Content)
	}
	cr.InferenceConfig = inference(r)
	tc, err := tools(r, hasToolBlocks)
	if err != nil {
		return nil, err
	}
	cr.ToolConfig = tc
	return cr, nil
}

// add appends blocks as a turn of role, merged into the previous turn when that has the
// same role: Converse requires user and assistant turns to alternate.
func (cr *converseRequest) add(role string, blocks []block) {
	if len(blocks) == 0 {
		return
	}
	if n := len(cr.Messages); n > 0 && cr.Messages[n-1].Role == role {
		cr.Messages[n-1].Content = append(cr.Messages[n-1].Content, blocks...)
		return
	}
	cr.Messages = append(cr.Messages, message{Role: role, Content: blocks})
}

// toolResultsFirst moves toolResult blocks before the other blocks of a turn, keeping
// their order: merging a user message that followed tool messages can put text first,
// and models behind Converse (Claude) require the results to lead.
func toolResultsFirst(bs []block) {
	slices.SortStableFunc(bs, func(a, b block) int { return rank(a) - rank(b) })
}

func rank(b block) int {
	if b.ToolResult != nil {
		return 0
	}
	return 1
}

// blank reports whether text has nothing but white space: Converse refuses blank text
// blocks, so they are left out.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

// textOnly joins a message's text; parts other than text are refused (refusal parts of an
// assistant message are skipped).
func textOnly(c chat.Content, param string, assistant bool) (string, error) {
	if c.Text != nil {
		return *c.Text, nil
	}
	var b strings.Builder
	for j, p := range c.Parts {
		switch {
		case p.Type == "text":
			b.WriteString(p.Text)
		case p.Type == "refusal" && assistant:
		default:
			return "", badRequest(param+".content["+strconv.Itoa(j)+"]", "Content of type "+strconv.Quote(p.Type)+" is not supported in this message by Bedrock.")
		}
	}
	return b.String(), nil
}

func userBlocks(c chat.Content, param string) ([]block, error) {
	if c.Text != nil {
		if blank(*c.Text) {
			return nil, nil
		}
		return []block{{Text: *c.Text}}, nil
	}
	blocks := make([]block, 0, len(c.Parts))
	for j, p := range c.Parts {
		pp := param + ".content[" + strconv.Itoa(j) + "]"
		switch p.Type {
		case "text":
			if !blank(p.Text) {
				blocks = append(blocks, block{Text: p.Text})
			}
		case "image_url":
			img, err := image(p.ImageURL, pp)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, block{Image: img})
		default:
			return nil, badRequest(pp, "Content of type "+strconv.Quote(p.Type)+" is not supported by Bedrock.")
		}
	}
	return blocks, nil
}

var imageFormats = map[string]string{
	"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp",
}

func image(u *chat.ImageURL, param string) (*imageBlock, error) {
	if u == nil {
		return nil, badRequest(param+".image_url", "An image_url part needs an image_url.")
	}
	mt, data, ok := chat.ParseDataURL(u.URL)
	if !ok {
		if strings.HasPrefix(u.URL, "https:") || strings.HasPrefix(u.URL, "http:") {
			return nil, badRequest(param+".image_url", "Bedrock takes images as bytes, not links: send the image as a base64 data: URL.")
		}
		return nil, badRequest(param+".image_url", "The image must be a base64 data: URL.")
	}
	format, ok := imageFormats[strings.ToLower(mt)]
	if !ok {
		return nil, badRequest(param+".image_url", "Bedrock takes PNG, JPEG, GIF and WebP images.")
	}
	return &imageBlock{Format: format, Source: imageSource{Bytes: data}}, nil
}

func inference(r *chat.Request) *inferenceConfig {
	var ic inferenceConfig
	if n := r.OutputLimit(); n > 0 {
		ic.MaxTokens = &n
	}
	ic.Temperature, ic.TopP = r.Temperature, r.TopP
	for _, s := range r.Stop {
		if s != "" {
			ic.StopSequences = append(ic.StopSequences, s)
		}
	}
	if ic.MaxTokens == nil && ic.Temperature == nil && ic.TopP == nil && ic.StopSequences == nil {
		return nil
	}
	return &ic
}

// tools builds the toolConfig from tools, tool_choice and response_format.
func tools(r *chat.Request, hasToolBlocks bool) (*toolConfig, error) {
	if forced, ok, err := jsonTool(r.ResponseFormat); err != nil {
		return nil, err
	} else if ok {
		if len(r.Tools) > 0 {
			return nil, badRequest("response_format", "Bedrock cannot combine a JSON response_format with tools.")
		}
		return &toolConfig{Tools: []tool{forced}, ToolChoice: &toolChoice{Tool: &specificTool{Name: forced.ToolSpec.Name}}}, nil
	}
	mode, fn := r.ToolChoiceMode()
	if mode == "" && len(bytes.TrimSpace(r.ToolChoice)) > 0 && string(bytes.TrimSpace(r.ToolChoice)) != "null" {
		return nil, badRequest("tool_choice", "This tool_choice is not supported by Bedrock.")
	}
	if len(r.Tools) == 0 || mode == "none" {
		if hasToolBlocks {
			return placeholderTools, nil
		}
		return nil, nil
	}
	tc := &toolConfig{Tools: make([]tool, 0, len(r.Tools))}
	for i, t := range r.Tools {
		if t.Type != "function" && t.Type != "" {
			return nil, badRequest("tools["+strconv.Itoa(i)+"].type", "Bedrock supports function tools only.")
		}
		schema := json.RawMessage(bytes.TrimSpace(t.Function.Parameters))
		if len(schema) == 0 || string(schema) == "null" {
			schema = emptyObjectSchema
		}
		tc.Tools = append(tc.Tools, tool{ToolSpec: toolSpec{Name: t.Function.Name, Description: t.Function.Description, InputSchema: inputSchema{JSON: schema}}})
	}
	switch mode {
	case "":
	case "auto":
		tc.ToolChoice = &toolChoice{Auto: &struct{}{}}
	case "required":
		tc.ToolChoice = &toolChoice{Any: &struct{}{}}
	case "function":
		tc.ToolChoice = &toolChoice{Tool: &specificTool{Name: fn}}
	default:
		return nil, badRequest("tool_choice", "tool_choice must be none, auto, required or a function.")
	}
	return tc, nil
}

// jsonTool returns the forced tool that serves a JSON response_format, and whether there
// is one.
func jsonTool(rf *chat.ResponseFormat) (tool, bool, error) {
	if rf == nil {
		return tool{}, false, nil
	}
	switch rf.Type {
	case "", "text":
		return tool{}, false, nil
	case "json_object":
		return tool{ToolSpec: toolSpec{
			Name:        defaultJSONTool,
			Description: "Respond with a JSON object.",
			InputSchema: inputSchema{JSON: json.RawMessage(`{"type":"object"}`)},
		}}, true, nil
	case "json_schema":
		if rf.JSONSchema == nil {
			return tool{}, false, badRequest("response_format.json_schema", "response_format json_schema needs a json_schema.")
		}
		schema := json.RawMessage(bytes.TrimSpace(rf.JSONSchema.Schema))
		if len(schema) == 0 || string(schema) == "null" {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		desc := rf.JSONSchema.Description
		if desc == "" {
			desc = "Respond with JSON that matches this schema."
		}
		return tool{ToolSpec: toolSpec{Name: jsonToolName(rf), Description: desc, InputSchema: inputSchema{JSON: schema}}}, true, nil
	}
	return tool{}, false, badRequest("response_format.type", "response_format.type must be text, json_object or json_schema.")
}

// jsonToolName is the forced tool's name: the schema's name when Converse accepts it as a
// tool name ([a-zA-Z0-9_-]{1,64}), else defaultJSONTool.
func jsonToolName(rf *chat.ResponseFormat) string {
	if rf.Type != "json_schema" || rf.JSONSchema == nil {
		return defaultJSONTool
	}
	n := rf.JSONSchema.Name
	if n == "" || len(n) > 64 {
		return defaultJSONTool
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return defaultJSONTool
		}
	}
	return n
}

// marshal encodes without HTML escaping, so prompts go upstream as written.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
