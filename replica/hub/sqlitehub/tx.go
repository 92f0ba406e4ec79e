package sqlitehub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// tx is the transaction of the writer's open group. lsn and cseq are the
// last numbers it handed out, -1 until it hands out its first, which reads
// the committed one from the database; a rollback forgets them
// (sqlitestore.Writer's OnRollback).
type tx struct {
	s            *Store
	lsn, cseq    int64
	savepoint    int  // nesting depth of Try
	pathsChanged bool // idx_paths was written
}

var _ hub.Tx = (*tx)(nil)

func (t *tx) reset() { t.lsn, t.cseq, t.savepoint, t.pathsChanged = -1, -1, 0, false }

// NextLSN hands out the next log position.
func (t *tx) NextLSN(ctx context.Context) (int64, error) {
	if t.lsn < 0 {
		if err := t.s.w.QueryRow(ctx, `SELECT coalesce(max(lsn), 0) FROM log`).Scan(&t.lsn); err != nil {
			return 0, fmt.Errorf("read log head: %w", err)
		}
	}
	t.lsn++
	return t.lsn, nil
}

func (t *tx) nextCseq(ctx context.Context) (int64, error) {
	if t.cseq < 0 {
		if err := t.s.w.QueryRow(ctx, `SELECT coalesce(max(cseq), 0) FROM conflicts`).Scan(&t.cseq); err != nil {
			return 0, fmt.Errorf("read conflicts head: %w", err)
		}
	}
	t.cseq++
	return t.cseq, nil
}

// Try runs fn under a savepoint.
func (t *tx) Try(ctx context.Context, fn func() error) error {
	name := fmt.Sprintf("try%d", t.savepoint)
	if _, err := t.s.w.Exec(ctx, "SAVEPOINT "+name); err != nil {
		return sqlitestore.Wrote("savepoint", err)
	}
	t.savepoint++
	lsn, cseq := t.lsn, t.cseq
	err := fn()
	t.savepoint--
	if err != nil {
		t.lsn, t.cseq = lsn, cseq
		if _, uerr := t.s.w.Exec(ctx, "ROLLBACK TO "+name); uerr != nil {
			return sqlitestore.Wrote("roll back to savepoint", uerr)
		}
	}
	if _, rerr := t.s.w.Exec(ctx, "RELEASE "+name); rerr != nil && err == nil {
		return sqlitestore.Wrote("release savepoint", rerr)
	}
	return err
}

// Prefetch does nothing: SQLite's reads are calls into the process.
func (t *tx) Prefetch(ctx context.Context, items []hub.ItemKey, versions []string, node string) error {
	return nil
}

// ContainerPK returns a container's partition key path.
func (t *tx) ContainerPK(ctx context.Context, name string) (string, bool, error) {
	var pk string
	err := t.s.stmts.getContainer.QueryRowContext(ctx, name).Scan(&pk)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read container: %w", err)
	}
	return pk, true, nil
}

// PutContainer stores a definition and the paths its index keeps.
func (t *tx) PutContainer(ctx context.Context, name, pk, policy, indexing string, at int64) error {
	if _, err := t.s.stmts.putContainer.ExecContext(ctx, name, pk, policy, indexing, at); err != nil {
		return sqlitestore.Wrote("store container", err)
	}
	return t.setIndexPaths(ctx, name, indexing)
}

// Outcome returns the outcome a version got when it was pushed.
func (t *tx) Outcome(ctx context.Context, version string) (hub.PriorOutcome, bool, error) {
	var p hub.PriorOutcome
	err := t.s.stmts.getOutcome.QueryRowContext(ctx, version).Scan(&p.Outcome, &p.LSN, &p.Reason, &p.ConflictID, &p.CRTS)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read version: %w", err)
	}
	return p, true, nil
}

// Head returns an item's current version.
func (t *tx) Head(ctx context.Context, container, id string) (hub.ItemHead, bool, error) {
	var hd hub.ItemHead
	err := t.s.stmts.getHead.QueryRowContext(ctx, container, id).Scan(&hd.PK, &hd.Version, &hd.LSN, &hd.Deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return hd, false, nil
	}
	if err != nil {
		return hd, false, fmt.Errorf("read item: %w", err)
	}
	return hd, true, nil
}

// Version returns a version of the item (container, id).
func (t *tx) Version(ctx context.Context, container, id, version string) (hub.StoredVersion, bool, error) {
	var v hub.StoredVersion
	err := t.s.stmts.getVersionBody.QueryRowContext(ctx, version, container, id).Scan(&v.Body, &v.Op, &v.Origin, &v.TS, &v.ClampedTS)
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, fmt.Errorf("read version: %w", err)
	}
	return v, true, nil
}

// VersionBase is the version a version was written over.
func (t *tx) VersionBase(ctx context.Context, version string) (string, error) {
	var base string
	err := t.s.w.QueryRow(ctx, `SELECT base FROM versions WHERE version = ?`, version).Scan(&base)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read version base: %w", err)
	}
	return base, nil
}

// CreateItem inserts a new item at the next LSN unless it exists. The item
// row goes in first, without reading it, so that the common push (of an
// item the hub does not have) costs one statement.
func (t *tx) CreateItem(ctx context.Context, container, id, pk, version string) (int64, bool, error) {
	lsn, err := t.NextLSN(ctx)
	if err != nil {
		return 0, false, err
	}
	t.lsn = lsn - 1 // taken only once the item is in
	res, err := t.s.stmts.insertNewItem.ExecContext(ctx, container, id, pk, version, lsn)
	if err != nil {
		return 0, false, sqlitestore.Wrote("store item", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, false, nil // the item exists
	}
	t.lsn = lsn
	return lsn, true, nil
}

// AppendLog appends a confirmed version to the log.
func (t *tx) AppendLog(ctx context.Context, e hub.LogRecord) error {
	var err error
	if e.Resolver == "" && e.Resolves == "" {
		// What is the same for most records is written into the
		// statement rather than bound (each text argument costs the driver
		// an allocation under a process-wide lock).
		_, err = t.s.stmts.insertLogNew.ExecContext(ctx, e.LSN, e.Container, e.ID, e.PK, e.Op, e.Version, e.Base, e.Origin, e.TS, e.CRTS, e.Policy)
	} else {
		_, err = t.s.stmts.insertLog.ExecContext(ctx, e.LSN, e.Container, e.ID, e.PK, e.Op, e.Version, e.Base, e.Origin, e.TS, e.CRTS,
			e.Policy, e.Resolver, e.Resolves)
	}
	return sqlitestore.Wrote("append to log", err)
}

// SetItem makes e's version the item's current one. An item known to keep
// its partition key is updated without naming the key, so that SQLite
// leaves the partition key index alone (rewriting its entry made an update
// several times dearer).
func (t *tx) SetItem(ctx context.Context, e hub.LogRecord, samePK bool) error {
	st := t.s.stmts.upsertItem
	if samePK {
		st = t.s.stmts.updateItem
	}
	res, err := st.ExecContext(ctx, e.Container, e.ID, e.PK, e.Version, e.LSN, e.Deleted)
	if err == nil {
		if n, _ := res.RowsAffected(); n != 1 {
			err = fmt.Errorf("%d rows changed, want 1", n)
		}
	}
	return sqlitestore.Wrote("store item", err)
}

// InsertVersion stores a version.
func (t *tx) InsertVersion(ctx context.Context, v hub.VersionRecord) error {
	var err error
	if v.Outcome == replica.OutcomeConfirmed && v.Reason == "" && v.ConflictID == 0 {
		_, err = t.s.stmts.insertVersionNew.ExecContext(ctx, v.Version, v.Container, v.ID, v.PK, v.Op, v.Base, v.Origin, v.TS, v.Body, v.LSN)
	} else {
		_, err = t.s.stmts.insertVersion.ExecContext(ctx, v.Version, v.Container, v.ID, v.PK, v.Op, v.Base, v.Origin, v.TS, v.Body,
			v.Outcome, v.LSN, v.Reason, v.ConflictID)
	}
	return sqlitestore.Wrote("store version", err)
}

// SetOutcome records the outcome a stored version has now.
func (t *tx) SetOutcome(ctx context.Context, version, outcome string, lsn int64, reason string) error {
	_, err := t.s.w.Exec(ctx, `UPDATE versions SET outcome = ?, lsn = ?, reason = ? WHERE version = ?`, outcome, lsn, reason, version)
	return sqlitestore.Wrote("record outcome", err)
}

// RecordClamp records a clamped _ts.
func (t *tx) RecordClamp(ctx context.Context, nodeID, version string, lsn, at int64) error {
	if _, err := t.s.w.Exec(ctx, `UPDATE versions SET clamped_ts = ? WHERE version = ?`, at, version); err != nil {
		return sqlitestore.Wrote("record clamp", err)
	}
	if lsn > 0 {
		if _, err := t.s.w.Exec(ctx, `UPDATE log SET clamped_ts = ? WHERE lsn = ? AND version = ?`, at, lsn, version); err != nil {
			return sqlitestore.Wrote("record clamp", err)
		}
	}
	_, err := t.s.w.Exec(ctx, `UPDATE edges SET clamped = clamped + 1 WHERE node_id = ?`, nodeID)
	return sqlitestore.Wrote("record clamp", err)
}

// InsertConflict records a conflict.
func (t *tx) InsertConflict(ctx context.Context, c hub.ConflictRecord) (int64, error) {
	cseq, err := t.nextCseq(ctx)
	if err != nil {
		return 0, err
	}
	res, err := t.s.stmts.insertConflict.ExecContext(ctx, c.Container, c.DocID, c.PK, c.Kind, c.Status, c.Policy,
		c.Loser, c.Incoming, c.Existing, c.Base, c.WinnerLSN, c.Reason, c.CreatedAt, c.Resolver, cseq)
	if err != nil {
		return 0, sqlitestore.Wrote("record conflict", err)
	}
	cid, err := res.LastInsertId()
	if err != nil {
		return 0, sqlitestore.Wrote("record conflict", err)
	}
	return cid, nil
}

// ConflictToSettle returns what settling a conflict needs.
func (t *tx) ConflictToSettle(ctx context.Context, container string, cid int64) (hub.ConflictSides, string, string, bool, error) {
	var c hub.ConflictSides
	var pk, status string
	err := t.s.w.QueryRow(ctx, `SELECT kind, doc_id, pk, status, incoming, existing, base FROM conflicts WHERE cid = ? AND container = ?`, cid, container).
		Scan(&c.Kind, &c.DocID, &pk, &status, &c.Incoming, &c.Existing, &c.Base)
	if errors.Is(err, sql.ErrNoRows) {
		return c, "", "", false, nil
	}
	if err != nil {
		return c, "", "", false, fmt.Errorf("read conflict: %w", err)
	}
	return c, pk, status, true, nil
}

// PushOrder returns a node's push order.
func (t *tx) PushOrder(ctx context.Context, nodeID string) (hub.PushOrder, error) {
	var o hub.PushOrder
	err := t.s.w.QueryRow(ctx, `SELECT held, held_at FROM push_order WHERE node_id = ?`, nodeID).Scan(&o.Held, &o.HeldAt)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("read push order: %w", err)
	}
	return o, nil
}

// SetPushOrder stores a node's push order.
func (t *tx) SetPushOrder(ctx context.Context, nodeID string, o hub.PushOrder) error {
	_, err := t.s.w.Exec(ctx, `INSERT INTO push_order (node_id, held, held_at) VALUES (?, ?, ?)
		ON CONFLICT (node_id) DO UPDATE SET held = excluded.held, held_at = excluded.held_at`, nodeID, o.Held, o.HeldAt)
	return sqlitestore.Wrote("record push order", err)
}

// SettleConflict marks a conflict resolved.
func (t *tx) SettleConflict(ctx context.Context, cid, winnerLSN int64, note string) error {
	cseq, err := t.nextCseq(ctx)
	if err != nil {
		return err
	}
	if winnerLSN > 0 {
		_, err = t.s.w.Exec(ctx, `UPDATE conflicts SET status = ?, winner_lsn = ?, reason = reason || '; ' || ?, cseq = ? WHERE cid = ?`,
			replica.StatusResolved, winnerLSN, note, cseq, cid)
	} else {
		_, err = t.s.w.Exec(ctx, `UPDATE conflicts SET status = ?, reason = reason || '; ' || ?, cseq = ? WHERE cid = ?`,
			replica.StatusResolved, note, cseq, cid)
	}
	return sqlitestore.Wrote("resolve conflict", err)
}

// InsertEdge registers an edge.
func (t *tx) InsertEdge(ctx context.Context, name, tokenHash, scope string, at int64) error {
	var n int
	if err := t.s.w.QueryRow(ctx, `SELECT count(*) FROM edges WHERE name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("read edges: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: edge %q is registered; revoke it first", replica.ErrExists, name)
	}
	_, err := t.s.w.Exec(ctx, `INSERT INTO edges (name, token_hash, scope, created_at) VALUES (?, ?, ?, ?)`, name, tokenHash, scope, at)
	return sqlitestore.Wrote("register edge", err)
}

// DeleteEdge deletes an edge's registration.
func (t *tx) DeleteEdge(ctx context.Context, name string) (bool, error) {
	res, err := t.s.w.Exec(ctx, `DELETE FROM edges WHERE name = ?`, name)
	if err != nil {
		return false, sqlitestore.Wrote("revoke edge", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// EdgeNode returns the node id an edge is bound to.
func (t *tx) EdgeNode(ctx context.Context, name string) (string, bool, error) {
	var bound string
	err := t.s.w.QueryRow(ctx, `SELECT node_id FROM edges WHERE name = ?`, name).Scan(&bound)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read edge: %w", err)
	}
	return bound, true, nil
}

// EdgeOfNode returns another edge bound to nodeID.
func (t *tx) EdgeOfNode(ctx context.Context, nodeID, name string) (string, bool, error) {
	var other string
	err := t.s.w.QueryRow(ctx, `SELECT name FROM edges WHERE node_id = ? AND name != ?`, nodeID, name).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read edges: %w", err)
	}
	return other, true, nil
}

// BindEdge records an edge's hello.
func (t *tx) BindEdge(ctx context.Context, name, nodeID string, pending, acked, at int64) error {
	_, err := t.s.w.Exec(ctx, `UPDATE edges SET node_id = ?, pending = ?, acked_lsn = ?, last_seen = ? WHERE name = ?`, nodeID, pending, acked, at, name)
	return sqlitestore.Wrote("record session", err)
}

// RecordAck stores an edge's applied LSN and pending count.
func (t *tx) RecordAck(ctx context.Context, name, nodeID string, pending, acked, at int64) error {
	_, err := t.s.w.Exec(ctx, `UPDATE edges SET acked_lsn = ?, pending = ?, last_seen = ? WHERE name = ? AND node_id = ?`, acked, pending, at, name, nodeID)
	return sqlitestore.Wrote("record session", err)
}

// RecordClock stores an edge's measured clock skew.
func (t *tx) RecordClock(ctx context.Context, name string, skewMs, at int64) error {
	_, err := t.s.w.Exec(ctx, `UPDATE edges SET clock_skew_ms = ?, clock_measured_at = ? WHERE name = ?`, skewMs, at, name)
	return sqlitestore.Wrote("record clock", err)
}

// CreateSession stores a dashboard session.
func (t *tx) CreateSession(ctx context.Context, idHash, binding string, nowMs, expiresMs int64, max int) error {
	if _, err := t.s.w.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, nowMs); err != nil {
		return sqlitestore.Wrote("purge sessions", err)
	}
	if _, err := t.s.w.Exec(ctx, `DELETE FROM sessions WHERE id_hash IN (
		SELECT id_hash FROM sessions ORDER BY created_at DESC, id_hash LIMIT -1 OFFSET ?)`, max-1); err != nil {
		return sqlitestore.Wrote("bound sessions", err)
	}
	_, err := t.s.w.Exec(ctx, `INSERT INTO sessions (id_hash, binding, created_at, expires_at) VALUES (?, ?, ?, ?)`, idHash, binding, nowMs, expiresMs)
	return sqlitestore.Wrote("create session", err)
}

// DeleteSession deletes a session.
func (t *tx) DeleteSession(ctx context.Context, idHash string) error {
	_, err := t.s.w.Exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	return sqlitestore.Wrote("delete session", err)
}

// InsertResolver stores a resolver version.
func (t *tx) InsertResolver(ctx context.Context, v hub.ResolverVersion, wasm []byte) error {
	_, err := t.s.w.Exec(ctx, `INSERT INTO resolvers (name, version, sha256, size, uploaded_at, wasm) VALUES (?, ?, ?, ?, ?, ?)`,
		v.Name, v.Version, v.SHA256, v.Size, v.UploadedAt, wasm)
	return sqlitestore.Wrote("store resolver", err)
}

// SaveResolverCounts stores a resolver version's call counts.
func (t *tx) SaveResolverCounts(ctx context.Context, name string, version int, calls int64, failures string) error {
	_, err := t.s.w.Exec(ctx, `UPDATE resolvers SET calls = ?, failures = ? WHERE name = ? AND version = ?`, calls, failures, name, version)
	return sqlitestore.Wrote("save resolver counts", err)
}
