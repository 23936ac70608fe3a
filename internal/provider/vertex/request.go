package vertex

import (
	"bytes"
	"encoding/json"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/sluice-gateway/sluice/internal/provider/chat"
)

// The generateContent request, as far as the translation fills it.
type (
	genRequest struct {
		Contents          []content         `json:"contents"`
		SystemInstruction *content          `json:"systemInstruction,omitempty"`
		Tools             []tool            `json:"tools,omitempty"`
		ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
		GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
	}
	content struct {
		Role  string `json:"role,omitempty"`
		Parts []part `json:"parts"`
	}
	part struct {
		Text             string            `json:"text,omitempty"`
		InlineData       *blob             `json:"inlineData,omitempty"`
		FileData         *fileData         `json:"fileData,omitempty"`
		FunctionCall     *functionCall     `json:"functionCall,omitempty"`
		FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
		ThoughtSignature string            `json:"thoughtSignature,omitempty"`
	}
	blob struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	}
	fileData struct {
		MimeType string `json:"mimeType"`
		FileURI  string `json:"fileUri"`
	}
	functionCall struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	}
	functionResponse struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	}
	tool struct {
		FunctionDeclarations []functionDeclaration `json:"functionDeclarations"`
	}
	functionDeclaration struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	}
	toolConfig struct {
		FunctionCallingConfig functionCallingConfig `json:"functionCallingConfig"`
	}
	functionCallingConfig struct {
		Mode                 string   `json:"mode"`
		AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
	}
	generationConfig struct {
		Temperature      *float64        `json:"temperature,omitempty"`
		TopP             *float64        `json:"topP,omitempty"`
		MaxOutputTokens  int64           `json:"maxOutputTokens,omitempty"`
		StopSequences    []string        `json:"stopSequences,omitempty"`
		PresencePenalty  *float64        `json:"presencePenalty,omitempty"`
		FrequencyPenalty *float64        `json:"frequencyPenalty,omitempty"`
		Seed             *int64          `json:"seed,omitempty"`
		ResponseMimeType string          `json:"responseMimeType,omitempty"`
		ResponseSchema   json.RawMessage `json:"responseSchema,omitempty"`
	}
)

// skipSignature is the value Google documents for a function call whose thought signature
// is unknown (history from elsewhere). Gemini 3 refuses replayed function calls without
// one, and the OpenAI wire has nowhere to carry the real signature back.
const skipSignature = "skip_thought_signature_validator"

// chatBody translates an OpenAI chat request into a generateContent request body.
func chatBody(body []byte, model string) ([]byte, error) {
	r, err := chat.DecodeRequest(body)
	if err != nil {
		return nil, err
	}
	g, err := translate(r, model)
	if err != nil {
		return nil, err
	}
	return json.Marshal(g)
}

func translate(r *chat.Request, model string) (*genRequest, error) {
	g := &genRequest{Contents: make([]content, 0, len(r.Messages))}
	var system []part
	callNames := map[string]string{} // tool call id → function name, latest wins
	sign := needsSignature(model)
	for i, m := range r.Messages {
		param := "messages[" + strconv.Itoa(i) + "]"
		var role string
		var parts []part
		switch m.Role {
		case "system", "developer":
			// Gemini has one system instruction; every system message goes there, in order.
			if m.Content.Text != nil {
				system = appendText(system, *m.Content.Text)
			}
			for _, p := range m.Content.Parts {
				if p.Type != "text" {
					return nil, badRequest(param+".content", "System messages may hold only text.")
				}
				system = appendText(system, p.Text)
			}
			continue
		case "user":
			role = "user"
			var err error
			if parts, err = userParts(m.Content, param); err != nil {
				return nil, err
			}
		case "assistant":
			role = "model"
			if m.Content.Text != nil {
				parts = appendText(parts, *m.Content.Text)
			}
			for _, p := range m.Content.Parts {
				if p.Type != "text" {
					continue // refusals: nothing the model needs to see again
				}
				parts = appendText(parts, p.Text)
			}
			first := true
			for j, tc := range m.ToolCalls {
				args, err := callArgs(tc.Function.Arguments)
				if err != nil {
					return nil, badRequest(param+".tool_calls["+strconv.Itoa(j)+"].function.arguments", "Tool call arguments must be a JSON object.")
				}
				p := part{FunctionCall: &functionCall{Name: tc.Function.Name, Args: args}}
				if sign && first {
					// Only the first call of a turn carries a signature, as Gemini returns them.
					p.ThoughtSignature = skipSignature
					first = false
				}
				parts = append(parts, p)
				callNames[tc.ID] = tc.Function.Name
			}
		case "tool", "function":
			role = "user"
			name := m.Name
			if m.Role == "tool" {
				if n, ok := callNames[m.ToolCallID]; ok {
					name = n
				}
			}
			if name == "" {
				return nil, badRequest(param+".tool_call_id", "The tool message answers no earlier tool call.")
			}
			parts = append(parts, part{FunctionResponse: &functionResponse{Name: name, Response: toolResponse(m.Content.String())}})
		default:
			return nil, badRequest(param+".role", "Unknown message role "+strconv.Quote(m.Role)+".")
		}
		if len(parts) == 0 {
			continue // Gemini refuses contents without parts
		}
		if n := len(g.Contents); n > 0 && g.Contents[n-1].Role == role {
			g.Contents[n-1].Parts = append(g.Contents[n-1].Parts, parts...)
			continue
		}
		g.Contents = append(g.Contents, content{Role: role, Parts: parts})
	}
	if len(g.Contents) == 0 {
		return nil, badRequest("messages", "At least one user or assistant message with content is required.")
	}
	if len(system) > 0 {
		g.SystemInstruction = &content{Parts: system}
	}
	if err := translateTools(r, g); err != nil {
		return nil, err
	}
	return g, generation(r, g)
}

// needsSignature reports whether replayed function calls need a thought signature: every
// Gemini model after the 2.x series.
func needsSignature(model string) bool {
	m := strings.ToLower(model)
	return strings.HasPrefix(m, "gemini-") && !strings.HasPrefix(m, "gemini-1") && !strings.HasPrefix(m, "gemini-2")
}

// appendText adds a text part; Vertex refuses empty ones.
func appendText(parts []part, s string) []part {
	if s == "" {
		return parts
	}
	return append(parts, part{Text: s})
}

func userParts(c chat.Content, param string) ([]part, error) {
	if c.Text != nil {
		return appendText(nil, *c.Text), nil
	}
	parts := make([]part, 0, len(c.Parts))
	for j, p := range c.Parts {
		pp := param + ".content[" + strconv.Itoa(j) + "]"
		switch p.Type {
		case "text":
			parts = appendText(parts, p.Text)
		case "image_url":
			if p.ImageURL == nil {
				return nil, badRequest(pp+".image_url", "An image part needs an image_url.")
			}
			ip, err := imagePart(p.ImageURL.URL, pp+".image_url.url")
			if err != nil {
				return nil, err
			}
			parts = append(parts, ip)
		default:
			return nil, badRequest(pp+".type", "Content parts of type "+strconv.Quote(p.Type)+" are not supported for Gemini models.")
		}
	}
	return parts, nil
}

// imagePart sends a data URL inline and lets Vertex fetch anything else by URI.
func imagePart(u, param string) (part, error) {
	if strings.HasPrefix(u, "data:") {
		mt, data, ok := chat.ParseDataURL(u)
		if !ok {
			return part{}, badRequest(param, "The image data URL must be base64 with a media type.")
		}
		return part{InlineData: &blob{MimeType: mt, Data: data}}, nil
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" || (pu.Scheme != "https" && pu.Scheme != "http" && pu.Scheme != "gs") {
		return part{}, badRequest(param, "The image URL must be an http(s) or gs:// URL or a base64 data URL.")
	}
	return part{FileData: &fileData{MimeType: guessMIME(pu.Path), FileURI: u}}, nil
}

// guessMIME names a file's media type from its extension, which is all there is: Vertex
// needs one for fileData and does not sniff. An unknown extension is taken for a JPEG,
// as the part came in as an image.
func guessMIME(p string) string {
	switch strings.ToLower(path.Ext(p)) {
	case ".png":
		return "image/png"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".heic":
		return "image/heic"
	case ".heif":
		return "image/heif"
	case ".pdf":
		return "application/pdf"
	}
	return "image/jpeg"
}

// callArgs turns a tool call's arguments (a JSON string) into the args object.
func callArgs(s string) (json.RawMessage, error) {
	b := bytes.TrimSpace([]byte(s))
	if len(b) == 0 {
		return json.RawMessage("{}"), nil
	}
	if b[0] != '{' || !json.Valid(b) {
		return nil, errNotObject
	}
	return b, nil
}

// toolResponse wraps a tool's output as {"content": ...}: the output itself when it is a
// JSON object, else the text.
func toolResponse(s string) json.RawMessage {
	b := bytes.TrimSpace([]byte(s))
	if len(b) > 0 && b[0] == '{' && json.Valid(b) {
		return append(append([]byte(`{"content":`), b...), '}')
	}
	q, _ := json.Marshal(s)
	return append(append([]byte(`{"content":`), q...), '}')
}

func translateTools(r *chat.Request, g *genRequest) error {
	if len(r.Tools) == 0 {
		return nil // a tool_choice without tools means nothing to Vertex
	}
	decls := make([]functionDeclaration, 0, len(r.Tools))
	for i, t := range r.Tools {
		param := "tools[" + strconv.Itoa(i) + "]"
		if t.Type != "function" {
			return badRequest(param+".type", "Only function tools are supported for Gemini models.")
		}
		d := functionDeclaration{Name: t.Function.Name, Description: t.Function.Description}
		if p := bytes.TrimSpace(t.Function.Parameters); len(p) > 0 && string(p) != "null" {
			s, err := convertSchema(p, true)
			if err != nil {
				return badRequest(param+".function.parameters", "The parameters schema cannot be used with Gemini: "+err.Error())
			}
			d.Parameters = s
		}
		decls = append(decls, d)
	}
	g.Tools = []tool{{FunctionDeclarations: decls}}
	mode, fn := r.ToolChoiceMode()
	var fc functionCallingConfig
	switch mode {
	case "":
		if len(r.ToolChoice) > 0 && string(bytes.TrimSpace(r.ToolChoice)) != "null" {
			return badRequest("tool_choice", "tool_choice must be none, auto, required or name a function.")
		}
		return nil
	case "none":
		fc.Mode = "NONE"
	case "auto":
		fc.Mode = "AUTO"
	case "required":
		fc.Mode = "ANY"
	case "function":
		fc.Mode = "ANY"
		fc.AllowedFunctionNames = []string{fn}
	default:
		return badRequest("tool_choice", "tool_choice must be none, auto, required or name a function.")
	}
	g.ToolConfig = &toolConfig{FunctionCallingConfig: fc}
	return nil
}

func generation(r *chat.Request, g *genRequest) error {
	c := generationConfig{
		Temperature:      r.Temperature,
		TopP:             r.TopP,
		StopSequences:    r.Stop,
		PresencePenalty:  r.PresencePenalty,
		FrequencyPenalty: r.FrequencyPenalty,
		Seed:             r.Seed,
	}
	if n := r.OutputLimit(); n > 0 {
		c.MaxOutputTokens = n
	}
	if rf := r.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			c.ResponseMimeType = "application/json"
		case "json_schema":
			c.ResponseMimeType = "application/json"
			if rf.JSONSchema != nil {
				if s := bytes.TrimSpace(rf.JSONSchema.Schema); len(s) > 0 && string(s) != "null" {
					out, err := convertSchema(s, false)
					if err != nil {
						return badRequest("response_format.json_schema.schema", "The schema cannot be used with Gemini: "+err.Error())
					}
					c.ResponseSchema = out
				}
			}
		default:
			return badRequest("response_format.type", "response_format.type must be text, json_object or json_schema.")
		}
	}
	if c.Temperature != nil || c.TopP != nil || c.MaxOutputTokens > 0 || len(c.StopSequences) > 0 || c.PresencePenalty != nil ||
		c.FrequencyPenalty != nil || c.Seed != nil || c.ResponseMimeType != "" {
		g.GenerationConfig = &c
	}
	return nil
}
