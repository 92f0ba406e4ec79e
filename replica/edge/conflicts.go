package edge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// The conflicts feed on an edge is a copy of the hub's, limited to the
// node's scope: the hub streams each conflict when it is recorded and again
// when it is settled, and the node keeps the latest record of each, so an
// app can read which of the writes in its scope lost, to what, and whether
// someone settled them, offline as well.

// loadConflictSeq reads the conflicts stream's resume point.
func (r *Replica) loadConflictSeq(ctx context.Context, db *sql.DB) error {
	var raw string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'conflict_seq'`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	seq, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return fmt.Errorf("conflict_seq %q: %w", raw, err)
	}
	r.conflictSeq.Store(seq)
	return nil
}

// ConflictSeq is the position in the hub's conflicts stream up to which this
// node has its records.
func (r *Replica) ConflictSeq() int64 { return r.conflictSeq.Load() }

// ApplyConflicts stores records of the hub's conflicts feed (a newer record
// of a conflict replaces the one stored) and advances the resume point to
// covered.
func (r *Replica) ApplyConflicts(ctx context.Context, conflicts []wire.Conflict, covered int64) error {
	wait, err := r.QueueConflicts(ctx, conflicts, covered)
	if err != nil {
		return err
	}
	return wait()
}

// QueueConflicts is ApplyConflicts in two steps, like QueueConfirmed.
func (r *Replica) QueueConflicts(ctx context.Context, conflicts []wire.Conflict, covered int64) (func() error, error) {
	if len(conflicts) == 0 && covered <= r.ConflictSeq() {
		return noWait, nil
	}
	records := make([][]byte, len(conflicts))
	for i := range conflicts {
		var err error
		if records[i], err = json.Marshal(&conflicts[i]); err != nil {
			return nil, err
		}
	}
	var position int64
	return r.queue(ctx, func(ctx context.Context) error {
		for i := range conflicts {
			c := &conflicts[i]
			if _, err := r.w.Exec(ctx, `INSERT INTO conflicts (cid, cseq, container, status, record) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (cid) DO UPDATE SET cseq = excluded.cseq, container = excluded.container, status = excluded.status, record = excluded.record
				WHERE excluded.cseq > conflicts.cseq`, c.ID, c.Seq, c.Container, c.Status, records[i]); err != nil {
				return sqlitestore.Wrote("store conflict", err)
			}
		}
		if covered > r.wconflict {
			if _, err := r.w.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('conflict_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
				strconv.FormatInt(covered, 10)); err != nil {
				return sqlitestore.Wrote("store conflict position", err)
			}
			r.wconflict = covered
		}
		position = r.wconflict
		return nil
	}, func() {
		if position > r.conflictSeq.Load() {
			r.conflictSeq.Store(position)
		}
	})
}

// Conflicts returns a container's conflicts feed as this node knows it: the
// records after conflict id after, oldest first, optionally only those with
// status, at most limit. Each record is the JSON the hub serves.
func (r *Replica) Conflicts(ctx context.Context, containerName, status string, after int64, limit int) ([]json.RawMessage, int64, error) {
	if _, err := r.defs.Get(containerName); err != nil {
		return nil, after, err
	}
	if status != "" && status != replica.StatusResolved && status != replica.StatusUnresolved {
		return nil, after, fmt.Errorf("%w: status %q: want resolved or unresolved", replica.ErrInvalid, status)
	}
	if after < 0 {
		return nil, after, fmt.Errorf("%w: continuation %d: want 0 or more", replica.ErrInvalid, after)
	}
	limit, err := replica.PageLimit(limit)
	if err != nil {
		return nil, after, err
	}
	q := `SELECT cid, record FROM conflicts WHERE container = ? AND cid > ?`
	args := []any{containerName, after}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	rows, err := r.db.Read.QueryContext(ctx, q+` ORDER BY cid LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, after, fmt.Errorf("read conflicts: %w", err)
	}
	defer rows.Close()
	out := []json.RawMessage{}
	next := after
	for rows.Next() {
		var rec []byte
		if err := rows.Scan(&next, &rec); err != nil {
			return nil, after, fmt.Errorf("read conflicts: %w", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("read conflicts: %w", err)
	}
	return out, next, nil
}
