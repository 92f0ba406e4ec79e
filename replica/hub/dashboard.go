package hub

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/edgesync/edgesync/replica"
)

// ContainerInfo is a container's definition with its counts.
type ContainerInfo struct {
	replica.Container
	ItemCount           int64 `json:"itemCount"`
	UnresolvedConflicts int64 `json:"unresolvedConflicts"`
}

// ContainerInfos returns every container with its live item count and
// unresolved conflicts.
func (h *Hub) ContainerInfos(ctx context.Context) ([]ContainerInfo, error) {
	defs := h.defs.List()
	out := make([]ContainerInfo, 0, len(defs))
	for _, d := range defs {
		ci := ContainerInfo{Container: d}
		var err error
		if ci.ItemCount, err = h.st.CountItems(ctx, d.Name); err != nil {
			return nil, err
		}
		if ci.UnresolvedConflicts, err = h.st.CountUnresolved(ctx, d.Name); err != nil {
			return nil, err
		}
		out = append(out, ci)
	}
	return out, nil
}

// UnresolvedConflicts counts the conflicts waiting for a decision.
func (h *Hub) UnresolvedConflicts(ctx context.Context) (int64, error) {
	return h.st.CountUnresolved(ctx, "")
}

// ItemVersion is one version of an item as the hub keeps it.
type ItemVersion struct {
	Version   string          `json:"version"`
	Op        string          `json:"op"`
	Origin    string          `json:"origin"`
	TS        int64           `json:"ts"`
	Base      string          `json:"base,omitempty"`
	Confirmed bool            `json:"confirmed"`
	LSN       int64           `json:"lsn,omitempty"`
	CRTS      int64           `json:"crts,omitempty"`
	Outcome   string          `json:"outcome,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Policy    string          `json:"policy,omitempty"`
	Resolver  string          `json:"resolver,omitempty"`
	Resolves  string          `json:"resolves,omitempty"`
	Document  json.RawMessage `json:"document"`
}

// MaxItemVersions bounds ItemVersions: the newest are returned.
const MaxItemVersions = 500

// ItemVersions returns every version of an item the hub has (confirmed,
// lost, rejected, merged), oldest first, at most MaxItemVersions.
func (h *Hub) ItemVersions(ctx context.Context, containerName, id string) ([]ItemVersion, error) {
	if _, err := h.def(containerName); err != nil {
		return nil, err
	}
	out, err := h.st.ItemVersions(ctx, containerName, id, MaxItemVersions)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Confirmed {
			out[i].Outcome = ""
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: item %q in container %q has no versions", replica.ErrNotFound, id, containerName)
	}
	return out, nil
}

// TryResult is what a resolver decided on a recorded conflict.
type TryResult struct {
	Resolver string                  `json:"resolver"`
	Decision *replica.ResolverOutput `json:"decision"`
	Error    *TryError               `json:"error"`
}

// TryError is a failed try.
type TryError struct {
	Message string `json:"message"`
}

// TryResolver runs a resolver version (0: the newest) on a recorded
// conflict and returns its decision without applying anything.
func (h *Hub) TryResolver(ctx context.Context, name string, version int, containerName string, cid int64) (TryResult, error) {
	if h.cfg.Resolvers == nil {
		return TryResult{}, fmt.Errorf("%w: this hub runs no wasm resolvers", replica.ErrInvalid)
	}
	v, ok := h.resolvers.pick(name, version)
	if !ok {
		return TryResult{}, fmt.Errorf("%w: resolver %s version %d", replica.ErrNotFound, name, version)
	}
	var in replica.ResolverInput
	sides, found, err := h.st.ConflictSides(ctx, containerName, cid)
	if err != nil {
		return TryResult{}, err
	}
	if !found {
		return TryResult{}, fmt.Errorf("%w: conflict %d in container %q", replica.ErrNotFound, cid, containerName)
	}
	in.Kind, in.ID = sides.Kind, sides.DocID
	incoming, existing, base := sides.Incoming, sides.Existing, sides.Base
	in.Container = containerName
	body := func(version string) (json.RawMessage, bool, error) {
		cv, err := h.st.ConflictVersion(ctx, containerName, in.ID, version)
		if err != nil || cv == nil || cv.Deleted {
			return json.RawMessage("null"), cv != nil && cv.Deleted, err
		}
		return json.RawMessage(cv.Document), false, nil
	}
	var delIn, delEx bool
	if in.Incoming, delIn, err = body(incoming); err != nil {
		return TryResult{}, err
	}
	if in.Existing, delEx, err = body(existing); err != nil {
		return TryResult{}, err
	}
	if in.Base, _, err = body(base); err != nil {
		return TryResult{}, err
	}
	in.IsTombstone = delIn || delEx
	in.Conflicting = []json.RawMessage{}
	res := TryResult{Resolver: v.Label()}
	out, err := h.cfg.Resolvers.Resolve(ctx, name, v.Version, in)
	if err != nil {
		res.Error = &TryError{Message: err.Error()}
		return res, nil
	}
	res.Decision = &out
	return res, nil
}

// Dashboard sessions: the dashboard's cookie holds an opaque random id; the
// hub keeps only its SHA-256, with an expiry and a binding (the hash of the
// admin token that opened it), so that a session ends at its expiry, at
// logout, or when the admin token changes, whichever comes first.

// MaxSessions bounds the live dashboard sessions: opening one more ends the
// oldest.
const MaxSessions = 1000

// maxSessions is MaxSessions; tests lower it.
var maxSessions = MaxSessions

// Session is a dashboard session as the hub keeps it.
type Session struct {
	Binding   string    // what the session was opened under (the caller's choice)
	ExpiresAt time.Time // the session ends then
}

// CreateSession opens a dashboard session that lasts ttl and returns its id,
// which the hub does not keep (only its SHA-256). Expired sessions are
// purged, and the oldest ones past MaxSessions.
func (h *Hub) CreateSession(ctx context.Context, binding string, ttl time.Duration) (string, Session, error) {
	if ttl <= 0 {
		return "", Session{}, fmt.Errorf("%w: session lifetime %v: want more than 0", replica.ErrInvalid, ttl)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Session{}, err
	}
	id := "ess_" + base64.RawURLEncoding.EncodeToString(b[:])
	now := h.cfg.Now()
	s := Session{Binding: binding, ExpiresAt: now.Add(ttl)}
	err := h.submit(ctx, func(ctx context.Context, tx Tx) error {
		return tx.CreateSession(ctx, hashToken(id), binding, now.UnixMilli(), s.ExpiresAt.UnixMilli(), maxSessions)
	}, nil)
	if err != nil {
		return "", Session{}, err
	}
	return id, s, nil
}

// LookupSession returns the live session of an id: ErrUnauthorized when
// there is none or it has expired (an expired session is deleted).
func (h *Hub) LookupSession(ctx context.Context, id string) (Session, error) {
	if id == "" || len(id) > 128 {
		return Session{}, ErrUnauthorized
	}
	hash := hashToken(id)
	var s Session
	binding, expires, found, err := h.st.Session(ctx, hash)
	if err != nil {
		return Session{}, err
	}
	if !found {
		return Session{}, ErrUnauthorized
	}
	s.Binding = binding
	s.ExpiresAt = time.UnixMilli(expires)
	if !h.cfg.Now().Before(s.ExpiresAt) {
		if err := h.DeleteSession(ctx, id); err != nil {
			return Session{}, err
		}
		return Session{}, ErrUnauthorized
	}
	return s, nil
}

// DeleteSession ends a session; ending one that does not exist is not an
// error.
func (h *Hub) DeleteSession(ctx context.Context, id string) error {
	return h.submit(ctx, func(ctx context.Context, tx Tx) error {
		return tx.DeleteSession(ctx, hashToken(id))
	}, nil)
}
