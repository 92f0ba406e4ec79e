package pghub

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
)

// TestWriter_GroupTimeBound: of a backlog of slow jobs queued at once, the
// first commits once a group has been open its bound (100 ms; the jobs
// take 300 ms in all), before the last runs, rather than with the whole backlog in one transaction.
func TestWriter_GroupTimeBound(t *testing.T) {
	ctx := context.Background()
	w := openTestWriter(t)
	const jobs, each = 10, 30 * time.Millisecond
	var mu sync.Mutex
	ran, committed := make([]time.Time, jobs), make([]time.Time, jobs)
	waits := make([]func() error, jobs)
	var err error
	for i := range jobs {
		w.enter()
		waits[i], err = w.queue(ctx, func(context.Context) error {
			mu.Lock()
			ran[i] = time.Now()
			mu.Unlock()
			time.Sleep(each)
			return nil
		}, func() {
			mu.Lock()
			committed[i] = time.Now()
			mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, wait := range waits {
		if err := wait(); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		w.leave()
	}
	if !committed[0].Before(ran[jobs-1]) {
		t.Fatalf("job 0 committed %s after job %d ran: want it committed before, its group closed in time",
			committed[0].Sub(ran[jobs-1]), jobs-1)
	}
}

// TestWriter_RetriesADeadlockVictim: a job whose transaction PostgreSQL
// aborted to break a deadlock (SQLSTATE 40P01) runs again in a new one and
// succeeds; a job failing otherwise fails at once.
func TestWriter_RetriesADeadlockVictim(t *testing.T) {
	ctx := context.Background()
	w := openTestWriter(t)
	run := func(fail func(try int) error) (int, error) {
		tries := 0
		w.enter()
		defer w.leave()
		wait, err := w.queue(ctx, func(context.Context) error {
			tries++
			return fail(tries)
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tries, wait()
	}
	deadlock := &pgconn.PgError{Code: "40P01", Message: "deadlock detected"}
	tries, err := run(func(try int) error {
		if try == 1 {
			return spoilt("write", deadlock)
		}
		return nil
	})
	if err != nil || tries != 2 {
		t.Fatalf("deadlock victim: %d runs, err %v; want 2 runs, no error", tries, err)
	}
	tries, err = run(func(int) error { return spoilt("write", deadlock) })
	if err == nil || tries != maxRetries+1 {
		t.Fatalf("always a deadlock victim: %d runs, err %v; want %d runs and the error", tries, err, maxRetries+1)
	}
	tries, err = run(func(int) error { return spoilt("write", &pgconn.PgError{Code: "23505", Message: "duplicate key"}) })
	if err == nil || tries != 1 {
		t.Fatalf("a unique violation: %d runs, err %v; want 1 run and the error", tries, err)
	}
}

// openTestWriter opens a writer on a new database with no hooks of a
// store, closed when the test ends.
func openTestWriter(t *testing.T) *writer {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	w := newWriter(pool, slog.New(slog.DiscardHandler))
	w.begin, w.beforeCommit, w.rollback, w.commit = func(pgx.Tx) {}, func(context.Context) error { return nil }, func() {}, func() {}
	w.open()
	t.Cleanup(func() {
		w.close(ctx)
		pool.Close()
	})
	return w
}
