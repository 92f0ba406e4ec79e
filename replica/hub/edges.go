package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/edgesync/edgesync/replica"
	"github.com/edgesync/edgesync/replica/sqlitestore"
	"github.com/edgesync/edgesync/replica/wire"
)

var (
	// ErrUnauthorized means a token is missing, unknown or revoked.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNodeMismatch means a hello claims a node id other than the one
	// its edge is bound to, or one bound to another edge.
	ErrNodeMismatch = errors.New("node id mismatch")
)

// Edge is a registered edge as the hub lists it.
type Edge struct {
	Name      string            `json:"name"`
	Scope     []wire.ScopeEntry `json:"scope"`
	CreatedAt int64             `json:"createdAt"`
	NodeID    string            `json:"nodeId"`
	Online    bool              `json:"online"`
	LastSeen  int64             `json:"lastSeen"`
	AckedLSN  int64             `json:"ackedLsn"`
	Lag       int64             `json:"lag"`     // hub head minus the LSN the edge has applied
	Pending   int64             `json:"pending"` // tentative writes the edge reported last (live while online)
	// ClockSkew is the edge's clock minus the hub's, in milliseconds, as
	// last measured from its pings (live while it is online), and
	// ClockMeasuredAt when (hub unix seconds; 0: never). Clamped counts its
	// versions whose _ts was too far ahead to decide; ClockSuspect flags a
	// skew beyond the hub's tolerance or any clamp.
	ClockSkew       int64 `json:"clockSkew"`
	ClockMeasuredAt int64 `json:"clockMeasuredAt"`
	Clamped         int64 `json:"clamped"`
	ClockSuspect    bool  `json:"clockSuspect"`
}

// RegisterEdge registers an edge with a scope (nil: everything) and returns
// its token, which the hub does not keep: only its SHA-256.
func (h *Hub) RegisterEdge(ctx context.Context, name string, scope []wire.ScopeEntry) (string, error) {
	if err := replica.ValidateName(name); err != nil {
		return "", fmt.Errorf("%w: edge name: %v", replica.ErrInvalid, err)
	}
	if len(scope) > wire.MaxScopeEntries {
		return "", fmt.Errorf("%w: %d scope entries, limit %d", replica.ErrInvalid, len(scope), wire.MaxScopeEntries)
	}
	for i, e := range scope {
		if err := replica.ValidateName(e.Container); err != nil {
			return "", fmt.Errorf("%w: scope[%d].container: %v", replica.ErrInvalid, i, err)
		}
		if len(e.PartitionKeys) > 10000 {
			return "", fmt.Errorf("%w: scope[%d]: at most 10000 partition keys", replica.ErrInvalid, i)
		}
	}
	if scope == nil {
		scope = []wire.ScopeEntry{}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := "est_" + base64.RawURLEncoding.EncodeToString(b[:])
	scopeJSON, err := json.Marshal(scope)
	if err != nil {
		return "", err
	}
	err = h.submit(ctx, func(ctx context.Context) error {
		var n int
		if err := h.w.QueryRow(ctx, `SELECT count(*) FROM edges WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: edge %q is registered; revoke it first", replica.ErrExists, name)
		}
		if _, err := h.w.Exec(ctx, `INSERT INTO edges (name, token_hash, scope, created_at) VALUES (?, ?, ?, ?)`,
			name, hashToken(token), string(scopeJSON), h.cfg.Now().Unix()); err != nil {
			return sqlitestore.Wrote("register edge", err)
		}
		return nil
	}, nil)
	if err != nil {
		return "", err
	}
	return token, nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Authenticate returns the edge a token belongs to.
func (h *Hub) Authenticate(ctx context.Context, token string) (Edge, error) {
	if token == "" {
		return Edge{}, ErrUnauthorized
	}
	hash := hashToken(token)
	var e Edge
	var stored, scope string
	err := h.db.Read.QueryRowContext(ctx, `SELECT name, token_hash, scope FROM edges WHERE token_hash = ?`, hash).Scan(&e.Name, &stored, &scope)
	if errors.Is(err, sql.ErrNoRows) {
		return Edge{}, ErrUnauthorized
	}
	if err != nil {
		return Edge{}, fmt.Errorf("authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(hash)) != 1 {
		return Edge{}, ErrUnauthorized
	}
	if err := json.Unmarshal([]byte(scope), &e.Scope); err != nil {
		return Edge{}, fmt.Errorf("edge %s scope: %w", e.Name, err)
	}
	return e, nil
}

// Edges lists the registered edges with their sync state.
func (h *Hub) Edges(ctx context.Context) ([]Edge, error) {
	rows, err := h.db.Read.QueryContext(ctx, `SELECT name, scope, created_at, node_id, last_seen, acked_lsn, pending,
		clock_skew_ms, clock_measured_at, clamped FROM edges ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list edges: %w", err)
	}
	defer rows.Close()
	head := h.Head()
	out := []Edge{}
	for rows.Next() {
		var e Edge
		var scope string
		if err := rows.Scan(&e.Name, &scope, &e.CreatedAt, &e.NodeID, &e.LastSeen, &e.AckedLSN, &e.Pending,
			&e.ClockSkew, &e.ClockMeasuredAt, &e.Clamped); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(scope), &e.Scope); err != nil {
			return nil, err
		}
		if live := h.conns.live(e.Name); live != nil {
			e.Online = true
			e.AckedLSN = max(e.AckedLSN, live.acked.Load())
			e.Pending = live.pending.Load()
			if at := live.clock.measuredAt.Load(); at != 0 {
				e.ClockSkew, e.ClockMeasuredAt = live.clock.skewMs.Load(), at
			}
		}
		e.ClockSuspect = h.clockSuspect(e.ClockSkew, e.Clamped)
		e.Lag = max(0, head-e.AckedLSN)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RevokeEdge deletes an edge's registration and closes its connections.
func (h *Hub) RevokeEdge(ctx context.Context, name string) error {
	err := h.submit(ctx, func(ctx context.Context) error {
		res, err := h.w.Exec(ctx, `DELETE FROM edges WHERE name = ?`, name)
		if err != nil {
			return sqlitestore.Wrote("revoke edge", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: edge %q", replica.ErrNotFound, name)
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	h.conns.closeEdge(name, wire.CodeRevoked, "the edge's token was revoked")
	return nil
}

// bindSession accepts an edge's hello: it binds the edge to nodeID if the
// edge has no node id yet (its first contact), refuses a node id other
// than the bound one or bound to another edge (ErrNodeMismatch), and
// records what the edge said at hello, its resume point as its applied LSN
// (an edge that starts again from 0 shows its lag from 0). One writer job
// does it all, so two first contacts cannot bind one node id twice.
func (h *Hub) bindSession(ctx context.Context, name, nodeID string, pending, resume int64) error {
	return h.submit(ctx, func(ctx context.Context) error {
		var bound string
		err := h.w.QueryRow(ctx, `SELECT node_id FROM edges WHERE name = ?`, name).Scan(&bound)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: edge %q was revoked", ErrUnauthorized, name)
		}
		if err != nil {
			return fmt.Errorf("read edge: %w", err)
		}
		if bound != "" && bound != nodeID {
			return fmt.Errorf("%w: the token of edge %q is bound to node %s, and this node is %s", ErrNodeMismatch, name, bound, nodeID)
		}
		if bound == "" {
			var other string
			err := h.w.QueryRow(ctx, `SELECT name FROM edges WHERE node_id = ? AND name != ?`, nodeID, name).Scan(&other)
			if err == nil {
				return fmt.Errorf("%w: node %s is bound to another edge's token", ErrNodeMismatch, nodeID)
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read edges: %w", err)
			}
		}
		if _, err := h.w.Exec(ctx, `UPDATE edges SET node_id = ?, pending = ?, acked_lsn = ?, last_seen = ? WHERE name = ?`,
			nodeID, pending, resume, h.cfg.Now().Unix(), name); err != nil {
			return sqlitestore.Wrote("record session", err)
		}
		return nil
	}, nil)
}

// recordSessionEnd stores an edge's applied LSN and its last reported
// pending count when its session ends.
func (h *Hub) recordSessionEnd(ctx context.Context, name, nodeID string, pending, acked int64) error {
	return h.submit(ctx, func(ctx context.Context) error {
		if _, err := h.w.Exec(ctx, `UPDATE edges SET acked_lsn = ?, pending = ?, last_seen = ? WHERE name = ? AND node_id = ?`,
			acked, pending, h.cfg.Now().Unix(), name, nodeID); err != nil {
			return sqlitestore.Wrote("record session", err)
		}
		return nil
	}, nil)
}

// connRegistry tracks live sync sessions by edge name.
type connRegistry struct {
	mu     sync.Mutex
	byEdge map[string]map[*session]struct{}
	closed bool
	wg     sync.WaitGroup // sessions between add and remove

	unauthorized atomic.Int64 // sync attempts refused for their token
}

// SyncUnauthorized is the number of sync attempts refused because their
// token was missing, unknown or revoked.
func (h *Hub) SyncUnauthorized() int64 { return h.conns.unauthorized.Load() }

func (r *connRegistry) add(s *session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	m := r.byEdge[s.edge.Name]
	if m == nil {
		m = map[*session]struct{}{}
		r.byEdge[s.edge.Name] = m
	}
	m[s] = struct{}{}
	r.wg.Add(1)
	return true
}

func (r *connRegistry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.wg.Done()
	delete(r.byEdge[s.edge.Name], s)
	if len(r.byEdge[s.edge.Name]) == 0 {
		delete(r.byEdge, s.edge.Name)
	}
}

func (r *connRegistry) live(name string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.byEdge[name] {
		return s
	}
	return nil
}

func (r *connRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byEdge)
}

func (r *connRegistry) closeEdge(name, code, msg string) {
	r.mu.Lock()
	var ss []*session
	for s := range r.byEdge[name] {
		ss = append(ss, s)
	}
	r.mu.Unlock()
	for _, s := range ss {
		s.stop(code, msg)
	}
}

func (r *connRegistry) closeAll() {
	r.mu.Lock()
	r.closed = true
	var ss []*session
	for _, m := range r.byEdge {
		for s := range m {
			ss = append(ss, s)
		}
	}
	r.mu.Unlock()
	for _, s := range ss {
		s.stop(wire.CodeShutdown, "the hub is shutting down")
	}
}

// EdgesOnline is the number of edges with a live session.
func (h *Hub) EdgesOnline() int { return h.conns.count() }
