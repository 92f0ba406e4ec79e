package edge

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// BatchRead is the kind of a BatchOp that reads the item, beside
// replica.WriteCreate, WriteUpsert and WriteDelete.
const BatchRead = -1

// MaxBatchOps bounds the operations of one Batch.
const MaxBatchOps = 1000

// BatchOp is one operation of a Batch.
type BatchOp struct {
	Kind    int    // replica.WriteCreate, WriteUpsert, WriteDelete or BatchRead
	ID      string // the item's id; for a create or an upsert, "" or the body's
	Body    []byte // the document of a create or an upsert
	IfMatch string // as WriteOptions.IfMatch
	// Update, with WriteUpsert and no Body, makes the body from the item's
	// current live version (a partial update); the item must exist. It runs
	// inside the batch's transaction and must not block.
	Update func(cur *replica.Item) ([]byte, error)
	// Optional skips the operation, instead of failing the batch, when the
	// item is missing or outside this edge's scope (a delete of whatever is
	// still there).
	Optional bool
}

// BatchResult is the outcome of one BatchOp.
type BatchResult struct {
	Item    replica.Item // the item read or written (for a delete, its tombstone)
	Created bool
	Skipped bool // an Optional operation that found nothing to do
}

// BatchError says which operation failed a Batch, and why.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("operation %d: %v", e.Index, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }

// Batch applies ops to the items of one partition key value of a
// container in one local transaction: every operation applies, or none does
// (a *BatchError names the first that failed). Each write is an ordinary
// tentative version and syncs as any other: the hub decides each on its own,
// so a conflict can make one of them lose while the others win. An item
// with another partition key value is not found; a document with another
// one is refused. Operations see the writes of the operations before them.
func (r *Replica) Batch(ctx context.Context, containerName, pk string, ops []BatchOp) ([]BatchResult, error) {
	return r.batch(ctx, containerName, &pk, ops)
}

// DeleteItems deletes the live items of ids in one local transaction, as
// ordinary tentative deletes; an id that is missing, deleted or outside
// this edge's scope is skipped. It returns how many it deleted.
func (r *Replica) DeleteItems(ctx context.Context, containerName string, ids []string) (int, error) {
	ops := make([]BatchOp, len(ids))
	for i, id := range ids {
		ops[i] = BatchOp{Kind: replica.WriteDelete, ID: id, Optional: true}
	}
	res, err := r.batch(ctx, containerName, nil, ops)
	n := 0
	for _, x := range res {
		if !x.Skipped {
			n++
		}
	}
	return n, err
}

// batch is Batch; a nil pk lets the operations reach every partition key
// value.
func (r *Replica) batch(ctx context.Context, containerName string, pk *string, ops []BatchOp) ([]BatchResult, error) {
	if len(ops) == 0 || len(ops) > MaxBatchOps {
		return nil, fmt.Errorf("%w: %d operations in a batch: want 1..%d", replica.ErrInvalid, len(ops), MaxBatchOps)
	}
	r.w.Enter()
	defer r.w.Leave()
	r.gate.enter()
	defer r.gate.leave()
	c, err := r.defs.Get(containerName)
	if err != nil {
		return nil, err
	}
	docs := make([]replica.Document, len(ops))
	for i, op := range ops {
		if op.Kind == BatchRead || op.Kind == replica.WriteDelete || op.Update != nil {
			if err := replica.ValidateID(op.ID); err != nil {
				return nil, &BatchError{Index: i, Err: err}
			}
			continue
		}
		if docs[i], err = replica.PrepareWrite(op.Kind, c.PKPath, op.ID, op.Body); err != nil {
			return nil, &BatchError{Index: i, Err: err}
		}
		if pk != nil && docs[i].PK != *pk {
			return nil, &BatchError{Index: i, Err: fmt.Errorf("%w: the document's partition key value %q is not the batch's %q", replica.ErrInvalid, docs[i].PK, *pk)}
		}
	}
	res := make([]BatchResult, len(ops))
	var written, seq int64
	err = r.submit(ctx,
		func(ctx context.Context) error {
			written = 0
			seq0 := r.seq
			if _, err := r.stmts.savepoint.ExecContext(ctx); err != nil {
				return fmt.Errorf("begin batch: %w", err)
			}
			for i, op := range ops {
				n, err := r.batchOp(ctx, c, pk, op, docs[i], &res[i])
				if err != nil {
					if _, rerr := r.stmts.rollbackTo.ExecContext(ctx); rerr != nil {
						return sqlitestore.Wrote("roll back batch", rerr)
					}
					if _, rerr := r.stmts.release.ExecContext(ctx); rerr != nil {
						return sqlitestore.Wrote("end batch", rerr)
					}
					r.seq = seq0
					return &BatchError{Index: i, Err: err}
				}
				written += n
			}
			if _, err := r.stmts.release.ExecContext(ctx); err != nil {
				return sqlitestore.Wrote("end batch", err)
			}
			seq = r.seq
			return nil
		},
		func() {
			if written == 0 {
				return
			}
			r.lastSeq.Store(seq)
			r.pending.Add(written)
			r.local.Wake()
		})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// batchOp runs one operation of a batch on the writer and reports how many
// versions it wrote.
func (r *Replica) batchOp(ctx context.Context, c *replica.ContainerDef, pk *string, op BatchOp, doc replica.Document, res *BatchResult) (int64, error) {
	itemPK := doc.PK
	if op.Kind == BatchRead || op.Kind == replica.WriteDelete || op.Update != nil {
		cur, err := scanItem(r.stmts.getLocal.QueryRowContext(ctx, c.Def.Name, op.ID))
		if errors.Is(err, sql.ErrNoRows) || err == nil && (cur.Deleted || pk != nil && cur.PK != *pk) {
			if op.Optional {
				res.Skipped = true
				return 0, nil
			}
			return 0, fmt.Errorf("%w: item %q in container %q", replica.ErrNotFound, op.ID, c.Def.Name)
		}
		itemPK = cur.PK
		if err != nil {
			return 0, fmt.Errorf("read item: %w", err)
		}
		switch {
		case op.Kind == BatchRead:
			res.Item = cur
			return 0, nil
		case op.Kind == replica.WriteDelete:
			doc = replica.Document{ID: op.ID}
		default:
			if op.IfMatch != "" && op.IfMatch != "*" && op.IfMatch != cur.ETag() {
				return 0, fmt.Errorf("%w: If-Match %s, item %q is at %s", replica.ErrPreconditionFailed, op.IfMatch, op.ID, cur.ETag())
			}
			body, err := op.Update(&cur)
			if err != nil {
				return 0, err
			}
			if doc, err = replica.PrepareWrite(replica.WriteUpsert, c.PKPath, op.ID, body); err != nil {
				return 0, err
			}
		}
	}
	if op.Optional && !r.inScope(c.Def.Name, itemPK) {
		res.Skipped = true
		return 0, nil
	}
	it, created, _, err := r.applyLocal(ctx, op.Kind, c, doc, WriteOptions{IfMatch: op.IfMatch})
	if err != nil {
		return 0, err
	}
	res.Item, res.Created = it, created
	return 1, nil
}
