package pghub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/hub/pghub/pgtest"
	"github.com/edgesync/edgesync/replica/wire"
)

// txTrace records, per connection, the round trips of each transaction
// (from begin to commit or rollback, both counted) and the round trips
// sent outside one, with their statements.
type txTrace struct {
	mu    sync.Mutex
	open  map[*pgx.Conn]*tracedTx
	txs   []*tracedTx // ended transactions
	alone [][]string  // round trips outside a transaction: the statements of each
}

type tracedTx struct {
	trips [][]string
}

func (tt *tracedTx) mentions(s string) bool {
	for _, trip := range tt.trips {
		for _, q := range trip {
			if strings.Contains(q, s) {
				return true
			}
		}
	}
	return false
}

func (r *txTrace) trip(c *pgx.Conn, sqls []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open == nil {
		r.open = map[*pgx.Conn]*tracedTx{}
	}
	first := strings.ToLower(strings.TrimSpace(sqls[0]))
	tx := r.open[c]
	if tx == nil && first == "begin" {
		tx = &tracedTx{}
		r.open[c] = tx
	}
	if tx == nil {
		r.alone = append(r.alone, sqls)
		return
	}
	tx.trips = append(tx.trips, sqls)
	if last := strings.ToLower(strings.TrimSpace(sqls[len(sqls)-1])); last == "commit" || last == "rollback" {
		delete(r.open, c)
		r.txs = append(r.txs, tx)
	}
}

func (r *txTrace) TraceQueryStart(ctx context.Context, c *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.trip(c, []string{d.SQL})
	return ctx
}
func (r *txTrace) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *txTrace) TraceBatchStart(ctx context.Context, c *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	var sqls []string
	for _, q := range d.Batch.QueuedQueries {
		sqls = append(sqls, q.SQL)
	}
	if len(sqls) > 0 {
		r.trip(c, sqls)
	}
	return ctx
}
func (r *txTrace) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *txTrace) TraceCopyFromStart(ctx context.Context, c *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	r.trip(c, []string{"COPY " + d.TableName.Sanitize()})
	return ctx
}
func (r *txTrace) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}
func (r *txTrace) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)       {}

// decisions returns the ended transactions that decided a forwarded
// decision.
func (r *txTrace) decisions() []*tracedTx {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracedTx
	for _, tx := range r.txs {
		if tx.mentions("UPDATE forwarded SET result") {
			out = append(out, tx)
		}
	}
	return out
}

// with returns the ended transactions that sent s.
func (r *txTrace) with(s string) []*tracedTx {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracedTx
	for _, tx := range r.txs {
		if tx.mentions(s) {
			out = append(out, tx)
		}
	}
	return out
}

// forwardedTrips counts the round trips outside a transaction, and the
// transactions, that name the forwarded table.
func (r *txTrace) forwardedTrips() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, trip := range r.alone {
		if (&tracedTx{trips: [][]string{trip}}).mentions("forwarded") {
			n++
		}
	}
	for _, tx := range append(r.txs, func() []*tracedTx {
		var open []*tracedTx
		for _, tx := range r.open {
			open = append(open, tx)
		}
		return open
	}()...) {
		if tx.mentions("forwarded") {
			n += len(tx.trips)
		}
	}
	return n
}

func openTracedHub(t *testing.T, url, name string, tr *txTrace) *hub.Hub {
	t.Helper()
	s := New(Config{URL: url, MaxConns: 4})
	s.tracer = tr
	tier := NewTier(TierConfig{Store: s, Name: name, Address: "127.0.0.1:0", LeaseTimeout: 2 * time.Second, Poll: 200 * time.Millisecond})
	h := hub.New(hub.Config{Store: s, Name: name, Tier: tier})
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// TestTier_ForwardedPushRoundTrips: a push that reaches a hub that does
// not sequence costs the sequencer one transaction of BEGIN, one round
// trip that claims it and reads what it needs, a COPY each of the log and
// versions rows, one that sends the other writes, the result and the lease
// check, and COMMIT; and the forwarding hub one
// round trip to queue it, which does not wait for a WAL flush, and one to
// take the result, once it is decided.
func TestTier_ForwardedPushRoundTrips(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	seqTrace, fwdTrace := &txTrace{}, &txTrace{}
	a := openTracedHub(t, url, "a", seqTrace)
	b := openTracedHub(t, url, "b", fwdTrace)
	if !a.Sequencing() || b.Sequencing() {
		t.Fatalf("a sequences %v, b %v: want a only", a.Sequencing(), b.Sequencing())
	}
	if _, _, err := a.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	push := func(round int) []wire.Version {
		vs := make([]wire.Version, wire.MaxPushVersions)
		for i := range vs {
			id := fmt.Sprintf("d%d-%d", round, i)
			vs[i] = wire.Version{Container: "c", ID: id, Op: replica.OpCreate, Version: fmt.Sprintf("n-%d", round*len(vs)+i+1), TS: 1,
				Body: []byte(fmt.Sprintf(`{"id":%q,"pk":"a","n":%d}`, id, i))}
		}
		return vs
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The first push lets pgx learn the statements; the second is counted.
	for round := range 2 {
		before := len(seqTrace.decisions())
		wait, err := b.QueuePush(ctx, "n", nil, push(round))
		if err != nil {
			t.Fatal(err)
		}
		// Wait for the decision before reading it, so that the forwarding
		// hub's round trips to read the result are counted once.
		deadline := time.Now().Add(20 * time.Second)
		for decided := false; !decided; {
			if time.Now().After(deadline) {
				t.Fatal("the sequencer decided no forwarded push within 20s")
			}
			time.Sleep(10 * time.Millisecond)
			if err := conn.QueryRow(ctx, `SELECT count(*) = 1 FROM forwarded WHERE result IS NOT NULL`).Scan(&decided); err != nil {
				t.Fatal(err)
			}
		}
		fwdBefore := fwdTrace.forwardedTrips()
		out, _, err := wait()
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range out {
			if o.Outcome != replica.OutcomeConfirmed {
				t.Fatalf("outcome %d = %+v, want confirmed", i, o)
			}
		}
		if round == 0 {
			continue
		}
		ds := seqTrace.decisions()
		if got := len(ds) - before; got != 1 {
			t.Fatalf("the push was decided in %d transactions, want 1", got)
		}
		const most = 6 // and a COPY each of the log and versions rows
		if got := len(ds[len(ds)-1].trips); got > most {
			t.Errorf("the sequencer's transaction that decided a forwarded push: %d round trips, want at most %d:\n%s", got, most, ds[len(ds)-1].trips)
		}
		if got := fwdTrace.forwardedTrips() - fwdBefore; got != 1 {
			t.Errorf("reading a decided forwarded push's result: %d round trips, want 1", got)
		}
		queued := fwdTrace.with("INSERT INTO forwarded")
		if len(queued) != 2 {
			t.Fatalf("the forwarding hub queued %d pushes, want 2", len(queued))
		}
		if q := queued[1]; len(q.trips) != 1 || !q.mentions("SET LOCAL synchronous_commit = off") {
			t.Errorf("queueing a push: %d round trips, want 1 that does not wait for a WAL flush:\n%s", len(q.trips), q.trips)
		}
	}
}

// TestTier_ClaimOfDecidedFails: claiming a forwarded decision decided
// before fails the claiming job's first read with hub.ErrDecided; a job
// queued beside it still commits.
func TestTier_ClaimOfDecidedFails(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	s := New(Config{URL: url, MaxConns: 4})
	tier := NewTier(TierConfig{Store: s, Name: "a", Address: "127.0.0.1:0", LeaseTimeout: 2 * time.Second, Poll: 200 * time.Millisecond})
	h := hub.New(hub.Config{Store: s, Name: "a", Tier: tier})
	if err := h.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	var seq int64
	if err := s.pool.QueryRow(ctx, `INSERT INTO forwarded (hub, kind, payload, result, decided_at) VALUES ('b', 'push', '', 'done', clock_timestamp()) RETURNING seq`).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	s.Enter() // the two jobs go in one group
	s.Enter()
	claimed, err := s.Queue(ctx, func(ctx context.Context, tx hub.Tx) error {
		if err := tier.Claim(ctx, tx, seq); err != nil {
			return err
		}
		return tx.Prefetch(ctx, []hub.ItemKey{{Container: "c", ID: "x"}}, []string{"n-1"}, "")
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Queue(ctx, func(ctx context.Context, tx hub.Tx) error {
		return tx.PutContainer(ctx, "c", "/pk", `{"mode":"lww"}`, "", 1)
	}, nil)
	s.Leave()
	s.Leave()
	if err != nil {
		t.Fatal(err)
	}
	if err := claimed(); !errors.Is(err, hub.ErrDecided) {
		t.Errorf("job claiming a decided decision: %v, want %v", err, hub.ErrDecided)
	}
	if err := other(); err != nil {
		t.Errorf("job beside it: %v, want nil", err)
	}
	cs, err := s.Containers(ctx)
	if err != nil || len(cs) != 1 || cs[0].Name != "c" {
		t.Errorf("containers after the job beside it: %v, %v, want c", cs, err)
	}
}

// TestTier_ForwardedQueueLostInACrash: a crash of the database server
// empties the forwarded queue (an unlogged table), and may hand the seq of
// a record it lost out again (the sequence's last advance need not have
// reached the disk). A hub waiting for the result of a push it forwarded
// then fails the push: it never reads, under the same seq, the result of
// a push queued after the crash. Pushed again, as the edge does with what
// got no outcome, the push gets the outcomes it got before the crash,
// each version decided once.
func TestTier_ForwardedQueueLostInACrash(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	a := openTracedHub(t, url, "a", &txTrace{})
	b := openTracedHub(t, url, "b", &txTrace{})
	if !a.Sequencing() || b.Sequencing() {
		t.Fatalf("a sequences %v, b %v: want a only", a.Sequencing(), b.Sequencing())
	}
	if _, _, err := a.PutContainer(ctx, replica.Container{Name: "c", PartitionKey: "/pk"}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	push := func(round int) []wire.Version {
		vs := make([]wire.Version, n)
		for i := range vs {
			id := fmt.Sprintf("d%d-%d", round, i)
			vs[i] = wire.Version{Container: "c", ID: id, Op: replica.OpCreate, Version: fmt.Sprintf("n-%d", round*n+i+1), TS: 1,
				Body: []byte(fmt.Sprintf(`{"id":%q,"pk":"a","n":%d}`, id, i))}
		}
		return vs
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	decided := func() int64 {
		t.Helper()
		var seq int64
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			err := conn.QueryRow(ctx, `SELECT seq FROM forwarded WHERE result IS NOT NULL`).Scan(&seq)
			if err == nil {
				return seq
			}
			if !errors.Is(err, pgx.ErrNoRows) || time.Now().After(deadline) {
				t.Fatalf("no forwarded push decided within 20s: %v", err)
			}
		}
	}
	first, second := push(0), push(1)
	wait0, err := b.QueuePush(ctx, "n", nil, first)
	if err != nil {
		t.Fatal(err)
	}
	seq := decided()
	// The crash, as the server's recovery leaves the queue: empty, and the
	// lost record's seq handed out next.
	if _, err := conn.Exec(ctx, `TRUNCATE forwarded`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT setval(pg_get_serial_sequence('forwarded', 'seq'), $1, false)`, seq); err != nil {
		t.Fatal(err)
	}
	wait1, err := b.QueuePush(ctx, "n", nil, second)
	if err != nil {
		t.Fatal(err)
	}
	if got := decided(); got != seq {
		t.Fatalf("the push queued after the crash got seq %d, want %d (the lost record's)", got, seq)
	}
	if out, _, err := wait0(); !errors.Is(err, errForwardedGone) {
		t.Fatalf("the push forwarded before the crash: %d outcomes (%+v), %v; want %v", len(out), out, err, errForwardedGone)
	}
	out1, _, err := wait1()
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out1 {
		if o.Version != second[i].Version || o.Outcome != replica.OutcomeConfirmed {
			t.Fatalf("outcome %d of the push after the crash = %+v, want %s confirmed", i, o, second[i].Version)
		}
	}
	wait0, err = b.QueuePush(ctx, "n", nil, first)
	if err != nil {
		t.Fatal(err)
	}
	out0, _, err := wait0()
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range out0 {
		var lsn int64
		if err := conn.QueryRow(ctx, `SELECT lsn FROM log WHERE version = $1`, first[i].Version).Scan(&lsn); err != nil {
			t.Fatalf("version %s in the log: %v", first[i].Version, err)
		}
		if o.Version != first[i].Version || o.Outcome != replica.OutcomeConfirmed || o.LSN != lsn {
			t.Fatalf("outcome %d of the push made again = %+v, want %s confirmed at %d", i, o, first[i].Version, lsn)
		}
	}
	var logged int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM log`).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	if logged != 2*n {
		t.Fatalf("the log holds %d records, want %d: each version decided once", logged, 2*n)
	}
}

// TestTier_ForwardedQueueUnlogged: the forwarded queue writes no WAL (it
// lives for milliseconds, and a crash loses nothing a hub acknowledged),
// its sequence does, so that seqs keep growing after a crash.
func TestTier_ForwardedQueueUnlogged(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	s := New(Config{URL: url, MaxConns: 2})
	if err := s.Open(ctx, func(hub.Heads) {}); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	for _, tc := range []struct {
		name, query, want string
	}{
		{"table", `SELECT relpersistence::text FROM pg_class WHERE oid = 'forwarded'::regclass`, "u"},
		{"sequence", `SELECT relpersistence::text FROM pg_class WHERE oid = pg_get_serial_sequence('forwarded', 'seq')::regclass`, "p"},
	} {
		var got string
		if err := s.pool.QueryRow(ctx, tc.query).Scan(&got); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestTier_PushQueued: a forwarded push counts as queued for a node's
// version after its first counter until it is decided, as the writer's
// transaction sees it (one it finished itself is not queued); other
// nodes' pushes, later ones, other decisions and the one excepted do not
// count.
func TestTier_PushQueued(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Database(t)
	s := New(Config{URL: url, MaxConns: 4})
	if err := s.Open(ctx, func(hub.Heads) {}); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	// The tier's only hub, holding the lease, with no hub deciding the queue.
	tier := NewTier(TierConfig{Store: s, Name: "a", Address: "127.0.0.1:0"})
	if err := tier.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer tier.Close(ctx)
	forward := func(kind, node string, first int64) int64 {
		t.Helper()
		if _, err := tier.Forward(ctx, kind, []byte("x"), node, first); err != nil {
			t.Fatal(err)
		}
		var seq int64
		if err := s.pool.QueryRow(ctx, `SELECT max(seq) FROM forwarded`).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	queued := func(node string, before, except int64, finish ...int64) bool {
		t.Helper()
		var got bool
		wait, err := s.Queue(ctx, func(ctx context.Context, tx hub.Tx) error {
			for _, seq := range finish {
				if err := tier.Finish(ctx, tx, seq, []byte("done")); err != nil {
					return err
				}
			}
			var err error
			got, err = tier.PushQueued(ctx, tx, node, before, except)
			return err
		}, nil)
		if err == nil {
			err = wait()
		}
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	forward(hub.ForwardedPush, "m", 1)
	forward("write", "", 0)
	seq := forward(hub.ForwardedPush, "n", 5)
	for _, c := range []struct {
		name   string
		node   string
		before int64
		except int64
		want   bool
	}{
		{"an earlier version of the node", "n", 6, 0, true},
		{"the push starts at the version", "n", 5, 0, false},
		{"another node", "o", 6, 0, false},
		{"the push excepted", "n", 6, seq, false},
	} {
		if got := queued(c.node, c.before, c.except); got != c.want {
			t.Errorf("%s: PushQueued(%s, %d, %d)=%v, want %v", c.name, c.node, c.before, c.except, got, c.want)
		}
	}
	if queued("n", 6, 0, seq) {
		t.Errorf("PushQueued after the transaction finished the push: true, want false")
	}
}
