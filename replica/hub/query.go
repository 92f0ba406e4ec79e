package hub

import (
	"context"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/query"
)

// QueryChunk is how many items a query reads in one read transaction: a
// query never holds a snapshot for long, so a checkpoint that waits for
// readers (holding up writers while it waits) waits for one chunk at most.
const QueryChunk = 1000

// Query runs a query (docs/queries.md) over a container's confirmed live
// items and returns one page of its result.
//
// When WHERE restricts a path of the container's indexing policy whose
// index is built (=, IN, a range, BETWEEN), only the items the index
// selects are read, as on an edge (the same plan, query.ExecuteIndexed).
// Otherwise every live item of the container is read, in id order. Reads
// go to the read pool, QueryChunk items per read transaction: each item
// once, as it was when its chunk was read. A query never holds up the
// sequencer's writes.
func (h *Hub) Query(ctx context.Context, containerName string, req query.Request, opt query.Options) (query.Page, error) {
	if _, err := h.def(containerName); err != nil {
		return query.Page{}, err
	}
	var doc []byte
	emit := func(it replica.Item, fn func([]byte) error) error {
		if req.PartitionKey != nil && it.PK != *req.PartitionKey {
			return nil
		}
		doc = it.AppendJSON(doc[:0])
		return fn(doc)
	}
	src := func(ctx context.Context, fn func([]byte) error) error {
		after := ""
		for {
			read, err := h.st.ScanItems(ctx, containerName, after, QueryChunk, func(it replica.Item) error {
				after = it.ID
				return emit(it, fn)
			})
			if err != nil {
				return err
			}
			if read < QueryChunk {
				return nil
			}
		}
	}
	ix, err := h.indexSource(ctx, containerName, src, emit)
	if err != nil {
		return query.Page{}, err
	}
	return query.ExecuteIndexed(ctx, req, src, ix, opt)
}
