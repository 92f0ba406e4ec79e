package hub

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// head is an item's current confirmed version, with its content.
type head struct {
	container, id string
	pk            string
	lsn           int64
	deleted       bool
	cand          replica.Candidate
}

func (h *Hub) loadHead(ctx context.Context, tx Tx, containerName, id string) (*head, error) {
	ih, found, err := tx.Head(ctx, containerName, id)
	if err != nil || !found {
		return nil, err
	}
	hd := head{container: containerName, id: id, pk: ih.PK, lsn: ih.LSN, deleted: ih.Deleted}
	hd.cand.Version, hd.cand.Deleted = ih.Version, ih.Deleted
	return &hd, nil
}

// loadContent fills in the current version's body, origin and time, which
// only a conflict needs.
func (h *Hub) loadContent(ctx context.Context, tx Tx, hd *head) error {
	c, err := h.loadVersion(ctx, tx, hd.container, hd.id, hd.cand.Version)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("current version %s of an item is missing", hd.cand.Version)
	}
	hd.cand.Origin, hd.cand.TS = c.Origin, c.TS
	if !hd.deleted {
		hd.cand.Body = c.Body
	}
	return nil
}

// loadVersion reads a version of the item (container, id) as decisions
// weigh it: its TS is the hub's receipt time if its _ts was clamped. A
// version id that is not one of that item's (an edge may push any id as a
// base) is as unknown as one the hub never saw: nil.
func (h *Hub) loadVersion(ctx context.Context, tx Tx, container, id, version string) (*replica.Candidate, error) {
	v, found, err := tx.Version(ctx, container, id, version)
	if err != nil || !found {
		return nil, err
	}
	c := replica.Candidate{Version: version, Body: v.Body, Origin: v.Origin, TS: v.TS, Deleted: v.Op == replica.OpDelete}
	if v.ClampedTS != 0 {
		c.TS = v.ClampedTS
	}
	return &c, nil
}

// Push sequences a batch of tentative versions from the edge node nodeID,
// limited to scope (nil: everything), in one transaction. Each version gets
// an outcome; a bad version is rejected alone. Pushes are idempotent by
// version id: a version seen before gets the outcome it got then. It returns
// the outcomes and the highest LSN they refer to.
func (h *Hub) Push(ctx context.Context, nodeID string, scope []wire.ScopeEntry, versions []wire.Version) ([]wire.Outcome, int64, error) {
	wait, err := h.QueuePush(ctx, nodeID, scope, versions)
	if err != nil {
		return nil, 0, err
	}
	return wait()
}

// QueuePush queues a push (pushes are sequenced in the order they are
// queued) and returns a function that waits for its outcomes, so that a sync
// session can read and queue the next push while this one commits.
//
// Documents are parsed and validated here, on the caller's goroutine, so
// that the writer, which every push goes through one after the other, does
// not spend its time on it.
//
// On a hub of a tier that does not hold the lease, the push is forwarded to
// the sequencer (in the order QueuePush is called), which decides it with
// the same code.
func (h *Hub) QueuePush(ctx context.Context, nodeID string, scope []wire.ScopeEntry, versions []wire.Version) (func() ([]wire.Outcome, int64, error), error) {
	if !h.Sequencing() {
		wait, err := h.forwardPush(ctx, nodeID, scope, versions)
		if err != nil {
			return nil, err
		}
		return func() ([]wire.Outcome, int64, error) {
			b, err := wait(ctx)
			if err != nil {
				return nil, 0, err
			}
			var r pushResult
			if err := decodeResult(b, &r); err != nil {
				return nil, 0, err
			}
			if len(r.Outcomes) < len(versions) {
				return r.Outcomes, r.LSN, heldError(versions[len(r.Outcomes)])
			}
			return r.Outcomes, r.LSN, nil
		}, nil
	}
	wait, err := h.queuePush(ctx, nodeID, scope, versions, nil)
	if err != nil {
		return nil, err
	}
	return func() ([]wire.Outcome, int64, error) {
		outs, lsn, err := wait()
		if err == nil && len(outs) < len(versions) {
			return outs, lsn, heldError(versions[len(outs)])
		}
		return outs, lsn, err
	}, nil
}

// forwardPush hands a push to the sequencer: directly to its hub if this
// hub hands pushes off (handoff.go), through the tier's queue if it does
// not or if the hand-off fails, before the sequencer has queued the push
// or after. It returns once the push is queued, with a function that
// waits for its result.
func (h *Hub) forwardPush(ctx context.Context, nodeID string, scope []wire.ScopeEntry, versions []wire.Version) (func(ctx context.Context) ([]byte, error), error) {
	node, first := pushKey(nodeID, versions)
	payload, err := encodeGob(pushRequest{NodeID: nodeID, Scope: scope, Versions: versions})
	if err != nil {
		return nil, err
	}
	queue := func(ctx context.Context) (func(ctx context.Context) ([]byte, error), error) {
		wait, err := h.cfg.Tier.Forward(ctx, forwardPush, payload, node, first)
		if err != nil {
			return nil, fmt.Errorf("forward %s: %w", forwardPush, err)
		}
		return wait, nil
	}
	if h.handoff == nil {
		return queue(ctx)
	}
	direct, err := h.handoff.push(ctx, h.Name(), payload)
	if err != nil {
		h.handoff.fallbacks.Add(1)
		h.log.Debug("push handed to the tier's queue", "err", err)
		return queue(ctx)
	}
	return func(ctx context.Context) ([]byte, error) {
		b, err := direct(ctx)
		if err == nil {
			h.handoff.pushes.Add(1)
			return b, nil
		}
		if ctx.Err() != nil || !errors.Is(err, errHandoff) {
			return nil, err
		}
		// Not decided there, or not known to be: the queue decides it
		// (again: a version decided before gets its stored outcome).
		h.handoff.fallbacks.Add(1)
		h.log.Debug("push handed to the tier's queue", "err", err)
		wait, err := queue(ctx)
		if err != nil {
			return nil, err
		}
		return wait(ctx)
	}, nil
}

// ErrPushOutOfOrder means a push was decided only up to a version written
// over an earlier version of its node that the hub has not decided yet
// (pushed by another route, or in a push that failed): that version and
// the ones after it were not decided. The edge pushes them again, in
// order, on its next session.
var ErrPushOutOfOrder = errors.New("push out of order")

func heldError(v wire.Version) error {
	return fmt.Errorf("%w: version %s (over %s) and the ones after it wait for the earlier versions of their node", ErrPushOutOfOrder, v.Version, v.Base)
}

// queuePush queues a push's job; c, if not nil, is the forwarded decision
// it decides.
func (h *Hub) queuePush(ctx context.Context, nodeID string, scope []wire.ScopeEntry, versions []wire.Version, c *claim) (func() ([]wire.Outcome, int64, error), error) {
	out := make([]wire.Outcome, len(versions))
	parsed := make([]parsedBody, len(versions))
	for i := range versions {
		parsed[i].parse(&h.defs, &versions[i])
	}
	var maxLSN int64
	decided := len(versions)  // the versions decided, in order; the others were held back
	var stored, was PushOrder // the node's push order before the job, and as the job starts from
	apply := func(ctx context.Context, tx Tx, lookup bool) error {
		maxLSN, decided = 0, len(versions)
		ord := was
		for i := range versions {
			o, err := h.applyPushed(ctx, tx, nodeID, scope, &versions[i], &parsed[i], lookup, &ord, c)
			if errors.Is(err, errHeld) {
				decided = i
				break
			}
			if err != nil {
				return err
			}
			out[i] = o
			maxLSN = max(maxLSN, o.LSN)
		}
		if ord != stored {
			return tx.SetPushOrder(ctx, nodeID, ord)
		}
		return nil
	}
	items, ids := make([]ItemKey, len(versions)), make([]string, len(versions))
	for i := range versions {
		items[i], ids[i] = ItemKey{versions[i].Container, versions[i].ID}, versions[i].Version
	}
	wait, err := h.st.Queue(ctx, func(ctx context.Context, tx Tx) error {
		if err := h.claimTx(ctx, tx, c); err != nil {
			return err
		}
		if err := tx.Prefetch(ctx, items, ids, nodeID); err != nil {
			return err
		}
		// Read once: both tries below start from it.
		var err error
		if stored, err = tx.PushOrder(ctx, nodeID); err != nil {
			return err
		}
		was = stored
		if was.Held > 0 && h.cfg.Now().Unix()-was.HeldAt >= int64(holdFor/time.Second) {
			was = PushOrder{} // the held version was not pushed again: it no longer holds the node up
		}
		// Versions are not looked up before they are decided: one seen
		// before fails to be stored again (its id is the key of versions),
		// and then the push is undone and applied again, this time looking
		// every version up, so that each gets the outcome it got then.
		// Pushes are new versions but after a reconnection: this saves the
		// writer a lookup per version.
		err = tx.Try(ctx, func() error { return apply(ctx, tx, false) })
		if err != nil {
			err = tx.Try(ctx, func() error { return apply(ctx, tx, true) })
		}
		if err != nil {
			return err
		}
		return h.finishTx(ctx, tx, c, pushResult{Outcomes: out[:decided], LSN: maxLSN})
	}, func() {
		if decided < len(versions) {
			h.pushesOutOfOrder.Add(1)
		}
	})
	if err != nil {
		return nil, err
	}
	return func() ([]wire.Outcome, int64, error) {
		if err := wait(); err != nil {
			return nil, 0, err
		}
		return out[:decided], maxLSN, nil
	}, nil
}

// parsedBody is a pushed document parsed before its push reached the
// writer, with the partition key path it was parsed for.
type parsedBody struct {
	ok     bool // parsed
	pkPath []string
	doc    replica.Document
	err    error
}

// parse parses v's body for its container as defined now; a delete, or a
// container not defined yet, is left to the writer.
func (p *parsedBody) parse(defs *replica.Containers, v *wire.Version) {
	if v.Op == replica.OpDelete {
		return
	}
	c, err := defs.Get(v.Container)
	if err != nil {
		return
	}
	p.doc, p.err = replica.ParseDocument(v.Body, c.PKPath)
	p.ok, p.pkPath = true, c.PKPath
}

// PushesOutOfOrder is the number of pushes this hub decided only up to a
// version written over an earlier version of its node not decided yet.
func (h *Hub) PushesOutOfOrder() int64 { return h.pushesOutOfOrder.Load() }

// errHeld means a pushed version is not decided now: an earlier version
// of its node must be decided first.
var errHeld = errors.New("held back for an earlier version of its node")

// errLookUp undoes a push applied without looking its versions up.
var errLookUp = errors.New("a version to hold back: look the versions up")

// applyPushed decides one pushed version inside the writer's transaction.
// Only storage failures are errors; everything else is an outcome, or
// errHeld for a version decided out of its node's order (held). pre, if it
// was parsed for the container's partition key path as it is now, saves
// parsing the body again. ord is the node's push order, which applyPushed
// moves on; fwd, if not nil, is the forwarded push it decides.
func (h *Hub) applyPushed(ctx context.Context, tx Tx, nodeID string, scope []wire.ScopeEntry, v *wire.Version, pre *parsedBody, lookup bool, ord *PushOrder, fwd *claim) (wire.Outcome, error) {
	o := wire.Outcome{Version: v.Version, Container: v.Container, ID: v.ID}
	if nodeID == h.hubID || !wire.IsVersionOf(v.Version, nodeID) {
		o.Outcome, o.Reason = replica.OutcomeRejected, fmt.Sprintf("version id %q was not issued by node %q: want the node id, '-' and a decimal counter", v.Version, nodeID)
		return o, nil
	}
	counter := versionCounter(v.Version, nodeID)
	if lookup {
		prev, found, err := tx.Outcome(ctx, v.Version)
		if err != nil {
			return o, err
		}
		if found {
			if ord.Held == counter {
				ord.Held, ord.HeldAt = 0, 0 // decided meanwhile, by another route
			}
			o.Outcome, o.LSN, o.Reason, o.ConflictID, o.CRTS = prev.Outcome, prev.LSN, prev.Reason, prev.ConflictID, prev.CRTS
			if o.Outcome == "" {
				o.Outcome, o.Reason = replica.OutcomeRejected, "version id already used"
			}
			return o, nil
		}
	}
	// The hub decides a node's versions in the order the node wrote them
	// (see holdFor): one after a held version waits for it.
	if ord.Held > 0 && counter > ord.Held {
		return o, errHeld
	}
	// A version written over a version of its node that the hub does not
	// have waits for it (held). The held version pushed again is decided,
	// its base known or not, unless an earlier version of its node is on
	// its way: in a push waiting in the tier's queue.
	needBase := v.Base != "" && wire.IsVersionOf(v.Base, nodeID)
	again := ord.Held == counter
	if again {
		ord.Held, ord.HeldAt = 0, 0
	}
	waits := func() (bool, error) {
		if !again || !lookup {
			return true, nil // held, or (not looking up) applied again: hold
		}
		return h.pushQueued(ctx, tx, nodeID, counter, fwd)
	}
	hold := func() (wire.Outcome, error) {
		if !lookup {
			// Pushed again after it was decided, it is not held: the
			// push is applied again, looking every version up.
			return o, errLookUp
		}
		ord.Held, ord.HeldAt = counter, h.cfg.Now().Unix()
		return o, errHeld
	}
	// A rejected version leaves no trace: stored, its id would stand for
	// content the hub refused (and an id the hub or its node may issue
	// later would fail to store). Pushed again, it is decided again.
	reject := func(reason string) (wire.Outcome, error) {
		o.Outcome, o.Reason = replica.OutcomeRejected, reason
		return o, nil
	}
	c, err := h.def(v.Container)
	if err != nil {
		return reject(err.Error())
	}
	if !needBase {
		if ok, err := h.pushNew(ctx, tx, nodeID, scope, c, v, pre, &o); ok || err != nil {
			return o, err
		}
	}
	cur, err := h.loadHead(ctx, tx, v.Container, v.ID)
	if err != nil {
		return o, err
	}
	if needBase && cur == nil {
		w, err := waits()
		if err != nil {
			return o, err
		}
		if w {
			return hold()
		}
	}
	// The hub's receipt time, recorded as the confirmation time and, for
	// a _ts from the future, as the time decisions take instead.
	now := h.cfg.Now().Unix()
	decideTS, clamped := h.decisionTS(v.TS, now)
	in := replica.Candidate{Version: v.Version, Origin: nodeID, TS: decideTS, Deleted: v.Op == replica.OpDelete}
	var pk string
	if in.Deleted {
		if cur == nil {
			return reject("delete of an item the hub does not have")
		}
		pk = cur.pk
	} else {
		doc, err := pre.doc, pre.err
		if !pre.ok || !slices.Equal(pre.pkPath, c.PKPath) {
			doc, err = replica.ParseDocument(v.Body, c.PKPath)
		}
		if err != nil {
			return reject(err.Error())
		}
		if doc.ID != v.ID {
			return reject(fmt.Sprintf("body id %q differs from the pushed id %q", doc.ID, v.ID))
		}
		pk, in.Body = doc.PK, doc.Body
	}
	if !wire.InScope(scope, v.Container, pk) {
		return reject(fmt.Sprintf("%s: container %q, partition key %q is outside this edge's scope", replica.ErrForbidden, v.Container, pk))
	}
	if cur != nil && !cur.deleted && !in.Deleted && cur.pk != pk {
		return reject(fmt.Sprintf("%s: item has partition key %q, the write has %q", replica.ErrPartitionKeyChange, cur.pk, pk))
	}
	var base, curCand *replica.Candidate
	if cur != nil {
		curCand = &cur.cand
		if cur.cand.Version != v.Base { // a conflict: the deciders need the contents
			if err := h.loadContent(ctx, tx, cur); err != nil {
				return o, err
			}
			if v.Base != "" {
				if base, err = h.loadVersion(ctx, tx, v.Container, v.ID, v.Base); err != nil {
					return o, err
				}
				if needBase && base == nil {
					w, err := waits()
					if err != nil {
						return o, err
					}
					if w {
						return hold()
					}
				}
			}
		}
	}
	var res replica.Resolver
	resolverVersion := ""
	if p := c.Def.ConflictPolicy; p.Mode == replica.ModeCustom && curCand != nil && cur.cand.Version != v.Base {
		if r := h.boundResolver(ctx, p); r != nil {
			if r.conflicting, err = h.conflicting(ctx, tx, v.Container, v.ID, v.Base, cur.cand.Version); err != nil {
				return o, err
			}
			res, resolverVersion = r, r.label()
		}
	}
	d := replica.Decide(v.Container, v.ID, in, v.Base, curCand, base, c.Def.ConflictPolicy, res)
	if d.Commit == replica.CommitMerged && !d.Deleted {
		// A merged document (built in or from a resolver) is a new
		// client document: it must pass the same checks.
		doc, err := replica.ParseDocument(d.Body, c.PKPath)
		switch {
		case err != nil:
			d = unresolvedDecision(d, fmt.Sprintf("merged document is invalid: %v", err))
		case doc.ID != v.ID || doc.PK != pk:
			d = unresolvedDecision(d, "merged document changes the id or the partition key")
		default:
			d.Body = doc.Body
		}
	}
	o.Outcome = d.Outcome
	if clamped && d.Conflict != nil {
		d.Conflict.Reason += clampNote(v.TS, decideTS)
	}
	switch d.Commit {
	case replica.CommitIncoming:
		if o.LSN, err = tx.NextLSN(ctx); err != nil {
			return o, err
		}
		o.CRTS = now
		e := LogRecord{LSN: o.LSN, ID: v.ID, PK: pk, Op: v.Op, Version: v.Version, Base: v.Base, Origin: nodeID, TS: v.TS, CRTS: now, Deleted: in.Deleted}
		if d.Conflict != nil {
			e.Resolver = resolverVersion
		}
		if err := h.confirm(ctx, tx, c, e, cur != nil && cur.pk == pk); err != nil {
			return o, err
		}
	case replica.CommitMerged:
		if o.LSN, err = tx.NextLSN(ctx); err != nil {
			return o, err
		}
		mv := h.versionOf(o.LSN)
		op := replica.OpReplace
		if d.Deleted {
			op = replica.OpDelete
		}
		if err := tx.InsertVersion(ctx, VersionRecord{Version: mv, Container: v.Container, ID: v.ID, PK: pk, Op: op, Base: cur.cand.Version,
			Origin: h.hubID, TS: now, Body: d.Body}); err != nil {
			return o, err
		}
		e := LogRecord{LSN: o.LSN, ID: v.ID, PK: pk, Op: op, Version: mv, Base: cur.cand.Version, Origin: h.hubID, TS: now, CRTS: now,
			Deleted: d.Deleted, Resolver: resolverVersion}
		if err := h.confirm(ctx, tx, c, e, cur.pk == pk); err != nil {
			return o, err
		}
	default:
		o.LSN = cur.lsn
	}
	if d.Conflict != nil {
		o.Reason = d.Conflict.Reason
		existing := ""
		if cur != nil {
			existing = cur.cand.Version
		}
		if o.ConflictID, err = tx.InsertConflict(ctx, ConflictRecord{Container: v.Container, DocID: v.ID, PK: pk, Kind: d.Conflict.Kind,
			Status: d.Conflict.Status, Policy: c.Def.ConflictPolicy.Mode, Loser: d.Conflict.Loser, Incoming: v.Version, Existing: existing,
			Base: v.Base, WinnerLSN: o.LSN, Reason: d.Conflict.Reason, CreatedAt: now, Resolver: resolverVersion}); err != nil {
			return o, err
		}
	}
	// The version with its outcome, so that a retried push gets the same.
	if err := tx.InsertVersion(ctx, VersionRecord{Version: v.Version, Container: v.Container, ID: v.ID, PK: pk, Op: v.Op, Base: v.Base,
		Origin: nodeID, TS: v.TS, Body: in.Body, Outcome: o.Outcome, LSN: o.LSN, Reason: o.Reason, ConflictID: o.ConflictID}); err != nil {
		return o, err
	}
	if clamped {
		logged := int64(0)
		if d.Commit == replica.CommitIncoming {
			logged = o.LSN
		}
		if err := tx.RecordClamp(ctx, nodeID, v.Version, logged, decideTS); err != nil {
			return o, err
		}
	}
	return o, nil
}

// The hub decides an edge node's versions in the order the node wrote
// them (the counters of their ids), whatever route they came by (this
// hub's writer, the tier's queue of forwarded pushes) and whatever push,
// so that no version is decided before the version it was written over.
// Decided before it, a version would meet an unknown base: a conflict
// against the current version without a base, and the earlier version,
// decided next, would count again what the two have in common (a counter
// resolver counts both in full). This happens when a hub takes the lease
// while pushes it forwarded are still queued, or when one push of a
// session fails and the next commits.
//
// So a pushed version written over another version of its node that the
// hub does not have (not stored: not decided yet, or rejected, which
// leaves no trace) is held: not decided, and neither is any later version
// of its node (a higher counter), from this push or another, until it is
// pushed again. The push is answered up to it (Hub.QueuePush's wait
// returns ErrPushOutOfOrder) and the session ends; on its next session
// the edge pushes its outbox again, in order, the base first if it has
// not had its outcome. The held version pushed again is held again while
// a push of an earlier version of its node waits in the tier's queue
// (Tier.PushQueued): the base is on its way, and the sequencer decides
// the queue in order, so it comes. Otherwise it is decided whether its
// base came or not (rejected, lost by the edge, or its push gone), so it
// waits one session, not forever; and a hold no longer holds the node up
// once holdFor has passed without it being pushed again.
//
// holdFor bounds how long a held version holds up its node's later
// versions when it is not pushed again (its container no longer pushable
// on the edge, the edge gone): after it, they are decided as they come.
const holdFor = 5 * time.Minute

// versionCounter is the counter of a version id issued by nodeID (one
// that wire.IsVersionOf accepts).
func versionCounter(version, nodeID string) int64 {
	n, _ := strconv.ParseInt(version[len(nodeID)+1:], 10, 64)
	return n
}

// pushNew confirms a pushed version of an item the hub does not have, the
// common push, without reading the item first: the item row goes in first,
// and only if the item exists (or the version is one applyPushed refuses)
// does applyPushed take its full path. For an item the hub does not have,
// every decision of the full path is to confirm the version as written.
func (h *Hub) pushNew(ctx context.Context, tx Tx, nodeID string, scope []wire.ScopeEntry, c *replica.ContainerDef, v *wire.Version, pre *parsedBody, o *wire.Outcome) (bool, error) {
	if v.Op == replica.OpDelete || !pre.ok || pre.err != nil || !slices.Equal(pre.pkPath, c.PKPath) ||
		pre.doc.ID != v.ID || !wire.InScope(scope, v.Container, pre.doc.PK) {
		return false, nil
	}
	lsn, created, err := tx.CreateItem(ctx, c.Def.Name, v.ID, pre.doc.PK, v.Version)
	if err != nil || !created {
		return false, err // an item the hub has: the full path
	}
	now := h.cfg.Now().Unix()
	if err := tx.AppendLog(ctx, LogRecord{LSN: lsn, Container: c.Def.Name, ID: v.ID, PK: pre.doc.PK, Op: v.Op, Version: v.Version, Base: v.Base,
		Origin: nodeID, TS: v.TS, CRTS: now, Policy: c.Def.ConflictPolicy.Mode}); err != nil {
		return false, err
	}
	o.Outcome, o.LSN, o.CRTS = replica.OutcomeConfirmed, lsn, now
	if err := tx.InsertVersion(ctx, VersionRecord{Version: v.Version, Container: v.Container, ID: v.ID, PK: pre.doc.PK, Op: v.Op, Base: v.Base,
		Origin: nodeID, TS: v.TS, Body: pre.doc.Body, Outcome: replica.OutcomeConfirmed, LSN: o.LSN}); err != nil {
		return false, err
	}
	if decideTS, clamped := h.decisionTS(v.TS, now); clamped {
		if err := tx.RecordClamp(ctx, nodeID, v.Version, lsn, decideTS); err != nil {
			return false, err
		}
	}
	return true, nil
}

func unresolvedDecision(d replica.Decision, reason string) replica.Decision {
	kind := replica.KindReplace
	if d.Conflict != nil {
		kind = d.Conflict.Kind
	}
	return replica.Decision{Outcome: replica.OutcomeLost, Commit: replica.CommitNothing,
		Conflict: &replica.ConflictDecision{Kind: kind, Status: replica.StatusUnresolved, Loser: "incoming", Reason: reason}}
}

// confirm appends a version to the log and makes it the item's current
// one; samePK says the item exists with partition key e.PK.
func (h *Hub) confirm(ctx context.Context, tx Tx, c *replica.ContainerDef, e LogRecord, samePK bool) error {
	e.Container, e.Policy = c.Def.Name, c.Def.ConflictPolicy.Mode
	if err := tx.AppendLog(ctx, e); err != nil {
		return err
	}
	return tx.SetItem(ctx, e, samePK)
}

// WriteOptions are the preconditions of a write made at the hub.
type WriteOptions struct {
	IfMatch string // an etag, a list of them, or "*"
}

// Create writes a new item at the hub, confirmed at once.
func (h *Hub) Create(ctx context.Context, containerName string, body []byte) (replica.Item, error) {
	it, _, err := h.write(ctx, replica.WriteCreate, containerName, "", body, WriteOptions{})
	return it, err
}

// Upsert creates or replaces an item at the hub, confirmed at once.
func (h *Hub) Upsert(ctx context.Context, containerName, id string, body []byte, opt WriteOptions) (replica.Item, bool, error) {
	return h.write(ctx, replica.WriteUpsert, containerName, id, body, opt)
}

// Delete deletes an item at the hub, confirmed at once.
func (h *Hub) Delete(ctx context.Context, containerName, id string, opt WriteOptions) error {
	_, _, err := h.write(ctx, replica.WriteDelete, containerName, id, nil, opt)
	return err
}

func (h *Hub) write(ctx context.Context, kind int, containerName, id string, body []byte, opt WriteOptions) (replica.Item, bool, error) {
	r := writeRequest{Kind: kind, Container: containerName, ID: id, Body: body, IfMatch: opt.IfMatch}
	if !h.Sequencing() {
		// Checked here too, so that a bad write fails without a round trip.
		c, err := h.def(containerName)
		if err != nil {
			return replica.Item{}, false, err
		}
		if _, err := replica.PrepareWrite(kind, c.PKPath, id, body); err != nil {
			return replica.Item{}, false, err
		}
		var res writeResult
		err = h.forward(ctx, forwardWrite, r, &res)
		return res.Item, res.Created, err
	}
	h.st.Enter()
	defer h.st.Leave()
	var res writeResult
	wait, err := h.queueWriteJob(ctx, r, nil, &res)
	if err != nil {
		return replica.Item{}, false, err
	}
	if err := wait(); err != nil {
		return replica.Item{}, false, err
	}
	return res.Item, res.Created, nil
}

// queueWrite queues a forwarded write's job.
func (h *Hub) queueWrite(ctx context.Context, r writeRequest, c *claim) (func() error, error) {
	return h.queueWriteJob(ctx, r, c, new(writeResult))
}

// queueWriteJob queues the job of a write made at the hub, with its result
// in res; c, if not nil, is the forwarded decision it decides.
func (h *Hub) queueWriteJob(ctx context.Context, r writeRequest, cl *claim, res *writeResult) (func() error, error) {
	kind := r.Kind
	c, err := h.def(r.Container)
	if err != nil {
		return nil, err
	}
	doc, err := replica.PrepareWrite(kind, c.PKPath, r.ID, r.Body)
	if err != nil {
		return nil, err
	}
	return h.st.Queue(ctx, func(ctx context.Context, tx Tx) error {
		if err := h.claimTx(ctx, tx, cl); err != nil {
			return err
		}
		cur, err := h.loadHead(ctx, tx, c.Def.Name, doc.ID)
		if err != nil {
			return err
		}
		head, base := replica.Head{}, ""
		if cur != nil {
			head = replica.Head{Exists: true, Deleted: cur.deleted, Version: cur.cand.Version, PK: cur.pk}
			base = cur.cand.Version
		}
		op, pk, err := replica.CheckWrite(kind, c.Def.Name, doc.ID, head, doc.PK, r.IfMatch)
		if err != nil {
			return err
		}
		doc.PK = pk
		lsn, err := tx.NextLSN(ctx)
		if err != nil {
			return err
		}
		now := h.cfg.Now().Unix()
		it := replica.Item{Container: c.Def.Name, ID: doc.ID, PK: doc.PK, Body: doc.Body, Version: h.versionOf(lsn),
			Base: base, Origin: h.hubID, TS: now, LSN: lsn, CRTS: now, Deleted: kind == replica.WriteDelete}
		if err := tx.InsertVersion(ctx, VersionRecord{Version: it.Version, Container: it.Container, ID: it.ID, PK: it.PK, Op: op, Base: base,
			Origin: h.hubID, TS: now, Body: it.Body, Outcome: replica.OutcomeConfirmed, LSN: lsn}); err != nil {
			return err
		}
		if err := h.confirm(ctx, tx, c, LogRecord{LSN: lsn, ID: it.ID, PK: it.PK, Op: op, Version: it.Version, Base: base, Origin: h.hubID,
			TS: now, CRTS: now, Deleted: it.Deleted}, cur != nil && cur.pk == it.PK); err != nil {
			return err
		}
		*res = writeResult{Item: it, Created: op == replica.OpCreate}
		return h.finishTx(ctx, tx, cl, *res)
	}, nil)
}
