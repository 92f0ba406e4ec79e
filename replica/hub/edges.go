package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"

	"github.com/edgesync/edgesync/replica"
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
	// Hub is the name of the hub the edge is connected to ("" while it is
	// offline).
	Hub string `json:"hub"`
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
	err = h.submit(ctx, func(ctx context.Context, tx Tx) error {
		return tx.InsertEdge(ctx, name, hashToken(token), string(scopeJSON), h.cfg.Now().Unix())
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
	r, found, err := h.st.EdgeByTokenHash(ctx, hash)
	if err != nil {
		return Edge{}, fmt.Errorf("authenticate: %w", err)
	}
	if !found || subtle.ConstantTimeCompare([]byte(r.TokenHash), []byte(hash)) != 1 {
		return Edge{}, ErrUnauthorized
	}
	return Edge{Name: r.Name, Scope: r.Scope}, nil
}

// Edges lists the registered edges with their sync state.
func (h *Hub) Edges(ctx context.Context) ([]Edge, error) {
	rs, err := h.st.Edges(ctx)
	if err != nil {
		return nil, err
	}
	online := map[string]bool{} // hubs of the tier that are online
	if h.cfg.Tier != nil {
		hubs, err := h.cfg.Tier.Hubs(ctx)
		if err != nil {
			return nil, err
		}
		for _, th := range hubs {
			online[th.Name] = th.Online
		}
	}
	head := h.Head()
	out := make([]Edge, 0, len(rs))
	for _, r := range rs {
		e := Edge{Name: r.Name, Scope: r.Scope, CreatedAt: r.CreatedAt, NodeID: r.NodeID, LastSeen: r.LastSeen, AckedLSN: r.AckedLSN,
			Pending: r.Pending, ClockSkew: r.ClockSkew, ClockMeasuredAt: r.ClockMeasuredAt, Clamped: r.Clamped}
		if r.Hub != "" && r.Hub != h.Name() && online[r.Hub] {
			e.Online, e.Hub = true, r.Hub // on another hub of the tier
		}
		if live := h.conns.live(e.Name); live != nil {
			e.Online, e.Hub = true, h.Name()
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
	return out, nil
}

// RevokeEdge deletes an edge's registration and closes its connections.
func (h *Hub) RevokeEdge(ctx context.Context, name string) error {
	err := h.submit(ctx, func(ctx context.Context, tx Tx) error {
		found, err := tx.DeleteEdge(ctx, name)
		if err == nil && !found {
			err = fmt.Errorf("%w: edge %q", replica.ErrNotFound, name)
		}
		return err
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
	return h.submit(ctx, func(ctx context.Context, tx Tx) error {
		bound, found, err := tx.EdgeNode(ctx, name)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: edge %q was revoked", ErrUnauthorized, name)
		}
		if bound != "" && bound != nodeID {
			return fmt.Errorf("%w: the token of edge %q is bound to node %s, and this node is %s", ErrNodeMismatch, name, bound, nodeID)
		}
		if bound == "" {
			_, taken, err := tx.EdgeOfNode(ctx, nodeID, name)
			if err != nil {
				return err
			}
			if taken {
				return fmt.Errorf("%w: node %s is bound to another edge's token", ErrNodeMismatch, nodeID)
			}
		}
		return tx.BindEdge(ctx, name, nodeID, pending, resume, h.cfg.Now().Unix())
	}, nil)
}

// recordSessionEnd stores an edge's applied LSN and its last reported
// pending count when its session ends.
func (h *Hub) recordSessionEnd(ctx context.Context, name, nodeID string, pending, acked int64) error {
	return h.submit(ctx, func(ctx context.Context, tx Tx) error {
		return tx.RecordAck(ctx, name, nodeID, pending, acked, h.cfg.Now().Unix())
	}, nil)
}

// connRegistry tracks live sync sessions by edge name.
type connRegistry struct {
	mu     sync.Mutex
	byEdge map[string]map[*session]struct{}
	slots  [pingSlots]map[*session]struct{} // the sessions by ping slot (heartbeat.go)
	closed bool
	wg     sync.WaitGroup // sessions between add and remove

	unauthorized atomic.Int64 // sync attempts refused for their token

	// edgeLocks order the records of which hub an edge is connected to
	// (a session's start and the end of an earlier one), by edge name.
	edgeLocks [64]sync.Mutex
}

// edgeLock returns the lock of an edge's hub records.
func (r *connRegistry) edgeLock(name string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(name))
	return &r.edgeLocks[h.Sum32()%uint32(len(r.edgeLocks))]
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
	if r.slots[s.slot] == nil {
		r.slots[s.slot] = map[*session]struct{}{}
	}
	r.slots[s.slot][s] = struct{}{}
	r.wg.Add(1)
	return true
}

// inSlot appends the live sessions of a ping slot to buf.
func (r *connRegistry) inSlot(slot int, buf []*session) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.slots[slot] {
		buf = append(buf, s)
	}
	return buf
}

func (r *connRegistry) remove(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.wg.Done()
	delete(r.byEdge[s.edge.Name], s)
	delete(r.slots[s.slot], s)
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

// count returns the number of live sessions of an edge.
func (r *connRegistry) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byEdge[name])
}

// names returns the names of the edges with live sessions.
func (r *connRegistry) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.byEdge))
	for name := range r.byEdge {
		out = append(out, name)
	}
	return out
}

func (r *connRegistry) edges() int {
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
func (h *Hub) EdgesOnline() int { return h.conns.edges() }
