package pghub

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/wire"
)

// roundTrips counts what a store sends: each statement sent alone, each
// batch and each COPY is one round trip to the server.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)       {}

// TestStore_PushRoundTrips: a push of a full batch of new documents, and
// the same push again (a retry after a dropped connection), each take a
// few round trips to the database, not one or more per document.
func TestStore_PushRoundTrips(t *testing.T) {
	ctx := context.Background()
	rt := &roundTrips{}
	s := New(Config{URL: pgtest.Database(t)})
	s.tracer = rt
	h := hub.New(hub.Config{Store: s})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if _, _, err := h.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	vs := make([]wire.Version, wire.MaxPushVersions)
	for i := range vs {
		id := fmt.Sprintf("d%d", i)
		vs[i] = wire.Version{Container: "c", ID: id, Op: replica.OpCreate, Version: fmt.Sprintf("n-%d", i+1), TS: 1,
			Body: []byte(fmt.Sprintf(`{"id":%q,"pk":"a","n":%d}`, id, i))}
	}
	// Sent alone, a transaction is BEGIN, one round trip per push, one
	// with the writes, a COPY each of the log and versions rows, and
	// COMMIT; pgx may prepare the statements it has not seen in one more.
	const most = 8
	var first []wire.Outcome
	for _, name := range []string{"push", "retried push"} {
		before := rt.n.Load()
		out, _, err := h.Push(ctx, "n", nil, vs)
		if err != nil {
			t.Fatal(err)
		}
		if got := rt.n.Load() - before; got > most {
			t.Errorf("%s of %d documents: %d round trips, want at most %d", name, len(vs), got, most)
		}
		for i, o := range out {
			if o.Outcome != replica.OutcomeConfirmed || o.LSN != int64(i+1) || (first != nil && o != first[i]) {
				t.Fatalf("%s: outcome %d = %+v, want confirmed at LSN %d as the first time", name, i, o, i+1)
			}
		}
		first = out
	}
	if got := h.Head(); got != int64(len(vs)) {
		t.Fatalf("Head()=%d, want %d", got, len(vs))
	}
}

// TestTx_LockKeptAfterFailedTry: numbers taken after a Try that sent
// something and failed are taken under the heads row lock, which another
// connection then cannot take: the lock is not sent before the ROLLBACK TO
// that would release it.
func TestTx_LockKeptAfterFailedTry(t *testing.T) {
	ctx := context.Background()
	s := New(Config{URL: pgtest.Database(t)})
	if err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	errRefused := errors.New("refused")
	wait, err := s.Queue(ctx, func(ctx context.Context, tx hub.Tx) error {
		err := tx.Try(ctx, func() error {
			if _, _, err := tx.Version(ctx, "c", "a", "n-1"); err != nil { // sends the SAVEPOINT
				return err
			}
			return errRefused
		})
		if !errors.Is(err, errRefused) {
			return fmt.Errorf("Try: %v, want %v", err, errRefused)
		}
		if _, err := tx.NextLSN(ctx); err != nil {
			return err
		}
		_, err = s.pool.Exec(ctx, `SELECT lsn FROM heads WHERE id = 1 FOR UPDATE NOWAIT`)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55P03" { // lock_not_available
			return fmt.Errorf("another connection locking heads after NextLSN: %v, want lock_not_available", err)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}
