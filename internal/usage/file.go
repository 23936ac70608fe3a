package usage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
)

// Defaults of NewFileSink.
const (
	DefaultMaxBytes = 100 << 20
	DefaultMaxFiles = 10
)

// FileSink appends records to a file as JSON lines and rotates it by size: path becomes
// path.1, path.1 becomes path.2, and so on, keeping maxFiles old files. The files are
// created with mode 0600: records name people. It is safe for concurrent use.
type FileSink struct {
	path     string
	maxBytes int64
	maxFiles int

	mu     sync.Mutex
	f      *os.File
	size   int64
	buf    bytes.Buffer  // a batch's lines, reused between writes
	enc    *json.Encoder // writes into buf
	closed bool
}

// NewFileSink opens (or creates) path for appending. maxBytes <= 0 and maxFiles <= 0 take
// the defaults (100 MiB, 10 files).
func NewFileSink(path string, maxBytes int64, maxFiles int) (*FileSink, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxFiles <= 0 {
		maxFiles = DefaultMaxFiles
	}
	s := &FileSink{path: path, maxBytes: maxBytes, maxFiles: maxFiles}
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false) // the lines are read by programs, not embedded in HTML
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileSink) open() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("usage: %w", err)
	}
	s.f, s.size = f, fi.Size()
	return nil
}

// Write appends one line per record. ctx is ignored: a local append is short, and the
// Recorder spills to a FileSink precisely when its context has ended.
func (s *FileSink) Write(_ context.Context, batch []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.f == nil { // a rotation failed to open the new file: try again
		if err := s.open(); err != nil {
			return err
		}
	}
	defer s.buf.Reset()
	for i := range batch {
		start := s.buf.Len()
		r := batch[i].clean()
		if err := s.enc.Encode(&r); err != nil { // cannot happen after clean; kept honest
			return fmt.Errorf("usage: encoding a record: %w", err)
		}
		// Rotate before a line that would take the file past maxBytes, unless the file
		// is empty (a line longer than maxBytes gets a file of its own).
		if s.size+int64(s.buf.Len()) > s.maxBytes && s.size+int64(start) > 0 {
			if err := s.flush(s.buf.Next(start)); err != nil {
				return err
			}
			if err := s.rotate(); err != nil {
				return err
			}
		}
	}
	return s.flush(s.buf.Bytes())
}

func (s *FileSink) flush(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	return nil
}

// rotate closes the file, shifts path.N to path.N+1 (the oldest falls off) and path to
// path.1, and opens a new path.
func (s *FileSink) rotate() error {
	// Synced before it is closed: a rotated file is not written again.
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	err := s.f.Close()
	s.f = nil
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	// Shift only the files there are (a rotation must not cost maxFiles renames); the
	// oldest, path.maxFiles, is overwritten.
	top := 0
	for top < s.maxFiles-1 && exists(s.rotated(top+1)) {
		top++
	}
	for n := top; n >= 1; n-- {
		if err := os.Rename(s.rotated(n), s.rotated(n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("usage: rotating: %w", err)
		}
	}
	if err := os.Rename(s.path, s.rotated(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("usage: rotating: %w", err)
	}
	return s.open()
}

func (s *FileSink) rotated(n int) string { return s.path + "." + strconv.Itoa(n) }

// Close syncs the file to disk and closes it.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f == nil {
		return nil
	}
	serr := s.f.Sync()
	cerr := s.f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	return nil
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}
