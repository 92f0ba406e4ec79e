package edge

import (
	"context"
	"fmt"

	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/wire"
)

// Query runs a query (docs/queries.md) over a container's live items and
// returns one page of its result. It reads the local view, where a version
// not yet confirmed carries "_tentative": true, or with ConsistencyConfirmed
// only confirmed versions. Once the node knows its scope, items outside it
// (local writes the hub will refuse) are left out.
//
// Every live item of the container is read, in id order, on the read pool:
// a query never holds up a write, and the cost grows with the container.
func (r *Replica) Query(ctx context.Context, containerName string, req query.Request, consistency string, opt query.Options) (query.Page, error) {
	if _, err := r.defs.Get(containerName); err != nil {
		return query.Page{}, err
	}
	if err := checkConsistency(consistency); err != nil {
		return query.Page{}, err
	}
	base := itemQuery + `i.deleted = 0`
	if consistency == ConsistencyConfirmed {
		base = confirmedQuery + `c.op != 'delete'`
	}
	st := r.SyncState()
	scoped := st.HubID != ""
	var n int64
	src := func(ctx context.Context, fn func([]byte) error) error {
		rows, err := r.db.Read.QueryContext(ctx, base+` AND i.container = ? ORDER BY i.id`, containerName)
		if err != nil {
			return fmt.Errorf("query items: %w", err)
		}
		defer rows.Close()
		var doc []byte
		for rows.Next() {
			it, err := scanItem(rows)
			if err != nil {
				return fmt.Errorf("query items: %w", err)
			}
			if scoped && !wire.InScope(st.Scope, containerName, it.PK) {
				continue
			}
			n++
			doc = it.AppendJSON(doc[:0])
			if err := fn(doc); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("query items: %w", err)
		}
		return nil
	}
	p, err := query.Execute(ctx, req, src, opt)
	r.stats.ReadsServed.Add(n)
	return p, err
}
