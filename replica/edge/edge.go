// Package edge is the edge replica: a SQLite document store that accepts reads
// and writes offline. Every local write commits at once as a tentative
// version, is recorded in the local change feed, and queues in a durable
// outbox for the hub.
//
// Writes from all goroutines go through one sqlitestore.Writer, which owns
// the single write connection and commits them in groups: one transaction
// (and, with the default durability, one fsync) for every write waiting or
// about to arrive. Nobody's write is acknowledged before its group is durable,
// and a failing write fails alone.
//
// Use:
//
//	r := edge.New(edge.Config{Dir: "./edgenode-data"})
//	if err := r.Open(ctx); err != nil { ... }
//	defer r.Close(ctx)
//	r.PutContainer(ctx, replica.Container{Name: "products", PartitionKey: "/category"})
//	it, err := r.Create(ctx, "products", []byte(`{"id":"p1","category":"tools"}`))
package edge

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
)

// DBFile is the name of the database inside the data directory.
const DBFile = "edge.db"

// Config configures a Replica. The zero value of every field but Dir is a
// usable default.
type Config struct {
	Dir        string       // data directory; created if missing
	Durability string       // sqlitestore.DurabilityFull (default) or DurabilityNormal
	Logger     *slog.Logger // default: discard
	// MaxBatch and Linger tune group commit (sqlitestore.WriterConfig).
	MaxBatch int
	Linger   time.Duration
	// Now returns the current time; tests set it. Default time.Now.
	Now func() time.Time
	// PKIndexLag is how many changes the partition key index may leave
	// unindexed before a commit catches it up (pkindex.go); listings by
	// partition key scan those. Default 256; 1 indexes at every commit.
	PKIndexLag int
	// QueryWorkers is how many queries run at once (queryPool), each on
	// an OS thread of lowered priority. Default: half of GOMAXPROCS, at
	// least 1; negative: queries run on their callers' goroutines, as
	// many at once as call.
	QueryWorkers int
}

// Replica is an edge replica. Its methods are safe for concurrent use.
type Replica struct {
	cfg    Config
	log    *slog.Logger
	db     *sqlitestore.DB
	w      *sqlitestore.Writer
	unlock func() error
	nodeID string
	// recordConfirmedSQL records a "confirmed" outcome (recordOutcome), the
	// node id written into it: built once the node id is known.
	recordConfirmedSQL string
	closed             atomic.Bool

	defs  replica.Containers
	ready atomic.Pointer[readyIndexes] // built index paths (index.go)
	// readyMu orders the stores of ready.
	readyMu sync.Mutex
	// idxStmts are index scans' statements prepared on the read pool.
	idxStmtMu sync.Mutex
	idxStmts  map[string]*sql.Stmt
	// writing is when the writer's open transaction began (unix
	// nanoseconds; 0: none): queries give way to it (yieldToWriter).
	writing atomic.Int64
	// gate is closed while local writes are in flight: queries give way
	// to them (yieldToWriter).
	gate writeGate
	// qpool runs queries (Config.QueryWorkers).
	qpool queryPool
	// The index builder (indexBuilder): kicked when definitions from the
	// hub bring indexing policies; stopped by buildStop at Close.
	buildKick chan struct{}
	buildDone chan struct{}
	buildStop context.CancelCauseFunc
	notify    replica.Notifier // woken after every commit
	local     replica.Notifier // woken after a commit with local writes

	lastSeq atomic.Int64
	// conflictSeq is the resume point of the hub's conflicts stream.
	conflictSeq atomic.Int64
	pending     atomic.Int64
	sync        atomic.Pointer[SyncState]
	// defined counts the containers this node defined itself (PutContainer
	// of a new name): a sync session compares it with its value at the
	// hello to learn of definitions its hub has not been told.
	defined atomic.Int64
	stats   Stats

	// The clock for _ts (clock.go): the last measurement from a hub, and
	// the last one stored (clockSavedOpen: stored since Open), under
	// clockMu; hlcPub publishes the writer-owned hlc.
	clock          atomic.Pointer[ClockStatus]
	clockMu        sync.Mutex
	clockSaved     ClockStatus
	clockSavedOpen bool
	hlcPub         atomic.Int64

	getItem, getConfirmed, getOutbox *sql.Stmt // on the read pool
	listPK, listPKConfirmed          *sql.Stmt

	// owned by the writer goroutine
	seq, seq0 int64 // last change seq assigned; its value when the group began
	hlc, hlc0 int64 // last _ts issued (clock.go); its value when the group began
	// pkIndexed is the last change seq in the partition key index
	// (pkindex.go); pkIndexed0 its value when the group began.
	pkIndexed, pkIndexed0 int64
	// The sync state and conflicts stream position as the writer's open
	// transaction has them, and their values when the group began. sync and
	// conflictSeq publish them after the commit: jobs queued one behind the
	// other (a pipelined sync session) build on these, not on the published
	// values, which lag until the group commits.
	wsync, wsync0         SyncState
	wconflict, wconflict0 int64
	stmts                 writeStmts
}

// Stats are cumulative counters of the read path; WriterStats has the
// write path's.
type Stats struct {
	ReadsServed   atomic.Int64
	ChangesServed atomic.Int64
}

// New returns a Replica for cfg. It does no I/O; call Open.
func New(cfg Config) *Replica {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QueryWorkers == 0 {
		cfg.QueryWorkers = defaultQueryWorkers()
	}
	if cfg.PKIndexLag <= 0 {
		cfg.PKIndexLag = defaultPKIndexLag
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Replica{
		cfg: cfg,
		log: log,
	}
}

// Open creates or opens the data directory, takes its lock, loads the node
// id and container definitions, and starts the writer.
func (r *Replica) Open(ctx context.Context) (err error) {
	if r.cfg.Dir == "" {
		return fmt.Errorf("%w: data directory is empty", replica.ErrInvalid)
	}
	if err := os.MkdirAll(r.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if r.unlock, err = lockDir(r.cfg.Dir); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			r.unlock()
		}
	}()
	r.db, err = sqlitestore.Open(ctx, filepath.Join(r.cfg.Dir, DBFile), sqlitestore.Options{Durability: r.cfg.Durability, Logger: r.log}, migrations)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			r.db.Close()
		}
	}()
	if err := r.load(ctx); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	r.w = sqlitestore.NewWriter(r.db, sqlitestore.WriterConfig{
		Logger: r.log, MaxBatch: r.cfg.MaxBatch, Linger: r.cfg.Linger,
		OnBegin: func() {
			r.writing.Store(time.Now().UnixNano())
			r.seq0, r.wsync0, r.wconflict0, r.pkIndexed0, r.hlc0 = r.seq, r.wsync, r.wconflict, r.pkIndexed, r.hlc
		},
		OnRollback: func() {
			r.writing.Store(0)
			r.seq, r.wsync, r.wconflict, r.pkIndexed, r.hlc = r.seq0, r.wsync0, r.wconflict0, r.pkIndexed0, r.hlc0
		},
		OnCommit: func() {
			r.writing.Store(0)
			r.wake()
		},
		BeforeCommit: r.catchUpPKIndex,
	})
	if err := r.w.Open(ctx); err != nil {
		return err
	}
	for _, st := range r.readStmts() {
		if *st.dst, err = r.db.Read.PrepareContext(ctx, st.query); err != nil {
			break
		}
	}
	if err == nil {
		err = r.stmts.prepare(ctx, r.w)
	}
	if err != nil {
		r.w.Close(ctx)
		return fmt.Errorf("prepare: %w", err)
	}
	if err := r.buildPending(ctx); err != nil {
		r.w.Close(ctx)
		return err
	}
	bctx, cancel := context.WithCancelCause(context.Background())
	r.buildKick, r.buildDone, r.buildStop = make(chan struct{}, 1), make(chan struct{}), cancel
	go r.indexBuilder(bctx)
	if r.cfg.QueryWorkers > 0 {
		r.qpool.init(r.cfg.QueryWorkers)
	}
	r.log.Info("edge replica open", "dir", r.cfg.Dir, "node", r.nodeID, "pending", r.pending.Load(), "seq", r.lastSeq.Load())
	return nil
}

// stmtText is a statement to prepare and where it goes.
type stmtText struct {
	dst   **sql.Stmt
	query string
}

// readStmts are the statements prepared on the read pool at Open.
func (r *Replica) readStmts() []stmtText {
	return []stmtText{
		{&r.getItem, itemQuery + `i.container = ? AND i.id = ?`},
		{&r.getConfirmed, confirmedQuery + `i.container = ? AND i.id = ?`},
		{&r.getOutbox, `SELECT seq, container, id, op, version, base, ts, body FROM changes
			WHERE tentative = 1 AND resolved = 0 AND seq > ? ORDER BY seq LIMIT ?`},
		{&r.listPK, listByPKQuery(`JOIN changes c ON c.seq = i.seq`, `i.deleted = 0`)},
		{&r.listPKConfirmed, listByPKQuery(`JOIN changes c ON c.seq = i.c_seq`, `c.op != 'delete'`)},
	}
}

// load reads the node id (generating it at first start), the containers, the
// feed position and the outbox size.
func (r *Replica) load(ctx context.Context) error {
	db := r.db.Write
	var err error
	if r.nodeID, err = sqlitestore.MetaID(ctx, db, "node_id", "e"); err != nil {
		return err
	}
	r.recordConfirmedSQL = `INSERT INTO changes (seq, container, id, pk, op, version, base, origin, ts, lsn, crts, tentative, outcome, reason)
		VALUES (?1, ?2, ?3, (SELECT pk FROM changes WHERE seq = ?4), '` + OpOutcome + `', ?5, '', ` + sqlQuote(r.nodeID) + `, ?6, ?7, 0, 0, '` +
		replica.OutcomeConfirmed + `', '')`
	var seq, pending int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM changes WHERE tentative = 1 AND resolved = 0`).Scan(&pending); err != nil {
		return err
	}
	r.seq = seq
	r.lastSeq.Store(seq)
	r.pending.Store(pending)
	if err := r.loadPKIndexed(ctx, db); err != nil {
		return err
	}
	if err := r.loadConflictSeq(ctx, db); err != nil {
		return err
	}
	if err := r.loadSyncState(ctx, db); err != nil {
		return err
	}
	if err := r.loadClock(ctx, db); err != nil {
		return err
	}
	r.wsync, r.wconflict = *r.sync.Load(), r.conflictSeq.Load()
	if err := r.defs.Load(ctx, db); err != nil {
		return err
	}
	return r.loadIndexes(ctx, db)
}

// Close stops accepting writes, finishes the ones already queued, and closes
// the database. ctx bounds the wait for the writer.
func (r *Replica) Close(ctx context.Context) error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	if r.w == nil { // never opened
		return nil
	}
	if r.buildStop != nil {
		r.buildStop(replica.ErrClosed)
		<-r.buildDone
	}
	r.qpool.close()
	if err := r.w.Close(ctx); err != nil {
		return err
	}
	var errs []error
	for _, st := range r.readStmts() {
		if *st.dst != nil {
			errs = append(errs, (*st.dst).Close())
		}
	}
	err := errors.Join(append(errs, r.db.Close(), r.unlock())...)
	r.wake()
	r.log.Info("edge replica closed", "node", r.nodeID)
	return err
}

// NodeID is this node's id, generated at first start and kept in the data dir.
func (r *Replica) NodeID() string { return r.nodeID }

// CheckpointStats returns the background WAL checkpointer's counters.
func (r *Replica) CheckpointStats() sqlitestore.CheckpointStats { return r.db.CheckpointStats() }

// Stats returns the replica's cumulative read-path counters.
func (r *Replica) Stats() *Stats { return &r.stats }

// WriterStats returns the write path's counters (group commits).
func (r *Replica) WriterStats() *sqlitestore.WriterStats { return r.w.Stats() }

// Changed returns a channel that is closed at the next commit (or at Close).
// Take it before reading the feed, then wait on it: no wake-up is lost.
func (r *Replica) Changed() <-chan struct{} { return r.notify.Changed() }

// LocalChanged returns a channel closed at the next commit of a local write
// (the outbox grew).
func (r *Replica) LocalChanged() <-chan struct{} { return r.local.Changed() }

// Done is closed when the replica's writer has stopped.
func (r *Replica) Done() <-chan struct{} { return r.w.Done() }

func (r *Replica) wake() { r.notify.Wake() }

// submit runs fn in the writer's next group and returns once it is durable.
func (r *Replica) submit(ctx context.Context, fn func(ctx context.Context) error, after func()) error {
	wait, err := r.queue(ctx, fn, after)
	if err != nil {
		return err
	}
	return wait()
}

// queue is submit in two steps: it queues the job and returns a function
// that waits for its outcome. Jobs run in the order they were queued.
func (r *Replica) queue(ctx context.Context, fn func(ctx context.Context) error, after func()) (func() error, error) {
	if r.closed.Load() {
		return nil, replica.ErrClosed
	}
	wait, err := r.w.Queue(ctx, fn, after)
	if errors.Is(err, sqlitestore.ErrWriterClosed) {
		return nil, replica.ErrClosed
	}
	return wait, err
}

// PutContainer defines a container or changes its conflict policy or its
// indexing policy. It reports whether the container is new. Changing the
// partition key path of an existing container fails with
// ErrContainerMismatch. A path added to the indexing policy is indexed for
// the existing items before PutContainer returns (IndexBuildBatch items per
// write transaction; queries use it once built); a path removed is dropped.
func (r *Replica) PutContainer(ctx context.Context, c replica.Container) (bool, replica.Container, error) {
	created, c, build, err := r.putContainer(ctx, c)
	if err != nil || !build {
		return created, c, err
	}
	return created, c, r.buildIndexes(ctx, c.Name)
}

func (r *Replica) putContainer(ctx context.Context, c replica.Container) (bool, replica.Container, bool, error) {
	r.w.Enter()
	defer r.w.Leave()
	c, err := c.Normalize()
	if err != nil {
		return false, c, false, err
	}
	policy, err := json.Marshal(c.ConflictPolicy)
	if err != nil {
		return false, c, false, err
	}
	var created, build bool
	err = r.submit(ctx,
		func(ctx context.Context) error {
			var pk string
			err := r.stmts.getContainer.QueryRowContext(ctx, c.Name).Scan(&pk)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				created = true
			case err != nil:
				return err
			case pk != c.PartitionKey:
				return fmt.Errorf("%w: container %q has partition key %q, not %q (a partition key path cannot change)",
					replica.ErrContainerMismatch, c.Name, pk, c.PartitionKey)
			}
			if _, err := r.stmts.putContainer.ExecContext(ctx, c.Name, c.PartitionKey, string(policy), r.cfg.Now().Unix()); err != nil {
				return sqlitestore.Wrote("store container", err)
			}
			build, err = r.setIndexPaths(ctx, c.Name, c.IndexingPolicy)
			return err
		},
		func() {
			r.defs.Set(c)
			if created {
				r.defined.Add(1)
				r.local.Wake() // the sync session tells its hub
			}
		})
	if err != nil {
		return false, c, false, err
	}
	if !build {
		// A path dropped is no longer ready.
		err = r.reloadReady(ctx)
	}
	return created, c, build, err
}

// Container returns a container's definition.
func (r *Replica) Container(name string) (replica.Container, error) {
	c, err := r.defs.Get(name)
	if err != nil {
		return replica.Container{}, err
	}
	return c.Def, nil
}

// Containers returns every container definition, by name.
func (r *Replica) Containers() []replica.Container { return r.defs.List() }

// sqlQuote returns s as an SQL string literal.
func sqlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
