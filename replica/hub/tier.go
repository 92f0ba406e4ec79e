package hub

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// ErrNotSequencer means this hub does not hold the tier's lease: a decision
// it tried to commit was rolled back, or a forwarded one could not be
// handed to the sequencer. 503: the request may be retried.
var ErrNotSequencer = errors.New("not the sequencer")

// Lease is the right to sequence: to commit decisions (anything that takes
// an LSN or a conflict sequence number). One hub of a tier holds it at a
// time. (The model is LiteFS's lease.go.)
type Lease interface {
	// Holder is the name of the hub that holds the lease.
	Holder() string
	// Epoch counts the holders since the tier began: every takeover takes
	// the next epoch, and a commit is fenced by the epoch it was made in.
	Epoch() int64
}

// Leaser hands out the lease among the hubs that share a store.
type Leaser interface {
	// Name is this hub's name in the tier.
	Name() string
	// Lease returns the lease while this hub holds it, nil while it does
	// not (another hub sequences, or none does yet).
	Lease() Lease
}

// StaticLeaser is the lease of a hub alone on its store (the SQLite hub):
// always held, at epoch 1.
type StaticLeaser struct{ HubName string }

// StaticLease is a StaticLeaser's lease.
type StaticLease struct{ HubName string }

var (
	_ Leaser = StaticLeaser{}
	_ Lease  = StaticLease{}
)

// Name is the hub's name.
func (l StaticLeaser) Name() string { return l.HubName }

// Lease is always held.
func (l StaticLeaser) Lease() Lease { return StaticLease(l) }

// Holder is the hub.
func (l StaticLease) Holder() string { return l.HubName }

// Epoch is 1.
func (l StaticLease) Epoch() int64 { return 1 }

// TierHub is one hub of a tier as GET /api/v1/status lists it.
type TierHub struct {
	Name      string `json:"name"`
	Order     int64  `json:"order"`
	Address   string `json:"address,omitempty"`
	Online    bool   `json:"online"`
	Sequencer bool   `json:"sequencer"`
	Edges     int64  `json:"edges"` // edges connected to it now
}

// Takeover is one change of the tier's sequencer.
type Takeover struct {
	Epoch    int64     `json:"epoch"`
	Holder   string    `json:"holder"`
	Previous string    `json:"previous,omitempty"`
	At       time.Time `json:"at"`
	// GapMs is how long the tier had no sequencer: from the previous
	// holder's last renewal (or release) to the takeover, by the
	// database's clock; 0 for the tier's first sequencer.
	GapMs int64 `json:"gapMs"`
}

// Forwarded is a decision a hub that does not sequence handed to the
// sequencer, waiting in the tier's queue.
type Forwarded struct {
	Seq     int64
	Kind    string
	Payload []byte
}

// Tier is the hubs that share one store (replica/hub/pghub.Tier): the
// lease, membership, the queue of decisions forwarded to the sequencer, and
// news of other hubs' commits. A hub alone on its store has none.
type Tier interface {
	Leaser
	// Open joins the tier (and takes the lease if it is free and this hub
	// is the first live one in order); Close leaves it, releasing the
	// lease if it holds it.
	Open(ctx context.Context) error
	Close(ctx context.Context) error
	// Changed returns a channel closed when another hub may have committed
	// or the lease changed hands, and at least once a poll interval.
	Changed() <-chan struct{}
	// Hubs lists the tier's hubs in order; Takeovers the newest takeovers,
	// newest first, at most limit.
	Hubs(ctx context.Context) ([]TierHub, error)
	Takeovers(ctx context.Context, limit int) ([]Takeover, error)
	// Takeovers taken by this hub since it started.
	TakeoverCount() int64
	// Remove removes a hub from the tier (replica.ErrNotFound for an
	// unknown one); if it holds the lease, the lease passes to the next.
	Remove(ctx context.Context, name string) error
	// EdgeHub records which hub an edge is connected to ("" when its
	// session on this hub ends).
	EdgeHub(ctx context.Context, edge string, connected bool) error

	// Forward queues a decision for the sequencer (in the order Forward
	// is called) and returns a function that waits for its result. When
	// the wait's ctx ends first, the decision is taken back from the
	// queue unless it was decided (then its result is returned), except a
	// push (kind ForwardedPush): it stays queued and is decided in its
	// turn. An edge pushes again what got no outcome, and its pushes must
	// be decided in the order it made them: one taken back while a later
	// one stays queued would be decided after it. A push names the edge
	// node that pushed it and first, the lowest counter among its
	// versions issued by that node (PushQueued reads them); other
	// decisions, and a push with no such version, name "" and 0.
	Forward(ctx context.Context, kind string, payload []byte, node string, first int64) (func(ctx context.Context) ([]byte, error), error)
	// PushQueued reports whether a push of edge node node with a version
	// before counter before (its first lower) waits in the queue, not
	// decided yet, as the sequencer's write transaction tx reads it: one
	// decided earlier in tx is not. The decision except (0: none), the
	// one tx decides, does not count.
	PushQueued(ctx context.Context, tx Tx, node string, before, except int64) (bool, error)
	// Pending returns up to limit queued decisions not decided yet, in
	// queue order, but those in skip (which the caller has queued and not
	// seen settled).
	Pending(ctx context.Context, skip []int64, limit int) ([]Forwarded, error)
	// Claim locks a queued decision in the sequencer's write transaction.
	// If it was decided (or withdrawn) before, then nothing is to be done:
	// Claim, or the transaction's next read or its commit, fails with an
	// error that wraps ErrDecided.
	Claim(ctx context.Context, tx Tx, seq int64) error
	// Finish records a decision's result in the transaction that decided
	// it, so that it is decided once.
	Finish(ctx context.Context, tx Tx, seq int64, result []byte) error
	// Refuse records the result of a decision that failed (and committed
	// nothing), outside any transaction.
	Refuse(ctx context.Context, seq int64, result []byte) error
}

// DefaultAdvertise is the address the other hubs of a tier reach a hub
// at, from the address it listens on: that address, or, when it listens on
// every interface (":8080", "0.0.0.0:8080", "[::]:8080"), the host name
// and the port, since an unspecified address reaches only the hub's own
// machine.
func DefaultAdvertise(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		return listen
	}
	return net.JoinHostPort(name, port)
}

// CheckAdvertise checks an address given to reach a hub at: HOST:PORT,
// a host and a port from 1 to 65535, not an unspecified address.
func CheckAdvertise(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %v", err)
	}
	if host == "" || len(addr) > 255 {
		return errors.New("want HOST:PORT, a host name or address of at most 255 bytes in all")
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%s reaches no other machine: name this hub's own address", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", port)
	}
	return nil
}

// DefaultHubName is the host name and the listen port: "host:8080".
func DefaultHubName(listen string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "hub"
	}
	port := listen
	for i := len(listen) - 1; i >= 0; i-- {
		if listen[i] == ':' {
			port = listen[i+1:]
			break
		}
	}
	return host + ":" + port
}

// Name is this hub's name in its tier.
func (h *Hub) Name() string { return h.leaser.Name() }

// Sequencing reports whether this hub holds the lease now.
func (h *Hub) Sequencing() bool { return h.leaser.Lease() != nil }

// Hubs lists the tier (a hub alone on its store: itself).
func (h *Hub) Hubs(ctx context.Context) ([]TierHub, error) {
	if h.cfg.Tier == nil {
		return []TierHub{{Name: h.Name(), Order: 1, Online: true, Sequencer: true, Edges: int64(h.EdgesOnline())}}, nil
	}
	return h.cfg.Tier.Hubs(ctx)
}

// Takeovers lists the newest takeovers of the tier, newest first.
func (h *Hub) Takeovers(ctx context.Context, limit int) ([]Takeover, error) {
	if h.cfg.Tier == nil {
		return []Takeover{}, nil
	}
	return h.cfg.Tier.Takeovers(ctx, limit)
}

// TakeoverCount counts the takeovers this hub made since it started.
func (h *Hub) TakeoverCount() int64 {
	if h.cfg.Tier == nil {
		return 0
	}
	return h.cfg.Tier.TakeoverCount()
}

// RemoveHub removes a hub from the tier. A hub alone on its store cannot
// be removed.
func (h *Hub) RemoveHub(ctx context.Context, name string) error {
	if h.cfg.Tier == nil {
		if name == h.Name() {
			return fmt.Errorf("%w: hub %q is the only hub (SQLite): it cannot be removed", replica.ErrInvalid, name)
		}
		return fmt.Errorf("%w: hub %q", replica.ErrNotFound, name)
	}
	return h.cfg.Tier.Remove(ctx, name)
}

// ForwardedPush is the kind of a forwarded push (Tier.Forward).
const ForwardedPush = forwardPush

// The kinds of forwarded decisions.
const (
	forwardPush    = "push"
	forwardWrite   = "write"
	forwardResolve = "resolve"
)

// forwardErrors are the errors a forwarded decision reports by code (its
// position), so that the hub that forwarded it answers as the sequencer
// would. More specific first.
var forwardErrors = []error{
	replica.ErrTooLarge, replica.ErrPartitionKeyChange, replica.ErrInvalid, replica.ErrContainerNotFound, replica.ErrNotFound,
	replica.ErrExists, ErrConflictSettled, replica.ErrContainerMismatch, replica.ErrPreconditionFailed, replica.ErrForbidden,
}

// forwardedError is an error a forwarded decision got on the sequencer.
type forwardedError struct {
	msg string
	err error
}

func (e *forwardedError) Error() string { return e.msg }
func (e *forwardedError) Unwrap() error { return e.err }

// forwardResult is what a forwarded decision got: Value (gob), or the
// error Code (1 + index in forwardErrors) and Message.
type forwardResult struct {
	Value   []byte
	Code    int
	Message string
}

// errorResult encodes a decision's error, if it is one a forwarded
// decision reports (a domain error, the same on any sequencer).
func errorResult(err error) ([]byte, bool) {
	for i, e := range forwardErrors {
		if errors.Is(err, e) {
			b, err := encodeGob(forwardResult{Code: i + 1, Message: err.Error()})
			return b, err == nil
		}
	}
	return nil, false
}

func valueResult(v any) ([]byte, error) {
	b, err := encodeGob(v)
	if err != nil {
		return nil, err
	}
	return encodeGob(forwardResult{Value: b})
}

// decodeResult decodes a forwarded decision's result into v.
func decodeResult(b []byte, v any) error {
	var r forwardResult
	if err := decodeGob(b, &r); err != nil {
		return fmt.Errorf("forwarded result: %w", err)
	}
	if r.Code > 0 {
		if r.Code > len(forwardErrors) {
			return fmt.Errorf("forwarded result: error code %d", r.Code)
		}
		return &forwardedError{msg: r.Message, err: forwardErrors[r.Code-1]}
	}
	if err := decodeGob(r.Value, v); err != nil {
		return fmt.Errorf("forwarded result: %w", err)
	}
	return nil
}

func encodeGob(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decodeGob(b []byte, v any) error { return gob.NewDecoder(bytes.NewReader(b)).Decode(v) }

// ForwardWait bounds how long a hub write made on a hub that does not
// sequence waits for the sequencer: past it, the write is taken back from
// the queue (unless it was decided) and fails with ErrNotSequencer.
const ForwardWait = 30 * time.Second

// forward hands a decision to the sequencer and waits for its result in v.
func (h *Hub) forward(ctx context.Context, kind string, payload, v any) error {
	wait, err := h.forwardQueue(ctx, kind, payload, "", 0)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeoutCause(ctx, ForwardWait, ErrNotSequencer)
	defer cancel()
	b, err := wait(wctx)
	if err != nil {
		if errors.Is(context.Cause(wctx), ErrNotSequencer) {
			return fmt.Errorf("%w: no hub sequenced the %s within %s", ErrNotSequencer, kind, ForwardWait)
		}
		return err
	}
	return decodeResult(b, v)
}

// forwardQueue queues a decision for the sequencer; node and first name
// a push (Tier.Forward).
func (h *Hub) forwardQueue(ctx context.Context, kind string, payload any, node string, first int64) (func(ctx context.Context) ([]byte, error), error) {
	b, err := encodeGob(payload)
	if err != nil {
		return nil, err
	}
	wait, err := h.cfg.Tier.Forward(ctx, kind, b, node, first)
	if err != nil {
		return nil, fmt.Errorf("forward %s: %w", kind, err)
	}
	return wait, nil
}

// pushKey is what the queue keeps of a forwarded push of nodeID
// (Tier.Forward): the node and the lowest counter among its versions
// issued by the node, where the push starts in the node's order; "" and 0
// if it has none.
func pushKey(nodeID string, versions []wire.Version) (node string, first int64) {
	for i := range versions {
		if wire.IsVersionOf(versions[i].Version, nodeID) {
			if n := versionCounter(versions[i].Version, nodeID); node == "" || n < first {
				node, first = nodeID, n
			}
		}
	}
	return node, first
}

// pushQueued reports whether a push of node with a version before counter
// before waits in the tier's queue (Tier.PushQueued) or was handed to this
// hub directly and is not decided yet (Hub.direct), other than the push c
// decides; a hub alone on its store has neither.
func (h *Hub) pushQueued(ctx context.Context, tx Tx, node string, before int64, c *claim) (bool, error) {
	if h.cfg.Tier == nil {
		return false, nil
	}
	var except int64
	var direct uint64
	if c != nil {
		except, direct = c.seq, c.direct
	}
	if h.direct.earlier(node, before, direct) {
		return true, nil
	}
	return h.cfg.Tier.PushQueued(ctx, tx, node, before, except)
}

// pushRequest is a forwarded push.
type pushRequest struct {
	NodeID   string
	Scope    []wire.ScopeEntry
	Versions []wire.Version
}

// pushResult is a forwarded push's outcomes.
type pushResult struct {
	Outcomes []wire.Outcome
	LSN      int64
}

// writeRequest is a forwarded hub write.
type writeRequest struct {
	Kind          int
	Container, ID string
	Body          []byte
	IfMatch       string
}

type writeResult struct {
	Item    replica.Item
	Created bool
}

// resolveRequest is a forwarded conflict resolution.
type resolveRequest struct {
	Container  string
	CID        int64
	Resolution Resolution
}

// claim is a forwarded decision a job decides: its job claims it first
// and finishes it in the same transaction (seq, in the tier's queue), or
// a push handed to this hub directly (direct, its id in Hub.direct; 0
// for a push with no version of its node), which has no queue row.
type claim struct {
	seq    int64
	direct uint64
}

// ErrDecided means a forwarded decision was decided (or withdrawn by the
// hub that forwarded it) before: nothing is to be done.
var ErrDecided = errors.New("forwarded decision decided before")

// claimTx runs at the start of a forwarded decision's job.
func (h *Hub) claimTx(ctx context.Context, tx Tx, c *claim) error {
	if c == nil || c.seq == 0 {
		return nil
	}
	return h.cfg.Tier.Claim(ctx, tx, c.seq)
}

// finishTx runs at the end of a forwarded decision's job.
func (h *Hub) finishTx(ctx context.Context, tx Tx, c *claim, v any) error {
	if c == nil || c.seq == 0 {
		return nil
	}
	b, err := valueResult(v)
	if err != nil {
		return err
	}
	return h.cfg.Tier.Finish(ctx, tx, c.seq, b)
}

// forwardBatch bounds how many queued decisions the sequencer takes at a
// time, and forwardBatches how many such batches it has queued in its
// writer and not seen committed: it queues the next while the writer
// commits the one before, as a sync session queues an edge's next push.
const (
	forwardBatch   = 128
	forwardBatches = 2
)

// followTier runs on every hub of a tier: it follows other hubs' commits
// (heads, container definitions, resolvers) and, while this hub holds the
// lease, decides the queue of forwarded decisions in order.
func (h *Hub) followTier(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	d := &drainer{h: h, slots: make(chan struct{}, forwardBatches), settled: make(chan struct{}, 1), queued: map[int64]bool{}}
	defer d.wg.Wait()
	var defsAt, edgesAt time.Time
	for {
		changed := h.cfg.Tier.Changed()
		if time.Since(edgesAt) >= followEdgesEvery {
			edgesAt = time.Now()
			if err := h.endRevokedSessions(ctx); err != nil && ctx.Err() == nil {
				h.log.Warn("check the edges' registrations", "err", err)
			}
		}
		// The heads at every notification; definitions and resolvers,
		// which change seldom, at most every followDefsEvery.
		withDefs := time.Since(defsAt) >= followDefsEvery
		if withDefs {
			defsAt = time.Now()
		}
		if err := h.follow(ctx, withDefs); err != nil && ctx.Err() == nil {
			h.log.Warn("follow the tier", "err", err)
		}
		if !h.Sequencing() {
			d.restart()
		}
		for h.Sequencing() && ctx.Err() == nil {
			n, err := d.drain(ctx)
			if err != nil && ctx.Err() == nil {
				h.log.Warn("decide forwarded writes", "err", err)
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-changed:
		case <-d.settled:
		case <-ctx.Done():
			return
		}
	}
}

// followEdgesEvery is how often a hub of a tier checks that the edges of
// its sessions are still registered: a revocation on another hub ends
// them at its notification, and at the latest then.
const followEdgesEvery = 2 * time.Second

// endRevokedSessions ends the sessions of edges no longer registered.
func (h *Hub) endRevokedSessions(ctx context.Context) error {
	live := h.conns.names()
	if len(live) == 0 {
		return nil
	}
	rs, err := h.st.Edges(ctx)
	if err != nil {
		return err
	}
	registered := make(map[string]bool, len(rs))
	for _, r := range rs {
		registered[r.Name] = true
	}
	for _, name := range live {
		if !registered[name] {
			h.conns.closeEdge(name, wire.CodeRevoked, "the edge's token was revoked")
		}
	}
	return nil
}

// followDefsEvery bounds how often a hub of a tier reads the container
// definitions and resolvers (a container it does not know is read at
// once: def).
const followDefsEvery = 250 * time.Millisecond

// follow reads the heads and, withDefs, the container definitions and
// resolvers other hubs may have changed.
func (h *Hub) follow(ctx context.Context, withDefs bool) error {
	hd, err := h.st.Heads(ctx)
	if err != nil {
		return err
	}
	if h.advance(hd) {
		h.wake()
	}
	if !withDefs {
		return nil
	}
	if err := h.followDefs(ctx); err != nil {
		return err
	}
	return h.followResolvers(ctx)
}

// followDefs reads the container definitions other hubs may have changed.
func (h *Hub) followDefs(ctx context.Context) error {
	defs, err := h.st.Containers(ctx)
	if err != nil {
		return err
	}
	for _, c := range defs {
		cur, err := h.defs.Get(c.Name)
		if err != nil || cur.Def.PartitionKey != c.PartitionKey || cur.Def.ConflictPolicy != c.ConflictPolicy ||
			!slices.Equal(indexedPaths(cur.Def.IndexingPolicy), indexedPaths(c.IndexingPolicy)) {
			h.defs.Set(c)
			if c.IndexingPolicy != nil {
				h.kickBuild() // a path added on another hub: this one may build it too
			}
		}
	}
	return nil
}

// def returns a container's definition. In a tier, a container this hub
// does not know may have been defined on another hub since it last read
// the definitions: it reads them again first.
func (h *Hub) def(name string) (*replica.ContainerDef, error) {
	c, err := h.defs.Get(name)
	if err == nil || h.cfg.Tier == nil || !errors.Is(err, replica.ErrContainerNotFound) {
		return c, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.followDefs(ctx); err != nil {
		return nil, fmt.Errorf("read container definitions: %w", err)
	}
	return h.defs.Get(name)
}

// advance moves the cached heads forward to hd; true if they moved.
func (h *Hub) advance(hd Heads) bool {
	moved := false
	for {
		cur := h.head.Load()
		if hd.LSN <= cur {
			break
		}
		if h.head.CompareAndSwap(cur, hd.LSN) {
			moved = true
			break
		}
	}
	for {
		cur := h.cseqHead.Load()
		if hd.Cseq <= cur {
			break
		}
		if h.cseqHead.CompareAndSwap(cur, hd.Cseq) {
			moved = true
			break
		}
	}
	return moved
}

// followResolvers loads resolver versions another hub stored.
func (h *Hub) followResolvers(ctx context.Context) error {
	if rc, ok := h.st.(interface {
		ResolverCount(ctx context.Context) (int64, error)
	}); ok {
		n, err := rc.ResolverCount(ctx)
		if err != nil || n == h.resolverCount() {
			return err
		}
	}
	stored, err := h.st.Resolvers(ctx)
	if err != nil {
		return err
	}
	for _, r := range stored {
		if _, ok := h.resolvers.pick(r.Name, r.Version); ok {
			continue
		}
		if h.cfg.Resolvers != nil {
			if err := h.cfg.Resolvers.Load(ctx, r.Name, r.Version, r.Wasm); err != nil {
				h.log.Warn("resolver does not load; its conflicts go to the feed", "resolver", r.ResolverVersion.Label(), "err", err)
			}
		}
		h.resolvers.add(r.ResolverVersion)
	}
	return nil
}

func (h *Hub) resolverCount() int64 {
	h.resolvers.mu.RLock()
	defer h.resolvers.mu.RUnlock()
	n := 0
	for _, vs := range h.resolvers.versions {
		n += len(vs)
	}
	return int64(n)
}

// drainer queues the tier's forwarded decisions in the sequencer's writer,
// in queue order, with up to forwardBatches batches not committed yet.
// queued holds the decisions of those batches: the next drain skips them.
// A decision leaves queued once its batch is settled (committed, refused
// or failed), so one that failed is read again by a later drain. (A
// cursor would not do: a decision may become visible in the queue after
// one queued later did.)
type drainer struct {
	h       *Hub
	slots   chan struct{} // one per batch queued and not settled
	settled chan struct{} // size 1: a batch settled
	wg      sync.WaitGroup

	mu     sync.Mutex
	queued map[int64]bool
	failed error // the first error of a batch since the last drain
}

// restart waits until every queued batch is settled (after the lease
// changed hands).
func (d *drainer) restart() { d.wg.Wait() }

// drain queues up to forwardBatch queued decisions not queued yet, in
// order, and returns how many it took; it returns at once when
// forwardBatches batches are being committed. An error is a batch's that
// settled since the last drain, or the queue's.
func (d *drainer) drain(ctx context.Context) (int, error) {
	if err := d.takeFailed(); err != nil {
		return 0, err
	}
	select {
	case d.slots <- struct{}{}:
	default:
		return 0, nil // the batch that settles first wakes followTier
	}
	d.mu.Lock()
	skip := make([]int64, 0, len(d.queued))
	for seq := range d.queued {
		skip = append(skip, seq)
	}
	d.mu.Unlock()
	pending, err := d.h.cfg.Tier.Pending(ctx, skip, forwardBatch)
	if err != nil || len(pending) == 0 {
		<-d.slots
		return 0, err
	}
	h := d.h
	waits := make([]func() error, 0, len(pending))
	for _, f := range pending {
		wait, err := h.decideForwarded(ctx, f)
		if b, ok := errorResult(err); ok {
			// Refused before it was queued (a record this hub cannot read,
			// a container that does not exist...): answered, not retried.
			wait = func() error { return h.cfg.Tier.Refuse(ctx, f.Seq, b) }
		} else if err != nil {
			waits = append(waits, func() error { return err })
			break
		}
		waits = append(waits, wait)
	}
	pending = pending[:len(waits)]
	d.mu.Lock()
	for _, f := range pending {
		d.queued[f.Seq] = true
	}
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := d.settle(ctx, pending, waits)
		d.mu.Lock()
		for _, f := range pending {
			delete(d.queued, f.Seq)
		}
		if err != nil && d.failed == nil {
			d.failed = err
		}
		d.mu.Unlock()
		<-d.slots
		select {
		case d.settled <- struct{}{}:
		default:
		}
	}()
	return len(waits), nil
}

func (d *drainer) takeFailed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.failed
	d.failed = nil
	return err
}

// settle waits for a batch's decisions and records the result of each
// that failed with an error the forwarding hub reports.
func (d *drainer) settle(ctx context.Context, pending []Forwarded, waits []func() error) error {
	var errs []error
	for i, wait := range waits {
		err := wait()
		switch {
		case err == nil, errors.Is(err, ErrDecided):
		case errors.Is(err, ErrNotSequencer), errors.Is(err, replica.ErrClosed):
			return err
		default:
			if b, ok := errorResult(err); ok {
				err = d.h.cfg.Tier.Refuse(ctx, pending[i].Seq, b)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("forwarded %s %d: %w", pending[i].Kind, pending[i].Seq, err))
			}
		}
	}
	return errors.Join(errs...)
}

// decideForwarded queues a forwarded decision's job.
func (h *Hub) decideForwarded(ctx context.Context, f Forwarded) (func() error, error) {
	c := &claim{seq: f.Seq}
	switch f.Kind {
	case forwardPush:
		var r pushRequest
		if err := decodeGob(f.Payload, &r); err != nil {
			return nil, fmt.Errorf("%w: forwarded push %d: %v", replica.ErrInvalid, f.Seq, err)
		}
		wait, err := h.queuePush(ctx, r.NodeID, r.Scope, r.Versions, c)
		if err != nil {
			return nil, err
		}
		return func() error { _, _, err := wait(); return err }, nil
	case forwardWrite:
		var r writeRequest
		if err := decodeGob(f.Payload, &r); err != nil {
			return nil, fmt.Errorf("%w: forwarded write %d: %v", replica.ErrInvalid, f.Seq, err)
		}
		return h.queueWrite(ctx, r, c)
	case forwardResolve:
		var r resolveRequest
		if err := decodeGob(f.Payload, &r); err != nil {
			return nil, fmt.Errorf("%w: forwarded resolution %d: %v", replica.ErrInvalid, f.Seq, err)
		}
		return h.queueResolve(ctx, r, c)
	}
	return nil, fmt.Errorf("%w: forwarded decision %d: unknown kind %q", replica.ErrInvalid, f.Seq, f.Kind)
}

// indexedPaths are the paths of an indexing policy (nil for none).
func indexedPaths(p *replica.IndexingPolicy) []string {
	if p == nil {
		return nil
	}
	return p.Paths
}
