// Package edge is the edge replica: a SQLite document store that accepts reads
// and writes offline. Every local write commits at once as a tentative
// version, is recorded in the local change feed, and queues in a durable
// outbox for the hub.
//
// Writes from all goroutines funnel into one writer goroutine that owns the
// single write connection and commits them in groups: one transaction (and,
// with the default durability, one fsync) for every write that arrived while
// the previous commit ran. Nobody's write is acknowledged before its group is
// durable, and a failing write is rolled back to its own savepoint without
// touching the others in its group.
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
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// MaxBatch bounds how many writes one group commit takes. Default 256.
	MaxBatch int
	// Linger bounds how long the writer waits for callers that are already
	// preparing a write (validating a document) to join the group before it
	// commits. Default 1ms; negative turns it off.
	Linger time.Duration
	// Now returns the current time; tests set it. Default time.Now.
	Now func() time.Time
}

// Replica is an edge replica. Its methods are safe for concurrent use.
type Replica struct {
	cfg    Config
	log    *slog.Logger
	db     *sqlitestore.DB
	unlock func() error
	nodeID string

	mu         sync.RWMutex // guards containers
	containers map[string]*container

	jobs     chan *job
	inflight atomic.Int64  // callers between entering a write and its outcome
	kick     chan struct{} // a caller left without queueing a job
	cancel   context.CancelCauseFunc
	done     chan struct{} // closed when the writer has stopped
	closed   atomic.Bool

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after every commit

	lastSeq atomic.Int64
	pending atomic.Int64
	stats   Stats

	getItem *sql.Stmt // on the read pool

	// owned by the writer goroutine
	seq   int64 // last change seq assigned
	conn  *sql.Conn
	stmts writeStmts
}

// Stats are cumulative counters of the write path.
type Stats struct {
	Commits       atomic.Int64 // group commits that succeeded
	CommitErrors  atomic.Int64 // group commits that failed as a whole
	Writes        atomic.Int64 // writes acknowledged
	WriteErrors   atomic.Int64 // writes refused (bad precondition, conflict, ...)
	CommitNanos   atomic.Int64 // time spent running and committing groups
	MaxBatchSeen  atomic.Int64
	ReadsServed   atomic.Int64
	ChangesServed atomic.Int64
}

type container struct {
	def    replica.Container
	pkPath []string
}

type job struct {
	fn    func(ctx context.Context) error // runs inside the group's transaction
	after func()                          // runs once the group is committed
	err   error
	done  chan struct{}
}

// New returns a Replica for cfg. It does no I/O; call Open.
func New(cfg Config) *Replica {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Linger == 0 {
		cfg.Linger = time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Replica{
		cfg:        cfg,
		log:        log,
		containers: make(map[string]*container),
		jobs:       make(chan *job, cfg.MaxBatch),
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		notify:     make(chan struct{}),
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
	r.db, err = sqlitestore.Open(ctx, filepath.Join(r.cfg.Dir, DBFile), sqlitestore.Options{Durability: r.cfg.Durability}, migrations)
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
	if r.conn, err = r.db.Write.Conn(ctx); err != nil {
		return fmt.Errorf("write connection: %w", err)
	}
	if r.getItem, err = r.db.Read.PrepareContext(ctx, itemQuery+`i.container = ? AND i.id = ?`); err != nil {
		r.conn.Close()
		return fmt.Errorf("prepare: %w", err)
	}
	if err := r.stmts.prepare(ctx, r.conn); err != nil {
		r.getItem.Close()
		r.conn.Close()
		return fmt.Errorf("prepare: %w", err)
	}
	wctx, cancel := context.WithCancelCause(context.Background())
	r.cancel = cancel
	go r.writer(wctx)
	r.log.Info("edge replica open", "dir", r.cfg.Dir, "node", r.nodeID, "pending", r.pending.Load(), "seq", r.lastSeq.Load())
	return nil
}

// load reads the node id (generating it at first start), the containers, the
// feed position and the outbox size.
func (r *Replica) load(ctx context.Context) error {
	db := r.db.Write
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'node_id'`).Scan(&r.nodeID)
	if errors.Is(err, sql.ErrNoRows) {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		r.nodeID = "e" + hex.EncodeToString(b[:])
		if _, err := db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('node_id', ?)`, r.nodeID); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	var seq, pending int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM changes WHERE origin = ? AND tentative = 1`, r.nodeID).Scan(&pending); err != nil {
		return err
	}
	r.seq = seq
	r.lastSeq.Store(seq)
	r.pending.Store(pending)
	rows, err := db.QueryContext(ctx, `SELECT name, pk_path, policy FROM containers`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c replica.Container
		var policy string
		if err := rows.Scan(&c.Name, &c.PartitionKey, &policy); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(policy), &c.ConflictPolicy); err != nil {
			return fmt.Errorf("container %s policy: %w", c.Name, err)
		}
		path, err := replica.ParsePath(c.PartitionKey)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		r.containers[c.Name] = &container{def: c, pkPath: path}
	}
	return rows.Err()
}

// Close stops accepting writes, finishes the ones already queued, and closes
// the database. ctx bounds the wait for the writer.
func (r *Replica) Close(ctx context.Context) error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	if r.cancel == nil { // never opened
		return nil
	}
	r.cancel(replica.ErrClosed)
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("close: writer still busy: %w", ctx.Err())
	}
	r.stmts.close()
	err := errors.Join(r.getItem.Close(), r.conn.Close(), r.db.Close(), r.unlock())
	r.wake()
	r.log.Info("edge replica closed", "node", r.nodeID)
	return err
}

// NodeID is this node's id, generated at first start and kept in the data dir.
func (r *Replica) NodeID() string { return r.nodeID }

// CheckpointStats returns the background WAL checkpointer's counters.
func (r *Replica) CheckpointStats() sqlitestore.CheckpointStats { return r.db.CheckpointStats() }

// Stats returns the replica's cumulative write-path counters.
func (r *Replica) Stats() *Stats { return &r.stats }

// Changed returns a channel that is closed at the next commit (or at Close).
// Take it before reading the feed, then wait on it: no wake-up is lost.
func (r *Replica) Changed() <-chan struct{} {
	r.notifyMu.Lock()
	defer r.notifyMu.Unlock()
	return r.notify
}

// Done is closed when the replica has stopped.
func (r *Replica) Done() <-chan struct{} { return r.done }

func (r *Replica) wake() {
	r.notifyMu.Lock()
	close(r.notify)
	r.notify = make(chan struct{})
	r.notifyMu.Unlock()
}

// enter and leave bracket a write, from before its validation to its
// outcome, so that the writer knows who is about to queue.
func (r *Replica) enter() { r.inflight.Add(1) }

func (r *Replica) leave() {
	r.inflight.Add(-1)
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// submit hands a job to the writer and waits until its group is durable.
func (r *Replica) submit(ctx context.Context, j *job) error {
	if r.closed.Load() {
		return replica.ErrClosed
	}
	j.done = make(chan struct{})
	select {
	case r.jobs <- j:
	case <-r.done:
		return replica.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued, the job runs: wait for the outcome even if ctx ends, so a
	// caller never reports failure for a write that committed.
	<-j.done
	return j.err
}

// writer owns the write connection and commits writes in groups: it opens a
// transaction for the first queued job and runs every job that arrives while
// other callers are on their way to the queue (validating their documents),
// for at most Linger, then commits: one COMMIT, and one fsync, acknowledges
// the whole group. Jobs run while the group fills, so waiting costs little,
// and a lone caller never waits.
func (r *Replica) writer(ctx context.Context) {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case j := <-r.jobs:
			r.group(j, timer)
		case <-ctx.Done():
			// Finish what was queued before Close, then refuse.
			for {
				select {
				case j := <-r.jobs:
					r.group(j, nil)
				default:
					return
				}
			}
		}
	}
}

// group runs first and the jobs that follow it in one transaction and commits
// them. With a nil timer it takes no other job.
//
// A job that fails before writing (a failed precondition) fails alone. A job
// that fails after writing (a storageError) forces a rollback, and the group
// is replayed one job per transaction so that only that job fails.
func (r *Replica) group(first *job, timer *time.Timer) {
	start := time.Now()
	seq0 := r.seq
	batch := []*job{first}
	if err := r.db.BeforeWrite(context.Background(), r.conn); err != nil {
		r.fail(batch, err)
		return
	}
	if _, err := r.conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		r.fail(batch, err)
		return
	}
	broken := r.run(first)
	armed := false
fill:
	for !broken && timer != nil && len(batch) < r.cfg.MaxBatch {
		var j *job
		select {
		case j = <-r.jobs:
		default:
			// Wait only for callers already on their way.
			if r.cfg.Linger <= 0 || r.inflight.Load() <= int64(len(batch)) {
				break fill
			}
			if !armed {
				timer.Reset(r.cfg.Linger)
				armed = true
			}
			select {
			case j = <-r.jobs:
			case <-r.kick:
				continue
			case <-timer.C:
				armed = false
				break fill
			}
		}
		batch = append(batch, j)
		broken = r.run(j)
	}
	if armed {
		timer.Stop()
	}
	var err error
	if !broken {
		_, err = r.conn.ExecContext(context.Background(), "COMMIT")
	}
	if broken || err != nil {
		if _, rerr := r.conn.ExecContext(context.Background(), "ROLLBACK"); rerr != nil {
			r.log.Error("rollback failed", "err", rerr)
		}
		r.seq = seq0
		if broken && len(batch) > 1 {
			for _, j := range batch {
				j.err = nil
				r.group(j, nil)
			}
		} else {
			r.fail(batch, err)
		}
		return
	}
	ok := 0
	for _, j := range batch {
		if j.err == nil {
			ok++
			if j.after != nil {
				j.after()
			}
		}
	}
	r.stats.Commits.Add(1)
	r.stats.Writes.Add(int64(ok))
	r.stats.WriteErrors.Add(int64(len(batch) - ok))
	r.stats.CommitNanos.Add(int64(time.Since(start)))
	if n := int64(len(batch)); n > r.stats.MaxBatchSeen.Load() {
		r.stats.MaxBatchSeen.Store(n)
	}
	for _, j := range batch {
		close(j.done)
	}
	if ok > 0 {
		r.wake()
	}
}

// run runs one job inside the open transaction and reports whether it failed
// after writing, which spoils the transaction.
func (r *Replica) run(j *job) bool {
	j.err = j.fn(context.Background())
	return errors.As(j.err, new(*storageError))
}

// fail reports a failed group: jobs that had no error of their own get err.
func (r *Replica) fail(batch []*job, err error) {
	r.stats.CommitErrors.Add(1)
	r.log.Error("commit failed", "writes", len(batch), "err", err)
	for _, j := range batch {
		if j.err == nil {
			j.err = fmt.Errorf("commit: %w", err)
		}
		r.stats.WriteErrors.Add(1)
		close(j.done)
	}
}

// storageError marks a job's failure after it wrote: its transaction must be
// rolled back. A job fails with anything else only before writing.
type storageError struct{ err error }

func (e *storageError) Error() string { return e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

func wrote(op string, err error) error {
	return &storageError{fmt.Errorf("%s: %w", op, err)}
}

func (r *Replica) container(name string) (*container, error) {
	r.mu.RLock()
	c := r.containers[name]
	r.mu.RUnlock()
	if c == nil {
		return nil, fmt.Errorf("%w: %q", replica.ErrContainerNotFound, name)
	}
	return c, nil
}

// PutContainer defines a container or changes its conflict policy. It
// reports whether the container is new. Changing the partition key path of
// an existing container fails with ErrContainerMismatch.
func (r *Replica) PutContainer(ctx context.Context, c replica.Container) (bool, replica.Container, error) {
	r.enter()
	defer r.leave()
	c, err := c.Normalize()
	if err != nil {
		return false, c, err
	}
	path, _ := replica.ParsePath(c.PartitionKey)
	policy, err := json.Marshal(c.ConflictPolicy)
	if err != nil {
		return false, c, err
	}
	var created bool
	j := &job{
		fn: func(ctx context.Context) error {
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
				return wrote("store container", err)
			}
			return nil
		},
		after: func() {
			r.mu.Lock()
			r.containers[c.Name] = &container{def: c, pkPath: path}
			r.mu.Unlock()
		},
	}
	if err := r.submit(ctx, j); err != nil {
		return false, c, err
	}
	return created, c, nil
}

// Container returns a container's definition.
func (r *Replica) Container(name string) (replica.Container, error) {
	c, err := r.container(name)
	if err != nil {
		return replica.Container{}, err
	}
	return c.def, nil
}

// Containers returns every container definition, by name.
func (r *Replica) Containers() []replica.Container {
	r.mu.RLock()
	out := make([]replica.Container, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, c.def)
	}
	r.mu.RUnlock()
	sortContainers(out)
	return out
}
