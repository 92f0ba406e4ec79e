package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// Consistency levels for reads.
const (
	// ConsistencyLocal (the default) reads the local view: this node's own
	// tentative versions over confirmed state.
	ConsistencyLocal = ""
	// ConsistencyConfirmed reads only versions a hub has confirmed.
	ConsistencyConfirmed = "confirmed"
)

// WriteOptions are the preconditions of a write.
type WriteOptions struct {
	// IfMatch, when set, is the etag the item must currently have, or "*"
	// for any live item; otherwise the write fails with ErrPreconditionFailed.
	IfMatch string
}

// ReadOptions select what a read sees.
type ReadOptions struct {
	Consistency string // ConsistencyLocal or ConsistencyConfirmed
}

// Create stores a new item. It fails with ErrExists if a live item has the
// same id. The body is validated as docs/architecture.md, Items says.
func (r *Replica) Create(ctx context.Context, containerName string, body []byte) (replica.Item, error) {
	it, _, err := r.writeDoc(ctx, replica.WriteCreate, containerName, "", body, WriteOptions{})
	return it, err
}

// Upsert creates or replaces an item and reports whether it created it. If id
// is not empty it must equal the body's "id".
func (r *Replica) Upsert(ctx context.Context, containerName, id string, body []byte, opt WriteOptions) (replica.Item, bool, error) {
	return r.writeDoc(ctx, replica.WriteUpsert, containerName, id, body, opt)
}

// Delete writes a tombstone for a live item. It fails with ErrNotFound if
// there is none.
func (r *Replica) Delete(ctx context.Context, containerName, id string, opt WriteOptions) error {
	_, _, err := r.writeDoc(ctx, replica.WriteDelete, containerName, id, nil, opt)
	return err
}

func (r *Replica) writeDoc(ctx context.Context, kind int, containerName, id string, body []byte, opt WriteOptions) (replica.Item, bool, error) {
	r.w.Enter()
	defer r.w.Leave()
	r.gate.enter()
	defer r.gate.leave()
	c, err := r.defs.Get(containerName)
	if err != nil {
		return replica.Item{}, false, err
	}
	doc, err := replica.PrepareWrite(kind, c.PKPath, id, body)
	if err != nil {
		return replica.Item{}, false, err
	}
	var (
		it      replica.Item
		created bool
		seq     int64
	)
	err = r.submit(ctx,
		func(ctx context.Context) error {
			var err error
			it, created, seq, err = r.applyLocal(ctx, kind, c, doc, opt)
			return err
		},
		func() {
			r.lastSeq.Store(seq)
			r.pending.Add(1)
			r.local.Wake()
		})
	if err != nil {
		return replica.Item{}, false, err
	}
	return it, created, nil
}

// applyLocal runs inside the writer's transaction: it checks the write
// against the item's current local version, then records the new tentative
// version in changes (which makes it part of the outbox) and points the item
// at it. Every check comes before the first write.
func (r *Replica) applyLocal(ctx context.Context, kind int, c *replica.ContainerDef, doc replica.Document, opt WriteOptions) (replica.Item, bool, int64, error) {
	if kind != replica.WriteDelete && opt.IfMatch == "" && r.inScope(c.Def.Name, doc.PK) {
		// Most writes are of items this node has never seen: the item row
		// goes in first, unless the item exists, which spares reading it.
		// For an item that does not exist, every check below passes.
		it, seq := r.newVersion(c.Def.Name, doc, "", kind)
		res, err := r.stmts.insertNewItem.ExecContext(ctx, it.Container, it.ID, it.PK, it.Version, seq)
		if err != nil {
			return replica.Item{}, false, 0, sqlitestore.Wrote("store item", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			r.seq = seq
			if err := r.recordLocal(ctx, &it, replica.OpCreate, seq); err != nil {
				return replica.Item{}, false, 0, err
			}
			return it, true, seq, nil
		}
	}
	var (
		curPK, curVersion string
		curDeleted        bool
	)
	err := r.stmts.getHead.QueryRowContext(ctx, c.Def.Name, doc.ID).Scan(&curPK, &curVersion, &curDeleted)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return replica.Item{}, false, 0, err
	}
	op, pk, err := replica.CheckWrite(kind, c.Def.Name, doc.ID, replica.Head{Exists: exists, Deleted: curDeleted, Version: curVersion, PK: curPK}, doc.PK, opt.IfMatch)
	if err != nil {
		return replica.Item{}, false, 0, err
	}
	doc.PK = pk
	if !r.inScope(c.Def.Name, doc.PK) {
		return replica.Item{}, false, 0, fmt.Errorf("%w: container %q, partition key %q is outside this edge's scope", replica.ErrForbidden, c.Def.Name, doc.PK)
	}
	it, seq := r.newVersion(c.Def.Name, doc, curVersion, kind)
	r.seq = seq
	if err := r.recordLocal(ctx, &it, op, seq); err != nil {
		return replica.Item{}, false, 0, err
	}
	// An item that keeps its partition key is updated in place, without the
	// upsert's conflict handling.
	st := r.stmts.upsertLocal
	if exists && curPK == it.PK {
		st = r.stmts.updateLocal
	}
	res, err := st.ExecContext(ctx, it.Container, it.ID, it.PK, it.Version, seq, it.Deleted)
	if err == nil {
		if n, _ := res.RowsAffected(); n != 1 {
			err = fmt.Errorf("%d rows changed, want 1", n)
		}
	}
	if err != nil {
		return replica.Item{}, false, 0, sqlitestore.Wrote("store item", err)
	}
	return it, op == replica.OpCreate, seq, nil
}

// inScope reports whether this node may write to container with partition
// key pk: anything before its first contact with a hub, then its scope. It
// runs on the writer, which has the newest scope.
func (r *Replica) inScope(container, pk string) bool {
	return r.wsync.HubID == "" || wire.InScope(r.wsync.Scope, container, pk)
}

// newVersion is the tentative version a local write makes, with the next
// change seq (the caller advances r.seq once it records it).
func (r *Replica) newVersion(container string, doc replica.Document, base string, kind int) (replica.Item, int64) {
	seq := r.seq + 1
	return replica.Item{
		Container: container,
		ID:        doc.ID,
		PK:        doc.PK,
		Body:      doc.Body,
		Version:   r.nodeID + "-" + strconv.FormatInt(seq, 10),
		Base:      base,
		Origin:    r.nodeID,
		TS:        r.nextTS(),
		Tentative: true,
		Deleted:   kind == replica.WriteDelete,
	}, seq
}

// recordLocal records a local version in changes, which makes it part of
// the outbox.
func (r *Replica) recordLocal(ctx context.Context, it *replica.Item, op string, seq int64) error {
	if _, err := r.stmts.insertChange.ExecContext(ctx, seq, it.Container, it.ID, it.PK, op, it.Version, it.Base, it.Origin, it.TS, it.Body); err != nil {
		return sqlitestore.Wrote("record change", err)
	}
	return nil
}

// itemQuery selects an item's local view; append conditions on i.
// confirmedQuery selects its confirmed version instead.
const (
	itemFields     = `SELECT i.container, i.id, i.pk, c.version, c.base, c.origin, c.ts, c.lsn, c.crts, c.lsn = 0, c.op = 'delete', c.body`
	itemColumns    = itemFields + ` FROM items i `
	itemQuery      = itemColumns + `JOIN changes c ON c.seq = i.seq WHERE `
	confirmedQuery = itemColumns + `JOIN changes c ON c.seq = i.c_seq WHERE `
)

func scanItem(s interface{ Scan(...any) error }) (replica.Item, error) {
	var it replica.Item
	err := s.Scan(&it.Container, &it.ID, &it.PK, &it.Version, &it.Base, &it.Origin, &it.TS, &it.LSN, &it.CRTS, &it.Tentative, &it.Deleted, &it.Body)
	return it, err
}

// Get reads an item. A deleted or missing item is ErrNotFound; with
// ConsistencyConfirmed so is an item whose only version is tentative.
func (r *Replica) Get(ctx context.Context, containerName, id string, opt ReadOptions) (replica.Item, error) {
	if _, err := r.defs.Get(containerName); err != nil {
		return replica.Item{}, err
	}
	if err := checkConsistency(opt.Consistency); err != nil {
		return replica.Item{}, err
	}
	st := r.getItem
	if opt.Consistency == ConsistencyConfirmed {
		st = r.getConfirmed
	}
	it, err := scanItem(st.QueryRowContext(ctx, containerName, id))
	if errors.Is(err, sql.ErrNoRows) || err == nil && it.Deleted {
		return replica.Item{}, fmt.Errorf("%w: item %q in container %q", replica.ErrNotFound, id, containerName)
	}
	if err != nil {
		return replica.Item{}, fmt.Errorf("read item: %w", err)
	}
	r.stats.ReadsServed.Add(1)
	return it, nil
}

func checkConsistency(c string) error {
	if c != ConsistencyLocal && c != ConsistencyConfirmed {
		return fmt.Errorf("%w: consistency %q: want %q or nothing", replica.ErrInvalid, c, ConsistencyConfirmed)
	}
	return nil
}

// ListOptions select a page of items.
type ListOptions struct {
	PK           string // with HasPK, only items with this partition key value
	HasPK        bool
	Limit        int    // default replica.DefaultPageSize, at most replica.MaxPageSize
	Continuation string // from the previous page
	Consistency  string
}

const continuationPrefix = "i1:"

// List returns live items in id order, a page at a time.
func (r *Replica) List(ctx context.Context, containerName string, opt ListOptions) (replica.Page, error) {
	if _, err := r.defs.Get(containerName); err != nil {
		return replica.Page{}, err
	}
	if err := checkConsistency(opt.Consistency); err != nil {
		return replica.Page{}, err
	}
	var p replica.Page
	if opt.HasPK {
		var err error
		if p, err = r.listByPK(ctx, containerName, opt.PK, opt); err != nil {
			return replica.Page{}, err
		}
	} else {
		base := itemQuery + `i.deleted = 0`
		if opt.Consistency == ConsistencyConfirmed {
			base = confirmedQuery + `c.op != 'delete'`
		}
		items, next, err := replica.ListItems(ctx, r.db.Read, base, containerName, nil, opt.Limit, opt.Continuation, continuationPrefix,
			func(rows *sql.Rows) (replica.Item, error) { return scanItem(rows) })
		if err != nil {
			return replica.Page{}, err
		}
		p = replica.Page{Items: items, Continuation: next}
	}
	r.stats.ReadsServed.Add(int64(len(p.Items)))
	return p, nil
}

// Changes returns the container's change feed after position since: every
// version and delete, in the order this node recorded them (docs/api.md, Change feed), and
// the position to continue from (since itself when there is nothing new).
// The node's outcome records are left out; ChangesWithOutcomes has them.
func (r *Replica) Changes(ctx context.Context, containerName string, since int64, limit int) ([]replica.Change, int64, error) {
	return r.changes(ctx, containerName, since, limit, false)
}

// ChangesWithOutcomes is Changes with the node's outcome records among the
// versions, in feed order: op "outcome", what the hub decided for one of
// this node's writes (Outcome, Reason; LSN is the resulting or winning
// version's).
func (r *Replica) ChangesWithOutcomes(ctx context.Context, containerName string, since int64, limit int) ([]replica.Change, int64, error) {
	return r.changes(ctx, containerName, since, limit, true)
}

func (r *Replica) changes(ctx context.Context, containerName string, since int64, limit int, outcomes bool) ([]replica.Change, int64, error) {
	if _, err := r.defs.Get(containerName); err != nil {
		return nil, since, err
	}
	limit, err := replica.PageLimit(limit)
	if err != nil {
		return nil, since, err
	}
	if since < 0 {
		return nil, since, fmt.Errorf("%w: since %d: want 0 or more", replica.ErrInvalid, since)
	}
	rows, err := r.db.Read.QueryContext(ctx, `SELECT seq, id, pk, op, version, base, origin, ts, lsn, crts, lsn = 0 AND op != 'outcome', outcome, reason, body
		FROM changes WHERE container = ? AND seq > ? AND (? OR op != 'outcome') ORDER BY seq LIMIT ?`, containerName, since, outcomes, limit)
	if err != nil {
		return nil, since, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []replica.Change
	next := since
	for rows.Next() {
		var ch replica.Change
		var body []byte
		var outcome, reason string
		if err := rows.Scan(&ch.Seq, &ch.ID, &ch.PK, &ch.Op, &ch.Version, &ch.Base, &ch.Origin, &ch.TS, &ch.LSN, &ch.CRTS, &ch.Tentative, &outcome, &reason, &body); err != nil {
			return nil, since, fmt.Errorf("read changes: %w", err)
		}
		if ch.Op == OpOutcome {
			ch.Outcome, ch.Reason = outcome, reason
		} else if ch.Op != replica.OpDelete {
			ch.Document = replica.AppendWithSystem(nil, body, replica.SystemProps{
				TS: ch.TS, ETag: replica.ETagOf(ch.Version), LSN: ch.LSN, CRTS: ch.CRTS, Tentative: ch.Tentative,
			})
		}
		out = append(out, ch)
		next = ch.Seq
	}
	if err := rows.Err(); err != nil {
		return nil, since, fmt.Errorf("read changes: %w", err)
	}
	r.stats.ChangesServed.Add(int64(len(out)))
	return out, next, nil
}

// RecentChanges returns the change records of every container after
// position since, without documents, for live views: container, op, id,
// version, origin, outcome. At most limit.
func (r *Replica) RecentChanges(ctx context.Context, since int64, limit int) ([]replica.Change, int64, error) {
	limit, err := replica.PageLimit(limit)
	if err != nil {
		return nil, since, err
	}
	rows, err := r.db.Read.QueryContext(ctx, `SELECT seq, container, id, pk, op, version, origin, ts, lsn, crts, lsn = 0 AND op != 'outcome', outcome, reason
		FROM changes WHERE seq > ? ORDER BY seq LIMIT ?`, since, limit)
	if err != nil {
		return nil, since, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []replica.Change
	next := since
	for rows.Next() {
		var ch replica.Change
		if err := rows.Scan(&ch.Seq, &ch.Container, &ch.ID, &ch.PK, &ch.Op, &ch.Version, &ch.Origin, &ch.TS, &ch.LSN, &ch.CRTS, &ch.Tentative,
			&ch.Outcome, &ch.Reason); err != nil {
			return nil, since, fmt.Errorf("read changes: %w", err)
		}
		out = append(out, ch)
		next = ch.Seq
	}
	return out, next, rows.Err()
}

// Status is a snapshot of the replica's state.
type Status struct {
	NodeID     string `json:"nodeId"`
	Pending    int64  `json:"pending"` // tentative versions in the outbox
	LastSeq    int64  `json:"lastSeq"` // newest position of the local change feed
	Containers int    `json:"containers"`
	Durability string `json:"durability"`
	// ConflictSeq is the position in the hub's conflicts stream this node
	// has (it moves when a conflict in scope is recorded or settled).
	ConflictSeq int64 `json:"conflictSeq"`
	// ClockOffset is the hub's clock minus this node's in milliseconds, as
	// last measured (0 until then), ClockRTT that measurement's round trip
	// (its error is at most half of it), and ClockMeasuredAt when it was
	// measured (unix milliseconds, the hub's clock; 0: never in contact
	// with a hub). LastTS is the newest _ts this node has issued (clock.go).
	ClockOffset     int64 `json:"clockOffset"`
	ClockRTT        int64 `json:"clockRtt"`
	ClockMeasuredAt int64 `json:"clockMeasuredAt"`
	LastTS          int64 `json:"lastTs"`
}

// Status returns the replica's current state.
func (r *Replica) Status() Status {
	n := r.defs.Len()
	d := r.cfg.Durability
	if d == "" {
		d = "full"
	}
	c := r.Clock()
	return Status{NodeID: r.nodeID, Pending: r.pending.Load(), LastSeq: r.lastSeq.Load(), Containers: n, Durability: d,
		ConflictSeq: r.conflictSeq.Load(), ClockOffset: c.OffsetMs, ClockRTT: c.RTTMs, ClockMeasuredAt: c.MeasuredAt, LastTS: r.hlcPub.Load()}
}

// writeStmts are prepared once on the write connection.
type writeStmts struct {
	getContainer, putContainer                      *sql.Stmt
	getHead, insertChange, upsertLocal, updateLocal *sql.Stmt
	insertNewItem                                   *sql.Stmt
	// getLocal reads an item's local view inside a write; savepoint,
	// rollbackTo and release make a Batch all or nothing within its group.
	getLocal, savepoint, rollbackTo, release *sql.Stmt
}

func (s *writeStmts) all() []**sql.Stmt {
	return []**sql.Stmt{&s.getContainer, &s.putContainer, &s.getHead, &s.insertChange, &s.upsertLocal, &s.updateLocal, &s.insertNewItem,
		&s.getLocal, &s.savepoint, &s.rollbackTo, &s.release}
}

func (s *writeStmts) prepare(ctx context.Context, w *sqlitestore.Writer) error {
	texts := []string{
		`SELECT pk_path FROM containers WHERE name = ?`,
		`INSERT INTO containers (name, pk_path, policy, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`,
		`SELECT pk, version, deleted FROM items WHERE container = ? AND id = ?`,
		`INSERT INTO changes (seq, container, id, pk, op, version, base, origin, ts, tentative, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
		`INSERT INTO items (container, id, pk, version, seq, deleted, pending) VALUES (?, ?, ?, ?, ?, ?, 1)
			ON CONFLICT (container, id) DO UPDATE SET pk = excluded.pk, version = excluded.version,
				seq = excluded.seq, deleted = excluded.deleted, pending = pending + 1`,
		`UPDATE items SET version = ?4, seq = ?5, deleted = ?6, pending = pending + 1
			WHERE container = ?1 AND id = ?2 AND pk = ?3`,
		`INSERT INTO items (container, id, pk, version, seq, deleted, pending) VALUES (?, ?, ?, ?, ?, 0, 1)
			ON CONFLICT (container, id) DO NOTHING`,
		itemQuery + `i.container = ? AND i.id = ?`,
		`SAVEPOINT edge_batch`,
		`ROLLBACK TO edge_batch`,
		`RELEASE edge_batch`,
	}
	for i, dst := range s.all() {
		st, err := w.Prepare(ctx, texts[i]) // the writer owns and closes it
		if err != nil {
			return fmt.Errorf("%s: %w", texts[i], err)
		}
		*dst = st
	}
	return nil
}
