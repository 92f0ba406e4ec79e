package pghub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// errWriterClosed is returned by queue after close.
var errWriterClosed = errors.New("writer closed")

// writer commits the jobs of all callers in groups, as sqlitestore.Writer
// does for SQLite: it begins a transaction for the first queued job, runs
// every job that arrives while callers are on their way (for at most
// linger), and commits. A job that fails before writing fails alone; one
// that fails in a statement (spoilt, which aborts a PostgreSQL transaction),
// or a group whose writes fail when they are sent before COMMIT, has the
// group rolled back and replayed one job per transaction.
type writer struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	maxBatch int
	maxTime  time.Duration // a group takes no more jobs once open this long
	linger   time.Duration

	// begin runs at the start of each transaction; beforeCommit just before
	// COMMIT (an error fails the group); rollback after a rollback; commit
	// after a commit with at least one job done.
	begin        func(pgx.Tx)
	beforeCommit func(ctx context.Context) error
	rollback     func()
	commit       func()

	jobs     chan *job
	inflight atomic.Int64
	kick     chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
	closed   atomic.Bool
	stats    sqlitestore.WriterStats
}

type job struct {
	fn    func(ctx context.Context) error
	after func()
	err   error
	done  chan struct{}
}

// spoiltError marks a job's failure that aborted the transaction.
type spoiltError struct{ err error }

func (e *spoiltError) Error() string { return e.err.Error() }
func (e *spoiltError) Unwrap() error { return e.err }

// spoilt wraps a failed statement's error: op names what failed. A nil err
// stays nil.
func spoilt(op string, err error) error {
	if err == nil {
		return nil
	}
	return &spoiltError{fmt.Errorf("%s: %w", op, err)}
}

// maxGroupTime bounds how long a group takes jobs. A job queued behind a
// backlog (a new sequencer deciding the forwarded writes that queued up
// while the tier had none, each counter increment reading its chain of
// versions) commits once the jobs before it in this much time have, not
// with the whole backlog in one transaction of many seconds.
const maxGroupTime = 100 * time.Millisecond

func newWriter(pool *pgxpool.Pool, log *slog.Logger) *writer {
	const maxBatch = 256
	return &writer{pool: pool, log: log, maxBatch: maxBatch, maxTime: maxGroupTime, linger: time.Millisecond, jobs: make(chan *job, maxBatch),
		kick: make(chan struct{}, 1), done: make(chan struct{})}
}

func (w *writer) open() {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(ctx)
}

func (w *writer) close(ctx context.Context) error {
	if !w.closed.CompareAndSwap(false, true) || w.cancel == nil {
		return nil
	}
	w.cancel()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close writer: %w", ctx.Err())
	}
}

func (w *writer) enter() { w.inflight.Add(1) }

func (w *writer) leave() {
	w.inflight.Add(-1)
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *writer) queue(ctx context.Context, fn func(ctx context.Context) error, after func()) (func() error, error) {
	if w.closed.Load() {
		return nil, errWriterClosed
	}
	j := &job{fn: fn, after: after, done: make(chan struct{})}
	select {
	case w.jobs <- j:
	case <-w.done:
		return nil, errWriterClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return func() error {
		<-j.done
		return j.err
	}, nil
}

func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case j := <-w.jobs:
			w.group(j, timer)
		case <-ctx.Done():
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

// group runs first and the jobs that follow it in one transaction. With a
// nil timer it takes no other job.
func (w *writer) group(first *job, timer *time.Timer) { w.groupTry(first, timer, 0) }

// maxRetries bounds how many times a job is run again after PostgreSQL
// aborted its transaction to break a deadlock (or a serialization
// failure): the error the server asks its client to retry.
const maxRetries = 3

// retryable reports whether err is a failure PostgreSQL asks the client to
// retry the transaction after: deadlock_detected or serialization_failure.
// A deadlock needs two writers at once: two hubs changing index
// definitions, or a takeover's old and new sequencer.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// groupTry is group's attempt number try (0 for the first).
func (w *writer) groupTry(first *job, timer *time.Timer, try int) {
	ctx := context.Background()
	start := time.Now()
	batch := []*job{first}
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		w.fail(batch, err)
		return
	}
	w.begin(tx)
	broken := w.runJob(first)
	armed := false
fill:
	for !broken && timer != nil && len(batch) < w.maxBatch && time.Since(start) < w.maxTime {
		var j *job
		select {
		case j = <-w.jobs:
		default:
			if w.linger <= 0 || w.inflight.Load() <= int64(len(batch)) {
				break fill
			}
			if !armed {
				timer.Reset(w.linger)
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
	if !broken {
		// Kept writes are sent here: one that fails spoils the group as a
		// failed statement in a job does.
		err = w.beforeCommit(ctx)
		broken = errors.As(err, new(*spoiltError))
	}
	if !broken && err == nil {
		err = tx.Commit(ctx)
	}
	if broken || err != nil {
		if rerr := tx.Rollback(ctx); rerr != nil && !errors.Is(rerr, pgx.ErrTxClosed) {
			w.log.Error("rollback failed", "err", rerr)
		}
		w.rollback()
		cause := err
		if cause == nil {
			cause = batch[len(batch)-1].err // the job that spoilt the group
		}
		switch {
		case broken && len(batch) > 1:
			for _, j := range batch {
				j.err = nil
				w.group(j, nil)
			}
		case retryable(cause) && try < maxRetries:
			// The other transaction goes on once this one is rolled back;
			// this one runs again a moment later.
			w.log.Warn("transaction aborted by the database; running it again", "writes", len(batch), "try", try+1, "err", cause)
			time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
			for _, j := range batch {
				j.err = nil
			}
			for _, j := range batch {
				w.groupTry(j, nil, try+1)
			}
		default:
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
	if ok > 0 {
		w.commit()
	}
	for _, j := range batch {
		close(j.done)
	}
}

func (w *writer) runJob(j *job) bool {
	j.err = j.fn(context.Background())
	return errors.As(j.err, new(*spoiltError))
}

func (w *writer) fail(batch []*job, err error) {
	w.stats.CommitErrors.Add(1)
	w.log.Error("commit failed", "writes", len(batch), "err", err)
	for _, j := range batch {
		if j.err == nil {
			j.err = fmt.Errorf("commit: %w", err)
		}
		w.stats.WriteErrors.Add(1)
		close(j.done)
	}
}
