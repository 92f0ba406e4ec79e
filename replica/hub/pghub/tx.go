package pghub

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
)

// errVersionStored is the failure of InsertVersion for a version id the
// transaction knows is stored, found without a round trip.
var errVersionStored = errors.New("version id is stored")

// tx is the transaction of the writer's open group.
//
// Writes are not sent one by one: they are kept (see buffer.go) and sent
// together, the rows of each table as one multi-row INSERT, in one round
// trip with the next read, or before COMMIT; many log and versions rows go
// by COPY just before that round trip, one more each (copy.go). A read that the transaction
// can answer itself (a prefetched or written item head or version id, see
// Prefetch) sends nothing. So a write method cannot fail; a failed write
// fails the read or the commit that sent it, and the writer replays the
// group one job per transaction, where it fails its own job alone.
//
// Every failed statement aborts a PostgreSQL transaction, so every error
// from the database is spoilt, and sticks: the transaction sends nothing
// more. locked says the heads row is locked and lsn, cseq, cid hold the
// last numbers handed out.
type tx struct {
	s              *Store
	pg             pgx.Tx
	locked         bool
	lsn, cseq, cid int64
	took           bool    // numbers were handed out: the heads row is updated at commit
	forwarded      bool    // a forwarded decision was finished
	decided        []int64 // the seqs of the forwarded decisions finished, named in the commit's notification
	defined        bool    // a container definition or resolver was stored: other hubs are told at commit
	err            error   // the spoilt error that aborted the transaction
	segs           []*segment
	cache          cache
	order          pushOrderEntry // the push order Prefetch read, until read or stored
}

// pushOrderEntry is a node's push order as Prefetch read it.
type pushOrderEntry struct {
	node string
	o    hub.PushOrder
	ok   bool
}

var _ hub.Tx = (*tx)(nil)

func (t *tx) begin(pg pgx.Tx) { t.reset(); t.pg = pg }

func (t *tx) reset() {
	t.pg, t.locked, t.took, t.forwarded, t.defined, t.err = nil, false, false, false, false, nil
	t.decided = t.decided[:0]
	t.segs = append(t.segs[:0], newSegment())
	t.cache.clear()
	t.order = pushOrderEntry{}
}

// top is the segment writes go to: the innermost Try's.
func (t *tx) top() *segment { return t.segs[len(t.segs)-1] }

// nested says a Try is open: cache changes must be undoable.
func (t *tx) nested() bool { return len(t.segs) > 1 }

const lockQuery = `SELECT lsn, cseq, cid FROM heads WHERE id = 1 FOR UPDATE`

// lockTables takes, before the heads row, the table locks that writing
// items and versions takes, in the order idx_triggers_follow_paths takes
// its own (items, then versions). A transaction that takes numbers writes
// both tables, the versions rows by COPY a round trip before the items
// rows: without it, a definition that makes or drops the index triggers
// could lock items between the two and then wait for versions, and the
// two transactions would deadlock.
const lockTables = `LOCK TABLE items, versions IN ROW EXCLUSIVE MODE`

// flush sends every kept write (with the SAVEPOINT of each open Try not
// sent yet), then, with lock, locks the heads row and reads the committed
// numbers, then the reads that reads queues, in one round trip.
func (t *tx) flush(ctx context.Context, lock bool, reads func(b *pgx.Batch)) error {
	if t.err != nil {
		return t.err
	}
	var o sends
	for i, seg := range t.segs {
		if i > 0 && !seg.emitted {
			o.batch().Queue("SAVEPOINT " + savepointName(i))
			seg.emitted = true
		}
		seg.queue(&o)
	}
	lock = lock && !t.locked
	if lock {
		// After the kept writes (a ROLLBACK TO among them would release
		// it), inside the open savepoints: a Try that fails restores
		// locked as it was when it began.
		o.batch().Queue(lockTables)
		o.batch().Queue(lockQuery).QueryRow(func(r pgx.Row) error { return r.Scan(&t.lsn, &t.cseq, &t.cid) })
	}
	if reads != nil {
		reads(o.batch())
	}
	for _, st := range o.steps {
		var err error
		switch {
		case st.b == nil:
			err = st.copy.send(ctx, t.pg.Conn(), t.s.tracer, st.rows)
		case st.b.Len() > 0:
			err = t.pg.SendBatch(ctx, st.b).Close()
		}
		if err != nil {
			t.err = spoilt("send", err)
			return t.err
		}
	}
	if lock {
		t.locked = true
	}
	return nil
}

func savepointName(depth int) string { return "try" + strconv.Itoa(depth) }

// lock locks the heads row for the rest of the transaction and reads the
// newest committed numbers.
func (t *tx) lock(ctx context.Context) error {
	if t.locked {
		return nil
	}
	return t.flush(ctx, true, nil)
}

// beforeCommit sends what is kept and stores the numbers the transaction
// took. In a tier, a transaction that decided anything (took numbers or
// finished a forwarded decision) is fenced by the lease (Tier.fence), in
// the round trip that sends its writes, before it commits. A statement that must hold for
// the commit to go ahead goes with the writes (segment.check): its failure
// spoils the group.
func (t *tx) beforeCommit(ctx context.Context) error {
	if t.took {
		t.top().check(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("%d heads rows updated, want 1", tag.RowsAffected())
			}
			return nil
		}, `UPDATE heads SET lsn = $1, cseq = $2, cid = $3 WHERE id = 1`, t.lsn, t.cseq, t.cid)
	}
	var fenced func() error
	var reads func(b *pgx.Batch)
	if tier := t.s.tier; tier != nil && (t.took || t.forwarded) {
		reads = func(b *pgx.Batch) { fenced = tier.fence(b, t.decided) }
	}
	if err := t.flush(ctx, false, reads); err != nil {
		return err
	}
	if fenced != nil {
		if err := fenced(); err != nil {
			return err
		}
	}
	if t.s.tier != nil && t.defined && !t.took && !t.forwarded {
		if _, err := t.pg.Exec(ctx, `SELECT pg_notify($1, 'defined')`, notifyChannel); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	return nil
}

// NextLSN hands out the next log position.
func (t *tx) NextLSN(ctx context.Context) (int64, error) {
	if err := t.lock(ctx); err != nil {
		return 0, err
	}
	t.lsn++
	t.took = true
	return t.lsn, nil
}

// Try runs fn in a segment of its own, which a SAVEPOINT opens only if
// something is sent while fn runs. If fn fails, its kept writes are
// dropped, the cache is restored, and a sent savepoint is rolled back to
// (sent with what follows).
func (t *tx) Try(ctx context.Context, fn func() error) error {
	seg := newSegment()
	seg.locked, seg.lsn, seg.cseq, seg.cid, seg.took = t.locked, t.lsn, t.cseq, t.cid, t.took
	forwarded := t.forwarded
	t.segs = append(t.segs, seg)
	depth := len(t.segs) - 1
	err := fn()
	t.segs = t.segs[:depth]
	parent := t.top()
	if err == nil {
		parent.absorb(seg, t.nested())
		if seg.emitted {
			parent.stmt("RELEASE SAVEPOINT " + savepointName(depth))
		}
		return nil
	}
	// The cache is as it was when fn began, as is storage: every cache
	// change inside the segment, read or write, is undone. A lock taken
	// inside the savepoint is released with it; one taken before (locked
	// then) is kept, with the numbers taken before.
	t.locked, t.lsn, t.cseq, t.cid, t.took, t.forwarded = seg.locked, seg.lsn, seg.cseq, seg.cid, seg.took, forwarded
	t.cache.undo(seg.undo)
	if !seg.emitted {
		return err
	}
	name := savepointName(depth)
	parent.stmt("ROLLBACK TO SAVEPOINT " + name)
	parent.stmt("RELEASE SAVEPOINT " + name)
	return err
}

// row reads one row after sending what is kept; found is false for none.
func (t *tx) row(ctx context.Context, op, q string, args []any, dst ...any) (bool, error) {
	found := false
	err := t.flush(ctx, false, func(b *pgx.Batch) {
		b.Queue(q, args...).QueryRow(func(r pgx.Row) error {
			err := r.Scan(dst...)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			found = err == nil
			return err
		})
	})
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	return found, nil
}

// execNow runs a statement after sending what is kept and returns the rows
// it changed.
func (t *tx) execNow(ctx context.Context, op, q string, args ...any) (int64, error) {
	var n int64
	err := t.flush(ctx, false, func(b *pgx.Batch) {
		b.Queue(q, args...).Exec(func(tag pgconn.CommandTag) error { n = tag.RowsAffected(); return nil })
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

// Prefetch reads the heads of items, the outcomes of versions and the
// node's push order into the cache, with what is kept and (if not held
// yet) the heads row lock, in one round trip. Taken after the lock, what it reads stays true for the
// rest of the transaction but for its own writes, which the cache follows.
func (t *tx) Prefetch(ctx context.Context, items []hub.ItemKey, versions []string, node string) error {
	if !t.nested() {
		t.cache.clear() // bounded by what one job names
	}
	t.order = pushOrderEntry{}
	containers, ids := make([]string, len(items)), make([]string, len(items))
	for i, k := range items {
		containers[i], ids[i] = k.Container, k.ID
	}
	seg, nested := t.top(), t.nested()
	return t.flush(ctx, true, func(b *pgx.Batch) {
		if node != "" {
			b.Queue(`SELECT held, held_at FROM push_order WHERE node_id = $1`, node).QueryRow(func(r pgx.Row) error {
				e := pushOrderEntry{node: node, ok: true}
				if err := r.Scan(&e.o.Held, &e.o.HeldAt); err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				t.order = e
				return nil
			})
		}
		b.Queue(`SELECT i.container, i.id, i.pk, i.version, i.lsn, i.deleted FROM items i
			JOIN unnest($1::text[], $2::text[]) AS k(container, id) ON i.container = k.container AND i.id = k.id`, containers, ids).
			Query(func(rows pgx.Rows) error {
				found := make(map[hub.ItemKey]hub.ItemHead, len(items))
				for rows.Next() {
					var k hub.ItemKey
					var hd hub.ItemHead
					if err := rows.Scan(&k.Container, &k.ID, &hd.PK, &hd.Version, &hd.LSN, &hd.Deleted); err != nil {
						return err
					}
					found[k] = hd
				}
				for _, k := range items {
					hd, ok := found[k]
					t.cache.setHead(seg, nested, k, headEntry{hd: hd, found: ok})
				}
				return rows.Err()
			})
		b.Queue(`SELECT v.version, v.outcome, v.lsn, v.reason, v.conflict_id, coalesce(l.crts, 0) FROM versions v
			LEFT JOIN log l ON l.lsn = v.lsn AND v.outcome = 'confirmed' WHERE v.version = ANY($1)`, versions).
			Query(func(rows pgx.Rows) error {
				found := make(map[string]hub.PriorOutcome, len(versions))
				for rows.Next() {
					var v string
					var p hub.PriorOutcome
					if err := rows.Scan(&v, &p.Outcome, &p.LSN, &p.Reason, &p.ConflictID, &p.CRTS); err != nil {
						return err
					}
					found[v] = p
				}
				for _, v := range versions {
					p, ok := found[v]
					t.cache.setOutcome(seg, nested, v, outcomeEntry{p: p, found: ok, exact: ok})
				}
				return rows.Err()
			})
	})
}

// ContainerPK returns a container's partition key path.
func (t *tx) ContainerPK(ctx context.Context, name string) (string, bool, error) {
	var pk string
	found, err := t.row(ctx, "read container", `SELECT pk_path FROM containers WHERE name = $1`, []any{name}, &pk)
	return pk, found, err
}

// PutContainer stores a definition.
func (t *tx) PutContainer(ctx context.Context, name, pk, policy, indexing string, at int64) error {
	t.defined = true
	t.top().stmt(`INSERT INTO containers (name, pk_path, policy, indexing, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, indexing = excluded.indexing, updated_at = excluded.updated_at`, name, pk, policy, indexing, at)
	return t.setIndexPaths(name, indexing)
}

// Outcome returns the outcome a version got when it was pushed.
func (t *tx) Outcome(ctx context.Context, version string) (hub.PriorOutcome, bool, error) {
	if e, ok := t.cache.outcomes[version]; ok && (!e.found || e.exact) {
		return e.p, e.found, nil
	}
	var p hub.PriorOutcome
	found, err := t.row(ctx, "read version", `SELECT v.outcome, v.lsn, v.reason, v.conflict_id, coalesce(l.crts, 0) FROM versions v
		LEFT JOIN log l ON l.lsn = v.lsn AND v.outcome = 'confirmed' WHERE v.version = $1`, []any{version},
		&p.Outcome, &p.LSN, &p.Reason, &p.ConflictID, &p.CRTS)
	return p, found, err
}

// Head returns an item's current version.
func (t *tx) Head(ctx context.Context, container, id string) (hub.ItemHead, bool, error) {
	k := hub.ItemKey{Container: container, ID: id}
	if e, ok := t.cache.heads[k]; ok {
		return e.hd, e.found, nil
	}
	var hd hub.ItemHead
	found, err := t.row(ctx, "read item", `SELECT pk, version, lsn, deleted FROM items WHERE container = $1 AND id = $2`, []any{container, id},
		&hd.PK, &hd.Version, &hd.LSN, &hd.Deleted)
	if err == nil {
		t.cache.setHead(t.top(), t.nested(), k, headEntry{hd: hd, found: found})
	}
	return hd, found, err
}

// Version returns a version of the item (container, id).
func (t *tx) Version(ctx context.Context, container, id, version string) (hub.StoredVersion, bool, error) {
	var v hub.StoredVersion
	found, err := t.row(ctx, "read version", `SELECT body, op, origin, ts, clamped_ts FROM versions WHERE version = $1 AND container = $2 AND id = $3`,
		[]any{version, container, id}, &v.Body, &v.Op, &v.Origin, &v.TS, &v.ClampedTS)
	return v, found, err
}

// VersionBase is the version a version was written over.
func (t *tx) VersionBase(ctx context.Context, version string) (string, error) {
	var base string
	_, err := t.row(ctx, "read version base", `SELECT base FROM versions WHERE version = $1`, []any{version}, &base)
	return base, err
}

// CreateItem makes a new item current at the next LSN unless it exists.
// An item whose head the transaction knows costs no round trip.
func (t *tx) CreateItem(ctx context.Context, container, id, pk, version string) (int64, bool, error) {
	if err := t.lock(ctx); err != nil {
		return 0, false, err
	}
	k := hub.ItemKey{Container: container, ID: id}
	e, known := t.cache.heads[k]
	if known && e.found {
		return 0, false, nil
	}
	lsn := t.lsn + 1
	if !known {
		n, err := t.execNow(ctx, "store item", `INSERT INTO items (container, id, pk, version, lsn, deleted) VALUES ($1, $2, $3, $4, $5, false)
			ON CONFLICT (container, id) DO NOTHING`, container, id, pk, version, lsn)
		if err != nil || n == 0 {
			return 0, false, err
		}
	} else {
		t.top().item(itemRow{container: container, id: id, pk: pk, version: version, lsn: lsn})
	}
	t.cache.setHead(t.top(), t.nested(), k, headEntry{hd: hub.ItemHead{PK: pk, Version: version, LSN: lsn}, found: true})
	t.lsn, t.took = lsn, true
	return lsn, true, nil
}

// AppendLog appends a confirmed version to the log.
func (t *tx) AppendLog(ctx context.Context, e hub.LogRecord) error {
	t.top().log(e)
	return nil
}

// SetItem makes e's version the item's current one.
func (t *tx) SetItem(ctx context.Context, e hub.LogRecord, samePK bool) error {
	t.top().item(itemRow{container: e.Container, id: e.ID, pk: e.PK, version: e.Version, lsn: e.LSN, deleted: e.Deleted})
	t.cache.setHead(t.top(), t.nested(), hub.ItemKey{Container: e.Container, ID: e.ID},
		headEntry{hd: hub.ItemHead{PK: e.PK, Version: e.Version, LSN: e.LSN, Deleted: e.Deleted}, found: true})
	return nil
}

// InsertVersion stores a version. A version id the transaction knows is
// stored fails at once; any other that is stored fails where it is sent.
func (t *tx) InsertVersion(ctx context.Context, v hub.VersionRecord) error {
	if e, ok := t.cache.outcomes[v.Version]; ok && e.found {
		return spoilt("store version", fmt.Errorf("%w: %s", errVersionStored, v.Version))
	}
	t.top().version(v)
	t.cache.setOutcome(t.top(), t.nested(), v.Version, outcomeEntry{found: true})
	return nil
}

// SetOutcome records the outcome a stored version has now.
func (t *tx) SetOutcome(ctx context.Context, version, outcome string, lsn int64, reason string) error {
	t.top().stmt(`UPDATE versions SET outcome = $1, lsn = $2, reason = $3 WHERE version = $4`, outcome, lsn, reason, version)
	if e, ok := t.cache.outcomes[version]; ok && e.found {
		t.cache.setOutcome(t.top(), t.nested(), version, outcomeEntry{found: true})
	}
	return nil
}

// RecordClamp records a clamped _ts.
func (t *tx) RecordClamp(ctx context.Context, nodeID, version string, lsn, at int64) error {
	seg := t.top()
	seg.stmt(`UPDATE versions SET clamped_ts = $1 WHERE version = $2`, at, version)
	if lsn > 0 {
		seg.stmt(`UPDATE log SET clamped_ts = $1 WHERE lsn = $2 AND version = $3`, at, lsn, version)
	}
	seg.stmt(`UPDATE edges SET clamped = clamped + 1 WHERE node_id = $1`, nodeID)
	return nil
}

func (t *tx) nextCseq(ctx context.Context) (int64, error) {
	if err := t.lock(ctx); err != nil {
		return 0, err
	}
	t.cseq++
	t.took = true
	return t.cseq, nil
}

// InsertConflict records a conflict.
func (t *tx) InsertConflict(ctx context.Context, c hub.ConflictRecord) (int64, error) {
	cseq, err := t.nextCseq(ctx)
	if err != nil {
		return 0, err
	}
	t.cid++
	t.top().stmt(`INSERT INTO conflicts (cid, cseq, container, doc_id, pk, kind, status, policy, loser, incoming, existing, base,
		winner_lsn, reason, created_at, resolver) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		t.cid, cseq, c.Container, c.DocID, c.PK, c.Kind, c.Status, c.Policy, c.Loser, c.Incoming, c.Existing, c.Base, c.WinnerLSN, c.Reason, c.CreatedAt, c.Resolver)
	return t.cid, nil
}

// ConflictToSettle returns what settling a conflict needs.
func (t *tx) ConflictToSettle(ctx context.Context, container string, cid int64) (hub.ConflictSides, string, string, bool, error) {
	var c hub.ConflictSides
	var pk, status string
	found, err := t.row(ctx, "read conflict", `SELECT kind, doc_id, pk, status, incoming, existing, base FROM conflicts WHERE cid = $1 AND container = $2`,
		[]any{cid, container}, &c.Kind, &c.DocID, &pk, &status, &c.Incoming, &c.Existing, &c.Base)
	return c, pk, status, found, err
}

// PushOrder returns a node's push order.
func (t *tx) PushOrder(ctx context.Context, nodeID string) (hub.PushOrder, error) {
	if e := t.order; e.ok && e.node == nodeID {
		t.order = pushOrderEntry{} // read once: a Try may undo what is stored later
		return e.o, nil
	}
	var o hub.PushOrder
	_, err := t.row(ctx, "read push order", `SELECT held, held_at FROM push_order WHERE node_id = $1`, []any{nodeID}, &o.Held, &o.HeldAt)
	return o, err
}

// SetPushOrder stores a node's push order.
func (t *tx) SetPushOrder(ctx context.Context, nodeID string, o hub.PushOrder) error {
	t.order = pushOrderEntry{}
	t.top().stmt(`INSERT INTO push_order (node_id, held, held_at) VALUES ($1, $2, $3)
		ON CONFLICT (node_id) DO UPDATE SET held = excluded.held, held_at = excluded.held_at`, nodeID, o.Held, o.HeldAt)
	return nil
}

// SettleConflict marks a conflict resolved.
func (t *tx) SettleConflict(ctx context.Context, cid, winnerLSN int64, note string) error {
	cseq, err := t.nextCseq(ctx)
	if err != nil {
		return err
	}
	t.top().stmt(`UPDATE conflicts SET status = $1, winner_lsn = CASE WHEN $2::bigint > 0 THEN $2::bigint ELSE winner_lsn END,
		reason = reason || '; ' || $3, cseq = $4 WHERE cid = $5`, replica.StatusResolved, winnerLSN, note, cseq, cid)
	return nil
}

// InsertEdge registers an edge.
func (t *tx) InsertEdge(ctx context.Context, name, tokenHash, scope string, at int64) error {
	var n int
	if _, err := t.row(ctx, "read edges", `SELECT count(*) FROM edges WHERE name = $1`, []any{name}, &n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: edge %q is registered; revoke it first", replica.ErrExists, name)
	}
	t.top().stmt(`INSERT INTO edges (name, token_hash, scope, created_at) VALUES ($1, $2, $3, $4)`, name, tokenHash, scope, at)
	return nil
}

// DeleteEdge deletes an edge's registration.
func (t *tx) DeleteEdge(ctx context.Context, name string) (bool, error) {
	n, err := t.execNow(ctx, "revoke edge", `DELETE FROM edges WHERE name = $1`, name)
	if err == nil && n > 0 && t.s.tier != nil {
		// Every hub of the tier ends the edge's sessions at the commit.
		_, err = t.execNow(ctx, "revoke edge", `SELECT pg_notify($1, $2)`, notifyChannel, revokePrefix+name)
	}
	return n > 0, err
}

// EdgeNode returns the node id an edge is bound to.
func (t *tx) EdgeNode(ctx context.Context, name string) (string, bool, error) {
	var bound string
	found, err := t.row(ctx, "read edge", `SELECT node_id FROM edges WHERE name = $1`, []any{name}, &bound)
	return bound, found, err
}

// EdgeOfNode returns another edge bound to nodeID.
func (t *tx) EdgeOfNode(ctx context.Context, nodeID, name string) (string, bool, error) {
	var other string
	found, err := t.row(ctx, "read edges", `SELECT name FROM edges WHERE node_id = $1 AND name <> $2 LIMIT 1`, []any{nodeID, name}, &other)
	return other, found, err
}

// BindEdge records an edge's hello.
func (t *tx) BindEdge(ctx context.Context, name, nodeID string, pending, acked, at int64) error {
	t.top().stmt(`UPDATE edges SET node_id = $1, pending = $2, acked_lsn = $3, last_seen = $4 WHERE name = $5`, nodeID, pending, acked, at, name)
	return nil
}

// RecordAck stores an edge's applied LSN and pending count.
func (t *tx) RecordAck(ctx context.Context, name, nodeID string, pending, acked, at int64) error {
	t.top().stmt(`UPDATE edges SET acked_lsn = $1, pending = $2, last_seen = $3 WHERE name = $4 AND node_id = $5`, acked, pending, at, name, nodeID)
	return nil
}

// RecordClock stores an edge's measured clock skew.
func (t *tx) RecordClock(ctx context.Context, name string, skewMs, at int64) error {
	t.top().stmt(`UPDATE edges SET clock_skew_ms = $1, clock_measured_at = $2 WHERE name = $3`, skewMs, at, name)
	return nil
}

// CreateSession stores a dashboard session.
func (t *tx) CreateSession(ctx context.Context, idHash, binding string, nowMs, expiresMs int64, max int) error {
	seg := t.top()
	seg.stmt(`DELETE FROM sessions WHERE expires_at <= $1`, nowMs)
	seg.stmt(`DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions ORDER BY created_at DESC, id_hash OFFSET $1)`, max-1)
	seg.stmt(`INSERT INTO sessions (id_hash, binding, created_at, expires_at) VALUES ($1, $2, $3, $4)`, idHash, binding, nowMs, expiresMs)
	return nil
}

// DeleteSession deletes a session.
func (t *tx) DeleteSession(ctx context.Context, idHash string) error {
	t.top().stmt(`DELETE FROM sessions WHERE id_hash = $1`, idHash)
	return nil
}

// InsertResolver stores a resolver version.
func (t *tx) InsertResolver(ctx context.Context, v hub.ResolverVersion, wasm []byte) error {
	t.defined = true
	t.top().stmt(`INSERT INTO resolvers (name, version, sha256, size, uploaded_at, wasm) VALUES ($1, $2, $3, $4, $5, $6)`,
		v.Name, v.Version, v.SHA256, v.Size, v.UploadedAt, wasm)
	return nil
}

// SaveResolverCounts stores a resolver version's call counts.
func (t *tx) SaveResolverCounts(ctx context.Context, name string, version int, calls int64, failures string) error {
	t.top().stmt(`UPDATE resolvers SET calls = $1, failures = $2 WHERE name = $3 AND version = $4`, calls, failures, name, version)
	return nil
}
