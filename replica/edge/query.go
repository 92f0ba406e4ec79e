package edge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgesync/edgesync/replica/query"
	"github.com/edgesync/edgesync/replica/wire"
)

// QueryChunk is how many items a query reads in one read transaction. A
// query reads its container a chunk at a time, so that it never holds a
// snapshot for long: a checkpoint that must wait for readers (and holds up
// writers while it waits) waits for one chunk at most.
const QueryChunk = 1000

// maxWriteYield bounds how long a query waits for one write transaction
// (yieldToWriter; a variable for tests); writeYieldPoll is how often it
// looks again.
var maxWriteYield = 5 * time.Millisecond

// maxWriteWait bounds how long queries wait for local writes in flight
// (writeGate) that follow one another without a pause; a variable for
// tests. A slow commit (an fsync of tens of milliseconds on a busy disk)
// is when queries resuming would hold up the write most: 5 ms, the bound
// for a transaction, kept write p99 at 48-56 ms where 50 ms gave 19-47 ms.
var maxWriteWait = 50 * time.Millisecond

const writeYieldPoll = 100 * time.Microsecond

// writesQuiet is how long after the last local write queries go on running
// on the query workers (Replica.Query).
var writesQuiet = 500 * time.Millisecond

// yieldToWriter waits, before a query starts and before it evaluates its
// next document: while local writes are in flight (writeGate, at most
// maxWriteWait after the first of them began), then while the writer has
// a transaction open (writes from the hub, index builds), at most
// maxWriteYield per transaction.
//
// A write needs a processor at several steps: its caller's goroutine to
// queue it, the writer's to run the transaction, the writer's again when
// the commit's fsync returns, and the caller's to take the outcome. Queries
// evaluating documents back to back on every processor made each of those
// steps wait behind them (the Go scheduler lets a running goroutine run
// for up to 10 ms), and their threads compete for CPUs with the write's
// and with the kernel's journal thread that the fsync waits for. A query
// waiting at the gate parks its goroutine, which frees its processor and
// lets its thread sleep. Queries slow down by the writes' time instead.
func (r *Replica) yieldToWriter() {
	r.gate.wait(maxWriteWait)
	for {
		since := r.writing.Load()
		if since == 0 || time.Since(time.Unix(0, since)) > maxWriteYield {
			return
		}
		time.Sleep(writeYieldPoll)
	}
}

// Query runs a query (docs/queries.md) over a container's live items and
// returns one page of its result. It reads the local view, where a version
// not yet confirmed carries "_tentative": true, or with ConsistencyConfirmed
// only confirmed versions. Once the node knows its scope, items outside it
// (local writes the hub will refuse) are left out.
//
// Every live item of the container is read, in id order, on the read pool,
// QueryChunk items per read transaction: each item once, as it was when its
// chunk was read (not one snapshot of the whole container). A query never
// holds up a write, and its cost grows with the container.
//
// While local writes are being made (one in flight, or one ended less than
// writesQuiet ago), queries run on the replica's query workers
// (Config.QueryWorkers), OS threads of lowered priority, at most as many at
// once as there are workers; a call waits for a free worker, until ctx ends
// or at most the query's time limit (query.ErrTimeout). Otherwise a query
// runs on its caller's goroutine: the hand-off to a worker and back costs
// a short indexed query about as much CPU again as the query itself, and
// with no writes to give way to it buys nothing.
func (r *Replica) Query(ctx context.Context, containerName string, req query.Request, consistency string, opt query.Options) (p query.Page, err error) {
	if r.qpool.jobs == nil || r.gate.quiet(writesQuiet) {
		return r.query(ctx, containerName, req, consistency, opt)
	}
	// The wait for a worker counts against the query's time limit.
	limit := opt.Timeout
	if limit <= 0 {
		limit = query.DefaultTimeout
	}
	wctx, cancel := context.WithTimeoutCause(ctx, limit, query.ErrTimeout)
	defer cancel()
	if perr := r.qpool.run(wctx, func() { p, err = r.query(ctx, containerName, req, consistency, opt) }); perr != nil {
		if errors.Is(perr, query.ErrTimeout) {
			perr = fmt.Errorf("%w: stopped after %s waiting for a query worker", query.ErrTimeout, limit)
		}
		return query.Page{}, perr
	}
	return p, err
}

func (r *Replica) query(ctx context.Context, containerName string, req query.Request, consistency string, opt query.Options) (query.Page, error) {
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
	r.yieldToWriter()
	st := r.SyncState()
	scoped := st.HubID != ""
	var n int64
	src := func(ctx context.Context, fn func([]byte) error) error {
		var doc []byte
		after := ""
		for {
			rows, err := r.db.Read.QueryContext(ctx, base+` AND i.container = ? AND i.id > ? ORDER BY i.id LIMIT ?`, containerName, after, QueryChunk)
			if err != nil {
				return fmt.Errorf("query items: %w", err)
			}
			read := 0
			for rows.Next() {
				it, err := scanItem(rows)
				if err != nil {
					rows.Close()
					return fmt.Errorf("query items: %w", err)
				}
				read++
				after = it.ID
				if scoped && !wire.InScope(st.Scope, containerName, it.PK) || req.PartitionKey != nil && it.PK != *req.PartitionKey {
					continue
				}
				n++
				r.yieldToWriter()
				doc = it.AppendJSON(doc[:0])
				if err := fn(doc); err != nil {
					rows.Close()
					return err
				}
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("query items: %w", err)
			}
			if read < QueryChunk {
				return nil
			}
		}
	}
	var ix *query.IndexSource
	if consistency != ConsistencyConfirmed && req.PartitionKey == nil {
		ix = r.indexSource(containerName, &st, &n, src)
	}
	p, err := query.ExecuteIndexed(ctx, req, src, ix, opt)
	r.stats.ReadsServed.Add(n)
	return p, err
}
