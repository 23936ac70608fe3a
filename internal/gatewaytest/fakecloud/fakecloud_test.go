package fakecloud

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/sluice-gateway/sluice/internal/egress"
)

// The fakes are tested with the gateway's own egress signers, which the real APIs accept,
// and with requests the real APIs refuse.

func send(t *testing.T, up *egress.Upstream, method, u string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := up.Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

func TestBedrockSignature(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDFAKE", SecretAccessKey: "secret/key+1", SessionToken: "session-1"}
	b := NewBedrock(t, "eu-west-1", creds)
	base, _ := url.Parse(b.URL)
	signed := func(secret, region string) *egress.Upstream {
		return egress.NewUpstream(egress.Options{BaseURL: base, Signer: egress.NewSigV4(creds.AccessKeyID, secret, creds.SessionToken, region, "bedrock")})
	}
	good := signed(creds.SecretAccessKey, "eu-west-1")
	body := `{"messages":[{"role":"user","content":[{"text":"hello"}]}]}`
	model := "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"

	resp, out := send(t, good, "POST", b.URL+model, jsonHeader, body)
	if resp.StatusCode != 200 {
		t.Fatalf("signed request: %d %s", resp.StatusCode, out)
	}
	var cr struct {
		Output struct {
			Message struct {
				Content []struct{ Text string }
			}
		}
		StopReason string
		Usage      struct{ InputTokens, OutputTokens, TotalTokens int64 }
	}
	json.Unmarshal(out, &cr)
	last, _ := b.Last()
	if cr.StopReason != "end_turn" || cr.Output.Message.Content[0].Text != last.Answer || cr.Usage.InputTokens != 1 || last.Model != "anthropic.claude-3-haiku-20240307-v1:0" {
		t.Fatalf("answer %s, recorded %+v", out, last)
	}

	// An inference profile's ARN, its '/' escaped.
	arn := "/model/" + url.PathEscape("arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/a1b2c3") + "/converse"
	if resp, out := send(t, good, "POST", b.URL+arn, jsonHeader, body); resp.StatusCode != 200 {
		t.Fatalf("ARN: %d %s", resp.StatusCode, out)
	}

	for name, c := range map[string]struct {
		up   *egress.Upstream
		kind string
	}{
		"wrong secret": {signed("not-the-secret", "eu-west-1"), "AccessDeniedException"},
		"wrong region": {signed(creds.SecretAccessKey, "us-east-1"), "InvalidSignatureException"},
		"unsigned":     {egress.NewUpstream(egress.Options{BaseURL: base}), "MissingAuthenticationTokenException"},
	} {
		resp, out := send(t, c.up, "POST", b.URL+model, jsonHeader, body)
		if resp.StatusCode != 403 || !strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), c.kind+":") || !bytes.Contains(out, []byte(`"message":`)) {
			t.Errorf("%s: %d %s %s", name, resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), out)
		}
		if last, _ := b.Last(); last.Rejected == "" {
			t.Errorf("%s: not recorded as rejected", name)
		}
	}

	// A body changed after signing.
	tamper := egress.NewUpstream(egress.Options{BaseURL: base, Signer: tamperer{egress.NewSigV4(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken, "eu-west-1", "bedrock")}})
	if resp, out := send(t, tamper, "POST", b.URL+model, jsonHeader, body); resp.StatusCode != 403 {
		t.Errorf("tampered body: %d %s", resp.StatusCode, out)
	}
	// A header signed with one value and sent with another.
	if resp, out := send(t, good, "POST", b.URL+model, http.Header{"Content-Type": {"application/json"}, "X-Trace": {"a"}}, body); resp.StatusCode != 200 {
		t.Errorf("extra signed header: %d %s", resp.StatusCode, out)
	}
}

// tamperer signs, then changes the body.
type tamperer struct{ s egress.Signer }

func (t tamperer) Sign(req *http.Request) error {
	if err := t.s.Sign(req); err != nil {
		return err
	}
	b, _ := io.ReadAll(req.Body)
	b = bytes.Replace(b, []byte("hello"), []byte("HELLO"), 1)
	req.Body = io.NopCloser(bytes.NewReader(b))
	return nil
}

func TestBedrockValidation(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDFAKE", SecretAccessKey: "s"}
	b := NewBedrock(t, "eu-west-1", creds)
	b.MaxInputTokens = 10
	base, _ := url.Parse(b.URL)
	up := egress.NewUpstream(egress.Options{BaseURL: base, Signer: egress.NewSigV4(creds.AccessKeyID, creds.SecretAccessKey, "", "eu-west-1", "bedrock")})
	u := b.URL + "/model/anthropic.claude-v2/converse"
	for body, want := range map[string]string{
		`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"model":"x"}`:                                                                                   "unknown field",
		`{"messages":[{"role":"assistant","content":[{"text":"hi"}]}]}`:                                                                                          "must start with a user message",
		`{"messages":[{"role":"user","content":[{"text":"hi"}]},{"role":"user","content":[{"text":"again"}]}]}`:                                                  "alternate",
		`{"messages":[{"role":"user","content":[{"text":" "}]}]}`:                                                                                                "is blank",
		`{"messages":[{"role":"user","content":[{"text":"one two three four five six seven eight nine ten eleven"}]}]}`:                                          "Input is too long",
		`{"messages":[{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"x"}]}}]}]}`:                                                  "toolConfig",
		`{"messages":[{"role":"user","content":[{"text":"hi","image":{"format":"png","source":{"bytes":"AA=="}}}]}]}`:                                            "must set one of",
		`{"messages":[{"role":"user","content":[{"text":"hi"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"a b","inputSchema":{"json":{"type":"object"}}}}]}}`: "regular expression",
	} {
		resp, out := send(t, up, "POST", u, jsonHeader, body)
		if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), "ValidationException") || !strings.Contains(string(out), want) {
			t.Errorf("%s: %d %s, want %q", body, resp.StatusCode, out, want)
		}
	}
}

func TestBedrockStream(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDFAKE", SecretAccessKey: "s"}
	b := NewBedrock(t, "eu-west-1", creds)
	base, _ := url.Parse(b.URL)
	up := egress.NewUpstream(egress.Options{BaseURL: base, Signer: egress.NewSigV4(creds.AccessKeyID, creds.SecretAccessKey, "", "eu-west-1", "bedrock")})
	body := `{"messages":[{"role":"user","content":[{"text":"What is the weather in Paris?"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{"city":{"type":"string"}}}}}}]}}`
	resp, out := send(t, up, "POST", b.URL+"/model/anthropic.claude-v2/converse-stream", jsonHeader, body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	dec := eventstream.NewDecoder()
	r := bytes.NewReader(out)
	var types []string
	var text, input string
	for r.Len() > 0 {
		m, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		typ := m.Headers.Get(":event-type").String()
		types = append(types, typ)
		var p struct {
			Delta struct {
				Text    string
				ToolUse struct{ Input string }
			}
		}
		json.Unmarshal(m.Payload, &p)
		text += p.Delta.Text
		input += p.Delta.ToolUse.Input
	}
	last, _ := b.Last()
	got := strings.Join(types, ",")
	if !strings.HasPrefix(got, "messageStart,contentBlockDelta") || !strings.Contains(got, ",contentBlockStop,contentBlockStart,contentBlockDelta,") || !strings.HasSuffix(got, ",contentBlockDelta,contentBlockStop,messageStop,metadata") {
		t.Errorf("events %s", got)
	}
	if text != last.Answer || input != `{"city":"Paris"}` || len(last.Calls) != 1 || string(last.Calls[0].Args) != input {
		t.Errorf("text %q input %q, recorded %+v", text, input, last)
	}
}

func TestVertex(t *testing.T) {
	g := NewGoogleOAuth(t)
	v := NewVertex(t, "p1", "us-central1", g.Valid)
	signer, err := egress.NewGoogleServiceAccount(g.KeyJSON())
	if err != nil {
		t.Fatal(err)
	}
	up := egress.NewUpstream(egress.Options{Signer: signer})
	path := v.URL + "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.0-flash"
	body := `{"contents":[{"role":"user","parts":[{"text":"What is the weather in Paris?"}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"}},"required":["city"]}}]}]}`
	resp, out := send(t, up, "POST", path+":generateContent", jsonHeader, body)
	if resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"functionCall":{"args":{"city":"Paris"},"name":"get_weather"}`)) || g.Mints() != 1 {
		t.Fatalf("%d %s (%d mints)", resp.StatusCode, out, g.Mints())
	}
	resp, out = send(t, up, "POST", path+":streamGenerateContent?alt=sse", jsonHeader, `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, out)
	}
	var text string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		data, ok := strings.CutPrefix(strings.TrimRight(sc.Text(), "\r"), "data: ")
		if !ok {
			continue
		}
		var r struct {
			Candidates []struct {
				Content struct{ Parts []struct{ Text string } }
			}
		}
		json.Unmarshal([]byte(data), &r)
		text += r.Candidates[0].Content.Parts[0].Text
	}
	if text != geminiAnswer {
		t.Errorf("streamed %q", text)
	}

	for name, c := range map[string]struct {
		up     *egress.Upstream
		u      string
		body   string
		status int
	}{
		"no token":      {egress.NewUpstream(egress.Options{}), path + ":generateContent", `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}`, 401},
		"other project": {up, strings.Replace(path, "/p1/", "/p2/", 1) + ":generateContent", `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}`, 403},
		"unknown field": {up, path + ":generateContent", `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"model":"x"}`, 400},
		"empty text":    {up, path + ":generateContent", `{"contents":[{"role":"user","parts":[{"text":""}]}]}`, 400},
		"bad role":      {up, path + ":generateContent", `{"contents":[{"role":"assistant","parts":[{"text":"Hi"}]}]}`, 400},
		"lower type":    {up, path + ":generateContent", `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"tools":[{"functionDeclarations":[{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"STRING"}}}}]}]}`, 400},
		"empty object":  {up, path + ":generateContent", `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"tools":[{"functionDeclarations":[{"name":"f","parameters":{"type":"OBJECT"}}]}]}`, 400},
		"unanswered":    {up, path + ":generateContent", `{"contents":[{"role":"user","parts":[{"text":"Hi"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},{"role":"user","parts":[{"text":"no result"}]},{"role":"user","parts":[{"functionResponse":{"name":"g","response":{}}}]}]}`, 400},
		"gemini 3 unsigned": {up, strings.Replace(path, "gemini-2.0-flash", "gemini-3-pro", 1) + ":generateContent",
			`{"contents":[{"role":"user","parts":[{"text":"Hi"}]},{"role":"model","parts":[{"functionCall":{"name":"f","args":{}}}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, 400},
	} {
		resp, out := send(t, c.up, "POST", c.u, jsonHeader, c.body)
		if resp.StatusCode != c.status || !bytes.Contains(out, []byte(`"status":`)) {
			t.Errorf("%s: %d %s, want %d", name, resp.StatusCode, out, c.status)
		}
	}
}

func TestAzure(t *testing.T) {
	e := NewEntra(t, "tenant-1", "app-1", "s3cret")
	a := NewAzure(t, "key-1", e, map[string]string{"dep": "gpt-4o-mini"})
	withKey := egress.NewUpstream(egress.Options{Signer: egress.NewHeaderSigner("Api-Key", "key-1")})
	withToken := egress.NewUpstream(egress.Options{Signer: egress.NewAzureClientCredentials(e.URL, "tenant-1", "app-1", "s3cret", EntraScope)})
	u := a.URL + "/openai/deployments/dep/chat/completions?api-version=2024-10-21"
	body := `{"model":"dep","messages":[{"role":"user","content":"hello"}]}`
	for name, up := range map[string]*egress.Upstream{"api-key": withKey, "entra": withToken} {
		resp, out := send(t, up, "POST", u, jsonHeader, body)
		var cc struct {
			Choices []struct{ Message struct{ Content string } }
		}
		json.Unmarshal(out, &cc)
		if last, _ := a.Last(); resp.StatusCode != 200 || last.Usage == nil || len(cc.Choices) != 1 || cc.Choices[0].Message.Content != last.Answer {
			t.Errorf("%s: %d %s", name, resp.StatusCode, out)
		}
	}
	if e.Mints() != 1 {
		t.Errorf("%d mints", e.Mints())
	}
	wrongSecret := egress.NewUpstream(egress.Options{Signer: egress.NewAzureClientCredentials(e.URL, "tenant-1", "app-1", "nope", EntraScope)})
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	if _, err := wrongSecret.Transport.RoundTrip(req); err == nil || len(e.Problems()) != 1 || !strings.Contains(e.Problems()[0], "invalid_client") {
		t.Errorf("wrong secret: %v %v", err, e.Problems())
	}
	for name, c := range map[string]struct {
		up     *egress.Upstream
		u      string
		status int
	}{
		"wrong key":          {egress.NewUpstream(egress.Options{Signer: egress.NewHeaderSigner("Api-Key", "nope")}), u, 401},
		"no key":             {egress.NewUpstream(egress.Options{}), u, 401},
		"no api-version":     {withKey, a.URL + "/openai/deployments/dep/chat/completions", 404},
		"unknown deployment": {withKey, strings.Replace(u, "/dep/", "/other/", 1), 404},
	} {
		if resp, out := send(t, c.up, "POST", c.u, jsonHeader, body); resp.StatusCode != c.status {
			t.Errorf("%s: %d %s", name, resp.StatusCode, out)
		}
	}
	// A streamed answer starts with the prompt's filter results.
	resp, out := send(t, withKey, "POST", u, jsonHeader, `{"model":"dep","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]}`)
	if last, _ := a.Last(); resp.StatusCode != 200 || !bytes.HasPrefix(out, []byte(`data: {"choices":[],`)) || last.Usage == nil || last.Answer == "" {
		t.Errorf("%d %s", resp.StatusCode, out)
	}
}
