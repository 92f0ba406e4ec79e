package edge

import (
	"sync/atomic"
	"time"
)

// writeGate tells queries that local writes are in flight, from the
// moment a caller starts one to the moment its caller has the outcome:
// validation, the wait in the writer's queue, the transaction, the fsync
// and the wake-up after it. Queries wait at the gate (Replica.yieldToWriter)
// so that the processors and CPUs they would hold are free for the write's
// goroutines at each of those steps.
//
// A query waits for at most maxWriteWait after the gate closed (the first
// of the writes in flight began), however many writes follow it without a
// pause: a steady stream of writes slows queries down but never stops them.
type writeGate struct {
	n     atomic.Int64 // writes in flight
	since atomic.Int64 // when n last went from 0 to 1 (unix nanoseconds)
	ended atomic.Int64 // when n last went back to 0 (unix nanoseconds)
	// opened is closed when n returns to 0. It is replaced, never reused:
	// the write that takes n from 0 to 1 swaps in a new one (closing one
	// left by a write that had not yet swapped it out), the one that takes
	// n back to 0 swaps it out and closes it; each is closed once. Without
	// a lock, where one write leaves as another enters, a query may not
	// wait for the new one; it never waits on a channel no one will close,
	// and writers never wait for queries.
	opened atomic.Pointer[chan struct{}]
}

// enter marks a write in flight; leave ends it.
func (g *writeGate) enter() {
	if g.n.Add(1) == 1 {
		g.since.Store(time.Now().UnixNano())
		ch := make(chan struct{})
		if old := g.opened.Swap(&ch); old != nil {
			close(*old)
		}
	}
}

func (g *writeGate) leave() {
	if g.n.Add(-1) == 0 {
		g.ended.Store(time.Now().UnixNano())
		if ch := g.opened.Swap(nil); ch != nil {
			close(*ch)
		}
	}
}

// wait returns once no write is in flight, or once the gate has been
// closed for max.
func (g *writeGate) wait(max time.Duration) {
	if g.n.Load() == 0 {
		return
	}
	ch := g.opened.Load()
	if ch == nil {
		return
	}
	left := max - time.Since(time.Unix(0, g.since.Load()))
	if left <= 0 {
		return
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case <-*ch:
	case <-t.C:
	}
}

// quiet reports whether no local write has been in flight for d: none now,
// and the last one's caller had its outcome at least d ago (or there has
// been none).
func (g *writeGate) quiet(d time.Duration) bool {
	return g.n.Load() == 0 && time.Now().UnixNano()-g.ended.Load() >= int64(d)
}
