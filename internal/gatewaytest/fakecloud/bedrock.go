package fakecloud

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Bedrock is Amazon Bedrock's runtime Converse API: POST /model/{modelId}/converse and
// /model/{modelId}/converse-stream (AWS event-stream framing). Every request must be
// signed with SigV4 for service bedrock in Region with Credentials: the fake recomputes
// the signature with the AWS SDK's signer over the headers the request says it signed and
// the hash of the body it received.
type Bedrock struct {
	*httptest.Server
	recorder
	Region      string
	Credentials aws.Credentials
	// MaxInputTokens, when set, refuses longer prompts with the ValidationException
	// "Input is too long for requested model."
	MaxInputTokens int64
	// Faults are answered for the model ids named, after the signature and body are checked.
	Faults map[string]Fault
}

// NewBedrock starts a Bedrock fake. Set MaxInputTokens and Faults before sending requests.
func NewBedrock(t testing.TB, region string, creds aws.Credentials) *Bedrock {
	b := &Bedrock{Region: region, Credentials: creds}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

// The Converse request, every member AWS documents; others are refused.
type (
	cRequest struct {
		Messages                          []cMessage        `json:"messages"`
		System                            []cSystem         `json:"system,omitempty"`
		InferenceConfig                   *cInference       `json:"inferenceConfig,omitempty"`
		ToolConfig                        *cToolConfig      `json:"toolConfig,omitempty"`
		GuardrailConfig                   json.RawMessage   `json:"guardrailConfig,omitempty"`
		AdditionalModelRequestFields      json.RawMessage   `json:"additionalModelRequestFields,omitempty"`
		AdditionalModelResponseFieldPaths []string          `json:"additionalModelResponseFieldPaths,omitempty"`
		PromptVariables                   json.RawMessage   `json:"promptVariables,omitempty"`
		RequestMetadata                   map[string]string `json:"requestMetadata,omitempty"`
		PerformanceConfig                 json.RawMessage   `json:"performanceConfig,omitempty"`
	}
	cMessage struct {
		Role    string   `json:"role"`
		Content []cBlock `json:"content"`
	}
	cBlock struct {
		Text             *string         `json:"text,omitempty"`
		Image            *cImage         `json:"image,omitempty"`
		Document         json.RawMessage `json:"document,omitempty"`
		Video            json.RawMessage `json:"video,omitempty"`
		ToolUse          *cToolUse       `json:"toolUse,omitempty"`
		ToolResult       *cToolResult    `json:"toolResult,omitempty"`
		GuardContent     json.RawMessage `json:"guardContent,omitempty"`
		CachePoint       json.RawMessage `json:"cachePoint,omitempty"`
		ReasoningContent json.RawMessage `json:"reasoningContent,omitempty"`
	}
	cImage struct {
		Format string `json:"format"`
		Source struct {
			Bytes string `json:"bytes"`
		} `json:"source"`
	}
	cToolUse struct {
		ToolUseID string          `json:"toolUseId"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	}
	cToolResult struct {
		ToolUseID string `json:"toolUseId"`
		Content   []struct {
			Text     *string         `json:"text,omitempty"`
			JSON     json.RawMessage `json:"json,omitempty"`
			Image    *cImage         `json:"image,omitempty"`
			Document json.RawMessage `json:"document,omitempty"`
		} `json:"content"`
		Status string `json:"status,omitempty"`
	}
	cSystem struct {
		Text         *string         `json:"text,omitempty"`
		GuardContent json.RawMessage `json:"guardContent,omitempty"`
		CachePoint   json.RawMessage `json:"cachePoint,omitempty"`
	}
	cInference struct {
		MaxTokens     *int64   `json:"maxTokens,omitempty"`
		Temperature   *float64 `json:"temperature,omitempty"`
		TopP          *float64 `json:"topP,omitempty"`
		StopSequences []string `json:"stopSequences,omitempty"`
	}
	cToolConfig struct {
		Tools []struct {
			ToolSpec *struct {
				Name        string `json:"name"`
				Description string `json:"description,omitempty"`
				InputSchema struct {
					JSON json.RawMessage `json:"json"`
				} `json:"inputSchema"`
			} `json:"toolSpec,omitempty"`
			CachePoint json.RawMessage `json:"cachePoint,omitempty"`
		} `json:"tools"`
		ToolChoice *struct {
			Auto *struct{} `json:"auto,omitempty"`
			Any  *struct{} `json:"any,omitempty"`
			Tool *struct {
				Name string `json:"name"`
			} `json:"tool,omitempty"`
		} `json:"toolChoice,omitempty"`
	}
)

var (
	bedrockModelID  = regexp.MustCompile(`^([a-z0-9-]{1,63}\.)+[a-z0-9-:.]{1,63}$|^arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{0,12}:[a-z-]+/[a-zA-Z0-9.:/-]+$`)
	bedrockToolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
)

func (b *Bedrock) serve(w http.ResponseWriter, r *http.Request) {
	q := newRequest(r)
	reqID := uuid()
	w.Header().Set("X-Amzn-Requestid", reqID)
	fail := func(status int, kind, msg string, rejected bool) {
		q.Status = status
		if rejected {
			q.Rejected = kind + ": " + msg
		}
		b.add(q)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", kind+":http://internal.amazon.com/coral/com.amazon.bedrock/")
		w.WriteHeader(status)
		w.Write(mustJSON(map[string]string{"message": msg}))
	}

	// The path, as sent: /model/{modelId}/{operation}, the model id one escaped segment.
	rawPath, _, _ := strings.Cut(r.RequestURI, "?")
	seg := strings.Split(rawPath, "/")
	if len(seg) != 4 || seg[0] != "" || seg[1] != "model" || (seg[3] != "converse" && seg[3] != "converse-stream") || r.Method != http.MethodPost {
		fail(http.StatusNotFound, "UnknownOperationException", "Unknown operation "+r.Method+" "+rawPath, true)
		return
	}
	model, err := url.PathUnescape(seg[2])
	if err != nil {
		fail(http.StatusBadRequest, "ValidationException", "The model identifier is not properly escaped.", true)
		return
	}
	q.Model, q.Stream = model, seg[3] == "converse-stream"

	if kind, msg := b.verify(r, q.Body); kind != "" {
		fail(http.StatusForbidden, kind, msg, true)
		return
	}
	if r.URL.RawQuery != "" {
		fail(http.StatusBadRequest, "ValidationException", "Unexpected query string "+r.URL.RawQuery, true)
		return
	}
	if !bedrockModelID.MatchString(model) {
		fail(http.StatusBadRequest, "ValidationException", "The provided model identifier is invalid.", true)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		fail(http.StatusBadRequest, "ValidationException", "Unsupported Content-Type "+ct, true)
		return
	}
	var req cRequest
	if err := decodeStrict(q.Body, &req); err != nil {
		fail(http.StatusBadRequest, "ValidationException", "Malformed input request: "+err.Error()+", please reformat your input and try again.", true)
		return
	}
	if msg := validateConverse(&req); msg != "" {
		fail(http.StatusBadRequest, "ValidationException", msg, true)
		return
	}
	st := b.generate(&req, q)
	if b.MaxInputTokens > 0 && st.input > b.MaxInputTokens {
		fail(http.StatusBadRequest, "ValidationException", "Input is too long for requested model.", false)
		return
	}
	f, fault := b.Faults[model]
	if fault && !(f.InStream && q.Stream) {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		q.Answer, q.Calls = "", nil
		fail(f.Status, f.Type, f.Message, false)
		return
	}
	q.Status = http.StatusOK
	usage := map[string]int64{"inputTokens": st.input, "outputTokens": st.output, "totalTokens": st.input + st.output}
	if !fault {
		q.Usage = mustJSON(usage)
	}

	if !q.Stream {
		var content []any
		if q.Answer != "" {
			content = append(content, map[string]any{"text": q.Answer})
		}
		for _, c := range q.Calls {
			content = append(content, map[string]any{"toolUse": map[string]any{"toolUseId": c.ID, "name": c.Name, "input": c.Args}})
		}
		b.add(q)
		w.Header().Set("Content-Type", "application/json")
		w.Write(mustJSON(map[string]any{
			"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
			"stopReason": st.stop,
			"usage":      usage,
			"metrics":    map[string]any{"latencyMs": 321},
		}))
		return
	}

	// ConverseStream: the events, each one event-stream message.
	var frames bytes.Buffer
	enc := eventstream.NewEncoder()
	event := func(typ string, payload map[string]any) {
		payload["p"] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[:10+len(frames.Bytes())%40] // AWS pads events
		var m eventstream.Message
		m.Headers.Set(":event-type", eventstream.StringValue(typ))
		m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		m.Headers.Set(":message-type", eventstream.StringValue("event"))
		m.Payload = mustJSON(payload)
		enc.Encode(&frames, m)
	}
	event("messageStart", map[string]any{"role": "assistant"})
	block := 0
	if q.Answer != "" {
		for _, p := range splitWords(q.Answer, 4) {
			event("contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"text": p}})
		}
		event("contentBlockStop", map[string]any{"contentBlockIndex": block})
		block++
	}
	if fault {
		q.Calls = nil
		// The stream fails after it started: an exception message, named in lower camel case.
		var m eventstream.Message
		m.Headers.Set(":exception-type", eventstream.StringValue(strings.ToLower(f.Type[:1])+f.Type[1:]))
		m.Headers.Set(":content-type", eventstream.StringValue("application/json"))
		m.Headers.Set(":message-type", eventstream.StringValue("exception"))
		m.Payload = mustJSON(map[string]string{"message": f.Message})
		enc.Encode(&frames, m)
	} else {
		for _, c := range q.Calls {
			event("contentBlockStart", map[string]any{"contentBlockIndex": block, "start": map[string]any{"toolUse": map[string]any{"toolUseId": c.ID, "name": c.Name}}})
			for _, p := range splitBytes(string(c.Args), 7) {
				event("contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"toolUse": map[string]any{"input": p}}})
			}
			event("contentBlockStop", map[string]any{"contentBlockIndex": block})
			block++
		}
		event("messageStop", map[string]any{"stopReason": st.stop})
		event("metadata", map[string]any{"usage": usage, "metrics": map[string]any{"latencyMs": 321}})
	}
	b.add(q)
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Bedrock-Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// Written in uneven slices, so frames straddle reads.
	data := frames.Bytes()
	for len(data) > 0 {
		n := min(len(data), 97)
		w.Write(data[:n])
		w.(http.Flusher).Flush()
		data = data[n:]
	}
}

// verify checks the SigV4 signature as AWS does; it returns the error type and message of
// a refusal, or "".
func (b *Bedrock) verify(r *http.Request, body []byte) (kind, msg string) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return "MissingAuthenticationTokenException", "Missing Authentication Token"
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return "IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."
	}
	if scope[0] != b.Credentials.AccessKeyID {
		return "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "IncompleteSignatureException", "The request must contain a valid X-Amz-Date header."
	}
	if d := time.Since(date); d > 15*time.Minute || d < -15*time.Minute {
		return "InvalidSignatureException", "Signature expired: " + r.Header.Get("X-Amz-Date") + " is now earlier than the allowed time."
	}
	if scope[1] != date.Format("20060102") || scope[2] != b.Region || scope[3] != "bedrock" || scope[4] != "aws4_request" {
		return "InvalidSignatureException", "Credential should be scoped to a valid region, service and date: " + fields["Credential"]
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !contains(signed, "host") || !contains(signed, "x-amz-date") {
		return "InvalidSignatureException", "The request signature must cover the host and x-amz-date headers."
	}
	if b.Credentials.SessionToken != "" && (r.Header.Get("X-Amz-Security-Token") != b.Credentials.SessionToken || !contains(signed, "x-amz-security-token")) {
		return "UnrecognizedClientException", "The security token included in the request is invalid."
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != hash {
		return "InvalidSignatureException", "The provided x-amz-content-sha256 header does not match what was computed."
	}
	// Rebuild the request as the client signed it and sign it again: the URI exactly as
	// received, the signed headers only, and the hash of the body that arrived.
	re, err := http.NewRequest(r.Method, "http://"+r.Host+r.RequestURI, bytes.NewReader(body))
	if err != nil {
		return "InvalidSignatureException", err.Error()
	}
	re.Host = r.Host
	for _, k := range signed {
		if v := r.Header.Values(k); len(v) > 0 && k != "host" {
			re.Header[http.CanonicalHeaderKey(k)] = v
		}
	}
	if err := v4.NewSigner().SignHTTP(r.Context(), b.Credentials, re, hash, "bedrock", b.Region, date); err != nil {
		return "InvalidSignatureException", err.Error()
	}
	if re.Header.Get("Authorization") != auth {
		return "AccessDeniedException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	}
	return "", ""
}

// validateConverse checks a request as Converse does; it returns its message, or "".
func validateConverse(req *cRequest) string {
	if len(req.Messages) == 0 {
		return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
	}
	hasToolBlocks := false
	for _, m := range req.Messages {
		for _, c := range m.Content {
			hasToolBlocks = hasToolBlocks || c.ToolUse != nil || c.ToolResult != nil
		}
	}
	if hasToolBlocks && (req.ToolConfig == nil || len(req.ToolConfig.Tools) == 0) {
		return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
	}
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Sprintf("1 validation error detected: Value '%s' at 'messages.%d.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", m.Role, i+1)
		}
		if i == 0 && m.Role != "user" {
			return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
		}
		if i > 0 && req.Messages[i-1].Role == m.Role {
			return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."
		}
		if len(m.Content) == 0 {
			return fmt.Sprintf("The content field in the Message object at messages.%d is empty. Add a ContentBlock object to the content field and try again.", i)
		}
		for j, c := range m.Content {
			n := 0
			for _, set := range []bool{c.Text != nil, c.Image != nil, c.Document != nil, c.Video != nil, c.ToolUse != nil, c.ToolResult != nil, c.GuardContent != nil, c.CachePoint != nil, c.ReasoningContent != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				return fmt.Sprintf("The ContentBlock object at messages.%d.content.%d must set one of the following keys: text, image, toolUse, toolResult, document, video.", i, j)
			}
			switch {
			case c.Text != nil && strings.TrimSpace(*c.Text) == "":
				return fmt.Sprintf("The text field in the ContentBlock object at messages.%d.content.%d is blank. Add text to the text field, and try again.", i, j)
			case c.ToolUse != nil:
				if m.Role != "assistant" {
					return fmt.Sprintf("messages.%d.content.%d: toolUse blocks are only allowed in assistant messages.", i, j)
				}
				if c.ToolUse.ToolUseID == "" || c.ToolUse.Name == "" || len(c.ToolUse.Input) == 0 || c.ToolUse.Input[0] != '{' {
					return fmt.Sprintf("The toolUse block at messages.%d.content.%d needs a toolUseId, a name and an input object.", i, j)
				}
			case c.ToolResult != nil:
				if m.Role != "user" {
					return fmt.Sprintf("messages.%d.content.%d: toolResult blocks are only allowed in user messages.", i, j)
				}
				if len(c.ToolResult.Content) == 0 {
					return fmt.Sprintf("The toolResult block at messages.%d.content.%d has no content.", i, j)
				}
				for _, rc := range c.ToolResult.Content {
					if rc.Text != nil && strings.TrimSpace(*rc.Text) == "" {
						return fmt.Sprintf("The text field in the toolResult content at messages.%d.content.%d is blank.", i, j)
					}
				}
				switch c.ToolResult.Status {
				case "", "success", "error":
				default:
					return "toolResult.status must be success or error"
				}
			case c.Image != nil:
				switch c.Image.Format {
				case "png", "jpeg", "gif", "webp":
				default:
					return fmt.Sprintf("messages.%d.content.%d.image.format must be one of png, jpeg, gif, webp.", i, j)
				}
				if c.Image.Source.Bytes == "" || !isBase64(c.Image.Source.Bytes) {
					return fmt.Sprintf("messages.%d.content.%d.image.source.bytes is empty.", i, j)
				}
			}
		}
		// Every toolUse of an assistant turn is answered, one for one, by a toolResult in
		// the next user turn.
		if m.Role == "user" {
			var uses []string
			if i > 0 {
				for _, c := range req.Messages[i-1].Content {
					if c.ToolUse != nil {
						uses = append(uses, c.ToolUse.ToolUseID)
					}
				}
			}
			var results []string
			for _, c := range m.Content {
				if c.ToolResult != nil {
					results = append(results, c.ToolResult.ToolUseID)
				}
			}
			if len(results) > len(uses) {
				return fmt.Sprintf("The number of toolResult blocks at messages.%d.content exceeds the number of toolUse blocks of previous turn.", i)
			}
			for _, id := range uses {
				if !contains(results, id) {
					return fmt.Sprintf("Expected toolResult blocks at messages.%d.content for the following Ids: %s", i, id)
				}
			}
			for _, id := range results {
				if !contains(uses, id) {
					return fmt.Sprintf("The toolResult block at messages.%d.content answers no toolUse of the previous turn: %s", i, id)
				}
			}
		}
	}
	if last := req.Messages[len(req.Messages)-1]; last.Role == "assistant" {
		for _, c := range last.Content {
			if c.ToolUse != nil {
				return "Expected toolResult blocks after the final assistant message's toolUse blocks."
			}
		}
	}
	for i, s := range req.System {
		if s.Text != nil && strings.TrimSpace(*s.Text) == "" {
			return fmt.Sprintf("The text field in the SystemContentBlock object at system.%d is blank. Add text to the text field, and try again.", i)
		}
	}
	if ic := req.InferenceConfig; ic != nil && ic.MaxTokens != nil && *ic.MaxTokens < 1 {
		return "1 validation error detected: Value at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1"
	}
	if tc := req.ToolConfig; tc != nil {
		if len(tc.Tools) == 0 {
			return "1 validation error detected: Value '[]' at 'toolConfig.tools' failed to satisfy constraint: Member must have length greater than or equal to 1"
		}
		var names []string
		for i, t := range tc.Tools {
			if t.ToolSpec == nil {
				continue
			}
			if !bedrockToolName.MatchString(t.ToolSpec.Name) {
				return fmt.Sprintf("1 validation error detected: Value '%s' at 'toolConfig.tools.%d.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+", t.ToolSpec.Name, i+1)
			}
			if contains(names, t.ToolSpec.Name) {
				return "The tool name " + t.ToolSpec.Name + " is used more than once."
			}
			names = append(names, t.ToolSpec.Name)
			var schema map[string]any
			if json.Unmarshal(t.ToolSpec.InputSchema.JSON, &schema) != nil || schema == nil {
				return fmt.Sprintf("The inputSchema of tool %s must be a JSON object.", t.ToolSpec.Name)
			}
			if schema["type"] != "object" {
				return fmt.Sprintf("The value at toolConfig.tools.%d.toolSpec.inputSchema.json.type must be one of the following: object.", i)
			}
		}
		if c := tc.ToolChoice; c != nil {
			n := 0
			for _, set := range []bool{c.Auto != nil, c.Any != nil, c.Tool != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				return "toolChoice must set exactly one of auto, any, tool."
			}
			if c.Tool != nil && !contains(names, c.Tool.Name) {
				return "The tool " + c.Tool.Name + " named by toolChoice is not in toolConfig.tools."
			}
		}
	}
	return ""
}

// converseState is what one answer reports.
type converseState struct {
	input, output int64
	stop          string
}

// generate decides the answer to req, filling q.Answer and q.Calls.
func (b *Bedrock) generate(req *cRequest, q *Request) *converseState {
	st := &converseState{stop: "end_turn"}
	var text strings.Builder
	for _, s := range req.System {
		if s.Text != nil {
			text.WriteString(*s.Text + " ")
		}
	}
	var lastText string
	var results []string
	last := req.Messages[len(req.Messages)-1]
	for _, m := range req.Messages {
		for _, c := range m.Content {
			switch {
			case c.Text != nil:
				text.WriteString(*c.Text + " ")
			case c.ToolUse != nil:
				text.WriteString(c.ToolUse.Name + " " + string(c.ToolUse.Input) + " ")
			case c.ToolResult != nil:
				for _, rc := range c.ToolResult.Content {
					if rc.Text != nil {
						text.WriteString(*rc.Text + " ")
					}
					text.Write(rc.JSON)
					text.WriteString(" ")
				}
			}
		}
	}
	for _, c := range last.Content {
		switch {
		case c.Text != nil:
			lastText = *c.Text
		case c.ToolResult != nil:
			var out []string
			for _, rc := range c.ToolResult.Content {
				if rc.Text != nil {
					out = append(out, *rc.Text)
				}
				if rc.JSON != nil {
					out = append(out, string(compactJSON(rc.JSON)))
				}
			}
			name := "the tool"
			for _, m := range req.Messages {
				for _, u := range m.Content {
					if u.ToolUse != nil && u.ToolUse.ToolUseID == c.ToolResult.ToolUseID {
						name = u.ToolUse.Name
					}
				}
			}
			results = append(results, "According to "+name+": "+strings.Join(out, " "))
		}
	}
	var names []string
	var schemas []json.RawMessage
	if tc := req.ToolConfig; tc != nil {
		for _, t := range tc.Tools {
			if t.ToolSpec != nil {
				names = append(names, t.ToolSpec.Name)
				schemas = append(schemas, t.ToolSpec.InputSchema.JSON)
				text.WriteString(t.ToolSpec.Name + " " + t.ToolSpec.Description + " ")
			}
		}
	}
	st.input = max(words(text.String()), 1)

	forced, anyTool := "", false
	if tc := req.ToolConfig; tc != nil && tc.ToolChoice != nil {
		if tc.ToolChoice.Tool != nil {
			forced = tc.ToolChoice.Tool.Name
		}
		anyTool = tc.ToolChoice.Any != nil
	}
	var call []int
	if last.Role == "user" && (forced != "" || results == nil) {
		call = chooseTools(names, lastText, forced, anyTool)
	}
	switch {
	case len(call) > 0:
		if forced == "" {
			q.Answer = toolPreamble // Claude says what it is about to do
		}
		st.output = words(q.Answer)
		for _, i := range call {
			args := argsFor(schemas[i])
			q.Calls = append(q.Calls, Call{ID: "tooluse_" + randomHex(11), Name: names[i], Args: args})
			st.output += words(names[i] + " " + string(args))
		}
		st.stop = "tool_use"
	case results != nil:
		q.Answer = strings.Join(results, "; ")
		st.output = words(q.Answer)
	default:
		q.Answer = bedrockAnswer
		st.output = words(q.Answer)
	}
	return st
}

func uuid() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
