package hub

import (
	"context"
	"fmt"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/wire"
)

// Get reads an item's confirmed version.
func (h *Hub) Get(ctx context.Context, containerName, id string) (replica.Item, error) {
	if _, err := h.def(containerName); err != nil {
		return replica.Item{}, err
	}
	it, found, err := h.st.Item(ctx, containerName, id)
	if err != nil {
		return replica.Item{}, err
	}
	if !found || it.Deleted {
		return replica.Item{}, fmt.Errorf("%w: item %q in container %q", replica.ErrNotFound, id, containerName)
	}
	return it, nil
}

// ListOptions select a page of items.
type ListOptions struct {
	PK           string
	HasPK        bool
	Limit        int
	Continuation string
}

const continuationPrefix = "h1:"

// List returns live items in id order, a page at a time.
func (h *Hub) List(ctx context.Context, containerName string, opt ListOptions) (replica.Page, error) {
	if _, err := h.def(containerName); err != nil {
		return replica.Page{}, err
	}
	var pk *string
	if opt.HasPK {
		pk = &opt.PK
	}
	items, next, err := h.st.ListItems(ctx, containerName, pk, opt.Limit, opt.Continuation, continuationPrefix)
	return replica.Page{Items: items, Continuation: next}, err
}

// Changes returns a container's confirmed versions and deletes after LSN
// since, in LSN order, and the LSN to continue from.
func (h *Hub) Changes(ctx context.Context, containerName string, since int64, limit int) ([]replica.Change, int64, error) {
	if _, err := h.def(containerName); err != nil {
		return nil, since, err
	}
	limit, err := replica.PageLimit(limit)
	if err != nil {
		return nil, since, err
	}
	cs, err := h.st.Changes(ctx, containerName, since, limit)
	if err != nil {
		return nil, since, err
	}
	out := make([]replica.Change, 0, len(cs))
	next := since
	for _, c := range cs {
		out = append(out, ToChange(c))
		next = c.LSN
	}
	return out, next, nil
}

// ToChange turns a log record into a change-feed record with the document as
// clients see it.
func ToChange(c wire.Change) replica.Change {
	ch := replica.Change{LSN: c.LSN, CRTS: c.CRTS, Op: c.Op, ID: c.ID, PK: c.PK, Origin: c.Origin, Version: c.Version, Base: c.Base, TS: c.TS, Policy: c.Policy,
		Resolver: c.Resolver, Resolves: c.Resolves, ClampedTS: c.ClampedTS}
	if c.Op != replica.OpDelete {
		ch.Document = replica.AppendWithSystem(nil, c.Body, replica.SystemProps{TS: c.TS, ETag: replica.ETagOf(c.Version), LSN: c.LSN, CRTS: c.CRTS})
	}
	return ch
}

// LogAfter reads up to limit log records after LSN after (of every
// container) and returns those scope covers and that the node skipOrigin did
// not write itself, plus the position it has covered, so that a reader
// filtering out everything still moves on. It stops early once the bodies
// reach maxBytes.
//
// Every LSN up to the head is committed when the query starts, so its
// snapshot holds them all: once it has returned every record in (after, hi]
// not written by skipOrigin, the stream has covered hi. SQLite skips the
// node's own records without handing them over (an edge pushing a long
// outbox gets its outcomes only once the stream has passed them). A call
// looks at most logScanWindow LSNs ahead.
//
// For a reader with a scope, SQLite also skips the records the scope does
// not cover (other containers, other partition keys), without reading their
// bodies.
func (h *Hub) LogAfter(ctx context.Context, after int64, limit int, maxBytes int, scope []wire.ScopeEntry, skipOrigin string) ([]wire.Change, int64, error) {
	hi := min(h.Head(), after+logScanWindow)
	if hi <= after {
		return nil, after, nil
	}
	return h.st.LogAfter(ctx, after, hi, limit, maxBytes, scope, skipOrigin)
}

// logScanWindow bounds the LSNs one LogAfter call looks at.
const logScanWindow = 16384

// Conflict is one record of the conflicts feed; ConflictVersion one side of
// it, with its content.
type (
	Conflict        = wire.Conflict
	ConflictVersion = wire.ConflictVersion
)

// Conflicts returns a container's conflicts after id after, oldest first,
// optionally only those with status.
func (h *Hub) Conflicts(ctx context.Context, containerName, status string, after int64, limit int) ([]Conflict, int64, error) {
	if _, err := h.def(containerName); err != nil {
		return nil, after, err
	}
	if status != "" && status != replica.StatusResolved && status != replica.StatusUnresolved {
		return nil, after, fmt.Errorf("%w: status %q: want resolved or unresolved", replica.ErrInvalid, status)
	}
	limit, err := replica.PageLimit(limit)
	if err != nil {
		return nil, after, err
	}
	out, err := h.st.Conflicts(ctx, containerName, status, after, limit)
	if err != nil {
		return nil, after, err
	}
	next := after
	if len(out) > 0 {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// ConflictsAfter returns the records of the conflicts feed with a conflict
// sequence number after after, in that order, in scope (nil: everything):
// recorded conflicts and settled ones again. At most limit records are
// examined and about maxBytes of documents returned; last is the position
// covered (records the scope filters out included).
func (h *Hub) ConflictsAfter(ctx context.Context, after int64, limit, maxBytes int, scope []wire.ScopeEntry) (out []Conflict, last int64, err error) {
	head := h.cseqHead.Load()
	if after >= head {
		return nil, after, nil
	}
	return h.st.ConflictsAfter(ctx, after, head, limit, maxBytes, scope)
}
