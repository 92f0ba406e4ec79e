package cosmos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/edge"
	"github.com/edgesync/edgesync/replica/hub"
	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/wire"
)

// Engine is what the Cosmos endpoint needs of a node: the edge replica
// (EdgeEngine) or the hub (HubEngine).
type Engine interface {
	Containers() []replica.Container
	Container(name string) (replica.Container, error)
	PutContainer(ctx context.Context, c replica.Container) (bool, replica.Container, error)
	Create(ctx context.Context, container string, body []byte) (replica.Item, error)
	Upsert(ctx context.Context, container, id string, body []byte, ifMatch string) (replica.Item, bool, error)
	Delete(ctx context.Context, container, id, ifMatch string) error
	Get(ctx context.Context, container, id string) (replica.Item, error)
	List(ctx context.Context, container string, pk string, hasPK bool, limit int, continuation string) (replica.Page, error)
	Query(ctx context.Context, container string, req query.Request) (query.Page, error)
	// Changes returns the container's change records after position since
	// and the position to continue from; Head is the newest position.
	Changes(ctx context.Context, container string, since int64, limit int) ([]replica.Change, int64, error)
	Head() int64
	// Conflicts returns the container's conflicts feed after conflict id
	// after, and the id to continue from.
	Conflicts(ctx context.Context, container string, after int64, limit int) ([]wire.Conflict, int64, error)
	// Name names the node in the account resource.
	Name() string
	// Batch applies ops to one container, with pk to the items of that
	// partition key value only, all or none (edge.Replica.Batch). A hub
	// takes one operation at a time.
	Batch(ctx context.Context, container string, pk *string, ops []edge.BatchOp) ([]edge.BatchResult, error)
	// DeleteItems deletes the live items of ids the node may write and
	// skips the others; it returns how many it deleted.
	DeleteItems(ctx context.Context, container string, ids []string) (int, error)
}

// EdgeEngine serves an edge replica: reads see this node's tentative
// versions (marked _tentative) over confirmed state, and writes are
// tentative writes that sync to the hub as every other.
type EdgeEngine struct {
	R            *edge.Replica
	QueryOptions query.Options // bounds of queries; zero values are the defaults
}

var _ Engine = EdgeEngine{}

func (e EdgeEngine) Containers() []replica.Container { return e.R.Containers() }
func (e EdgeEngine) Container(name string) (replica.Container, error) {
	return e.R.Container(name)
}
func (e EdgeEngine) PutContainer(ctx context.Context, c replica.Container) (bool, replica.Container, error) {
	return e.R.PutContainer(ctx, c)
}
func (e EdgeEngine) Create(ctx context.Context, container string, body []byte) (replica.Item, error) {
	return e.R.Create(ctx, container, body)
}
func (e EdgeEngine) Upsert(ctx context.Context, container, id string, body []byte, ifMatch string) (replica.Item, bool, error) {
	return e.R.Upsert(ctx, container, id, body, edge.WriteOptions{IfMatch: ifMatch})
}
func (e EdgeEngine) Delete(ctx context.Context, container, id, ifMatch string) error {
	return e.R.Delete(ctx, container, id, edge.WriteOptions{IfMatch: ifMatch})
}
func (e EdgeEngine) Get(ctx context.Context, container, id string) (replica.Item, error) {
	return e.R.Get(ctx, container, id, edge.ReadOptions{})
}
func (e EdgeEngine) List(ctx context.Context, container string, pk string, hasPK bool, limit int, continuation string) (replica.Page, error) {
	return e.R.List(ctx, container, edge.ListOptions{PK: pk, HasPK: hasPK, Limit: limit, Continuation: continuation})
}
func (e EdgeEngine) Query(ctx context.Context, container string, req query.Request) (query.Page, error) {
	return e.R.Query(ctx, container, req, edge.ConsistencyLocal, e.QueryOptions)
}
func (e EdgeEngine) Changes(ctx context.Context, container string, since int64, limit int) ([]replica.Change, int64, error) {
	return e.R.Changes(ctx, container, since, limit)
}
func (e EdgeEngine) Head() int64  { return e.R.Status().LastSeq }
func (e EdgeEngine) Name() string { return e.R.NodeID() }
func (e EdgeEngine) Conflicts(ctx context.Context, container string, after int64, limit int) ([]wire.Conflict, int64, error) {
	raw, next, err := e.R.Conflicts(ctx, container, "", after, limit)
	if err != nil {
		return nil, after, err
	}
	out := make([]wire.Conflict, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &out[i]); err != nil {
			return nil, after, fmt.Errorf("decode conflict record: %w", err)
		}
	}
	return out, next, nil
}

func (e EdgeEngine) Batch(ctx context.Context, container string, pk *string, ops []edge.BatchOp) ([]edge.BatchResult, error) {
	if pk == nil {
		if len(ops) != 1 {
			return nil, fmt.Errorf("%w: a batch of %d operations without a partition key value", replica.ErrInvalid, len(ops))
		}
		return oneOp(ctx, e, container, nil, ops[0])
	}
	return e.R.Batch(ctx, container, *pk, ops)
}

// DeleteItems deletes in one local transaction.
func (e EdgeEngine) DeleteItems(ctx context.Context, container string, ids []string) (int, error) {
	return e.R.DeleteItems(ctx, container, ids)
}

// HubEngine serves a hub: its confirmed state; writes are confirmed at once
// through the hub's sequencer.
type HubEngine struct {
	H            *hub.Hub
	QueryOptions query.Options
}

var _ Engine = HubEngine{}

func (e HubEngine) Containers() []replica.Container { return e.H.Containers() }
func (e HubEngine) Container(name string) (replica.Container, error) {
	return e.H.Container(name)
}
func (e HubEngine) PutContainer(ctx context.Context, c replica.Container) (bool, replica.Container, error) {
	return e.H.PutContainer(ctx, c)
}
func (e HubEngine) Create(ctx context.Context, container string, body []byte) (replica.Item, error) {
	return e.H.Create(ctx, container, body)
}
func (e HubEngine) Upsert(ctx context.Context, container, id string, body []byte, ifMatch string) (replica.Item, bool, error) {
	return e.H.Upsert(ctx, container, id, body, hub.WriteOptions{IfMatch: ifMatch})
}
func (e HubEngine) Delete(ctx context.Context, container, id, ifMatch string) error {
	return e.H.Delete(ctx, container, id, hub.WriteOptions{IfMatch: ifMatch})
}
func (e HubEngine) Get(ctx context.Context, container, id string) (replica.Item, error) {
	return e.H.Get(ctx, container, id)
}
func (e HubEngine) List(ctx context.Context, container string, pk string, hasPK bool, limit int, continuation string) (replica.Page, error) {
	return e.H.List(ctx, container, hub.ListOptions{PK: pk, HasPK: hasPK, Limit: limit, Continuation: continuation})
}
func (e HubEngine) Query(ctx context.Context, container string, req query.Request) (query.Page, error) {
	return e.H.Query(ctx, container, req, e.QueryOptions)
}
func (e HubEngine) Changes(ctx context.Context, container string, since int64, limit int) ([]replica.Change, int64, error) {
	return e.H.Changes(ctx, container, since, limit)
}
func (e HubEngine) Head() int64  { return e.H.Head() }
func (e HubEngine) Name() string { return e.H.HubID() }
func (e HubEngine) Conflicts(ctx context.Context, container string, after int64, limit int) ([]wire.Conflict, int64, error) {
	return e.H.Conflicts(ctx, container, "", after, limit)
}

// Batch takes one operation at a time: the hub's writes are sequenced one
// by one, and a batch is atomic on an edge only.
func (e HubEngine) Batch(ctx context.Context, container string, pk *string, ops []edge.BatchOp) ([]edge.BatchResult, error) {
	if len(ops) != 1 {
		return nil, fmt.Errorf("%w: a transactional batch on a hub (it is atomic on an edge; send the operations one by one, or in a bulk request)", errNotSupported)
	}
	return oneOp(ctx, e, container, pk, ops[0])
}

// DeleteItems deletes one item per write: each is confirmed on its own.
func (e HubEngine) DeleteItems(ctx context.Context, container string, ids []string) (int, error) {
	n := 0
	for _, id := range ids {
		err := e.H.Delete(ctx, container, id, hub.WriteOptions{})
		if errors.Is(err, replica.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// oneOp runs a single operation through the engine's item calls, each
// write its own transaction.
func oneOp(ctx context.Context, e Engine, container string, pk *string, op edge.BatchOp) ([]edge.BatchResult, error) {
	var res edge.BatchResult
	get := func() (replica.Item, error) {
		it, err := e.Get(ctx, container, op.ID)
		if err == nil && pk != nil && it.PK != *pk {
			err = fmt.Errorf("%w: item %q in partition %q", replica.ErrNotFound, op.ID, *pk)
		}
		return it, err
	}
	var err error
	switch {
	case op.Kind == edge.BatchRead:
		res.Item, err = get()
	case op.Update != nil:
		c, cerr := e.Container(container)
		if cerr != nil {
			return nil, &edge.BatchError{Err: cerr}
		}
		res.Item, err = updateItem(ctx, e, c, op.ID, pk, op.IfMatch, op.Update)
	case op.Kind == replica.WriteDelete:
		for range maxPatchRetries {
			var cur replica.Item
			if cur, err = get(); err != nil {
				break
			}
			cond := op.IfMatch
			if cond == "" {
				cond = cur.ETag() // delete the version whose partition key was checked
			}
			if err = e.Delete(ctx, container, op.ID, cond); op.IfMatch == "" && errors.Is(err, replica.ErrPreconditionFailed) {
				continue
			}
			break
		}
	case op.Kind == replica.WriteCreate:
		res.Item, err = e.Create(ctx, container, op.Body)
		res.Created = err == nil
	default:
		res.Item, res.Created, err = e.Upsert(ctx, container, op.ID, op.Body, op.IfMatch)
	}
	if err != nil {
		return nil, &edge.BatchError{Err: err}
	}
	return []edge.BatchResult{res}, nil
}
