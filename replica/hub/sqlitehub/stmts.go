package sqlitehub

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// stmts are the store's prepared statements: writer ones on the write
// connection, the others on the read pool.
type stmts struct {
	getContainer, putContainer, getOutcome, getHead, getVersionBody  *sql.Stmt
	insertVersion, insertLog, upsertItem, updateItem, insertConflict *sql.Stmt
	insertNewItem, insertLogNew, insertVersionNew                    *sql.Stmt
	getItem, logAfter, logAfterScoped, readVersion                   *sql.Stmt
}

func (s *stmts) prepare(ctx context.Context, w *sqlitestore.Writer, read *sql.DB) error {
	type p struct {
		dst  **sql.Stmt
		text string
		read bool
	}
	for _, st := range []p{
		{&s.getContainer, `SELECT pk_path FROM containers WHERE name = ?`, false},
		{&s.putContainer, `INSERT INTO containers (name, pk_path, policy, indexing, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, indexing = excluded.indexing, updated_at = excluded.updated_at`, false},
		{&s.getOutcome, `SELECT v.outcome, v.lsn, v.reason, v.conflict_id, coalesce(l.crts, 0) FROM versions v
			LEFT JOIN log l ON l.lsn = v.lsn AND v.outcome = 'confirmed' WHERE v.version = ?`, false},
		{&s.getHead, `SELECT pk, version, lsn, deleted FROM items WHERE container = ? AND id = ?`, false},
		{&s.getVersionBody, `SELECT body, op, origin, ts, clamped_ts FROM versions WHERE version = ? AND container = ? AND id = ?`, false},
		{&s.insertVersion, `INSERT INTO versions (version, container, id, pk, op, base, origin, ts, body, outcome, lsn, reason, conflict_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, false},
		{&s.insertLog, `INSERT INTO log (lsn, container, id, pk, op, version, base, origin, ts, crts, policy, resolver, resolves)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, false},
		// A log record without a resolver and a confirmed version without
		// a reason or a conflict, the common ones.
		{&s.insertLogNew, `INSERT INTO log (lsn, container, id, pk, op, version, base, origin, ts, crts, policy, resolver, resolves)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '')`, false},
		{&s.insertVersionNew, `INSERT INTO versions (version, container, id, pk, op, base, origin, ts, body, outcome, lsn, reason, conflict_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'confirmed', ?, '', 0)`, false},
		{&s.upsertItem, `INSERT INTO items (container, id, pk, version, lsn, deleted) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (container, id) DO UPDATE SET pk = excluded.pk, version = excluded.version, lsn = excluded.lsn, deleted = excluded.deleted`, false},
		{&s.updateItem, `UPDATE items SET version = ?4, lsn = ?5, deleted = ?6 WHERE container = ?1 AND id = ?2 AND pk = ?3`, false},
		{&s.insertNewItem, `INSERT INTO items (container, id, pk, version, lsn, deleted) VALUES (?, ?, ?, ?, ?, 0)
			ON CONFLICT (container, id) DO NOTHING`, false},
		{&s.insertConflict, `INSERT INTO conflicts (container, doc_id, pk, kind, status, policy, loser, incoming, existing, base, winner_lsn, reason, created_at, resolver, cseq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, false},
		{&s.getItem, itemQuery + `i.container = ? AND i.id = ?`, true},
		{&s.logAfter, `SELECT l.lsn, l.crts, l.container, l.op, l.id, l.pk, l.version, l.base, l.origin, l.ts, l.policy, l.resolver, l.resolves, l.clamped_ts,
			(SELECT v.body FROM versions v WHERE v.version = l.version)
			FROM log l WHERE l.lsn > ?1 AND l.lsn <= ?4 AND l.origin != ?3 ORDER BY l.lsn LIMIT ?2`, true},
		{&s.logAfterScoped, `SELECT l.lsn, l.crts, l.container, l.op, l.id, l.pk, l.version, l.base, l.origin, l.ts, l.policy, l.resolver, l.resolves, l.clamped_ts,
			(SELECT v.body FROM versions v WHERE v.version = l.version)
			FROM log l WHERE l.lsn > ?1 AND l.lsn <= ?4 AND l.origin != ?3 AND (+l.container IN (SELECT value FROM json_each(?5)) OR l.container || '/' || l.pk IN (SELECT value FROM json_each(?6)))
			ORDER BY l.lsn LIMIT ?2`, true},
		{&s.readVersion, `SELECT body, op, origin, ts, clamped_ts FROM versions WHERE version = ? AND container = ? AND id = ?`, true},
	} {
		var err error
		if st.read {
			*st.dst, err = read.PrepareContext(ctx, st.text)
		} else {
			*st.dst, err = w.Prepare(ctx, st.text) // the writer owns and closes it
		}
		if err != nil {
			s.close()
			return fmt.Errorf("%s: %w", st.text, err)
		}
	}
	return nil
}

// close closes the read-pool statements; the writer closes its own.
func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.getItem, s.logAfter, s.logAfterScoped, s.readVersion} {
		if st != nil {
			st.Close()
		}
	}
}
