package anthropic

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-gateway/sluice/internal/apierr"
	"github.com/sluice-gateway/sluice/internal/exchange"
	"github.com/sluice-gateway/sluice/internal/provider"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var created = regexp.MustCompile(`"created":\d+`)

// drain reads a stream to its end, zeroing the created timestamps.
func drain(t *testing.T, s provider.Stream) ([]byte, error) {
	t.Helper()
	defer s.Close()
	var out []byte
	for {
		ev, err := s.Next()
		if err != nil {
			out = created.ReplaceAll(out, []byte(`"created":0`))
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, ev...)
	}
}

func base(t testing.TB, raw string) provider.Target {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return provider.Target{BaseURL: u, Model: "claude-sonnet-4-20250514"}
}

func chatEx(body []byte) *exchange.Exchange {
	return &exchange.Exchange{Ingress: apierr.OpenAI, Endpoint: exchange.EndpointChat, IngressEndpoint: exchange.EndpointChat, Body: body, Header: http.Header{}, Model: "gpt-4o"}
}

func messagesEx(body string) *exchange.Exchange {
	return &exchange.Exchange{Ingress: apierr.Anthropic, Endpoint: exchange.EndpointMessages, IngressEndpoint: exchange.EndpointMessages, Body: []byte(body), Header: http.Header{}, BodyMutated: true}
}

// events splits an SSE stream into its events' data fields.
func events(b []byte) []string {
	var out []string
	for _, ev := range strings.Split(string(b), "\n\n") {
		for _, line := range strings.Split(ev, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				out = append(out, d)
			}
		}
	}
	return out
}
