package gateway_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
)

// FuzzServe sends arbitrary requests through the whole gateway (access policy, rate
// limits, every in-process payload processor, Mock backend, both wires): nothing may panic or answer 500, and every error is
// JSON.
func FuzzServe(f *testing.F) {
	snap := gatewaytest.Build(f, limitedMock+apiKeyYAML("k", "sk-fuzz", "fuzzer", "t", []string{"dev"}, "")+`
apiVersion: sluice.dev/v1alpha1
kind: AccessPolicy
metadata: {name: p}
spec:
  authentication: {apiKeys: {}, anonymous: true}
  rules:
  - name: r
    allow: {models: ["demo*"]}
    when: 'request.max_tokens < 100000'
  default: Deny
---
apiVersion: sluice.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: rl}
spec:
  rules:
  - {name: tokens, key: principal.subject, limit: {volumeUnits: Tokens, volume: 1000000000, timeUnit: Minute}}
---
apiVersion: sluice.dev/v1alpha1
kind: PayloadProcessor
metadata: {name: guard}
spec:
  processors:
  - {name: sig, inProcess: {signatures: {action: Flag}}}
  - {name: inj, inspect: [User, Tool, System, Assistant], inProcess: {promptInjection: {action: Flag}}}
  - {name: pii, inProcess: {pii: {action: Redact, scope: [Request, Response]}}}
  - {name: words, inProcess: {contentFilter: {deny: [{word: zeus}, {regex: '(?i)x+y'}], action: Redact, scope: [Request, Response]}}}
  - name: edit
    inProcess:
      setHeaders: [{name: x-team, value: principal.team}]
      setBodyFields: [{name: metadata.sluice, value: 'request.endpoint'}]
      removeBodyFields: [user]
`, nil)
	gw := gateway.New(gateway.Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	gw.Swap(snap)
	paths := []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages", "/v1/messages/count_tokens", "/v1/models", "/v1/models/demo", "/nope"}
	for _, s := range []string{
		`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"demo","stream":true,"max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`,
		`{"model":"demo","prompt":["a","b"],"max_tokens":3}`,
		`{"model":"demo","input":[[1,2,3]]}`,
		`{"model":"demo","max_tokens":10,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}}]}]}`,
	} {
		for i := range paths {
			f.Add(uint8(i), s, "sk-fuzz")
		}
	}
	f.Fuzz(func(t *testing.T, p uint8, body, key string) {
		path := paths[int(p)%len(paths)]
		method := "POST"
		if strings.HasPrefix(path, "/v1/models") {
			method = "GET"
		}
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if key != "" && !strings.ContainsAny(key, "\r\n") {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		gw.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != 502 && w.Code != 503 && w.Code != 504 {
			t.Fatalf("%s %q: status %d: %s", path, body, w.Code, w.Body.String())
		}
		if w.Code >= 400 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %q: error body is not JSON: %q", path, body, w.Body.String())
		}
	})
}
