package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-gateway/sluice/internal/gateway"
	"github.com/sluice-gateway/sluice/internal/gatewaytest"
	"github.com/sluice-gateway/sluice/internal/tokens"
)

// scriptedStream is an upstream whose stream the test drives event by event.
type scriptedStream struct {
	*httptest.Server
	events  chan string   // each is written and flushed as one event
	started chan struct{} // closed when the upstream request arrives
	gone    chan struct{} // closed when the upstream request's context ends
}

func newScriptedStream(t *testing.T) *scriptedStream {
	s := &scriptedStream{events: make(chan string), started: make(chan struct{}), gone: make(chan struct{})}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		close(s.started)
		defer close(s.gone)
		for {
			select {
			case ev, ok := <-s.events:
				if !ok {
					return
				}
				if ev == "ABORT" {
					panic(http.ErrAbortHandler) // cut the connection mid-stream
				}
				fmt.Fprintf(w, "data: %s\n\n", ev)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func chunk(content string) string {
	return `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"` + content + `"},"finish_reason":null}]}`
}

// startStream starts a streamed request and has the upstream send first. The gateway
// sends its headers with the first event, so the client's Do returns only after it.
func startStream(t *testing.T, ctx context.Context, url string, up *scriptedStream, first string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/chat/completions", strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"Tell me a story"}]}`))
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		done <- result{resp, err}
	}()
	up.events <- first
	res := <-done
	resp, err := res.resp, res.err
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return resp, bufio.NewReader(resp.Body)
}

func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading event: %v (so far %q)", err, b.String())
		}
		if line == "\n" {
			return b.String()
		}
		b.WriteString(line)
	}
}

// TestStreamFlushedPerEvent: each event reaches the client while the upstream is still
// holding the next one, so nothing buffers the stream.
func TestStreamFlushedPerEvent(t *testing.T) {
	up := newScriptedStream(t)
	gw := gatewaytest.Start(t, backendYAML("s", up.URL+"/v1", "")+routeYAML("m", "[{name: s}]"), nil, gateway.Options{})
	resp, r := startStream(t, t.Context(), gw.URL(), up, chunk("part0"))
	defer resp.Body.Close()
	for i := range 3 {
		if i > 0 {
			up.events <- chunk(fmt.Sprint("part", i))
		}
		if ev := readEvent(t, r); !strings.Contains(ev, fmt.Sprint("part", i)) {
			t.Fatalf("event %d: %q", i, ev)
		}
	}
	up.events <- `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`
	up.events <- "[DONE]"
	if ev := readEvent(t, r); ev != "data: [DONE]\n" {
		t.Fatalf("want [DONE] (usage chunk removed), got %q", ev)
	}
	close(up.events)
	io.Copy(io.Discard, r)
	rec := assertUsageLogged(t, gw, 1, false)
	if rec["input_tokens"].(float64) != 5 || rec["output_tokens"].(float64) != 3 {
		t.Fatalf("usage not taken from the upstream's report: %v", rec)
	}
}

// TestClientDisconnectCancelsUpstream: when the client goes, so does the upstream request,
// and the delivered output is still accounted (estimated).
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	up := newScriptedStream(t)
	gw := gatewaytest.Start(t, backendYAML("s", up.URL+"/v1", "")+routeYAML("m", "[{name: s}]"), nil, gateway.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	resp, r := startStream(t, ctx, gw.URL(), up, chunk("Once upon a time"))
	readEvent(t, r)
	cancel()
	resp.Body.Close()
	select {
	case <-up.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream request still running after the client left")
	}
	waitForLog(t, gw)
	rec := assertUsageLogged(t, gw, 1, true)
	if want := float64(tokens.CountString("m", "Once upon a time")); rec["output_tokens"].(float64) != want || rec["status"].(float64) != 200 {
		t.Fatalf("want %v estimated output tokens: %v", want, rec)
	}
}

// TestUpstreamAbortMidStream: a stream that breaks after bytes reached the client ends with
// an error event, and the delivered tokens are counted with the tokenizer.
func TestUpstreamAbortMidStream(t *testing.T) {
	up := newScriptedStream(t)
	gw := gatewaytest.Start(t, backendYAML("s", up.URL+"/v1", "")+routeYAML("m", "[{name: s}]"), nil, gateway.Options{})
	resp, r := startStream(t, t.Context(), gw.URL(), up, chunk("Hello"))
	defer resp.Body.Close()
	up.events <- chunk(" world, and more")
	readEvent(t, r)
	readEvent(t, r)
	up.events <- "ABORT"
	ev := readEvent(t, r)
	if !strings.Contains(ev, `"code":"upstream_error"`) {
		t.Fatalf("want an error event, got %q", ev)
	}
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("stream did not end after the error event: %v", err)
	}
	waitForLog(t, gw)
	rec := assertUsageLogged(t, gw, 1, true)
	if want := float64(tokens.CountString("m", "Hello world, and more")); rec["output_tokens"].(float64) != want {
		t.Fatalf("want %v output tokens: %v", want, rec)
	}
}

// TestStreamIdleTimeout: an upstream that goes silent mid-stream is cut off after the
// Backend's idle timeout with an idle_timeout error event.
func TestStreamIdleTimeout(t *testing.T) {
	up := newScriptedStream(t)
	gw := gatewaytest.Start(t, backendYAML("s", up.URL+"/v1", "  timeouts: {idle: 200ms}")+routeYAML("m", "[{name: s}]"), nil, gateway.Options{})
	resp, r := startStream(t, t.Context(), gw.URL(), up, chunk("Hello"))
	defer resp.Body.Close()
	readEvent(t, r)
	if ev := readEvent(t, r); !strings.Contains(ev, `"code":"idle_timeout"`) {
		t.Fatalf("want a timeout event, got %q", ev)
	}
}

// waitForLog waits until the gateway has written the access-log line of the last request
// (it is written after the handler returns, which can be after the client saw the end).
func waitForLog(t *testing.T, gw *gatewaytest.Gateway) {
	t.Helper()
	gw.Log.Wait(t, "request", 1, 10*time.Second)
}
