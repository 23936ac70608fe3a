package mock

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type closeRecorder struct {
	io.Reader
	once   sync.Once
	closed chan struct{}
}

func (c *closeRecorder) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

func TestTransportStreams(t *testing.T) {
	step1, step2 := make(chan struct{}), make(chan struct{})
	h, done := tracked(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/x" || r.URL.RawQuery != "q=1" || r.RequestURI != "/v1/x?q=1" || r.Host != "mock" || r.Proto != "HTTP/1.1" {
			t.Errorf("server view: %s %q %q %q", r.URL, r.RequestURI, r.Host, r.Proto)
		}
		if b, _ := io.ReadAll(r.Body); string(b) != "ping" {
			t.Errorf("request body %q", b)
		}
		w.Header().Set("X-Test", "1")
		w.WriteHeader(http.StatusCreated)
		<-step1
		io.WriteString(w, "a")
		w.Header().Set("X-Late", "ignored")
		<-step2
		io.WriteString(w, "b")
	}))
	body := &closeRecorder{Reader: strings.NewReader("ping"), closed: make(chan struct{})}
	req, _ := http.NewRequest(http.MethodPost, "http://mock/v1/x?q=1", body)
	// The response arrives while the handler is still blocked after WriteHeader.
	resp, err := NewTransport(h).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 201 || resp.Status != "201 Created" || resp.Proto != "HTTP/1.1" || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 ||
		resp.Request != req || resp.ContentLength != -1 || resp.Header.Get("X-Test") != "1" {
		t.Errorf("response: %+v", resp)
	}
	close(step1)
	buf := make([]byte, 8)
	if n, err := resp.Body.Read(buf); err != nil || string(buf[:n]) != "a" {
		t.Fatalf("first read %q, %v", buf[:n], err)
	}
	close(step2)
	if rest, err := io.ReadAll(resp.Body); err != nil || string(rest) != "b" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	resp.Body.Close()
	waitDone(t, done, "streams")
	if resp.Header.Get("X-Late") != "" {
		t.Error("a header set after the commit leaked into the response")
	}
	// The request body is closed once the handler is done with it.
	waitDone(t, body.closed, "request body close")
}

func TestTransportCommitPoints(t *testing.T) {
	cases := map[string]struct {
		h          http.HandlerFunc
		status     int
		length     int64
		body       string
		wantErr    bool
		wantBodyOK bool
	}{
		"returns without writing": {h: func(http.ResponseWriter, *http.Request) {}, status: 200, length: 0, wantBodyOK: true},
		"content-length": {h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}, status: 200, length: 5, body: "hello", wantBodyOK: true},
		"flush commits": {h: func(w http.ResponseWriter, r *http.Request) {
			http.NewResponseController(w).Flush()
			<-r.Context().Done() // holds until the client closes the body
		}, status: 200, length: -1, wantBodyOK: false},
		"panic before commit": {h: func(http.ResponseWriter, *http.Request) { panic("boom") }, wantErr: true},
		"panic after commit": {h: func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "partial")
			panic("boom")
		}, status: 200, length: -1, body: "partial", wantBodyOK: false},
		"no content": {h: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
			if _, err := io.WriteString(w, "x"); !errors.Is(err, http.ErrBodyNotAllowed) {
				t.Errorf("write on 204: %v", err)
			}
		}, status: 204, length: -1, wantBodyOK: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h, done := tracked(tc.h)
			req, _ := http.NewRequest(http.MethodGet, "http://mock/", nil)
			resp, err := NewTransport(h).RoundTrip(req)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				waitDone(t, done, name)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.ContentLength != tc.length {
				t.Errorf("status %d length %d", resp.StatusCode, resp.ContentLength)
			}
			if name == "flush commits" {
				resp.Body.Close()
				waitDone(t, done, name)
				return
			}
			b, err := io.ReadAll(resp.Body)
			if string(b) != tc.body || (err == nil) != tc.wantBodyOK {
				t.Errorf("body %q, err %v", b, err)
			}
			resp.Body.Close()
			waitDone(t, done, name)
		})
	}
}

func TestTransportHead(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		if n, err := io.WriteString(w, "hello"); n != 5 || err != nil {
			t.Errorf("write on HEAD: %d %v", n, err)
		}
	})
	req, _ := http.NewRequest(http.MethodHead, "http://mock/", nil)
	resp, err := NewTransport(h).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); len(b) != 0 || resp.ContentLength != 5 {
		t.Errorf("HEAD body %q, length %d", b, resp.ContentLength)
	}
}

func TestTransportWritesFailAfterClose(t *testing.T) {
	errc := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		for {
			if _, err := io.WriteString(w, "more"); err != nil {
				errc <- err
				return
			}
		}
	})
	req, _ := http.NewRequest(http.MethodGet, "http://mock/", nil)
	resp, err := NewTransport(h).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("nil error")
		}
	case <-time.After(failAfter):
		t.Fatal("the handler kept writing into a closed body")
	}
}
