package fakecloud

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GoogleOAuth is Google's OAuth2 token endpoint (POST /token) for one service account: it
// takes the JWT-bearer grant, checks the assertion's RS256 signature against the
// account's key and its claims (iss, aud, scope, iat, exp), and mints access tokens.
type GoogleOAuth struct {
	*httptest.Server
	ClientEmail string
	key         *rsa.PrivateKey

	ledger
}

// NewGoogleOAuth starts a token endpoint for a new service account.
func NewGoogleOAuth(t testing.TB) *GoogleOAuth {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	g := &GoogleOAuth{ClientEmail: "sluice@fake-project.iam.gserviceaccount.com", key: key}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.Close)
	return g
}

// TokenURL is the token_uri of the service-account key.
func (g *GoogleOAuth) TokenURL() string { return g.URL + "/token" }

// KeyJSON is the service-account JSON key, as Google issues it.
func (g *GoogleOAuth) KeyJSON() []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(g.key)
	return mustJSON(map[string]string{
		"type":                        "service_account",
		"project_id":                  "fake-project",
		"private_key_id":              "0123456789abcdef",
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                g.ClientEmail,
		"client_id":                   "100000000000000000001",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   g.TokenURL(),
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
	})
}

func (g *GoogleOAuth) refuse(w http.ResponseWriter, status int, code, desc string) {
	g.refused(code + ": " + desc)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(mustJSON(map[string]string{"error": code, "error_description": desc}))
}

func (g *GoogleOAuth) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		g.refuse(w, http.StatusNotFound, "not_found", r.Method+" "+r.URL.Path)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		g.refuse(w, http.StatusBadRequest, "invalid_request", "the token request must be form-encoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		g.refuse(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		g.refuse(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	tok, err := jwt.Parse(r.PostForm.Get("assertion"), func(*jwt.Token) (any, error) { return &g.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(g.ClientEmail), jwt.WithAudience(g.TokenURL()),
		jwt.WithIssuedAt(), jwt.WithExpirationRequired(), jwt.WithLeeway(time.Minute))
	if err != nil {
		g.refuse(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: "+err.Error())
		return
	}
	c := tok.Claims.(jwt.MapClaims)
	scope, _ := c["scope"].(string)
	if !strings.Contains(" "+scope+" ", " https://www.googleapis.com/auth/cloud-platform ") {
		g.refuse(w, http.StatusBadRequest, "invalid_scope", "the assertion does not ask for cloud-platform: "+scope)
		return
	}
	exp, _ := c.GetExpirationTime()
	iat, _ := c.GetIssuedAt()
	if iat == nil || exp.Sub(iat.Time) > time.Hour {
		g.refuse(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: the lifetime exceeds one hour")
		return
	}
	access := "ya29.fake-" + randomHex(16)
	g.minted(access)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(mustJSON(map[string]any{"access_token": access, "expires_in": 3599, "token_type": "Bearer"}))
}

// Vertex is Gemini on Vertex AI: POST
// /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent
// and :streamGenerateContent (SSE with ?alt=sse, else one JSON array).
type Vertex struct {
	*httptest.Server
	recorder
	Project, Location string
	// Token decides whether a bearer token is valid.
	Token func(string) bool
	// ThoughtsTokens, when set, is reported as thoughtsTokenCount with every answer, as
	// thinking models do.
	ThoughtsTokens int64
	// Faults are answered for the models named, after the credential and body are checked.
	Faults map[string]Fault
}

// NewVertex starts a Vertex AI fake accepting the tokens for which token returns true.
// Set Faults and ThoughtsTokens before sending requests.
func NewVertex(t testing.TB, project, location string, token func(string) bool) *Vertex {
	v := &Vertex{Project: project, Location: location, Token: token}
	v.Server = httptest.NewServer(http.HandlerFunc(v.serve))
	t.Cleanup(v.Close)
	return v
}

// The GenerateContentRequest, every member Vertex documents; others are refused.
type (
	gRequest struct {
		Contents          []gContent        `json:"contents"`
		SystemInstruction *gContent         `json:"systemInstruction,omitempty"`
		Tools             []gTool           `json:"tools,omitempty"`
		ToolConfig        *gToolConfig      `json:"toolConfig,omitempty"`
		GenerationConfig  *gGenConfig       `json:"generationConfig,omitempty"`
		SafetySettings    []json.RawMessage `json:"safetySettings,omitempty"`
		CachedContent     string            `json:"cachedContent,omitempty"`
		Labels            map[string]string `json:"labels,omitempty"`
	}
	gContent struct {
		Role  string  `json:"role,omitempty"`
		Parts []gPart `json:"parts"`
	}
	gPart struct {
		Text             *string          `json:"text,omitempty"`
		Thought          bool             `json:"thought,omitempty"`
		ThoughtSignature string           `json:"thoughtSignature,omitempty"`
		InlineData       *gBlob           `json:"inlineData,omitempty"`
		FileData         *gFileData       `json:"fileData,omitempty"`
		FunctionCall     *gFunctionCall   `json:"functionCall,omitempty"`
		FunctionResponse *gFunctionResult `json:"functionResponse,omitempty"`
		VideoMetadata    json.RawMessage  `json:"videoMetadata,omitempty"`
	}
	gBlob struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	}
	gFileData struct {
		MimeType string `json:"mimeType"`
		FileURI  string `json:"fileUri"`
	}
	gFunctionCall struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args,omitempty"`
	}
	gFunctionResult struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	}
	gTool struct {
		FunctionDeclarations []gDecl         `json:"functionDeclarations,omitempty"`
		GoogleSearch         *struct{}       `json:"googleSearch,omitempty"`
		Retrieval            json.RawMessage `json:"retrieval,omitempty"`
		CodeExecution        *struct{}       `json:"codeExecution,omitempty"`
	}
	gDecl struct {
		Name                 string          `json:"name"`
		Description          string          `json:"description,omitempty"`
		Parameters           *gSchema        `json:"parameters,omitempty"`
		ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
		Response             *gSchema        `json:"response,omitempty"`
	}
	// gSchema is Vertex's Schema message (an OpenAPI 3.0 subset).
	gSchema struct {
		Type             string              `json:"type,omitempty"`
		Format           string              `json:"format,omitempty"`
		Title            string              `json:"title,omitempty"`
		Description      string              `json:"description,omitempty"`
		Nullable         *bool               `json:"nullable,omitempty"`
		Default          json.RawMessage     `json:"default,omitempty"`
		Items            *gSchema            `json:"items,omitempty"`
		MinItems         json.RawMessage     `json:"minItems,omitempty"`
		MaxItems         json.RawMessage     `json:"maxItems,omitempty"`
		Enum             []string            `json:"enum,omitempty"`
		Properties       map[string]*gSchema `json:"properties,omitempty"`
		PropertyOrdering []string            `json:"propertyOrdering,omitempty"`
		Required         []string            `json:"required,omitempty"`
		MinProperties    json.RawMessage     `json:"minProperties,omitempty"`
		MaxProperties    json.RawMessage     `json:"maxProperties,omitempty"`
		MinLength        json.RawMessage     `json:"minLength,omitempty"`
		MaxLength        json.RawMessage     `json:"maxLength,omitempty"`
		Pattern          string              `json:"pattern,omitempty"`
		Example          json.RawMessage     `json:"example,omitempty"`
		AnyOf            []*gSchema          `json:"anyOf,omitempty"`
		Minimum          *float64            `json:"minimum,omitempty"`
		Maximum          *float64            `json:"maximum,omitempty"`
		Ref              string              `json:"$ref,omitempty"`
		Defs             map[string]*gSchema `json:"$defs,omitempty"`
	}
	gToolConfig struct {
		FunctionCallingConfig *struct {
			Mode                 string   `json:"mode,omitempty"`
			AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
		} `json:"functionCallingConfig,omitempty"`
		RetrievalConfig json.RawMessage `json:"retrievalConfig,omitempty"`
	}
	gGenConfig struct {
		Temperature        *float64        `json:"temperature,omitempty"`
		TopP               *float64        `json:"topP,omitempty"`
		TopK               *float64        `json:"topK,omitempty"`
		CandidateCount     *int64          `json:"candidateCount,omitempty"`
		MaxOutputTokens    *int64          `json:"maxOutputTokens,omitempty"`
		StopSequences      []string        `json:"stopSequences,omitempty"`
		PresencePenalty    *float64        `json:"presencePenalty,omitempty"`
		FrequencyPenalty   *float64        `json:"frequencyPenalty,omitempty"`
		Seed               *int64          `json:"seed,omitempty"`
		ResponseMimeType   string          `json:"responseMimeType,omitempty"`
		ResponseSchema     *gSchema        `json:"responseSchema,omitempty"`
		ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
		ResponseLogprobs   *bool           `json:"responseLogprobs,omitempty"`
		Logprobs           *int64          `json:"logprobs,omitempty"`
		ThinkingConfig     json.RawMessage `json:"thinkingConfig,omitempty"`
	}
)

var (
	vertexPath   = regexp.MustCompile(`^/v1/projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+):(generateContent|streamGenerateContent)$`)
	functionName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$`)
	schemaTypes  = map[string]bool{"TYPE_UNSPECIFIED": true, "STRING": true, "NUMBER": true, "INTEGER": true, "BOOLEAN": true, "ARRAY": true, "OBJECT": true, "NULL": true}
)

// googleError is the body of every Google API error.
func googleError(code int, status, msg string) []byte {
	return mustJSON(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

func (v *Vertex) serve(w http.ResponseWriter, r *http.Request) {
	q := newRequest(r)
	answer := func(status int, gstatus, msg string, rejected bool) {
		q.Status = status
		if rejected {
			q.Rejected = gstatus + ": " + msg
		}
		v.add(q)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(status)
		w.Write(googleError(status, gstatus, msg))
	}
	m := vertexPath.FindStringSubmatch(r.URL.Path)
	if r.URL.RawPath != "" && r.URL.RawPath != r.URL.Path {
		m = nil // an escaped path names no model Vertex serves
	}
	if m == nil || r.Method != http.MethodPost {
		answer(http.StatusNotFound, "NOT_FOUND", "The requested URL "+r.URL.Path+" was not found on this server.", true)
		return
	}
	q.Model, q.Stream = m[3], m[4] == "streamGenerateContent"
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || v.Token == nil || !v.Token(tok) {
		answer(http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", true)
		return
	}
	if m[1] != v.Project || m[2] != v.Location {
		answer(http.StatusForbidden, "PERMISSION_DENIED", fmt.Sprintf("Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/%s/locations/%s/publishers/google/models/%s' (or it may not exist).", m[1], m[2], m[3]), true)
		return
	}
	for k := range r.URL.Query() {
		if k != "alt" {
			answer(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \""+k+"\": Cannot bind query parameter.", true)
			return
		}
	}
	if alt := r.URL.Query().Get("alt"); alt != "" && (alt != "sse" || !q.Stream) {
		answer(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid value for alt: "+alt, true)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		answer(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid Content-Type "+ct+"; the request body must be JSON.", true)
		return
	}
	var req gRequest
	if err := decodeStrict(q.Body, &req); err != nil {
		answer(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error(), true)
		return
	}
	if msg := validateGemini(&req, q.Model); msg != "" {
		answer(http.StatusBadRequest, "INVALID_ARGUMENT", msg, true)
		return
	}
	if f, ok := v.Faults[q.Model]; ok && !(f.InStream && q.Stream) {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		answer(f.Status, f.Type, f.Message, false)
		return
	}

	// The answer: a function call, or text.
	resp := v.generate(&req, q)
	q.Status = http.StatusOK
	if !q.Stream {
		body := mustJSON(resp.response(q.Answer, q.Calls, true, v.ThoughtsTokens))
		q.Usage = resp.usageJSON(v.ThoughtsTokens)
		v.add(q)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Write(body)
		return
	}
	// Streamed: the text in pieces, each event with the usage so far; the last with the
	// finish reason. A function call comes whole, in one event.
	var events [][]byte
	if len(q.Calls) > 0 {
		events = append(events, mustJSON(resp.response("", q.Calls, true, v.ThoughtsTokens)))
	} else {
		pieces := splitWords(q.Answer, 3)
		for i, p := range pieces {
			part := *resp
			part.candidates = words(strings.Join(pieces[:i+1], ""))
			events = append(events, mustJSON(part.response(p, nil, i == len(pieces)-1, v.ThoughtsTokens)))
		}
	}
	f, fault := v.Faults[q.Model]
	if fault {
		events = events[:1]
		events = append(events, googleError(f.Status, f.Type, f.Message))
	} else {
		q.Usage = resp.usageJSON(v.ThoughtsTokens)
	}
	v.add(q)
	if r.URL.Query().Get("alt") != "sse" {
		// Without alt=sse, Vertex streams one JSON array.
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Write([]byte("[" + string(joinBytes(events, ",\r\n")) + "]"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Content-Disposition", "attachment")
	for _, ev := range events {
		w.Write([]byte("data: "))
		w.Write(ev)
		w.Write([]byte("\r\n\r\n"))
		w.(http.Flusher).Flush()
	}
}

func joinBytes(parts [][]byte, sep string) []byte {
	var out []byte
	for i, p := range parts {
		if i > 0 {
			out = append(out, sep...)
		}
		out = append(out, p...)
	}
	return out
}

// validateGemini checks a request as Vertex does; it returns Vertex's message, or "".
func validateGemini(req *gRequest, model string) string {
	if len(req.Contents) == 0 {
		return "Unable to submit request because it must include at least one parts field, which describes the prompt input."
	}
	if req.SystemInstruction != nil {
		for _, p := range req.SystemInstruction.Parts {
			if p.Text == nil || *p.Text == "" {
				return "Unable to submit request because the system instruction must hold only non-empty text."
			}
		}
	}
	thinkingModel := strings.HasPrefix(model, "gemini-3")
	for i, c := range req.Contents {
		if c.Role != "user" && c.Role != "model" {
			return fmt.Sprintf("Please use a valid role: user, model. (contents[%d].role %q)", i, c.Role)
		}
		if len(c.Parts) == 0 {
			return fmt.Sprintf("Unable to submit request because it must include at least one parts field, which describes the prompt input. (contents[%d])", i)
		}
		var calls, results int
		for j, p := range c.Parts {
			n := 0
			for _, set := range []bool{p.Text != nil, p.InlineData != nil, p.FileData != nil, p.FunctionCall != nil, p.FunctionResponse != nil} {
				if set {
					n++
				}
			}
			if n != 1 {
				return fmt.Sprintf("contents[%d].parts[%d] must set exactly one of text, inlineData, fileData, functionCall, functionResponse.", i, j)
			}
			switch {
			case p.Text != nil && *p.Text == "":
				return "Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again."
			case p.FunctionCall != nil:
				if c.Role != "model" {
					return fmt.Sprintf("contents[%d].parts[%d]: a functionCall must be in a model turn.", i, j)
				}
				if thinkingModel && calls == 0 && p.ThoughtSignature == "" {
					return fmt.Sprintf("Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `%s` , position %d.", p.FunctionCall.Name, j+1)
				}
				if len(p.FunctionCall.Args) > 0 && p.FunctionCall.Args[0] != '{' {
					return fmt.Sprintf("contents[%d].parts[%d].functionCall.args must be an object.", i, j)
				}
				calls++
			case p.FunctionResponse != nil:
				if c.Role != "user" {
					return fmt.Sprintf("contents[%d].parts[%d]: a functionResponse must be in a user turn.", i, j)
				}
				if len(p.FunctionResponse.Response) == 0 || p.FunctionResponse.Response[0] != '{' {
					return fmt.Sprintf("contents[%d].parts[%d].functionResponse.response must be an object.", i, j)
				}
				results++
			case p.InlineData != nil && (p.InlineData.MimeType == "" || p.InlineData.Data == ""):
				return fmt.Sprintf("contents[%d].parts[%d].inlineData needs mimeType and data.", i, j)
			case p.InlineData != nil && !isBase64(p.InlineData.Data):
				return fmt.Sprintf("Invalid value at 'contents[%d].parts[%d].inline_data.data' (TYPE_BYTES), Base64 decoding failed", i, j)
			case p.FileData != nil && (p.FileData.MimeType == "" || p.FileData.FileURI == ""):
				return fmt.Sprintf("contents[%d].parts[%d].fileData needs mimeType and fileUri.", i, j)
			}
		}
		if results > 0 {
			// The function responses answer the function calls of the previous turn, one for one.
			var prevCalls []string
			if i > 0 && req.Contents[i-1].Role == "model" {
				for _, p := range req.Contents[i-1].Parts {
					if p.FunctionCall != nil {
						prevCalls = append(prevCalls, p.FunctionCall.Name)
					}
				}
			}
			if len(prevCalls) != results {
				return "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn."
			}
			for _, p := range c.Parts {
				if p.FunctionResponse != nil && !contains(prevCalls, p.FunctionResponse.Name) {
					return "Please ensure that function response turn comes immediately after a function call turn, and names the function called: " + p.FunctionResponse.Name
				}
			}
		}
	}
	var names []string
	for i, t := range req.Tools {
		for j, d := range t.FunctionDeclarations {
			if !functionName.MatchString(d.Name) {
				return fmt.Sprintf("tools[%d].function_declarations[%d].name: Invalid function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons, or dashes, with a maximum length of 64.", i, j)
			}
			if contains(names, d.Name) {
				return "Duplicate function declaration name: " + d.Name
			}
			names = append(names, d.Name)
			if d.Parameters != nil {
				if msg := validateSchema(d.Parameters, fmt.Sprintf("tools[%d].function_declarations[%d].parameters", i, j)); msg != "" {
					return msg
				}
			}
		}
	}
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		switch tc.FunctionCallingConfig.Mode {
		case "", "MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED":
		default:
			return "Invalid value at 'tool_config.function_calling_config.mode': " + tc.FunctionCallingConfig.Mode
		}
		for _, n := range tc.FunctionCallingConfig.AllowedFunctionNames {
			if !contains(names, n) {
				return "allowed_function_names names a function that is not declared: " + n
			}
		}
	}
	if gc := req.GenerationConfig; gc != nil {
		if gc.ResponseSchema != nil {
			if msg := validateSchema(gc.ResponseSchema, "generation_config.response_schema"); msg != "" {
				return msg
			}
		}
		if gc.CandidateCount != nil && *gc.CandidateCount != 1 {
			return "Only one candidate can be specified in the current model."
		}
	}
	return ""
}

// validateSchema checks a Schema as Vertex does for function parameters: upper-case types
// and objects with properties.
func validateSchema(s *gSchema, at string) string {
	if s.Type != "" && !schemaTypes[s.Type] {
		return fmt.Sprintf("Invalid value at '%s.type' (type.googleapis.com/google.cloud.aiplatform.v1.Type), %q", at, s.Type)
	}
	if s.Type == "OBJECT" && len(s.Properties) == 0 && s.Ref == "" && len(s.AnyOf) == 0 {
		return fmt.Sprintf("%s.properties: should be non-empty for OBJECT type", at)
	}
	for _, r := range s.Required {
		if _, ok := s.Properties[r]; !ok {
			return fmt.Sprintf("%s.required: property %q is not defined", at, r)
		}
	}
	for k, p := range s.Properties {
		if p == nil {
			return fmt.Sprintf("%s.properties[%s]: null schema", at, k)
		}
		if msg := validateSchema(p, at+".properties["+k+"]"); msg != "" {
			return msg
		}
	}
	if s.Items != nil {
		if msg := validateSchema(s.Items, at+".items"); msg != "" {
			return msg
		}
	}
	for i, a := range s.AnyOf {
		if a == nil {
			return fmt.Sprintf("%s.anyOf[%d]: null schema", at, i)
		}
		if msg := validateSchema(a, fmt.Sprintf("%s.anyOf[%d]", at, i)); msg != "" {
			return msg
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// geminiAnswerState is what one answer reports.
type geminiAnswerState struct {
	prompt, candidates int64
	model, id          string
	signature          bool
}

// generate decides the answer to req, filling q.Answer or q.Calls.
func (v *Vertex) generate(req *gRequest, q *Request) *geminiAnswerState {
	st := &geminiAnswerState{model: q.Model, id: randomHex(10), signature: strings.HasPrefix(q.Model, "gemini-3")}
	var text strings.Builder
	add := func(c *gContent) {
		for _, p := range c.Parts {
			switch {
			case p.Text != nil:
				text.WriteString(*p.Text + " ")
			case p.FunctionCall != nil:
				text.WriteString(p.FunctionCall.Name + " " + string(p.FunctionCall.Args) + " ")
			case p.FunctionResponse != nil:
				text.WriteString(p.FunctionResponse.Name + " " + string(p.FunctionResponse.Response) + " ")
			}
		}
	}
	if req.SystemInstruction != nil {
		add(req.SystemInstruction)
	}
	for i := range req.Contents {
		add(&req.Contents[i])
	}
	var decls []gDecl
	for _, t := range req.Tools {
		decls = append(decls, t.FunctionDeclarations...)
	}
	for _, d := range decls {
		text.WriteString(d.Name + " " + d.Description + " ")
	}
	st.prompt = max(words(text.String()), 1)

	last := req.Contents[len(req.Contents)-1]
	var lastText string
	var results []string
	for _, p := range last.Parts {
		if p.Text != nil {
			lastText = *p.Text
		}
		if p.FunctionResponse != nil {
			results = append(results, "According to "+p.FunctionResponse.Name+": "+string(compactJSON(p.FunctionResponse.Response)))
		}
	}
	mode, allowed := "AUTO", ""
	if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
		if tc.FunctionCallingConfig.Mode != "" {
			mode = tc.FunctionCallingConfig.Mode
		}
		if a := tc.FunctionCallingConfig.AllowedFunctionNames; len(a) == 1 {
			allowed = a[0]
		}
	}
	names := make([]string, len(decls))
	for i, d := range decls {
		names[i] = d.Name
	}
	var call []int
	if last.Role == "user" && results == nil && mode != "NONE" {
		call = chooseTools(names, lastText, allowed, mode == "ANY")
	}
	gc := req.GenerationConfig
	switch {
	case len(call) > 0:
		for _, i := range call {
			var schema json.RawMessage
			if decls[i].Parameters != nil {
				schema = mustJSON(decls[i].Parameters)
			}
			args := argsFor(schema)
			q.Calls = append(q.Calls, Call{Name: decls[i].Name, Args: args})
			st.candidates += words(decls[i].Name + " " + string(args))
		}
	case results != nil:
		q.Answer = strings.Join(results, "; ")
		st.candidates = words(q.Answer)
	case gc != nil && gc.ResponseMimeType == "application/json":
		// JSON mode: an object of the schema, if there is one.
		q.Answer = `{"answer":"a gateway routes requests"}`
		if gc.ResponseSchema != nil {
			q.Answer = string(argsFor(mustJSON(gc.ResponseSchema)))
		}
		st.candidates = words(q.Answer)
	default:
		q.Answer = geminiAnswer
		st.candidates = words(q.Answer)
	}
	return st
}

func compactJSON(raw json.RawMessage) []byte {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	return mustJSON(v)
}

func (st *geminiAnswerState) usage(thoughts int64) map[string]any {
	u := map[string]any{
		"promptTokenCount":     st.prompt,
		"candidatesTokenCount": st.candidates,
		"totalTokenCount":      st.prompt + st.candidates + thoughts,
		"trafficType":          "ON_DEMAND",
		"promptTokensDetails":  []any{map[string]any{"modality": "TEXT", "tokenCount": st.prompt}},
	}
	if thoughts > 0 {
		u["thoughtsTokenCount"] = thoughts
	}
	return u
}

func (st *geminiAnswerState) usageJSON(thoughts int64) json.RawMessage {
	return mustJSON(st.usage(thoughts))
}

// response is one GenerateContentResponse: text or calls, with the finish reason when last.
func (st *geminiAnswerState) response(text string, calls []Call, last bool, thoughts int64) map[string]any {
	var parts []any
	if text != "" {
		parts = append(parts, map[string]any{"text": text})
	}
	for i, c := range calls {
		p := map[string]any{"functionCall": map[string]any{"name": c.Name, "args": c.Args}}
		if st.signature && i == 0 {
			p["thoughtSignature"] = "CiQBcsjafE2yqcBeuuAF5ThoughtSignature=="
		}
		parts = append(parts, p)
	}
	cand := map[string]any{"content": map[string]any{"role": "model", "parts": parts}}
	if last {
		cand["finishReason"] = "STOP"
		cand["avgLogprobs"] = -0.125
	}
	return map[string]any{
		"candidates":    []any{cand},
		"usageMetadata": st.usage(thoughts),
		"modelVersion":  st.model,
		"createTime":    time.Now().UTC().Format(time.RFC3339Nano),
		"responseId":    st.id,
	}
}
