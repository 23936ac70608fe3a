package mock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// errBodyClosed is what the handler's writes return once the client closed the
// response body.
var errBodyClosed = errors.New("mock: response body closed by the client")

type transport struct{ h http.Handler }

// NewTransport returns an http.RoundTripper that serves every request with h,
// in-process: no sockets, but real streaming. The response is returned as soon as
// the handler commits its headers (WriteHeader, the first Write or Flush, or
// returning), and its body is fed by the handler's writes as the client reads.
// Cancelling the request's context, or closing the response body, ends the handler:
// its context is cancelled and its writes fail from then on.
func NewTransport(h http.Handler) http.RoundTripper { return &transport{h: h} }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.New("mock: nil Request.URL")
	}
	ctx, cancel := context.WithCancel(req.Context())
	pr, pw := io.Pipe()
	w := &responseWriter{
		header: make(http.Header),
		req:    req,
		pr:     pr,
		pw:     pw,
		cancel: cancel,
		head:   req.Method == http.MethodHead,
		ready:  make(chan struct{}),
	}
	// Once the client gives up, reads of the body report why and the handler's
	// writes fail, as they would on a closed connection.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	go func() {
		var failure error
		defer func() {
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				failure = fmt.Errorf("mock: handler panic: %v", p)
			} else if p != nil {
				failure = errors.New("mock: handler aborted")
			}
			// The handler may notice the cancellation before the AfterFunc runs; the
			// body must still end with the cancellation, not a clean EOF.
			stop()
			if failure == nil && ctx.Err() != nil {
				failure = context.Cause(ctx)
			}
			w.finish(failure)
			cancel()
			if req.Body != nil {
				req.Body.Close()
			}
		}()
		t.h.ServeHTTP(w, serverRequest(ctx, req))
	}()

	select {
	case <-w.ready:
	case <-req.Context().Done():
		select {
		case <-w.ready: // the handler committed just in time: hand the response over
		default:
			err := context.Cause(req.Context())
			pr.CloseWithError(err)
			return nil, err
		}
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.resp, nil
}

// serverRequest turns a client request into what a server handler would see.
func serverRequest(ctx context.Context, req *http.Request) *http.Request {
	r := req.Clone(ctx)
	r.RequestURI = req.URL.RequestURI()
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.RemoteAddr = "127.0.0.1:0"
	r.GetBody = nil
	if r.Body == nil {
		r.Body = http.NoBody
	}
	return r
}

// responseWriter is the handler's side of the pipe. Its fields are only touched by
// the handler's goroutine, except resp and err, which are published by closing ready.
type responseWriter struct {
	header    http.Header
	req       *http.Request
	pr        *io.PipeReader
	pw        *io.PipeWriter
	cancel    context.CancelFunc
	head      bool
	noBody    bool // the status allows no body
	committed bool
	ready     chan struct{}
	resp      *http.Response
	err       error
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.committed {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http does
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		return // informational responses are not passed on
	}
	w.commit(code, false)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.committed {
		w.commit(http.StatusOK, false)
	}
	if w.head {
		return len(p), nil
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	// The pipe hands p straight to the reader: Write returns once the client has
	// read it, or with an error once the client has gone.
	return w.pw.Write(p)
}

// Flush commits the headers; the body needs no flushing, since the pipe holds
// nothing back.
func (w *responseWriter) Flush() {
	if !w.committed {
		w.commit(http.StatusOK, false)
	}
}

// FlushError is what http.ResponseController.Flush calls.
func (w *responseWriter) FlushError() error {
	w.Flush()
	return nil
}

func (w *responseWriter) commit(code int, empty bool) {
	w.committed = true
	h := w.header.Clone()
	resp := &http.Response{
		Status:        fmt.Sprintf("%d %s", code, http.StatusText(code)),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: -1,
		Body:          &pipeBody{pr: w.pr, cancel: w.cancel},
		Request:       w.req,
	}
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		resp.ContentLength = n
	}
	w.noBody = code == http.StatusNoContent || code == http.StatusNotModified
	if empty || w.head || w.noBody {
		resp.Body = http.NoBody
		if empty {
			resp.ContentLength = 0
		}
	}
	w.resp = resp
	close(w.ready)
}

// finish runs when the handler returns: it commits an empty response if nothing was
// written, and ends the body with failure (nil: EOF).
func (w *responseWriter) finish(failure error) {
	if !w.committed {
		if failure != nil {
			w.committed = true
			w.err = failure
			close(w.ready)
		} else {
			w.commit(http.StatusOK, true)
		}
	}
	w.pw.CloseWithError(failure)
}

// pipeBody is the response body: reads come from the handler's writes, and Close
// stops the handler.
type pipeBody struct {
	pr     *io.PipeReader
	cancel context.CancelFunc
}

func (b *pipeBody) Read(p []byte) (int, error) { return b.pr.Read(p) }

func (b *pipeBody) Close() error {
	b.pr.CloseWithError(errBodyClosed)
	b.cancel()
	return nil
}
