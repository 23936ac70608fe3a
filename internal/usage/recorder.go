package usage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// RecorderOptions tunes a Recorder; zero fields take the defaults shown.
type RecorderOptions struct {
	QueueSize     int           // records waiting for the writer: 10,000
	BatchSize     int           // records per sink write: 500
	FlushInterval time.Duration // longest wait before a partial batch is written: 1s
	WriteTimeout  time.Duration // limit of one sink write: 30s
	RetryBackoff  time.Duration // first wait after a failed write, doubled each time: 100ms
	MaxBackoff    time.Duration // longest wait between tries: 30s
	// GiveUpAfter is how long a failing batch is retried before it is spilled (or dropped):
	// 1m. Meanwhile new records wait in the queue, and spill once it is full.
	GiveUpAfter time.Duration
	// SpillPath, when set, is a JSONL file (a FileSink with the default rotation) that
	// receives the records the sink could not take: queue full, batch given up, shutdown
	// deadline. The operator can replay it. Without it those records are dropped and
	// counted.
	SpillPath string
	Logger    *slog.Logger // sink errors (never record contents): slog.Default()
}

func (o *RecorderOptions) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 10_000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	def(&o.FlushInterval, time.Second)
	def(&o.WriteTimeout, 30*time.Second)
	def(&o.RetryBackoff, 100*time.Millisecond)
	def(&o.MaxBackoff, 30*time.Second)
	def(&o.GiveUpAfter, time.Minute)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// RecorderStats counts what became of the records given to Add. After Close returns nil,
// Written+Spilled+Dropped is the number of Add calls and Queued is 0.
type RecorderStats struct {
	Written uint64 // stored by the sink
	Spilled uint64 // stored in the spill file instead
	Dropped uint64 // lost: no spill file, or it failed, or Add after Close
	Queued  int    // accepted and not yet written, spilled or dropped
}

// Recorder takes records off the request path: Add queues without blocking, and one
// goroutine writes them to the sink in batches, retrying while it fails.
type Recorder struct {
	sink Sink
	opts RecorderOptions
	log  *slog.Logger

	// mu orders Add against Close: Add holds it shared to send, Close exclusively to close
	// the queue, so nothing is ever sent on a closed channel nor left behind in it.
	mu     sync.RWMutex
	closed bool
	queue  chan Record

	ctx    context.Context // the writer's; cancelled when Close runs out of time
	cancel context.CancelFunc
	done   chan struct{} // closed when the writer has exited
	runErr error         // the sink's Close error, set before done closes

	spillMu   sync.Mutex
	spill     *FileSink // opened at the first spill
	spillErr  error     // why it could not be opened, logged once
	spillRefs atomic.Int32

	written, spilled, dropped atomic.Uint64
	pending                   atomic.Int64
}

// NewRecorder starts a Recorder writing to sink. The Recorder owns the sink: Close closes
// it.
func NewRecorder(sink Sink, opts RecorderOptions) *Recorder {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{
		sink: sink, opts: opts, log: opts.Logger,
		queue: make(chan Record, opts.QueueSize),
		ctx:   ctx, cancel: cancel, done: make(chan struct{}),
	}
	// The spill file is closed by the last of the writer and Close to finish with it:
	// Close may have to abandon a writer stuck in a sink that ignores cancellation.
	r.spillRefs.Store(2)
	go r.run()
	return r
}

// Add queues r for writing. It never blocks: when the queue is full, r goes to the spill
// file (a local append) or is dropped.
func (r *Recorder) Add(rec Record) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.dropped.Add(1)
		return
	}
	r.pending.Add(1)
	select {
	case r.queue <- rec:
	default:
		r.divert([]Record{rec}, "queue full")
	}
}

// Stats reports the counters.
func (r *Recorder) Stats() RecorderStats {
	return RecorderStats{
		Written: r.written.Load(),
		Spilled: r.spilled.Load(),
		Dropped: r.dropped.Load(),
		Queued:  int(r.pending.Load()),
	}
}

// Close stops accepting records and writes everything queued to the sink, with retries,
// then closes the sink. Before ctx's deadline (a tenth of the time left, at most a second,
// is kept for it) whatever the sink has not taken goes to the spill file or is dropped, so
// nothing queued is left unaccounted. It returns ctx's error when the sink did not give
// the batch in hand back in time, or the sink's Close error.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("usage: recorder already closed")
	}
	r.closed = true
	close(r.queue)
	r.mu.Unlock()

	stop := context.AfterFunc(ctx, r.cancel)
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		reserve := min(time.Until(deadline)/10, time.Second)
		t := time.AfterFunc(time.Until(deadline)-reserve, r.cancel)
		defer t.Stop()
	}

	select {
	case <-r.done:
		r.releaseSpill()
		return r.runErr
	case <-ctx.Done():
	}
	// The writer is stuck in a sink that ignores cancellation. Take the queue from it (a
	// channel has room for two readers); the batch in its hands is spilled if the sink
	// ever returns.
	r.cancel()
	for rec := range r.queue {
		r.divert([]Record{rec}, "shutdown")
	}
	r.releaseSpill()
	return fmt.Errorf("usage: sink still writing at shutdown (%d records in its hands): %w",
		r.pending.Load(), ctx.Err())
}

// run is the writer: it collects batches from the queue and writes them until the queue
// is closed and empty.
func (r *Recorder) run() {
	defer close(r.done)
	defer r.releaseSpill()
	tick := time.NewTicker(r.opts.FlushInterval)
	defer tick.Stop()
	batch := make([]Record, 0, r.opts.BatchSize)
	for {
		select {
		case rec, ok := <-r.queue:
			if !ok {
				r.write(batch)
				r.runErr = r.sink.Close()
				return
			}
			batch = append(batch, rec)
			if len(batch) < r.opts.BatchSize {
				continue
			}
		case <-tick.C:
			if len(batch) == 0 {
				continue
			}
		}
		r.write(batch)
		batch = batch[:0]
	}
}

// write gives batch to the sink until it succeeds; it spills the batch when the failure is
// permanent, has lasted GiveUpAfter, or the Recorder is out of time.
func (r *Recorder) write(batch []Record) {
	if len(batch) == 0 {
		return
	}
	if r.ctx.Err() != nil { // shutting down late: no time left for the sink
		r.divert(batch, "shutdown")
		return
	}
	began, wait := time.Now(), r.opts.RetryBackoff
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(r.ctx, r.opts.WriteTimeout)
		err := r.sink.Write(ctx, batch)
		cancel()
		if err == nil {
			r.written.Add(uint64(len(batch)))
			r.pending.Add(-int64(len(batch)))
			return
		}
		r.log.Warn("usage: sink write failed", "err", err, "records", len(batch), "try", try)
		switch {
		case isPermanent(err):
			r.divert(batch, "rejected by the sink")
			return
		case r.ctx.Err() != nil:
			r.divert(batch, "shutdown")
			return
		case time.Since(began)+wait > r.opts.GiveUpAfter:
			r.divert(batch, "sink failing")
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			r.divert(batch, "shutdown")
			return
		}
		wait = min(wait*2, r.opts.MaxBackoff)
	}
}

// divert puts records the sink will not get into the spill file, or drops them.
func (r *Recorder) divert(batch []Record, why string) {
	defer r.pending.Add(-int64(len(batch)))
	if s := r.spillFile(); s != nil {
		err := s.Write(context.Background(), batch)
		if err == nil {
			if r.spilled.Add(uint64(len(batch))) == uint64(len(batch)) { // the first spill is worth a line
				r.log.Warn("usage: spilling records", "reason", why, "path", r.opts.SpillPath)
			}
			return
		}
		r.log.Error("usage: spill write failed", "err", err, "records", len(batch))
	}
	if r.dropped.Add(uint64(len(batch))) == uint64(len(batch)) { // the first loss is worth a line
		r.log.Error("usage: dropping records", "reason", why, "records", len(batch), "spill", r.opts.SpillPath != "")
	}
}

func (r *Recorder) spillFile() *FileSink {
	if r.opts.SpillPath == "" {
		return nil
	}
	r.spillMu.Lock()
	defer r.spillMu.Unlock()
	if r.spill == nil && r.spillErr == nil {
		r.spill, r.spillErr = NewFileSink(r.opts.SpillPath, 0, 0)
		if r.spillErr != nil {
			r.log.Error("usage: cannot open the spill file", "err", r.spillErr)
		}
	}
	return r.spill
}

func (r *Recorder) releaseSpill() {
	if r.spillRefs.Add(-1) != 0 {
		return
	}
	r.spillMu.Lock()
	defer r.spillMu.Unlock()
	if r.spill != nil {
		if err := r.spill.Close(); err != nil {
			r.log.Error("usage: closing the spill file", "err", err)
		}
	}
}
