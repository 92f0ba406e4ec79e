package hub

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/wire"
)

// Fan-out: every session streams the log from its own cursor, but sessions
// at the same position with the same scope would read and encode the same
// frame. A frameCache shares that work: whichever session asks first for the
// changes after LSN a in scope s reads them once (without skipping any
// origin) and encodes the changes frame once, as a prepared WebSocket
// message; every other session at (a, s) waits for it and writes the same
// bytes. A session that is behind asks for an older position and reads it
// the same way (the sessions behind it at that position share its read),
// without holding back the sessions at the head.
//
// A session whose own writes are in the frame gets them filtered out of a
// copy of the changes, and a session that has not been sent the definition
// of a container in the frame gets a frame of its own with it; both encode
// their own frame, as every session did before.
//
// The cache holds at most frameCacheEntries frames and about
// frameCacheBytes of encoded frames; the oldest go first.
const (
	frameCacheEntries = 4096
	frameCacheBytes   = 32 << 20
)

type frameKey struct {
	after int64
	scope string // the scope's JSON: sessions with equal scopes share frames
}

// sharedFrame is the changes after a position in a scope, read once.
type sharedFrame struct {
	ready   chan struct{} // closed when the fields below are set
	changes []wire.Change
	last    int64
	origins map[string]struct{} // origins of changes
	msg     *websocket.PreparedMessage
	size    int
	err     error
}

type frameCache struct {
	mu      sync.Mutex
	entries map[frameKey]*sharedFrame
	order   []frameKey // oldest first
	bytes   int

	reads   atomic.Int64 // log reads for the cache
	encodes atomic.Int64 // frames encoded for a session, shared or its own
}

// FanoutStats counts the stream's work: Reads are log reads of the
// confirmed stream and Encodes changes frames encoded, each counted once
// however many sessions the result went to.
type FanoutStats struct{ Reads, Encodes int64 }

// FanoutStats returns the stream's counters since the hub opened.
func (h *Hub) FanoutStats() FanoutStats {
	return FanoutStats{Reads: h.frames.reads.Load(), Encodes: h.frames.encodes.Load()}
}

// shared returns the frame for (after, scope), reading and encoding it if no
// session has; nil, nil if the read failed for the session that made it (the
// caller then reads for itself).
func (c *frameCache) shared(ctx context.Context, h *Hub, after int64, scopeKey string, scope []wire.ScopeEntry) (*sharedFrame, error) {
	key := frameKey{after: after, scope: scopeKey}
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[frameKey]*sharedFrame{}
	}
	if f := c.entries[key]; f != nil {
		c.mu.Unlock()
		select {
		case <-f.ready:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		if f.err != nil {
			return nil, nil
		}
		return f, nil
	}
	f := &sharedFrame{ready: make(chan struct{})}
	c.entries[key] = f
	c.order = append(c.order, key)
	c.mu.Unlock()

	f.err = c.fill(ctx, h, f, after, scope)
	close(f.ready)
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.err != nil || f.last <= after {
		// A failed read is not kept, nor a read that found nothing yet:
		// the sessions asking again after the next commit read again.
		if c.entries[key] == f {
			delete(c.entries, key)
		}
		if f.err != nil {
			return nil, f.err
		}
		return f, nil
	}
	c.bytes += f.size
	for len(c.order) > 0 && (len(c.entries) > frameCacheEntries || c.bytes > frameCacheBytes) {
		old := c.order[0]
		c.order = c.order[1:]
		if e := c.entries[old]; e != nil {
			select {
			case <-e.ready:
				c.bytes -= e.size
			default: // still being read: its size is not counted yet
			}
			delete(c.entries, old)
		}
	}
	return f, nil
}

func (c *frameCache) fill(ctx context.Context, h *Hub, f *sharedFrame, after int64, scope []wire.ScopeEntry) error {
	c.reads.Add(1)
	changes, last, err := h.LogAfter(ctx, after, wire.MaxChangesFrame, wire.MaxChangesBytes, scope, "")
	if err != nil {
		return err
	}
	f.changes, f.last = changes, last
	f.origins = map[string]struct{}{}
	for _, ch := range changes {
		f.origins[ch.Origin] = struct{}{}
	}
	c.encodes.Add(1)
	b, err := wire.Encode(&wire.Frame{Type: wire.TypeChanges, Changes: changes, LSN: last, HeadLSN: max(last, h.Head())})
	if err != nil {
		return err
	}
	f.size = len(b)
	f.msg, err = websocket.NewPreparedMessage(websocket.TextMessage, b)
	return err
}

// scopeKey is the key under which sessions with equal scopes share frames.
func scopeKey(scope []wire.ScopeEntry) string {
	if len(scope) == 0 {
		return ""
	}
	b, err := json.Marshal(scope)
	if err != nil {
		return "\x00unshared" // never equal to another scope's key... nor shared
	}
	return string(b)
}
