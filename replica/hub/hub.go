// Package hub is the cloud hub: the single authority that orders every write
// into one log. Edges push their tentative versions over the sync protocol
// (replica/wire); the sequencer gives each confirmed version its LSN and
// confirmation time, detects conflicts against the current confirmed version,
// resolves them with the container's policy (replica.Decide), and every edge
// streams the log from its resume point, filtered by its scope.
//
// Everything the hub keeps is in a Store (store.go): replica/hub/sqlitehub
// (the embedded default) or replica/hub/pghub (PostgreSQL).
package hub

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

// Config configures a Hub.
type Config struct {
	// Store keeps everything the hub keeps; the hub opens and closes it.
	Store  Store
	Logger *slog.Logger
	Now    func() time.Time
	// Resolvers compiles and runs wasm resolvers; nil sends custom-policy
	// conflicts to the feed as unresolved and refuses uploads.
	Resolvers ResolverHost
	// MaxClockSkew is how far a pushed version's _ts may be ahead of the
	// hub's clock (Now) before conflict decisions take the hub's receipt
	// time instead (clock.go). Whole seconds count. Default
	// DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// Name is this hub's name in its tier, which the welcome tells edges
	// and the status lists (cloudhub: --hub-name); "" for none.
	Name string
	// Tier is the hubs sharing the store (PostgreSQL); nil for a hub alone
	// on its store, which always sequences. The hub opens and closes it.
	Tier Tier
	// MaxSyncSessions bounds the edges connected at once and MaxSyncHandshakes
	// the sync handshakes in progress; a connection beyond either is
	// refused with 503 (admission.go). Defaults DefaultMaxSyncSessions and
	// DefaultMaxSyncHandshakes.
	MaxSyncSessions   int
	MaxSyncHandshakes int
	// PingInterval is how often the hub asks edges to ping it (the
	// welcome's pingIntervalMs); it drops an edge that follows it after
	// twice that without anything from it, at least wire.PongWait
	// (heartbeat.go). Bounded to [wire.MinPingInterval,
	// wire.MaxPingInterval]. Default DefaultPingInterval.
	PingInterval time.Duration
	// Handoff makes a hub of a tier that does not sequence hand its edges'
	// pushes to the sequencer's hub directly (handoff.go), if the tier
	// supports it (HandoffTier), instead of through the tier's queue;
	// HandoffTLS, if not nil, makes it speak HTTPS to that hub.
	Handoff    bool
	HandoffTLS *tls.Config
}

// Hub is the hub engine. Its methods are safe for concurrent use.
type Hub struct {
	cfg    Config
	log    *slog.Logger
	st     Store
	hubID  string
	open   bool
	leaser Leaser

	defs   replica.Containers
	notify replica.Notifier

	head     atomic.Int64 // last LSN committed
	cseqHead atomic.Int64 // last conflict sequence number committed
	// pushesOutOfOrder counts the pushes this hub decided only in part,
	// up to a version out of its node's order (holdBack).
	pushesOutOfOrder atomic.Int64
	handoff          *handoff     // the sequencer's client (nil: pushes go through the queue)
	handedIn         atomic.Int64 // pushes handed to this hub by the tier's other hubs
	direct           directPushes // of those, the ones not decided yet
	handoffReceived  func()       // tests: runs when a handed-off push is registered, before it is queued
	conns            connRegistry
	resolvers        resolverSet
	frames           frameCache // changes frames shared by sessions (fanout.go)
	admit            *admission

	closeOnce sync.Once
	closeErr  error

	buildKick  chan struct{}      // wakes indexBuilder (size 1)
	stopBuild  context.CancelFunc // stops indexBuilder
	buildDone  chan struct{}
	stopTier   context.CancelFunc // stops followTier
	tierDone   chan struct{}
	stopCounts chan struct{} // stops saveResolverCountsEvery
	countsDone chan struct{}
	stopPings  chan struct{} // stops pingSilent
	pingsDone  chan struct{}
	savedCalls map[string]int64 // resolver version label -> calls last saved (saveResolverCounts only)
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
	if cfg.MaxSyncSessions <= 0 {
		cfg.MaxSyncSessions = DefaultMaxSyncSessions
	}
	if cfg.MaxSyncHandshakes <= 0 {
		cfg.MaxSyncHandshakes = DefaultMaxSyncHandshakes
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	cfg.PingInterval = min(max(cfg.PingInterval, wire.MinPingInterval), wire.MaxPingInterval)
	h := &Hub{cfg: cfg, log: cfg.Logger, st: cfg.Store, conns: connRegistry{byEdge: map[string]map[*session]struct{}{}},
		admit: newAdmission(cfg.MaxSyncHandshakes, cfg.MaxSyncSessions)}
	h.leaser = StaticLeaser{HubName: cfg.Name}
	if cfg.Tier != nil {
		h.leaser = cfg.Tier
		if t, ok := cfg.Tier.(HandoffTier); ok && cfg.Handoff {
			h.handoff = newHandoff(t, cfg.HandoffTLS)
		}
	}
	return h
}

// Open opens the store and loads the definitions and resolvers.
func (h *Hub) Open(ctx context.Context) (err error) {
	if h.st == nil {
		return fmt.Errorf("%w: no store", replica.ErrInvalid)
	}
	if err := h.st.Open(ctx, h.committed); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			h.st.Close(ctx)
		}
	}()
	if err := h.load(ctx); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	h.buildKick = make(chan struct{}, 1)
	if h.cfg.Tier != nil {
		if r, ok := h.cfg.Tier.(interface{ OnRevoke(func(edge string)) }); ok {
			r.OnRevoke(func(edge string) { h.conns.closeEdge(edge, wire.CodeRevoked, "the edge's token was revoked") })
		}
		if err := h.cfg.Tier.Open(ctx); err != nil {
			return fmt.Errorf("join the tier: %w", err)
		}
		tctx, cancel := context.WithCancel(context.Background())
		h.stopTier, h.tierDone = cancel, make(chan struct{})
		go h.followTier(tctx, h.tierDone)
	}
	bctx, cancel := context.WithCancel(context.Background())
	h.stopBuild, h.buildDone = cancel, make(chan struct{})
	go h.indexBuilder(bctx, h.buildDone)
	h.kickBuild() // paths left unbuilt by a stop during a build
	h.open = true
	h.stopCounts, h.countsDone, h.savedCalls = make(chan struct{}), make(chan struct{}), map[string]int64{}
	go h.saveResolverCountsEvery(h.stopCounts, h.countsDone)
	h.stopPings, h.pingsDone = make(chan struct{}), make(chan struct{})
	go h.pingSilent(h.stopPings, h.pingsDone)
	h.log.Info("hub open", "hub", h.hubID, "name", h.Name(), "lsn", h.head.Load(), "sequencer", h.Sequencing())
	return nil
}

// committed runs after every committed write transaction.
func (h *Hub) committed(hd Heads) {
	h.advance(hd)
	h.wake()
}

func (h *Hub) load(ctx context.Context) error {
	var err error
	if h.hubID, err = h.st.HubID(ctx); err != nil {
		return err
	}
	hd, err := h.st.Heads(ctx)
	if err != nil {
		return err
	}
	h.head.Store(hd.LSN)
	h.cseqHead.Store(hd.Cseq)
	defs, err := h.st.Containers(ctx)
	if err != nil {
		return err
	}
	for _, c := range defs {
		h.defs.Set(c)
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
	if !h.open {
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
	if h.stopPings != nil {
		close(h.stopPings)
		<-h.pingsDone
	}
	if h.stopCounts != nil {
		close(h.stopCounts)
		<-h.countsDone
		if err := h.saveResolverCounts(ctx); err != nil {
			h.log.Warn("save resolver call counts", "err", err)
		}
	}
	if h.stopBuild != nil {
		h.stopBuild()
		<-h.buildDone
	}
	var terr error
	if h.stopTier != nil {
		h.stopTier()
		<-h.tierDone
		terr = h.cfg.Tier.Close(ctx)
	}
	if h.handoff != nil {
		h.handoff.close()
	}
	err := errors.Join(h.st.Close(ctx), terr)
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
func (h *Hub) WriterStats() *sqlitestore.WriterStats { return h.st.WriterStats() }

// Changed returns a channel closed at the next commit.
func (h *Hub) Changed() <-chan struct{} { return h.notify.Changed() }

// Done is closed when the hub's writer has stopped.
func (h *Hub) Done() <-chan struct{} { return h.st.Done() }

func (h *Hub) wake() { h.notify.Wake() }

// submit runs fn in a write transaction and waits for its commit.
func (h *Hub) submit(ctx context.Context, fn func(ctx context.Context, tx Tx) error, after func()) error {
	wait, err := h.st.Queue(ctx, fn, after)
	if err != nil {
		return err
	}
	return wait()
}

// Container returns a container's definition.
func (h *Hub) Container(name string) (replica.Container, error) {
	c, err := h.def(name)
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
	err = h.submit(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		created, err = h.putContainerTx(ctx, tx, c)
		return err
	}, func() { h.defs.Set(c) })
	if err == nil && c.IndexingPolicy != nil {
		h.kickBuild()
	}
	return created, c, err
}

// putContainerTx runs in a write transaction.
func (h *Hub) putContainerTx(ctx context.Context, tx Tx, c replica.Container) (bool, error) {
	pk, found, err := tx.ContainerPK(ctx, c.Name)
	switch {
	case err != nil:
		return false, err
	case !found:
	case pk != c.PartitionKey:
		return false, fmt.Errorf("%w: container %q has partition key %q, not %q (a partition key path cannot change)",
			replica.ErrContainerMismatch, c.Name, pk, c.PartitionKey)
	}
	policy, err := json.Marshal(c.ConflictPolicy)
	if err != nil {
		return false, err
	}
	var indexing []byte
	if c.IndexingPolicy != nil {
		if indexing, err = json.Marshal(c.IndexingPolicy); err != nil {
			return false, err
		}
	}
	if err := tx.PutContainer(ctx, c.Name, c.PartitionKey, string(policy), string(indexing), h.cfg.Now().Unix()); err != nil {
		return false, err
	}
	return !found, nil
}

// SQLiteMigrations are the migrations of the hub's SQLite database, in
// order (sqlitehub applies them).
func SQLiteMigrations() []string { return append([]string(nil), migrations...) }

// versionOf is the version id the hub gives what it writes at lsn.
func (h *Hub) versionOf(lsn int64) string { return h.hubID + "-" + strconv.FormatInt(lsn, 10) }
