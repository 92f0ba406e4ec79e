package pghub

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
)

// tx is the transaction of the writer's open group. Every failed statement
// aborts a PostgreSQL transaction, so every error from the database is
// spoilt (the group is replayed without the job). locked says the heads
// row is locked and lsn, cseq, cid hold the last numbers handed out.
type tx struct {
	s              *Store
	pg             pgx.Tx
	locked         bool
	lsn, cseq, cid int64
	took           bool // numbers were handed out: the heads row is updated at commit
	forwarded      bool // a forwarded decision was finished
	defined        bool // a container definition or resolver was stored: other hubs are told at commit
	savepoint      int
}

var _ hub.Tx = (*tx)(nil)

func (t *tx) begin(pg pgx.Tx) { t.reset(); t.pg = pg }

func (t *tx) reset() {
	t.pg, t.locked, t.took, t.forwarded, t.defined, t.savepoint = nil, false, false, false, false, 0
}

// lock locks the heads row for the rest of the transaction and reads the
// newest committed numbers.
func (t *tx) lock(ctx context.Context) error {
	if t.locked {
		return nil
	}
	if err := t.pg.QueryRow(ctx, `SELECT lsn, cseq, cid FROM heads WHERE id = 1 FOR UPDATE`).Scan(&t.lsn, &t.cseq, &t.cid); err != nil {
		return spoilt("lock heads", err)
	}
	t.locked = true
	return nil
}

// beforeCommit stores the numbers the transaction took. In a tier, a
// transaction that decided anything (took numbers or finished a forwarded
// decision) is fenced by the lease (Tier.fence).
func (t *tx) beforeCommit(ctx context.Context) error {
	if tier := t.s.tier; tier != nil && (t.took || t.forwarded) {
		if err := tier.fence(ctx, t.pg); err != nil {
			return err
		}
	}
	if t.s.tier != nil && t.defined && !t.took && !t.forwarded {
		if _, err := t.pg.Exec(ctx, `SELECT pg_notify($1, 'defined')`, notifyChannel); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	if !t.took {
		return nil
	}
	_, err := t.pg.Exec(ctx, `UPDATE heads SET lsn = $1, cseq = $2, cid = $3 WHERE id = 1`, t.lsn, t.cseq, t.cid)
	return err
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

// Try runs fn under a savepoint. A lock taken after the savepoint is
// released when it is rolled back to, so the lock state is restored too.
func (t *tx) Try(ctx context.Context, fn func() error) error {
	name := fmt.Sprintf("try%d", t.savepoint)
	if _, err := t.pg.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return spoilt("savepoint", err)
	}
	t.savepoint++
	locked, lsn, cseq, cid, took, forwarded := t.locked, t.lsn, t.cseq, t.cid, t.took, t.forwarded
	err := fn()
	t.savepoint--
	if err != nil {
		t.locked, t.lsn, t.cseq, t.cid, t.took, t.forwarded = locked, lsn, cseq, cid, took, forwarded
		if _, uerr := t.pg.Exec(ctx, "ROLLBACK TO SAVEPOINT "+name); uerr != nil {
			return spoilt("roll back to savepoint", uerr)
		}
	}
	if _, rerr := t.pg.Exec(ctx, "RELEASE SAVEPOINT "+name); rerr != nil && err == nil {
		return spoilt("release savepoint", rerr)
	}
	return err
}

func (t *tx) exec(ctx context.Context, op, q string, args ...any) (int64, error) {
	tag, err := t.pg.Exec(ctx, q, args...)
	if err != nil {
		return 0, spoilt(op, err)
	}
	return tag.RowsAffected(), nil
}

// row scans one row; found is false for none.
func (t *tx) row(ctx context.Context, op, q string, args []any, dst ...any) (bool, error) {
	err := t.pg.QueryRow(ctx, q, args...).Scan(dst...)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, spoilt(op, err)
	}
	return true, nil
}

// ContainerPK returns a container's partition key path.
func (t *tx) ContainerPK(ctx context.Context, name string) (string, bool, error) {
	var pk string
	found, err := t.row(ctx, "read container", `SELECT pk_path FROM containers WHERE name = $1`, []any{name}, &pk)
	return pk, found, err
}

// PutContainer stores a definition.
func (t *tx) PutContainer(ctx context.Context, name, pk, policy string, at int64) error {
	t.defined = true
	_, err := t.exec(ctx, "store container", `INSERT INTO containers (name, pk_path, policy, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`, name, pk, policy, at)
	return err
}

// Outcome returns the outcome a version got when it was pushed.
func (t *tx) Outcome(ctx context.Context, version string) (hub.PriorOutcome, bool, error) {
	var p hub.PriorOutcome
	found, err := t.row(ctx, "read version", `SELECT v.outcome, v.lsn, v.reason, v.conflict_id, coalesce(l.crts, 0) FROM versions v
		LEFT JOIN log l ON l.lsn = v.lsn AND v.outcome = 'confirmed' WHERE v.version = $1`, []any{version},
		&p.Outcome, &p.LSN, &p.Reason, &p.ConflictID, &p.CRTS)
	return p, found, err
}

// Head returns an item's current version.
func (t *tx) Head(ctx context.Context, container, id string) (hub.ItemHead, bool, error) {
	var hd hub.ItemHead
	found, err := t.row(ctx, "read item", `SELECT pk, version, lsn, deleted FROM items WHERE container = $1 AND id = $2`, []any{container, id},
		&hd.PK, &hd.Version, &hd.LSN, &hd.Deleted)
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

// CreateItem inserts a new item at the next LSN unless it exists.
func (t *tx) CreateItem(ctx context.Context, container, id, pk, version string) (int64, bool, error) {
	if err := t.lock(ctx); err != nil {
		return 0, false, err
	}
	lsn := t.lsn + 1
	n, err := t.exec(ctx, "store item", `INSERT INTO items (container, id, pk, version, lsn, deleted) VALUES ($1, $2, $3, $4, $5, false)
		ON CONFLICT (container, id) DO NOTHING`, container, id, pk, version, lsn)
	if err != nil || n == 0 {
		return 0, false, err
	}
	t.lsn, t.took = lsn, true
	return lsn, true, nil
}

// AppendLog appends a confirmed version to the log.
func (t *tx) AppendLog(ctx context.Context, e hub.LogRecord) error {
	_, err := t.exec(ctx, "append to log", `INSERT INTO log (lsn, container, id, pk, op, version, base, origin, ts, crts, policy, resolver, resolves)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		e.LSN, e.Container, e.ID, e.PK, e.Op, e.Version, e.Base, e.Origin, e.TS, e.CRTS, e.Policy, e.Resolver, e.Resolves)
	return err
}

// SetItem makes e's version the item's current one.
func (t *tx) SetItem(ctx context.Context, e hub.LogRecord, samePK bool) error {
	n, err := t.exec(ctx, "store item", `INSERT INTO items (container, id, pk, version, lsn, deleted) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (container, id) DO UPDATE SET pk = excluded.pk, version = excluded.version, lsn = excluded.lsn, deleted = excluded.deleted`,
		e.Container, e.ID, e.PK, e.Version, e.LSN, e.Deleted)
	if err == nil && n != 1 {
		err = spoilt("store item", fmt.Errorf("%d rows changed, want 1", n))
	}
	return err
}

// InsertVersion stores a version.
func (t *tx) InsertVersion(ctx context.Context, v hub.VersionRecord) error {
	_, err := t.exec(ctx, "store version", `INSERT INTO versions (version, container, id, pk, op, base, origin, ts, body, outcome, lsn, reason, conflict_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		v.Version, v.Container, v.ID, v.PK, v.Op, v.Base, v.Origin, v.TS, v.Body, v.Outcome, v.LSN, v.Reason, v.ConflictID)
	return err
}

// SetOutcome records the outcome a stored version has now.
func (t *tx) SetOutcome(ctx context.Context, version, outcome string, lsn int64, reason string) error {
	_, err := t.exec(ctx, "record outcome", `UPDATE versions SET outcome = $1, lsn = $2, reason = $3 WHERE version = $4`, outcome, lsn, reason, version)
	return err
}

// RecordClamp records a clamped _ts.
func (t *tx) RecordClamp(ctx context.Context, nodeID, version string, lsn, at int64) error {
	if _, err := t.exec(ctx, "record clamp", `UPDATE versions SET clamped_ts = $1 WHERE version = $2`, at, version); err != nil {
		return err
	}
	if lsn > 0 {
		if _, err := t.exec(ctx, "record clamp", `UPDATE log SET clamped_ts = $1 WHERE lsn = $2 AND version = $3`, at, lsn, version); err != nil {
			return err
		}
	}
	_, err := t.exec(ctx, "record clamp", `UPDATE edges SET clamped = clamped + 1 WHERE node_id = $1`, nodeID)
	return err
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
	_, err = t.exec(ctx, "record conflict", `INSERT INTO conflicts (cid, cseq, container, doc_id, pk, kind, status, policy, loser, incoming, existing, base,
		winner_lsn, reason, created_at, resolver) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		t.cid, cseq, c.Container, c.DocID, c.PK, c.Kind, c.Status, c.Policy, c.Loser, c.Incoming, c.Existing, c.Base, c.WinnerLSN, c.Reason, c.CreatedAt, c.Resolver)
	if err != nil {
		return 0, err
	}
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

// SettleConflict marks a conflict resolved.
func (t *tx) SettleConflict(ctx context.Context, cid, winnerLSN int64, note string) error {
	cseq, err := t.nextCseq(ctx)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, "resolve conflict", `UPDATE conflicts SET status = $1, winner_lsn = CASE WHEN $2::bigint > 0 THEN $2::bigint ELSE winner_lsn END,
		reason = reason || '; ' || $3, cseq = $4 WHERE cid = $5`, replica.StatusResolved, winnerLSN, note, cseq, cid)
	return err
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
	_, err := t.exec(ctx, "register edge", `INSERT INTO edges (name, token_hash, scope, created_at) VALUES ($1, $2, $3, $4)`, name, tokenHash, scope, at)
	return err
}

// DeleteEdge deletes an edge's registration.
func (t *tx) DeleteEdge(ctx context.Context, name string) (bool, error) {
	n, err := t.exec(ctx, "revoke edge", `DELETE FROM edges WHERE name = $1`, name)
	if err == nil && n > 0 && t.s.tier != nil {
		// Every hub of the tier ends the edge's sessions at the commit.
		_, err = t.exec(ctx, "revoke edge", `SELECT pg_notify($1, $2)`, notifyChannel, revokePrefix+name)
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
	_, err := t.exec(ctx, "record session", `UPDATE edges SET node_id = $1, pending = $2, acked_lsn = $3, last_seen = $4 WHERE name = $5`,
		nodeID, pending, acked, at, name)
	return err
}

// RecordAck stores an edge's applied LSN and pending count.
func (t *tx) RecordAck(ctx context.Context, name, nodeID string, pending, acked, at int64) error {
	_, err := t.exec(ctx, "record session", `UPDATE edges SET acked_lsn = $1, pending = $2, last_seen = $3 WHERE name = $4 AND node_id = $5`,
		acked, pending, at, name, nodeID)
	return err
}

// RecordClock stores an edge's measured clock skew.
func (t *tx) RecordClock(ctx context.Context, name string, skewMs, at int64) error {
	_, err := t.exec(ctx, "record clock", `UPDATE edges SET clock_skew_ms = $1, clock_measured_at = $2 WHERE name = $3`, skewMs, at, name)
	return err
}

// CreateSession stores a dashboard session.
func (t *tx) CreateSession(ctx context.Context, idHash, binding string, nowMs, expiresMs int64, max int) error {
	if _, err := t.exec(ctx, "purge sessions", `DELETE FROM sessions WHERE expires_at <= $1`, nowMs); err != nil {
		return err
	}
	if _, err := t.exec(ctx, "bound sessions", `DELETE FROM sessions WHERE id_hash IN (
		SELECT id_hash FROM sessions ORDER BY created_at DESC, id_hash OFFSET $1)`, max-1); err != nil {
		return err
	}
	_, err := t.exec(ctx, "create session", `INSERT INTO sessions (id_hash, binding, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		idHash, binding, nowMs, expiresMs)
	return err
}

// DeleteSession deletes a session.
func (t *tx) DeleteSession(ctx context.Context, idHash string) error {
	_, err := t.exec(ctx, "delete session", `DELETE FROM sessions WHERE id_hash = $1`, idHash)
	return err
}

// InsertResolver stores a resolver version.
func (t *tx) InsertResolver(ctx context.Context, v hub.ResolverVersion, wasm []byte) error {
	t.defined = true
	_, err := t.exec(ctx, "store resolver", `INSERT INTO resolvers (name, version, sha256, size, uploaded_at, wasm) VALUES ($1, $2, $3, $4, $5, $6)`,
		v.Name, v.Version, v.SHA256, v.Size, v.UploadedAt, wasm)
	return err
}

// SaveResolverCounts stores a resolver version's call counts.
func (t *tx) SaveResolverCounts(ctx context.Context, name string, version int, calls int64, failures string) error {
	_, err := t.exec(ctx, "save resolver counts", `UPDATE resolvers SET calls = $1, failures = $2 WHERE name = $3 AND version = $4`,
		calls, failures, name, version)
	return err
}
