package hub

import (
	"context"
	"fmt"
)

// Rows is a backend's result set as ScanConflicts reads it (*sql.Rows and
// pgx.Rows both fit).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// ScanConflicts reads the conflict records of rows, whose columns are cid,
// cseq, kind, status, container, doc_id, pk, policy, loser, incoming,
// existing, base, winner_lsn, reason, created_at, resolver; calls closeRows;
// then reads each side through version as a version of the record's own
// item, which the caller checked against the scope: a base pushed as the id
// of another item's version reads as unknown. It returns up to about
// maxBytes of documents (0: no limit; at least one record). Every backend
// reads conflicts through it.
func ScanConflicts(ctx context.Context, rows Rows, closeRows func(),
	version func(ctx context.Context, container, id, version string) (*ConflictVersion, error), maxBytes int) ([]Conflict, error) {
	type ids struct{ incoming, existing, base string }
	var out []Conflict
	var vs []ids
	for rows.Next() {
		var c Conflict
		var v ids
		if err := rows.Scan(&c.ID, &c.Seq, &c.Kind, &c.Status, &c.Container, &c.DocID, &c.PK, &c.Policy, &c.Loser, &v.incoming, &v.existing, &v.base,
			&c.WinnerLSN, &c.Reason, &c.CreatedAt, &c.Resolver); err != nil {
			closeRows()
			return nil, fmt.Errorf("read conflicts: %w", err)
		}
		out = append(out, c)
		vs = append(vs, v)
	}
	closeRows()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read conflicts: %w", err)
	}
	size := 0
	for i := range out {
		c := &out[i]
		var err error
		if c.Incoming, err = version(ctx, c.Container, c.DocID, vs[i].incoming); err == nil {
			if c.Existing, err = version(ctx, c.Container, c.DocID, vs[i].existing); err == nil {
				c.Base, err = version(ctx, c.Container, c.DocID, vs[i].base)
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
