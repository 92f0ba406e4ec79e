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
	"strconv"
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

	jobs   chan *job
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the writer has stopped
	closed atomic.Bool

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after every commit

	lastSeq atomic.Int64
	pending atomic.Int64
	stats   Stats

	// owned by the writer goroutine
	counter      int64 // last version counter used
	savedCounter int64
	conn         *sql.Conn
	stmts        writeStmts
}

// Stats are cumulative counters of the write path.
type Stats struct {
	Commits       atomic.Int64 // group commits that succeeded
	CommitErrors  atomic.Int64 // group commits that failed as a whole
	Writes        atomic.Int64 // writes acknowledged
	WriteErrors   atomic.Int64 // writes refused (bad precondition, conflict, ...)
	CommitNanos   atomic.Int64 // time spent in group commits
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
	after func()                          // runs after a successful commit
	err   error
	done  chan struct{}
}

// New returns a Replica for cfg. It does no I/O; call Open.
func New(cfg Config) *Replica {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
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
	if err := r.stmts.prepare(ctx, r.conn); err != nil {
		r.conn.Close()
		return fmt.Errorf("prepare: %w", err)
	}
	wctx, cancel := context.WithCancelCause(context.Background())
	r.cancel = cancel
	go r.writer(wctx)
	r.log.Info("edge replica open", "dir", r.cfg.Dir, "node", r.nodeID, "pending", r.pending.Load(), "seq", r.lastSeq.Load())
	return nil
}

// load reads the node id (generating it at first start), the version counter,
// the containers and the feed and outbox positions.
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
	var counter sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'version_counter'`).Scan(&counter); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if counter.Valid {
		if r.counter, err = strconv.ParseInt(counter.String, 10, 64); err != nil {
			return fmt.Errorf("version counter %q: %w", counter.String, err)
		}
	}
	r.savedCounter = r.counter
	var seq, pending int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM changes`).Scan(&seq); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&pending); err != nil {
		return err
	}
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
	err := errors.Join(r.conn.Close(), r.db.Close(), r.unlock())
	r.wake()
	r.log.Info("edge replica closed", "node", r.nodeID)
	return err
}

// NodeID is this node's id, generated at first start and kept in the data dir.
func (r *Replica) NodeID() string { return r.nodeID }

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

// submit hands a job to the writer and waits for its group to commit.
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

// writer owns the write connection. It takes every job queued while the last
// commit ran and commits them together.
func (r *Replica) writer(ctx context.Context) {
	defer close(r.done)
	batch := make([]*job, 0, r.cfg.MaxBatch)
	for {
		select {
		case j := <-r.jobs:
			batch = append(batch[:0], j)
		drain:
			for len(batch) < r.cfg.MaxBatch {
				select {
				case j := <-r.jobs:
					batch = append(batch, j)
				default:
					break drain
				}
			}
			r.commit(batch)
		case <-ctx.Done():
			// Finish what was queued before Close, then refuse.
			for {
				select {
				case j := <-r.jobs:
					r.commit([]*job{j})
				default:
					return
				}
			}
		}
	}
}

func (r *Replica) commit(batch []*job) {
	ctx := context.Background()
	start := time.Now()
	fail := func(err error) {
		r.stats.CommitErrors.Add(1)
		r.log.Error("group commit failed", "writes", len(batch), "err", err)
		for _, j := range batch {
			if j.err == nil {
				j.err = fmt.Errorf("commit: %w", err)
			}
			close(j.done)
		}
	}
	if _, err := r.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		fail(err)
		return
	}
	ok := 0
	for _, j := range batch {
		j.err = r.runJob(ctx, j)
		if j.err == nil {
			ok++
		}
	}
	var err error
	if r.counter != r.savedCounter {
		_, err = r.stmts.saveCounter.ExecContext(ctx, strconv.FormatInt(r.counter, 10))
	}
	if err == nil {
		_, err = r.conn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		if _, rerr := r.conn.ExecContext(ctx, "ROLLBACK"); rerr != nil {
			err = errors.Join(err, rerr)
		}
		// Version ids handed out in the failed group are not reused:
		// keep counting from where it got to, gaps are harmless.
		fail(err)
		return
	}
	r.savedCounter = r.counter
	for _, j := range batch {
		if j.err == nil && j.after != nil {
			j.after()
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

// runJob runs one job inside its own savepoint so that its failure leaves the
// rest of the group intact.
func (r *Replica) runJob(ctx context.Context, j *job) error {
	if _, err := r.conn.ExecContext(ctx, "SAVEPOINT job"); err != nil {
		return err
	}
	if err := j.fn(ctx); err != nil {
		if _, rerr := r.conn.ExecContext(ctx, "ROLLBACK TO job"); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if _, rerr := r.conn.ExecContext(ctx, "RELEASE job"); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	_, err := r.conn.ExecContext(ctx, "RELEASE job")
	return err
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
			_, err = r.stmts.putContainer.ExecContext(ctx, c.Name, c.PartitionKey, string(policy), r.cfg.Now().Unix())
			return err
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
