package edge

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// This file is the replica's side of sync: what the sync client reads from
// the outbox and applies from the hub. Everything runs through the writer,
// so hub changes and local writes interleave in one order.

// OpOutcome is the op of a local change record that reports the hub's
// outcome for one of this node's writes.
const OpOutcome = "outcome"

// SyncState is what the node learnt from its hub, kept across restarts so
// that it works offline after the first contact.
type SyncState struct {
	HubID      string            `json:"hubId"`
	Edge       string            `json:"edge"`
	Scope      []wire.ScopeEntry `json:"scope"`      // empty: everything
	Mismatched []string          `json:"mismatched"` // containers whose writes are held
	ResumeLSN  int64             `json:"resumeLsn"`
}

func (r *Replica) loadSyncState(ctx context.Context, db *sql.DB) error {
	var raw string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'sync'`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		r.sync.Store(&SyncState{})
		return nil
	}
	if err != nil {
		return err
	}
	var st SyncState
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return fmt.Errorf("sync state: %w", err)
	}
	r.sync.Store(&st)
	return nil
}

// SyncState returns what the node last learnt from its hub.
func (r *Replica) SyncState() SyncState { return *r.sync.Load() }

// ResumeLSN is the hub LSN up to which this node has applied the log.
func (r *Replica) ResumeLSN() int64 { return r.sync.Load().ResumeLSN }

// Pending is the number of own writes without an outcome.
func (r *Replica) Pending() int64 { return r.pending.Load() }

// saveSyncState stores st in the writer's transaction and makes it the
// writer's sync state; the caller publishes it (r.sync) after the commit.
func (r *Replica) saveSyncState(ctx context.Context, st *SyncState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := r.w.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('sync', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, string(b)); err != nil {
		return sqlitestore.Wrote("store sync state", err)
	}
	r.wsync = *st
	return nil
}

// Welcome applies a hub's welcome: the hub's identity, this node's scope, the
// container definitions in scope (the hub's win, except for containers whose
// definitions disagree, whose writes the node holds) and the mismatches.
func (r *Replica) Welcome(ctx context.Context, f *wire.Frame) error {
	var st SyncState
	return r.submit(ctx, func(ctx context.Context) error {
		st = r.wsync
		st.HubID, st.Edge, st.Scope, st.Mismatched = f.HubID, f.Edge, f.Scope, f.Mismatched
		if st.Scope == nil {
			st.Scope = []wire.ScopeEntry{}
		}
		if err := r.adoptContainers(ctx, f.Containers, st.Mismatched); err != nil {
			return err
		}
		return r.saveSyncState(ctx, &st)
	}, func() {
		r.sync.Store(&st)
		r.setContainers(f.Containers, st.Mismatched)
	})
}

func (r *Replica) adoptContainers(ctx context.Context, defs []replica.Container, mismatched []string) error {
	for _, d := range defs {
		if containsString(mismatched, d.Name) {
			continue
		}
		d, err := d.Normalize()
		if err != nil {
			return fmt.Errorf("container %q from the hub: %w", d.Name, err)
		}
		policy, err := json.Marshal(d.ConflictPolicy)
		if err != nil {
			return err
		}
		if _, err := r.w.Exec(ctx, `INSERT INTO containers (name, pk_path, policy, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET pk_path = excluded.pk_path, policy = excluded.policy, updated_at = excluded.updated_at`,
			d.Name, d.PartitionKey, string(policy), r.cfg.Now().Unix()); err != nil {
			return sqlitestore.Wrote("store container", err)
		}
		// The hub's indexing policy, when it has one, is the node's: new
		// paths are built by the index builder after the commit.
		if d.IndexingPolicy != nil {
			if _, err := r.setIndexPaths(ctx, d.Name, d.IndexingPolicy); err != nil {
				return err
			}
		}
	}
	return nil
}

// setContainers publishes the definitions adopted from the hub, after
// their commit, and wakes the index builder when one brings an indexing
// policy.
func (r *Replica) setContainers(defs []replica.Container, mismatched []string) {
	kick := false
	for _, d := range defs {
		if containsString(mismatched, d.Name) {
			continue
		}
		if d, err := d.Normalize(); err == nil {
			if d.IndexingPolicy != nil {
				kick = true
			} else if old, err := r.defs.Get(d.Name); err == nil {
				d.IndexingPolicy = old.Def.IndexingPolicy // the hub has none: the node's own stays
			}
			r.defs.Set(d)
		}
	}
	if kick {
		r.kickBuild()
	}
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Outbox returns own tentative versions without an outcome after seq, in
// order, at most max of them and about maxBytes of bodies, skipping
// containers whose writes are held. It returns the last seq it read.
func (r *Replica) Outbox(ctx context.Context, after int64, max, maxBytes int) ([]wire.Version, int64, error) {
	return r.outbox(ctx, after, max, maxBytes, nil)
}

// outbox is Outbox that also skips the versions of containers for which
// pushable, when set, is false.
func (r *Replica) outbox(ctx context.Context, after int64, max, maxBytes int, pushable func(container string) bool) ([]wire.Version, int64, error) {
	held := r.sync.Load().Mismatched
	rows, err := r.getOutbox.QueryContext(ctx, after, max)
	if err != nil {
		return nil, after, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []wire.Version
	last, size := after, 0
	for rows.Next() {
		var v wire.Version
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &v.Container, &v.ID, &v.Op, &v.Version, &v.Base, &v.TS, &body); err != nil {
			return nil, after, fmt.Errorf("read outbox: %w", err)
		}
		if size+len(body) > maxBytes && len(out) > 0 {
			break
		}
		last = seq
		if containsString(held, v.Container) || (pushable != nil && !pushable(v.Container)) {
			continue
		}
		if v.Op != replica.OpDelete {
			v.Body = body
		}
		size += len(body)
		out = append(out, v)
	}
	return out, last, rows.Err()
}

// ApplyConfirmed applies confirmed changes from the hub, in LSN order, and
// advances the resume point to covered (the stream's position, which may be
// past the last change when the scope filtered some out). A change already
// applied (by LSN) is skipped. Containers the frame defines are adopted first.
func (r *Replica) ApplyConfirmed(ctx context.Context, defs []replica.Container, changes []wire.Change, covered int64) error {
	wait, err := r.QueueConfirmed(ctx, defs, changes, covered)
	if err != nil {
		return err
	}
	return wait()
}

// QueueConfirmed is ApplyConfirmed in two steps: it queues the work behind
// what is queued already and returns a function that waits for it to be
// durable. A sync session queues the next frame's work while this one
// commits, so that frames can share a commit.
func (r *Replica) QueueConfirmed(ctx context.Context, defs []replica.Container, changes []wire.Change, covered int64) (func() error, error) {
	if len(changes) == 0 && len(defs) == 0 && covered <= r.ResumeLSN() {
		return noWait, nil
	}
	var st SyncState
	var lastSeq int64
	return r.queue(ctx, func(ctx context.Context) error {
		st, lastSeq = r.wsync, 0
		if len(changes) == 0 && len(defs) == 0 && covered <= st.ResumeLSN {
			return nil
		}
		if err := r.adoptContainers(ctx, defs, st.Mismatched); err != nil {
			return err
		}
		for i := range changes {
			c := &changes[i]
			seq, err := r.applyConfirmed(ctx, c)
			if err != nil {
				return err
			}
			lastSeq = max(lastSeq, seq)
			st.ResumeLSN = max(st.ResumeLSN, c.LSN)
		}
		st.ResumeLSN = max(st.ResumeLSN, covered)
		return r.saveSyncState(ctx, &st)
	}, func() {
		r.sync.Store(&st)
		r.setContainers(defs, st.Mismatched)
		if lastSeq > 0 {
			r.lastSeq.Store(lastSeq)
		}
	})
}

func noWait() error { return nil }

func (r *Replica) applyConfirmed(ctx context.Context, c *wire.Change) (int64, error) {
	if c.Resolves == "" && c.Origin != r.nodeID {
		// A version of an item this node does not have (a new edge catching
		// up, another node's create): the item row goes in first, unless
		// the item exists, which spares reading it.
		seq := r.seq + 1
		res, err := r.w.Exec(ctx, `INSERT INTO items (container, id, pk, version, seq, deleted, c_seq, c_lsn, pending) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?7, 0)
			ON CONFLICT (container, id) DO NOTHING`, c.Container, c.ID, c.PK, c.Version, seq, c.Op == replica.OpDelete, c.LSN)
		if err != nil {
			return 0, sqlitestore.Wrote("store confirmed item", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			r.seq = seq
			return seq, r.recordConfirmed(ctx, c, seq)
		}
	}
	var cLSN, pending int64
	var curPK string
	err := r.w.QueryRow(ctx, `SELECT c_lsn, pending, pk FROM items WHERE container = ? AND id = ?`, c.Container, c.ID).Scan(&cLSN, &pending, &curPK)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	if exists && c.LSN <= cLSN {
		return 0, nil // applied before
	}
	if c.Resolves != "" {
		if err := r.recordSettled(ctx, c); err != nil {
			return 0, err
		}
	}
	seq, err := r.confirmOwn(ctx, c)
	if err != nil {
		return 0, err
	}
	if seq == 0 {
		r.seq++
		seq = r.seq
		if err := r.recordConfirmed(ctx, c, seq); err != nil {
			return 0, err
		}
	}
	deleted := c.Op == replica.OpDelete
	// The confirmed pointer always moves; the local view follows it unless
	// own writes are still waiting for their outcome. An item that keeps its
	// partition key is updated in place, without the upsert's conflict
	// handling.
	if exists && curPK == c.PK {
		if _, err := r.w.Exec(ctx, `UPDATE items SET c_seq = ?1, c_lsn = ?2,
				version = CASE WHEN pending = 0 THEN ?3 ELSE version END,
				seq = CASE WHEN pending = 0 THEN ?1 ELSE seq END,
				deleted = CASE WHEN pending = 0 THEN ?4 ELSE deleted END
			WHERE container = ?5 AND id = ?6`, seq, c.LSN, c.Version, deleted, c.Container, c.ID); err != nil {
			return 0, sqlitestore.Wrote("store confirmed item", err)
		}
		return seq, nil
	}
	if _, err := r.w.Exec(ctx, `INSERT INTO items (container, id, pk, version, seq, deleted, c_seq, c_lsn, pending) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
		ON CONFLICT (container, id) DO UPDATE SET c_seq = excluded.c_seq, c_lsn = excluded.c_lsn,
			pk = CASE WHEN pending = 0 THEN excluded.pk ELSE pk END,
			version = CASE WHEN pending = 0 THEN excluded.version ELSE version END,
			seq = CASE WHEN pending = 0 THEN excluded.seq ELSE seq END,
			deleted = CASE WHEN pending = 0 THEN excluded.deleted ELSE deleted END`,
		c.Container, c.ID, c.PK, c.Version, seq, deleted, seq, c.LSN); err != nil {
		return 0, sqlitestore.Wrote("store confirmed item", err)
	}
	return seq, nil
}

// recordConfirmed records a confirmed version from the hub in changes.
func (r *Replica) recordConfirmed(ctx context.Context, c *wire.Change, seq int64) error {
	var body []byte
	if c.Op != replica.OpDelete {
		body = c.Body
	}
	if _, err := r.w.Exec(ctx, `INSERT INTO changes (seq, container, id, pk, op, version, base, origin, ts, lsn, crts, tentative, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)`, seq, c.Container, c.ID, c.PK, c.Op, c.Version, c.Base, c.Origin, c.TS, c.LSN, c.CRTS, body); err != nil {
		return sqlitestore.Wrote("record confirmed change", err)
	}
	return nil
}

// confirmOwn gives one of this node's own versions, confirmed as written,
// its LSN in place and returns its change seq; 0 if c is not an own version
// this node still has.
func (r *Replica) confirmOwn(ctx context.Context, c *wire.Change) (int64, error) {
	seq, ok := r.ownSeq(c.Version)
	if !ok || c.Origin != r.nodeID {
		return 0, nil
	}
	res, err := r.w.Exec(ctx, `UPDATE changes SET lsn = ?, crts = ? WHERE seq = ? AND version = ? AND lsn = 0`, c.LSN, c.CRTS, seq, c.Version)
	if err != nil {
		return 0, sqlitestore.Wrote("confirm own version", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return 0, nil
	}
	return seq, nil
}

// ownSeq is the change seq of one of this node's version ids.
func (r *Replica) ownSeq(version string) (int64, bool) {
	own, ok := strings.CutPrefix(version, r.nodeID+"-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(own, 10, 64)
	return seq, err == nil && seq > 0
}

// ApplyOutcomes records the hub's outcomes for own writes: each write leaves
// the outbox, the local feed gets an outcome record, and an item without
// other pending writes shows its confirmed state again. Outcomes already
// applied are skipped.
//
// covered, when past the resume point, is the stream position the hub says
// it has covered (through changes it did not send this node); it is saved in
// the same transaction.
func (r *Replica) ApplyOutcomes(ctx context.Context, outcomes []wire.Outcome, covered int64) error {
	wait, err := r.QueueOutcomes(ctx, outcomes, covered)
	if err != nil {
		return err
	}
	return wait()
}

// QueueOutcomes is ApplyOutcomes in two steps, like QueueConfirmed.
func (r *Replica) QueueOutcomes(ctx context.Context, outcomes []wire.Outcome, covered int64) (func() error, error) {
	resolved := 0
	var lastSeq int64
	var st SyncState
	var save bool
	return r.queue(ctx, func(ctx context.Context) error {
		resolved, lastSeq = 0, 0
		st = r.wsync
		save = covered > st.ResumeLSN
		for i := range outcomes {
			o := &outcomes[i]
			if unknownContainer(o) {
				// The hub does not have the container: the write stays in
				// the outbox and the container's writes are held until a
				// hello tells the hub its definition.
				if !containsString(st.Mismatched, o.Container) {
					st.Mismatched = append(slices.Clip(st.Mismatched), o.Container)
					save = true
				}
				continue
			}
			ok, seq, err := r.applyOutcome(ctx, o)
			if err != nil {
				return err
			}
			if ok {
				resolved++
				lastSeq = seq
			}
		}
		if save {
			st.ResumeLSN = max(st.ResumeLSN, covered)
			return r.saveSyncState(ctx, &st)
		}
		return nil
	}, func() {
		r.pending.Add(-int64(resolved))
		if lastSeq > 0 {
			r.lastSeq.Store(lastSeq)
		}
		if save {
			r.sync.Store(&st)
		}
	})
}

// unknownContainer reports whether o rejects a write because the hub does
// not have its container. Such a write is not dropped: its container was
// defined on this node and the hub has not been told yet (or disagrees), so
// the write waits in the outbox, like the writes of a mismatched container.
func unknownContainer(o *wire.Outcome) bool {
	return o.Outcome == replica.OutcomeRejected && strings.HasPrefix(o.Reason, replica.ErrContainerNotFound.Error())
}

func (r *Replica) applyOutcome(ctx context.Context, o *wire.Outcome) (bool, int64, error) {
	vseq, ok := r.ownSeq(o.Version)
	if !ok {
		return false, 0, nil // not ours: ignore
	}
	// Confirmed as written: the version itself gets its LSN (the hub does
	// not stream an edge's own versions back).
	var ownLSN, ownCRTS int64
	if o.Outcome == replica.OutcomeConfirmed {
		ownLSN, ownCRTS = o.LSN, o.CRTS
	}
	var res sql.Result
	var err error
	if ownLSN > 0 && o.Reason == "" {
		// The common outcome, its constants written into the statement
		// rather than bound (a text argument costs the driver an
		// allocation under a process-wide lock).
		res, err = r.w.Exec(ctx, `UPDATE changes SET resolved = 1, outcome = 'confirmed', reason = '', lsn = ?, crts = ?
			WHERE seq = ? AND tentative = 1 AND resolved = 0`, ownLSN, ownCRTS, vseq)
	} else {
		res, err = r.w.Exec(ctx, `UPDATE changes SET resolved = 1, outcome = ?, reason = ?,
				lsn = CASE WHEN ? > 0 THEN ? ELSE lsn END, crts = CASE WHEN ? > 0 THEN ? ELSE crts END
			WHERE seq = ? AND tentative = 1 AND resolved = 0`, o.Outcome, o.Reason, ownLSN, ownLSN, ownLSN, ownCRTS, vseq)
	}
	if err != nil {
		return false, 0, sqlitestore.Wrote("resolve outbox entry", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, 0, nil // applied before
	}
	if ownLSN > 0 {
		// The common outcome: a version confirmed as written that is the
		// item's local view and its only pending write. The item now shows
		// it as confirmed; nothing else moves, and the item's partition key
		// is the version's.
		res, err := r.w.Exec(ctx, `UPDATE items SET pending = 0, c_seq = ?1, c_lsn = ?2
			WHERE container = ?3 AND id = ?4 AND seq = ?1 AND pending = 1 AND c_lsn < ?2`, vseq, ownLSN, o.Container, o.ID)
		if err != nil {
			return false, 0, sqlitestore.Wrote("settle item", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			seq, err := r.recordOutcome(ctx, o.Container, o.ID, nil, o.Version, vseq, o.LSN, 0, o.Outcome, o.Reason)
			return err == nil, seq, err
		}
	}
	// One write fewer pending; a version confirmed as written becomes the
	// confirmed one unless the item has moved on. SET sees the old values,
	// RETURNING the new.
	var pk string
	var pending, cSeq, localSeq int64
	err = r.w.QueryRow(ctx, `UPDATE items SET pending = pending - 1,
			c_seq = (CASE WHEN ?1 > c_lsn THEN ?2 ELSE c_seq END), c_lsn = max(c_lsn, ?1)
		WHERE container = ?3 AND id = ?4 RETURNING pk, pending, c_seq, seq`, ownLSN, vseq, o.Container, o.ID).Scan(&pk, &pending, &cSeq, &localSeq)
	if err == nil && pending == 0 && cSeq != 0 && cSeq != localSeq {
		// No write left pending: the local view shows the confirmed version
		// again. Commonly it already does (the last own write was confirmed
		// as written), and this second statement is not run.
		err = r.w.QueryRow(ctx, `UPDATE items SET seq = ?1,
				version = (SELECT version FROM changes WHERE seq = ?1),
				pk = (SELECT pk FROM changes WHERE seq = ?1),
				deleted = (SELECT op = 'delete' FROM changes WHERE seq = ?1)
			WHERE container = ?2 AND id = ?3 RETURNING pk`, cSeq, o.Container, o.ID).Scan(&pk)
	}
	itemGone := errors.Is(err, sql.ErrNoRows)
	if err != nil && !itemGone {
		return false, 0, sqlitestore.Wrote("settle item", err)
	}
	if !itemGone && pending <= 0 && cSeq == 0 {
		// Never confirmed (a rejected create): the item is gone.
		if _, err := r.w.Exec(ctx, `DELETE FROM items WHERE container = ? AND id = ?`, o.Container, o.ID); err != nil {
			return false, 0, sqlitestore.Wrote("drop item", err)
		}
	}
	seq, err := r.recordOutcome(ctx, o.Container, o.ID, pk, o.Version, vseq, o.LSN, 0, o.Outcome, o.Reason)
	return err == nil, seq, err
}

// recordOutcome appends to the local feed, under the next seq, the outcome
// of own version vseq; a nil pk takes the version's partition key.
func (r *Replica) recordOutcome(ctx context.Context, container, id string, pk any, version string, vseq, lsn, crts int64, outcome, reason string) (int64, error) {
	r.seq++
	if pk == nil && crts == 0 && outcome == replica.OutcomeConfirmed && reason == "" {
		// The common record, its constants written into the statement.
		if _, err := r.w.Exec(ctx, r.recordConfirmedSQL, r.seq, container, id, vseq, version, r.cfg.Now().Unix(), lsn); err != nil {
			return 0, sqlitestore.Wrote("record outcome", err)
		}
		return r.seq, nil
	}
	if _, err := r.w.Exec(ctx, `INSERT INTO changes (seq, container, id, pk, op, version, base, origin, ts, lsn, crts, tentative, outcome, reason)
		VALUES (?1, ?2, ?3, coalesce(?4, (SELECT pk FROM changes WHERE seq = ?5)), ?6, ?7, '', ?8, ?9, ?10, ?11, 0, ?12, ?13)`,
		r.seq, container, id, pk, vseq, OpOutcome, version, r.nodeID, r.cfg.Now().Unix(), lsn, crts, outcome, reason); err != nil {
		return 0, sqlitestore.Wrote("record outcome", err)
	}
	return r.seq, nil
}

// recordSettled records in the local feed the outcome of an own version
// whose unresolved conflict the hub settled with c (POST
// .../conflicts/{cid}/resolve): confirmed when c carries that version's
// content, merged when it carries another document.
func (r *Replica) recordSettled(ctx context.Context, c *wire.Change) error {
	vseq, ok := r.ownSeq(c.Resolves)
	if !ok {
		return nil
	}
	var op string
	var body []byte
	err := r.w.QueryRow(ctx, `SELECT op, body FROM changes WHERE seq = ? AND version = ?`, vseq, c.Resolves).Scan(&op, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	outcome := replica.OutcomeMerged
	if (op == replica.OpDelete) == (c.Op == replica.OpDelete) && bytes.Equal(body, c.Body) {
		outcome = replica.OutcomeConfirmed
	}
	_, err = r.recordOutcome(ctx, c.Container, c.ID, c.PK, c.Resolves, vseq, c.LSN, c.CRTS, outcome,
		"conflict resolved at the hub as version "+c.Version)
	return err
}
