// Package hub is the cloud hub: the single authority that orders every write
// into one log. Edges push their tentative versions over the sync protocol
// (replica/wire); the sequencer gives each confirmed version its LSN and
// confirmation time, detects conflicts against the current confirmed version,
// resolves them with the container's policy (replica.Decide), and every edge
// streams the log from its resume point, filtered by its scope.
//
// Writes go through one sqlitestore.Writer (group commit), so a push batch,
// its outcomes and its conflicts commit atomically, and nothing is confirmed
// before it is durable.
package hub

import (
	"context"
	"database/sql"
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
	"github.com/edgesync/edgesync/replica/wire"
)

// DBFile is the name of the database inside the data directory.
const DBFile = "hub.db"

// Config configures a Hub.
type Config struct {
	Dir        string
	Durability string
	Logger     *slog.Logger
	Now        func() time.Time
	// Resolvers compiles and runs wasm resolvers; nil sends custom-policy
	// conflicts to the feed as unresolved and refuses uploads.
	Resolvers ResolverHost
	// MaxClockSkew is how far a pushed version's _ts may be ahead of the
	// hub's clock (Now) before conflict decisions take the hub's receipt
	// time instead (clock.go). Whole seconds count. Default
	// DefaultMaxClockSkew.
	MaxClockSkew time.Duration
}

// Hub is the hub engine. Its methods are safe for concurrent use.
type Hub struct {
	cfg   Config
	log   *slog.Logger
	db    *sqlitestore.DB
	w     *sqlitestore.Writer
	hubID string

	defs   replica.Containers
	notify replica.Notifier

	head      atomic.Int64 // last LSN committed
	cseqHead  atomic.Int64 // last conflict sequence number committed
	conns     connRegistry
	resolvers resolverSet

	closeOnce sync.Once
	closeErr  error

	stopCounts chan struct{} // stops saveResolverCountsEvery
	countsDone chan struct{}
	savedCalls map[string]int64 // resolver version label -> calls last saved (saveResolverCounts only)

	// owned by the writer
	lsn, lsn0   int64
	cseq, cseq0 int64 // conflict sequence numbers (conflicts.cseq)
	stmts       stmts
}

// New returns a hub for cfg; call Open.
func New(cfg Config) *Hub {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxClockSkew <= 0 {
		cfg.MaxClockSkew = DefaultMaxClockSkew
	}
	return &Hub{cfg: cfg, log: cfg.Logger, conns: connRegistry{byEdge: map[string]map[*session]struct{}{}}}
}

// Open opens or creates the data directory and the database and starts the
// writer.
func (h *Hub) Open(ctx context.Context) (err error) {
	if h.cfg.Dir == "" {
		return fmt.Errorf("%w: data directory is empty", replica.ErrInvalid)
	}
	if err := os.MkdirAll(h.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	h.db, err = sqlitestore.Open(ctx, filepath.Join(h.cfg.Dir, DBFile), sqlitestore.Options{Durability: h.cfg.Durability, Logger: h.log}, migrations)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			h.db.Close()
		}
	}()
	if err := h.load(ctx); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	h.w = sqlitestore.NewWriter(h.db, sqlitestore.WriterConfig{
		Logger:     h.log,
		OnBegin:    func() { h.lsn0, h.cseq0 = h.lsn, h.cseq },
		OnRollback: func() { h.lsn, h.cseq = h.lsn0, h.cseq0 },
		OnCommit:   func() { h.head.Store(h.lsn); h.cseqHead.Store(h.cseq); h.wake() },
	})
	if err := h.w.Open(ctx); err != nil {
		return err
	}
	if err := h.stmts.prepare(ctx, h.w, h.db.Read); err != nil {
		h.w.Close(ctx)
		return fmt.Errorf("prepare: %w", err)
	}
	h.stopCounts, h.countsDone, h.savedCalls = make(chan struct{}), make(chan struct{}), map[string]int64{}
	go h.saveResolverCountsEvery(h.stopCounts, h.countsDone)
	h.log.Info("hub open", "dir", h.cfg.Dir, "hub", h.hubID, "lsn", h.head.Load())
	return nil
}

func (h *Hub) load(ctx context.Context) error {
	db := h.db.Write
	var err error
	if h.hubID, err = sqlitestore.MetaID(ctx, db, "hub_id", wire.HubNodePrefix); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(lsn), 0) FROM log`).Scan(&h.lsn); err != nil {
		return err
	}
	h.head.Store(h.lsn)
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(cseq), 0) FROM conflicts`).Scan(&h.cseq); err != nil {
		return err
	}
	h.cseqHead.Store(h.cseq)
	if err := h.defs.Load(ctx, db); err != nil {
		return err
	}
	return h.loadResolvers(ctx)
}

// Close closes every sync session, stops the writer and closes the database.
// Calls after the first return its result.
func (h *Hub) Close(ctx context.Context) error {
	h.closeOnce.Do(func() { h.closeErr = h.close(ctx) })
	return h.closeErr
}

func (h *Hub) close(ctx context.Context) error {
	if h.w == nil {
		return nil
	}
	h.conns.closeAll()
	waited := make(chan struct{})
	go func() { h.conns.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		return fmt.Errorf("close hub: sync sessions still ending: %w", ctx.Err())
	}
	if h.stopCounts != nil {
		close(h.stopCounts)
		<-h.countsDone
		if err := h.saveResolverCounts(ctx); err != nil {
			h.log.Warn("save resolver call counts", "err", err)
		}
	}
	if err := h.w.Close(ctx); err != nil {
		return err
	}
	h.stmts.close()
	err := h.db.Close()
	h.wake()
	h.log.Info("hub closed", "hub", h.hubID)
	return err
}

// HubID is the hub's id, generated at first start.
func (h *Hub) HubID() string { return h.hubID }

// Head is the newest LSN.
func (h *Hub) Head() int64 { return h.head.Load() }

// ConflictHead is the newest conflict sequence number (see ConflictsAfter).
func (h *Hub) ConflictHead() int64 { return h.cseqHead.Load() }

// WriterStats are the write path's counters.
func (h *Hub) WriterStats() *sqlitestore.WriterStats { return h.w.Stats() }

// Changed returns a channel closed at the next commit.
func (h *Hub) Changed() <-chan struct{} { return h.notify.Changed() }

// Done is closed when the hub's writer has stopped.
func (h *Hub) Done() <-chan struct{} { return h.w.Done() }

func (h *Hub) wake() { h.notify.Wake() }

func (h *Hub) submit(ctx context.Context, fn func(ctx context.Context) error, after func()) error {
	err := h.w.Do(ctx, fn, after)
	if errors.Is(err, sqlitestore.ErrWriterClosed) {
		return replica.ErrClosed
	}
	return err
}

// Container returns a container's definition.
func (h *Hub) Container(name string) (replica.Container, error) {
	c, err := h.defs.Get(name)
	if err != nil {
		return replica.Container{}, err
	}
	return c.Def, nil
}

// Containers returns every definition, by name.
func (h *Hub) Containers() []replica.Container { return h.defs.List() }

// PutContainer defines a container or changes its policy (effective for new
// conflicts). It reports whether the container is new; a different partition
// key path is ErrContainerMismatch.
func (h *Hub) PutContainer(ctx context.Context, c replica.Container) (bool, replica.Container, error) {
	c, err := c.Normalize()
	if err != nil {
		return false, c, err
	}
	var created bool
	err = h.submit(ctx, func(ctx context.Context) error {
		var err error
		created, err = h.putContainerTx(ctx, c)
		return err
	}, func() { h.defs.Set(c) })
	return created, c, err
}

// putContainerTx runs in a writer job.
func (h *Hub) putContainerTx(ctx context.Context, c replica.Container) (bool, error) {
	var pk string
	created := false
	err := h.stmts.getContainer.QueryRowContext(ctx, c.Name).Scan(&pk)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		created = true
	case err != nil:
		return false, err
	case pk != c.PartitionKey:
		return false, fmt.Errorf("%w: container %q has partition key %q, not %q (a partition key path cannot change)",
			replica.ErrContainerMismatch, c.Name, pk, c.PartitionKey)
	}
	policy, err := json.Marshal(c.ConflictPolicy)
	if err != nil {
		return false, err
	}
	if _, err := h.stmts.putContainer.ExecContext(ctx, c.Name, c.PartitionKey, string(policy), h.cfg.Now().Unix()); err != nil {
		return false, sqlitestore.Wrote("store container", err)
	}
	return created, nil
}
