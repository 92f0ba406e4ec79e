package hub

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
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
		if err := h.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE container = ? AND deleted = 0`, d.Name).Scan(&ci.ItemCount); err != nil {
			return nil, fmt.Errorf("count items: %w", err)
		}
		if err := h.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM conflicts WHERE container = ? AND status = ?`, d.Name, replica.StatusUnresolved).
			Scan(&ci.UnresolvedConflicts); err != nil {
			return nil, fmt.Errorf("count conflicts: %w", err)
		}
		out = append(out, ci)
	}
	return out, nil
}

// UnresolvedConflicts counts the conflicts waiting for a decision.
func (h *Hub) UnresolvedConflicts(ctx context.Context) (int64, error) {
	var n int64
	err := h.db.Read.QueryRowContext(ctx, `SELECT count(*) FROM conflicts WHERE status = ?`, replica.StatusUnresolved).Scan(&n)
	return n, err
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
	if _, err := h.defs.Get(containerName); err != nil {
		return nil, err
	}
	rows, err := h.db.Read.QueryContext(ctx, `SELECT * FROM (
		SELECT v.version, v.op, v.origin, v.ts, v.base, l.lsn IS NOT NULL, coalesce(l.lsn, 0), coalesce(l.crts, 0), v.outcome, v.reason,
			coalesce(l.policy, ''), coalesce(l.resolver, ''), coalesce(l.resolves, ''), v.body, v.rowid
		FROM versions v LEFT JOIN log l ON l.version = v.version
		WHERE v.container = ? AND v.id = ? ORDER BY v.rowid DESC LIMIT ?) ORDER BY rowid`, containerName, id, MaxItemVersions)
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	defer rows.Close()
	out := []ItemVersion{}
	for rows.Next() {
		var v ItemVersion
		var body []byte
		var rowid int64
		if err := rows.Scan(&v.Version, &v.Op, &v.Origin, &v.TS, &v.Base, &v.Confirmed, &v.LSN, &v.CRTS, &v.Outcome, &v.Reason,
			&v.Policy, &v.Resolver, &v.Resolves, &body, &rowid); err != nil {
			return nil, fmt.Errorf("read versions: %w", err)
		}
		if v.Op != replica.OpDelete {
			v.Document = body
		}
		if v.Confirmed {
			v.Outcome = ""
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
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
	var incoming, existing, base string
	err := h.db.Read.QueryRowContext(ctx, `SELECT kind, doc_id, incoming, existing, base FROM conflicts WHERE cid = ? AND container = ?`, cid, containerName).
		Scan(&in.Kind, &in.ID, &incoming, &existing, &base)
	if errors.Is(err, sql.ErrNoRows) {
		return TryResult{}, fmt.Errorf("%w: conflict %d in container %q", replica.ErrNotFound, cid, containerName)
	}
	if err != nil {
		return TryResult{}, err
	}
	in.Container = containerName
	body := func(version string) (json.RawMessage, bool, error) {
		cv, err := h.conflictVersion(ctx, containerName, in.ID, version)
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
	err := h.submit(ctx, func(ctx context.Context) error {
		if _, err := h.w.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, now.UnixMilli()); err != nil {
			return sqlitestore.Wrote("purge sessions", err)
		}
		if _, err := h.w.Exec(ctx, `DELETE FROM sessions WHERE id_hash IN (
			SELECT id_hash FROM sessions ORDER BY created_at DESC, id_hash LIMIT -1 OFFSET ?)`, maxSessions-1); err != nil {
			return sqlitestore.Wrote("bound sessions", err)
		}
		if _, err := h.w.Exec(ctx, `INSERT INTO sessions (id_hash, binding, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			hashToken(id), binding, now.UnixMilli(), s.ExpiresAt.UnixMilli()); err != nil {
			return sqlitestore.Wrote("create session", err)
		}
		return nil
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
	var expires int64
	err := h.db.Read.QueryRowContext(ctx, `SELECT binding, expires_at FROM sessions WHERE id_hash = ?`, hash).Scan(&s.Binding, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrUnauthorized
	}
	if err != nil {
		return Session{}, fmt.Errorf("read session: %w", err)
	}
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
	return h.submit(ctx, func(ctx context.Context) error {
		if _, err := h.w.Exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hashToken(id)); err != nil {
			return sqlitestore.Wrote("delete session", err)
		}
		return nil
	}, nil)
}
