package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrWriterClosed is returned by Do after Close.
var ErrWriterClosed = errors.New("writer closed")

// Writer owns the single write connection of a DB and commits the work of
// all callers in groups: it opens a transaction for the first queued job and
// runs every job that arrives while other callers are on their way to the
// queue (between Enter and Do, for example validating a document), for at
// most Linger, then commits. One COMMIT, and one fsync, acknowledges the
// whole group. Jobs run while the group fills, so waiting costs little, and a
// lone caller never waits.
//
// A job that fails before writing (a failed precondition) fails alone. A job
// that fails after writing must return an error made with Wrote: the group is
// rolled back and replayed one job per transaction, so that only that job
// fails.
type Writer struct {
	db   *DB
	cfg  WriterConfig
	conn *sql.Conn

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // prepared on conn, by query text

	jobs     chan *job
	inflight atomic.Int64  // callers between Enter and Leave
	kick     chan struct{} // a caller left without queueing a job
	cancel   context.CancelFunc
	done     chan struct{}
	closed   atomic.Bool
	stats    WriterStats
}

// WriterConfig configures a Writer.
type WriterConfig struct {
	Logger *slog.Logger
	// MaxBatch bounds the jobs of one group. Default 256.
	MaxBatch int
	// Linger bounds how long the writer waits for callers already on their
	// way to join a group. Default 1ms; negative turns it off.
	Linger time.Duration
	// OnBegin and OnRollback let the owner keep writer-owned state (such as
	// a sequence counter) in step with transactions: OnRollback undoes what
	// jobs changed since the matching OnBegin. Both run on the writer.
	OnBegin, OnRollback func()
	// OnCommit runs on the writer after a group committed at least one job,
	// after the jobs' after functions, before their callers return.
	OnCommit func()
	// BeforeCommit, if set, runs on the writer inside every group's
	// transaction after its last job, for work the owner defers and does
	// once for many writes (catching up an index). An error fails the group
	// as a failed COMMIT would: rolled back, every job reporting it.
	BeforeCommit func(ctx context.Context) error
}

// WriterStats are cumulative counters.
type WriterStats struct {
	Commits      atomic.Int64 // groups committed
	CommitErrors atomic.Int64 // groups that failed as a whole
	Writes       atomic.Int64 // jobs acknowledged
	WriteErrors  atomic.Int64 // jobs that failed
	CommitNanos  atomic.Int64 // time spent running and committing groups
	MaxBatch     atomic.Int64 // largest group seen
}

type job struct {
	fn    func(ctx context.Context) error
	after func()
	err   error
	done  chan struct{}
}

type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// Wrote marks a job's failure after it wrote: its transaction must be rolled
// back. op names what failed. A nil err stays nil.
func Wrote(op string, err error) error {
	if err == nil {
		return nil
	}
	return &storageError{fmt.Errorf("%s: %w", op, err)}
}

// NewWriter returns a writer for db. Call Open.
func NewWriter(db *DB, cfg WriterConfig) *Writer {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Linger == 0 {
		cfg.Linger = time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{db: db, cfg: cfg, jobs: make(chan *job, cfg.MaxBatch), kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// Open takes the write connection and starts the writer goroutine.
func (w *Writer) Open(ctx context.Context) error {
	conn, err := w.db.Write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("write connection: %w", err)
	}
	w.conn = conn
	wctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(wctx)
	return nil
}

// Prepare returns a statement prepared on the write connection, for jobs to
// use; each query text is prepared once and kept until Close.
func (w *Writer) Prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	w.stmtMu.Lock()
	defer w.stmtMu.Unlock()
	if st := w.stmts[query]; st != nil {
		return st, nil
	}
	st, err := w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if w.stmts == nil {
		w.stmts = map[string]*sql.Stmt{}
	}
	w.stmts[query] = st
	return st, nil
}

// Exec runs a statement on the write connection (for jobs), prepared once.
func (w *Writer) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := w.Prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryRow runs a query on the write connection (for jobs), prepared once.
func (w *Writer) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := w.Prepare(ctx, query)
	if err != nil {
		return w.conn.QueryRowContext(ctx, query, args...) // carries the error
	}
	return st.QueryRowContext(ctx, args...)
}

// Stats returns the writer's counters.
func (w *Writer) Stats() *WriterStats { return &w.stats }

// Done is closed when the writer has stopped.
func (w *Writer) Done() <-chan struct{} { return w.done }

// Close finishes the jobs already queued, stops the writer and releases the
// connection.
func (w *Writer) Close(ctx context.Context) error {
	if !w.closed.CompareAndSwap(false, true) || w.cancel == nil {
		return nil
	}
	w.cancel()
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("close writer: %w", ctx.Err())
	}
	w.stmtMu.Lock()
	var errs []error
	for _, st := range w.stmts {
		errs = append(errs, st.Close())
	}
	w.stmts = nil
	w.stmtMu.Unlock()
	return errors.Join(append(errs, w.conn.Close())...)
}

// Enter and Leave bracket a caller's write, from before its preparation
// (validation) to its outcome, so that the writer knows who is about to
// queue. Do does not need them; they only make groups fuller.
func (w *Writer) Enter() { w.inflight.Add(1) }

// Leave ends what Enter began.
func (w *Writer) Leave() {
	w.inflight.Add(-1)
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Do runs fn inside a group's transaction and returns once the group has
// committed (and, with DurabilityFull, is durable). after, if not nil, runs on
// the writer after the commit, before Do returns, in commit order.
func (w *Writer) Do(ctx context.Context, fn func(ctx context.Context) error, after func()) error {
	wait, err := w.Queue(ctx, fn, after)
	if err != nil {
		return err
	}
	return wait()
}

// Queue is Do in two steps: it queues the job (jobs run in the order they
// were queued) and returns a function that waits for its outcome. A caller
// can queue its next job before the previous one has committed, so that both
// may share a group.
func (w *Writer) Queue(ctx context.Context, fn func(ctx context.Context) error, after func()) (func() error, error) {
	if w.closed.Load() {
		return nil, ErrWriterClosed
	}
	j := &job{fn: fn, after: after, done: make(chan struct{})}
	select {
	case w.jobs <- j:
	case <-w.done:
		return nil, ErrWriterClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Once queued, the job runs: wait for the outcome even if ctx ends, so a
	// caller never reports failure for a write that committed.
	return func() error {
		<-j.done
		return j.err
	}, nil
}

func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case j := <-w.jobs:
			w.group(j, timer)
		case <-ctx.Done():
			// Finish what was queued before Close, then refuse.
			for {
				select {
				case j := <-w.jobs:
					w.group(j, nil)
				default:
					return
				}
			}
		}
	}
}

// group runs first and the jobs that follow it in one transaction and commits
// them. With a nil timer it takes no other job.
func (w *Writer) group(first *job, timer *time.Timer) {
	ctx := context.Background()
	start := time.Now()
	batch := []*job{first}
	if err := w.db.BeforeWrite(ctx, w.conn); err != nil {
		w.fail(batch, err)
		return
	}
	if _, err := w.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		w.fail(batch, err)
		return
	}
	if w.cfg.OnBegin != nil {
		w.cfg.OnBegin()
	}
	broken := w.runJob(first)
	armed := false
fill:
	for !broken && timer != nil && len(batch) < w.cfg.MaxBatch {
		var j *job
		select {
		case j = <-w.jobs:
		default:
			// Wait only for callers already on their way.
			if w.cfg.Linger <= 0 || w.inflight.Load() <= int64(len(batch)) {
				break fill
			}
			if !armed {
				timer.Reset(w.cfg.Linger)
				armed = true
			}
			select {
			case j = <-w.jobs:
			case <-w.kick:
				continue
			case <-timer.C:
				armed = false
				break fill
			}
		}
		batch = append(batch, j)
		broken = w.runJob(j)
	}
	if armed {
		timer.Stop()
	}
	var err error
	if !broken && w.cfg.BeforeCommit != nil {
		err = w.cfg.BeforeCommit(ctx)
	}
	if !broken && err == nil {
		_, err = w.conn.ExecContext(ctx, "COMMIT")
	}
	if broken || err != nil {
		if _, rerr := w.conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
			w.cfg.Logger.Error("rollback failed", "err", rerr)
		}
		if w.cfg.OnRollback != nil {
			w.cfg.OnRollback()
		}
		if broken && len(batch) > 1 {
			for _, j := range batch {
				j.err = nil
				w.group(j, nil)
			}
		} else {
			w.fail(batch, err)
		}
		return
	}
	ok := 0
	for _, j := range batch {
		if j.err == nil {
			ok++
			if j.after != nil {
				j.after()
			}
		}
	}
	w.stats.Commits.Add(1)
	w.stats.Writes.Add(int64(ok))
	w.stats.WriteErrors.Add(int64(len(batch) - ok))
	w.stats.CommitNanos.Add(int64(time.Since(start)))
	if n := int64(len(batch)); n > w.stats.MaxBatch.Load() {
		w.stats.MaxBatch.Store(n)
	}
	if ok > 0 && w.cfg.OnCommit != nil {
		w.cfg.OnCommit()
	}
	for _, j := range batch {
		close(j.done)
	}
}

// runJob runs one job inside the open transaction and reports whether it
// failed after writing, which spoils the transaction.
func (w *Writer) runJob(j *job) bool {
	j.err = j.fn(context.Background())
	return errors.As(j.err, new(*storageError))
}

// fail reports a failed group: jobs without an error of their own get err.
func (w *Writer) fail(batch []*job, err error) {
	w.stats.CommitErrors.Add(1)
	w.cfg.Logger.Error("commit failed", "writes", len(batch), "err", err)
	for _, j := range batch {
		if j.err == nil {
			j.err = fmt.Errorf("commit: %w", err)
		}
		w.stats.WriteErrors.Add(1)
		close(j.done)
	}
}
