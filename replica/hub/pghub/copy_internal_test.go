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

// TestTx_CopiedRowsFailingSpoilGroup: a version id stored before, which
// the transaction does not know of, among versions enough to be sent by
// COPY fails the COPY, which spoils the group as a failed statement does:
// the writer replays it one job per transaction, where the job that
// stores that id fails alone and leaves nothing, and the job beside it
// commits.
func TestTx_CopiedRowsFailingSpoilGroup(t *testing.T) {
	ctx := context.Background()
	s := New(Config{URL: pgtest.Database(t)})
	if err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	store := func(ctx context.Context, tx hub.Tx, prefix string, n int) error {
		for i := range n {
			v := hub.VersionRecord{Version: fmt.Sprintf("%s-%d", prefix, i), Container: "c", ID: fmt.Sprintf("%s%d", prefix, i), PK: "a",
				Op: replica.OpCreate, Origin: "n", TS: 1, Body: []byte(`{}`), Outcome: replica.OutcomeConfirmed}
			if err := tx.InsertVersion(ctx, v); err != nil {
				return err
			}
		}
		return nil
	}
	queue := func(fn func(ctx context.Context, tx hub.Tx) error) func() error {
		wait, err := s.Queue(ctx, fn, nil)
		if err != nil {
			t.Fatal(err)
		}
		return wait
	}
	if err := queue(func(ctx context.Context, tx hub.Tx) error { return store(ctx, tx, "old", 1) })(); err != nil {
		t.Fatal(err)
	}
	// The second job is queued while the first runs: they share a group.
	ready := make(chan struct{})
	waitOld := queue(func(ctx context.Context, tx hub.Tx) error {
		<-ready
		return store(ctx, tx, "old", copyMinRows)
	})
	waitNew := queue(func(ctx context.Context, tx hub.Tx) error { return store(ctx, tx, "new", copyMinRows) })
	close(ready)
	var pgErr *pgconn.PgError
	if err := waitOld(); !errors.As(err, &pgErr) || pgErr.Code != "23505" { // unique_violation
		t.Errorf("storing %d versions, one stored before: %v, want a unique violation", copyMinRows, err)
	}
	if err := waitNew(); err != nil {
		t.Errorf("storing %d new versions beside them: %v, want nil", copyMinRows, err)
	}
	var old, fresh int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE version LIKE 'old-%'), count(*) FILTER (WHERE version LIKE 'new-%') FROM versions`).
		Scan(&old, &fresh); err != nil {
		t.Fatal(err)
	}
	if old != 1 || fresh != copyMinRows {
		t.Fatalf("versions stored: %d old, %d new; want 1 and %d", old, fresh, copyMinRows)
	}
}

// TestStore_CopiedVersionsIndexed: documents pushed in a number sent by
// COPY are indexed by the triggers on versions and items as those sent by
// INSERT are (COPY fires statement triggers with transition tables).
func TestStore_CopiedVersionsIndexed(t *testing.T) {
	ctx := context.Background()
	s := New(Config{URL: pgtest.Database(t)})
	copies := &copyCount{}
	s.tracer = copies
	h := hub.New(hub.Config{Store: s})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	c := replica.Container{Name: "c", PartitionKey: "/pk", IndexingPolicy: &replica.IndexingPolicy{Paths: []string{"/n"}}}
	if _, _, err := h.PutContainer(ctx, c); err != nil {
		t.Fatal(err)
	}
	vs := make([]wire.Version, 2*copyMinRows)
	for i := range vs {
		id := fmt.Sprintf("d%d", i)
		vs[i] = wire.Version{Container: "c", ID: id, Op: replica.OpCreate, Version: fmt.Sprintf("n-%d", i+1), TS: 1,
			Body: []byte(fmt.Sprintf(`{"id":%q,"pk":"a","n":%d}`, id, i))}
	}
	if _, _, err := h.Push(ctx, "n", nil, vs); err != nil {
		t.Fatal(err)
	}
	if copies.n.Load() == 0 {
		t.Fatalf("a push of %d documents sent no COPY", len(vs))
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM idx WHERE container = 'c' AND path = '/n' AND t = 3`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(vs) {
		t.Fatalf("index entries of /n: %d, want %d", n, len(vs))
	}
}

// copyCount counts the COPYs a store sends.
type copyCount struct{ n atomic.Int64 }

func (c *copyCount) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (c *copyCount) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *copyCount) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	c.n.Add(1)
	return ctx
}
func (c *copyCount) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
