package usage

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// spilled reads the spill file, which may not exist when nothing spilled.
func spilled(t *testing.T, path string) []Record {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil
	}
	files, err := usageFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	return readLines(t, files...)
}

func checkStats(t *testing.T, r *Recorder, want RecorderStats) {
	t.Helper()
	if got := r.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}

func TestRecorderWritesInBatches(t *testing.T) {
	sink := &memSink{}
	r := NewRecorder(sink, RecorderOptions{Logger: quiet, FlushInterval: time.Hour})
	rs := testRecords(1234)
	for _, rec := range rs {
		r.Add(rec)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, sink.records(), rs)
	for _, n := range sink.batches {
		if n > 500 {
			t.Fatalf("batch of %d", n)
		}
	}
	if !sink.closed {
		t.Fatal("sink not closed")
	}
	checkStats(t, r, RecorderStats{Written: 1234})
	r.Add(rs[0]) // after Close: counted, not written
	checkStats(t, r, RecorderStats{Written: 1234, Dropped: 1})
}

// flushSink reports each write on a channel.
type flushSink struct{ wrote chan []Record }

func (s flushSink) Write(_ context.Context, b []Record) error {
	s.wrote <- append([]Record(nil), b...)
	return nil
}
func (flushSink) Close() error { return nil }

func TestRecorderFlushesPartialBatch(t *testing.T) {
	sink := flushSink{wrote: make(chan []Record, 10)}
	r := NewRecorder(sink, RecorderOptions{Logger: quiet, FlushInterval: 10 * time.Millisecond})
	defer r.Close(context.Background())
	rs := testRecords(3)
	for _, rec := range rs {
		r.Add(rec)
	}
	var got []Record
	timeout := time.After(10 * time.Second)
	for len(got) < 3 {
		select {
		case b := <-sink.wrote:
			got = append(got, b...)
		case <-timeout:
			t.Fatalf("a partial batch was not flushed: %d of 3", len(got))
		}
	}
	sameRecords(t, got, rs)
}

func TestRecorderRetries(t *testing.T) {
	sink := &memSink{fail: func(try int) error {
		if try <= 3 {
			return errors.New("connection refused")
		}
		return nil
	}}
	spill := filepath.Join(t.TempDir(), "spill.jsonl")
	r := NewRecorder(sink, RecorderOptions{Logger: quiet, RetryBackoff: time.Millisecond, SpillPath: spill})
	rs := testRecords(100)
	for _, rec := range rs {
		r.Add(rec)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameRecords(t, sink.records(), rs)
	checkStats(t, r, RecorderStats{Written: 100})
	if got := spilled(t, spill); len(got) != 0 {
		t.Fatalf("%d spilled", len(got))
	}
}

func TestRecorderCloseDrains(t *testing.T) {
	sink := &memSink{delay: time.Millisecond}
	spill := filepath.Join(t.TempDir(), "spill.jsonl")
	r := NewRecorder(sink, RecorderOptions{Logger: quiet, QueueSize: 1000, SpillPath: spill})
	rs := testRecords(20_000)
	for _, rec := range rs {
		r.Add(rec)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	written, spilt := sink.records(), spilled(t, spill)
	sameRecords(t, append(written, spilt...), rs) // each exactly once
	checkStats(t, r, RecorderStats{Written: uint64(len(written)), Spilled: uint64(len(spilt))})
	if len(written) < 1000 {
		t.Fatalf("only %d written: the queue was not drained to the sink", len(written))
	}
}

func TestRecorderFailingSinkSpills(t *testing.T) {
	for _, permanent := range []bool{false, true} {
		t.Run(map[bool]string{false: "transient", true: "permanent"}[permanent], func(t *testing.T) {
			sink := &memSink{fail: func(int) error {
				if permanent {
					return permanentError{errors.New("invalid input")}
				}
				return errors.New("connection refused")
			}}
			spill := filepath.Join(t.TempDir(), "spill.jsonl")
			opts := RecorderOptions{Logger: quiet, SpillPath: spill, BatchSize: 100,
				RetryBackoff: time.Millisecond, GiveUpAfter: 20 * time.Millisecond}
			if permanent {
				opts.GiveUpAfter = time.Hour // must not matter
			}
			r := NewRecorder(sink, opts)
			rs := testRecords(1234)
			for _, rec := range rs {
				r.Add(rec)
			}
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			sameRecords(t, spilled(t, spill), rs)
			checkStats(t, r, RecorderStats{Spilled: 1234})
			if permanent && sink.tries != 13 {
				t.Fatalf("%d tries for 13 batches: a permanent failure was retried", sink.tries)
			}
		})
	}
}

func TestRecorderFailingSinkDropsWithoutSpill(t *testing.T) {
	sink := &memSink{fail: func(int) error { return errors.New("down") }}
	r := NewRecorder(sink, RecorderOptions{Logger: quiet, RetryBackoff: time.Millisecond, GiveUpAfter: 10 * time.Millisecond})
	for _, rec := range testRecords(700) {
		r.Add(rec)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkStats(t, r, RecorderStats{Dropped: 700})
}

// blockSink blocks every write until release is closed; it ignores its context when
// stubborn, else returns when the context ends.
type blockSink struct {
	entered  chan struct{} // one send per write entered
	release  chan struct{}
	stubborn bool
	memSink
}

func (s *blockSink) Write(ctx context.Context, b []Record) error {
	s.entered <- struct{}{}
	if s.stubborn {
		<-s.release
	} else {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.memSink.Write(ctx, b)
}

func newBlockSink(stubborn bool) *blockSink {
	return &blockSink{entered: make(chan struct{}, 100), release: make(chan struct{}), stubborn: stubborn}
}

// addAll adds rs on another goroutine and fails if that does not end promptly.
func addAll(t *testing.T, r *Recorder, rs []Record) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, rec := range rs {
			r.Add(rec)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Add blocked")
	}
}

func TestRecorderAddNeverBlocks(t *testing.T) {
	const queue, batch = 100, 10
	sink := newBlockSink(true)
	r := NewRecorder(sink, RecorderOptions{Logger: quiet, QueueSize: queue, BatchSize: batch, FlushInterval: time.Hour})
	rs := testRecords(queue + 100 + batch)
	addAll(t, r, rs[:batch]) // one full batch, which the writer takes and is stuck with
	<-sink.entered
	addAll(t, r, rs[batch:])
	// The queue is full and the rest was dropped: no spill file.
	checkStats(t, r, RecorderStats{Dropped: 100, Queued: queue + batch})

	// Close cannot wait for a sink that ignores cancellation: it gives up at its deadline,
	// accounting for the queue, and leaves the batch in the sink's hands.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v", err)
	}
	checkStats(t, r, RecorderStats{Dropped: 100 + queue, Queued: batch})
	close(sink.release) // the sink returns at last, and its batch counts as written
	<-r.done
	checkStats(t, r, RecorderStats{Written: batch, Dropped: 100 + queue})
}

func TestRecorderCloseDeadlineSpills(t *testing.T) {
	const queue, batch = 100, 10
	sink := newBlockSink(false) // returns when its context ends
	spill := filepath.Join(t.TempDir(), "spill.jsonl")
	r := NewRecorder(sink, RecorderOptions{Logger: quiet, QueueSize: queue, BatchSize: batch,
		FlushInterval: time.Hour, SpillPath: spill})
	rs := testRecords(queue + 100 + batch)
	addAll(t, r, rs[:batch])
	<-sink.entered
	addAll(t, r, rs[batch:]) // 100 spill at once, the queue fills
	checkStats(t, r, RecorderStats{Spilled: 100, Queued: queue + batch})

	// The sink honours cancellation: Close cancels it before its own deadline and spills
	// everything left, returning in time with nothing lost.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStats(t, r, RecorderStats{Spilled: uint64(len(rs))})
	sameRecords(t, spilled(t, spill), rs)
}
