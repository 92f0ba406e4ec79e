package hub

import (
	"context"
	"fmt"

	"github.com/edgesync/edgesync/replica/query"
)

// Query runs a query (docs/queries.md) over a container's confirmed live
// items and returns one page of its result.
//
// Every live item of the container is read, in id order, on the read pool:
// a query never holds up the sequencer's writes, and the cost grows with
// the container.
func (h *Hub) Query(ctx context.Context, containerName string, req query.Request, opt query.Options) (query.Page, error) {
	if _, err := h.defs.Get(containerName); err != nil {
		return query.Page{}, err
	}
	src := func(ctx context.Context, fn func([]byte) error) error {
		rows, err := h.db.Read.QueryContext(ctx, itemQuery+`i.deleted = 0 AND i.container = ? ORDER BY i.id`, containerName)
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
	return query.Execute(ctx, req, src, opt)
}
