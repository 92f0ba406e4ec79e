package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Admission control of sync connections. After a hub restart every edge
// reconnects at once; a hub that took every handshake together would
// authenticate, bind and welcome them all in parallel, slowing each so much
// that they time out and retry. A hub therefore runs at most MaxSyncHandshakes
// handshakes (token check, upgrade, hello) at a time, and keeps at most MaxSyncSessions sessions. A connection that finds every
// handshake slot taken waits for one, in arrival order, up to 5 s
// (well within an edge's 10 s handshake timeout); one that still has none,
// or comes beyond MaxSyncSessions, is answered with 503 and Retry-After, and the
// edge tries again after its backoff.
const (
	DefaultMaxSyncHandshakes = 512
	DefaultMaxSyncSessions   = 10000
	// RetryAfterBusy is the Retry-After of a refused sync connection, in
	// seconds.
	RetryAfterBusy = 1
)

// handshakeWait is how long a connection waits for a handshake slot.
var handshakeWait = 5 * time.Second

type admission struct {
	handshakes chan struct{} // one token per handshake in progress
	sessions   atomic.Int64  // connections admitted and not ended
	max        int64

	refused atomic.Int64
}

func newAdmission(maxHandshakes, maxSessions int) *admission {
	return &admission{handshakes: make(chan struct{}, maxHandshakes), max: int64(maxSessions)}
}

// ticket is one admitted connection.
type ticket struct {
	a         *admission
	handshake sync.Once
	end       sync.Once
}

// enter admits a connection, or returns nil when the hub is at its session
// limit or no handshake slot came free within handshakeWait (or ctx ended).
func (a *admission) enter(ctx context.Context) *ticket {
	if a.sessions.Add(1) > a.max {
		a.sessions.Add(-1)
		a.refused.Add(1)
		return nil
	}
	select {
	case a.handshakes <- struct{}{}:
		return &ticket{a: a}
	default:
	}
	wait := time.NewTimer(handshakeWait)
	defer wait.Stop()
	select {
	case a.handshakes <- struct{}{}:
		return &ticket{a: a}
	case <-wait.C:
	case <-ctx.Done():
	}
	a.sessions.Add(-1)
	a.refused.Add(1)
	return nil
}

// handshakeDone frees the connection's handshake slot.
func (t *ticket) handshakeDone() { t.handshake.Do(func() { <-t.a.handshakes }) }

// leave ends the connection.
func (t *ticket) leave() {
	t.handshakeDone()
	t.end.Do(func() { t.a.sessions.Add(-1) })
}

// SyncRefusedBusy is the number of sync connections refused with 503
// because the hub was at its handshake or session limit.
func (h *Hub) SyncRefusedBusy() int64 { return h.admit.refused.Load() }
