package bedrock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/apierr"
)

// FuzzStream feeds arbitrary bytes as a ConverseStream body: the stream must end, never
// panic, and emit only whole SSE events holding JSON, the last one [DONE] or an error.
func FuzzStream(f *testing.F) {
	files, _ := filepath.Glob("testdata/stream/*.json")
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		b := loadEvents(f, name)
		f.Add(b, false)
		f.Add(b, true)
		if len(b) > 20 {
			f.Add(b[:len(b)/2], false)
			c := bytes.Clone(b)
			c[len(c)/3] ^= 0x5a
			f.Add(c, true)
		}
	}
	f.Add([]byte{}, false)
	f.Add([]byte("data: [DONE]\n\n"), false)
	f.Add(rawFrame(16+4, 9, []byte{1, 'a', 7, 0}, nil), false)
	jsonSchemaRequest, err := os.ReadFile("testdata/request/json_schema.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, forced bool) {
		req := plainRequest
		if forced {
			req = string(jsonSchemaRequest)
		}
		ex := chatExchange(req, true)
		ex.IncludeUsage = forced
		events, err := collect(t, ex, streamHeader, bytes.NewReader(body))
		if err != nil {
			t.Fatalf("error %v from a body that reads without error", err)
		}
		if len(events) == 0 {
			t.Fatal("no events: the stream ended without [DONE] or an error")
		}
		last := events[len(events)-1]
		if last != "data: [DONE]\n\n" && !strings.HasPrefix(last, `data: {"error":`) {
			t.Fatalf("last event %q", last)
		}
		if !json.Valid(append(append([]byte{'"'}, ex.Output...), '"')) {
			t.Fatalf("output %q is not escaped JSON text", ex.Output)
		}
	})
}

// FuzzNewRequest feeds arbitrary chat request bodies: NewRequest must answer with a JSON
// Converse body or a client error, never panic.
func FuzzNewRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/request/*.json")
	for _, file := range files {
		if strings.HasSuffix(file, ".golden.json") {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	f.Add([]byte(`{"messages":[{"role":"tool","content":null}]}`), true)
	f.Fuzz(func(t *testing.T, body []byte, stream bool) {
		ex := chatExchange(string(body), stream)
		req, err := New().NewRequest(context.Background(), ex, target(t, "https://bedrock.example", "amazon.nova-lite-v1:0"))
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("error %v", err)
			}
			return
		}
		b := make([]byte, req.ContentLength)
		if _, err := req.Body.Read(b); err != nil || !json.Valid(b) {
			t.Fatalf("body %q: %v", b, err)
		}
	})
}
