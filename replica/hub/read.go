package hub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// itemQuery reads an item's current confirmed version; append conditions on i.
const itemQuery = `SELECT i.container, i.id, i.pk, i.version, v.base, v.origin, v.ts, i.lsn, l.crts, i.deleted, v.body
	FROM items i JOIN versions v ON v.version = i.version JOIN log l ON l.lsn = i.lsn WHERE `

func scanItem(s interface{ Scan(...any) error }) (replica.Item, error) {
	var it replica.Item
	err := s.Scan(&it.Container, &it.ID, &it.PK, &it.Version, &it.Base, &it.Origin, &it.TS, &it.LSN, &it.CRTS, &it.Deleted, &it.Body)
	return it, err
}

// Get reads an item's confirmed version.
func (h *Hub) Get(ctx context.Context, containerName, id string) (replica.Item, error) {
	if _, err := h.defs.Get(containerName); err != nil {
		return replica.Item{}, err
	}
	it, err := scanItem(h.stmts.getItem.QueryRowContext(ctx, containerName, id))
	if errors.Is(err, sql.ErrNoRows) || err == nil && it.Deleted {
		return replica.Item{}, fmt.Errorf("%w: item %q in container %q", replica.ErrNotFound, id, containerName)
	}
	if err != nil {
		return replica.Item{}, fmt.Errorf("read item: %w", err)
	}
	return it, nil
}

// ListOptions select a page of items.
type ListOptions struct {
	PK           string
	HasPK        bool
	Limit        int
	Continuation string
}

const continuationPrefix = "h1:"

// List returns live items in id order, a page at a time.
func (h *Hub) List(ctx context.Context, containerName string, opt ListOptions) (replica.Page, error) {
	if _, err := h.defs.Get(containerName); err != nil {
		return replica.Page{}, err
	}
	var pk *string
	if opt.HasPK {
		pk = &opt.PK
	}
	items, next, err := replica.ListItems(ctx, h.db.Read, itemQuery+`i.deleted = 0`, containerName, pk, opt.Limit, opt.Continuation, continuationPrefix,
		func(rows *sql.Rows) (replica.Item, error) { return scanItem(rows) })
	return replica.Page{Items: items, Continuation: next}, err
}

const logQuery = `SELECT l.lsn, l.crts, l.container, l.op, l.id, l.pk, l.version, l.base, l.origin, l.ts, l.policy, l.resolver, l.resolves, l.clamped_ts, v.body
	FROM log l JOIN versions v ON v.version = l.version WHERE `

func scanLog(rows *sql.Rows) (wire.Change, error) {
	var c wire.Change
	var body []byte
	err := rows.Scan(&c.LSN, &c.CRTS, &c.Container, &c.Op, &c.ID, &c.PK, &c.Version, &c.Base, &c.Origin, &c.TS, &c.Policy, &c.Resolver, &c.Resolves, &c.ClampedTS, &body)
	if c.Op != replica.OpDelete {
		c.Body = body
	}
	return c, err
}

// Changes returns a container's confirmed versions and deletes after LSN
// since, in LSN order, and the LSN to continue from.
func (h *Hub) Changes(ctx context.Context, containerName string, since int64, limit int) ([]replica.Change, int64, error) {
	if _, err := h.defs.Get(containerName); err != nil {
		return nil, since, err
	}
	limit, err := replica.PageLimit(limit)
	if err != nil {
		return nil, since, err
	}
	rows, err := h.db.Read.QueryContext(ctx, logQuery+`l.container = ? AND l.lsn > ? ORDER BY l.lsn LIMIT ?`, containerName, since, limit)
	if err != nil {
		return nil, since, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []replica.Change
	next := since
	for rows.Next() {
		c, err := scanLog(rows)
		if err != nil {
			return nil, since, fmt.Errorf("read changes: %w", err)
		}
		out = append(out, ToChange(c))
		next = c.LSN
	}
	return out, next, rows.Err()
}

// ToChange turns a log record into a change-feed record with the document as
// clients see it.
func ToChange(c wire.Change) replica.Change {
	ch := replica.Change{LSN: c.LSN, CRTS: c.CRTS, Op: c.Op, ID: c.ID, PK: c.PK, Origin: c.Origin, Version: c.Version, Base: c.Base, TS: c.TS, Policy: c.Policy,
		Resolver: c.Resolver, Resolves: c.Resolves, ClampedTS: c.ClampedTS}
	if c.Op != replica.OpDelete {
		ch.Document = replica.AppendWithSystem(nil, c.Body, replica.SystemProps{TS: c.TS, ETag: replica.ETagOf(c.Version), LSN: c.LSN, CRTS: c.CRTS})
	}
	return ch
}

// LogAfter reads up to limit log records after LSN after (of every
// container) and returns those scope covers and that the node skipOrigin did
// not write itself, plus the position it has covered, so that a reader
// filtering out everything still moves on. It stops early once the bodies
// reach maxBytes.
//
// Every LSN up to the head is committed when the query starts, so its
// snapshot holds them all: once it has returned every record in (after, hi]
// not written by skipOrigin, the stream has covered hi. SQLite skips the
// node's own records without handing them over (an edge pushing a long
// outbox gets its outcomes only once the stream has passed them). A call
// looks at most logScanWindow LSNs ahead.
//
// For a reader with a scope, SQLite also skips the records the scope does
// not cover (other containers, other partition keys), without reading their
// bodies.
func (h *Hub) LogAfter(ctx context.Context, after int64, limit int, maxBytes int, scope []wire.ScopeEntry, skipOrigin string) ([]wire.Change, int64, error) {
	hi := min(h.Head(), after+logScanWindow)
	if hi <= after {
		return nil, after, nil
	}
	var rows *sql.Rows
	var err error
	if len(scope) > 0 {
		whole, keyed := scopeFilter(scope)
		rows, err = h.stmts.logAfterScoped.QueryContext(ctx, after, limit, skipOrigin, hi, whole, keyed)
	} else {
		rows, err = h.stmts.logAfter.QueryContext(ctx, after, limit, skipOrigin, hi)
	}
	if err != nil {
		return nil, after, fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	var out []wire.Change
	last, size, n := after, 0, 0
	for rows.Next() {
		c, err := scanLog(rows)
		if err != nil {
			return nil, after, fmt.Errorf("read log: %w", err)
		}
		n++
		last = c.LSN
		if !wire.InScope(scope, c.Container, c.PK) {
			continue
		}
		out = append(out, c)
		if size += len(c.Body); size >= maxBytes {
			return out, last, rows.Err()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("read log: %w", err)
	}
	if n < limit {
		last = hi // every record up to hi was read or skipped
	}
	return out, last, nil
}

// scopeFilter returns, as JSON arrays for logAfterScoped, the containers
// scope covers whole and the "container/pk" keys of the partition keys it
// lists for the others. Container names cannot hold '/', so a key splits
// only one way.
func scopeFilter(scope []wire.ScopeEntry) (whole, keyed []byte) {
	names, keys := []string{}, []string{} // "[]", not "null", when empty
	for _, e := range scope {
		if len(e.PartitionKeys) == 0 {
			if !slices.Contains(names, e.Container) {
				names = append(names, e.Container)
			}
			continue
		}
		for _, k := range e.PartitionKeys {
			keys = append(keys, e.Container+"/"+k)
		}
	}
	whole, _ = json.Marshal(names) // strings only: cannot fail
	keyed, _ = json.Marshal(keys)
	return whole, keyed
}

// logScanWindow bounds the LSNs one LogAfter call looks at.
const logScanWindow = 16384

// Conflict is one record of the conflicts feed; ConflictVersion one side of
// it, with its content.
type (
	Conflict        = wire.Conflict
	ConflictVersion = wire.ConflictVersion
)

// Conflicts returns a container's conflicts after id after, oldest first,
// optionally only those with status.
func (h *Hub) Conflicts(ctx context.Context, containerName, status string, after int64, limit int) ([]Conflict, int64, error) {
	if _, err := h.defs.Get(containerName); err != nil {
		return nil, after, err
	}
	if status != "" && status != replica.StatusResolved && status != replica.StatusUnresolved {
		return nil, after, fmt.Errorf("%w: status %q: want resolved or unresolved", replica.ErrInvalid, status)
	}
	limit, err := replica.PageLimit(limit)
	if err != nil {
		return nil, after, err
	}
	q := conflictColumns + `WHERE container = ? AND cid > ?`
	args := []any{containerName, after}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY cid LIMIT ?`
	args = append(args, limit)
	out, err := h.readConflicts(ctx, 0, q, args...)
	if err != nil {
		return nil, after, err
	}
	next := after
	if len(out) > 0 {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

const conflictColumns = `SELECT cid, cseq, kind, status, container, doc_id, pk, policy, loser, incoming, existing, base, winner_lsn, reason, created_at, resolver
	FROM conflicts `

// readConflicts runs a query of conflictColumns and returns its records
// with their versions, up to about maxBytes of documents (0: no
// limit; at least one record).
func (h *Hub) readConflicts(ctx context.Context, maxBytes int, q string, args ...any) ([]Conflict, error) {
	rows, err := h.db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read conflicts: %w", err)
	}
	type ids struct{ incoming, existing, base string }
	var out []Conflict
	var vs []ids
	for rows.Next() {
		var c Conflict
		var v ids
		if err := rows.Scan(&c.ID, &c.Seq, &c.Kind, &c.Status, &c.Container, &c.DocID, &c.PK, &c.Policy, &c.Loser, &v.incoming, &v.existing, &v.base,
			&c.WinnerLSN, &c.Reason, &c.CreatedAt, &c.Resolver); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read conflicts: %w", err)
		}
		out = append(out, c)
		vs = append(vs, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read conflicts: %w", err)
	}
	size := 0
	for i := range out {
		c := &out[i]
		// Each side is read as a version of the conflict's own item, which
		// the caller checked against the scope: a base pushed as the id of
		// another item's version reads as unknown.
		if c.Incoming, err = h.conflictVersion(ctx, c.Container, c.DocID, vs[i].incoming); err == nil {
			if c.Existing, err = h.conflictVersion(ctx, c.Container, c.DocID, vs[i].existing); err == nil {
				c.Base, err = h.conflictVersion(ctx, c.Container, c.DocID, vs[i].base)
			}
		}
		if err != nil {
			return nil, err
		}
		if size += c.Size(); maxBytes > 0 && size >= maxBytes && i+1 < len(out) {
			return out[:i+1], nil
		}
	}
	return out, nil
}

// ConflictsAfter returns the records of the conflicts feed with a conflict
// sequence number after after, in that order, in scope (nil: everything):
// recorded conflicts and settled ones again. At most limit records are
// examined and about maxBytes of documents returned; last is the position
// covered (records the scope filters out included).
func (h *Hub) ConflictsAfter(ctx context.Context, after int64, limit, maxBytes int, scope []wire.ScopeEntry) (out []Conflict, last int64, err error) {
	head := h.cseqHead.Load()
	if after >= head {
		return nil, after, nil
	}
	// The scope is applied to the positions first, so that records out of
	// scope cost no version reads.
	rows, err := h.db.Read.QueryContext(ctx, `SELECT cseq, container, pk FROM conflicts WHERE cseq > ? AND cseq <= ? ORDER BY cseq LIMIT ?`, after, head, limit)
	if err != nil {
		return nil, after, fmt.Errorf("read conflicts: %w", err)
	}
	var seqs []any
	n := 0
	last = after
	for rows.Next() {
		var seq int64
		var container, pk string
		if err := rows.Scan(&seq, &container, &pk); err != nil {
			rows.Close()
			return nil, after, fmt.Errorf("read conflicts: %w", err)
		}
		n++
		last = seq
		if wire.InScope(scope, container, pk) {
			seqs = append(seqs, seq)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("read conflicts: %w", err)
	}
	if n < limit {
		last = head // every record up to head was examined (numbers of rolled-back work leave gaps)
	}
	if len(seqs) == 0 {
		return nil, last, nil
	}
	q := conflictColumns + `WHERE cseq IN (?` + strings.Repeat(", ?", len(seqs)-1) + `) ORDER BY cseq`
	out, err = h.readConflicts(ctx, maxBytes, q, seqs...)
	if err != nil {
		return nil, after, err
	}
	if len(out) > 0 && len(out) < len(seqs) {
		// Cut by maxBytes (or a conflict settled since the first read, which
		// comes again under its new number): go on after the last one sent.
		last = out[len(out)-1].Seq
	}
	return out, last, nil
}

// conflictVersion reads a version of the item (container, id) for the
// conflicts feed; nil if it is not one of that item's.
func (h *Hub) conflictVersion(ctx context.Context, container, id, version string) (*ConflictVersion, error) {
	if version == "" {
		return nil, nil
	}
	var cv ConflictVersion
	var op string
	var body []byte
	err := h.stmts.readVersion.QueryRowContext(ctx, version, container, id).Scan(&body, &op, &cv.Origin, &cv.TS, &cv.ClampedTS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read version: %w", err)
	}
	cv.Version = version
	cv.Deleted = op == replica.OpDelete
	if !cv.Deleted {
		cv.Document = body
	}
	return &cv, nil
}

// stmts are the hub's prepared statements: writer ones on the write
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
		{&s.putContainer, `INSERT INTO containers (name, pk_path, policy, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`, false},
		{&s.getOutcome, `SELECT v.outcome, v.lsn, v.reason, v.conflict_id, coalesce(l.crts, 0) FROM versions v
			LEFT JOIN log l ON l.lsn = v.lsn AND v.outcome = 'confirmed' WHERE v.version = ?`, false},
		{&s.getHead, `SELECT pk, version, lsn, deleted FROM items WHERE container = ? AND id = ?`, false},
		{&s.getVersionBody, `SELECT body, op, origin, ts, clamped_ts FROM versions WHERE version = ? AND container = ? AND id = ?`, false},
		{&s.insertVersion, `INSERT INTO versions (version, container, id, pk, op, base, origin, ts, body, outcome, lsn, reason, conflict_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, false},
		{&s.insertLog, `INSERT INTO log (lsn, container, id, pk, op, version, base, origin, ts, crts, policy, resolver, resolves)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, false},
		// The pushed create's (pushNew) log record and version: what is
		// the same for every one of them is written into the statement
		// rather than bound (each text argument costs the driver an
		// allocation under a process-wide lock).
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
