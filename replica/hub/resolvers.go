package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/edgesync/edgesync/replica"
)

// ResolverHost compiles and runs wasm conflict resolvers; the wasmhost
// package implements it. A hub without one sends custom-policy conflicts to
// the feed as unresolved and refuses uploads.
type ResolverHost interface {
	// Load validates and compiles a version of a resolver. Errors wrap
	// replica.ErrInvalid (a bad module) or replica.ErrTooLarge.
	Load(ctx context.Context, name string, version int, wasm []byte) error
	// Resolve runs a loaded version on one conflict.
	Resolve(ctx context.Context, name string, version int, in replica.ResolverInput) (replica.ResolverOutput, error)
}

// ResolverCounter is what a ResolverHost may also do: report each version's
// call counts and take back those saved by an earlier run, so that the hub
// keeps them across restarts (wasmhost.Registry does).
type ResolverCounter interface {
	Counts(name string, version int) (calls int64, failures map[string]int64)
	Seed(name string, version int, calls int64, failures map[string]int64)
}

// resolverCountsEvery is how often the hub saves resolver call counts (and
// at close).
const resolverCountsEvery = 30 * time.Second

// saveResolverCounts stores every loaded version's call counts.
func (h *Hub) saveResolverCounts(ctx context.Context) error {
	rc, ok := h.cfg.Resolvers.(ResolverCounter)
	if !ok {
		return nil
	}
	type row struct {
		name     string
		version  int
		calls    int64
		failures []byte
	}
	var rows []row
	for _, v := range h.Resolvers() {
		calls, failures := rc.Counts(v.Name, v.Version)
		if calls == h.savedCalls[v.Label()] {
			continue // every call counts once, failed or not: nothing new
		}
		b, err := json.Marshal(failures)
		if err != nil {
			return err
		}
		rows = append(rows, row{v.Name, v.Version, calls, b})
	}
	if len(rows) == 0 {
		return nil
	}
	return h.submit(ctx, func(ctx context.Context, tx Tx) error {
		for _, r := range rows {
			if err := tx.SaveResolverCounts(ctx, r.name, r.version, r.calls, string(r.failures)); err != nil {
				return err
			}
		}
		return nil
	}, func() {
		for _, r := range rows {
			h.savedCalls[ResolverVersion{Name: r.name, Version: r.version}.Label()] = r.calls
		}
	})
}

// saveResolverCountsEvery saves the counts every resolverCountsEvery until
// stop is closed.
func (h *Hub) saveResolverCountsEvery(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(resolverCountsEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := h.saveResolverCounts(context.Background()); err != nil {
				h.log.Warn("save resolver call counts", "err", err)
			}
		}
	}
}

// ResolverVersion is one uploaded version of a resolver.
type ResolverVersion struct {
	Name       string `json:"name"`
	Version    int    `json:"version"`
	SHA256     string `json:"sha256"`
	Size       int    `json:"size"`
	UploadedAt int64  `json:"uploadedAt"`
}

// Label is "name@version", as versions and conflicts record it.
func (v ResolverVersion) Label() string { return v.Name + "@" + strconv.Itoa(v.Version) }

// resolverSet is the in-memory index of uploaded resolvers.
type resolverSet struct {
	mu       sync.RWMutex
	versions map[string][]ResolverVersion // by name, oldest first
	// numbering hands out version numbers to uploads, which then compile
	// at the same time: an upload never waits for another's compile.
	numbering sync.Mutex
	reserved  map[string]int // by name, the highest number handed out
}

func (s *resolverSet) add(v ResolverVersion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.versions == nil {
		s.versions = map[string][]ResolverVersion{}
	}
	vs := append(s.versions[v.Name], v)
	// Uploads that compile at the same time may be stored out of order.
	slices.SortFunc(vs, func(a, b ResolverVersion) int { return a.Version - b.Version })
	s.versions[v.Name] = vs
}

// reserve hands out the next version number of name for an upload of
// bytes with the given digest, or returns the newest version when it has
// the same digest.
func (s *resolverSet) reserve(name, sha string) (version int, same ResolverVersion, isSame bool) {
	s.numbering.Lock()
	defer s.numbering.Unlock()
	last, ok := s.pick(name, 0)
	if ok && last.SHA256 == sha {
		return 0, last, true
	}
	if s.reserved == nil {
		s.reserved = map[string]int{}
	}
	version = max(last.Version, s.reserved[name]) + 1
	s.reserved[name] = version
	return version, ResolverVersion{}, false
}

// release gives back a version number whose upload failed, when no later
// one was handed out.
func (s *resolverSet) release(name string, version int) {
	s.numbering.Lock()
	defer s.numbering.Unlock()
	if s.reserved[name] == version {
		s.reserved[name] = version - 1
	}
}

// pick returns the version a policy runs: its pinned one or the newest.
func (s *resolverSet) pick(name string, version int) (ResolverVersion, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.versions[name]
	if len(vs) == 0 {
		return ResolverVersion{}, false
	}
	if version == 0 {
		return vs[len(vs)-1], true
	}
	for _, v := range vs {
		if v.Version == version {
			return v, true
		}
	}
	return ResolverVersion{}, false
}

// loadResolvers compiles every stored resolver version at open (the
// compilation cache makes this quick after the first start). A version that
// no longer loads (stricter limits, say) is logged and left out: its
// conflicts go to the feed with reason "missing".
func (h *Hub) loadResolvers(ctx context.Context) error {
	stored, err := h.st.Resolvers(ctx)
	if err != nil {
		return err
	}
	for _, r := range stored {
		v := r.ResolverVersion
		if h.cfg.Resolvers != nil {
			if err := h.cfg.Resolvers.Load(ctx, v.Name, v.Version, r.Wasm); err != nil {
				h.log.Warn("resolver does not load; its conflicts go to the feed", "resolver", v.Label(), "err", err)
			} else if rc, ok := h.cfg.Resolvers.(ResolverCounter); ok && r.Calls > 0 {
				var byReason map[string]int64
				if err := json.Unmarshal([]byte(r.Failures), &byReason); err != nil {
					h.log.Warn("resolver call counts unreadable; starting from zero", "resolver", v.Label(), "err", err)
				} else {
					rc.Seed(v.Name, v.Version, r.Calls, byReason)
				}
			}
		}
		h.resolvers.add(v)
	}
	return nil
}

// PutResolver validates, compiles and stores a new version of a resolver.
// Uploading the same bytes as the newest version changes nothing and
// returns that version (created false).
func (h *Hub) PutResolver(ctx context.Context, name string, wasm []byte) (ResolverVersion, bool, error) {
	if err := replica.ValidateName(name); err != nil {
		return ResolverVersion{}, false, fmt.Errorf("%w: resolver name: %v", replica.ErrInvalid, err)
	}
	if h.cfg.Resolvers == nil {
		return ResolverVersion{}, false, fmt.Errorf("%w: this hub runs no wasm resolvers", replica.ErrInvalid)
	}
	if h.cfg.Tier != nil {
		// Another hub of the tier may have stored versions since this
		// one last read them: the next number follows them.
		if err := h.followResolvers(ctx); err != nil {
			return ResolverVersion{}, false, fmt.Errorf("read resolvers: %w", err)
		}
	}
	sum := sha256.Sum256(wasm)
	v := ResolverVersion{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: len(wasm), UploadedAt: h.cfg.Now().Unix()}
	version, same, isSame := h.resolvers.reserve(name, v.SHA256)
	if isSame {
		return same, false, nil
	}
	v.Version = version
	// Compiling takes a while (the host bounds it): outside the writer, and
	// beside other uploads.
	if err := h.cfg.Resolvers.Load(ctx, name, v.Version, wasm); err != nil {
		h.resolvers.release(name, v.Version)
		return ResolverVersion{}, false, err
	}
	err := h.submit(ctx, func(ctx context.Context, tx Tx) error {
		return tx.InsertResolver(ctx, v, wasm)
	}, func() { h.resolvers.add(v) })
	if err != nil {
		h.resolvers.release(name, v.Version)
		return ResolverVersion{}, false, err
	}
	h.log.Info("resolver uploaded", "resolver", v.Label(), "bytes", v.Size)
	return v, true, nil
}

// Resolvers lists every version of every resolver, by name then version.
func (h *Hub) Resolvers() []ResolverVersion {
	h.resolvers.mu.RLock()
	defer h.resolvers.mu.RUnlock()
	var out []ResolverVersion
	for _, vs := range h.resolvers.versions {
		out = append(out, vs...)
	}
	slices.SortFunc(out, func(a, b ResolverVersion) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		return a.Version - b.Version
	})
	return out
}

// bound is a resolver version bound to one conflict in the sequencer, with
// everything the resolver is given that is not in Decide's own input: the
// versions confirmed between the incoming version's base and the item's
// current one. They are read before Decide runs, so that deciding reads
// nothing from storage.
type bound struct {
	host        ResolverHost
	ctx         context.Context
	v           ResolverVersion
	conflicting []json.RawMessage
}

var _ replica.Resolver = (*bound)(nil)

func (b *bound) label() string { return b.v.Label() }

// boundResolver returns the resolver that decides a conflict under policy
// p with the chain of versions conflicting, or nil when the hub has no such
// resolver (Decide then sends the conflict to the feed).
func (h *Hub) boundResolver(ctx context.Context, p replica.ConflictPolicy) *bound {
	if h.cfg.Resolvers == nil {
		return nil
	}
	v, ok := h.resolvers.pick(p.Resolver, p.ResolverVersion)
	if !ok {
		return nil
	}
	return &bound{host: h.cfg.Resolvers, ctx: ctx, v: v}
}

func (b *bound) Resolve(name string, in replica.ResolverInput) (replica.ResolverOutput, error) {
	in.Conflicting = b.conflicting
	out, err := b.host.Resolve(b.ctx, name, b.v.Version, in)
	if err != nil {
		return out, fmt.Errorf("version %d: %w", b.v.Version, err)
	}
	return out, nil
}

// conflicting walks back from the existing version's base to the incoming
// version's base: the confirmed versions in between, oldest first (at most
// 16; tombstones are null).
func (h *Hub) conflicting(ctx context.Context, tx Tx, container, id, base, existing string) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	if base == "" {
		return out, nil
	}
	var chain []json.RawMessage
	prev, err := tx.VersionBase(ctx, existing)
	if err != nil {
		return out, err
	}
	for i := 0; i < 16 && prev != "" && prev != base; i++ {
		v, err := h.loadVersion(ctx, tx, container, id, prev)
		if err != nil {
			return out, err
		}
		if v == nil {
			return out, nil // the chain does not lead back to base
		}
		chain = append(chain, rawOrNull(v))
		if prev, err = tx.VersionBase(ctx, prev); err != nil {
			return out, err
		}
	}
	if prev != base {
		return out, nil // not a linear history from base: send nothing
	}
	slices.Reverse(chain)
	return append(out, chain...), nil
}

func rawOrNull(c *replica.Candidate) json.RawMessage {
	if c.Deleted || c.Body == nil {
		return json.RawMessage("null")
	}
	return c.Body
}

// Resolution is a decision for an unresolved conflict: Keep "existing" or
// "incoming", or a Document.
type Resolution struct {
	Keep     string          `json:"keep,omitempty"`
	Document json.RawMessage `json:"document,omitempty"`
}

// ErrConflictSettled means the conflict is already resolved. 409.
var ErrConflictSettled = errors.New("conflict already resolved")

// ResolveConflict settles an unresolved conflict. Keeping the existing
// version marks it resolved. Keeping the incoming version, or a supplied
// document, confirms a new version over the item's current one, which flows
// to the edges; it names the incoming version (Change.Resolves) so that the
// edge that wrote it records the outcome. It returns the settled conflict's
// new LSN (0 when the existing version was kept).
//
// On a hub of a tier that does not hold the lease, the resolution is
// forwarded to the sequencer.
func (h *Hub) ResolveConflict(ctx context.Context, containerName string, cid int64, r Resolution) (int64, error) {
	req := resolveRequest{Container: containerName, CID: cid, Resolution: r}
	var lsn int64
	if !h.Sequencing() {
		if _, _, err := h.checkResolution(containerName, r); err != nil {
			return 0, err
		}
		err := h.forward(ctx, forwardResolve, req, &lsn)
		return lsn, err
	}
	h.st.Enter()
	defer h.st.Leave()
	wait, err := h.queueResolveJob(ctx, req, nil, &lsn)
	if err != nil {
		return 0, err
	}
	return lsn, wait()
}

// checkResolution checks a resolution against its container's definition.
func (h *Hub) checkResolution(containerName string, r Resolution) (*replica.ContainerDef, replica.Document, error) {
	var doc replica.Document
	c, err := h.def(containerName)
	if err != nil {
		return nil, doc, err
	}
	switch {
	case r.Document != nil && r.Keep != "":
		return nil, doc, fmt.Errorf("%w: give either keep or document, not both", replica.ErrInvalid)
	case r.Document != nil:
		if doc, err = replica.ParseDocument(r.Document, c.PKPath); err != nil {
			return nil, doc, err
		}
	case r.Keep != "existing" && r.Keep != "incoming":
		return nil, doc, fmt.Errorf("%w: keep %q: want \"existing\" or \"incoming\", or a document", replica.ErrInvalid, r.Keep)
	}
	return c, doc, nil
}

// queueResolve queues a forwarded resolution's job.
func (h *Hub) queueResolve(ctx context.Context, r resolveRequest, c *claim) (func() error, error) {
	return h.queueResolveJob(ctx, r, c, new(int64))
}

// queueResolveJob queues the job of a resolution, with the LSN it settled
// the conflict at in res; cl, if not nil, is the forwarded decision it
// decides.
func (h *Hub) queueResolveJob(ctx context.Context, req resolveRequest, cl *claim, res *int64) (func() error, error) {
	containerName, cid, r := req.Container, req.CID, req.Resolution
	c, doc, err := h.checkResolution(containerName, r)
	if err != nil {
		return nil, err
	}
	return h.st.Queue(ctx, func(ctx context.Context, tx Tx) error {
		if err := h.claimTx(ctx, tx, cl); err != nil {
			return err
		}
		lsn, err := h.resolveTx(ctx, tx, c, doc, containerName, cid, r)
		if err != nil {
			return err
		}
		*res = lsn
		return h.finishTx(ctx, tx, cl, lsn)
	}, nil)
}

// resolveTx settles a conflict in a write transaction.
func (h *Hub) resolveTx(ctx context.Context, tx Tx, c *replica.ContainerDef, doc replica.Document, containerName string, cid int64, r Resolution) (lsn int64, err error) {
	err = func() error {
		sides, pk, status, found, err := tx.ConflictToSettle(ctx, containerName, cid)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: conflict %d in container %q", replica.ErrNotFound, cid, containerName)
		}
		docID, incoming := sides.DocID, sides.Incoming
		if status != replica.StatusUnresolved {
			return fmt.Errorf("%w: conflict %d was resolved before", ErrConflictSettled, cid)
		}
		if r.Keep == "existing" {
			return tx.SettleConflict(ctx, cid, 0, "resolved: kept existing")
		}
		cur, err := h.loadHead(ctx, tx, containerName, docID)
		if err != nil {
			return err
		}
		var body []byte
		deleted, outcome, how := false, replica.OutcomeMerged, "resolved: document supplied"
		if r.Keep == "incoming" {
			in, err := h.loadVersion(ctx, tx, containerName, docID, incoming)
			if err != nil {
				return err
			}
			if in == nil {
				return fmt.Errorf("conflict %d: incoming version %s is missing", cid, incoming)
			}
			body, deleted, outcome, how = in.Body, in.Deleted, replica.OutcomeConfirmed, "resolved: kept incoming"
		} else {
			if doc.ID != docID || doc.PK != pk {
				return fmt.Errorf("%w: the document must keep id %q and partition key %q", replica.ErrInvalid, docID, pk)
			}
			body = doc.Body
		}
		op, base := replica.OpCreate, ""
		switch {
		case deleted:
			op = replica.OpDelete
		case cur != nil && !cur.deleted:
			op = replica.OpReplace
		}
		if cur != nil {
			base = cur.cand.Version
		}
		if deleted && (cur == nil || cur.deleted) {
			return tx.SettleConflict(ctx, cid, 0, "resolved: kept incoming (already deleted)")
		}
		if lsn, err = tx.NextLSN(ctx); err != nil {
			return err
		}
		now := h.cfg.Now().Unix()
		version := h.versionOf(lsn)
		if err := tx.InsertVersion(ctx, VersionRecord{Version: version, Container: containerName, ID: docID, PK: pk, Op: op, Base: base,
			Origin: h.hubID, TS: now, Body: body, Outcome: replica.OutcomeConfirmed, LSN: lsn}); err != nil {
			return err
		}
		if err := h.confirm(ctx, tx, c, LogRecord{LSN: lsn, ID: docID, PK: pk, Op: op, Version: version, Base: base, Origin: h.hubID,
			TS: now, CRTS: now, Deleted: deleted, Resolves: incoming}, false); err != nil {
			return err
		}
		if err := tx.SettleConflict(ctx, cid, lsn, how); err != nil {
			return err
		}
		// A retried push of the incoming version gets the settled outcome.
		return tx.SetOutcome(ctx, incoming, outcome, lsn, how)
	}()
	return lsn, err
}
