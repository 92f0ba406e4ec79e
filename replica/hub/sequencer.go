package hub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// head is an item's current confirmed version, with its content.
type head struct {
	container, id string
	pk            string
	lsn           int64
	deleted       bool
	cand          replica.Candidate
}

func (h *Hub) loadHead(ctx context.Context, containerName, id string) (*head, error) {
	hd := head{container: containerName, id: id}
	err := h.stmts.getHead.QueryRowContext(ctx, containerName, id).Scan(&hd.pk, &hd.cand.Version, &hd.lsn, &hd.deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read item: %w", err)
	}
	hd.cand.Deleted = hd.deleted
	return &hd, nil
}

// loadContent fills in the current version's body, origin and time, which
// only a conflict needs.
func (h *Hub) loadContent(ctx context.Context, hd *head) error {
	c, err := h.loadVersion(ctx, hd.container, hd.id, hd.cand.Version)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("current version %s of an item is missing", hd.cand.Version)
	}
	hd.cand.Origin, hd.cand.TS = c.Origin, c.TS
	if !hd.deleted {
		hd.cand.Body = c.Body
	}
	return nil
}

// loadVersion reads a version of the item (container, id) as decisions
// weigh it: its TS is the hub's receipt time if its _ts was clamped. A
// version id that is not one of that item's (an edge may push any id as a
// base) is as unknown as one the hub never saw: nil.
func (h *Hub) loadVersion(ctx context.Context, container, id, version string) (*replica.Candidate, error) {
	var c replica.Candidate
	var op string
	var clamped int64
	err := h.stmts.getVersionBody.QueryRowContext(ctx, version, container, id).Scan(&c.Body, &op, &c.Origin, &c.TS, &clamped)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read version: %w", err)
	}
	if clamped != 0 {
		c.TS = clamped
	}
	c.Version = version
	c.Deleted = op == replica.OpDelete
	return &c, nil
}

// nextLSN hands out the next log position (writer-owned).
func (h *Hub) nextLSN() int64 {
	h.lsn++
	return h.lsn
}

// nextCseq hands out the next conflict sequence number (writer-owned).
func (h *Hub) nextCseq() int64 {
	h.cseq++
	return h.cseq
}

// Push sequences a batch of tentative versions from the edge node nodeID,
// limited to scope (nil: everything), in one transaction. Each version gets
// an outcome; a bad version is rejected alone. Pushes are idempotent by
// version id: a version seen before gets the outcome it got then. It returns
// the outcomes and the highest LSN they refer to.
func (h *Hub) Push(ctx context.Context, nodeID string, scope []wire.ScopeEntry, versions []wire.Version) ([]wire.Outcome, int64, error) {
	wait, err := h.QueuePush(ctx, nodeID, scope, versions)
	if err != nil {
		return nil, 0, err
	}
	return wait()
}

// QueuePush queues a push (pushes are sequenced in the order they are
// queued) and returns a function that waits for its outcomes, so that a sync
// session can read and queue the next push while this one commits.
//
// Documents are parsed and validated here, on the caller's goroutine, so
// that the writer, which every push goes through one after the other, does
// not spend its time on it.
func (h *Hub) QueuePush(ctx context.Context, nodeID string, scope []wire.ScopeEntry, versions []wire.Version) (func() ([]wire.Outcome, int64, error), error) {
	out := make([]wire.Outcome, len(versions))
	parsed := make([]parsedBody, len(versions))
	for i := range versions {
		parsed[i].parse(&h.defs, &versions[i])
	}
	var maxLSN int64
	apply := func(ctx context.Context, lookup bool) error {
		maxLSN = 0
		for i := range versions {
			o, err := h.applyPushed(ctx, nodeID, scope, &versions[i], &parsed[i], lookup)
			if err != nil {
				return err
			}
			out[i] = o
			maxLSN = max(maxLSN, o.LSN)
		}
		return nil
	}
	wait, err := h.w.Queue(ctx, func(ctx context.Context) error {
		// Versions are not looked up before they are decided: one seen
		// before fails to be stored again (its id is the key of versions),
		// and then the push is undone and applied again, this time looking
		// every version up, so that each gets the outcome it got then.
		// Pushes are new versions but after a reconnection: this saves the
		// writer a lookup per version.
		if _, err := h.w.Exec(ctx, "SAVEPOINT push"); err != nil {
			return sqlitestore.Wrote("savepoint", err)
		}
		lsn, cseq := h.lsn, h.cseq
		undo := func() error {
			h.lsn, h.cseq = lsn, cseq
			_, err := h.w.Exec(ctx, "ROLLBACK TO push")
			return err
		}
		err := apply(ctx, false)
		if err != nil {
			if uerr := undo(); uerr != nil {
				return sqlitestore.Wrote("roll back to savepoint", uerr)
			}
			if err = apply(ctx, true); err != nil {
				if uerr := undo(); uerr != nil {
					return sqlitestore.Wrote("roll back to savepoint", uerr)
				}
			}
		}
		if _, rerr := h.w.Exec(ctx, "RELEASE push"); rerr != nil && err == nil {
			return sqlitestore.Wrote("release savepoint", rerr)
		}
		return err
	}, nil)
	if err != nil {
		if errors.Is(err, sqlitestore.ErrWriterClosed) {
			err = replica.ErrClosed
		}
		return nil, err
	}
	return func() ([]wire.Outcome, int64, error) {
		if err := wait(); err != nil {
			return nil, 0, err
		}
		return out, maxLSN, nil
	}, nil
}

// parsedBody is a pushed document parsed before its push reached the
// writer, with the partition key path it was parsed for.
type parsedBody struct {
	ok     bool // parsed
	pkPath []string
	doc    replica.Document
	err    error
}

// parse parses v's body for its container as defined now; a delete, or a
// container not defined yet, is left to the writer.
func (p *parsedBody) parse(defs *replica.Containers, v *wire.Version) {
	if v.Op == replica.OpDelete {
		return
	}
	c, err := defs.Get(v.Container)
	if err != nil {
		return
	}
	p.doc, p.err = replica.ParseDocument(v.Body, c.PKPath)
	p.ok, p.pkPath = true, c.PKPath
}

// applyPushed decides one pushed version inside the writer's transaction.
// Only storage failures are errors; everything else is an outcome. pre, if
// it was parsed for the container's partition key path as it is now, saves
// parsing the body again.
func (h *Hub) applyPushed(ctx context.Context, nodeID string, scope []wire.ScopeEntry, v *wire.Version, pre *parsedBody, lookup bool) (wire.Outcome, error) {
	o := wire.Outcome{Version: v.Version, Container: v.Container, ID: v.ID}
	if nodeID == h.hubID || !wire.IsVersionOf(v.Version, nodeID) {
		o.Outcome, o.Reason = replica.OutcomeRejected, fmt.Sprintf("version id %q was not issued by node %q: want the node id, '-' and a decimal counter", v.Version, nodeID)
		return o, nil
	}
	var prev struct {
		outcome, reason string
		lsn, cid        int64
	}
	err := sql.ErrNoRows
	if lookup {
		err = h.stmts.getOutcome.QueryRowContext(ctx, v.Version).Scan(&prev.outcome, &prev.lsn, &prev.reason, &prev.cid, &o.CRTS)
	}
	switch {
	case err == nil:
		o.Outcome, o.LSN, o.Reason, o.ConflictID = prev.outcome, prev.lsn, prev.reason, prev.cid
		if o.Outcome == "" {
			o.Outcome, o.Reason = replica.OutcomeRejected, "version id already used"
		}
		return o, nil
	case !errors.Is(err, sql.ErrNoRows):
		return o, fmt.Errorf("read version: %w", err)
	}
	// A rejected version leaves no trace: stored, its id would stand for
	// content the hub refused (and an id the hub or its node may issue
	// later would fail to store). Pushed again, it is decided again.
	reject := func(reason string) (wire.Outcome, error) {
		o.Outcome, o.Reason = replica.OutcomeRejected, reason
		return o, nil
	}
	c, err := h.defs.Get(v.Container)
	if err != nil {
		return reject(err.Error())
	}
	if ok, err := h.pushNew(ctx, nodeID, scope, c, v, pre, &o); ok || err != nil {
		return o, err
	}
	cur, err := h.loadHead(ctx, v.Container, v.ID)
	if err != nil {
		return o, err
	}
	// The hub's receipt time, recorded as the confirmation time and, for
	// a _ts from the future, as the time decisions take instead.
	now := h.cfg.Now().Unix()
	decideTS, clamped := h.decisionTS(v.TS, now)
	in := replica.Candidate{Version: v.Version, Origin: nodeID, TS: decideTS, Deleted: v.Op == replica.OpDelete}
	var pk string
	if in.Deleted {
		if cur == nil {
			return reject("delete of an item the hub does not have")
		}
		pk = cur.pk
	} else {
		doc, err := pre.doc, pre.err
		if !pre.ok || !slices.Equal(pre.pkPath, c.PKPath) {
			doc, err = replica.ParseDocument(v.Body, c.PKPath)
		}
		if err != nil {
			return reject(err.Error())
		}
		if doc.ID != v.ID {
			return reject(fmt.Sprintf("body id %q differs from the pushed id %q", doc.ID, v.ID))
		}
		pk, in.Body = doc.PK, doc.Body
	}
	if !wire.InScope(scope, v.Container, pk) {
		return reject(fmt.Sprintf("%s: container %q, partition key %q is outside this edge's scope", replica.ErrForbidden, v.Container, pk))
	}
	if cur != nil && !cur.deleted && !in.Deleted && cur.pk != pk {
		return reject(fmt.Sprintf("%s: item has partition key %q, the write has %q", replica.ErrPartitionKeyChange, cur.pk, pk))
	}
	var base, curCand *replica.Candidate
	if cur != nil {
		curCand = &cur.cand
		if cur.cand.Version != v.Base { // a conflict: the deciders need the contents
			if err := h.loadContent(ctx, cur); err != nil {
				return o, err
			}
			if v.Base != "" {
				if base, err = h.loadVersion(ctx, v.Container, v.ID, v.Base); err != nil {
					return o, err
				}
			}
		}
	}
	var res replica.Resolver
	resolverVersion := ""
	if p := c.Def.ConflictPolicy; p.Mode == replica.ModeCustom && curCand != nil && cur.cand.Version != v.Base {
		if r := h.boundResolver(ctx, p); r != nil {
			if r.conflicting, err = h.conflicting(ctx, v.Container, v.ID, v.Base, cur.cand.Version); err != nil {
				return o, err
			}
			res, resolverVersion = r, r.label()
		}
	}
	d := replica.Decide(v.Container, v.ID, in, v.Base, curCand, base, c.Def.ConflictPolicy, res)
	if d.Commit == replica.CommitMerged && !d.Deleted {
		// A merged document (built in or from a resolver) is a new
		// client document: it must pass the same checks.
		doc, err := replica.ParseDocument(d.Body, c.PKPath)
		switch {
		case err != nil:
			d = unresolvedDecision(d, fmt.Sprintf("merged document is invalid: %v", err))
		case doc.ID != v.ID || doc.PK != pk:
			d = unresolvedDecision(d, "merged document changes the id or the partition key")
		default:
			d.Body = doc.Body
		}
	}
	o.Outcome = d.Outcome
	if clamped && d.Conflict != nil {
		d.Conflict.Reason += clampNote(v.TS, decideTS)
	}
	switch d.Commit {
	case replica.CommitIncoming:
		o.LSN, o.CRTS = h.nextLSN(), now
		e := logEntry{lsn: o.LSN, id: v.ID, pk: pk, op: v.Op, version: v.Version, base: v.Base, origin: nodeID, ts: v.TS, crts: now, deleted: in.Deleted,
			samePK: cur != nil && cur.pk == pk}
		if d.Conflict != nil {
			e.resolver = resolverVersion
		}
		if err := h.confirm(ctx, c, e); err != nil {
			return o, err
		}
	case replica.CommitMerged:
		o.LSN = h.nextLSN()
		mv := h.hubID + "-" + strconv.FormatInt(o.LSN, 10)
		op := replica.OpReplace
		if d.Deleted {
			op = replica.OpDelete
		}
		if _, err := h.stmts.insertVersion.ExecContext(ctx, mv, v.Container, v.ID, pk, op, cur.cand.Version, h.hubID, now, d.Body, "", 0, "", 0); err != nil {
			return o, sqlitestore.Wrote("store merged version", err)
		}
		e := logEntry{lsn: o.LSN, id: v.ID, pk: pk, op: op, version: mv, base: cur.cand.Version, origin: h.hubID, ts: now, crts: now,
			deleted: d.Deleted, resolver: resolverVersion, samePK: cur.pk == pk}
		if err := h.confirm(ctx, c, e); err != nil {
			return o, err
		}
	default:
		o.LSN = cur.lsn
	}
	if d.Conflict != nil {
		o.Reason = d.Conflict.Reason
		existing := ""
		if cur != nil {
			existing = cur.cand.Version
		}
		res, err := h.stmts.insertConflict.ExecContext(ctx, v.Container, v.ID, pk, d.Conflict.Kind, d.Conflict.Status, c.Def.ConflictPolicy.Mode,
			d.Conflict.Loser, v.Version, existing, v.Base, o.LSN, d.Conflict.Reason, now, resolverVersion, h.nextCseq())
		if err != nil {
			return o, sqlitestore.Wrote("record conflict", err)
		}
		if o.ConflictID, err = res.LastInsertId(); err != nil {
			return o, sqlitestore.Wrote("record conflict", err)
		}
	}
	// The version with its outcome, so that a retried push gets the same.
	if _, err := h.stmts.insertVersion.ExecContext(ctx, v.Version, v.Container, v.ID, pk, v.Op, v.Base, nodeID, v.TS, in.Body,
		o.Outcome, o.LSN, o.Reason, o.ConflictID); err != nil {
		return o, sqlitestore.Wrote("store version", err)
	}
	if clamped {
		logged := int64(0)
		if d.Commit == replica.CommitIncoming {
			logged = o.LSN
		}
		if err := h.recordClamp(ctx, nodeID, v.Version, logged, decideTS); err != nil {
			return o, err
		}
	}
	return o, nil
}

// pushNew confirms a pushed version of an item the hub does not have, the
// common push, without reading the item first: the item row goes in first,
// and only if the item exists (or the version is one applyPushed refuses)
// does applyPushed take its full path. For an item the hub does not have,
// every decision of the full path is to confirm the version as written.
func (h *Hub) pushNew(ctx context.Context, nodeID string, scope []wire.ScopeEntry, c *replica.ContainerDef, v *wire.Version, pre *parsedBody, o *wire.Outcome) (bool, error) {
	if v.Op == replica.OpDelete || !pre.ok || pre.err != nil || !slices.Equal(pre.pkPath, c.PKPath) ||
		pre.doc.ID != v.ID || !wire.InScope(scope, v.Container, pre.doc.PK) {
		return false, nil
	}
	lsn := h.nextLSN()
	res, err := h.stmts.insertNewItem.ExecContext(ctx, c.Def.Name, v.ID, pre.doc.PK, v.Version, lsn)
	if err != nil {
		return false, sqlitestore.Wrote("store item", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		h.lsn-- // the item exists: the full path takes this LSN
		return false, nil
	}
	now := h.cfg.Now().Unix()
	if _, err := h.stmts.insertLogNew.ExecContext(ctx, lsn, c.Def.Name, v.ID, pre.doc.PK, v.Op, v.Version, v.Base, nodeID, v.TS, now,
		c.Def.ConflictPolicy.Mode); err != nil {
		return false, sqlitestore.Wrote("append to log", err)
	}
	o.Outcome, o.LSN, o.CRTS = replica.OutcomeConfirmed, lsn, now
	if _, err := h.stmts.insertVersionNew.ExecContext(ctx, v.Version, v.Container, v.ID, pre.doc.PK, v.Op, v.Base, nodeID, v.TS, pre.doc.Body,
		o.LSN); err != nil {
		return false, sqlitestore.Wrote("store version", err)
	}
	if decideTS, clamped := h.decisionTS(v.TS, now); clamped {
		if err := h.recordClamp(ctx, nodeID, v.Version, lsn, decideTS); err != nil {
			return false, err
		}
	}
	return true, nil
}

func unresolvedDecision(d replica.Decision, reason string) replica.Decision {
	kind := replica.KindReplace
	if d.Conflict != nil {
		kind = d.Conflict.Kind
	}
	return replica.Decision{Outcome: replica.OutcomeLost, Commit: replica.CommitNothing,
		Conflict: &replica.ConflictDecision{Kind: kind, Status: replica.StatusUnresolved, Loser: "incoming", Reason: reason}}
}

// logEntry is a confirmed version as the log records it.
type logEntry struct {
	lsn                               int64
	id, pk, op, version, base, origin string
	ts, crts                          int64
	deleted                           bool
	resolver, resolves                string
	// samePK: the item exists with partition key pk. It is then updated
	// without naming the key, so that SQLite leaves the partition key index
	// alone (rewriting its entry made an update several times dearer).
	samePK bool
}

// confirm appends a version to the log and makes it the item's current one.
func (h *Hub) confirm(ctx context.Context, c *replica.ContainerDef, e logEntry) error {
	if err := h.appendLog(ctx, c, e); err != nil {
		return err
	}
	st := h.stmts.upsertItem
	if e.samePK {
		st = h.stmts.updateItem
	}
	res, err := st.ExecContext(ctx, c.Def.Name, e.id, e.pk, e.version, e.lsn, e.deleted)
	if err == nil {
		if n, _ := res.RowsAffected(); n != 1 {
			err = fmt.Errorf("%d rows changed, want 1", n)
		}
	}
	if err != nil {
		return sqlitestore.Wrote("store item", err)
	}
	return nil
}

// appendLog appends a confirmed version to the log.
func (h *Hub) appendLog(ctx context.Context, c *replica.ContainerDef, e logEntry) error {
	if _, err := h.stmts.insertLog.ExecContext(ctx, e.lsn, c.Def.Name, e.id, e.pk, e.op, e.version, e.base, e.origin, e.ts, e.crts,
		c.Def.ConflictPolicy.Mode, e.resolver, e.resolves); err != nil {
		return sqlitestore.Wrote("append to log", err)
	}
	return nil
}

// WriteOptions are the preconditions of a write made at the hub.
type WriteOptions struct {
	IfMatch string // an etag, a list of them, or "*"
}

// Create writes a new item at the hub, confirmed at once.
func (h *Hub) Create(ctx context.Context, containerName string, body []byte) (replica.Item, error) {
	it, _, err := h.write(ctx, replica.WriteCreate, containerName, "", body, WriteOptions{})
	return it, err
}

// Upsert creates or replaces an item at the hub, confirmed at once.
func (h *Hub) Upsert(ctx context.Context, containerName, id string, body []byte, opt WriteOptions) (replica.Item, bool, error) {
	return h.write(ctx, replica.WriteUpsert, containerName, id, body, opt)
}

// Delete deletes an item at the hub, confirmed at once.
func (h *Hub) Delete(ctx context.Context, containerName, id string, opt WriteOptions) error {
	_, _, err := h.write(ctx, replica.WriteDelete, containerName, id, nil, opt)
	return err
}

func (h *Hub) write(ctx context.Context, kind int, containerName, id string, body []byte, opt WriteOptions) (replica.Item, bool, error) {
	h.w.Enter()
	defer h.w.Leave()
	c, err := h.defs.Get(containerName)
	if err != nil {
		return replica.Item{}, false, err
	}
	doc, err := replica.PrepareWrite(kind, c.PKPath, id, body)
	if err != nil {
		return replica.Item{}, false, err
	}
	var it replica.Item
	var created bool
	err = h.submit(ctx, func(ctx context.Context) error {
		cur, err := h.loadHead(ctx, c.Def.Name, doc.ID)
		if err != nil {
			return err
		}
		head, base := replica.Head{}, ""
		if cur != nil {
			head = replica.Head{Exists: true, Deleted: cur.deleted, Version: cur.cand.Version, PK: cur.pk}
			base = cur.cand.Version
		}
		op, pk, err := replica.CheckWrite(kind, c.Def.Name, doc.ID, head, doc.PK, opt.IfMatch)
		if err != nil {
			return err
		}
		doc.PK = pk
		lsn := h.nextLSN()
		now := h.cfg.Now().Unix()
		it = replica.Item{Container: c.Def.Name, ID: doc.ID, PK: doc.PK, Body: doc.Body, Version: h.hubID + "-" + strconv.FormatInt(lsn, 10),
			Base: base, Origin: h.hubID, TS: now, LSN: lsn, CRTS: now, Deleted: kind == replica.WriteDelete}
		if _, err := h.stmts.insertVersion.ExecContext(ctx, it.Version, it.Container, it.ID, it.PK, op, base, h.hubID, now, it.Body,
			replica.OutcomeConfirmed, lsn, "", 0); err != nil {
			return sqlitestore.Wrote("store version", err)
		}
		created = op == replica.OpCreate
		return h.confirm(ctx, c, logEntry{lsn: lsn, id: it.ID, pk: it.PK, op: op, version: it.Version, base: base, origin: h.hubID,
			ts: now, crts: now, deleted: it.Deleted, samePK: cur != nil && cur.pk == it.PK})
	}, nil)
	if err != nil {
		return replica.Item{}, false, err
	}
	return it, created, nil
}
