package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"github.com/sluice-gateway/sluice/internal/apierr"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// bodyBuffer holds a request body; its storage returns to a pool when the request ends.
type bodyBuffer struct{ b []byte }

var bodyPool = sync.Pool{New: func() any { return &bodyBuffer{b: make([]byte, 0, 4096)} }}

func (b *bodyBuffer) release() {
	if cap(b.b) > 1<<20 {
		return // let big ones go rather than pin them
	}
	b.b = b.b[:0]
	bodyPool.Put(b)
}

func tooLarge(limit int64) *apierr.Error {
	return &apierr.Error{Status: http.StatusRequestEntityTooLarge, Code: apierr.CodeRequestTooLarge, Message: "The request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes."}
}

// readBody reads the whole body once, refusing more than limit bytes.
func readBody(r *http.Request, limit int64) (*bodyBuffer, *apierr.Error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	buf := bodyPool.Get().(*bodyBuffer)
	if r.ContentLength > 0 && int64(cap(buf.b)) < r.ContentLength {
		buf.b = make([]byte, 0, r.ContentLength)
	}
	b := buf.b[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			buf.b = b
			buf.release()
			return nil, tooLarge(limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			buf.b = b
			buf.release()
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge(limit)
			}
			return nil, &apierr.Error{Status: http.StatusBadRequest, Code: apierr.CodeInvalidRequest, Message: "The request body could not be read."}
		}
	}
	buf.b = b
	return buf, nil
}

// requestID returns the client's X-Request-Id when it is sane, else a new random one.
func requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && saneID(v[0]) {
		return v[0]
	}
	var raw [16]byte
	rand.Read(raw[:])
	return hex.EncodeToString(raw[:])
}

func saneID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
