package hub

import (
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/edgesync/edgesync/replica/wire"
)

// DefaultPingInterval is how often a hub asks its edges to ping it. At
// 20 s, twice wire.PingInterval, a hub with 10,000 idle edges answers 500
// pings a second instead of 1,000, which was most of its idle CPU
// (docs/benchmarks.md, "Many edges on one hub"); a dead edge is dropped
// 40 s after the last thing it sent, and an edge that follows the hub takes
// it as gone after 40 s of silence.
const DefaultPingInterval = 20 * time.Second

// pingInterval and pongWait are the heartbeat of an edge that does not
// follow the hub's (its upgrade request does not name
// wire.FeatureHeartbeat): it pings every wire.PingInterval and is dropped
// after wire.PongWait of silence, as before the welcome carried a
// heartbeat. pongWait is also the least wait of an edge that follows the
// hub's. Tests shorten them.
var (
	pingInterval = wire.PingInterval
	pongWait     = wire.PongWait
)

// heartbeat returns how often the hub expects an edge to speak, pinging it
// when it has not, and how long it waits for anything from the edge before
// it drops it. An edge that follows the welcome's heartbeat pings every
// Config.PingInterval and gets twice that (at least pongWait): a ping may
// come a whole interval late, as the edge allows the hub's pongs
// (wire.Heartbeat). An older edge keeps the heartbeat it always had,
// pinged sooner when the hub's interval is shorter.
func (h *Hub) heartbeat(follows bool) (every, wait time.Duration) {
	p := h.cfg.PingInterval
	if follows {
		return p, max(2*p, pongWait)
	}
	return min(p, pingInterval), pongWait
}

// pingPeriod is how often the pinger visits a slot: each session is visited
// every pingSlots periods, as often as the shortest interval of its
// sessions, so that a silent edge is pinged at most a visit after its
// interval.
func (h *Hub) pingPeriod() time.Duration {
	return min(h.cfg.PingInterval, pingInterval) / pingSlots
}

// pingSlots is how many groups the sessions' heartbeats are spread over.
//
// Every session is in one of pingSlots slots, chosen at random. One
// goroutine of the hub, the pinger, visits a slot every pingPeriod, so
// each session every pingSlots periods (10 s by default), and pings
// those of its sessions whose edge is silent (silentSince). Sessions hold
// no timer of their own and are not woken for heartbeats: an edge that
// pings the hub, as every edge does, costs the hub its ping's read and the
// pong's write, nothing more. Measured with 10,000 idle edges pinging every
// 10 s, on two CPUs shared with the edges' process and other work: the
// hub's idle CPU fell from 7.3-7.5% (each session pinged its edge every 10 s
// from a timer of its own, in slots) to 4.7-5.0%; in a CPU profile, skipping
// the pings of edges that ping halved the samples, and with the pinger the
// sessions' writers, a tenth of what remained, no longer appear.
const pingSlots = 10

// silentSince reports whether the session's edge has sent no frame and no
// ping of its own for its interval (s.every) at now, and so should be
// pinged. An edge pings the hub at least every interval (its clock rides on
// the pings), and each ping moves the session's read deadline on: pinging such
// an edge too would cost a write and a pong read per session and interval
// for nothing. An edge that goes silent, an older one that does not ping or
// one that is gone is pinged at every visit of its slot once silent (its
// pongs do not count as speaking), and its session ends when nothing at
// all, pong included, came for its wait (s.wait).
func (s *session) silentSince(now time.Time) bool {
	return now.UnixNano()-s.heard.Load() >= int64(s.every)
}

// ping pings the edge; a ping that cannot be written ends the session.
func (s *session) ping() {
	if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wire.WriteWait)); err != nil {
		s.cancel(fmt.Errorf("ping: %w", err))
		s.conn.Close()
	}
}

// pingSilent is the pinger: every pingPeriod it pings the silent
// edges of the next slot, each from a goroutine of its own (a write may wait
// for the session's writer, or for a full socket, up to wire.WriteWait), so
// at most one per live session. Slots follow the clock: woken late, it
// visits every slot whose time has come since its last visit. It returns
// once stop is closed and its pings have returned.
func (h *Hub) pingSilent(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var pings sync.WaitGroup
	defer pings.Wait()
	period := h.pingPeriod()
	t := time.NewTicker(period)
	defer t.Stop()
	var batch []*session
	visited := time.Now().UnixNano() / int64(period) // the last slot time visited
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := time.Now()
		due := now.UnixNano() / int64(period)
		for tick := max(visited+1, due-pingSlots+1); tick <= due; tick++ {
			batch = h.conns.inSlot(int(tick%pingSlots), batch[:0])
			for _, s := range batch {
				if s.silentSince(now) {
					pings.Add(1)
					go func() {
						defer pings.Done()
						s.ping()
					}()
				}
			}
			clear(batch)
		}
		visited = due
	}
}
